"""The keep-awake run: requests that reach a woken service extend its wake (imperative shell).

The wake function's second entry: EventBridge invokes it every few minutes (the Terraform
variable ``wake_keep_minutes``, ``infra/wake.tf``) with ``{"teiji": "keep-awake"}``. One run:

1. Query the config table's overrides (every page) and keep the active wake overrides
   (id ``wake``, ``created_by`` ``wake``); nothing else is ever written.
2. For each, read the service's schedule as a request would (``engine.wake_handler``: its
   document, profile and calendars, or its ``teiji:profile`` tag; the override items are the
   ones just listed): the wake is kept only while its schedule still says
   ``wake.on_request`` (its ``keep_for``), is managed, inside the allow-list and not
   protected. The override item listed is the version the write is conditional on.
3. DescribeServices (10 a call, per cluster): the service's target groups (its
   ``loadBalancers``). With each load balancer of ``TEIJI_WAKE_TARGET_GROUPS`` they name the
   ``RequestCount`` series to read (a target group serves one load balancer: the other pairs
   have no data and cost nothing but their place in the call).
4. GetMetricData, one-minute sums, 500 queries a call, every page (``engine.aws.cloudwatch``).
   An answer that cannot be read, or that is cut short, fails the whole read: nothing is
   extended and the run says so in its log (never shortened either: the wakes end as written).
5. ``engine.wake_keep`` plans each end; each extension is written on condition that the item
   is still the version read (its ``teiji_hash``), so of two runs racing one writes, and a
   person who cancelled or edited the wake meanwhile wins.

A wake whose service cannot be read is left as it is (and logged); the others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.wake_keep import (
    METRIC,
    NAMESPACE,
    PERIOD_S,
    KeepPlan,
    dimensions,
    is_ours,
    latest_request,
    plan_keep,
    wake_start,
    window,
)
from engine.wake_override import WAKE_CREATOR, WAKE_ID, WakeWrite
from schemas.keys import split_override_sk

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from engine.config import Settings
    from schemas.documents import Override

KEEP_EVENT = {"teiji": "keep-awake"}


def is_keep_event(event: Any) -> bool:
    """The keep-awake schedule's event (its constant input), not a load balancer's request."""
    return isinstance(event, Mapping) and event.get("teiji") == KEEP_EVENT["teiji"]


@dataclass
class KeepReport:
    """What one run did: wakes seen, series read, and per service what happened."""

    at: datetime
    wakes: int = 0
    series: int = 0
    read_failed: str | None = None
    outcomes: dict[str, str] = field(default_factory=dict)  # service key -> what happened
    extended: dict[str, str] = field(default_factory=dict)  # service key -> new end

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "wakes": self.wakes,
            "series": self.series,
            "read_failed": self.read_failed,
            "outcomes": dict(sorted(self.outcomes.items())),
            "extended": dict(sorted(self.extended.items())),
        }


@dataclass
class _Wake:
    override: Override
    keep_for: timedelta
    item: Mapping[str, Any]
    groups: list[str] = field(default_factory=list)
    query_ids: list[str] = field(default_factory=list)


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point of the keep-awake schedule."""
    from engine.config import Settings, SettingsError
    from engine.handler import _get_clients
    from engine.logs import bind_request_id, log_event, setup_logging

    bind_request_id(getattr(context, "aws_request_id", None))
    try:
        settings = Settings.from_env()
    except SettingsError as err:
        setup_logging("INFO")
        log_event("the settings cannot be read; nothing done", level=logging.ERROR, error=str(err))
        return {"read_failed": "settings"}
    setup_logging(settings.log_level)
    clients = _get_clients(settings.role_name, settings.access.external_id_parameter)
    return keep_awake(clients, settings, at=datetime.now(UTC)).as_json()


