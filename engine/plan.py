"""What to change on one service: a pure function of the decision and what was observed.

The rules follow real AWS semantics:
- RegisterScalableTarget on an existing target updates it in place and moves desiredCount into
  [Min, Max]; UpdateService does not change the bounds; autoscaling can scale a service back
  out while Max > 0. So a stop pins Min = Max = S and suspends all scaling, then sets
  desiredCount = S; a start restores the bounds first, then the desired count.
- The capacity from before the first stop (the baseline) is saved before anything changes and
  never overwritten, so a tick that crashes half way loses nothing.
- What people change while a service is stopped becomes the new original. Anything that does
  not look like teiji's own pin (Min = Max with all scaling suspended, desiredCount at the
  stopped count or where AWS moves it when bounds are registered) is theirs: the baseline is
  amended with it (version-conditional) before teiji pins again or restores, and the report
  says so. teiji never takes bounds from its own pin.
- Level-triggered: every tick converges the service to its decision; a service that is
  already converged gets no write calls at all.
- A baseline saved for an earlier service of the same name (deleted and created again) is
  never restored onto the new one. When the new service must be stopped, the earlier
  baseline is first moved aside to an archived baseline (``archive_baseline``, then the
  version-conditional ``delete_baseline``) so the new service's own capacity can be saved.
  teiji never deletes archived baselines; operators read them in the state table.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from engine.model import Decision, Observation, ScalableTarget, bounds_text
from schemas.documents import Schedule
from schemas.records import (
    ALL_SUSPENDED,
    BASELINE_ARCHIVE_PK,
    NONE_SUSPENDED,
    Baseline,
    SuspendedState,
)

ActionKind = Literal[
    "archive_baseline",
    "save_baseline",
    "amend_baseline",
    "register_target",
    "update_service",
    "delete_baseline",
]
Intent = Literal["stop", "start", "keep", "unmanaged"]

# ECS reports createdAt to the millisecond; stored copies may round differently.
_SAME_INSTANT = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Action:
    """One write, with the values before and (expected) after it."""

    kind: ActionKind
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    baseline: Baseline | None = None
    # amend_baseline: the baseline that was read, which the write must still find.
    replaces: Baseline | None = None

    @property
    def desired_count(self) -> int:
        return int(self.after["desired_count"])

    @property
    def min_capacity(self) -> int:
        return int(self.after["min_capacity"])

    @property
    def max_capacity(self) -> int:
        return int(self.after["max_capacity"])

    @property
    def suspended(self) -> SuspendedState:
        return SuspendedState.model_validate(self.after["suspended"])

    def as_json(self) -> dict[str, Any]:
        return {"action": self.kind, "before": dict(self.before), "after": dict(self.after)}

    def summary(self) -> str:
        """A short human phrase, e.g. ``desired 3->0`` or ``target 2..6 -> 0..0 suspended``."""
        if self.kind == "update_service":
            return f"desired {self.before.get('desired_count')}->{self.desired_count}"
        if self.kind == "register_target":
            return f"target {bounds_text(self.before)} -> {bounds_text(self.after)}"
        if self.kind == "save_baseline":
            return "save baseline"
        if self.kind == "amend_baseline":
            return "amend baseline"
        if self.kind == "archive_baseline":
            return f"archive the earlier baseline to {self.after.get('pk')} {self.after.get('sk')}"
        return "delete baseline"


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """The writes for one service, in order, plus notes for people and a refusal if any."""

    key: str
    intent: Intent
    actions: tuple[Action, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None

    @property
    def converged(self) -> bool:
        return not self.actions and self.error is None

    @property
    def starts(self) -> bool:
        """True when this plan raises the desired count (its tasks do not exist yet)."""
        return any(
            a.kind == "update_service" and a.desired_count > int(a.before.get("desired_count", 0))
            for a in self.actions
        )


def protecting_pattern(schedule: Schedule, patterns: Sequence[str]) -> str | None:
    """The first pattern matching ``cluster/service``, ``cluster`` or the full service key."""
    names = (schedule.service, schedule.cluster, schedule.key)
    for pattern in patterns:
        if any(fnmatch.fnmatchcase(name, pattern) for name in names):
            return pattern
    return None


def is_protected(schedule: Schedule, patterns: Sequence[str]) -> bool:
    return protecting_pattern(schedule, patterns) is not None


def in_stopped_shape(target: ScalableTarget | None, stopped_count: int) -> bool:
    """Min = Max = S with every kind of scaling suspended: what a teiji stop leaves."""
    return (
        target is not None
        and target.min_capacity == target.max_capacity == stopped_count
        and target.suspended.all_suspended
    )


def looks_pinned(target: ScalableTarget) -> bool:
    """Min = Max with every kind of scaling suspended: teiji's pin, whatever its count (the
    document's stopped count may have changed since). Never taken as what people set."""
    return target.min_capacity == target.max_capacity and target.suspended.all_suspended


