"""The phases of a tick, in order: select, admit (``engine.access``), decide, leave the
unmanaged, reach the accounts, observe, converge.

Each phase is a function that returns a ``Phase``: what it hands to the next phase, and the
services it settled on the way (failed, skipped, unmanaged), which the next phases never see.
``engine.tick`` runs them under its lease and merges each into the report; no phase writes the
report, and none holds state between ticks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from engine.apply import PreSaved
from engine.aws import autoscaling
from engine.aws.batching import chunks
from engine.aws.clock import Clock
from engine.aws.errors import AWS_ERRORS, error_text
from engine.aws.lanes import Lane, Unit, run_lanes
from engine.converge import (
    Acting,
    BaselineDeletes,
    Prepared,
    Service,
    check_offsets,
    converge_service,
    may_check_targets,
    plan_of,
)
from engine.lease import Cover
from engine.logs import log_event
from engine.model import Decision, Observation, resource_id
from engine.observe import (
    EarlyTargets,
    ObserveResult,
    Scope,
    ScopeObserver,
    by_scope,
    fail_shared_services,
)
from engine.plan import ServicePlan, who_decided
from engine.report import Phase, ServiceReport
from engine.store import (
    BATCH_GET_LIMIT,
    TRANSACT_LIMIT,
    BatchOutcome,
    LoadedConfig,
    StateStore,
    StoredBaselines,
)
from schemas.documents import Override, Schedule
from schemas.keys import keys_wanted, service_key
from schemas.records import Baseline, TargetCheck

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from engine.config import Access


def opt_in(
    clients: Clients,
    access: Access,
    loaded: LoadedConfig,
    default_timezone: str,
    scopes: Iterable[Scope] | None = None,
    pace: Clock | None = None,
    early: EarlyReads | None = None,
    documents_of: Callable[[Sequence[str]], set[str]] | None = None,
) -> Phase[LoadedConfig]:
    """``loaded`` with the schedules of the services their ``teiji:profile`` tag opts in
    (``engine.optin``; in ``scopes`` only, when given); the tagged services that are protected
    are settled skipped. ``early``: the observation's own reads of the services listed, made
    beside discovery's describes instead of in a round trip of their own."""
    from engine.optin import PROTECTED_NOTE, discover

    known = {*loaded.documents.schedules, *loaded.problem_keys}
    found = discover(
        clients,
        access,
        loaded.documents,
        known,
        default_timezone=default_timezone,
        scopes=scopes,
        pace=pace,
        alongside=early.units if early is not None else None,
        documents_of=documents_of,
    )
    loaded.documents.schedules.update(found.schedules)
    loaded.described.update(found.described)
    loaded.problems.extend(found.problems)
    for problem in found.problems:
        key = problem.document.partition(" ")[2]
        loaded.problem_keys.setdefault(key, []).append(problem)
    settled = tuple(
        ServiceReport(key, "skipped", notes=[PROTECTED_NOTE]) for key in found.protected
    )
    return Phase(loaded, settled, tuple(found.failures))


def select(
    loaded: LoadedConfig, services: Collection[str] | None, cover: Cover, source: str
) -> Phase[list[Schedule]]:
    """The valid schedules this run covers; the named services without one and the services
    whose documents are invalid are settled failed."""
    schedules = loaded.documents.schedules
    keys = set(schedules) | set(loaded.problem_keys)
    settled: list[ServiceReport] = []
    if services is not None:
        chosen = keys_wanted(keys, services)
        for name in sorted(set(services)):
            if not keys_wanted(keys, [name]):
                error = f"no schedule document for {name} in {source}"
                settled.append(ServiceReport(name, "failed", error=error))
        keys = chosen
    outside = {k for k in keys if not cover.holds(k)}
    keys -= outside
    if cover.named:
        # Its schedule was written after the tick chose its leases: acting without the lease
        # of its shard could race that shard's own tick.
        error = "its schedule appeared while the tick was starting; run the tick again"
        settled.extend(ServiceReport(key, "skipped", error=error) for key in sorted(outside))
    problems = tuple(str(p) for p in loaded.problems if not _service_problem(p.document))
    invalid = {k: loaded.problem_keys[k] for k in sorted(keys) if k in loaded.problem_keys}
    for key, found in invalid.items():
        error = "; ".join(str(p) for p in found)
        settled.append(ServiceReport(key, "failed", error=error))
    chosen_schedules = [schedules[k] for k in sorted(keys) if k in schedules and k not in invalid]
    return Phase(chosen_schedules, tuple(settled), problems)


