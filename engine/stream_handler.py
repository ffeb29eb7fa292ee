"""The edits function: DynamoDB Streams records of the config table, converged in seconds.

The same zip as the tick, its own function behind an event source mapping on the config
table's stream (``infra/streams.tf``; entry point ``engine.handler.stream_handler``, which calls
``handler`` here). For each batch:

1. ``engine.edits`` reads the records: the edits of documents, and the records skipped (cut,
   forged, of another kind, TTL deletions), each logged with its reason and never retried.
2. The documents are read from the table (strongly consistent): which schedules exist now and
   which calendars they list, so a calendar edit reaches the services that list it, and a
   service whose schedule is gone is left as it is (no longer managed; its baseline is kept).
3. The touched services with a schedule converge through ``run_tick(services=...)``, under the
   tick lease: the scheduled tick and this function never act on one service at once. In
   fan-out mode (``TEIJI_FANOUT_QUEUE_URL`` set) they converge scope by scope, each (account,
   region) under that scope's own lease (``run_tick(services=..., scope=...)``), the lease its
   fan-out worker takes: a worker and this function never act on one service at once either,
   and a worker of another scope holds nothing up.
4. Events go out for those services only (Service Stopped/Started/..., Service Failed), and
   ``Document Invalid`` for the edited documents and the touched services' documents; an
   invalid document leaves its service as it was.

When another tick (or worker) holds the lease, the function waits for it (``LEASE_WAIT_S`` at
most over the whole batch, polling the lease record) and then reports the edits of the services
it could not act on as ``batchItemFailures`` so that the event source mapping delivers them
again (up to its maximum retry attempts, then the on-failure queue gets the batch's position).
Nothing is lost either way: the tick that held the lease read the documents after taking it,
and the next scheduled tick reads them all.

The function holds the lease as ``edits:<request>``: a scheduled tick (or a fan-out worker)
that finds that holder waits for it (``engine.handler.EDITS_LEASE_WAIT_S``) instead of leaving
its shard (or its scope) to the next quarter hour.

A service that fails to converge fails no record: ``Service Failed`` says so, and the
scheduled tick tries again within 15 minutes; retrying the record would hold back every later
edit of the stream shard for the same failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.edits import (
    BadBatchError,
    Batch,
    Edit,
    Touched,
    edited_problems,
    failures,
    names_used,
    read_batch,
    touched,
)

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from engine.config import Settings
    from engine.observe import Scope
    from engine.report import TickReport

# How long one invocation waits for another tick's lease before the records go back to the
# stream, and how often it looks. The function's timeout (infra/streams.tf) leaves room for it.
LEASE_WAIT_S = 60.0
LEASE_POLL_S = 1.0
# Stop waiting this long before the function's own deadline.
DEADLINE_MARGIN_S = 45.0


@dataclass
class EditsOutcome:
    """What one batch did: the records to deliver again, and what happened to the rest."""

    failures: list[str] = field(default_factory=list)
    converged: list[str] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)
    skipped: int = 0
    lease: str | None = None
    report: TickReport | None = None

    def response(self) -> dict[str, Any]:
        """The partial batch response the event source mapping reads."""
        return {"batchItemFailures": [{"itemIdentifier": s} for s in self.failures]}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point of the event source mapping (``ReportBatchItemFailures``)."""
    from engine.config import Settings
    from engine.documents import warm_reuse
    from engine.handler import EDITS_HOLDER, _deadline, _get_clients  # the tick's, one cache
    from engine.lease import holder_id
    from engine.logs import bind_request_id, log_event, setup_logging

    settings = Settings.from_env()
    setup_logging(settings.log_level)
    request_id = getattr(context, "aws_request_id", None)
    bind_request_id(request_id)  # on every line of this batch, as on the tick's
    try:
        batch = read_batch(event)
    except BadBatchError as err:
        # Delivering it again would fail the same way: say so and let the stream go on.
        log_event(
            "the event is not a stream batch; nothing done", level=logging.ERROR, error=str(err)
        )
        return EditsOutcome().response()
    clients = _get_clients(settings.role_name, settings.access.external_id_parameter)
    with warm_reuse():
        outcome = apply_batch(
            clients,
            settings,
            batch,
            at=datetime.now(UTC),
            holder=EDITS_HOLDER + holder_id(request_id if isinstance(request_id, str) else None),
            deadline=_deadline(context),
        )
    return outcome.response()