def _derived_counts(target: ScalableTarget | None, stopped: int) -> set[int]:
    """desiredCount values that teiji's own writes explain: the stopped count, and where
    RegisterScalableTarget moves it (teiji's pin, or bounds registered while stopped)."""
    counts = {stopped}
    if target is not None:
        counts.add(target.clamp(stopped))
        if looks_pinned(target):
            counts.add(target.min_capacity)
    return counts


def amended_baseline(
    baseline: Baseline, observation: Observation, stopped: int, at: datetime
) -> tuple[Baseline, list[str]]:
    """``baseline`` with what people set while the service was stopped, and a note per change.

    Returns ``baseline`` itself when nothing differs from it except teiji's own pin.
    """
    target = observation.target
    changes: dict[str, Any] = {}
    said: list[str] = []
    if target is None and baseline.has_target:
        changes.update(min_capacity=None, max_capacity=None, suspended=None)
        said.append(f"scalable target {_saved_bounds(baseline)} removed")
    elif target is not None and not looks_pinned(target):
        flags = baseline.suspended or NONE_SUSPENDED
        if not baseline.has_target:
            said.append(f"scalable target {bounds_text(target.as_json())} registered")
        else:
            if baseline.min_capacity != target.min_capacity:
                said.append(f"MinCapacity {baseline.min_capacity}→{target.min_capacity}")
            if baseline.max_capacity != target.max_capacity:
                said.append(f"MaxCapacity {baseline.max_capacity}→{target.max_capacity}")
            said.extend(_flag_changes(flags, target.suspended))
        if said:
            changes.update(
                min_capacity=target.min_capacity,
                max_capacity=target.max_capacity,
                suspended=target.suspended,
            )
    desired = observation.desired_count
    if desired != baseline.desired_count and desired not in _derived_counts(target, stopped):
        changes["desired_count"] = desired
        said.append(f"desiredCount {baseline.desired_count}→{desired}")
    if not changes:
        return baseline, []
    amended_at = at.astimezone(UTC)
    version = hashlib.sha256(
        f"{baseline.key}|{baseline.saved_at.isoformat()}|{amended_at.isoformat()}".encode()
    ).hexdigest()[:16]
    amended = baseline.model_copy(update={**changes, "amended_at": amended_at, "version": version})
    return amended, [f"baseline amended: {', '.join(said)} (changed while stopped)"]


def _saved_bounds(baseline: Baseline) -> str:
    return bounds_text(_baseline_values(baseline))


_FLAG_NAMES = (
    ("dynamic_in", "DynamicScalingInSuspended"),
    ("dynamic_out", "DynamicScalingOutSuspended"),
    ("scheduled", "ScheduledScalingSuspended"),
)


def _flag_changes(before: SuspendedState, after: SuspendedState) -> list[str]:
    return [
        f"{aws} {str(getattr(before, name)).lower()}→{str(getattr(after, name)).lower()}"
        for name, aws in _FLAG_NAMES
        if getattr(before, name) != getattr(after, name)
    ]


def _amend(old: Baseline, new: Baseline) -> Action:
    return Action("amend_baseline", _baseline_values(old), _baseline_values(new), new, replaces=old)


def baseline_matches(baseline: Baseline, observation: Observation) -> bool:
    """False when the baseline was saved for an earlier service of the same name."""
    if (
        baseline.service_arn
        and observation.service_arn
        and baseline.service_arn != observation.service_arn
    ):
        return False
    if baseline.service_created_at and observation.created_at:
        return abs(baseline.service_created_at - observation.created_at) < _SAME_INSTANT
    return True


