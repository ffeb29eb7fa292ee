"""Ticks that overlap: exactly one acts; a tick that outlives its lease stops acting; a late or
retried invocation decides at the current time."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from moto import mock_aws

import engine.handler
from engine.aws.clients import Clients
from engine.aws.operations import Operation
from engine.cli.tick import render_tick
from engine.config import Settings
from engine.report import TickReport
from engine.tick import run_tick
from tests.faults import Capacity, FaultLayer, baseline_capacity, capacities
from tests.invariant import assert_invariant
from tests.world import REGION, CallLog, World, at, schedule

# The handler points teiji's log handler at a test's captured stdout.
pytestmark = pytest.mark.usefixtures("teiji_logging_restored")


STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
START = at("2026-12-02T06:00:00+09:00")  # Wednesday morning: running
LEASE_SECONDS = 360
ORIGINAL = Capacity.of(3, (2, 6), {"in": True})
SERVICES = [f"svc-{n}" for n in range(6)]


def _fleet(world: World, names: list[str] = SERVICES) -> None:
    world.init_tables()
    for name in names:
        world.create_service("c1", name, desired=3, target=(2, 6), suspended={"in": True})
    world.put(*[schedule(f"c1/{name}") for name in names])


def _ecs_writes(log: CallLog) -> list[str]:
    return [str(c.params.get("service")) for c in log.named("UpdateService")]


# Two ticks at once, in threads --------------------------------------------------------------------
def test_two_ticks_in_threads_exactly_one_acts() -> None:
    with mock_aws():
        world = World(settings=Settings(lease_seconds=LEASE_SECONDS))
        _fleet(world)
        barrier = threading.Barrier(2)
        finished = [threading.Event(), threading.Event()]
        reports: list[TickReport | None] = [None, None]
        logs = [CallLog(), CallLog()]

        def hold_first_write(me: int) -> Callable[[Operation, str | None, str], None]:
            # The tick that got the lease waits at its first change until the other tick has
            # finished: the two really overlap, whichever wins.
            def hook(operation: Operation, account: str | None, region: str) -> None:
                if operation.write and operation.service != "dynamodb":
                    finished[1 - me].wait(timeout=20)

            return hook

        def run(me: int) -> None:
            # serialize=True: each request is atomic, as on AWS (moto alone is not under threads)
            clients = FaultLayer(serialize=True).attach(logs[me].attach(world.clients()))
            clients.before_call.append(hold_first_write(me))
            barrier.wait()
            try:
                reports[me] = run_tick(
                    clients, world.settings, at=STOP, dry_run=False, clock=STOP.timestamp
                )
            finally:
                finished[me].set()

        threads = [threading.Thread(target=run, args=(n,)) for n in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert all(r is not None for r in reports)
        leases = sorted(r.lease for r in reports if r is not None)
        assert leases == ["acquired", "held"]
        acted = [n for n, r in enumerate(reports) if r is not None and r.lease == "acquired"]
        idle = 1 - acted[0]
        assert sorted(_ecs_writes(logs[acted[0]])) == sorted(SERVICES)
        assert not logs[idle].writes()
        assert not [
            c for c in logs[idle].calls if c.operation == "PutItem" and "baseline" in str(c.params)
        ]
        states = capacities()
        for name in SERVICES:
            assert states[f"c1/{name}"].in_stopped_shape(0)
            stored = world.baseline(f"c1/{name}")
            assert stored is not None and baseline_capacity(stored) == ORIGINAL


# Two ticks at once, in processes against moto's server --------------------------------------------
def _tick_in_process(endpoint: str, start: Any, results: Any, slow_writes: float) -> None:
    """One tick in its own process (as a second Lambda would be), reporting its JSON result."""

    def slow(operation: Operation, account: str | None, region: str) -> None:
        if operation.write and operation.service != "dynamodb":
            time.sleep(slow_writes)  # a tick that takes a while, so the two overlap

    clients = Clients(region=REGION, endpoint_url=endpoint, max_attempts=2)
    clients.before_call.append(slow)
    start.wait(timeout=60)
    report = run_tick(
        clients,
        Settings(lease_seconds=LEASE_SECONDS),
        at=STOP,
        dry_run=False,
        clock=time.time,
    )
    results.put(json.dumps(report.as_json()))


def test_two_ticks_in_processes_exactly_one_acts(endpoint: str) -> None:
    world = World(endpoint, settings=Settings(lease_seconds=LEASE_SECONDS))
    _fleet(world)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(target=_tick_in_process, args=(endpoint, start, results, 0.2))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    reports = [json.loads(results.get(timeout=120)) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sorted(r["lease"] for r in reports) == ["acquired", "held"]
    acted = next(r for r in reports if r["lease"] == "acquired")
    idle = next(r for r in reports if r["lease"] == "held")
    assert acted["counts"]["changed"] == len(SERVICES)
    assert idle["services"] == []
    for name in SERVICES:
        state = world.state("c1", name)
        assert (state.desired, state.min, state.max) == (0, 0, 0)
        stored = world.baseline(f"c1/{name}")
        assert stored is not None and baseline_capacity(stored) == ORIGINAL


# A tick that outlives its lease -------------------------------------------------------------------
class _Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def test_a_tick_that_outlives_its_lease_stops_and_the_next_one_is_not_corrupted() -> None:
    """The late tick pauses right after saving the baseline of c1/a, before changing its
    capacity. Meanwhile its lease runs out, a person adds an override to keep c1/a running
    tonight, and the next tick takes the lease and restores c1/a (deleting the baseline). When
    the late tick wakes up it must not write any more: finishing the stop would leave c1/a
    stopped with no baseline, its capacity lost."""
    with mock_aws():
        world = World(settings=Settings(lease_seconds=LEASE_SECONDS))
        _fleet(world, ["a"])
        late_clock = _Clock(STOP)
        later = STOP + timedelta(seconds=LEASE_SECONDS + 60)
        next_reports: list[TickReport] = []
        late_log = CallLog()
        paused_at: list[int] = []

        def pause_after_the_baseline(
            operation: Operation, account: str | None, region: str, code: str | None
        ) -> None:
            # The first PutItem takes the lease, the second saves c1/a's baseline.
            if operation.name != "PutItem" or len(late_log.named("PutItem")) != 2:
                return
            paused_at.append(len(late_log.calls))
            late_clock.now = later.timestamp()  # the late tick slept past its lease
            world.put(
                {
                    "kind": "override",
                    "service": "c1/a",
                    "state": "running",
                    "until": "2026-12-02T02:00:00+09:00",
                    "reason": "release tonight",
                    "created_by": "mika",
                    "id": "release",
                }
            )
            next_reports.append(
                run_tick(
                    world.clients(), world.settings, at=later, dry_run=False, clock=later.timestamp
                )
            )

        clients = late_log.attach(world.clients())
        clients.after_attempt.append(pause_after_the_baseline)
        late = run_tick(clients, world.settings, at=STOP, dry_run=False, clock=late_clock)

        (following,) = next_reports
        assert following.lease == "acquired"
        assert following.service("c1/a").outcome == "changed"  # the baseline was restored
        assert late.lease == "lost"
        assert late.failed
        assert "lease" in (late.service("c1/a").error or "")
        after_pause = late_log.calls[paused_at[0] :]
        assert not [c.operation for c in after_pause if c.write and c.service != "dynamodb"]
        # c1/a keeps running at its original capacity (the override): nothing is lost.
        assert capacities()["c1/a"] == ORIGINAL
        assert world.baseline("c1/a") is None
        final = run_tick(
            world.clients(), world.settings, at=START, dry_run=False, clock=START.timestamp
        )
        assert not final.failed
        assert capacities()["c1/a"] == ORIGINAL


def test_a_late_tick_never_overwrites_a_baseline_saved_by_the_next() -> None:
    # Just before the late tick saves its baseline (taken from what it observed earlier), the
    # next tick runs: the service was scaled by hand in between, and the next tick saves that.
    # The late tick's save must not replace it.
    with mock_aws():
        world = World(settings=Settings(lease_seconds=LEASE_SECONDS))
        _fleet(world, ["a"])
        later = STOP + timedelta(seconds=LEASE_SECONDS + 60)
        saved: list[dict[str, Any] | None] = []
        puts = [0]

        def next_tick_first(operation: Operation, account: str | None, region: str) -> None:
            if operation.name != "PutItem":
                return
            puts[0] += 1
            if puts[0] == 2:  # about to save the baseline (the first PutItem took the lease)
                world.set_desired("c1", "a", 5)
                run_tick(
                    world.clients(), world.settings, at=later, dry_run=False, clock=later.timestamp
                )
                saved.append(world.baseline("c1/a"))

        clients = world.clients()
        clients.before_call.append(next_tick_first)
        late = run_tick(clients, world.settings, at=STOP, dry_run=False, clock=STOP.timestamp)
        assert saved and saved[0] is not None and saved[0]["desired_count"] == 5
        assert world.baseline("c1/a") == saved[0]
        # The late tick leaves the service to the stored baseline: it touches nothing more.
        late_report = late.service("c1/a")
        assert late_report.outcome == "failed"
        assert "saved since it was read" in (late_report.error or "")


# A late or retried invocation ---------------------------------------------------------------------
@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setattr(engine.handler, "_clients", {})
    monkeypatch.setenv("TEIJI_LEASE_SECONDS", str(LEASE_SECONDS))
    with mock_aws():
        world = World()
        _fleet(world, ["a"])
        yield world


def test_a_retried_invocation_decides_at_the_current_time_not_the_events(
    handler_env: World,
) -> None:
    # The event was for 23:00 (stop); EventBridge retried it the next morning at 06:00.
    event = {
        "version": "0",
        "id": "retried-event",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "2026-12-01T14:00:00Z",
        "detail": {},
    }
    world = handler_env
    stop = run_tick(world.clients(), world.settings, at=STOP, dry_run=False)
    assert stop.service("c1/a").outcome == "changed"
    with freeze_time(START.astimezone(UTC)):
        result = engine.handler.lambda_handler(event, None)
    assert datetime.fromisoformat(result["at"]) == START
    assert result["services"][0]["decision"] == "running"
    assert capacities()["c1/a"] == ORIGINAL
    assert world.baseline("c1/a") is None


# Ticks started with different shard settings ------------------------------------------------------
RACERS: list[tuple[tuple[int, int] | None, int]] = [
    ((0, 2), 2),  # the scheduled Lambda of shard 0 of 2
    ((1, 2), 2),  # and of shard 1
    (None, 1),  # a tick from a terminal without TEIJI_SHARDS
    ((2, 3), 3),  # a Lambda of an older deployment, split in three
]


def _assert_capacity_kept(world: World, names: list[str] = SERVICES) -> None:
    assert_invariant(world, {f"c1/{name}": ORIGINAL for name in names})


def test_ticks_of_different_shard_counts_in_threads_never_act_on_one_service_at_once() -> None:
    with mock_aws():
        world = World(settings=Settings(lease_seconds=LEASE_SECONDS))
        _fleet(world, [f"svc-{n}" for n in range(12)])
        names = [f"svc-{n}" for n in range(12)]
        barrier = threading.Barrier(len(RACERS))
        done = [threading.Event() for _ in RACERS]
        reports: list[TickReport | None] = [None] * len(RACERS)
        logs = [CallLog() for _ in RACERS]

        def hold_first_write(me: int) -> Callable[[Operation, str | None, str], None]:
            # A tick that got its slot waits at its first change until every other tick has
            # finished: they really overlap, whichever wins.
            def hook(operation: Operation, account: str | None, region: str) -> None:
                if operation.write and operation.service != "dynamodb":
                    for n, event in enumerate(done):
                        if n != me:
                            event.wait(timeout=20)

            return hook

        def run(me: int) -> None:
            shard, count = RACERS[me]
            clients = FaultLayer(serialize=True).attach(logs[me].attach(world.clients()))
            clients.before_call.append(hold_first_write(me))
            settings = Settings(lease_seconds=LEASE_SECONDS, shards=count)
            barrier.wait()
            try:
                reports[me] = run_tick(
                    clients, settings, at=STOP, dry_run=False, shard=shard, clock=STOP.timestamp
                )
            finally:
                done[me].set()

        threads = [threading.Thread(target=run, args=(n,)) for n in range(len(RACERS))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        assert all(r is not None for r in reports)
        writers: dict[str, set[int]] = {}
        for n, log in enumerate(logs):
            for service in _ecs_writes(log):
                writers.setdefault(service, set()).add(n)
        assert writers, "no tick acted"
        assert all(len(ticks) == 1 for ticks in writers.values()), writers
        acted = {n for n, r in enumerate(reports) if r is not None and r.lease == "acquired"}
        # Ticks that acted together hold disjoint slots of one count.
        assert len({RACERS[n][1] for n in acted}) == 1
        _assert_capacity_kept(world, names)
        # Whatever was left, the next tick finishes it.
        final = run_tick(world.clients(), world.settings, at=STOP, dry_run=False)
        assert not final.failed
        _assert_capacity_kept(world, names)
        assert all(capacities()[f"c1/{n}"].in_stopped_shape(0) for n in names)


def _racer_in_process(
    endpoint: str, start: Any, results: Any, shard: tuple[int, int] | None, count: int
) -> None:
    def slow(operation: Operation, account: str | None, region: str) -> None:
        if operation.write and operation.service != "dynamodb":
            time.sleep(0.2)

    clients = Clients(region=REGION, endpoint_url=endpoint, max_attempts=2)
    clients.before_call.append(slow)
    start.wait(timeout=60)
    report = run_tick(
        clients,
        Settings(lease_seconds=LEASE_SECONDS, shards=count),
        at=STOP,
        dry_run=False,
        shard=shard,
        clock=time.time,
    )
    writes = [s["service"] for s in report.as_json()["services"] if s["actions"]]
    results.put(json.dumps({"racer": [shard, count], "lease": report.lease, "wrote": writes}))


def test_ticks_of_different_shard_counts_in_processes_never_act_on_one_service_at_once(
    endpoint: str,
) -> None:
    world = World(endpoint, settings=Settings(lease_seconds=LEASE_SECONDS))
    _fleet(world)
    context = multiprocessing.get_context("spawn")
    racers = [((0, 2), 2), (None, 1)]
    start = context.Barrier(len(racers))
    results = context.Queue()
    processes = [
        context.Process(target=_racer_in_process, args=(endpoint, start, results, shard, count))
        for shard, count in racers
    ]
    for process in processes:
        process.start()
    reports = [json.loads(results.get(timeout=120)) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    acted = [r for r in reports if r["lease"] == "acquired"]
    assert len(acted) == 1, reports  # the other was held or refused
    wrote = [key for r in reports for key in r["wrote"]]
    assert len(wrote) == len(set(wrote))
    _assert_capacity_kept(world)
    for name in SERVICES:
        state = world.state("c1", name)
        if f"c1/{name}" in wrote:
            assert (state.desired, state.min, state.max) == (0, 0, 0)
            stored = world.baseline(f"c1/{name}")
            assert stored is not None and baseline_capacity(stored) == ORIGINAL
        else:
            assert (state.desired, state.min, state.max) == (3, 2, 6)


# A tick killed mid-run ----------------------------------------------------------------------------
SHORT_LEASE_S = 2


def _doomed_tick(endpoint: str, started: Any) -> None:
    """A tick whose changes are slow; the test kills it with SIGKILL half way."""

    def slow(operation: Operation, account: str | None, region: str) -> None:
        if operation.write and operation.service != "dynamodb":
            started.set()
            time.sleep(0.5)

    clients = Clients(region=REGION, endpoint_url=endpoint, max_attempts=2)
    clients.before_call.append(slow)
    run_tick(
        clients,
        Settings(lease_seconds=SHORT_LEASE_S, concurrency=1),
        at=STOP,
        dry_run=False,
        clock=time.time,
    )


def test_a_killed_tick_blocks_the_next_for_one_short_lease_at_most(endpoint: str) -> None:
    world = World(endpoint, settings=Settings(lease_seconds=SHORT_LEASE_S))
    _fleet(world)
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    doomed = context.Process(target=_doomed_tick, args=(endpoint, started))
    doomed.start()
    assert started.wait(timeout=60)
    time.sleep(0.8)  # a change or two done, then killed where it stands
    os.kill(doomed.pid, signal.SIGKILL)  # type: ignore[arg-type]
    doomed.join(timeout=10)
    killed_at = time.time()

    blocked = run_tick(world.clients(), world.settings, at=STOP, dry_run=False)
    assert blocked.lease == "held"
    assert blocked.lease_holder is not None and f":{doomed.pid}/" in blocked.lease_holder
    assert blocked.lease_expires_at is not None and blocked.lease_taken_at is not None
    expires = blocked.lease_expires_at.timestamp()
    assert expires <= killed_at + SHORT_LEASE_S + 0.5  # nobody renews a dead tick's lease
    text = render_tick(blocked)
    assert blocked.lease_holder in text and "expires" in text and "taken" in text

    deadline = time.time() + 20
    while True:
        following = run_tick(world.clients(), world.settings, at=STOP, dry_run=False)
        if following.lease != "held" or time.time() > deadline:
            break
        time.sleep(0.2)
    assert following.lease == "acquired"
    assert time.time() >= expires  # not before the dead tick's lease ran out
    assert not following.failed
    _assert_capacity_kept(world)
    for name in SERVICES:
        state = world.state("c1", name)
        assert (state.desired, state.min, state.max) == (0, 0, 0)
        stored = world.baseline(f"c1/{name}")
        assert stored is not None and baseline_capacity(stored) == ORIGINAL


def test_a_live_tick_renews_its_short_lease_while_it_works() -> None:
    """The tick takes longer than its lease; its heartbeat keeps it, so a tick started after
    the first expiry is still refused, and the first one finishes every service."""
    with mock_aws():
        world = World(settings=Settings(lease_seconds=SHORT_LEASE_S, concurrency=1))
        _fleet(world)
        competitor: list[TickReport] = []

        def slow(operation: Operation, account: str | None, region: str) -> None:
            if operation.name == "UpdateService":
                time.sleep(0.5)  # six services: about 3 s, longer than the 2 s lease
                if not competitor and time.time() > taken[0] + SHORT_LEASE_S + 0.2:
                    competitor.append(
                        run_tick(world.clients(), world.settings, at=STOP, dry_run=False)
                    )

        taken = [time.time()]
        clients = world.clients()
        clients.before_call.append(slow)
        report = run_tick(clients, world.settings, at=STOP, dry_run=False)
        assert report.lease == "acquired"
        assert report.counts["changed"] == len(SERVICES)
        assert competitor and competitor[0].lease == "held"
        _assert_capacity_kept(world)
