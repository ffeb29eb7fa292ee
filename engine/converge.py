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
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from engine.access import refuse_growth
from engine.apply import apply_plan
from engine.aws.errors import error_text
from engine.config import Settings
from engine.logs import log_event
from engine.model import Decision, Observation
from engine.plan import ServicePlan, plan_service, who_decided
from engine.report import ServiceReport
from engine.store import StateStore
from engine.targets import check_targets
from schemas.documents import Schedule
from schemas.records import Baseline, TargetCheck

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

    def now(self) -> int:
        return int(self.at.timestamp() if self.at is not None else time.time())


def converge_service(service: Service, acting: Acting) -> ServiceReport:
    """Plan, apply (unless dry run) and check the targets of one service; its report."""
    decision = service.decision
    report = ServiceReport(
        service.schedule.key, "converged", decision, decided_by=who_decided(decision)
    )
    if service.unreadable_baseline is not None:
        # Its capacity cannot be known: no write at all until people repair the record.
        report.outcome = "failed"
        report.error = service.unreadable_baseline
        return report
    plan = plan_for(
        service.schedule, decision, service.observation, service.baseline, acting.settings
    )
    report.notes.extend(plan.notes)
    if plan.error:
        report.outcome = "failed"
        report.error = plan.error
        return report
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
        )
        report.actions = result.done
        report.notes.extend(result.notes)
        if result.error:
            report.outcome = "failed"
            report.error = result.error
            return report
        report.outcome = "changed"
    if wants_target_check(service, plan):
        fingerprint = target_fingerprint(service.observation.raw)
        now = acting.now()
        interval = acting.settings.target_check_interval
        if target_check_due(service.last_target_check, fingerprint, now, interval):
            ok = _check_targets(acting, service, report)
            if not acting.dry_run:
                check = TargetCheck(
                    key=service.schedule.key, fingerprint=fingerprint, checked_at=now, ok=ok
                )
                _remember(acting, check)
    return report


def wants_target_check(service: Service, plan: ServicePlan) -> bool:
    observation = service.observation
    # Right after a start the tasks do not exist yet: check from the next tick on.
    return (
        service.decision.state == "running"
        and observation.desired_count > 0
        and not plan.starts
        and bool(observation.load_balancers)
        and service.schedule.targets != "ignore"
    )


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


def target_check_due(last: TargetCheck | None, fingerprint: str, now: int, interval: int) -> bool:
    """Check fully unless the last check saw the same service, found it ok and is recent.
    A clock that went back (``now`` before ``checked_at``) checks too."""
    if last is None or not last.ok or last.fingerprint != fingerprint:
        return True
    return not 0 <= now - last.checked_at < interval


def _remember(acting: Acting, check: TargetCheck) -> None:
    # A record that is not written only costs a check on the next tick.
    try:
        acting.state.save_target_check(check)
    except Exception as exc:
        log_event(
            "cannot record the target check; the next tick checks again",
            level=logging.WARNING,
            service=check.key,
            error=error_text(exc),
        )


def _check_targets(acting: Acting, service: Service, report: ServiceReport) -> bool:
    """Check the service's targets into its report; True when all is well."""
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
        return False
    report.targets = targets.as_json()
    if targets.error:
        report.outcome = "failed"
        report.error = f"target check failed: {targets.error}"
    elif not targets.ok:
        report.notes.append("load balancer targets need attention (see targets)")
    return targets.ok
