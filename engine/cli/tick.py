"""``teiji init``, ``teiji tick`` and ``teiji plan``: the tick from a terminal.

- ``teiji init`` creates the two DynamoDB tables (when Terraform has not).
- ``teiji tick [--at ISO8601] [--dry-run] [--json] [--service KEY ...]`` runs one tick;
  exit 0 when every service converged or was left alone on purpose, 1 when any failed.
- ``teiji plan [--at ISO8601] [--json]`` is ``tick --dry-run`` shown as a table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    add_aws_options,
    colour,
    make_clients,
    parse_at,
    print_json,
    table,
)
from engine.config import Settings, SettingsError
from engine.lease import printable
from engine.localtime import time_text
from engine.logs import setup_logging, silence_logging
from engine.report import ServiceReport, TickReport, for_people
from schemas.documents import origin_words


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Adds ``init``, ``tick`` and ``plan``."""
    init = sub.add_parser(
        "init",
        help="create the DynamoDB tables teiji uses, if missing",
        description="Create the config and state tables (TEIJI_CONFIG_TABLE, TEIJI_STATE_TABLE) "
        "if they do not exist: for a local endpoint or a first try. The Terraform module creates "
        "them in a deployment.",
    )
    init.add_argument("--json", action="store_true", help="print what was done as JSON")
    add_aws_options(init)
    init.set_defaults(func=run_init)

    tick = sub.add_parser(
        "tick",
        help="run one tick: converge services to their schedules",
        description="Run one tick from this machine, the same code the Lambda runs: take the "
        "lease, decide every service, change what must change, and report. Exit 0 when every "
        "service converged or was left alone on purpose, 1 when any failed, 2 for bad usage.",
    )
    _add_common(tick)
    tick.add_argument("--dry-run", action="store_true", help="plan and report, change nothing")
    tick.add_argument(
        "--service",
        action="append",
        metavar="KEY",
        help="only this service (cluster/service); repeat for more",
    )
    tick.set_defaults(func=run_tick_command)

    plan = sub.add_parser(
        "plan",
        help="show what the next tick would do (a dry-run tick)",
        description="Show, as a table, what a tick would do at --at (default now): the decision "
        "and the changes it would make per service. Writes nothing, not even the lease.",
    )
    _add_common(plan)
    plan.set_defaults(func=run_plan_command, dry_run=True, service=None)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--at",
        metavar="ISO8601",
        help="decide at this instant, with an offset or Z (default: now), "
        "e.g. 2026-12-01T22:00:00+09:00",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--verbose", action="store_true", help="also write the JSON log lines to stderr"
    )
    add_aws_options(parser)


def _logging(args: argparse.Namespace, settings: Settings) -> None:
    if getattr(args, "verbose", False):
        setup_logging(settings.log_level, sys.stderr)
    else:
        silence_logging()


def check_rate_settings() -> None:
    """A ``TEIJI_RATE_*`` value the tick cannot use is a bad setting (one line, exit 2), like
    any other ``TEIJI_*`` value, not a failed tick."""
    from engine.aws.bucket import PacingConfigError, resolve_rates

    try:
        resolve_rates()
    except PacingConfigError as exc:
        raise SettingsError(str(exc)) from None


def run_init(args: argparse.Namespace) -> int:
    from engine.store import init_tables

    settings = Settings.from_env()
    done = init_tables(make_clients(args, settings), settings)
    if args.json:
        tables = {"config": settings.config_table, "state": settings.state_table}
        print_json({"tables": tables, "done": done})
    else:
        for line in done:
            print(line)
    return EXIT_OK


def _tick(args: argparse.Namespace, *, dry_run: bool) -> TickReport:
    from engine.tick import TickError, run_tick

    at = parse_at(args.at)
    settings = Settings.from_env()
    check_rate_settings()
    _logging(args, settings)
    clients = make_clients(args, settings)
    try:
        return run_tick(
            clients,
            settings,
            at=at,
            dry_run=dry_run or settings.dry_run,
            services=args.service,
        )
    except TickError as err:
        raise CliError(f"{err} (did you run `teiji init`?)", code=EXIT_FAILED) from err


def run_tick_command(args: argparse.Namespace) -> int:
    return _show(args, _tick(args, dry_run=args.dry_run), render_tick)


def run_plan_command(args: argparse.Namespace) -> int:
    return _show(args, _tick(args, dry_run=True), render_plan)


def _show(args: argparse.Namespace, report: TickReport, render: Callable[[TickReport], str]) -> int:
    if args.json:
        print_json(report_json(report))
    else:
        print(render(report))
    return EXIT_FAILED if report.failed else EXIT_OK


