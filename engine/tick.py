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
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Literal, TypeVar, cast

from botocore.exceptions import BotoCoreError, ClientError

from engine.access import admit, refuse_growth
from engine.apply import apply_plan
from engine.aws.pacing import Clock, Lane, Pacer, PacingConfigError, RealClock, Unit, run_lanes
from engine.config import Settings
from engine.lease import (
    Blocked,
    CountRefused,
    Cover,
    HeldLease,
    LeaseError,
    LeaseTable,
    Snapshot,
    acquire,
    check_shard,
    cover_for,
    describe,
    holder_id,
    utc,
)
from engine.logs import log_event, log_service, log_tick
from engine.model import Decision, Observation
from engine.observe import (
    ObserveResult,
    ScopeObserver,
    by_scope,
    error_text,
    fail_shared_services,
)
from engine.plan import ServicePlan, plan_service, who_decided
from engine.report import ServiceReport, TickReport
from engine.store import BATCH_GET_LIMIT, ConfigStore, LoadedConfig, StateStore, StoreError
from schemas.documents import Override, Schedule
from schemas.keys import keys_wanted
from schemas.records import Baseline
from schemas.validation import Problem, growth_cap

if TYPE_CHECKING:
    from engine.aws.clients import Clients

_T = TypeVar("_T")

