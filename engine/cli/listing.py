"""``teiji list``: every managed service, its decision now and why, the next change, and what
it looks like in AWS (read only: the tick's observe layer, then baselines), with what the next
tick would change."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.aws.errors import error_text
from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_aws_options,
    colour,
    parse_at,
    plural,
    print_json,
    table,
)
from engine.cli.fleet import TagView, load_fleet, tag_view
from engine.cli.session import FEW, Session, default_zone, open_session
from engine.cli.text import local_text
from engine.converge import plan_for
from engine.decide import Decider
from engine.model import Decision, Observation
from engine.observe import observe
from engine.optin import PROTECTED_NOTE
from engine.store import LoadedConfig, StateStore, item_key, plain, service_of_problem
from engine.tablecheck import override_warnings
from schemas.documents import Schedule
from schemas.records import Baseline
from schemas.validation import DocumentSet, Problem


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Adds ``list``."""
    listing = sub.add_parser(
        "list",
        help="every managed service: decision now, why, next change, and its state in AWS",
        description="Every service with a schedule: what teiji decides now and why, the next "
        "change, what the service looks like in AWS (desired/running, Min..Max, saved "
        "baseline) and what the next tick would change. Reads only.",
    )
    listing.add_argument(
        "--at",
        metavar="ISO8601",
        help="decide at this instant, with an offset or Z (default: now)",
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    add_aws_options(listing)
    listing.set_defaults(func=run_list)


@dataclass
class ServiceRow:
    """One line of ``teiji list``: the decision and, when AWS could be read, the service."""

    key: str
    timezone: str
    decision: Decision | None = None
    next_state: str | None = None
    observation: Observation | None = None
    aws_error: str | None = None
    baseline: bool | None = None
    pending: list[str] | None = None
    problems: list[str] = field(default_factory=list)
    origin: dict[str, Any] | None = None  # where the schedule came from (Schedule.origin_detail)
    # What the service's own tags say (read with it from ECS): protected, a tag ignored.
    tags: TagView | None = None
    protected_by_tag: bool = False  # tagged teiji:protected=true, no document: never changed

    @property
    def protected(self) -> bool:
        return self.protected_by_tag or (self.tags is not None and self.tags.protected)

    def as_json(self) -> dict[str, Any]:
        decision = self.decision
        observed = self.observation
        target = observed.target if observed else None
        state = decision.state if decision else "invalid"
        return {
            "service": self.key,
            "state": "protected" if self.protected_by_tag else state,
            "source": decision.source if decision else None,
            "reason": decision.reason if decision else None,
            "next_change": (
                decision.next_change.isoformat() if decision and decision.next_change else None
            ),
            "next_state": self.next_state,
            "override_id": decision.override_id if decision else None,
            "override_by": decision.override_by if decision else None,
            "holiday": decision.holiday if decision else None,
            "aws": None
            if observed is None
            else {
                "desired_count": observed.desired_count,
                "running_count": observed.running_count,
                "min_capacity": target.min_capacity if target else None,
                "max_capacity": target.max_capacity if target else None,
                "suspended": target.suspended.model_dump() if target else None,
            },
            "aws_error": self.aws_error,
            "baseline": self.baseline,
            "next_tick": self.pending,
            "problems": list(self.problems),
            "schedule": self.origin,
            "protected": self.protected if self.tags or self.protected_by_tag else None,
            "ignored_tag": self.tags.ignored_tag if self.tags else None,
        }


def run_list(args: argparse.Namespace) -> int:
    at = parse_at(args.at)
    session = open_session(args)
    # Services opted in by their teiji:profile tag are listed as the tick finds them.
    fleet = load_fleet(session.clients, session.settings, now=at)
    loaded = fleet.loaded
    docs = loaded.documents
    rows = decide_rows(docs, loaded.problem_keys, at, protected=fleet.protected)
    schedules = [docs.schedules[r.key] for r in rows if r.key in docs.schedules]
    read_aws(session, rows, schedules)
    other_problems = [str(p) for p in loaded.problems if service_of_problem(p) is None]
    unreachable = [r for r in rows if r.aws_error]
    if args.json:
        print_json([row.as_json() for row in rows])
        # The JSON holds each service's own problems; the others would be lost in it.
        for problem in other_problems:
            print(f"teiji: problem: {problem}", file=sys.stderr)
    else:
        print(render_list(rows, at))
        for problem in other_problems:
            print(f"problem: {problem}")
        for line in aws_error_lines(unreachable, total=len(schedules)):
            print(line)
    # On standard error, as `teiji override list` says them, and with --json too.
    for warning in _override_warnings(loaded, scheduled=loaded_schedule_keys(loaded)):
        print(f"teiji: warning: {warning}", file=sys.stderr)
    for warning in fleet.warnings:
        print(f"teiji: warning: {warning}", file=sys.stderr)
    failed = unreachable or other_problems or fleet.warnings or any(r.problems for r in rows)
    return EXIT_FAILED if failed else EXIT_OK


def loaded_schedule_keys(loaded: LoadedConfig) -> set[str]:
    """Every stored schedule, valid or not (an override for an invalid one is not orphaned)."""
    return set(loaded.documents.schedules) | {
        key
        for key, problems in loaded.problem_keys.items()
        if any(p.document.startswith("schedule ") for p in problems)
    }


def _override_warnings(loaded: LoadedConfig, *, scheduled: set[str]) -> list[str]:
    """``override SK: ...`` for each override in force or to come that TTL will not remove as
    meant, or whose service has no schedule (see engine.tablecheck)."""
    lines: list[str] = []
    for override in loaded.documents.overrides:
        sk = item_key(override)[1]
        item = loaded.override_items.get(sk)
        if item is None:
            continue
        for message in override_warnings(plain(item), override.until, scheduled):
            lines.append(f"override {sk}: {message}")
    return lines


def aws_error_lines(rows: Sequence[ServiceRow], *, total: int) -> list[str]:
    """The services AWS could not tell about, grouped by what went wrong."""
    if not rows:
        return []
    by_message: dict[str, list[str]] = {}
    for row in rows:
        by_message.setdefault(row.aws_error or "", []).append(row.key)
    everything = len(rows) == total
    lines = [
        "AWS could not be read"
        + ("" if everything else f" for {plural(len(rows), 'service')}")
        + ": their decisions are listed above, their capacity is not (?)"
    ]
    for message, keys in sorted(by_message.items()):
        shown = ", ".join(keys[:FEW]) + (f" and {len(keys) - FEW} more" if len(keys) > FEW else "")
        lines.append(f"  {shown}: {message}")
    return lines


def decide_rows(
    docs: DocumentSet,
    problem_keys: Mapping[str, Sequence[Problem]],
    at: datetime,
    *,
    protected: Sequence[str] = (),
) -> list[ServiceRow]:
    """A row per schedule (and per service whose documents or tag are invalid), decided at
    ``at``, and one per tagged service that is protected (never decided: never changed)."""
    decider = Decider(docs.calendars)
    rows: list[ServiceRow] = []
    for key in sorted(set(docs.schedules) | set(problem_keys) | set(protected)):
        schedule = docs.schedules.get(key)
        row = ServiceRow(key, schedule.timezone if schedule else default_zone())
        if key in protected and schedule is None and key not in problem_keys:
            row.protected_by_tag = True
            row.pending = []  # the tick skips it
            rows.append(row)
            continue
        row.problems = [
            p.message if p.path == "-" else f"{p.path}: {p.message}"
            for p in problem_keys.get(key, ())
        ]
        if schedule is not None:
            row.origin = schedule.origin_detail()
            overrides = docs.overrides_for(key)
            try:
                row.decision = decider.decide(schedule, at, overrides)
                if row.decision.next_change is not None:
                    row.next_state = decider.decide(
                        schedule, row.decision.next_change, overrides
                    ).state
            except ValueError as exc:
                row.problems.append(f"cannot decide: {exc}")
        rows.append(row)
    return rows


def read_aws(session: Session, rows: Sequence[ServiceRow], schedules: Sequence[Schedule]) -> None:
    """Fill in each row's service as AWS reports it (read only), its baseline, and what the
    next tick would change. Failures are recorded per row, never raised."""
    by_key = {row.key: row for row in rows}
    try:
        observed = observe(session.clients, schedules)
    except Exception as exc:  # the listing must survive anything AWS does
        for schedule in schedules:
            by_key[schedule.key].aws_error = error_text(exc)
        return
    for key, message in observed.failures.items():
        by_key[key].aws_error = message
    baselines: dict[str, Baseline] | None
    state = StateStore(session.clients, session.settings.state_table)
    try:
        baselines = state.get_baselines(observed.observations)
    except Exception as exc:  # shown as unknown; the decisions still stand
        baselines = None
        print(f"teiji: warning: cannot read the saved baselines: {exc}", file=sys.stderr)
    for schedule in schedules:
        row = by_key[schedule.key]
        observation = observed.observations.get(schedule.key)
        row.observation = observation
        if observation is not None:
            row.tags = tag_view(schedule, observation.raw)
        if baselines is None or observation is None:
            continue
        row.baseline = schedule.key in baselines
        if row.decision is None or row.problems:
            continue
        if row.protected:
            row.pending = []  # the tick skips it: teiji never changes a protected service
            continue
        try:
            # What the tick would do: its plan with the growth cap, from engine.converge.
            plan = plan_for(
                schedule, row.decision, observation, baselines.get(schedule.key), session.settings
            )
        except ValueError:
            continue
        if plan.error:
            row.pending = [f"refused: {plan.error}"]
        else:
            row.pending = [a.summary() for a in plan.actions if a.kind != "delete_baseline"]


def render_list(rows: Sequence[ServiceRow], at: datetime) -> str:
    headers = (
        "SERVICE",
        "NOW",
        "NEXT CHANGE",
        "DESIRED/RUN",
        "MIN..MAX",
        "SAVED",
        "NEXT TICK",
        "WHY",
    )
    lines = [table(headers, [_list_cells(row) for row in rows])]
    counts: dict[str, int] = {}
    for row in rows:
        state: str = row.decision.state if row.decision and not row.problems else "invalid"
        state = "protected" if row.protected else state
        counts[state] = counts.get(state, 0) + 1
    zones = sorted({row.timezone for row in rows})
    when = local_text(at, zones[0] if len(zones) == 1 else default_zone())
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    lines.append(f"{plural(len(rows), 'service')} at {when}: {summary or 'none'}")
    return "\n".join(lines)


def _list_cells(row: ServiceRow) -> list[str]:
    decision = row.decision
    if row.protected_by_tag:
        now = colour("protected", "unmanaged")
        why = PROTECTED_NOTE
    elif decision is None or row.problems:
        now = colour("invalid", "failed")
        why = "; ".join(row.problems) or "-"
    else:
        now = colour(decision.state, decision.state)
        why = decision.reason
        if row.origin and row.origin.get("profile"):
            how = "tag" if row.origin["from"] == "tag" else "document"
            why = f"{why} [profile {row.origin['profile']} by {how}]"
        if row.tags is not None:
            why = " ".join([why, *(f"[{note}]" for note in row.tags.notes())])
    next_change = "-"
    if decision is not None and decision.next_change is not None:
        next_change = f"{row.next_state} {local_text(decision.next_change, row.timezone)}"
    observed = row.observation
    if observed is None:
        capacity = bounds = "?" if row.aws_error else "-"
    else:
        capacity = f"{observed.desired_count}/{observed.running_count}"
        bounds = observed.bounds_text()
    saved = {None: "?", True: "yes", False: "no"}[row.baseline]
    if row.protected_by_tag:
        saved = "-"
    if row.pending is None:
        pending = "?" if observed is None or row.problems else "-"
    else:
        pending = ", ".join(row.pending) or "nothing"
    return [row.key, now, next_change, capacity, bounds, saved, pending, why]
