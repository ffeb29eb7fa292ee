"""``teiji simulate``: running and stopped hours per service over a date range, and the savings.

Without ``--file`` the documents come from the config table (with the services their
``teiji:profile`` tag opts in: ``engine.cli.simulate_sources``) and each service's task size and
desired count from ECS (DescribeServices, DescribeTaskDefinition); with ``--file`` nothing
leaves the machine. The figures come from ``engine.simulate``, the page from
``engine.timeline_html``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from engine.aws.clients import Clients
from engine.aws.ecs import describe_services
from engine.aws.errors import AWS_ERRORS
from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    add_aws_options,
    make_clients,
    parse_date,
    plural,
    print_json,
    table,
    write_file,
)
from engine.cli.fleet import TagView, tag_view
from engine.cli.simulate_sources import (
    chosen,
    failure_lines,
    load_sources,
    origin_lines,
    protected_text,
)
from engine.config import Settings
from engine.localtime import to_local, zone
from engine.pricing import (
    ARCHITECTURES,
    DEFAULT_REGION,
    DEFAULT_SPOT_DISCOUNT,
    Architecture,
    Prices,
    PricingError,
    TaskSize,
    price_for,
)
from engine.projection import MonthCache, MonthProjection, monthly_projection, service_months
from engine.savings import Launch, launch_of
from engine.simulate import ServiceSimulation, Totals, region_of, simulate, totals
from engine.timeline_html import render_page
from engine.timeline_text import LANGS, Lang, full_date
from schemas.documents import Schedule

DEFAULT_DAYS = 28
MAX_DAYS = 366
_HEADERS = (
    "SERVICE",
    "RUNNING H",
    "STOPPED H",
    "OFF",
    "COST WITHOUT",
    "COST WITH",
    "SAVED",
    "SAVED %",
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Adds ``simulate``."""
    parser = sub.add_parser(
        "simulate",
        help="hours running and stopped per service over a date range, and what that saves",
        description="Walk the schedules over a date range (the next 4 weeks by default) as the "
        "15-minute tick would act on them, and report per service the running and stopped "
        "hours, the share of time off and the Fargate cost with and without teiji, and which "
        "profile made each schedule. Without --file, documents come from the config table "
        "(with the services of the allowed clusters tagged teiji:profile=<name>) and task "
        "sizes from ECS.",
    )
    parser.add_argument(
        "services",
        nargs="*",
        metavar="SERVICE",
        help="cluster/service (or its full key with @account/region); default: every schedule",
    )
    parser.add_argument(
        "--from",
        dest="first",
        metavar="DATE",
        help="first local date, YYYY-MM-DD, in each schedule's timezone (default: today)",
    )
    parser.add_argument(
        "--to",
        dest="last",
        metavar="DATE",
        help=f"last local date, inclusive (default: {DEFAULT_DAYS} days in all, ending "
        f"{DEFAULT_DAYS - 1} days after --from)",
    )
    parser.add_argument(
        "--file",
        "-f",
        dest="files",
        action="append",
        metavar="FILE",
        help="read documents from this file or directory instead of DynamoDB (repeat for "
        "several); nothing is read from AWS, so services opted in by their teiji:profile tag "
        "are not seen",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list, one per service")
    parser.add_argument("--html", metavar="FILE", help="also write a timeline page to FILE")
    parser.add_argument(
        "--lang",
        choices=LANGS,
        default="en",
        help="language of the --html page, holiday names included (default: en)",
    )

    pricing = parser.add_argument_group("pricing")
    pricing.add_argument(
        "--tasks",
        type=_count,
        metavar="N",
        help="tasks while running (default: the schedule's running.desired_count, else the "
        "service's desiredCount in ECS when above 0, else 1)",
    )
    pricing.add_argument(
        "--cpu",
        type=_positive_int,
        metavar="UNITS",
        help="task CPU in ECS units, 1024 = 1 vCPU (default: the task definition, else 256)",
    )
    pricing.add_argument(
        "--memory",
        type=_positive_int,
        metavar="MIB",
        help="task memory in MiB (default: the task definition, else 512)",
    )
    pricing.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        help="CPU architecture (default: the task definition's, else x86_64)",
    )
    pricing.add_argument("--spot", action="store_true", help="price as Fargate Spot")
    pricing.add_argument(
        "--spot-discount",
        type=float,
        default=DEFAULT_SPOT_DISCOUNT,
        metavar="FRACTION",
        help=f"Spot discount off on-demand, 0.7 = 70%% off (default {DEFAULT_SPOT_DISCOUNT})",
    )
    pricing.add_argument(
        "--vcpu-price",
        type=_price,
        metavar="USD",
        help="on-demand price per vCPU-hour (default: the built-in table for the region)",
    )
    pricing.add_argument(
        "--gb-price",
        type=_price,
        metavar="USD",
        help="on-demand price per GB-hour (default: the built-in table for the region)",
    )
    add_aws_options(parser)
    parser.set_defaults(func=run_simulate)