def _service_problem(document: str) -> bool:
    kind = document.partition(" ")[0]
    return kind in ("schedule", "override")


def decide(
    loaded: LoadedConfig,
    schedules: Sequence[Schedule],
    at: datetime,
    may_go_on: Callable[[], bool] = lambda: True,
) -> Phase[dict[str, Decision]]:
    """Each schedule's decision, one at a time, while ``may_go_on`` (the tick's time for
    deciding; it also renews the lease). The schedules not reached are settled skipped, so the
    tick acts on what it decided instead of running out of its lease."""
    from engine.documents import decider_for  # the Decider loads holiday data: import late

    decider = decider_for(loaded.documents.calendars)  # a warm Lambda's last one, if unchanged
    overrides: dict[str, list[Override]] = {}
    for override in loaded.documents.overrides:
        overrides.setdefault(override.key, []).append(override)
    decisions: dict[str, Decision] = {}
    settled: list[ServiceReport] = []
    for done, schedule in enumerate(schedules):
        if not may_go_on():
            settled.extend(_not_decided(schedules[done:], done))
            break
        try:
            decisions[schedule.key] = decider.decide(schedule, at, overrides.get(schedule.key, ()))
        except Exception as exc:  # one schedule that cannot be decided fails only its service
            settled.append(ServiceReport(schedule.key, "failed", error=f"cannot decide: {exc}"))
    return Phase(decisions, tuple(settled))


def _not_decided(rest: Sequence[Schedule], done: int) -> list[ServiceReport]:
    why = (
        f"not decided: the tick's time for deciding ran out after {done} of "
        f"{done + len(rest)} services; the next tick decides it (see `teiji explain`)"
    )
    log_event(
        "the time for deciding ran out; the rest is left to the next tick",
        level=logging.WARNING,
        decided=done,
        not_decided=len(rest),
    )
    return [ServiceReport(schedule.key, "skipped", error=why) for schedule in rest]


def leave_unmanaged(
    schedules: Sequence[Schedule], decisions: Mapping[str, Decision]
) -> Phase[list[Schedule]]:
    """The schedules decided running or stopped; the ``unmanaged`` ones are settled as such."""
    managed: list[Schedule] = []
    settled: list[ServiceReport] = []
    for schedule in schedules:
        decision = decisions.get(schedule.key)
        if decision is None:
            continue
        if decision.state == "unmanaged":
            by = who_decided(decision)
            settled.append(ServiceReport(schedule.key, "unmanaged", decision, decided_by=by))
        else:
            managed.append(schedule)
    return Phase(managed, tuple(settled))


def _failed(key: str, decision: Decision, error: str) -> ServiceReport:
    return ServiceReport(key, "failed", decision, error=error, decided_by=who_decided(decision))


def reach_accounts(
    clients: Clients,
    pace: Clock,
    managed: Sequence[Schedule],
    decisions: Mapping[str, Decision],
) -> Phase[list[Schedule]]:
    """Assume the role in every other account once, in parallel; settle the unreachable
    accounts' services failed.

    Done before the groups fan out so that the two regions of one account never wait for
    each other's AssumeRole, and an unreachable account costs one call, not one per group.
    """
    accounts = sorted({s.account for s in managed if s.account})
    unreachable: dict[str, str] = {}
    lock = threading.Lock()

    def connect(account: str) -> None:
        try:
            clients.connect(account)
        except Exception as exc:  # AccountUnreachableError, or anything on the way to it
            with lock:
                unreachable[account] = error_text(exc)

    run_lanes(pace, [[partial(connect, account)] for account in accounts], workers=1)
    settled = tuple(
        _failed(s.key, decisions[s.key], unreachable[s.account])
        for s in managed
        if s.account in unreachable
    )
    return Phase([s for s in managed if s.account not in unreachable], settled)


