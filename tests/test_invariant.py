"""The invariant assertion itself: it holds for a clean stop and fails for each way to break it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from moto import mock_aws

from engine.tick import run_tick
from tests.invariant import Capacity, assert_invariant, snapshot, violations
from tests.world import World, at, schedule

STOP = at("2026-12-01T23:00:00+09:00")


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        w = World()
        w.init_tables()
        w.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
        w.create_service("c1", "worker", desired=2)
        w.put(schedule("c1/web"), schedule("c1/worker"))
        yield w


def _baseline_item(key: str, desired: int, bounds: tuple[int, int] | None) -> dict[str, object]:
    item: dict[str, object] = {
        "pk": "baseline",
        "sk": key,
        "desired_count": desired,
        "saved_at": datetime(2026, 12, 1, tzinfo=UTC).isoformat(),
        "decided_by": "test",
        "version": "v1",
    }
    if bounds is not None:
        item.update(min_capacity=bounds[0], max_capacity=bounds[1], suspended={})
    return item


def test_holds_before_and_after_a_stop(world: World) -> None:
    expected = snapshot(["c1/web", "c1/worker"])
    assert expected["c1/web"] == Capacity.of(3, (2, 6), {"in": True})
    assert_invariant(world, expected)
    run_tick(world.clients(), world.settings, at=STOP, dry_run=False)
    assert snapshot(["c1/web"])["c1/web"].in_stopped_shape(0)
    assert_invariant(world, expected, context="after the stop")


def test_fails_when_the_service_changed_and_no_baseline_holds_it(world: World) -> None:
    expected = snapshot(["c1/worker"])
    world.set_desired("c1", "worker", 0)
    assert violations(expected, state_table=world.settings.state_table) == [
        "c1/worker: no baseline and the service is at Capacity(desired=0, min=None, max=None, "
        "suspended=None), not Capacity(desired=2, min=None, max=None, suspended=None)"
    ]
    with pytest.raises(AssertionError, match="invariant broken"):
        assert_invariant(world, expected)


def test_fails_for_a_baseline_holding_the_pin(world: World) -> None:
    expected = snapshot(["c1/web"])
    world.put_item(_baseline_item("c1/web", 3, (0, 0)), table=world.settings.state_table)
    found = violations(expected, state_table=world.settings.state_table)
    assert len(found) == 1 and "baseline c1/web holds" in found[0]


def test_fails_for_two_baselines_under_two_spellings(world: World) -> None:
    expected = snapshot(["c1/worker"])
    table = world.settings.state_table
    world.put_item(_baseline_item("c1/worker", 2, None), table=table)
    assert violations(expected, state_table=table) == []
    world.put_item(_baseline_item("c1/worker@ap-northeast-1", 2, None), table=table)
    found = violations(expected, state_table=table)
    assert found == ["c1/worker: 2 baselines (c1/worker, c1/worker@ap-northeast-1)"]
    # A baseline for the same name in another account names another service.
    world.dynamodb.delete_item(
        TableName=table, Key={"pk": {"S": "baseline"}, "sk": {"S": "c1/worker@ap-northeast-1"}}
    )
    world.put_item(_baseline_item("c1/worker@210987654321", 9, None), table=table)
    assert violations(expected, state_table=table) == []