def _count(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; give a task count such as 1")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive whole number")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a price such as 0.05") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a price such as 0.05")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


# --------------------------------------------------------------------------------------------
# The command


def run_simulate(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    settings = Settings.from_env()
    offline = bool(args.files)
    clients = None if offline else make_clients(args, settings)
    sources = load_sources(args, settings, clients, now)
    docs = sources.docs
    schedules, failed = chosen(sources, args.services)
    first, last = date_range(args.first, args.last, today=_today(schedules, now))
    default_region = args.region or os.environ.get("AWS_REGION") or DEFAULT_REGION
    arch: Architecture = args.arch or "x86_64"
    facts = ServiceFacts() if clients is None else _read_ecs(clients, schedules)
    for warning in [*sources.warnings, *facts.warnings]:
        print(f"teiji: warning: {warning}", file=sys.stderr)
    for note in sources.notes:
        print(f"teiji: note: {note}", file=sys.stderr)
    # A protected service is never changed, whatever its schedule says: nothing to simulate.
    protected = sorted({*sources.protected, *facts.protected()})
    schedules = [s for s in schedules if s.key not in protected]
    if not schedules:
        raise CliError(f"there are no schedules to simulate; {protected_text(protected)}")
    regions = sorted({region_of(s, default_region) for s in schedules})
    prices = {region: _prices(args, region, arch) for region in regions}
    service_prices = {
        key: _prices(args, prices[_region_of_key(schedules, key, default_region)].region, found)
        for key, found in facts.architectures.items()
        if args.arch is None and found != arch
    }
    sims = simulate(
        docs,
        first,
        last,
        prices=prices,
        service_prices=service_prices,
        default_region=default_region,
        services=[s.key for s in schedules],
        tasks=args.tasks,
        observed_tasks=facts.desired_counts,
        sizes={key: _with_flags(args, size) for key, size in facts.sizes.items()},
        default_size=_flag_size(args),
    )
    range_text = describe_range(first, last, schedules)
    price_lines = sorted({s.prices.describe() for s in sims})
    if args.html:
        label = page_label(first, last, schedules, lang=args.lang)
        _write_html(args.html, sims, label, price_lines, now, args.lang)
    if args.json:
        cache: MonthCache = {}
        print_json([with_months(s, cache) for s in sims])
    else:
        print(render_table(sims))
        print(range_text)
        for line in price_lines:
            print(f"prices: {line}")
        for line in origin_lines(sims, facts.tags):
            print(line)
        if protected_text(protected):
            print(protected_text(protected))
        print()
        print(render_months(monthly_projection(sims)))
    if args.html:
        print(f"teiji: wrote {args.html}", file=sys.stderr)
    if args.json and protected:
        print(f"teiji: note: {protected_text(protected)}", file=sys.stderr)
    for line in failure_lines(sources, failed):
        print(f"teiji: {line}", file=sys.stderr)
    # An allowed cluster that could not be listed: its tagged services are missing.
    return EXIT_FAILED if failed or sources.warnings else EXIT_OK


def _today(schedules: Sequence[Schedule], now: datetime) -> date:
    # Ranges are local dates; "today" is read in the first service's zone (in most
    # deployments every schedule shares one zone).
    return to_local(now, zone(schedules[0].timezone)).date()


def date_range(first: str | None, last: str | None, *, today: date) -> tuple[date, date]:
    """--from/--to as local dates, ``last`` inclusive; default: 4 weeks starting today."""
    start = parse_date("--from", first) if first else today
    end = parse_date("--to", last) if last else start + timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise CliError(f"--to {end} is before --from {start}")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise CliError(f"the range is {days} days; simulate at most {MAX_DAYS} days at once")
    return start, end


def describe_range(first: date, last: date, schedules: Sequence[Schedule]) -> str:
    days = (last - first).days + 1
    zones = sorted({s.timezone for s in schedules})
    where = f"zone {zones[0]}" if len(zones) == 1 else f"zones {', '.join(zones)} (each its own)"
    return f"range {first} to {last} ({plural(days, 'day')}, local dates), {where}"


def page_label(first: date, last: date, schedules: Sequence[Schedule], *, lang: Lang = "en") -> str:
    """``Mon 16 Nov 2026 – Sun 29 Nov 2026 · 14 days · Asia/Tokyo`` for the page's header
    (``2026年11月16日(月) – 2026年11月29日(日) · 14 日間 · Asia/Tokyo`` in Japanese)."""
    days = (last - first).days + 1
    zones = ", ".join(sorted({s.timezone for s in schedules}))
    span = full_date(first, lang)
    if days > 1:
        span += f" – {full_date(last, lang)}"
    count = f"{days} 日間" if lang == "ja" else plural(days, "day")
    return f"{span} · {count} · {zones}"


def _prices(args: argparse.Namespace, region: str, arch: Architecture) -> Prices:
    try:
        return price_for(
            region,
            arch,
            spot=args.spot,
            spot_discount=args.spot_discount,
            vcpu_price=args.vcpu_price,
            gb_price=args.gb_price,
        )
    except PricingError as exc:
        raise CliError(str(exc)) from exc


def _region_of_key(schedules: Sequence[Schedule], key: str, default_region: str) -> str:
    return next(region_of(s, default_region) for s in schedules if s.key == key)


def _flag_size(args: argparse.Namespace) -> TaskSize:
    return TaskSize.from_ecs_units(args.cpu or 256, args.memory or 512)


def _with_flags(args: argparse.Namespace, size: TaskSize) -> TaskSize:
    """The task definition's size with --cpu/--memory replacing what they give."""
    flags = _flag_size(args)
    return TaskSize(
        vcpu=flags.vcpu if args.cpu else size.vcpu,
        memory_gb=flags.memory_gb if args.memory else size.memory_gb,
    )


# --------------------------------------------------------------------------------------------
# ECS: desired counts, task sizes and architectures


@dataclass
class ServiceFacts:
    desired_counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, TaskSize] = field(default_factory=dict)
    architectures: dict[str, Architecture] = field(default_factory=dict)
    # How each service found in ECS places its tasks (engine.savings.launch_of).
    launches: dict[str, Launch] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # What each service's own tags say: protected, a teiji:profile tag its document overrides.
    tags: dict[str, TagView] = field(default_factory=dict)

    def protected(self) -> list[str]:
        return sorted(key for key, view in self.tags.items() if view.protected)