@dataclass(frozen=True)
class Observed:
    """What AWS and the state table say about the observed services."""

    observations: Mapping[str, Observation]
    baselines: StoredBaselines
    # The services' last target checks; a key without one (none, unreadable) is checked now.
    target_checks: Mapping[str, TargetCheck] = field(default_factory=dict)

    def service(self, schedule: Schedule, decision: Decision) -> Service:
        key = schedule.key
        return Service(
            schedule,
            decision,
            self.observations[key],
            self.baselines.found.get(key),
            self.baselines.unreadable.get(key),
            self.target_checks.get(key),
        )


def observe_services(
    clients: Clients,
    pace: Clock,
    state: StateStore,
    managed: Sequence[Schedule],
    decisions: Mapping[str, Decision],
    *,
    named: Sequence[str],
    workers: int,
    described: Mapping[str, Mapping[str, Any]] | None = None,
    early: EarlyReads | None = None,
) -> Phase[Observed | None]:
    """Every group's reads and the baselines, all at once; one round trip deep.

    ``named``: every managed key, also those of accounts that could not be reached, so that
    one service under two keys is left alone even when one key failed already. Without the
    baselines a start cannot restore capacity: the value is None and nothing is acted on.
    ``described``: DescribeServices answers this tick has already (opt-in by tag), by key."""
    early = early or EarlyReads(state)
    observers = [
        ScopeObserver(
            clients,
            scope,
            members,
            described=described or {},
            early_targets=early.targets.get(scope),
        )
        for scope, members in by_scope(managed).items()
    ]
    known = early.state_read()
    reader = _StateReader(
        state,
        [s.key for s in managed if s.key not in known],
        [s.key for s in managed if s.targets != "ignore" and s.key not in known],
    )
    lanes = [observer.units() for observer in observers]
    lanes.append(reader.units())
    run_lanes(pace, lanes, workers=workers)

    result = ObserveResult()
    for observer in observers:
        result.merge(observer.result())
    fail_shared_services(result, named)
    settled = [_failed(key, decisions[key], error) for key, error in result.failures.items()]
    settled.extend(_protected(result, decisions))
    if reader.error is not None:
        error = f"cannot read baselines: {reader.error}"
        settled.extend(_failed(key, decisions[key], error) for key in result.observations)
        return Phase(None, tuple(settled))
    if early.state is not None and known:
        reader.baselines.update(early.state.baselines)
        reader.checks.update(early.state.checks)
    observed = Observed(result.observations, reader.baselines, reader.checks)
    return Phase(observed, tuple(settled))


def _protected(result: ObserveResult, decisions: Mapping[str, Decision]) -> list[ServiceReport]:
    """The observed services tagged ``teiji:protected=true``, taken out of ``result`` and
    settled skipped: teiji never changes them, whatever a document says."""
    from engine.optin import PROTECTED_NOTE, is_protected

    keys = [key for key, seen in result.observations.items() if is_protected(seen.raw)]
    for key in keys:
        result.observations.pop(key)
    return [ServiceReport(key, "skipped", decisions[key], notes=[PROTECTED_NOTE]) for key in keys]


class _StateReader:
    """The managed services' baselines and last target checks, read together: one
    BatchGetItem unit for every 100 records of either kind. A unit that fails fails the
    baselines (without them nothing may act), so its target checks are never needed."""

    def __init__(
        self, state: StateStore, baseline_keys: Sequence[str], check_keys: Sequence[str]
    ) -> None:
        self.state = state
        pairs = [(True, k) for k in dict.fromkeys(baseline_keys)]
        pairs += [(False, k) for k in dict.fromkeys(check_keys)]
        self.batches = list(chunks(pairs, BATCH_GET_LIMIT))
        self.asked = [k for _, k in pairs]
        self.baselines = StoredBaselines()
        self.checks: dict[str, TargetCheck] = {}
        self.error: str | None = None
        self._lock = threading.Lock()

    def units(self) -> list[Unit]:
        return [partial(self._read, batch) for batch in self.batches]

    def _read(self, batch: Sequence[tuple[bool, str]]) -> None:
        try:
            baselines, checks = self.state.read_observed(
                [k for is_baseline, k in batch if is_baseline],
                [k for is_baseline, k in batch if not is_baseline],
            )
        except AWS_ERRORS as exc:
            with self._lock:
                self.error = self.error or error_text(exc)
            return
        with self._lock:
            self.baselines.update(baselines)
            self.checks.update(checks)