def apply_batch(
    clients: Clients,
    settings: Settings,
    batch: Batch,
    *,
    at: datetime,
    holder: str | None = None,
    deadline: float | None = None,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    lease_wait_s: float = LEASE_WAIT_S,
) -> EditsOutcome:
    """Converge what ``batch`` touches (see the module); never raises for AWS's answers."""
    from engine.aws.errors import AWS_ERRORS, error_text
    from engine.logs import log_event

    outcome = EditsOutcome(skipped=len(batch.skipped))
    for skipped in batch.skipped:
        log_event("stream record skipped", level=logging.WARNING, **skipped.as_json())
    if not batch.edits:
        return outcome
    try:
        schedules, problems = _read_documents(clients, settings, at, batch.edits)
    except AWS_ERRORS as exc:
        log_event(
            "cannot read the documents; the edits will be delivered again",
            level=logging.ERROR,
            table=settings.config_table,
            error=error_text(exc),
        )
        outcome.failures = [e.sequence for e in batch.edits if e.sequence is not None]
        return outcome
    touch = touched(batch.edits, schedules)
    outcome.unmanaged = sorted(touch.unmanaged)
    if touch.unmanaged:
        log_event(
            "no schedule now: left exactly as it is, its saved baseline kept",
            services=outcome.unmanaged[:50],
            more=max(0, len(outcome.unmanaged) - 50),
        )
    report: TickReport | None = None
    not_done: set[str] = set()
    if touch.managed:
        report, not_done = _converge(
            clients, settings, touch, at, holder, deadline, wall, sleep, lease_wait_s
        )
        outcome.lease = report.lease if report is not None else "not taken"
        if report is not None and report.lease not in ("held", "not taken"):
            # Read under the lease: newer than the read above.
            outcome.converged = [s.key for s in report.services if s.key not in not_done]
            problems = report.invalid_documents
    outcome.report = report
    _publish(clients, settings, batch.edits, touch, report, problems, at)
    outcome.failures = failures(touch.by_edit, not_done)
    log_event(
        "edits done",
        edits=len(batch.edits),
        skipped=outcome.skipped,
        converged=len(outcome.converged),
        unmanaged=len(outcome.unmanaged),
        delivered_again=len(outcome.failures),
        lease=outcome.lease,
    )
    return outcome


def _read_documents(
    clients: Clients, settings: Settings, at: datetime, edits: Sequence[Edit] = ()
) -> tuple[dict[str, frozenset[str]], list[dict[str, str]]]:
    """The schedules stored now (key -> the names in its holidays) and every document problem,
    read and validated as the tick reads them.

    When a profile or a calendar was edited and opt-in by tag is on, the services their
    ``teiji:profile`` tag puts under a profile count too (found as the tick finds them): they
    have no document to be found by, and the edit reaches them all the same."""
    from engine.store import KINDS, ConfigStore
    from schemas.validation import growth_cap

    store = ConfigStore(clients, settings.config_table)
    items = [item for kind in KINDS for item in store.query_kind(kind)]
    loaded = store.validate_items(
        items,
        now=at,
        max_override=settings.max_override,
        default_timezone=settings.default_timezone,
        checks=(growth_cap(settings.access.max_desired),),
    )
    profiles = {str(i.get("sk", "")): i for i in items if i.get("pk") == "profile"}
    schedules = {
        str(item.get("sk", "")): names_used(item, profiles)
        for item in items
        if item.get("pk") == "schedule"
    }
    if settings.access.clusters and any(e.kind in ("profile", "calendar") for e in edits):
        from engine.optin import discover

        found = discover(
            clients,
            settings.access,
            loaded.documents,
            {*schedules, *loaded.problem_keys},
            default_timezone=settings.default_timezone,
        )
        for key, tagged in found.schedules.items():
            schedules[key] = names_used({"profile": tagged.profile}, profiles)
    problems = [
        {"source": p.source, "document": p.document, "field": p.path, "message": p.message}
        for p in loaded.problems
    ]
    return schedules, problems