def _read_ecs(clients: Clients, schedules: Sequence[Schedule]) -> ServiceFacts:
    try:
        return read_service_facts(clients, schedules)
    except AWS_ERRORS as exc:
        raise CliError(f"cannot read the services from ECS: {exc}", EXIT_FAILED) from exc


def read_service_facts(clients: Clients, schedules: Sequence[Schedule]) -> ServiceFacts:
    """DescribeServices per cluster (10 at a time, with the services' tags) and
    DescribeTaskDefinition once per task definition. A service ECS does not know is a warning:
    it is priced with the defaults."""
    facts = ServiceFacts()
    groups: dict[tuple[str | None, str | None, str], list[Schedule]] = {}
    for schedule in schedules:
        groups.setdefault((schedule.account, schedule.region, schedule.cluster), []).append(
            schedule
        )
    definitions: dict[tuple[str | None, str | None, str], dict[str, Any]] = {}
    for (account, region, cluster), members in groups.items():
        ecs = clients.ecs(account, region)
        lookup = describe_services(ecs, cluster, [s.service_name for s in members], tags=True)
        for schedule in members:
            service = lookup.found.get(schedule.service_name)
            if service is None:
                reason = lookup.missing.get(schedule.service_name, "not found")
                facts.warnings.append(
                    f"{schedule.key}: not found in ECS ({reason}); priced with the defaults"
                )
                continue
            facts.launches[schedule.key] = launch_of(service)
            facts.tags[schedule.key] = tag_view(schedule, service)
            desired = int(service.get("desiredCount", 0))
            if desired > 0:  # a stopped service's 0 says nothing about its running size
                facts.desired_counts[schedule.key] = desired
            arn = str(service.get("taskDefinition", ""))
            if not arn:
                continue
            cache_key = (account, region, arn)
            if cache_key not in definitions:
                response = ecs.describe_task_definition(taskDefinition=arn)
                definitions[cache_key] = cast(dict[str, Any], response["taskDefinition"])
            _add_definition(facts, schedule, definitions[cache_key])
    return facts


