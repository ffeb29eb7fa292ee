"""The planner: every (decision, observation, baseline) combination, and the rules that hold
for all of them under real AWS semantics (RegisterScalableTarget clamps desiredCount)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.model import Decision, Observation, ScalableTarget
from engine.plan import (
    ServicePlan,
    in_stopped_shape,
    is_protected,
    looks_pinned,
    new_baseline,
    plan_service,
)
from schemas.documents import Schedule
from schemas.records import ALL_SUSPENDED, NONE_SUSPENDED, Baseline, SuspendedState

AT = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # 22:00 in Tokyo
CREATED = datetime(2026, 1, 5, 1, 2, 3, 456000, tzinfo=UTC)
ARN = "arn:aws:ecs:ap-northeast-1:123456789012:service/c1/web"
RECREATED = CREATED + timedelta(days=30)  # the same name, deleted and created again
IN_ONLY = SuspendedState(dynamic_in=True)
FLAGS = {"all": ALL_SUSPENDED, "none": NONE_SUSPENDED, "in": IN_ONLY}


def schedule(**fields: Any) -> Schedule:
    doc: dict[str, Any] = {
        "service": "c1/web",
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
    }
    doc.update(fields)
    return Schedule.model_validate(doc)


def decision(state: str, source: str = "window", **extra: Any) -> Decision:
    return Decision(state, source, f"{state} by {source}", AT, None, **extra)  # type: ignore[arg-type]


def target(lo: int, hi: int, flags: str = "none") -> ScalableTarget:
    return ScalableTarget("service/c1/web", lo, hi, FLAGS[flags])


def observation(desired: int, tgt: ScalableTarget | None = None, **extra: Any) -> Observation:
    fields: dict[str, Any] = {
        "key": "c1/web",
        "cluster": "c1",
        "service": "web",
        "account": None,
        "region": None,
        "desired_count": desired,
        "running_count": desired,
        "service_arn": ARN,
        "created_at": CREATED,
        "target": tgt,
    }
    fields.update(extra)
    return Observation(**fields)


def baseline(
    desired: int,
    lo: int | None = None,
    hi: int | None = None,
    flags: str | None = None,
    **extra: Any,
) -> Baseline:
    fields: dict[str, Any] = {
        "key": "c1/web",
        "desired_count": desired,
        "min_capacity": lo,
        "max_capacity": hi,
        "suspended": FLAGS[flags] if flags else None,
        "saved_at": AT - timedelta(days=1),
        "service_arn": ARN,
        "service_created_at": CREATED,
        "decided_by": "window",
        "version": "v1",
    }
    fields.update(extra)
    return Baseline(**fields)


def compact(plan: ServicePlan) -> list[tuple[Any, ...]]:
    """Actions as short tuples: ("archive", d), ("save"/"amend", d, min, max, flags),
    ("register", min, max, flags), ("update", d), ("delete",)."""
    out: list[tuple[Any, ...]] = []
    for action in plan.actions:
        if action.kind == "archive_baseline":
            assert action.baseline is not None
            out.append(("archive", action.baseline.desired_count))
        elif action.kind in ("save_baseline", "amend_baseline"):
            b = action.baseline
            assert b is not None
            flags = _flag_name(b.suspended) if b.suspended else None
            kind = "save" if action.kind == "save_baseline" else "amend"
            out.append((kind, b.desired_count, b.min_capacity, b.max_capacity, flags))
        elif action.kind == "register_target":
            out.append(
                ("register", action.min_capacity, action.max_capacity, _flag_name(action.suspended))
            )
        elif action.kind == "update_service":
            out.append(("update", action.desired_count))
        else:
            out.append(("delete",))
    return out


def _flag_name(flags: SuspendedState) -> str:
    return next(name for name, value in FLAGS.items() if value == flags)


# name, decision state, observation, baseline, schedule fields, expected actions, note fragment
CASES: list[tuple[str, str, Observation, Baseline | None, dict[str, Any], list[Any], str]] = [
    (
        "stop: saves the baseline first, pins the target, then sets desired",
        "stopped",
        observation(3, target(2, 6, "in")),
        None,
        {},
        [("save", 3, 2, 6, "in"), ("register", 0, 0, "all"), ("update", 0)],
        "stopping",
    ),
    (
        "stop: already stopped -> no writes",
        "stopped",
        observation(0, target(0, 0, "all")),
        baseline(3, 2, 6, "in"),
        {},
        [],
        "stopped",
    ),
    (
        "stop: a service without a scalable target only gets UpdateService",
        "stopped",
        observation(2),
        None,
        {},
        [("save", 2, None, None, None), ("update", 0)],
        "stopping",
    ),
    (
        "stop: without a target and already at 0 -> no writes",
        "stopped",
        observation(0),
        None,
        {},
        [],
        "stopped",
    ),
    (
        "stop: crashed after saving the baseline, before registering -> keep the baseline",
        "stopped",
        observation(3, target(2, 6, "in")),
        baseline(3, 2, 6, "in"),
        {},
        [("register", 0, 0, "all"), ("update", 0)],
        "stopped again",
    ),
    (
        "stop: crashed after registering, before UpdateService -> only UpdateService",
        "stopped",
        observation(3, target(0, 0, "all")),
        baseline(3, 2, 6, "in"),
        {},
        [("update", 0)],
        "stopped again",
    ),
    (
        "stop: started by hand at night: the count people set is the new original",
        "stopped",
        observation(2, target(0, 0, "all")),
        baseline(3, 2, 6, "in"),
        {},
        [("amend", 2, 2, 6, "in"), ("update", 0)],
        "teiji start c1/web --for 2h --reason",
    ),
    (
        "stop: started by hand at night without a target: amended, stopped again",
        "stopped",
        observation(1),
        baseline(2),
        {},
        [("amend", 1, None, None, None), ("update", 0)],
        "baseline amended: desiredCount 2→1 (changed while stopped)",
    ),
    (
        "stop: stopped.desired_count > 0 pins Min = Max = S",
        "stopped",
        observation(3, target(2, 6)),
        None,
        {"stopped": {"desired_count": 1}},
        [("save", 3, 2, 6, "none"), ("register", 1, 1, "all"), ("update", 1)],
        "stopping",
    ),
    (
        "stop: stopped.desired_count > 0 already converged",
        "stopped",
        observation(1, target(1, 1, "all")),
        baseline(3, 2, 6),
        {"stopped": {"desired_count": 1}},
        [],
        "stopped",
    ),
    (
        "stop: at desired 0 but autoscaling could scale out -> pin the target",
        "stopped",
        observation(0, target(0, 4)),
        None,
        {},
        [("save", 0, 0, 4, "none"), ("register", 0, 0, "all")],
        "stopping",
    ),
    (
        "stop: target pinned by hand with no baseline -> nothing to save",
        "stopped",
        observation(2, target(0, 0, "all")),
        None,
        {},
        [("update", 0)],
        "stopped again",
    ),
    (
        "start: restores Min, Max and SuspendedState exactly, then desired, then deletes",
        "running",
        observation(0, target(0, 0, "all")),
        baseline(3, 2, 6, "in"),
        {},
        [("register", 2, 6, "in"), ("update", 3), ("delete",)],
        "restoring",
    ),
    (
        "start: running.desired_count overrides the saved desired count",
        "running",
        observation(0, target(0, 0, "all")),
        baseline(3, 2, 6, "in"),
        {"running": {"desired_count": 4}},
        [("register", 2, 6, "in"), ("update", 4), ("delete",)],
        "restoring",
    ),
    (
        "start: running.desired_count outside the restored bounds is clamped",
        "running",
        observation(0, target(0, 0, "all")),
        baseline(3, 2, 6, "in"),
        {"running": {"desired_count": 9}},
        [("register", 2, 6, "in"), ("update", 6), ("delete",)],
        "outside the saved 2..6",
    ),
    (
        "start: target deregistered meanwhile -> the baseline loses it, desired only",
        "running",
        observation(0),
        baseline(3, 2, 6, "in"),
        {},
        [("amend", 3, None, None, None), ("update", 3), ("delete",)],
        "baseline amended: scalable target 2..6 suspended:dynamic_in removed",
    ),
    (
        "start: target registered after the stop -> part of the baseline, kept",
        "running",
        observation(0, target(1, 5)),
        baseline(3),
        {},
        [("amend", 3, 1, 5, "none"), ("update", 3), ("delete",)],
        "baseline amended: scalable target 1..5 registered (changed while stopped)",
    ),
    (
        "start: target 0..0 registered after the stop -> kept, Max widened just enough",
        "running",
        observation(0, target(0, 0)),
        baseline(3),
        {},
        [("amend", 3, 0, 0, "none"), ("register", 0, 3, "none"), ("update", 3), ("delete",)],
        "baseline amended: scalable target 0..0 registered",
    ),
    (
        "start: saved bounds 0..0 at desired 0 -> widened just enough to run one task",
        "running",
        observation(0, target(0, 0, "all")),
        baseline(0, 0, 0, "in"),
        {},
        [("register", 0, 1, "in"), ("update", 1), ("delete",)],
        "saved desired count was 0",
    ),
    (
        "start: crashed after restoring both -> only delete the baseline",
        "running",
        observation(3, target(2, 6, "in")),
        baseline(3, 2, 6, "in"),
        {},
        [("delete",)],
        "restoring",
    ),
    (
        "start: crashed after restoring the target -> desired, then delete",
        "running",
        observation(2, target(2, 6, "in")),
        baseline(3, 2, 6, "in"),
        {},
        [("update", 3), ("delete",)],
        "restoring",
    ),
    (
        "start: a baseline taken at 0 starts at 1 rather than staying off",
        "running",
        observation(0, target(0, 0, "all")),
        baseline(0, 0, 4),
        {},
        [("register", 0, 4, "none"), ("update", 1), ("delete",)],
        "saved desired count was 0",
    ),
    (
        "start: no baseline, no target, at 0 -> desired 1",
        "running",
        observation(0),
        None,
        {},
        [("update", 1)],
        "no saved capacity",
    ),
    (
        "start: no baseline, target in stopped shape -> refused, bounds never taken from the pin",
        "running",
        observation(0, target(0, 0, "all")),
        None,
        {},
        [],
        "teiji does not take bounds from its own pin",
    ),
    (
        "start: no baseline, bounds hold the count -> UpdateService only",
        "running",
        observation(0, target(0, 4)),
        None,
        {},
        [("update", 1)],
        "no saved capacity",
    ),
    (
        "start: no baseline, bounds cannot hold the count -> widen them",
        "running",
        observation(0, target(2, 6)),
        None,
        {"running": {"desired_count": 1}},
        [("register", 1, 6, "none"), ("update", 1)],
        "no saved capacity",
    ),
    (
        "start: no baseline, running bounds from the document",
        "running",
        observation(0, target(0, 0, "all")),
        None,
        {"running": {"desired_count": 2, "min_capacity": 1, "max_capacity": 5}},
        [("register", 1, 5, "none"), ("update", 2)],
        "no saved capacity",
    ),
    (
        "start: stopped by hand during working hours -> started again",
        "running",
        observation(0, target(1, 4)),
        None,
        {},
        [("update", 1)],
        "no saved capacity",
    ),
    (
        "start: stopped.desired_count > 0 and pinned with no baseline -> refused",
        "running",
        observation(1, target(1, 1, "all")),
        None,
        {"stopped": {"desired_count": 1}},
        [],
        "teiji does not take bounds from its own pin",
    ),
    (
        "running: capacity is left to autoscaling",
        "running",
        observation(2, target(1, 4)),
        None,
        {},
        [],
        "autoscaling",
    ),
    (
        "running: scaled by hand to 7 is left alone",
        "running",
        observation(7),
        None,
        {},
        [],
        "autoscaling",
    ),
    (
        "recreated service: stop archives the old baseline, then saves its own",
        "stopped",
        observation(2, target(1, 3), created_at=RECREATED),
        baseline(5, 4, 8),
        {},
        [
            ("archive", 5),
            ("delete",),
            ("save", 2, 1, 3, "none"),
            ("register", 0, 0, "all"),
            ("update", 0),
        ],
        "pk=baseline-archive sk=c1/web#2026-11-30T13:00:00+00:00",
    ),
    (
        "recreated service: stop without a target archives too",
        "stopped",
        observation(2, created_at=RECREATED),
        baseline(5),
        {},
        [("archive", 5), ("delete",), ("save", 2, None, None, None), ("update", 0)],
        "earlier service of the same name",
    ),
    (
        "recreated service: already stopped -> no writes, the old baseline stays",
        "stopped",
        observation(0, created_at=RECREATED),
        baseline(5, 4, 8),
        {},
        [],
        "earlier service of the same name",
    ),
    (
        "recreated service: pinned by hand -> nothing to save, nothing archived",
        "stopped",
        observation(2, target(0, 0, "all"), created_at=RECREATED),
        baseline(5, 4, 8),
        {},
        [("update", 0)],
        "earlier service of the same name",
    ),
    (
        "recreated service: crashed after archiving and deleting -> a plain stop",
        "stopped",
        observation(2, target(1, 3), created_at=RECREATED),
        None,
        {},
        [("save", 2, 1, 3, "none"), ("register", 0, 0, "all"), ("update", 0)],
        "stopping",
    ),
    (
        "recreated service: start ignores the old baseline and keeps it",
        "running",
        observation(0, created_at=RECREATED),
        baseline(5, 4, 8),
        {},
        [("update", 1)],
        "no saved capacity",
    ),
]


@pytest.mark.parametrize(
    ("state", "obs", "saved", "fields", "expected", "note"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_plan_table(
    state: str,
    obs: Observation,
    saved: Baseline | None,
    fields: dict[str, Any],
    expected: list[Any],
    note: str,
) -> None:
    plan = plan_service(decision(state), obs, saved, schedule(**fields))
    assert compact(plan) == expected
    if plan.error is not None:  # a refusal: it writes nothing and says why
        assert expected == [] and note in plan.error, plan.error
        return
    assert any(note in text for text in plan.notes), plan.notes


def test_recreated_service_note_names_both_creation_times() -> None:
    newer = RECREATED
    plan = plan_service(
        decision("running"), observation(0, created_at=newer), baseline(5, 4, 8), schedule()
    )
    assert CREATED.isoformat() in plan.notes[0]
    assert newer.isoformat() in plan.notes[0]
    assert all(a.kind != "delete_baseline" for a in plan.actions)


def test_archiving_tells_where_the_old_baseline_goes() -> None:
    old = baseline(5, 4, 8, "in", version="old")
    plan = plan_service(
        decision("stopped"), observation(2, target(1, 3), created_at=RECREATED), old, schedule()
    )
    archive, delete, save = plan.actions[:3]
    assert archive.baseline == old
    assert delete.baseline == old  # the version-conditional delete of exactly what was read
    assert save.baseline is not None and save.baseline.service_created_at == RECREATED
    assert archive.before == {
        "pk": "baseline",
        "sk": "c1/web",
        "desired_count": 5,
        "min_capacity": 4,
        "max_capacity": 8,
        "suspended": {"dynamic_in": True, "dynamic_out": False, "scheduled": False},
        "saved_at": old.saved_at.isoformat(),
        "service_arn": ARN,
        "service_created_at": CREATED.isoformat(),
    }
    assert archive.after == {
        "pk": "baseline-archive",
        "sk": "c1/web#2026-11-30T13:00:00+00:00",
        "archived_at": AT.isoformat(),
        "superseded_by": ARN,
    }
    assert archive.summary() == (
        "archive the earlier baseline to baseline-archive c1/web#2026-11-30T13:00:00+00:00"
    )
    note = next(n for n in plan.notes if "baseline-archive" in n)
    assert "never deletes" in note
    assert archive.as_json()["action"] == "archive_baseline"


def test_a_protected_recreated_service_archives_nothing() -> None:
    plan = plan_service(
        decision("stopped"),
        observation(2, target(1, 3), created_at=RECREATED),
        baseline(5, 4, 8),
        schedule(),
        protected=("c1/web",),
    )
    assert plan.actions == ()
    assert plan.error is not None and "archive the earlier baseline" in plan.error


def test_baseline_matches_within_a_second_of_rounding() -> None:
    obs = observation(0, target(0, 0, "all"), created_at=CREATED + timedelta(microseconds=400))
    plan = plan_service(decision("running"), obs, baseline(3, 2, 6, "in"), schedule())
    assert compact(plan)[0] == ("register", 2, 6, "in")


def test_stop_by_override_is_not_called_a_restart_outside_hours() -> None:
    plan = plan_service(
        decision("stopped", "override", override_id="x1", override_by="suzuki"),
        observation(2, target(0, 0, "all")),
        baseline(3, 2, 6),
        schedule(),
    )
    assert not any("teiji start" in note for note in plan.notes)


def test_stop_saves_identity_and_who_decided() -> None:
    plan = plan_service(
        decision("stopped", "holiday", holiday="New Year's Day (JP)"),
        observation(3, target(2, 6, "in")),
        None,
        schedule(),
    )
    saved = plan.actions[0].baseline
    assert saved is not None
    assert saved.service_arn == ARN
    assert saved.service_created_at == CREATED
    assert saved.saved_at == AT
    assert "holiday New Year's Day (JP)" in saved.decided_by
    assert plan.actions[1].before == {
        "min_capacity": 2,
        "max_capacity": 6,
        "suspended": {"dynamic_in": True, "dynamic_out": False, "scheduled": False},
    }


@pytest.mark.parametrize(
    "patterns", [("c1/web",), ("c1",), ("c1/*",), ("*/web",)], ids=lambda p: p[0]
)
def test_protected_service_is_never_stopped(patterns: tuple[str, ...]) -> None:
    plan = plan_service(
        decision("stopped"), observation(3, target(2, 6)), None, schedule(), protected=patterns
    )
    assert plan.actions == ()
    assert plan.error is not None
    assert "protected" in plan.error
    assert "desired 3->0" in plan.error


def test_protected_service_is_never_shrunk_on_start() -> None:
    # Started by hand at 10 during the night; the saved capacity (3) would shrink it.
    plan = plan_service(
        decision("running"),
        observation(10, target(0, 0, "all")),
        baseline(3, 2, 6),
        schedule(),
        protected=("c1",),
    )
    assert plan.error is not None
    assert plan.actions == ()


def test_protected_service_is_never_started_and_its_document_is_reported() -> None:
    start = plan_service(decision("running"), observation(0), None, schedule(), protected=("c1/*",))
    assert start.actions == ()
    assert start.error is not None and "pattern c1/*" in start.error
    assert "planned: desired 0->1" in start.error
    grow = plan_service(
        decision("running", "override", override_id="x1"),
        observation(0, target(0, 0, "all")),
        baseline(3, 2, 6),
        schedule(),
        protected=("*/web",),
    )
    assert grow.actions == () and grow.error is not None
    converged = plan_service(
        decision("stopped"), observation(0), None, schedule(), protected=("c1/*",)
    )
    assert converged.actions == ()
    assert converged.error is not None and "planned: nothing" in converged.error


def test_protection_patterns_match_only_their_services() -> None:
    assert is_protected(schedule(), ["c1"])
    assert not is_protected(schedule(), ["c2", "c1/api", "c1x"])
    scoped = schedule(account="111122223333", region="us-east-1")
    assert is_protected(scoped, ["c1/web@111122223333/*"])


def test_unmanaged_needs_no_observation() -> None:
    plan = plan_service(decision("unmanaged", "mode"), None, baseline(3), schedule())
    assert plan.intent == "unmanaged"
    assert plan.actions == ()


def test_managed_service_without_observation_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="observation"):
        plan_service(decision("running"), None, None, schedule())


def test_plan_starts_only_when_desired_rises() -> None:
    start = plan_service(decision("running"), observation(0), None, schedule())
    assert start.starts
    restore_done = plan_service(
        decision("running"), observation(3, target(2, 6, "in")), baseline(3, 2, 6, "in"), schedule()
    )
    assert not restore_done.starts


# Properties under real AWS semantics -----------------------------------------------------------
@dataclass
class Aws:
    """One service as real AWS behaves: registering clamps desiredCount into [Min, Max]."""

    desired: int
    target: ScalableTarget | None
    baseline: Baseline | None = None
    created_at: datetime = CREATED
    archive: dict[str, Baseline] = field(default_factory=dict)

    def observe(self) -> Observation:
        return observation(self.desired, self.target, created_at=self.created_at)

    def apply(self, plan: ServicePlan, writes: int | None = None) -> None:
        """Carry out the plan as apply_plan does; ``writes``: crash after that many."""
        for action in plan.actions[:writes]:
            if action.kind == "archive_baseline":
                assert action.baseline is not None
                key = action.baseline.archive_sort_key
                assert self.archive.get(key, action.baseline) == action.baseline
                self.archive[key] = action.baseline  # conditional: an identical copy is done
            elif action.kind == "save_baseline":
                if self.baseline is None:  # conditional write: never overwrite
                    self.baseline = action.baseline
            elif action.kind == "amend_baseline":
                if self.baseline != action.replaces:  # conditional on the version read
                    return
                self.baseline = action.baseline
            elif action.kind == "register_target":
                assert self.target is not None
                self.target = replace(
                    self.target,
                    min_capacity=action.min_capacity,
                    max_capacity=action.max_capacity,
                    suspended=action.suspended,
                )
                self.desired = self.target.clamp(self.desired)
            elif action.kind == "update_service":
                self.desired = action.desired_count
            elif self.baseline == action.baseline:  # conditional on the version read
                self.baseline = None
            elif plan.intent == "stop":
                return  # the slot changed since it was read: left to the next tick


flags_strategy = st.builds(
    SuspendedState, dynamic_in=st.booleans(), dynamic_out=st.booleans(), scheduled=st.booleans()
)


@st.composite
def running_service(draw: st.DrawFn) -> Aws:
    """A service as it runs on real AWS: desired inside its bounds when it has a target."""
    desired = draw(st.integers(1, 20))
    if draw(st.booleans()):
        return Aws(desired, None)
    lo = draw(st.integers(0, desired))
    hi = draw(st.integers(desired, 30))
    return Aws(desired, ScalableTarget("service/c1/web", lo, hi, draw(flags_strategy)))


@settings(max_examples=300, deadline=None)
@given(running_service(), st.integers(0, 3))
def test_stop_then_start_restores_exactly(aws: Aws, stopped_count: int) -> None:
    sched = schedule(stopped={"desired_count": stopped_count})
    before = (aws.desired, aws.target)
    if aws.desired == stopped_count and (
        aws.target is None or in_stopped_shape(aws.target, stopped_count)
    ):
        return  # nothing to stop: already in the stopped state
    aws.apply(plan_service(decision("stopped"), aws.observe(), aws.baseline, sched))
    assert aws.desired == stopped_count
    if aws.target is not None:
        assert in_stopped_shape(aws.target, stopped_count)
    aws.apply(plan_service(decision("running"), aws.observe(), aws.baseline, sched))
    assert (aws.desired, aws.target) == before
    assert aws.baseline is None


@st.composite
def running_block(draw: st.DrawFn) -> dict[str, int] | None:
    """A valid ``running`` block of a schedule, or none."""
    if draw(st.booleans()):
        return None
    block: dict[str, int] = {}
    want = draw(st.none() | st.integers(0, 6))
    lo = draw(st.none() | st.integers(0, want if want is not None else 6))
    hi_floor = max(v for v in (want, lo, 0) if v is not None)
    hi = draw(st.none() | st.integers(hi_floor, 10))
    for name, value in (("desired_count", want), ("min_capacity", lo), ("max_capacity", hi)):
        if value is not None:
            block[name] = value
    return block


@st.composite
def any_state(draw: st.DrawFn) -> tuple[Aws, str, int]:
    desired = draw(st.integers(0, 12))
    tgt = None
    if draw(st.booleans()):
        lo = draw(st.integers(0, 8))
        tgt = ScalableTarget("service/c1/web", lo, draw(st.integers(lo, 12)), draw(flags_strategy))
    aws = Aws(desired, tgt)
    if draw(st.booleans()):
        b_desired = draw(st.integers(0, 12))
        if draw(st.booleans()):
            b_lo = draw(st.integers(0, b_desired))
            b_hi = draw(st.integers(b_desired, 12))
            aws.baseline = baseline(b_desired, b_lo, b_hi, draw(st.sampled_from(["none", "in"])))
        else:
            aws.baseline = baseline(b_desired)
    return aws, draw(st.sampled_from(["running", "stopped"])), draw(st.integers(0, 2))


@settings(max_examples=500, deadline=None)
@given(any_state(), running_block())
@example(  # a schedule whose running bounds are 0..0 keeps the service at 0 without rewriting
    (Aws(0, ScalableTarget("service/c1/web", 2, 2, NONE_SUSPENDED)), "running", 0),
    {"min_capacity": 0, "max_capacity": 0},
)
def test_one_tick_converges_and_the_next_writes_nothing(
    case: tuple[Aws, str, int], running: dict[str, int] | None
) -> None:
    aws, state, stopped_count = case
    sched = schedule(stopped={"desired_count": stopped_count}, running=running)
    first = plan_service(decision(state), aws.observe(), aws.baseline, sched)
    if first.error is not None:
        # Only a start with nothing saved and a target in teiji's pin shape is refused:
        # teiji does not take bounds from its own pin.
        assert state == "running" and aws.target is not None and looks_pinned(aws.target)
        assert first.actions == ()
        return
    aws.apply(first)
    second = plan_service(decision(state), aws.observe(), aws.baseline, sched)
    assert second.actions == (), (first.actions, second.actions)
    if state == "stopped":
        assert aws.desired == stopped_count
        assert aws.target is None or in_stopped_shape(aws.target, stopped_count)
    elif running is None or 0 not in (running.get("desired_count"), running.get("max_capacity")):
        assert aws.desired > 0 or stopped_count > 0


@settings(max_examples=200, deadline=None)
@given(any_state())
def test_baseline_is_saved_before_any_capacity_change(case: tuple[Aws, str, int]) -> None:
    aws, state, stopped_count = case
    plan = plan_service(
        decision(state),
        aws.observe(),
        aws.baseline,
        schedule(stopped={"desired_count": stopped_count}),
    )
    kinds = [a.kind for a in plan.actions]
    changes = [k for k in kinds if k in ("register_target", "update_service")]
    if "save_baseline" in kinds and changes:
        assert kinds.index("save_baseline") < kinds.index(changes[0])
    if "archive_baseline" in kinds:
        # The earlier service's baseline is copied, then removed, then this one's saved.
        assert kinds[:3] == ["archive_baseline", "delete_baseline", "save_baseline"]
    elif "delete_baseline" in kinds:
        assert kinds[-1] == "delete_baseline"
    if "register_target" in kinds and "update_service" in kinds:
        # Bounds first, so real AWS's clamping cannot undo the desired count afterwards.
        assert kinds.index("register_target") < kinds.index("update_service")
    for action in plan.actions:
        if action.kind == "register_target":
            assert set(action.after["suspended"]) == {"dynamic_in", "dynamic_out", "scheduled"}


def _assert_nothing_lost(aws: Aws, old: Baseline, before: tuple[Any, ...], context: Any) -> None:
    """The earlier baseline is in its slot or archived; the service's capacity is as it was
    or saved in the slot."""
    assert aws.baseline == old or aws.archive.get(old.archive_sort_key) == old, context
    if (aws.desired, aws.target) != before:
        saved = aws.baseline
        assert saved is not None and saved.service_created_at == RECREATED, context
        assert saved.desired_count == before[0], context


@settings(max_examples=300, deadline=None)
@given(running_service(), st.integers(0, 3), st.data())
def test_recreated_service_stop_survives_a_crash_after_any_write(
    aws: Aws, stopped_count: int, data: st.DataObject
) -> None:
    # A tick stopping a recreated service dies after k of its writes; the next tick finishes
    # the stop, the start after it restores the new service exactly, and the earlier
    # service's baseline ends up archived, once, unchanged.
    sched = schedule(stopped={"desired_count": stopped_count})
    if aws.desired == stopped_count and (
        aws.target is None or in_stopped_shape(aws.target, stopped_count)
    ):
        return  # nothing to stop: already in the stopped state
    old = baseline(5, 4, 8, "in", version="old")
    aws.baseline, aws.created_at = old, RECREATED
    before = (aws.desired, aws.target)

    first = plan_service(decision("stopped"), aws.observe(), aws.baseline, sched)
    crash_after = data.draw(st.integers(0, len(first.actions)), label="crash after")
    aws.apply(first, crash_after)
    _assert_nothing_lost(aws, old, before, (crash_after, first.actions))

    aws.apply(plan_service(decision("stopped"), aws.observe(), aws.baseline, sched))
    assert aws.desired == stopped_count
    assert aws.target is None or in_stopped_shape(aws.target, stopped_count)
    assert aws.archive == {old.archive_sort_key: old}
    aws.apply(plan_service(decision("running"), aws.observe(), aws.baseline, sched))
    assert (aws.desired, aws.target) == before
    assert aws.baseline is None
    assert aws.archive == {old.archive_sort_key: old}


def test_new_baseline_version_is_stable_for_one_instant() -> None:
    obs = observation(3, target(2, 6))
    assert (
        new_baseline(decision("stopped"), obs).version
        == new_baseline(decision("stopped"), obs).version
    )