@dataclass(frozen=True)
class _Run:
    """What every convergence of one batch shares: its clients and settings, its instant, who
    it is in the lease, and until when it may wait for a lease (wall epoch seconds)."""

    clients: Clients
    settings: Settings
    at: datetime
    holder: str | None
    deadline: float | None
    wall: Callable[[], float]
    sleep: Callable[[float], None]
    started: float
    until: float
    lease_wait_s: float


def _converge(
    clients: Clients,
    settings: Settings,
    touch: Touched,
    at: datetime,
    holder: str | None,
    deadline: float | None,
    wall: Callable[[], float],
    sleep: Callable[[float], None],
    lease_wait_s: float,
) -> tuple[TickReport | None, set[str]]:
    """Run the tick for the managed services, waiting a bounded time for a held lease; the
    report and the services it could not act on.

    In fan-out mode (``TEIJI_FANOUT_QUEUE_URL``) nobody ticks under the ticks' lease: the
    workers converge each (account, region) under that scope's own lease, so the services are
    converged scope by scope under those leases, one wait shared by all of them."""
    started = wall()
    until = started + lease_wait_s
    if deadline is not None:
        until = min(until, deadline - DEADLINE_MARGIN_S)
    # Events are sent below, for the edited documents only (a tick would send every problem).
    quiet = replace(settings, event_bus=None)
    run = _Run(clients, quiet, at, holder, deadline, wall, sleep, started, until, lease_wait_s)
    if not settings.fanout_queue_url:
        return _converge_under(run, None, sorted(touch.managed))
    reports: list[TickReport] = []
    not_done: set[str] = set()
    for scope, keys in _by_scope(touch.managed):
        report, missed = _converge_under(run, scope, keys)
        not_done |= missed
        if report is not None:
            reports.append(report)
    return _merged(reports), not_done


def _by_scope(keys: Collection[str]) -> list[tuple[Scope, list[str]]]:
    """The keys by (account, region) as the fan-out's orchestrator groups them, in scope order.
    A key that names no scope (a hand-written item) has no worker and no lease: it is left
    out, and ``teiji validate`` names it."""
    from schemas.keys import ServiceKey

    groups: dict[Scope, list[str]] = {}
    for key in sorted(keys):
        try:
            parsed = ServiceKey.parse(key)
        except ValueError:
            continue
        groups.setdefault((parsed.account, parsed.region), []).append(key)
    return sorted(groups.items(), key=lambda group: (group[0][0] or "", group[0][1] or ""))


def _merged(reports: Sequence[TickReport]) -> TickReport | None:
    """One report over the scopes' runs: their services, the documents as the last run read
    them, and the lease as ``apply_batch`` reads it ("held" or "not taken" only when no run
    acted, "lost" when one lost its lease)."""
    if not reports:
        return None
    acted = [r for r in reports if r.lease not in ("held", "not taken")]
    if not acted:
        return reports[0]
    merged = replace(acted[-1], services=[s for r in acted for s in r.services])
    merged.problems = [p for r in acted for p in r.problems]
    merged.lease = "lost" if any(r.lease == "lost" for r in acted) else acted[-1].lease
    merged.api_calls = sum(r.api_calls for r in reports)
    merged.throttle_errors = sum(r.throttle_errors for r in reports)
    merged.duration_s = sum(r.duration_s for r in reports)
    return merged


