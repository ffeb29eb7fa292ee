"""One service, from its decision to the AWS calls: plan, apply, check its targets.

``plan_for`` is what teiji would change on a service, exactly as the tick decides it (the
planner, then the deployment's growth cap); ``teiji list`` previews the next tick with it.
``converge_service`` is the tick's work on one service: it plans, applies (unless a dry run)
through ``engine.apply`` and checks the load-balancer targets through ``engine.targets``,
and returns the service's report. It never raises for one service's trouble.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, cast

from engine.access import refuse_growth
from engine.apply import PreSaved, apply_plan
from engine.aws.errors import error_text
from engine.config import Settings
from engine.model import Decision, Observation
from engine.plan import Action, ServicePlan, baseline_matches, plan_service, who_decided
from engine.report import ServiceReport
from engine.savings import (
    Saving,
    baseline_after,
    desired_after,
    launch_of,
    saving_of,
    spec_for,
)
from engine.store import TRANSACT_LIMIT, StateStore
from engine.targets import Target, check_targets, remembered_targets_healthy
from engine.wake_rules import converge_rules
from schemas.documents import Schedule
from schemas.records import Baseline, SavedRule, TargetCheck

if TYPE_CHECKING:
    from engine.aws.clients import Clients


def plan_for(
    schedule: Schedule,
    decision: Decision,
    observation: Observation,
    baseline: Baseline | None,
    settings: Settings,
) -> ServicePlan:
    """The writes the tick would make on this service now (none when it is converged)."""
    plan = plan_service(decision, observation, baseline, schedule, protected=settings.protected)
    return refuse_growth(plan, settings.access.max_desired)


@dataclass(frozen=True)
class Service:
    """Everything the tick knows about one managed service when it converges it."""

    schedule: Schedule
    decision: Decision
    observation: Observation
    baseline: Baseline | None
    unreadable_baseline: str | None = None  # why the stored baseline cannot be read
    last_target_check: TargetCheck | None = None  # None: never checked, or unreadable


@dataclass(frozen=True)
class Acting:
    """How the tick acts: for real or as a dry run, and what it waits on."""

    clients: Clients
    settings: Settings
    state: StateStore
    dry_run: bool
    retry_sleep: Callable[[float], None] | None = None
    still_leased: Callable[[], bool] | None = None
    # The tick's instant: what target checks are timed by (None: the real clock).
    at: datetime | None = None
    # Takes each target check to remember; the tick writes them together when it is done.
    remember: Callable[[TargetCheck], None] | None = None
    # Where a start's baseline delete goes once its restore succeeded (None: made at once).
    deletes: BaselineDeletes | None = None
    # A service's saved listener rules (wake on request), read once for the whole tick
    # (engine.wake_store.SavedRuleIndex; None: read per service).
    saved_rules: Callable[[str], dict[str, SavedRule]] | None = None
    # Each target-checked service's check offset (``check_offsets``); a service not in it
    # takes its digest's.
    check_offsets: Mapping[str, int] = field(default_factory=dict)

    def now(self) -> int:
        return int(self.at.timestamp() if self.at is not None else time.time())


@dataclass(frozen=True)
class Prepared:
    """A service's plan made ahead (to batch its baseline save) and that save's outcome."""

    plan: ServicePlan
    saved: PreSaved = None


def converge_service(
    service: Service, acting: Acting, prepared: Prepared | None = None
) -> ServiceReport:
    """Plan (unless ``prepared``), apply (unless dry run) and check the targets of one
    service; its report."""
    decision = service.decision
    arn = service.observation.raw.get("serviceArn")
    report = ServiceReport(
        service.schedule.key,
        "converged",
        decision,
        decided_by=who_decided(decision),
        arn=arn if isinstance(arn, str) else None,
    )
    if service.unreadable_baseline is not None:
        # Its capacity cannot be known: no write at all until people repair the record.
        report.outcome = "failed"
        report.error = service.unreadable_baseline
        return report
    plan = prepared.plan if prepared is not None else plan_of(service, acting.settings)
    report.notes.extend(plan.notes)
    if plan.error:
        report.outcome = "failed"
        report.error = plan.error
        return report
    deferred: Action | None = None
    if acting.dry_run:
        report.actions = list(plan.actions)
        report.outcome = "planned" if plan.actions else "converged"
    elif plan.actions:
        result = apply_plan(
            acting.clients,
            acting.state,
            plan,
            service.observation,
            sleep=acting.retry_sleep,
            still_leased=acting.still_leased,
            saved=prepared.saved if prepared is not None else None,
            defer_delete=acting.deletes is not None,
        )
        report.actions = result.done
        report.notes.extend(result.notes)
        if result.error:
            report.outcome = "failed"
            report.error = result.error
            return report
        report.outcome = "changed"
        deferred = result.deferred
    if not report.failed:
        converge_rules(service, acting, report)  # wake on request: its listener rules
    if wants_target_check(service, plan) and not report.failed:
        _target_check(acting, service, report)
    if not report.failed:
        report.saving = _saving(service, report, acting.clients.region)
    if deferred is not None and acting.deletes is not None:
        # Last: the batch that makes the delete may complete this report at once.
        acting.deletes.add(deferred, report)
    return report


def _saving(service: Service, report: ServiceReport, own_region: str) -> Saving | None:
    """What keeping the service as the tick leaves it saves until the next tick."""
    observation, baseline = service.observation, service.baseline
    if baseline is not None and not baseline_matches(baseline, observation):
        baseline = None  # an earlier service's: not what people set on this one
    done = report.actions
    after = baseline_after(done, baseline)
    return saving_of(
        state=service.decision.state,
        baseline=after,
        desired_after=desired_after(done, observation.desired_count),
        spec=spec_for(after, observation.raw, observation.task),
        launch=launch_of(observation.raw),
        region=observation.region or own_region,
    )


def plan_of(service: Service, settings: Settings) -> ServicePlan:
    """``plan_for`` of everything the tick knows about the service."""
    return plan_for(
        service.schedule, service.decision, service.observation, service.baseline, settings
    )


class BaselineDeletes:
    """A tick's baseline deletes after starts, made 100 a transaction (version-conditional,
    like the single delete) once the restores succeeded, instead of one request each: the tick
    ``flush``es them, one transaction at a time, after its services were worked.

    ``may_write`` is asked before each batch (the tick's lease and deadline): a delete not
    made is only a baseline left over, which the next tick finds and deletes. Each batch
    completes the reports of its services: the delete done, a baseline that changed since
    it was read kept (a note), or the delete failed (the service failed, as the single
    delete fails it).
    """

    def __init__(self, state: StateStore, may_write: Callable[[], bool]) -> None:
        self.state = state
        self.may_write = may_write
        self._pending: list[tuple[Action, ServiceReport]] = []
        self._lock = threading.Lock()

    def add(self, action: Action, report: ServiceReport) -> None:
        with self._lock:
            self._pending.append((action, report))

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        for start in range(0, len(batch), TRANSACT_LIMIT):
            self._write(batch[start : start + TRANSACT_LIMIT])

    def _write(self, batch: list[tuple[Action, ServiceReport]]) -> None:
        if not self.may_write():
            for _, report in batch:
                report.notes.append(
                    "the baseline is kept: the tick ran out of its lease or time before "
                    "deleting it; the next tick deletes it"
                )
            return
        baselines = [action.baseline for action, _ in batch if action.baseline is not None]
        outcome = self.state.delete_baselines(baselines)
        for action, report in batch:
            done = outcome.of(action.baseline.key) if action.baseline is not None else None
            if done == "done":
                report.actions.append(action)
            elif done == "refused":
                report.notes.append("the baseline changed since it was read; it is kept")
            else:
                report.outcome = "failed"
                report.error = f"delete_baseline failed: {outcome.error}"


def may_check_targets(service: Service) -> bool:
    """Whether the service's targets are checked while it runs as it is."""
    observation = service.observation
    return (
        service.decision.state == "running"
        and observation.desired_count > 0
        and bool(observation.load_balancers)
        and service.schedule.targets != "ignore"
    )


def wants_target_check(service: Service, plan: ServicePlan) -> bool:
    # Right after a start the tasks do not exist yet: check from the next tick on.
    return may_check_targets(service) and not plan.starts


def target_fingerprint(raw: Mapping[str, Any]) -> str:
    """A digest of what a target check's answer depends on, from DescribeServices' answer: the
    PRIMARY deployment (id, updatedAt, task definition), the task sets, the running and
    desired counts and the load balancers. A change in any of them means "check again"."""
    primary: Mapping[str, Any] = next(
        (d for d in raw.get("deployments") or [] if d.get("status") == "PRIMARY"),
        {},
    )
    basis = {
        "deployment": [primary.get(k) for k in ("id", "updatedAt", "taskDefinition")],
        "task_sets": sorted(str(t.get("id")) for t in raw.get("taskSets") or []),
        "running": raw.get("runningCount"),
        "desired": raw.get("desiredCount"),
        "load_balancers": raw.get("loadBalancers") or [],
    }
    text = json.dumps(basis, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


CheckKind = Literal["full", "light"]

# A light re-check (the remembered targets still healthy) is trusted for this long after the
# last full check; then the service's next due check reads its tasks again. Once a day finds
# what only the tasks show (a target of a task that runs but ECS never registered, left over
# while its counts stayed the same) at the cost of one full check per service per day.
FULL_CHECK_EVERY_S = 24 * 3600


def _check_digest(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def check_offsets(keys: Iterable[str], interval: int, *, tick: int) -> dict[str, int]:
    """Each service's check offset (``check_slot``), the services spread evenly over the
    interval: ranked by a digest of their keys, the i-th of n begins its intervals at
    i * interval / n, rounded down to a whole ``tick`` (the tick's period, in seconds).

    A digest alone spreads a large fleet evenly but a small one unevenly (36 services, a
    quarter due each quarter hour on average, were 15 in one tick and 8 in the next). Ranks
    give every quarter hour its exact share. The rounding puts every boundary between two
    intervals on a quarter hour, where the ticks run: a tick starts a few seconds after its
    quarter hour, and a boundary a few seconds after it would make the service wait one more
    tick. When services come or go the ranks shift and a service's next check may move;
    two checks are never more than ``interval`` apart, rounded up to whole ticks (that needs
    only that each slot is ``interval`` long and that checks run at ticks)."""
    ordered = sorted(set(keys), key=lambda key: (_check_digest(key), key))
    grid = max(1, tick)
    return {
        key: (rank * interval) // len(ordered) // grid * grid for rank, key in enumerate(ordered)
    }


def check_slot(key: str, instant: int, interval: int, offset: int | None = None) -> int:
    """The number of the service's own check interval that ``instant`` falls in.

    Each service's intervals begin at its own ``offset`` (``check_offsets``; without one, a
    digest of its key): a fleet checked in one tick (right after a start) comes due again
    spread over the next interval, about a quarter of it each quarter hour, not all in one
    tick an hour later.
    """
    if offset is None:
        offset = _check_digest(key) % interval
    return (instant + offset % interval) // interval


def target_check_due(
    last: TargetCheck | None,
    fingerprint: str,
    now: int,
    interval: int,
    offset: int | None = None,
) -> CheckKind | None:
    """Which check the service's targets need now, if any.

    Full (read its tasks and target groups) unless the last check saw the same service and
    found it ok, or when the clock went back (``now`` before ``checked_at``). Otherwise none
    while ``now`` is in the same interval of the service's own (``check_slot``) as the last
    check, so that no two checks are more than ``interval`` apart; then light when the last
    full check remembered its targets less than ``FULL_CHECK_EVERY_S`` ago, else full.
    """
    if last is None or not last.ok or last.fingerprint != fingerprint:
        return "full"
    if now < last.checked_at:
        return "full"
    slot = partial(check_slot, last.key, interval=interval, offset=offset)
    if slot(now) == slot(last.checked_at):
        return None
    if last.targets and 0 <= now - last.last_full < FULL_CHECK_EVERY_S:
        return "light"
    return "full"


def _target_check(acting: Acting, service: Service, report: ServiceReport) -> None:
    """Check the service's targets if due, and remember the check (not in a dry run)."""
    fingerprint = target_fingerprint(service.observation.raw)
    now = acting.now()
    last = service.last_target_check
    offset = acting.check_offsets.get(service.schedule.key)
    kind = target_check_due(last, fingerprint, now, acting.settings.target_check_interval, offset)
    if kind is None:
        return
    if kind == "light" and last is not None and _light_check(acting, service, last):
        check = last.model_copy(update={"checked_at": now, "full_at": last.last_full})
    else:
        ok, expected = _check_targets(acting, service, report)
        targets = {arn: sorted(map(str, found)) for arn, found in expected.items()} if ok else {}
        check = TargetCheck(
            key=service.schedule.key,
            fingerprint=fingerprint,
            checked_at=now,
            ok=ok,
            targets=targets,
            full_at=now,
        )
    if not acting.dry_run and acting.remember is not None:
        acting.remember(check)


def _light_check(acting: Acting, service: Service, last: TargetCheck) -> bool:
    schedule = service.schedule
    try:
        return remembered_targets_healthy(
            acting.clients,
            account=schedule.account,
            region=schedule.region,
            service=service.observation.raw,
            remembered=last.targets,
        )
    except Exception:  # whatever went wrong, the full check that follows reports it
        return False


def _check_targets(
    acting: Acting, service: Service, report: ServiceReport
) -> tuple[bool, dict[str, set[Target]]]:
    """Check the service's targets fully into its report: whether all is well, and the targets
    its running tasks should be registered as."""
    schedule = service.schedule
    mode = cast(Literal["verify", "repair"], schedule.targets)
    try:
        targets = check_targets(
            acting.clients,
            account=schedule.account,
            region=schedule.region,
            cluster=schedule.cluster,
            service=service.observation.raw,
            mode=mode,
            dry_run=acting.dry_run,
        )
    except Exception as exc:  # a check that raises fails this service, never the tick
        report.outcome = "failed"
        report.error = f"target check failed: {error_text(exc)}"
        return False, {}
    report.targets = targets.as_json()
    if targets.error:
        report.outcome = "failed"
        report.error = f"target check failed: {targets.error}"
    elif not targets.ok:
        report.notes.append("load balancer targets need attention (see targets)")
    return targets.ok, targets.expected
