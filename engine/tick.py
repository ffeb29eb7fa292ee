"""One run of teiji: lease, load, decide, observe, plan, apply, check targets, report.

Failures are isolated per service: an invalid document, a missing service, a refused or
failed write fails that service only; the others go on. An account whose role cannot be
assumed fails that account's services only. The report says ``failed`` when any service
failed so the Lambda ends in error and its alarm fires.

Scale: the (account, region) groups are worked in parallel (AWS throttles per account and
Region) and the services of one group ``settings.concurrency`` at a time, every request paced
by a ``Pacer`` so that it stays inside AWS's token buckets instead of being throttled. Time
(pacing, back-off, the lease deadline, the duration) comes from one injectable ``Clock``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from engine.access import admit
from engine.aws.bucket import PacingConfigError
from engine.aws.clock import Clock, RealClock
from engine.aws.errors import AWS_ERRORS, error_text
from engine.aws.events import Published, put_events
from engine.aws.lanes import run_lanes
from engine.aws.pacing import Pacer
from engine.config import Settings
from engine.converge import Acting
from engine.events import entries, events_for
from engine.lease import (
    LEASE_ERRORS,
    LEASE_PK,
    Blocked,
    CountRefused,
    Cover,
    HeldLease,
    LeaseTable,
    Snapshot,
    acquire,
    check_shard,
    cover_for,
    describe,
    holder_id,
    scope_lease_pk,
    shard_count,
    utc,
)
from engine.logs import log_event, log_service, log_tick
from engine.metrics import log_metrics
from engine.observe import Scope
from engine.phases import (
    EarlyReads,
    converge_all,
    decide,
    leave_unmanaged,
    observe_services,
    opt_in,
    reach_accounts,
    select,
)
from engine.report import Phase, TickReport
from engine.sizing import with_task_sizes
from engine.store import ConfigStore, LoadedConfig, StateStore, batch_get
from engine.wake_store import SavedRuleIndex
from schemas.documents import Schedule
from schemas.keys import ServiceKey, keys_wanted
from schemas.validation import growth_cap

if TYPE_CHECKING:
    from engine.aws.clients import Clients

_T = TypeVar("_T")

# Deciding may use this much of the tick's wall-clock time at most (and no more than half of
# what is left before its deadline): the services not decided by then are reported, not lost.
DECIDE_BUDGET_S = 60.0
# Stop starting services this long before the tick's deadline (the Lambda's timeout).
DEADLINE_MARGIN_S = 30.0


class ScopeHooks(Protocol):
    """What a fan-out worker does around one scope's tick (``engine.fanout_run.work``), each
    beside one of the tick's own round trips instead of one more of its own."""

    def instant(self) -> datetime | None:
        """Beside the documents' read, once the lease is held: the instant to decide at, or
        None when the scope is not to be worked (nothing is done)."""

    def finish(self, report: TickReport, release: dict[str, Any] | None) -> bool:
        """The tick's report, whole, once the work is done and the lease is still held;
        ``release`` (None: none can be) is the lease's release as one action of a DynamoDB
        transaction, to write with the worker's own. True: it was written (the lease is
        given back); False: the tick gives it back itself."""


class TickError(RuntimeError):
    """The tick could not run at all (a table is missing or unreadable); nothing was done."""


def wall_clock(pacing: Clock) -> Callable[[], float]:
    """Epoch seconds that advance with ``pacing``: ``time.time`` for the real clock.

    On an emulated clock the lease deadline must run on emulated time too, or a tick that
    takes minutes of emulated time would never see its lease run out.
    """
    if isinstance(pacing, RealClock):
        return time.time
    origin_wall, origin = time.time(), pacing.monotonic()
    return lambda: origin_wall + (pacing.monotonic() - origin)