def keep_awake(clients: Clients, settings: Settings, *, at: datetime) -> KeepReport:
    """One run (see the module); never raises for AWS's answers (they are logged)."""
    from engine.aws.errors import AWS_ERRORS, error_text
    from engine.logs import log_event

    started = time.monotonic()
    report = KeepReport(at)
    try:
        _run(clients, settings, at, report)
    except AWS_ERRORS as exc:  # listing the overrides: nothing was read, nothing is written
        report.read_failed = f"the overrides cannot be read: {error_text(exc)}"
    log_event(
        "keep-awake run",
        level=logging.ERROR if report.read_failed else logging.INFO,
        took_ms=round((time.monotonic() - started) * 1000, 1),
        **report.as_json(),
    )
    return report


def _run(clients: Clients, settings: Settings, at: datetime, report: KeepReport) -> None:
    from engine.store import query_items

    if not settings.wake_target_groups:
        return
    items = query_items(clients, settings.config_table, "override")
    wakes = _active_wakes(items, at)
    report.wakes = len(wakes)
    if not wakes:
        return
    kept: dict[str, _Wake] = {}
    for key in sorted(wakes):
        found = _checked(clients, settings, key, at, report, items)
        if found is not None:
            kept[key] = found
    _target_groups(clients, kept, report)
    if not kept:
        return
    span = window(
        [w.override for w in kept.values()],
        now=at,
        keep_for={k: w.keep_for for k, w in kept.items()},
    )
    if span is None:
        for key in kept:
            report.outcomes[key] = "none"
        return
    counts = _read_counts(clients, settings, kept, span, report)
    if counts is None:
        for key in kept:
            report.outcomes[key] = "not read"
        return
    for key, wake in kept.items():
        latest = latest_request(
            [counts[q] for q in wake.query_ids], since=wake_start(wake.override), now=at
        )
        plan = plan_keep(
            wake.override, latest, now=at, keep_for=wake.keep_for, cap=settings.max_override
        )
        _write(clients, settings, key, wake, plan, report)


def _active_wakes(items: Sequence[Mapping[str, Any]], at: datetime) -> list[str]:
    """The service keys whose wake item is an active wake of the wake function's (an item
    that is no valid override is not one: the tick reports it)."""
    from engine.store import document_from_item
    from schemas.documents import Override
    from schemas.validation import parse_document

    keys: list[str] = []
    for index, item in enumerate(items, 1):
        key, oid = split_override_sk(str(item.get("sk", "")))
        if oid != WAKE_ID or item.get("created_by") != WAKE_CREATOR:
            continue
        try:
            raw = document_from_item(item)
        except ValueError:
            continue
        parsed = parse_document(raw, source="config table", index=index)
        if isinstance(parsed, Override) and is_ours(parsed) and parsed.active_at(at):
            keys.append(key)
    return keys


def _checked(
    clients: Clients,
    settings: Settings,
    key: str,
    at: datetime,
    report: KeepReport,
    overrides: Sequence[Mapping[str, Any]],
) -> _Wake | None:
    """The wake of ``key`` as listed, when it may still be kept; None (and why) if not."""
    from engine.access import outside_allow_list
    from engine.aws.errors import AWS_ERRORS, error_text
    from engine.config import parse_duration
    from engine.plan import is_protected
    from engine.wake_handler import _read_service

    try:
        read = _read_service(clients, settings, key, at, overrides)
    except AWS_ERRORS as exc:
        report.outcomes[key] = f"not read: {error_text(exc)}"
        return None
    schedule = read.loaded.documents.schedules.get(key)
    item = read.override_items.get(WAKE_ID)
    override = next(
        (o for o in read.loaded.documents.overrides if o.key == key and o.id == WAKE_ID), None
    )
    if override is None or item is None or not is_ours(override) or not override.active_at(at):
        report.outcomes[key] = "ended or changed meanwhile"
        return None
    if schedule is None or schedule.wake is None or not schedule.wake.on_request:
        report.outcomes[key] = "its schedule no longer asks for wake on request"
        return None
    if (
        schedule.mode == "unmanaged"
        or outside_allow_list(schedule, settings.access, clients.region)
        or is_protected(schedule, settings.protected)
    ):
        report.outcomes[key] = "outside what this deployment may change"
        return None
    return _Wake(override, parse_duration(schedule.wake.keep_for), item)