def _add_definition(facts: ServiceFacts, schedule: Schedule, definition: dict[str, Any]) -> None:
    cpu, memory = definition.get("cpu"), definition.get("memory")
    if cpu and memory:
        try:
            facts.sizes[schedule.key] = TaskSize.from_ecs_units(str(cpu), str(memory))
        except PricingError as exc:
            facts.warnings.append(f"{schedule.key}: task definition size: {exc}")
    else:
        facts.warnings.append(
            f"{schedule.key}: the task definition has no task-level cpu and memory; "
            "priced with --cpu/--memory or 0.25 vCPU / 0.5 GB"
        )
    architecture = str((definition.get("runtimePlatform") or {}).get("cpuArchitecture", ""))
    if architecture.upper() == "ARM64":
        facts.architectures[schedule.key] = "arm64"


# --------------------------------------------------------------------------------------------
# Output


def render_table(sims: Sequence[ServiceSimulation]) -> str:
    """The aligned table: numbers right-aligned, a total row last."""
    summary = totals(sims)
    rows = [_cells(sim.service, sim, summary.currency) for sim in sims]
    rows.append(_cells("TOTAL", summary, summary.currency))
    widths = [max(len(_HEADERS[i]), *(len(row[i]) for row in rows)) for i in range(len(_HEADERS))]
    headers = [h if i == 0 else h.rjust(widths[i]) for i, h in enumerate(_HEADERS)]
    aligned = [[c if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)] for row in rows]
    return table(headers, aligned)


def _cells(label: str, figures: ServiceSimulation | Totals, currency: str) -> list[str]:
    return [
        label,
        f"{figures.running_hours:,.2f}",
        f"{figures.stopped_hours:,.2f}",
        f"{figures.share_off * 100:.1f}%",
        _money(figures.cost_without, currency),
        _money(figures.cost_with, currency),
        _money(figures.saved, currency),
        f"{figures.saved_share * 100:.1f}%",
    ]


_MONTH_HEADERS = ("MONTH", "PROJECTED FROM", "STOPPED TASK-H", "COST WITHOUT", "SAVED")


def render_months(months: Sequence[MonthProjection]) -> str:
    """The monthly projection as an aligned table, with the rule that made it."""
    rows = [
        [
            m.label,
            f"{m.days_simulated} of {m.days_in_month} days",
            f"{m.projected_stopped_task_hours:,.2f}",
            _money(m.projected_cost_without, m.currency),
            _money(m.projected_saved, m.currency),
        ]
        for m in months
    ]
    widths = [
        max(len(_MONTH_HEADERS[i]), *(len(row[i]) for row in rows))
        for i in range(len(_MONTH_HEADERS))
    ]
    right = {2, 3, 4}
    headers = [h.rjust(widths[i]) if i in right else h for i, h in enumerate(_MONTH_HEADERS)]
    aligned = [[c.rjust(widths[i]) if i in right else c for i, c in enumerate(r)] for r in rows]
    rule = (
        "monthly projection: each calendar month from the days simulated in it, "
        "scaled by days in the month / days simulated"
    )
    return f"{rule}\n{table(headers, aligned)}"


def with_months(sim: ServiceSimulation, cache: MonthCache | None = None) -> dict[str, object]:
    """A service's JSON object with its monthly projection under ``months``."""
    data = sim.as_json()
    data["months"] = [m.as_json() for m in service_months(sim, cache=cache)]
    return data


def _money(value: float, currency: str) -> str:
    text = f"{abs(value):,.2f}"
    sign = "-" if value < -0.004 else ""
    return f"{sign}${text}" if currency == "USD" else f"{sign}{text} {currency}"


def _write_html(
    path: str,
    sims: Sequence[ServiceSimulation],
    label: str,
    price_lines: Sequence[str],
    now: datetime,
    lang: Lang = "en",
) -> None:
    page = render_page(
        sims,
        range_label=label,
        price_note="; ".join(price_lines),
        generated=now.strftime("%Y-%m-%d %H:%M UTC"),
        lang=lang,
    )
    write_file(path, page)