def who_decided(decision: Decision) -> str:
    parts: list[str] = [decision.source]
    if decision.override_id:
        parts.append(f"override {decision.override_id}")
    if decision.override_by:
        parts.append(f"by {decision.override_by}")
    if decision.holiday:
        parts.append(f"holiday {decision.holiday}")
    return f"{' '.join(parts)}: {decision.reason}"[:1024]


def _target_values(
    min_capacity: int, max_capacity: int, suspended: SuspendedState
) -> dict[str, Any]:
    return {
        "min_capacity": min_capacity,
        "max_capacity": max_capacity,
        "suspended": suspended.model_dump(),
    }


def _register(before: ScalableTarget, lo: int, hi: int, flags: SuspendedState) -> Action:
    return Action("register_target", before.as_json(), _target_values(lo, hi, flags))


def _update(before: int, after: int) -> Action:
    return Action("update_service", {"desired_count": before}, {"desired_count": after})


def _baseline_values(baseline: Baseline) -> dict[str, Any]:
    values: dict[str, Any] = {"desired_count": baseline.desired_count}
    if baseline.has_target:
        values.update(
            _target_values(
                baseline.min_capacity or 0,
                baseline.max_capacity or 0,
                baseline.suspended or NONE_SUSPENDED,
            )
        )
    return values


def new_baseline(decision: Decision, observation: Observation) -> Baseline:
    """The capacity to restore later, taken from what is observed now."""
    target = observation.target
    saved_at = decision.at.astimezone(UTC)
    version = hashlib.sha256(f"{observation.key}|{saved_at.isoformat()}".encode()).hexdigest()
    return Baseline(
        key=observation.key,
        desired_count=observation.desired_count,
        min_capacity=target.min_capacity if target else None,
        max_capacity=target.max_capacity if target else None,
        suspended=target.suspended if target else None,
        saved_at=saved_at,
        service_arn=observation.service_arn,
        service_created_at=observation.created_at,
        decided_by=who_decided(decision),
        version=version[:16],
        task=observation.task,
    )


# The planner ------------------------------------------------------------------------------------
def plan_service(
    decision: Decision,
    observation: Observation | None,
    baseline: Baseline | None,
    schedule: Schedule,
    *,
    protected: Sequence[str] = (),
) -> ServicePlan:
    """Plan the writes that converge one service to ``decision``."""
    key = schedule.key
    if decision.state == "unmanaged":
        return ServicePlan(key, "unmanaged", notes=("unmanaged: teiji leaves it alone",))
    if observation is None:
        raise ValueError(f"{key}: a managed service needs an observation to plan")

    notes: list[str] = []
    usable, earlier = baseline, None
    if baseline is not None and not baseline_matches(baseline, observation):
        notes.append(
            "the saved baseline belongs to an earlier service of the same name (created "
            f"{_when(baseline.service_created_at)}, this one {_when(observation.created_at)}); "
            "it is kept and not restored"
        )
        usable, earlier = None, baseline

    if decision.state == "stopped":
        plan = _plan_stop(decision, observation, usable, schedule, earlier=earlier)
    else:
        plan = _plan_start(decision, observation, usable, schedule)
    plan = ServicePlan(key, plan.intent, plan.actions, (*notes, *plan.notes), plan.error)
    pattern = protecting_pattern(schedule, protected)
    if pattern is not None:
        return _refuse_protected(plan, pattern)
    return plan


def _refuse_protected(plan: ServicePlan, pattern: str) -> ServicePlan:
    """A protected service is never changed: no stop, no start, no growth, whatever a schedule
    or an override says. The document naming it is a mistake worth an alarm: it fails."""
    planned = ", ".join(a.summary() for a in plan.actions) or "nothing"
    return ServicePlan(
        plan.key,
        plan.intent,
        (),
        plan.notes,
        f"protected by TEIJI_PROTECTED (pattern {pattern}): teiji changes nothing about this "
        "service, whatever a document or override says; remove the documents naming it or the "
        f"pattern (planned: {planned})",
    )