class EarlyReads:
    """The observation's reads of the services opt-in by tag listed (their scalable targets,
    baselines and last target checks), made in the same round trip as discovery's describes:
    the keys are known from the listing, so these need not wait for the tick to decide.
    Reads of services the tick then does not manage are wasted, a few keys a call."""

    def __init__(self, state: StateStore) -> None:
        self.store = state
        self.targets: dict[Scope, EarlyTargets] = {}
        self.state: _StateReader | None = None

    def units(self, listed: Mapping[tuple[Scope, str], list[str]]) -> list[Unit]:
        ids: dict[Scope, list[str]] = {}
        keys: list[str] = []
        for (scope, cluster), names in sorted(listed.items(), key=lambda i: str(i[0])):
            ids.setdefault(scope, []).extend(resource_id(cluster, name) for name in names)
            keys.extend(service_key(f"{cluster}/{name}", *scope) for name in names)
        units: list[Unit] = []
        for scope, scope_ids in ids.items():
            early = self.targets.setdefault(scope, EarlyTargets())
            units.extend(
                partial(early.read, self.store.clients, scope, batch)
                for batch in chunks(scope_ids, autoscaling.DESCRIBE_TARGETS_BATCH)
            )
        self.state = _StateReader(self.store, keys, keys)
        return units + self.state.units()

    def state_read(self) -> set[str]:
        """The keys whose baseline and target check were read early (none if that failed)."""
        if self.state is None or self.state.error is not None:
            return set()
        return set(self.state.asked)


@dataclass(frozen=True)
class Converged:
    """The converge phase's own outcome: whether the tick lost its lease on the way."""

    lease_lost: bool


def converge_all(
    pace: Clock,
    acting: Acting,
    managed: Sequence[Schedule],
    observed: Observed,
    decisions: Mapping[str, Decision],
    *,
    may_act: Callable[[], bool],
    past_deadline: Callable[[], bool],
    workers: int,
) -> Phase[Converged]:
    """Each group's services ``workers`` at a time, the groups in parallel. ``may_act`` is
    asked right before each service is handed to a worker; a service it refuses is settled
    skipped (the tick ran out of time, or of its lease)."""
    reports: list[ServiceReport] = []
    lock = threading.Lock()
    lost = False
    if not acting.dry_run:
        acting = replace(acting, deletes=BaselineDeletes(acting.state, may_act))
    checks: list[TargetCheck] = []

    def remember(check: TargetCheck) -> None:
        with lock:
            checks.append(check)

    acting = replace(acting, remember=remember)

    def record(report: ServiceReport) -> None:
        with lock:
            reports.append(report)

    groups = [
        [s for s in members if s.key in observed.observations]
        for members in by_scope(managed).values()
    ]
    services = {s.key: observed.service(s, decisions[s.key]) for members in groups for s in members}
    checked = [key for key, service in services.items() if may_check_targets(service)]
    tick = int(acting.settings.tick_interval.total_seconds())
    offsets = check_offsets(checked, acting.settings.target_check_interval, tick=tick)
    acting = replace(acting, check_offsets=offsets)
    # First every group's plans, and the baselines of its stops saved 100 a transaction,
    # before any service is changed (a lane's generator must not wait on AWS: its lock would
    # hold the group's other workers outside the tick's clock).
    prepared: dict[str, Prepared] = {}

    def prepare(chunk: Sequence[Schedule]) -> None:
        ready = _prepare(acting, [services[s.key] for s in chunk], may_act)
        with lock:
            prepared.update(ready)

    # One transaction at a time: 100 baselines a request, so 10,000 stops take 100 of them,
    # and emulations that copy their tables for each transaction (moto) keep up.
    saving = [partial(prepare, c) for members in groups for c in chunks(members, TRANSACT_LIMIT)]
    run_lanes(pace, [saving], workers=1)

    def units(members: Sequence[Schedule]) -> Iterator[Unit]:
        # A generator: the lane advances it under its lock, so the lease is checked in order.
        nonlocal lost
        for schedule in members:
            service = services[schedule.key]
            if not may_act():
                why = "time" if past_deadline() else "its lease"
                lost = lost or why == "its lease"
                error = f"the tick ran out of {why} before acting on this service"
                record(ServiceReport(schedule.key, "skipped", service.decision, error=error))
                continue
            yield partial(_converge_one, service, acting, record, prepared.get(schedule.key))

    run_lanes(
        pace, [Lane(units(members), size=len(members)) for members in groups], workers=workers
    )
    deletes = acting.deletes
    if deletes is not None:
        # In a lane of its own: its requests are paced on the tick's clock.
        run_lanes(pace, [[deletes.flush]], workers=1)
    _remember_target_checks(acting.state, checks)
    return Phase(Converged(lease_lost=lost), tuple(reports))