def run_tick(
    clients: Clients,
    settings: Settings,
    *,
    at: datetime,
    dry_run: bool,
    services: Collection[str] | None = None,
    shard: tuple[int, int] | None = None,
    scope: Scope | None = None,
    clock: Callable[[], float] | None = None,
    pacing_clock: Clock | None = None,
    pacer: Pacer | None = None,
    holder: str | None = None,
    deadline: float | None = None,
    decide_budget_s: float = DECIDE_BUDGET_S,
    documents: Callable[[datetime], LoadedConfig] | None = None,
    schedule_keys: Collection[str] | None = None,
    hooks: ScopeHooks | None = None,
) -> TickReport:
    """Converge every managed service (or the named ones, or one shard) to its decision at ``at``.

    Leases (``engine.lease``): ``shard`` takes that shard's slot and must name the deployment's
    shard count (recorded in the state table); without one the tick takes the slot of every
    shard, by the recorded count, holding a service it will act on. When any is held it does
    nothing (lease "held"); a count other than the recorded one is refused ("not taken").
    ``holder`` names the tick in the lease (default: host and pid). ``deadline`` (wall epoch
    seconds, the Lambda's timeout) is when it must have stopped: it starts no service within
    ``DEADLINE_MARGIN_S`` of it and decides for ``decide_budget_s`` at most.

    ``at`` decides. ``pacing_clock`` (default: the pacer's, else the real clock) paces
    requests, waits between retries and measures the duration; ``clock`` is the wall clock
    of the lease in epoch seconds (default: one that moves with ``pacing_clock``). ``pacer``
    (default: the documented rates and any ``TEIJI_RATE_*`` settings, 1/n of each for one of
    n shards) is installed on ``clients`` for the tick only. A dry run writes nothing, not
    even the lease.

    ``scope`` (a fan-out worker, ``engine.fanout``): only the services of that (account,
    region), under that scope's own lease record instead of the ticks' shards, with the whole
    of the scope's AWS buckets; it publishes the services' events and leaves the tick's
    metrics and its document events to the report over all scopes.

    ``documents`` (with ``services``: the wake function) reads the named services' documents
    only, once the lease is taken, instead of the whole table and the tag discovery; it must
    resolve a tagged service's schedule itself.

    ``schedule_keys`` (with ``scope``: a fan-out worker whose work item carries them): the
    schedule documents of the scope, as the orchestrator found them; only those are read
    (by key) instead of every schedule in the table. ``hooks`` (with ``scope``): the worker's
    own reads and writes, beside the tick's (see ``ScopeHooks``); its lease is given back
    beside ``hooks.finish``.
    """
    if scope is not None and shard is not None:
        raise ValueError("a tick covers a scope or a shard, not both")
    if at.utcoffset() is None:
        raise ValueError("the tick instant must carry a UTC offset")
    check_shard(shard)
    pace = pacing_clock or (pacer.clock if pacer is not None else RealClock())
    started = pace.monotonic()
    try:
        # n shards tick at the same time and share each account's AWS buckets.
        share = 1 / shard[1] if shard else 1.0
        pacer = pacer if pacer is not None else Pacer(clock=pace, share=share)
    except PacingConfigError as exc:
        return _refused(at, dry_run, f"configuration: {exc}", started, pace)

    calls_before, throttles_before = pacer.stats.api_calls, pacer.stats.throttle_errors
    with pacer.installed(clients):
        tick = _Tick(
            clients,
            settings,
            pace,
            clock or wall_clock(pace),
            dry_run,
            holder=holder or holder_id(),
            deadline=deadline,
            decide_budget_s=decide_budget_s,
            scope=scope,
            documents=documents if services is not None else None,
            schedule_keys=None if scope is None or schedule_keys is None else tuple(schedule_keys),
            hooks=hooks if scope is not None else None,
        )
        report = tick.run(at, services, shard)
        try:
            report.services.sort(key=lambda service: service.key)
            # After every service is done: events never hold up or fail a convergence.
            if scope is None:
                publish_events(clients, settings.event_bus, report)
            else:
                publish_service_events(clients, settings.event_bus, report)
            report.api_calls = pacer.stats.api_calls - calls_before
            report.throttle_errors = pacer.stats.throttle_errors - throttles_before
            report.duration_s = pace.monotonic() - started
        except BaseException:
            if tick.release_later is not None:
                tick.release_later.release()
            raise
        if tick.release_later is not None and tick.hooks is not None:
            _finish_and_release(tick.hooks, report, tick.release_later)
    for service in report.services:
        log_service(service, dry_run=dry_run)
    if services is None and scope is None:
        # The metrics are the fleet's (or a shard's) quarter hour: a run over named services
        # (the edits function, a hand-made event) covers no interval of its own, and counting
        # one would add the same stopped hours twice.
        log_metrics(
            report,
            interval_h=settings.tick_interval.total_seconds() / 3600,
            per_service=settings.metrics_per_service,
        )
    log_tick(report)  # the last word of the tick
    return report


