"""``teiji savings``: what the ticks saved over a date range, next to what ``simulate`` predicts.

The realised figures are the tick's own metrics (StoppedTaskHours and EstimatedSavingsUSD in
namespace ``teiji``, dimension Deployment = the function's name; ``engine.metrics``), read
hour by hour with GetMetricData, so an hour without any (the function did not run, or its
metrics did not arrive) shows as a gap instead of a zero. The prediction is ``engine.simulate``
over the same local dates, with each service's tasks from its baseline (a stopped service) or
ECS, and its size from its task definition, as ``teiji simulate`` reads them.
"""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import ClientError

from engine.aws.cloudwatch import MetricQuery, metric_data
from engine.aws.errors import AWS_ERRORS, error_code, error_text
from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    add_aws_options,
    make_clients,
    parse_date,
    plural,
    print_json,
)
from engine.cli.savings_output import Predicted, Realised, render, report_json
from engine.cli.simulate import read_service_facts
from engine.cli.simulate_sources import Sources, failure_lines, load_sources, protected_text
from engine.config import Settings
from engine.metrics import DIMENSION, NAMESPACE
from engine.pricing import DEFAULT_REGION, Prices, PricingError, price_for
from engine.report import for_people
from engine.savings import Launch
from engine.simulate import ServiceSimulation, local_range, region_of, simulate, totals
from engine.store import StateStore
from schemas.validation import DocumentSet

