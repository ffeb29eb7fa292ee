"""People change things while teiji runs. Each case has a defined outcome that loses nothing.

- Scaled by hand during a stop window: stopped again at the next tick, the original baseline is
  kept, and the note points to ``teiji start`` for keeping it up.
- Scalable target bounds edited while a baseline is saved: the next tick re-applies the stop
  shape; the start restores the SAVED baseline (the edit made while stopped is not kept).
- Schedule deleted while the service is stopped: the service is left exactly as it is, its
  baseline kept; adding a schedule again restores it.
- Service deleted and created again under the same name: the old baseline is never applied to
  the new service; it is kept and reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from moto import mock_aws

from engine.config import Settings
from engine.report import TickReport
from engine.tick import run_tick
from tests.faults import Capacity, baseline_capacity, capacities
from tests.world import CallLog, World, at, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
LATER = at("2026-12-01T23:15:00+09:00")
START = at("2026-12-02T06:00:00+09:00")  # Wednesday morning: running
ORIGINAL = Capacity.of(3, (2, 6), {"in": True})


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        world = World(settings=Settings(lease_seconds=360))
        world.init_tables()
        world.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
        world.put(schedule("c1/web"))
        yield world


def _tick(world: World, when: datetime, log: CallLog | None = None) -> TickReport:
    clients = world.clients()
    if log is not None:
        log.attach(clients)
    return run_tick(clients, world.settings, at=when, dry_run=False, clock=when.timestamp)


def _stopped(world: World) -> None:
    report = _tick(world, STOP)
    assert report.service("c1/web").outcome == "changed"
    assert capacities()["c1/web"].in_stopped_shape(0)


def _saved(world: World) -> Capacity | None:
    stored = world.baseline("c1/web")
    return baseline_capacity(stored) if stored is not None else None


def test_scaled_by_hand_at_night_is_stopped_again_and_the_original_is_kept(world: World) -> None:
    _stopped(world)
    world.set_desired("c1", "web", 5)

    report = _tick(world, LATER).service("c1/web")

    assert report.outcome == "changed"
    assert capacities()["c1/web"].in_stopped_shape(0)
    assert _saved(world) == ORIGINAL  # not the 5 set by hand
    assert any("teiji start c1/web" in note for note in report.notes), report.notes
    _tick(world, START)
    assert capacities()["c1/web"] == ORIGINAL


def test_bounds_edited_while_stopped_are_replaced_by_the_saved_baseline(world: World) -> None:
    _stopped(world)
    # Someone (or a Terraform apply) registers the target again with new bounds at night.
    world.register_target("c1", "web", 1, 10, {"in": False, "out": False, "scheduled": False})
    world.set_desired("c1", "web", 1)

    report = _tick(world, LATER).service("c1/web")

    assert report.outcome == "changed"
    assert capacities()["c1/web"].in_stopped_shape(0)  # the stop shape is applied again
    assert _saved(world) == ORIGINAL  # the baseline saved before the edit is kept
    _tick(world, START)
    assert capacities()["c1/web"] == ORIGINAL  # the saved capacity, not 1..10


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


@pytest.mark.xfail(
    strict=True,
    reason="known gap: while the old service's baseline occupies the key, a stop of the new "
    "service saves nothing, so the next start cannot restore its own capacity",
)
def test_recreated_service_keeps_its_own_capacity_over_a_stop_and_start(world: World) -> None:
    _stopped(world)
    world.deregister_target("c1", "web")
    world.recreate_service("c1", "web", desired=2)
    world.register_target("c1", "web", 1, 4)
    _tick(world, START)

    _tick(world, STOP.replace(day=2))  # Wednesday night
    _tick(world, START.replace(day=3))  # Thursday morning

    assert capacities()["c1/web"] == Capacity.of(2, (1, 4))