def _target_groups(clients: Clients, kept: dict[str, _Wake], report: KeepReport) -> None:
    """Each kept wake's target groups, from DescribeServices (10 a call per cluster); a
    service that is gone, or has none, is dropped from ``kept``."""
    from engine.aws import ecs
    from engine.aws.errors import AWS_ERRORS, error_text
    from schemas.keys import ServiceKey

    by_cluster: dict[tuple[str | None, str | None, str], list[str]] = {}
    for key in kept:
        parsed = ServiceKey.parse(key)
        by_cluster.setdefault((parsed.account, parsed.region, parsed.cluster), []).append(key)
    for (account, region, cluster), keys in by_cluster.items():
        names = {ServiceKey.parse(k).service: k for k in keys}
        try:
            lookup = ecs.describe_services(clients.ecs(account, region), cluster, list(names))
        except AWS_ERRORS as exc:
            for key in keys:
                report.outcomes[key] = f"not read: {error_text(exc)}"
                del kept[key]
            continue
        for name, key in names.items():
            entry = lookup.found.get(name)
            groups = _groups_of(entry) if entry is not None else []
            if not groups:
                report.outcomes[key] = "no service or no target group"
                del kept[key]
            else:
                kept[key].groups = groups


def _groups_of(entry: Mapping[str, Any]) -> list[str]:
    balancers = entry.get("loadBalancers")
    if not isinstance(balancers, list):
        return []
    groups = [b.get("targetGroupArn") for b in balancers if isinstance(b, Mapping)]
    return list(dict.fromkeys(g for g in groups if isinstance(g, str) and g))


def _read_counts(
    clients: Clients,
    settings: Settings,
    kept: dict[str, _Wake],
    span: tuple[datetime, datetime],
    report: KeepReport,
) -> dict[str, dict[datetime, float]] | None:
    """Every series' one-minute sums; None (and why, in ``report``) when the read failed."""
    from engine.aws.cloudwatch import MetricQuery, metric_data
    from engine.aws.errors import AWS_ERRORS, error_text

    queries: list[MetricQuery] = []
    for wake in kept.values():
        for group in wake.groups:
            for balancer, _ in settings.wake_target_groups:
                dims = dimensions(balancer, group)
                if dims is None:
                    continue
                query_id = f"q{len(queries)}"
                queries.append(MetricQuery(query_id, NAMESPACE, METRIC, dims, "Sum", PERIOD_S))
                wake.query_ids.append(query_id)
    report.series = len(queries)
    if not queries:
        return {}
    try:
        return metric_data(clients.cloudwatch(), queries, span[0], span[1])
    except AWS_ERRORS as exc:
        report.read_failed = f"the request counts cannot be read: {error_text(exc)}"
        return None


def _write(
    clients: Clients,
    settings: Settings,
    key: str,
    wake: _Wake,
    plan: KeepPlan,
    report: KeepReport,
) -> None:
    from engine.aws.errors import AWS_ERRORS, error_text
    from engine.wake_handler import _write as write_wake

    if plan.kind != "extend" or plan.override is None:
        report.outcomes[key] = plan.kind
        return
    if settings.dry_run:
        report.outcomes[key] = "would extend (dry run)"
        return
    try:
        wrote = write_wake(clients, settings, WakeWrite("extend", plan.override), wake.item)
    except AWS_ERRORS as exc:
        report.outcomes[key] = f"not written: {error_text(exc)}"
        return
    if wrote is None:
        report.outcomes[key] = "changed meanwhile; left as it is"
        return
    report.outcomes[key] = "extended (to the cap)" if plan.capped else "extended"
    report.extended[key] = plan.override.until.isoformat()
