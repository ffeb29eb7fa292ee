"""What people change while a service is stopped becomes the new original.

Through the ``teiji`` command against moto's server. A target deregistered, registered again,
replaced with other bounds or flags, a count scaled by hand: teiji folds what people set into
the baseline (and says so in the report), pins the service again, and the morning brings back
exactly what they set. teiji never takes bounds from its own 0..0 pin. The invariant is
asserted after every tick, with ``expected`` following what people last set.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.invariant import Capacity, assert_invariant, snapshot
from tests.world import World, run_cli, schedule

DAY_AT = "2026-12-01T15:00:00+09:00"  # Tuesday, running
STOP_AT = "2026-12-01T22:15:00+09:00"
LATER_AT = "2026-12-01T23:30:00+09:00"
START_AT = "2026-12-02T05:00:00+09:00"
ALL = {"in": True, "out": True, "scheduled": True}
NONE = {"in": False, "out": False, "scheduled": False}


@pytest.fixture
def world(endpoint: str, capsys: pytest.CaptureFixture[str]) -> World:
    w = World(endpoint)
    w.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
    assert run_cli(capsys, endpoint, "init")[0] == 0
    w.put(schedule("c1/web"))
    return w


def _tick(capsys: pytest.CaptureFixture[str], endpoint: str, at: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, endpoint, "tick", "--at", at, "--json")
    assert code == 0, out + err
    report: dict[str, Any] = json.loads(out)
    return next(s for s in report["services"] if s["service"] == "c1/web")


def _web() -> Capacity:
    return snapshot(["c1/web"])["c1/web"]


def test_a_target_registered_while_stopped_is_restored_exactly(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # During the day the target is deregistered: people's capacity is now 3, no target.
    world.deregister_target("c1", "web")
    expected = {"c1/web": Capacity.of(3)}
    assert _tick(capsys, endpoint, DAY_AT)["outcome"] == "converged"
    assert_invariant(world, expected)

    assert _tick(capsys, endpoint, STOP_AT)["outcome"] == "changed"
    assert _web() == Capacity.of(0)
    assert_invariant(world, expected, context="stopped without a target")

    # Terraform registers 2..6 again while it is stopped.
    world.register_target("c1", "web", 2, 6, {"in": True})
    expected = {"c1/web": Capacity.of(3, (2, 6), {"in": True})}
    report = _tick(capsys, endpoint, LATER_AT)
    assert report["outcome"] == "changed"
    assert (
        "baseline amended: scalable target 2..6 suspended:dynamic_in registered "
        "(changed while stopped)" in report["notes"]
    )
    assert [a["action"] for a in report["actions"]] == ["amend_baseline", "register_target"]
    assert _web().in_stopped_shape(0)
    assert_invariant(world, expected, context="pinned again")

    report = _tick(capsys, endpoint, START_AT)
    assert _web() == expected["c1/web"]
    assert_invariant(world, expected, context="restored")


def test_a_target_replaced_while_stopped_is_the_new_original(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tick(capsys, endpoint, STOP_AT)
    # Replaced with other bounds and other flags (real AWS moves desired 0 up into 3..8).
    world.register_target("c1", "web", 3, 8, NONE)
    world.set_desired("c1", "web", 3)
    expected = {"c1/web": Capacity.of(3, (3, 8), NONE)}

    report = _tick(capsys, endpoint, LATER_AT)

    assert (
        "baseline amended: MinCapacity 2→3, MaxCapacity 6→8, DynamicScalingInSuspended "
        "true→false (changed while stopped)" in report["notes"]
    )
    assert _web().in_stopped_shape(0)
    assert_invariant(world, expected)
    _tick(capsys, endpoint, START_AT)
    assert _web() == expected["c1/web"]
    assert_invariant(world, expected, context="restored")


def test_scaled_by_hand_at_night_the_count_is_the_new_original(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tick(capsys, endpoint, STOP_AT)
    world.set_desired("c1", "web", 5)
    expected = {"c1/web": Capacity.of(5, (2, 6), {"in": True})}

    report = _tick(capsys, endpoint, LATER_AT)

    assert "baseline amended: desiredCount 3→5 (changed while stopped)" in report["notes"]
    assert any("teiji start c1/web --for" in note for note in report["notes"])
    assert _web().in_stopped_shape(0)
    assert_invariant(world, expected)
    _tick(capsys, endpoint, START_AT)
    assert _web() == expected["c1/web"]
    assert_invariant(world, expected, context="restored")


def test_a_target_deregistered_while_stopped_is_not_brought_back(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tick(capsys, endpoint, STOP_AT)
    world.deregister_target("c1", "web")
    expected = {"c1/web": Capacity.of(3)}

    report = _tick(capsys, endpoint, LATER_AT)

    assert (
        "baseline amended: scalable target 2..6 suspended:dynamic_in removed "
        "(changed while stopped)" in report["notes"]
    )
    assert_invariant(world, expected)
    _tick(capsys, endpoint, START_AT)
    assert _web() == expected["c1/web"]
    assert_invariant(world, expected, context="restored")


def test_a_change_just_before_the_morning_is_restored_not_undone(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tick(capsys, endpoint, STOP_AT)
    world.register_target("c1", "web", 1, 4, ALL)  # all suspended, but not Min = Max
    world.set_desired("c1", "web", 1)
    expected = {"c1/web": Capacity.of(3, (1, 4), ALL)}

    report = _tick(capsys, endpoint, START_AT)

    assert report["actions"][0]["action"] == "amend_baseline"
    assert any(n.startswith("baseline amended: MinCapacity 2→1") for n in report["notes"])
    assert _web() == expected["c1/web"]
    assert_invariant(world, expected, context="restored")


def test_a_new_stopped_count_is_not_taken_for_a_change_by_people(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = snapshot(["c1/web"])
    _tick(capsys, endpoint, STOP_AT)
    # The document's night size goes from 0 to 1: the 0..0 pin is teiji's, not people's.
    world.put(schedule("c1/web", stopped={"desired_count": 1}))

    report = _tick(capsys, endpoint, LATER_AT)

    assert not any("amended" in note for note in report["notes"]), report["notes"]
    assert _web().in_stopped_shape(1)
    assert_invariant(world, expected)
    _tick(capsys, endpoint, START_AT)
    assert _web() == expected["c1/web"]
    assert_invariant(world, expected, context="restored")


def test_a_pinned_target_without_a_baseline_is_never_started_from_the_pin(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tick(capsys, endpoint, STOP_AT)
    # The baseline is gone (deleted by hand): what people gave the target is not known.
    world.dynamodb.delete_item(
        TableName=world.settings.state_table,
        Key={"pk": {"S": "baseline"}, "sk": {"S": "c1/web"}},
    )
    code, out, _ = run_cli(capsys, endpoint, "tick", "--at", START_AT, "--json")
    assert code == 1
    web = next(s for s in json.loads(out)["services"] if s["service"] == "c1/web")
    assert web["outcome"] == "failed"
    assert "teiji does not take bounds from its own pin" in web["error"]
    assert _web().in_stopped_shape(0)  # not 0..1 unsuspended