# Deciding may use this much of the tick's wall-clock time at most (and no more than half of
# what is left before its deadline): the services not decided by then are reported, not lost.
DECIDE_BUDGET_S = 60.0
# Stop starting services this long before the tick's deadline (the Lambda's timeout).
DEADLINE_MARGIN_S = 30.0


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
    clock: Callable[[], float] | None = None,
    pacing_clock: Clock | None = None,
    pacer: Pacer | None = None,
    holder: str | None = None,
    deadline: float | None = None,
    decide_budget_s: float = DECIDE_BUDGET_S,
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
    """
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
        )
        report = tick.run(at, services, shard)
    report.api_calls = pacer.stats.api_calls - calls_before
    report.throttle_errors = pacer.stats.throttle_errors - throttles_before
    report.duration_s = pace.monotonic() - started
    report.services.sort(key=lambda service: service.key)
    for service in report.services:
        log_service(service, dry_run=dry_run)
    log_tick(report)
    return report


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
    """One tick's shared state: what every phase and every worker thread uses."""

    clients: Clients
    settings: Settings
    pace: Clock
    wall: Callable[[], float]
    dry_run: bool
    holder: str
    deadline: float | None = None
    decide_budget_s: float = DECIDE_BUDGET_S
    lease: HeldLease | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.config = ConfigStore(self.clients, self.settings.config_table)
        self.state = self._state_store()
        # Retries of a busy scalable target wait on the tick's clock; on the real clock the
        # adapter's own sleep (which tests replace) does the same.
        self.retry_sleep = None if isinstance(self.pace, RealClock) else self.pace.sleep
        self.decide_until = self._decide_until()

    def _state_store(self) -> StateStore:
        return StateStore(
            self.clients, self.settings.state_table, clock=self.wall, sleep=self.pace.sleep
        )

    def _decide_until(self) -> float:
        start = self.wall()
        until = start + self.decide_budget_s
        if self.deadline is not None:
            until = min(until, start + (self.deadline - start) / 2)
        return until

    def _leased(self) -> bool:
        """May this tick still act? Asked before each service is started and before every
        write: while its lease is held (renewed when due) and its deadline is not near."""
        if self._past_deadline():
            return False
        if self.lease is None:  # a dry run holds none and writes nothing anyway
            return True
        self.lease.keep()
        return self.lease.still_held()

    def _past_deadline(self) -> bool:
        return self.deadline is not None and self.wall() >= self.deadline - DEADLINE_MARGIN_S

    def _may_decide(self) -> bool:
        """Deciding is bounded: past ``decide_until`` the rest is reported, not decided."""
        if self.lease is not None:
            self.lease.keep()
        return self.wall() < self.decide_until

    def add(self, report: TickReport, service: ServiceReport) -> None:
        with self._lock:
            report.services.append(service)

    # The lease --------------------------------------------------------------------------------
    def run(
        self, at: datetime, services: Collection[str] | None, shard: tuple[int, int] | None
    ) -> TickReport:
        if self.dry_run:
            report = TickReport(at=at, dry_run=True, lease="not taken (dry run)")
            self._run(report, services, cover_for(shard, self.settings.shards, None))
            return report

        table = LeaseTable(self.clients, self.settings.state_table, sleep=self.pace.sleep)
        snapshot = self._lease_call(table.read)
        count, may_switch = self._count(shard, snapshot)
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
                self._run(report, services, cover)
            if outcome.lost:
                report.lease = "lost"
        finally:
            outcome.release()
        return report

    def _lease_call(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except (ClientError, BotoCoreError, LeaseError) as exc:
            raise TickError(
                f"cannot take the lease in table {self.settings.state_table}: {error_text(exc)}"
            ) from exc

    def _count(self, shard: tuple[int, int] | None, snapshot: Snapshot) -> tuple[int, bool]:
        """The shard count this tick uses, and whether it may move the record to it.

        A tick given a shard uses its count; only the deployment's own (``TEIJI_SHARDS``) may
        replace a recorded other one. A tick given none uses the recorded count.
        """
        if shard is not None:
            return shard[1], shard[1] == self.settings.shards
        if snapshot.record is not None:
            return snapshot.record.shards, False
        return self.settings.shards, False

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
        report.lease_name = blocked.name
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
            return self.config.load_config(
                now=at,
                max_override=self.settings.max_override,
                default_timezone=self.settings.default_timezone,
                checks=(growth_cap(self.settings.access.max_desired),),
            )
        except (ClientError, BotoCoreError) as exc:
            raise TickError(
                f"cannot read the documents in table {self.settings.config_table}: "
                f"{error_text(exc)}"
            ) from exc

    # The phases -------------------------------------------------------------------------------
    def _run(self, report: TickReport, services: Collection[str] | None, cover: Cover) -> None:
        loaded = self._load(report.at)
        schedules, invalid = _select(loaded, services, cover, report, self.config.source)
        schedules = admit(schedules, self.settings.access, self.clients.region, report)
        for key, problems in invalid.items():
            report.services.append(
                ServiceReport(key, "failed", error="; ".join(str(p) for p in problems))
            )

        decisions = _decide(loaded, schedules, report, self._may_decide)
        managed = [
            s for s in schedules if s.key in decisions and decisions[s.key].state != "unmanaged"
        ]
        for schedule in schedules:
            decision = decisions.get(schedule.key)
            if decision is not None and decision.state == "unmanaged":
                report.services.append(
                    ServiceReport(
                        schedule.key, "unmanaged", decision, decided_by=who_decided(decision)
                    )
                )

        reachable = self._reach_accounts(managed, decisions, report)
        observed, baselines = self._observe(
            reachable, decisions, report, named=[s.key for s in managed]
        )
        if baselines is None:
            return
        self._converge_all(reachable, observed, decisions, baselines, report)

    def _reach_accounts(
        self, managed: Sequence[Schedule], decisions: Mapping[str, Decision], report: TickReport
    ) -> list[Schedule]:
        """Assume the role in every other account once, in parallel; fail the unreachable ones.

        Done before the groups fan out so that the two regions of one account never wait for
        each other's AssumeRole, and an unreachable account costs one call, not one per group.
        """
        accounts = sorted({s.account for s in managed if s.account})
        unreachable: dict[str, str] = {}

        def connect(account: str) -> None:
            try:
                self.clients.connect(account)
            except Exception as exc:  # AccountUnreachableError, or anything on the way to it
                with self._lock:
                    unreachable[account] = error_text(exc)

        run_lanes(self.pace, [[partial(connect, account)] for account in accounts], workers=1)
        for schedule in managed:
            if schedule.account in unreachable:
                decision = decisions[schedule.key]
                report.services.append(
                    ServiceReport(
                        schedule.key,
                        "failed",
                        decision,
                        error=unreachable[schedule.account],
                        decided_by=who_decided(decision),
                    )
                )
        return [s for s in managed if s.account not in unreachable]

    def _observe(
        self,
        managed: Sequence[Schedule],
        decisions: Mapping[str, Decision],
        report: TickReport,
        *,
        named: Sequence[str] = (),
    ) -> tuple[ObserveResult, dict[str, Baseline] | None]:
        """Every group's reads and the baselines, all at once; one round trip deep.

        ``named``: every managed key, also those of accounts that could not be reached, so
        that one service under two keys is left alone even when one key failed already."""
        observers = [
            ScopeObserver(self.clients, scope, members)
            for scope, members in by_scope(managed).items()
        ]
        reader = _BaselineReader(self, [s.key for s in managed])
        lanes = [observer.units() for observer in observers]
        lanes.append(reader.units())
        run_lanes(self.pace, lanes, workers=self.settings.concurrency)

        observed = ObserveResult()
        for observer in observers:
            observed.merge(observer.result())
        fail_shared_services(observed, named)
        for key, message in observed.failures.items():
            decision = decisions[key]
            report.services.append(
                ServiceReport(
                    key, "failed", decision, error=message, decided_by=who_decided(decision)
                )
            )
        if reader.error is not None:
            # Without baselines a start cannot restore capacity: act on nothing.
            for key in observed.observations:
                report.services.append(
                    ServiceReport(
                        key,
                        "failed",
                        decisions[key],
                        error=f"cannot read baselines: {reader.error}",
                    )
                )
            return observed, None
        # Services whose baseline is unreadable are failed by _converge, without any write.
        self.state.invalid_baselines = reader.invalid
        return observed, reader.found

    def _converge_all(
        self,
        managed: Sequence[Schedule],
        observed: ObserveResult,
        decisions: Mapping[str, Decision],
        baselines: Mapping[str, Baseline],
        report: TickReport,
    ) -> None:
        """Each group's services ``concurrency`` at a time; the groups in parallel."""
        lanes: list[Lane] = []
        for members in by_scope(managed).values():
            present = [s for s in members if s.key in observed.observations]
            units = self._converge_units(present, observed, decisions, baselines, report)
            lanes.append(Lane(units, size=len(present)))
        run_lanes(self.pace, lanes, workers=self.settings.concurrency)

    def _converge_units(
        self,
        schedules: Sequence[Schedule],
        observed: ObserveResult,
        decisions: Mapping[str, Decision],
        baselines: Mapping[str, Baseline],
        report: TickReport,
    ) -> Iterator[Unit]:
        # A generator: the lane advances it under its lock, so the lease is checked in order,
        # right before each service is handed to a worker.
        for schedule in schedules:
            decision = decisions[schedule.key]
            if not self._leased():
                why = "time" if self._past_deadline() else "its lease"
                if why == "its lease":
                    report.lease = "lost"
                self.add(
                    report,
                    ServiceReport(
                        schedule.key,
                        "skipped",
                        decision,
                        error=f"the tick ran out of {why} before acting on this service",
                    ),
                )
                continue
            observation = observed.observations[schedule.key]
            baseline = baselines.get(schedule.key)
            yield partial(self._converge_one, schedule, decision, observation, baseline, report)

    def _converge_one(
        self,
        schedule: Schedule,
        decision: Decision,
        observation: Observation,
        baseline: Baseline | None,
        report: TickReport,
    ) -> None:
        try:
            service_report = _converge(
                self.clients,
                self.settings,
                self.state,
                schedule,
                decision,
                observation,
                baseline,
                dry_run=self.dry_run,
                retry_sleep=self.retry_sleep,
                still_leased=self._leased if not self.dry_run else None,
            )
        except Exception as exc:  # a defect in one service's handling must not stop the rest
            log_event("unexpected error", level=logging.ERROR, service=schedule.key, exc_info=True)
            service_report = ServiceReport(
                schedule.key, "failed", decision, error=f"internal error: {error_text(exc)}"
            )
        self.add(report, service_report)


class _BaselineReader:
    """The baselines of the managed services: one BatchGetItem unit per 100 keys."""

    def __init__(self, tick: _Tick, keys: Sequence[str]) -> None:
        self.tick = tick
        self.keys = list(dict.fromkeys(keys))
        self.found: dict[str, Baseline] = {}
        self.invalid: dict[str, str] = {}
        self.error: str | None = None
        self._lock = threading.Lock()

    def units(self) -> list[Unit]:
        return [
            partial(self._read, self.keys[start : start + BATCH_GET_LIMIT])
            for start in range(0, len(self.keys), BATCH_GET_LIMIT)
        ]

    def _read(self, keys: Sequence[str]) -> None:
        store = self.tick._state_store()  # its own: a store remembers the invalid baselines
        try:
            found = store.get_baselines(keys)
        except (ClientError, BotoCoreError, StoreError) as exc:
            with self._lock:
                self.error = self.error or error_text(exc)
            return
        with self._lock:
            self.found.update(found)
            self.invalid.update(store.invalid_baselines)


def _select(
    loaded: LoadedConfig,
    services: Collection[str] | None,
    cover: Cover,
    report: TickReport,
    source: str,
) -> tuple[list[Schedule], dict[str, list[Problem]]]:
    """The schedules this run covers, and the services whose documents are invalid."""
    schedules = loaded.documents.schedules
    keys = set(schedules) | set(loaded.problem_keys)
    if services is not None:
        chosen = keys_wanted(keys, services)
        for name in sorted(set(services)):
            if not keys_wanted(keys, [name]):
                report.services.append(
                    ServiceReport(
                        name,
                        "failed",
                        error=f"no schedule document for {name} in {source}",
                    )
                )
        keys = chosen
    outside = {k for k in keys if not cover.holds(k)}
    keys -= outside
    if cover.named:
        # Its schedule was written after the tick chose its leases: acting without the lease
        # of its shard could race that shard's own tick.
        for key in sorted(outside):
            report.services.append(
                ServiceReport(
                    key,
                    "skipped",
                    error="its schedule appeared while the tick was starting; run the tick again",
                )
            )
    for problem in loaded.problems:
        if not _service_problem(problem.document):
            report.problems.append(str(problem))
    invalid = {k: list(loaded.problem_keys[k]) for k in sorted(keys) if k in loaded.problem_keys}
    chosen_schedules = [schedules[k] for k in sorted(keys) if k in schedules and k not in invalid]
    return chosen_schedules, invalid


def _service_problem(document: str) -> bool:
    kind = document.partition(" ")[0]
    return kind in ("schedule", "override")


def _decide(
    loaded: LoadedConfig,
    schedules: Sequence[Schedule],
    report: TickReport,
    may_go_on: Callable[[], bool] = lambda: True,
) -> dict[str, Decision]:
    """Each schedule's decision, one at a time, while ``may_go_on`` (the tick's time for
    deciding; it also renews the lease). The schedules not reached are reported as skipped,
    so the tick acts on what it decided instead of running out of its lease."""
    from engine.decide import Decider  # the decision engine loads holiday data: import late

    decider = Decider(loaded.documents.calendars)
    overrides: dict[str, list[Override]] = {}
    for override in loaded.documents.overrides:
        overrides.setdefault(override.key, []).append(override)
    decisions: dict[str, Decision] = {}
    for done, schedule in enumerate(schedules):
        if not may_go_on():
            _not_decided(schedules[done:], done, report)
            break
        try:
            decisions[schedule.key] = decider.decide(
                schedule, report.at, overrides.get(schedule.key, ())
            )
        except Exception as exc:  # one schedule that cannot be decided fails only its service
            report.services.append(
                ServiceReport(schedule.key, "failed", error=f"cannot decide: {exc}")
            )
    return decisions


def _not_decided(rest: Sequence[Schedule], done: int, report: TickReport) -> None:
    why = (
        f"not decided: the tick's time for deciding ran out after {done} of "
        f"{done + len(rest)} services; the next tick decides it (see `teiji explain`)"
    )
    for schedule in rest:
        report.services.append(ServiceReport(schedule.key, "skipped", error=why))
    log_event(
        "the time for deciding ran out; the rest is left to the next tick",
        level=logging.WARNING,
        decided=done,
        not_decided=len(rest),
    )


def _converge(
    clients: Clients,
    settings: Settings,
    state: StateStore,
    schedule: Schedule,
    decision: Decision,
    observation: Observation,
    baseline: Baseline | None,
    *,
    dry_run: bool,
    retry_sleep: Callable[[float], None] | None = None,
    still_leased: Callable[[], bool] | None = None,
) -> ServiceReport:
    """Plan, apply (unless dry run) and check targets for one service."""
    report = ServiceReport(schedule.key, "converged", decision, decided_by=who_decided(decision))
    if observation.key in state.invalid_baselines:
        report.outcome = "failed"
        report.error = state.invalid_baselines[observation.key]
        return report
    plan = plan_service(decision, observation, baseline, schedule, protected=settings.protected)
    plan = refuse_growth(plan, settings.access.max_desired)
    report.notes.extend(plan.notes)
    if plan.error:
        report.outcome = "failed"
        report.error = plan.error
        return report
    if dry_run:
        report.actions = list(plan.actions)
        report.outcome = "planned" if plan.actions else "converged"
    elif plan.actions:
        result = apply_plan(
            clients, state, plan, observation, sleep=retry_sleep, still_leased=still_leased
        )
        report.actions = result.done
        report.notes.extend(result.notes)
        if result.error:
            report.outcome = "failed"
            report.error = result.error
            return report
        report.outcome = "changed"
    if _wants_target_check(schedule, decision, observation, plan):
        _check_targets(clients, schedule, observation, report, dry_run=dry_run)
    return report


def _wants_target_check(
    schedule: Schedule, decision: Decision, observation: Observation, plan: ServicePlan
) -> bool:
    # Right after a start the tasks do not exist yet: check from the next tick on.
    return (
        decision.state == "running"
        and observation.desired_count > 0
        and not plan.starts
        and bool(observation.load_balancers)
        and schedule.targets != "ignore"
    )


def _check_targets(
    clients: Clients,
    schedule: Schedule,
    observation: Observation,
    report: ServiceReport,
    *,
    dry_run: bool,
) -> None:
    from engine.targets import check_targets

    mode = cast(Literal["verify", "repair"], schedule.targets)
    try:
        targets = check_targets(
            clients,
            account=schedule.account,
            region=schedule.region,
            cluster=schedule.cluster,
            service=observation.raw,
            mode=mode,
            dry_run=dry_run,
        )
    except Exception as exc:  # a check that raises fails this service, never the tick
        report.outcome = "failed"
        report.error = f"target check failed: {error_text(exc)}"
        return
    report.targets = targets.as_json()
    if targets.error:
        report.outcome = "failed"
        report.error = f"target check failed: {targets.error}"
    elif not targets.ok:
        report.notes.append("load balancer targets need attention (see targets)")