def _finish_and_release(hooks: ScopeHooks, report: TickReport, lease: HeldLease) -> None:
    """``hooks.finish(report, ...)`` with the lease's release in the same transaction, when it
    can be (one write, and no moment when the lease is free but the outcome not yet written);
    else the lease given back on its own. The lease is given back whatever ``finish`` raises
    (and what it raised is raised here after)."""
    try:
        released = hooks.finish(report, lease.release_action())
    except BaseException:
        lease.release()
        raise
    if released:
        lease.released_with()
    else:
        lease.release()


def publish_service_events(clients: Clients, bus: str | None, report: TickReport) -> None:
    """A scope's events: its services' only. The documents' events and the tick's own are
    published once, over all scopes (``engine.fanout_run``): every worker reads them alike."""
    own = replace(report, problems=[], invalid_documents=[])
    publish_events(clients, bus, own)
    report.events_sent, report.events_failed = own.events_sent, own.events_failed


def publish_events(clients: Clients, bus: str | None, report: TickReport) -> None:
    """Send the tick's events to ``bus`` (none without one, none for a dry run) and count them
    in the report; what did not arrive is logged, and the tick goes on."""
    found = events_for(report)
    if bus is None or not found:
        return
    try:
        published = put_events(clients.events(), entries(found, bus, report))
    except Exception as exc:  # publishing must never fail the tick, whatever went wrong
        published = Published()
        published.refused(len(found), error_text(exc))
    report.events_sent, report.events_failed = published.sent, published.failed
    if published.failed:
        log_event(
            "some events were not published",
            level=logging.WARNING,
            bus=bus,
            failed=published.failed,
            sent=published.sent,
            errors=published.errors,
        )


def _refused(at: datetime, dry_run: bool, problem: str, started: float, pace: Clock) -> TickReport:
    """A tick that cannot start because a setting is wrong: nothing done, the problem told."""
    report = _not_taken(at, dry_run, problem)
    report.duration_s = pace.monotonic() - started
    log_tick(report)
    return report


def _not_taken(at: datetime, dry_run: bool, problem: str) -> TickReport:
    report = TickReport(at=at, dry_run=dry_run, lease="not taken")
    report.problems.append(problem)
    log_event("the tick cannot start; nothing done", level=logging.ERROR, error=problem)
    return report