def _when(value: Any) -> str:
    return value.isoformat() if value is not None else "unknown"


def _plan_stop(
    decision: Decision,
    observation: Observation,
    baseline: Baseline | None,
    schedule: Schedule,
    *,
    earlier: Baseline | None,
) -> ServicePlan:
    """``earlier``: a baseline saved for an earlier service of the same name, if any.

    It occupies this service's baseline slot, so before this service's own capacity is saved
    it is archived, then deleted with the version condition; nothing else ever removes it.
    """
    stopped = schedule.stopped.desired_count
    target = observation.target
    pinned = in_stopped_shape(target, stopped)
    key = observation.key
    actions: list[Action] = []
    notes: list[str] = []
    if baseline is not None:
        # What people set while it was stopped is the capacity to restore from now on.
        amended, said = amended_baseline(baseline, observation, stopped, decision.at)
        if amended is not baseline:
            actions.append(_amend(baseline, amended))
            notes.extend(said)
    if observation.desired_count == stopped and (target is None or pinned):
        if not actions:
            return ServicePlan(key, "keep", notes=(f"stopped ({decision.reason})",))
        return ServicePlan(key, "stop", tuple(actions), (*notes, f"stopped ({decision.reason})"))

    if baseline is None and not pinned:
        if earlier is not None:
            actions.extend(_archive(earlier, decision, observation))
            notes.append(_archive_note(earlier))
        saved = new_baseline(decision, observation)
        actions.append(Action("save_baseline", {}, _baseline_values(saved), saved))
    if target is not None and not pinned:
        actions.append(_register(target, stopped, stopped, ALL_SUSPENDED))
    if observation.desired_count != stopped:
        actions.append(_update(observation.desired_count, stopped))

    started_outside = observation.desired_count > stopped and (baseline is not None or pinned)
    if started_outside and decision.source != "override":
        notes.append(
            "running outside its scheduled time without an override, so it is stopped again; "
            f"to keep it running, use `teiji start {key} --for 2h --reason ...`"
        )
    else:
        notes.append(f"stopping: {decision.reason}")
    return ServicePlan(key, "stop", tuple(actions), tuple(notes))


def _archive(earlier: Baseline, decision: Decision, observation: Observation) -> list[Action]:
    """Move ``earlier`` out of the baseline slot: copy it to its archive item, then delete it.

    Both writes are safe to repeat after a crash: an identical archive copy counts as done,
    and the delete is conditional on the version that was read.
    """
    before = {
        "pk": "baseline",
        "sk": earlier.key,
        **_baseline_values(earlier),
        "saved_at": earlier.saved_at.isoformat(),
        "service_arn": earlier.service_arn,
        "service_created_at": _when(earlier.service_created_at),
    }
    after = {
        "pk": BASELINE_ARCHIVE_PK,
        "sk": earlier.archive_sort_key,
        "archived_at": decision.at.astimezone(UTC).isoformat(),
        "superseded_by": observation.service_arn,
    }
    return [
        Action("archive_baseline", before, after, earlier),
        Action("delete_baseline", _baseline_values(earlier), {}, earlier),
    ]


def _archive_note(earlier: Baseline) -> str:
    return (
        f"the earlier service's baseline (saved {earlier.saved_at.isoformat()}) is moved to the "
        f"state table item pk={BASELINE_ARCHIVE_PK} sk={earlier.archive_sort_key} so that this "
        "service's own capacity can be saved; teiji never deletes archived baselines"
    )


def _plan_start(
    decision: Decision, observation: Observation, baseline: Baseline | None, schedule: Schedule
) -> ServicePlan:
    if baseline is not None:
        return _plan_restore(decision, observation, baseline, schedule)
    target = observation.target
    pinned = target is not None and looks_pinned(target)
    key = observation.key
    if observation.desired_count > 0 and not pinned:
        return ServicePlan(key, "keep", notes=("running; its capacity is left to autoscaling",))

    running = schedule.running
    want = running.desired_count if running and running.desired_count is not None else None
    if want is None:
        want = max(1, observation.desired_count)
    actions: list[Action] = []
    want, refusal = _fit_target(actions, target, want, schedule)
    if refusal:
        return ServicePlan(key, "start", (), error=refusal)
    if observation.desired_count != want:
        actions.append(_update(observation.desired_count, want))
    note = f"starting with no saved capacity, at desired {want} ({decision.reason})"
    return ServicePlan(key, "start", tuple(actions), (note,))


