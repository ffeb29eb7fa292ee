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

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Literal, cast

from botocore.exceptions import BotoCoreError, ClientError

from engine.access import admit, refuse_growth
from engine.apply import apply_plan
from engine.aws.pacing import Clock, Lane, Pacer, PacingConfigError, RealClock, Unit, run_lanes
from engine.config import Settings
from engine.logs import log_event, log_service, log_tick
from engine.model import Decision
from engine.observe import Observation, ObserveResult, ScopeObserver, by_scope, error_text
from engine.plan import ServicePlan, plan_service, who_decided
from engine.report import ServiceReport, TickReport
from engine.store import BATCH_GET_LIMIT, ConfigStore, LoadedConfig, StateStore, StoreError
from schemas.documents import Override, Schedule
from schemas.records import Baseline
from schemas.validation import Problem, growth_cap

if TYPE_CHECKING:
    from engine.aws.clients import Clients

LEASE_NAME = "tick"
# Stop acting this long before the lease runs out, so a slow call cannot outlive it.
LEASE_MARGIN_S = 30.0


class TickError(RuntimeError):
    """The tick could not run at all (a table is missing or unreadable); nothing was done."""


def lease_name(shard: tuple[int, int] | None) -> str:
    """The lease of one shard. With one shard (or none given) it is ``tick``: the scheduled
    ``{"shard": 0, "shards": 1}`` and a tick from a terminal must contend for the same lease."""
    if shard is None or shard[1] == 1:
        return LEASE_NAME
    index, count = shard
    return f"{LEASE_NAME}#{index}/{count}"


@dataclass(frozen=True)
class Cover:
    """The shards whose services a tick may act on: ``indices`` of ``count``.

    ``named`` is true when the shards were chosen for the services a tick was given: a named
    service found outside them is then reported, not silently left to another shard.
    """

    indices: tuple[int, ...]
    count: int
    named: bool = False

    def holds(self, key: str) -> bool:
        return self.count == 1 or shard_of(key, self.count) in self.indices

    def lease_names(self) -> list[str]:
        """In ascending shard order, so that two ticks wanting the same shards never each hold
        a part of them while waiting for the rest."""
        return [lease_name((index, self.count)) for index in sorted(self.indices)]


def wanted_keys(keys: Collection[str], services: Collection[str]) -> set[str]:
    """The keys a ``services`` list names: a key exactly, or every scope of ``cluster/service``."""
    wanted = set(services)
    return {k for k in keys if k in wanted or k.split("@", 1)[0] in wanted}


def cover_for(
    shard: tuple[int, int] | None, shards: int, named_keys: Collection[str] | None
) -> Cover:
    """The shards a tick covers and so the leases it takes.

    An explicit shard (the scheduled Lambda) is that shard. Without one, the tick covers every
    shard holding a service it will act on: all of them for a full tick, the shards of
    ``named_keys`` for a tick given services (at least one, so it always holds a lease).
    """
    if shard is not None:
        return Cover((shard[0],), shard[1])
    if shards == 1 or named_keys is None:
        return Cover(tuple(range(shards)), shards)
    indices = sorted({shard_of(key, shards) for key in named_keys}) or [0]
    return Cover(tuple(indices), shards, named=True)


def shard_of(key: str, count: int) -> int:
    """A service's shard: stable across runs and machines (sha256 of the key)."""
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % count


def check_shard(shard: tuple[int, int] | None) -> None:
    if shard is None:
        return
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index} of {count}: need shards >= 1 and 0 <= shard < shards")