def _remember_target_checks(state: StateStore, checks: Sequence[TargetCheck]) -> None:
    # A record that is not written only costs a check on the next tick.
    if not checks:
        return
    try:
        state.save_target_checks(checks)
    except Exception as exc:
        log_event(
            "cannot record the target checks; the next tick checks those services again",
            level=logging.WARNING,
            services=len(checks),
            error=error_text(exc),
        )


def _prepare(
    acting: Acting, services: Sequence[Service], may_act: Callable[[], bool]
) -> dict[str, Prepared]:
    """The plans of a chunk of up to 100 services, and the baselines of those that stop
    saved in one transaction before any of them is changed (not in a dry run).

    A baseline the batch did not confirm is saved by its own service's apply, as without a
    batch; one that was already there leaves its service untouched (``engine.apply``). A plan
    that cannot be made here is made again, and fails, in its own service's unit."""
    plans: dict[str, ServicePlan] = {}
    for service in services:
        if service.unreadable_baseline is not None:
            continue
        try:
            plans[service.schedule.key] = plan_of(service, acting.settings)
        except Exception:  # isolated: converge_service plans again and fails this service
            continue
    saves = {
        key: plan.actions[0].baseline
        for key, plan in plans.items()
        if plan.error is None
        and plan.actions
        and plan.actions[0].kind == "save_baseline"
        and plan.actions[0].baseline is not None
    }
    if acting.dry_run or not saves or not may_act():
        return {key: Prepared(plan) for key, plan in plans.items()}
    outcome = acting.state.save_baselines([b for b in saves.values() if b is not None])
    if outcome.error is not None:
        unconfirmed = [k for k, b in saves.items() if b is not None and outcome.of(b.key) is None]
        log_event(
            "baselines not confirmed by their batch are saved one by one",
            level=logging.WARNING,
            services=len(unconfirmed),
            error=outcome.error,
        )
    return {key: Prepared(plan, _saved(outcome, saves.get(key))) for key, plan in plans.items()}


def _saved(outcome: BatchOutcome, baseline: Baseline | None) -> PreSaved:
    return None if baseline is None else outcome.of(baseline.key)


def _converge_one(
    service: Service,
    acting: Acting,
    record: Callable[[ServiceReport], None],
    prepared: Prepared | None = None,
) -> None:
    try:
        report = converge_service(service, acting, prepared)
    except Exception as exc:  # a defect in one service's handling must not stop the rest
        key = service.schedule.key
        log_event("unexpected error", level=logging.ERROR, service=key, exc_info=True)
        error = f"internal error: {error_text(exc)}"
        report = ServiceReport(key, "failed", service.decision, error=error)
    record(report)
