"""A tick killed after any of its writes loses nothing; the next tick converges.

``CrashAfter(k)`` ends the tick at the first call after its k-th write with a BaseException,
as a Lambda timeout or an out-of-memory kill would: nothing in the tick can catch it, and its
``finally`` cannot release the lease either. For every k of a full stop and of a full start:

- at the crash, each service is at its original capacity or a baseline holding exactly that
  capacity is stored;
- the next tick (15 minutes later, when the crashed tick's lease has expired) converges every
  service, and the start that follows restores desiredCount, MinCapacity, MaxCapacity and
  SuspendedState exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import pytest
from moto import mock_aws

from engine.config import Settings
from engine.report import TickReport
from engine.tick import run_tick
from tests.faults import Capacity, Crash, CrashAfter, WriteCounter, baseline_capacity, capacities
from tests.world import CallLog, World, at, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
START = at("2026-12-02T06:00:00+09:00")  # Wednesday morning: running
NEXT = timedelta(minutes=15)
# The lease infra sets (Lambda timeout 300 s + 60 s); one service at a time, so that the k-th
# write is the same write on every run.
SETTINGS = Settings(lease_seconds=360, concurrency=1)


@dataclass(frozen=True)
class Fleet:
    """Three services whose capacities differ in every field teiji saves."""

    original: ClassVar[dict[str, Capacity]] = {
        "c1/web": Capacity.of(3, (2, 6), {"in": True}),
        "c1/worker": Capacity.of(2),
        "c2/night": Capacity.of(4, (1, 8), {"in": True, "out": True}),
    }
    stopped: ClassVar[dict[str, int]] = {"c1/web": 0, "c1/worker": 0, "c2/night": 1}


def _world() -> World:
    world = World(settings=SETTINGS)
    world.init_tables()
    flags = {"c1/web": {"in": True}, "c2/night": {"in": True, "out": True}}
    for key, cap in Fleet.original.items():
        cluster, name = key.split("/")
        target = (cap.min, cap.max) if cap.min is not None and cap.max is not None else None
        world.create_service(
            cluster, name, desired=cap.desired, target=target, suspended=flags.get(key)
        )
    world.put(
        schedule("c1/web"),
        schedule("c1/worker"),
        schedule("c2/night", stopped={"desired_count": 1}),
    )
    return world


def _tick(world: World, when: datetime, *hooks: object) -> TickReport:
    clients = world.clients()
    for hook in hooks:
        clients.before_call.append(hook)  # type: ignore[arg-type]
    return run_tick(clients, world.settings, at=when, dry_run=False, clock=when.timestamp)


def _assert_nothing_lost(world: World, context: str) -> None:
    states = capacities()
    for key, original in Fleet.original.items():
        if states[key] == original:
            continue
        stored = world.baseline(key)
        assert stored is not None, f"{context}: {key} is at {states[key]} and no baseline is saved"
        assert baseline_capacity(stored) == original, f"{context}: {key} baseline {stored}"


def _assert_stopped(world: World, report: TickReport, context: str) -> None:
    assert not report.failed, (context, [s.as_json() for s in report.services if s.failed])
    states = capacities()
    for key, original in Fleet.original.items():
        assert states[key].in_stopped_shape(Fleet.stopped[key]), (context, key, states[key])
        stored = world.baseline(key)
        assert stored is not None and baseline_capacity(stored) == original, (context, key)


def _assert_running_exactly(world: World, report: TickReport, context: str) -> None:
    assert not report.failed, (context, [s.as_json() for s in report.services if s.failed])
    states = capacities()
    for key, original in Fleet.original.items():
        assert states[key] == original, (context, key, states[key])
        assert world.baseline(key) is None, (context, key)


def _writes_of_a_full_tick(when: datetime, *, stopped_first: bool) -> list[str]:
    with mock_aws():
        world = _world()
        if stopped_first:
            _tick(world, STOP)
        counter = WriteCounter()
        _tick(world, when, counter)
        return counter.writes


def test_a_full_stop_and_a_full_start_write_what_the_crash_points_cover() -> None:
    # The crash points below walk every write; make sure there are the ones that matter.
    stop = _writes_of_a_full_tick(STOP, stopped_first=False)
    start = _writes_of_a_full_tick(START, stopped_first=True)
    assert stop.count("UpdateService") == 3
    assert stop.count("RegisterScalableTarget") == 2
    assert start.count("UpdateService") == 3
    assert start.count("RegisterScalableTarget") == 2
    assert stop.count("PutItem") >= 2  # the lease taken and given back
    assert stop.count("TransactWriteItems") >= 1  # the three baselines, in one batch
    assert start.count("TransactWriteItems") >= 1  # the three baselines deleted, in one batch
    assert start[0] == start[-1] == "PutItem"  # the lease, taken and given back


def test_crash_after_every_write_of_a_stop_loses_nothing() -> None:
    writes = _writes_of_a_full_tick(STOP, stopped_first=False)
    for k in range(len(writes)):
        context = f"stop, crashed after {k} of {len(writes)} writes {writes[:k]}"
        with mock_aws():
            world = _world()
            crash = CrashAfter(k)
            with pytest.raises(Crash):
                _tick(world, STOP, crash)
            assert crash.crashed, context
            _assert_nothing_lost(world, context)
            # Within the crashed tick's lease another tick does nothing at all.
            log = CallLog()
            clients = log.attach(world.clients())
            held = run_tick(
                clients, world.settings, at=STOP, dry_run=False, clock=lambda: STOP.timestamp() + 60
            )
            if k >= 1:  # the crash came after the lease was taken
                assert held.lease == "held", context
                assert not log.writes(), context
            _assert_stopped(world, _tick(world, STOP + NEXT), context)
            _assert_running_exactly(world, _tick(world, START), context)


def test_crash_after_every_write_of_a_start_restores_exactly() -> None:
    writes = _writes_of_a_full_tick(START, stopped_first=True)
    for k in range(len(writes)):
        context = f"start, crashed after {k} of {len(writes)} writes {writes[:k]}"
        with mock_aws():
            world = _world()
            _assert_stopped(world, _tick(world, STOP), "the stop before")
            crash = CrashAfter(k)
            with pytest.raises(Crash):
                _tick(world, START, crash)
            assert crash.crashed, context
            _assert_nothing_lost(world, context)
            _assert_running_exactly(world, _tick(world, START + NEXT), context)


def test_crash_between_two_ticks_of_opposite_decisions_loses_nothing() -> None:
    # A start crashes half way, then the next tick decides "stopped" (an override): the
    # half-restored service is stopped again and its original baseline is still the one kept.
    with mock_aws():
        world = _world()
        _tick(world, STOP)
        with pytest.raises(Crash):
            _tick(world, START, CrashAfter(3))
        _assert_nothing_lost(world, "half-way start")
        world.put(
            *[
                {
                    "kind": "override",
                    "service": key,
                    "state": "stopped",
                    "until": "2026-12-02T12:00:00+09:00",
                    "reason": "maintenance",
                    "id": f"maint-{n}",
                }
                for n, key in enumerate(Fleet.original)
            ]
        )
        _assert_stopped(world, _tick(world, START + NEXT), "stopped by an override")
        _assert_running_exactly(world, _tick(world, START + 25 * NEXT), "after the override")