DEFAULT_DEPLOYMENT = "teiji-tick"  # the Terraform module's function name (name_prefix "teiji")
# CloudWatch keeps hourly data points for 455 days (1-minute ones for 15, 5-minute for 63).
MAX_DAYS = 455
MAX_DIMENSION_VALUE = 1024
_HOURS, _USD, _TICKS = "hours", "usd", "ticks"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Adds ``savings``."""
    parser = sub.add_parser(
        "savings",
        help="what the ticks saved over a date range (their metrics), next to what simulate "
        "predicts",
        description="Read the tick's StoppedTaskHours and EstimatedSavingsUSD metrics from "
        "CloudWatch for a range of local dates and print them next to what `teiji simulate` "
        "predicts for the same range. Estimates at Fargate list prices.",
    )
    parser.add_argument("--from", dest="first", metavar="DATE", help="first local date, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", metavar="DATE", help="last local date, inclusive")
    parser.add_argument(
        "--deployment",
        default=DEFAULT_DEPLOYMENT,
        metavar="NAME",
        help=f"the tick function's name, the metrics' Deployment (default {DEFAULT_DEPLOYMENT})",
    )
    parser.add_argument(
        "--file",
        "-f",
        dest="files",
        action="append",
        metavar="FILE",
        help="predict from the documents in this file or directory instead of the config table",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_aws_options(parser)
    parser.set_defaults(func=run_savings)


# --------------------------------------------------------------------------------------------
# The realised figures


def read_realised(client: Any, deployment: str, start: datetime, end: datetime) -> Realised:
    """Hourly sums of the two metrics and the count of ticks that wrote them."""
    dims = {DIMENSION: deployment}
    queries = [
        MetricQuery(_HOURS, NAMESPACE, "StoppedTaskHours", dims, "Sum", 3600),
        MetricQuery(_USD, NAMESPACE, "EstimatedSavingsUSD", dims, "Sum", 3600),
        MetricQuery(_TICKS, NAMESPACE, "StoppedTaskHours", dims, "SampleCount", 3600),
    ]
    found = metric_data(client, queries, start, end)
    return Realised(hours=found[_HOURS], usd=found[_USD], ticks=found[_TICKS])


# --------------------------------------------------------------------------------------------
# The command


def run_savings(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    first, last = _range(args.first, args.last)
    deployment = checked_deployment(args.deployment)
    clients = make_clients(args, settings)
    sources, warning = _documents(args, settings, clients)
    docs = sources.docs if sources is not None else None
    zone = range_zone(docs, settings.default_timezone)
    start, end = local_range(first, last, zone)
    try:
        realised = read_realised(clients.cloudwatch(), deployment, start, end)
    except ClientError as exc:
        denied = error_code(exc) in ("AccessDenied", "AccessDeniedException")
        hint = " (allow cloudwatch:GetMetricData to whoever runs teiji savings)" if denied else ""
        raise CliError(
            f"cannot read the metrics from CloudWatch: {error_text(exc)}{hint}", EXIT_FAILED
        ) from exc
    except AWS_ERRORS as exc:
        raise CliError(f"cannot read the metrics from CloudWatch: {exc}", EXIT_FAILED) from exc
    if not realised.ticks:
        raise CliError(
            f"no teiji metrics for deployment {for_people(deployment, 200)!r} from {first} to "
            f"{last} ({zone}); is --deployment the tick function's name? A tick writes them "
            "from its first run that is not a dry run",
            EXIT_FAILED,
        )
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    gaps = realised.gaps(start, min(end, now))
    through = datetime.now(UTC) if end > datetime.now(UTC) else None
    predicted: Predicted | None = None
    notes: list[str] = []
    if sources is not None and warning is None:
        predicted, warning, notes = _predict(args, settings, clients, sources, first, last)
    if args.json:
        print_json(
            report_json(deployment, first, last, zone, realised, gaps, predicted, warning, through)
        )
    else:
        print(render(deployment, first, last, zone, realised, gaps, predicted, through))
    if warning:
        print(f"teiji: warning: {warning}", file=sys.stderr)
    if sources is None:
        return EXIT_FAILED
    for line in sources.warnings:
        print(f"teiji: warning: {line}", file=sys.stderr)
    for line in [*sources.notes, *notes]:
        print(f"teiji: note: {line}", file=sys.stderr)
    # Services whose documents or tag are invalid are left out of the prediction, one line each.
    failed = sorted(sources.failed) if predicted is not None else []
    for line in failure_lines(sources, failed, "predict"):
        print(f"teiji: {line}", file=sys.stderr)
    return EXIT_FAILED if predicted is None or failed or sources.warnings else EXIT_OK


def range_zone(docs: DocumentSet | None, default: str) -> str:
    """The zone whose local dates ``--from``/``--to`` name: the one zone every managed schedule
    is in, so the metrics are read over the very days simulate predicts; ``default``
    (``TEIJI_DEFAULT_TIMEZONE``) for a fleet across zones or without schedules."""
    schedules = docs.schedules.values() if docs is not None else ()
    zones = {s.timezone for s in schedules if s.mode != "unmanaged"}
    return zones.pop() if len(zones) == 1 else default


def _range(first: str | None, last: str | None) -> tuple[date, date]:
    if not first or not last:
        raise CliError(
            "give the range: --from YYYY-MM-DD --to YYYY-MM-DD (local dates, both included)"
        )
    start, end = parse_date("--from", first), parse_date("--to", last)
    if end < start:
        raise CliError(f"--to {end} is before --from {start}")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise CliError(
            f"the range is {days} days; CloudWatch keeps hourly figures for {MAX_DAYS} days, "
            f"so ask for at most {MAX_DAYS}"
        )
    return start, end


def checked_deployment(name: str) -> str:
    """A CloudWatch dimension value: 1 to 1024 characters, no control characters."""
    if not name or not name.strip():
        raise CliError("--deployment is empty; give the tick function's name, such as teiji-tick")
    if len(name) > MAX_DIMENSION_VALUE:
        raise CliError(
            f"--deployment is {len(name)} characters; a CloudWatch dimension value has at most "
            f"{MAX_DIMENSION_VALUE} (give the tick function's name)"
        )
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise CliError(
            f"--deployment {for_people(name, 80)!r} holds control characters; give the tick "
            "function's name, such as teiji-tick"
        )
    return name


# --------------------------------------------------------------------------------------------
# The prediction (engine.simulate, read-only)


def _documents(
    args: argparse.Namespace, settings: Settings, clients: Any
) -> tuple[Sources | None, str | None]:
    """The documents to predict from (the config table with the services of the allowed
    clusters that their tag opts in, as simulate reads them, or ``--file``), and why there is
    no prediction when they cannot be read or have problems no one service owns."""
    try:
        sources = load_sources(
            args, settings, None if args.files else clients, datetime.now(UTC), what="predicted"
        )
    except CliError as exc:
        return None, f"no prediction: cannot read the documents: {exc.message}"
    if sources.other_problems:
        count = len(sources.other_problems)
        return sources, f"no prediction: {plural(count, 'problem')} in the documents"
    return sources, None


def _predict(
    args: argparse.Namespace,
    settings: Settings,
    clients: Any,
    sources: Sources,
    first: date,
    last: date,
) -> tuple[Predicted | None, str | None, list[str]]:
    """What simulate predicts, or None and why it cannot, and notes. The services whose
    documents or tag are invalid are left out (each gets its line), and so are the protected
    ones: teiji never changes them, so they save nothing."""
    docs = sources.docs
    wanted = [s for key, s in sorted(docs.schedules.items()) if key not in sources.failed]
    schedules = [s for s in wanted if s.key not in sources.protected]
    if not schedules:
        note = protected_text(sources.protected)
        return Predicted(0.0, 0.0, 0, ()), None, [note] if note else []
    default_region = args.region or os.environ.get("AWS_REGION") or DEFAULT_REGION
    try:
        facts = read_service_facts(clients, schedules) if not args.files else None
        protected = sorted({*sources.protected, *(facts.protected() if facts else [])})
        schedules = [s for s in schedules if s.key not in protected]
        tasks = dict(facts.desired_counts) if facts else {}
        if not args.files:
            tasks.update(_baseline_counts(clients, settings, [s.key for s in schedules]))
        regions = {region_of(s, default_region) for s in schedules}
        prices: dict[str, Prices] = {r: price_for(r) for r in regions}
        service_prices = {
            key: price_for(region_of(docs.schedules[key], default_region), arch)
            for key, arch in (facts.architectures.items() if facts else ())
        }
        sized = set(facts.sizes) if facts else set()
        for key, launch in facts.launches.items() if facts else ():
            base = service_prices.get(key) or prices[region_of(docs.schedules[key], default_region)]
            # The tick prices no task of unknown size: neither does its prediction.
            service_prices[key] = priced_as_the_tick(base, launch, sized=key in sized)
        sims = (
            simulate(
                docs,
                first,
                last,
                prices=prices,
                service_prices=service_prices,
                default_region=default_region,
                services=[s.key for s in schedules],
                observed_tasks=tasks,
                sizes=dict(facts.sizes) if facts else {},
            )
            if schedules
            else []
        )
    except PricingError as exc:
        return None, f"no prediction: {exc}", []
    except AWS_ERRORS as exc:
        return None, f"no prediction: cannot read the services from ECS: {exc}", []
    note = protected_text(protected)
    return _predicted(sims), None, [note] if note else []


def priced_as_the_tick(on_demand: Prices, launch: Launch, *, sized: bool = True) -> Prices:
    """``on_demand`` as the tick's metrics price a service (``engine.savings``): its Fargate
    share on demand, its Fargate Spot share at the table's discount, EC2 or external capacity
    (and a task of unknown size) not at all, counted in hours only."""
    if not launch.priced or not sized:
        why = "task size unknown" if launch.priced else "EC2 or external capacity"
        return replace(on_demand, vcpu_hour=0.0, gb_hour=0.0, source=f"{why}: hours only")
    if not launch.spot:
        return on_demand
    spot = price_for(
        on_demand.region, on_demand.architecture, spot=True, spot_discount=on_demand.spot_discount
    )
    return replace(
        on_demand,
        vcpu_hour=launch.fargate * on_demand.vcpu_hour + launch.spot * spot.vcpu_hour,
        gb_hour=launch.fargate * on_demand.gb_hour + launch.spot * spot.gb_hour,
        spot=launch.fargate == 0,
        source=f"{on_demand.source}, {launch.spot:.0%} on Fargate Spot",
    )


def _baseline_counts(clients: Any, settings: Settings, keys: Sequence[str]) -> dict[str, int]:
    """A stopped service's tasks when running: its baseline's desired count (ECS says 0)."""
    found = StateStore(clients, settings.state_table).read_baselines(keys).found
    return {key: b.desired_count for key, b in found.items() if b.desired_count > 0}


def _predicted(sims: Sequence[ServiceSimulation]) -> Predicted:
    summary = totals(sims)
    task_hours = sum(max(0, s.tasks_running - s.tasks_stopped) * s.stopped_hours for s in sims)
    return Predicted(
        task_hours=task_hours,
        savings=summary.saved,
        services=summary.services,
        prices=tuple(sorted({s.prices.describe() for s in sims})),
    )
