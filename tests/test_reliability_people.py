"""People change things while teiji runs. Each case has a defined outcome that loses nothing.

- Scaled by hand during a stop window: the count people set becomes the new original (the
  baseline is amended and the report says so), the service is stopped again, and the note
  points to ``teiji start`` for keeping it up.
- Scalable target bounds edited while a baseline is saved: the baseline is amended with them,
  the next tick re-applies the stop shape, and the start restores what people set.
- Schedule deleted while the service is stopped: the service is left exactly as it is, its
  baseline kept; adding a schedule again restores it.
- Service deleted and created again under the same name: the old baseline is never applied to
  the new service; it is kept and reported. When the new service is stopped, the old baseline
  is first moved to an archived baseline (``pk="baseline-archive"``), so the new service's own
  capacity is saved and restored; a tick killed after any of those writes loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from engine.aws.operations import Operation
from engine.config import Settings
from engine.report import TickReport
from engine.tick import run_tick
from tests.faults import (
    Capacity,
    Crash,
    CrashAfter,
    WriteCounter,
    baseline_capacity,
    capacities,
    stored_items,
)
from tests.invariant import assert_invariant
from tests.world import CallLog, World, at, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
LATER = at("2026-12-01T23:15:00+09:00")
START = at("2026-12-02T06:00:00+09:00")  # Wednesday morning: running
ORIGINAL = Capacity.of(3, (2, 6), {"in": True})
# The service created again under the same name, with its own capacity.
RECREATED = Capacity.of(2, (1, 4), {"in": False, "out": False, "scheduled": False})
STOP_2 = STOP.replace(day=2)  # Wednesday night
START_3 = START.replace(day=3)  # Thursday morning
NEXT = timedelta(minutes=15)


def _world() -> World:
    world = World(settings=Settings(lease_seconds=360))
    world.init_tables()
    world.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
    world.put(schedule("c1/web"))
    return world


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        yield _world()


def _tick(world: World, when: datetime, log: CallLog | None = None, *hooks: object) -> TickReport:
    clients = world.clients()
    if log is not None:
        log.attach(clients)
    for hook in hooks:
        clients.before_call.append(hook)  # type: ignore[arg-type]
    return run_tick(clients, world.settings, at=when, dry_run=False, clock=when.timestamp)


def _stopped(world: World) -> None:
    report = _tick(world, STOP)
    assert report.service("c1/web").outcome == "changed"
    assert capacities()["c1/web"].in_stopped_shape(0)


def _saved(world: World) -> Capacity | None:
    stored = world.baseline("c1/web")
    return baseline_capacity(stored) if stored is not None else None


def test_scaled_by_hand_at_night_is_stopped_again_and_the_count_becomes_the_original(
    world: World,
) -> None:
    _stopped(world)
    world.set_desired("c1", "web", 5)
    expected = {"c1/web": Capacity.of(5, (2, 6), {"in": True})}

    report = _tick(world, LATER).service("c1/web")

    assert report.outcome == "changed"
    assert capacities()["c1/web"].in_stopped_shape(0)
    assert _saved(world) == expected["c1/web"]  # what people set is the new original
    assert "baseline amended: desiredCount 3→5 (changed while stopped)" in report.notes
    assert any("teiji start c1/web" in note for note in report.notes), report.notes
    assert_invariant(world, expected)
    _tick(world, START)
    assert capacities()["c1/web"] == expected["c1/web"]
    assert_invariant(world, expected, context="restored")


def test_bounds_edited_while_stopped_become_the_original(world: World) -> None:
    _stopped(world)
    # Someone (or a Terraform apply) registers the target again with new bounds at night;
    # real AWS then moves desired 0 up to 1.
    world.register_target("c1", "web", 1, 10, {"in": False, "out": False, "scheduled": False})
    world.set_desired("c1", "web", 1)
    expected = {"c1/web": Capacity.of(3, (1, 10), {})}

    report = _tick(world, LATER).service("c1/web")

    assert report.outcome == "changed"
    assert capacities()["c1/web"].in_stopped_shape(0)  # the stop shape is applied again
    assert _saved(world) == expected["c1/web"]  # amended; the count 1 was AWS's clamp
    assert_invariant(world, expected)
    _tick(world, START)
    assert capacities()["c1/web"] == expected["c1/web"]  # 1..10 as they set it
    assert_invariant(world, expected, context="restored")


def test_schedule_deleted_while_stopped_leaves_the_service_alone(world: World) -> None:
    _stopped(world)
    world.config().delete("schedule", "c1/web")
    log = CallLog()

    report = _tick(world, START, log)

    assert [s.key for s in report.services] == []
    assert not [c for c in log.calls if "web" in str(c.params)]
    assert capacities()["c1/web"].in_stopped_shape(0)
    assert _saved(world) == ORIGINAL

    # Adding a schedule again brings back the saved capacity.
    world.put(schedule("c1/web"))
    _tick(world, START)
    assert capacities()["c1/web"] == ORIGINAL
    assert world.baseline("c1/web") is None


def test_recreated_service_never_gets_the_old_baseline(world: World) -> None:
    _stopped(world)
    world.deregister_target("c1", "web")
    world.recreate_service("c1", "web", desired=2)
    world.register_target("c1", "web", 1, 4)

    report = _tick(world, START).service("c1/web")

    assert capacities()["c1/web"] == Capacity.of(2, (1, 4))  # its own capacity, untouched
    assert _saved(world) == ORIGINAL  # the old baseline is kept ...
    assert any("earlier service of the same name" in n for n in report.notes)  # ... and reported
    assert not report.actions


def _recreated(world: World) -> None:
    """Stopped with ORIGINAL saved; then deleted, created again at RECREATED and started."""
    _stopped(world)
    world.deregister_target("c1", "web")
    world.recreate_service("c1", "web", desired=2)
    world.register_target("c1", "web", 1, 4, {"in": False, "out": False, "scheduled": False})
    _tick(world, START)
    assert capacities()["c1/web"] == RECREATED
    assert _saved(world) == ORIGINAL


def _archived(world: World) -> dict[str, Capacity]:
    items = stored_items(world.settings.state_table, "baseline-archive")
    return {sk: baseline_capacity(item) for sk, item in items.items()}


def test_recreated_service_keeps_its_own_capacity_over_a_stop_and_start(world: World) -> None:
    _recreated(world)
    old = world.state_store().get_baselines(["c1/web"])["c1/web"]

    stop = _tick(world, STOP_2).service("c1/web")

    assert stop.outcome == "changed", stop.as_json()
    assert [a.kind for a in stop.actions] == [
        "archive_baseline",
        "delete_baseline",
        "save_baseline",
        "register_target",
        "update_service",
    ]
    assert any(f"sk={old.archive_sort_key}" in note for note in stop.notes), stop.notes
    assert capacities()["c1/web"].in_stopped_shape(0)
    assert _saved(world) == RECREATED  # its own capacity ...
    assert _archived(world) == {old.archive_sort_key: ORIGINAL}  # ... and the old one kept
    assert world.state_store().get_archived_baselines("c1/web") == [old]

    _tick(world, START_3)

    assert capacities()["c1/web"] == RECREATED
    assert world.baseline("c1/web") is None
    assert _archived(world) == {old.archive_sort_key: ORIGINAL}  # never deleted by teiji


def test_dry_run_of_a_recreated_service_stop_writes_nothing(world: World) -> None:
    _recreated(world)
    log = CallLog()
    clients = log.attach(world.clients())

    report = run_tick(clients, world.settings, at=STOP_2, dry_run=True, clock=STOP_2.timestamp)

    planned = report.service("c1/web")
    assert planned.outcome == "planned"
    assert planned.actions[0].kind == "archive_baseline"
    assert planned.actions[0].after["pk"] == "baseline-archive"
    assert not log.writes()
    assert _saved(world) == ORIGINAL
    assert _archived(world) == {}


def _writes_of_the_recreated_stop() -> list[str]:
    with mock_aws():
        world = _world()
        _recreated(world)
        counter = WriteCounter()
        _tick(world, STOP_2, None, counter)
        return counter.writes


def test_crash_after_every_write_of_a_recreated_service_stop_loses_nothing() -> None:
    writes = _writes_of_the_recreated_stop()
    # The lease, the archive copy, the delete, this service's baseline, then the stop itself.
    assert writes[:4] == ["PutItem", "PutItem", "DeleteItem", "PutItem"], writes
    for k in range(len(writes)):
        context = f"crashed after {k} of {len(writes)} writes {writes[:k]}"
        with mock_aws():
            world = _world()
            _recreated(world)
            crash = CrashAfter(k)
            with pytest.raises(Crash):
                _tick(world, STOP_2, None, crash)
            assert crash.crashed, context
            # The old baseline is in its slot or archived; the service is as it was or its own
            # capacity is saved.
            archived = _archived(world)
            assert _saved(world) == ORIGINAL or list(archived.values()) == [ORIGINAL], context
            if capacities()["c1/web"] != RECREATED:
                assert _saved(world) == RECREATED, context

            report = _tick(world, STOP_2 + NEXT).service("c1/web")

            assert not report.failed, (context, report.as_json())
            assert capacities()["c1/web"].in_stopped_shape(0), context
            assert _saved(world) == RECREATED, context
            assert list(_archived(world).values()) == [ORIGINAL], context
            _tick(world, START_3)
            assert capacities()["c1/web"] == RECREATED, context
            assert list(_archived(world).values()) == [ORIGINAL], context


class _SlotChangedBeforeDelete:
    """``Clients.before_call`` hook: right before teiji's first DeleteItem, another writer
    (a tick that took over the lease) archives the old baseline and saves this service's."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.done = False

    def __call__(self, operation: Operation, account: str | None, region: str) -> None:
        if operation.name != "DeleteItem" or self.done:
            return
        self.done = True
        table = self.world.settings.state_table
        key: dict[str, Any] = {"pk": {"S": "baseline"}, "sk": {"S": "c1/web"}}
        item = self.world.dynamodb.get_item(TableName=table, Key=key)["Item"]
        created = self.world.ecs.describe_services(cluster="c1", services=["web"])
        item["version"] = {"S": "theirs"}
        item["desired_count"] = {"N": "2"}
        item["min_capacity"] = {"N": "1"}
        item["max_capacity"] = {"N": "4"}
        item["suspended"] = {
            "M": {k: {"BOOL": False} for k in ("dynamic_in", "dynamic_out", "scheduled")}
        }
        item["service_created_at"] = {
            "S": created["services"][0]["createdAt"].isoformat(),
        }
        self.world.dynamodb.put_item(TableName=table, Item=item)


def test_a_stop_is_left_to_the_next_tick_when_the_old_baseline_changed_meanwhile(
    world: World,
) -> None:
    _recreated(world)
    race = _SlotChangedBeforeDelete(world)

    report = _tick(world, STOP_2, None, race).service("c1/web")

    assert race.done
    assert report.outcome == "failed"
    assert report.error is not None and "changed since it was read" in report.error
    assert [a.kind for a in report.actions] == ["archive_baseline"]
    assert capacities()["c1/web"] == RECREATED  # nothing changed on the service
    assert _saved(world) == RECREATED  # what the other writer saved is kept
    assert list(_archived(world).values()) == [ORIGINAL]

    _tick(world, STOP_2 + NEXT)
    assert capacities()["c1/web"].in_stopped_shape(0)
    _tick(world, START_3)
    assert capacities()["c1/web"] == RECREATED