def _converge_under(
    run: _Run, scope: Scope | None, keys: list[str]
) -> tuple[TickReport | None, set[str]]:
    """Converge ``keys`` under the ticks' lease (``scope`` None) or ``scope``'s, waiting for it
    until ``run.until``; the report and the services it could not act on."""
    from engine.aws.errors import error_text
    from engine.logs import log_event
    from engine.tick import TickError, run_tick

    settings, wall = run.settings, run.wall
    while True:
        if not settings.dry_run:
            _wait_for_lease(run, scope, keys)
        try:
            report = run_tick(
                run.clients,
                settings,
                at=run.at + timedelta(seconds=wall() - run.started),  # decided when it acts
                dry_run=settings.dry_run,
                services=keys,
                scope=scope,
                holder=run.holder,
                deadline=run.deadline,
            )
        except TickError as exc:
            log_event("the edits could not be acted on", level=logging.ERROR, error=error_text(exc))
            return None, set(keys)
        if report.lease != "held":
            break
        if wall() >= run.until:
            log_event(
                "another tick still holds the lease; the edits will be delivered again",
                level=logging.WARNING,
                waited_s=round(run.lease_wait_s, 1),
                lease=report.lease_name,
            )
            return report, set(keys)
        run.sleep(LEASE_POLL_S)  # taken between the look and the try: look again in a while
    if report.lease == "not taken":
        return report, set(keys)
    not_done = {s.key for s in report.services if s.outcome == "skipped" and s.error is not None}
    return report, not_done


def _wait_for_lease(run: _Run, scope: Scope | None, keys: Sequence[str]) -> None:
    """Poll the lease record until no other tick holds a slot these services need, or until
    ``run.until``; reading costs one consistent Query, and nothing is written or logged per
    poll. ``scope``: that scope's record (one slot), as the fan-out's worker takes it."""
    from engine.fanout import scope_id
    from engine.lease import (
        LEASE_ERRORS,
        LEASE_PK,
        Blocked,
        LeaseTable,
        cover_for,
        describe,
        scope_lease_pk,
        take,
    )
    from engine.logs import log_event

    pk = LEASE_PK if scope is None else scope_lease_pk(scope_id(scope))
    table = LeaseTable(run.clients, run.settings.state_table, sleep=run.sleep, pk=pk)
    told = False
    while True:
        try:
            snapshot = table.read()
        except LEASE_ERRORS:
            return  # the tick's own lease call says what is wrong
        if scope is not None:
            cover = cover_for(None, 1, None)
        else:
            count = snapshot.record.shards if snapshot.record is not None else run.settings.shards
            cover = cover_for(None, count, keys)
        now = run.wall()
        held = take(snapshot, cover, "-", now, 1.0, may_switch=False)
        if not isinstance(held, Blocked) or now + LEASE_POLL_S > run.until:
            return
        if not told:
            if scope is None:
                log_event("waiting for the tick's lease", lease=describe(held.name, held.slot, now))
            else:
                log_event("waiting for the scope's lease", lease=describe(pk, held.slot, now))
            told = True
        run.sleep(LEASE_POLL_S)


def _publish(
    clients: Clients,
    settings: Settings,
    edits: Sequence[Edit],
    touch: Touched,
    report: TickReport | None,
    problems: Sequence[Mapping[str, Any]],
    at: datetime,
) -> None:
    """The events of this batch: its services' and its documents' problems, nothing else."""
    from engine.report import TickReport
    from engine.tick import publish_events

    services: Collection[str] = touch.managed | touch.unmanaged
    mine = [dict(p) for p in edited_problems(problems, edits, services)]
    if report is None:
        base = TickReport(at=at, dry_run=settings.dry_run, lease="not taken")
    else:
        base = report
    # No "Tick Failed" for problems of documents nobody edited: the tick reports those.
    events = replace(base, invalid_documents=mine, problems=[])
    publish_events(clients, settings.event_bus, events)
    if report is not None:
        report.events_sent, report.events_failed = events.events_sent, events.events_failed