@dataclass
class _Lease:
    """The leases this tick holds (one per shard it covers, all under one holder id) and the
    wall-clock instant it must stop acting."""

    names: list[str]
    holder: str
    deadline: float
    clock: Callable[[], float]

    def alive(self) -> bool:
        return self.clock() < self.deadline


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
) -> TickReport:
    """Converge every managed service (or the named ones, or one shard) to its decision at ``at``.

    Leases: ``shard`` takes that shard's lease. Without one the tick takes the lease of every
    shard (``settings.shards``) holding a service it will act on, in ascending order, so it
    never acts beside a scheduled tick on the same service; when any is held, it gives back
    what it took and does nothing (lease "held").

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
    if shard is not None and shard[1] != settings.shards:
        # The leases of a tick given no shard follow TEIJI_SHARDS; with another count the two
        # would take different leases and could act on one service at the same time.
        log_event(
            "the shard count differs from TEIJI_SHARDS; ticks from a terminal will not wait "
            "for this one",
            level=logging.WARNING,
            shards=shard[1],
            setting=settings.shards,
        )
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
        tick = _Tick(clients, settings, pace, clock or wall_clock(pace), dry_run)
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
    report = TickReport(at=at, dry_run=dry_run, lease="not taken")
    report.problems.append(problem)
    log_event("a setting cannot be used; nothing done", level=logging.ERROR, error=problem)
    report.duration_s = pace.monotonic() - started
    log_tick(report)
    return report


@dataclass
class _Tick:
    """One tick's shared state: what every phase and every worker thread uses."""

    clients: Clients
    settings: Settings
    pace: Clock
    wall: Callable[[], float]
    dry_run: bool
    lease: _Lease | None = None
    lease_lost: bool = False  # a write was refused because the lease was gone
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.config = ConfigStore(self.clients, self.settings.config_table)
        self.state = self._state_store()
        # Retries of a busy scalable target wait on the tick's clock; on the real clock the
        # adapter's own sleep (which tests replace) does the same.
        self.retry_sleep = None if isinstance(self.pace, RealClock) else self.pace.sleep

    def _state_store(self) -> StateStore:
        return StateStore(
            self.clients, self.settings.state_table, clock=self.wall, sleep=self.pace.sleep
        )

    def _may_write(self, report: TickReport) -> bool:
        """True while the lease lasts (a dry run has none and writes nothing anyway)."""
        if self.lease is None or self.lease.alive():
            return True
        report.lease = "lost"
        return False

    def _still_leased(self) -> bool:
        """May this tick still write? Asked before every write of a service.

        Before the deadline, yes. After it, only while every lease item still names this tick:
        once another tick has taken one over, that tick may be restoring this very service, and
        finishing a stop here would leave it stopped without a baseline.
        """
        if self.lease is None or self.lease.alive():
            return True
        for name in self.lease.names:
            try:
                held = self.state.get_lease(name)
            except (ClientError, BotoCoreError):
                held = None
            if held is None or held.holder != self.lease.holder:
                self.lease_lost = True
                return False
        return True

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

        cover = self._cover(at, services, shard)
        holder = uuid.uuid4().hex
        taken_at = self.wall()  # read before asking: no lease can end before this + ttl
        ttl = self.settings.lease_seconds
        blocked = self._take_leases(cover.lease_names(), holder, ttl)
        if blocked is not None:
            return self._held(at, blocked)
        margin = min(LEASE_MARGIN_S, ttl / 10)
        self.lease = _Lease(cover.lease_names(), holder, taken_at + ttl - margin, self.wall)

        report = TickReport(at=at, dry_run=False, lease="acquired")
        try:
            self._run(report, services, cover)
            if self.lease_lost:
                report.lease = "lost"
        finally:
            self._release(self.lease.names, holder)
        return report

    def _cover(
        self, at: datetime, services: Collection[str] | None, shard: tuple[int, int] | None
    ) -> Cover:
        """The shards this tick takes the leases of.

        Given services and no shard, while the services are split over several shards, only
        the documents say which shards hold them (a ``cluster/service`` may have a schedule in
        several accounts): read them once to find out. The tick reads them again once it holds
        the leases, so it never acts on documents older than the last tick that held them.
        """
        if shard is not None or services is None or self.settings.shards == 1:
            return cover_for(shard, self.settings.shards, None)
        loaded = self._load(at)
        keys = set(loaded.documents.schedules) | set(loaded.problem_keys)
        named = wanted_keys(keys, services) or set(services)
        return cover_for(None, self.settings.shards, named)

    def _take_leases(self, names: Sequence[str], holder: str, ttl: int) -> str | None:
        """Take every lease in order; None when all were taken, else the one held by another
        tick (the ones taken before it are given back)."""
        taken: list[str] = []
        for name in names:
            try:
                acquired = self.state.acquire_lease(name, holder, ttl)
            except (ClientError, BotoCoreError) as exc:
                self._release(taken, holder)
                raise TickError(
                    f"cannot take the lease in table {self.settings.state_table}: {error_text(exc)}"
                ) from exc
            if not acquired:
                self._release(taken, holder)
                return name
            taken.append(name)
        return None

    def _held(self, at: datetime, name: str) -> TickReport:
        report = TickReport(at=at, dry_run=False, lease="held")
        try:
            held = self.state.get_lease(name)
        except (ClientError, BotoCoreError):
            held = None
        report.lease_holder = held.holder if held else None
        log_event("another tick holds the lease; nothing done", lease=name)
        return report

    def _release(self, names: Sequence[str], holder: str) -> None:
        for name in reversed(names):
            try:
                self.state.release_lease(name, holder)
            except (ClientError, BotoCoreError) as exc:
                # It expires by itself; the next tick can take it then.
                log_event(
                    "could not release the lease",
                    level=logging.WARNING,
                    lease=name,
                    error=str(exc),
                )

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

        decisions = _decide(loaded, schedules, report)
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
        observed, baselines = self._observe(reachable, decisions, report)
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
        self, managed: Sequence[Schedule], decisions: Mapping[str, Decision], report: TickReport
    ) -> tuple[ObserveResult, dict[str, Baseline] | None]:
        """Every group's reads and the baselines, all at once; one round trip deep."""
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
            if not self._may_write(report):
                self.add(
                    report,
                    ServiceReport(
                        schedule.key,
                        "skipped",
                        decision,
                        error="the tick ran out of its lease before acting on this service",
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
                still_leased=self._still_leased if self.lease is not None else None,
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
        chosen = wanted_keys(keys, services)
        for name in sorted(set(services)):
            if not wanted_keys(keys, [name]):
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
    loaded: LoadedConfig, schedules: Sequence[Schedule], report: TickReport
) -> dict[str, Decision]:
    from engine.decide import Decider  # the decision engine loads holiday data: import late

    decider = Decider(loaded.documents.calendars)
    overrides: dict[str, list[Override]] = {}
    for override in loaded.documents.overrides:
        overrides.setdefault(override.key, []).append(override)
    decisions: dict[str, Decision] = {}
    for schedule in schedules:
        try:
            decisions[schedule.key] = decider.decide(
                schedule, report.at, overrides.get(schedule.key, ())
            )
        except Exception as exc:  # one schedule that cannot be decided fails only its service
            report.services.append(
                ServiceReport(schedule.key, "failed", error=f"cannot decide: {exc}")
            )
    return decisions


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
