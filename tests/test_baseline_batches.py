"""Baselines saved and deleted 100 a transaction: what the world can do to a batch.

A stop's baselines go to DynamoDB in TransactWriteItems batches (each Put on
``attribute_not_exists``) before any of those services changes; a start's deletes go in
batches too (each Delete on the version read) once the restores succeeded. A transaction is
all or nothing: when one condition fails DynamoDB cancels it and names, in
``CancellationReasons``, exactly the actions whose condition failed. These tests change the
world between reading and writing (a person, a racing tick), cut the batch at the HTTP level,
and check that the tick acts on exactly what was confirmed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.aws.operations import Operation
from engine.report import TickReport
from engine.store import BASELINE_PK, StateStore
from engine.tick import run_tick
from schemas.records import Baseline
from tests.faults import FaultKind, FaultLayer, InstantClock, zero_backoff
from tests.world import CallLog, World, at, moto_tables, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night
START = at("2026-12-02T06:00:00+09:00")  # Wednesday morning
NAMES = ("a", "b", "c", "d")


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables() as w:
        for name in NAMES:
            w.create_service("c1", name, desired=3, target=(2, 6))
        w.put(*(schedule(f"c1/{name}") for name in NAMES))
        yield w


def _tick(world: World, when: datetime, clients: Any = None, **kw: Any) -> TickReport:
    kw.setdefault("dry_run", False)
    return run_tick(
        clients or world.clients(), world.settings, at=when, pacing_clock=InstantClock(), **kw
    )


def _before(clients: Any, name: str, action: Any) -> None:
    """Run ``action`` once, right before the first ``name`` request of the tick."""
    done = [False]

    def hook(operation: Operation, account: str | None, region: str) -> None:
        if operation.name == name and not done[0]:
            done[0] = True
            action()

    clients.before_call.append(hook)


def _person_baseline(key: str, desired: int) -> Baseline:
    return Baseline(
        key=key,
        desired_count=desired,
        min_capacity=1,
        max_capacity=9,
        saved_at=datetime(2026, 11, 30, tzinfo=UTC),
        decided_by="a person",
        version="set-by-a-person",
    )


def _stopped(world: World, name: str) -> bool:
    return world.state("c1", name).desired == 0


def test_a_baseline_saved_meanwhile_leaves_exactly_that_service_untouched(world: World) -> None:
    person = _person_baseline("c1/b", 7)
    running = world.state("c1", "b")
    clients = world.clients()
    log = CallLog()
    log.attach(clients)
    _before(clients, "TransactWriteItems", lambda: world.state_store().save_baseline(person))

    report = _tick(world, STOP, clients)

    b = report.service("c1/b")
    assert b.outcome == "failed" and "saved since it was read" in (b.error or "")
    assert world.state("c1", "b") == running  # untouched
    stored = world.baseline("c1/b")
    assert stored is not None and stored["desired_count"] == 7  # the person's, kept
    assert not [c for c in log.writes() if "c1/b" in str(c.params)]  # no ECS/AAS write for b
    for name in ("a", "c", "d"):
        assert report.service(f"c1/{name}").outcome == "changed"
        assert _stopped(world, name)
        saved = world.baseline(f"c1/{name}")
        assert saved is not None and saved["desired_count"] == 3
    # The batch was sent once, then again without the refused action.
    sizes = [len(c.params["TransactItems"]) for c in log.named("TransactWriteItems")]
    assert sizes == [4, 3]


@pytest.mark.parametrize("kind", ["connection_reset", "lost_answer", "http_500"])
def test_a_batch_cut_by_a_fault_acts_on_nothing_unconfirmed(
    world: World, kind: FaultKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    zero_backoff(monkeypatch)
    running = world.state("c1", "a")
    faults = FaultLayer(rate=1.0, kinds=[kind], operations={"TransactWriteItems"})
    clients = faults.attach(world.clients())

    report = _tick(world, STOP, clients)

    assert faults.stats.injected[kind] >= 1
    for name in NAMES:
        key = f"c1/{name}"
        stored = world.baseline(key)
        if _stopped(world, name):
            # Stopped only with its baseline confirmed (saved one by one after the batch).
            assert report.service(key).outcome == "changed"
            assert stored is not None and stored["desired_count"] == 3
        else:
            assert world.state("c1", name) == running
            assert report.service(key).outcome == "failed"
        if stored is not None:
            assert (stored["desired_count"], stored["min_capacity"], stored["max_capacity"]) == (
                3,
                2,
                6,
            )
    # Whatever the cut left behind, the next ticks stop every service and restore it exactly.
    _tick(world, STOP)
    assert all(_stopped(world, name) for name in NAMES)
    restored = _tick(world, START)
    assert not restored.failed
    assert all(world.state("c1", name).desired == 3 for name in NAMES)
    assert all(world.baseline(f"c1/{name}") is None for name in NAMES)


def test_a_start_deletes_only_the_baselines_whose_version_still_matches(world: World) -> None:
    _tick(world, STOP)
    clients = world.clients()
    log = CallLog()
    log.attach(clients)
    store = world.state_store()

    def amend_c() -> None:
        # Someone (another tick, a person) replaces c's baseline after the start read it.
        current = store.get_baselines(["c1/c"])["c1/c"]
        assert store.amend_baseline(current, current.model_copy(update={"version": "newer"}))

    _before(clients, "TransactWriteItems", amend_c)

    report = _tick(world, START, clients)

    assert not report.failed
    for name in NAMES:
        assert world.state("c1", name).desired == 3  # every service restored
    assert world.baseline("c1/a") is None and world.baseline("c1/d") is None
    kept = world.baseline("c1/c")
    assert kept is not None and kept["version"] == "newer"
    assert any("changed since it was read" in n for n in report.service("c1/c").notes)
    assert "delete_baseline" not in [a.kind for a in report.service("c1/c").actions]
    assert "delete_baseline" in [a.kind for a in report.service("c1/a").actions]
    # The deletes went in batches, each on the version that was read.
    for call in log.named("TransactWriteItems"):
        for item in call.params["TransactItems"]:
            assert item["Delete"]["ConditionExpression"] == "version = :v AND saved_at = :s"


def test_a_dry_run_writes_nothing(world: World) -> None:
    clients = world.clients()
    log = CallLog()
    log.attach(clients)
    report = _tick(world, STOP, clients, dry_run=True)
    assert report.counts["planned"] == len(NAMES)
    assert log.writes(("ecs", "application-autoscaling", "dynamodb")) == []
    assert all(world.baseline(f"c1/{name}") is None for name in NAMES)


# The store's batches, over random outcomes per item -----------------------------------------
def _baseline(key: str, version: str = "v1") -> Baseline:
    return Baseline(
        key=key,
        desired_count=2,
        min_capacity=1,
        max_capacity=4,
        saved_at=datetime(2026, 12, 1, tzinfo=UTC),
        decided_by="schedule",
        version=version,
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    outcomes=st.lists(st.sampled_from(["absent", "present", "changed"]), min_size=1, max_size=130)
)
def test_batches_write_exactly_the_items_whose_condition_holds(outcomes: list[str]) -> None:
    # "absent": no item (a save writes, a delete is refused); "present": the version read
    # (a save is refused, a delete deletes); "changed": another version (both refused).
    with moto_tables() as world:
        store: StateStore = world.state_store()
        keys = [f"c{i // 50}/s{i}" for i in range(len(outcomes))]
        for key, outcome in zip(keys, outcomes, strict=True):
            if outcome != "absent":
                store.save_baseline(_baseline(key, "v1" if outcome == "present" else "v2"))
        before = {key: world.baseline(key) for key in keys}

        saved = store.save_baselines([_baseline(key, "new") for key in keys])
        absent = {k for k, o in zip(keys, outcomes, strict=True) if o == "absent"}
        assert saved.error is None
        assert saved.done == absent and saved.refused == set(keys) - absent
        for key in keys:
            stored = world.baseline(key)
            assert stored is not None
            if key in absent:
                assert stored["version"] == "new"
            else:
                assert stored == before[key]  # never overwritten

        # The deletes expect the version "v1": only the "present" items still hold it.
        deleted = store.delete_baselines([_baseline(key, "v1") for key in keys])
        present = {k for k, o in zip(keys, outcomes, strict=True) if o == "present"}
        assert deleted.done == present and deleted.refused == set(keys) - present
        for key in keys:
            assert (world.baseline(key) is None) == (key in present)


def test_the_state_table_items_of_a_batch_are_baselines(world: World) -> None:
    _tick(world, STOP)
    items = world.state_store().read_baselines([f"c1/{n}" for n in NAMES])
    assert sorted(items.found) == [f"c1/{n}" for n in NAMES] and not items.unreadable
    assert BASELINE_PK == "baseline"