def report_json(report: TickReport) -> dict[str, Any]:
    """The report as JSON, each service with the ``schedule`` object of list, explain and the
    events: where its schedule came from (document, profile, tag) and the fields it set."""
    payload = report.as_json()
    for service in payload["services"]:
        service["schedule"] = _origin(report, str(service["service"]))
    return payload


def _origin(report: TickReport, key: str) -> dict[str, Any] | None:
    found = report.origins.get(key)
    if found is not None:
        return found
    decided = any(s.key == key and s.decision is not None for s in report.services)
    return {"from": "document", "profile": None} if decided else None


def origin_lines(report: TickReport) -> list[str]:
    """``schedules made with a profile:`` and a line per such service (by document or by its
    teiji:profile tag, and the fields the schedule set itself), as simulate prints them."""
    shown = [s.key for s in report.services if s.key in report.origins]
    if not shown:
        return []
    width = max(len(key) for key in shown)
    return ["schedules made with a profile:"] + [
        f"  {key.ljust(width)}  {origin_words(report.origins[key])}" for key in shown
    ]


# Rendering --------------------------------------------------------------------------------------
def _actions_text(service: ServiceReport) -> str:
    return ", ".join(a.summary() for a in service.actions) or "-"


def _note_text(service: ServiceReport) -> str:
    if service.error:
        return colour(f"error: {for_people(service.error)}", "failed")
    return for_people(service.notes[-1]) if service.notes else ""


def _decision_text(service: ServiceReport) -> str:
    if service.decision is None:
        return "-"
    return colour(service.decision.state, service.decision.state)


def _outcome_text(service: ServiceReport) -> str:
    return colour(service.outcome, "failed") if service.failed else service.outcome


def render_tick(report: TickReport) -> str:
    if report.lease == "held":
        return held_text(report) + "; nothing done"
    rows = [
        (
            s.key,
            _outcome_text(s),
            _decision_text(s),
            s.decision.source if s.decision else "-",
            _actions_text(s),
            _note_text(s),
        )
        for s in report.services
    ]
    lines = [table(("SERVICE", "OUTCOME", "DECISION", "SOURCE", "ACTIONS", "NOTE"), rows)]
    lines.extend(origin_lines(report))
    lines.extend(_footer(report))
    return "\n".join(lines)


def held_text(report: TickReport) -> str:
    """``another tick holds the lease tick#1/2: HOLDER, taken ..., expires ... (in 87 s)``."""
    if report.lease_taken_at is None or report.lease_expires_at is None:
        return f"another tick holds the lease ({report.lease_holder or 'unknown'})"
    left = (report.lease_expires_at - datetime.now(UTC)).total_seconds()
    holder = printable(report.lease_holder or "")
    return (
        f"another tick holds the lease {report.lease_name}: {holder}, "
        f"taken {report.lease_taken_at:%Y-%m-%dT%H:%M:%SZ}, "
        f"expires {report.lease_expires_at:%Y-%m-%dT%H:%M:%SZ}"
        + (f" (in {left:.0f} s)" if 0 <= left <= 3600 else "")
        + "; `teiji lease` lists the leases"
    )


def render_plan(report: TickReport) -> str:
    rows = [
        (
            s.key,
            _decision_text(s),
            s.decision.source if s.decision else "-",
            _actions_text(s),
            _note_text(s),
        )
        for s in report.services
    ]
    lines = [table(("SERVICE", "DECISION", "SOURCE", "ACTIONS PLANNED", "NOTE"), rows)]
    lines.extend(origin_lines(report))
    lines.extend(_footer(report))
    return "\n".join(lines)


def _report_time(report: TickReport) -> str:
    """The tick's instant in the services' zone when they share one (decisions carry it),
    else in TEIJI_DEFAULT_TIMEZONE, the deployment's own."""
    zones = {str(s.decision.at.tzinfo): s.decision.at.tzinfo for s in report.services if s.decision}
    if len(zones) == 1:
        return time_text(report.at, next(iter(zones.values())))
    return time_text(report.at, Settings.from_env().default_timezone)


def _footer(report: TickReport) -> list[str]:
    lines = [f"problem: {problem}" for problem in report.problems]
    counts = ", ".join(f"{n} {outcome}" for outcome, n in report.counts.items() if n)
    mode = " (dry run: nothing changed)" if report.dry_run else ""
    lines.append(
        f"{len(report.services)} services at {_report_time(report)}: {counts or 'none'}{mode}"
    )
    if report.lease == "lost":
        lines.append("the tick ran out of its lease and stopped acting")
    return lines