@dataclass
class _Tick:
    """One tick: its clock, deadline and lease, and the order of its phases."""

    clients: Clients
    settings: Settings
    pace: Clock
    wall: Callable[[], float]
    dry_run: bool
    holder: str
    deadline: float | None = None
    decide_budget_s: float = DECIDE_BUDGET_S
    scope: Scope | None = None
    lease: HeldLease | None = None
    documents: Callable[[datetime], LoadedConfig] | None = None
    schedule_keys: tuple[str, ...] | None = None
    hooks: ScopeHooks | None = None
    release_later: HeldLease | None = None

    def __post_init__(self) -> None:
        self.config = ConfigStore(self.clients, self.settings.config_table)
        self.state = StateStore(
            self.clients, self.settings.state_table, clock=self.wall, sleep=self.pace.sleep
        )
        # Retries of a busy scalable target wait on the tick's clock; on the real clock the
        # adapter's own sleep (which tests replace) does the same.
        self.retry_sleep = None if isinstance(self.pace, RealClock) else self.pace.sleep
        start = self.wall()
        self.decide_until = start + self.decide_budget_s
        if self.deadline is not None:
            self.decide_until = min(self.decide_until, start + (self.deadline - start) / 2)

    # Time and the lease: may it still act, may it still decide --------------------------------
    def may_act(self) -> bool:
        """Asked before each service is started and before every write: true while its lease
        is held (renewed when due) and its deadline is not near."""
        if self.past_deadline():
            return False
        if self.lease is None:  # a dry run holds none and writes nothing anyway
            return True
        self.lease.keep()
        return self.lease.still_held()

    def past_deadline(self) -> bool:
        return self.deadline is not None and self.wall() >= self.deadline - DEADLINE_MARGIN_S

    def may_decide(self) -> bool:
        """Deciding is bounded: past ``decide_until`` the rest is reported, not decided."""
        if self.lease is not None:
            self.lease.keep()
        return self.wall() < self.decide_until

    # The lease protocol -----------------------------------------------------------------------
    def run(
        self, at: datetime, services: Collection[str] | None, shard: tuple[int, int] | None
    ) -> TickReport:
        if self.dry_run:
            report = TickReport(at=at, dry_run=True, lease="not taken (dry run)")
            self._phases(report, services, cover_for(shard, self.settings.shards, None))
            return report

        table = LeaseTable(
            self.clients, self.settings.state_table, sleep=self.pace.sleep, pk=self._lease_pk()
        )
        if self.scope is not None:  # one slot: the scope's own record holds no shards
            # Guess that no record is there (a released scope record is deleted): one
            # conditional write takes it; a wrong guess costs the read it would have made.
            snapshot = Snapshot(None)
            count, may_switch, cover = 1, True, cover_for(None, 1, None)
        else:
            snapshot = self._lease_call(table.read)
            count, may_switch = shard_count(shard, snapshot, self.settings.shards)
            cover = self._cover(at, services, shard, count)
        outcome = self._lease_call(
            lambda: acquire(
                table,
                snapshot,
                cover,
                self.holder,
                self.settings.lease_seconds,
                self.wall,
                may_switch=may_switch,
            )
        )
        if isinstance(outcome, Blocked):
            return self._held(at, outcome)
        if isinstance(outcome, CountRefused):
            return _not_taken(at, False, f"lease: {outcome}")
        self.lease = outcome
        report = TickReport(at=at, dry_run=False, lease="acquired")
        try:
            # On an emulated clock the checkpoints renew it: a thread would sleep in real time.
            with outcome.heartbeat(enabled=isinstance(self.pace, RealClock)):
                self._phases(report, services, cover)
            if outcome.lost:
                report.lease = "lost"
        except BaseException:
            outcome.release()
            raise
        if self.hooks is None:
            outcome.release()
        else:  # given back with the hooks' finish, once the report is whole (run_tick)
            self.release_later = outcome
        return report

    def _lease_pk(self) -> str:
        from engine.fanout import scope_id  # the fan-out's names; only a worker needs them

        return LEASE_PK if self.scope is None else scope_lease_pk(scope_id(self.scope))

    def _lease_call(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except LEASE_ERRORS as exc:
            raise TickError(
                f"cannot take the lease in table {self.settings.state_table}: {error_text(exc)}"
            ) from exc

    def _cover(
        self,
        at: datetime,
        services: Collection[str] | None,
        shard: tuple[int, int] | None,
        count: int,
    ) -> Cover:
        """The shards this tick takes the slots of.

        Given services and no shard, while the services are split over several shards, only
        the documents say which shards hold them (a ``cluster/service`` may have a schedule in
        several accounts): read them once to find out. The tick reads them again once it holds
        the slots, so it never acts on documents older than the last tick that held them.
        """
        if shard is not None or services is None or count == 1:
            return cover_for(shard, count, None)
        loaded = self._load(at)
        keys = set(loaded.documents.schedules) | set(loaded.problem_keys)
        named = keys_wanted(keys, services) or set(services)
        return cover_for(None, count, named)

    def _held(self, at: datetime, blocked: Blocked) -> TickReport:
        report = TickReport(at=at, dry_run=False, lease="held")
        slot = blocked.slot
        report.lease_name = blocked.name if self.scope is None else self._lease_pk()
        report.lease_holder = slot.holder
        report.lease_taken_at = utc(slot.taken_at)
        report.lease_expires_at = utc(slot.expires_at)
        log_event(
            "another tick holds the lease; nothing done",
            lease=describe(blocked.name, slot, self.wall()),
        )
        return report

    def _load(self, at: datetime) -> LoadedConfig:
        try:
            if self.documents is not None:
                return self.documents(at)
            return self.config.load_config(
                now=at,
                max_override=self.settings.max_override,
                default_timezone=self.settings.default_timezone,
                checks=(growth_cap(self.settings.access.max_desired),),
                pace=self.pace,
                schedule_keys=self.schedule_keys,
            )
        except AWS_ERRORS as exc:
            raise TickError(
                f"cannot read the documents in table {self.settings.config_table}: "
                f"{error_text(exc)}"
            ) from exc

    def _load_beside(self, hooks: ScopeHooks) -> tuple[datetime, LoadedConfig] | None:
        """The documents, read beside ``hooks.instant`` (one round trip for both), validated
        at the instant it gives; None when it gives none."""
        items: list[list[dict[str, Any]]] = []
        instants: list[datetime | None] = []

        def read() -> None:
            try:
                items.append(
                    self.config.read_items(pace=self.pace, schedule_keys=self.schedule_keys)
                )
            except AWS_ERRORS as exc:
                raise TickError(
                    f"cannot read the documents in table {self.settings.config_table}: "
                    f"{error_text(exc)}"
                ) from exc

        units = [read, lambda: instants.append(hooks.instant())]
        account = self.scope[0] if self.scope is not None else None
        if account is not None:
            units.append(partial(self._connect_early, account))
        run_lanes(self.pace, [units], workers=len(units))
        at = instants[0]
        if at is None:
            return None
        loaded = self.config.validate_items(
            items[0],
            now=at,
            max_override=self.settings.max_override,
            default_timezone=self.settings.default_timezone,
            checks=(growth_cap(self.settings.access.max_desired),),
        )
        return at, loaded

    def _documents_now(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` have a schedule document now (one BatchGetItem, by key): a worker
        read only the documents its hand-out named."""
        pairs = [("schedule", key) for key in keys]
        found = batch_get(self.clients, self.settings.config_table, pairs, sleep=self.pace.sleep)
        return {str(item.get("sk", "")) for item in found}

    def _connect_early(self, account: str) -> None:
        """A worker of another account's scope assumes its role beside the documents' read;
        a failure is left to the tick's own reach of the account, which reports it."""
        try:
            self.clients.connect(account)
        except Exception as exc:  # reported by reach_accounts, which tries again
            log_event("cannot assume the account's role yet", account=account, error=str(exc)[:200])

    def _in_scope(self, report: TickReport, chosen: list[Schedule]) -> list[Schedule]:
        """A fan-out worker's services: its scope's; what ``select`` settled for other scopes
        (their invalid documents) is left to their own workers."""
        scope = self.scope
        report.services = [s for s in report.services if _scope_of(s.key) == scope]
        return [s for s in chosen if (s.account, s.region) == scope]

    # The phases (engine.phases), each merged into the report ----------------------------------
    def _phases(self, report: TickReport, services: Collection[str] | None, cover: Cover) -> None:
        settings = self.settings
        if self.hooks is not None and not self.dry_run:
            beside = self._load_beside(self.hooks)
            if beside is None:  # the hooks say there is nothing to do
                return
            report.at, loaded = beside
        else:
            loaded = self._load(report.at)
        at = report.at
        early = EarlyReads(self.state)
        if self.documents is None:
            # A fan-out worker discovers its own scope's tagged services, not every scope's.
            scopes = [self.scope] if self.scope is not None else None
            found = opt_in(
                self.clients,
                settings.access,
                loaded,
                settings.default_timezone,
                scopes,
                pace=self.pace,
                early=early,
                documents_of=self._documents_now if self.schedule_keys is not None else None,
            )
            loaded = _merge(report, found)
        report.invalid_documents = [
            {"source": p.source, "document": p.document, "field": p.path, "message": p.message}
            for p in loaded.problems
        ]
        chosen = _merge(report, select(loaded, services, cover, self.config.source))
        if self.scope is not None:
            chosen = self._in_scope(report, chosen)
        report.origins = {s.key: s.origin_detail() for s in chosen if s.profile}
        chosen = _merge(report, admit(chosen, settings.access, self.clients.region))
        decisions = _merge(report, decide(loaded, chosen, at, self.may_decide))
        managed = _merge(report, leave_unmanaged(chosen, decisions))
        reachable = _merge(report, reach_accounts(self.clients, self.pace, managed, decisions))
        observed = _merge(
            report,
            observe_services(
                self.clients,
                self.pace,
                self.state,
                reachable,
                decisions,
                named=[s.key for s in managed],
                workers=settings.concurrency,
                described=loaded.described,
                early=early,
            ),
        )
        if observed is None:
            return
        if not self.dry_run:  # the task sizes for the savings figures (engine.sizing)
            observed = with_task_sizes(
                self.clients, self.pace, observed, decisions, workers=settings.concurrency
            )
        acting = Acting(
            self.clients,
            settings,
            self.state,
            self.dry_run,
            retry_sleep=self.retry_sleep,
            still_leased=None if self.dry_run else self.may_act,
            at=at,
            saved_rules=SavedRuleIndex(self.state).of if settings.wake_target_groups else None,
        )
        converged = _merge(
            report,
            converge_all(
                self.pace,
                acting,
                reachable,
                observed,
                decisions,
                may_act=self.may_act,
                past_deadline=self.past_deadline,
                workers=settings.concurrency,
            ),
        )
        if converged.lease_lost:
            report.lease = "lost"


def _scope_of(key: str) -> Scope | None:
    try:
        parsed = ServiceKey.parse(key)
    except ValueError:
        return None
    return (parsed.account, parsed.region)


def _merge(report: TickReport, phase: Phase[_T]) -> _T:
    """Add what a phase settled to the report; what it hands on."""
    report.services.extend(phase.settled)
    report.problems.extend(phase.problems)
    return phase.value