def _fit_target(
    actions: list[Action], target: ScalableTarget | None, want: int, schedule: Schedule
) -> tuple[int, str | None]:
    """Start without saved bounds: widen the target until it holds ``want``.

    Min = running.min_capacity or min(current Min, want); Max = running.max_capacity or
    max(current Max, want); scaling no longer suspended. Returns ``want`` inside the bounds,
    or a refusal: a target in teiji's pin shape says nothing about the bounds people gave it,
    so without both running bounds in the document teiji does not make them up.
    """
    if target is None:
        return want, None
    pinned = looks_pinned(target)
    if not pinned and target.holds(want):
        return want, None
    running = schedule.running
    lo = running.min_capacity if running and running.min_capacity is not None else None
    hi = running.max_capacity if running and running.max_capacity is not None else None
    if pinned and (lo is None or hi is None):
        return want, (
            f"the scalable target is pinned as teiji stops a service "
            f"({bounds_text(target.as_json())}) and no baseline says what its bounds were; "
            "teiji does not take bounds from its own pin. Register the bounds you want on the "
            "target, or set running.min_capacity and running.max_capacity in the schedule"
        )
    lo = min(target.min_capacity, want) if lo is None else lo
    hi = max(target.max_capacity, want) if hi is None else hi
    # The document's bounds may be the target's already (running.max_capacity 0 keeps the
    # service at 0): registering them again would be a write every tick that changes nothing.
    if (target.min_capacity, target.max_capacity, target.suspended) != (lo, hi, NONE_SUSPENDED):
        actions.append(_register(target, lo, hi, NONE_SUSPENDED))
    return max(lo, min(hi, want)), None


def _plan_restore(
    decision: Decision, observation: Observation, baseline: Baseline, schedule: Schedule
) -> ServicePlan:
    target = observation.target
    key = observation.key
    actions: list[Action] = []
    notes: list[str] = []
    amended, said = amended_baseline(
        baseline, observation, schedule.stopped.desired_count, decision.at
    )
    if amended is not baseline:
        actions.append(_amend(baseline, amended))
        notes.extend(said)
        baseline = amended

    running = schedule.running
    if running is not None and running.desired_count is not None:
        want = running.desired_count
    elif baseline.desired_count == 0:
        # A baseline taken while the service was already at 0 holds nothing to run; the next
        # tick would start it anyway, so start it now at the smallest count that runs.
        want = 1
        notes.append("the saved desired count was 0; starting at 1")
    else:
        want = baseline.desired_count

    if target is not None and baseline.has_target:
        lo, hi = baseline.min_capacity or 0, baseline.max_capacity or 0
        flags = baseline.suspended or NONE_SUSPENDED
        if want > hi and (baseline.desired_count == 0 or hi == 0):
            hi = want  # saved bounds that cannot run anything: widen just enough to start
        if (target.min_capacity, target.max_capacity, target.suspended) != (lo, hi, flags):
            actions.append(_register(target, lo, hi, flags))
        if not lo <= want <= hi:
            clamped = max(lo, min(hi, want))
            notes.append(f"desired {want} is outside the saved {lo}..{hi}; using {clamped}")
            want = clamped
    elif target is not None:
        # The baseline has no target and the one there looks like teiji's pin: its bounds are
        # unknown (amended_baseline folds in any target people registered).
        want, refusal = _fit_target(actions, target, want, schedule)
        if refusal:
            return ServicePlan(key, "start", (), tuple(notes), refusal)

    if observation.desired_count != want:
        actions.append(_update(observation.desired_count, want))
    actions.append(Action("delete_baseline", _baseline_values(baseline), {}, baseline))
    saved = baseline.saved_at.isoformat()
    notes.append(f"restoring the capacity saved {saved} ({decision.reason})")
    return ServicePlan(key, "start", tuple(actions), tuple(notes))
