"""Attacks on a scope's lease (engine.lease with ``deletes_empty``; engine.tick takes it with
one conditional write guessing "no record"): a record an earlier version left, records
corrupted by hand, a lease taken over after it ran out, and the edits function racing a
worker on one scope now that the release deletes the record."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from engine.config import Settings
from engine.fanout import scope_id
from engine.lease import (
    RECORD_SK,
    HeldLease,
    LeaseRecord,
    LeaseTable,
    Slot,
    acquire,
    cover_for,
    record_item,
    scope_lease_pk,
)
from engine.tick import TickError, run_tick
from tests.fanoutworld import desired as _desired
from tests.invariant import assert_invariant, snapshot
from tests.world import CallLog, World, at, moto_tables, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
SETTINGS = Settings()
PK = scope_lease_pk(scope_id((None, None)))


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables(SETTINGS) as world:
        world.create_service("c1", "web", desired=2)
        world.create_service("c1", "api", desired=3)
        world.put(schedule("c1/web"), schedule("c1/api"))
        yield world


def _record(world: World) -> dict[str, Any] | None:
    got = world.dynamodb.get_item(
        TableName=SETTINGS.state_table,
        Key={"pk": {"S": PK}, "sk": {"S": RECORD_SK}},
        ConsistentRead=True,
    )
    item: dict[str, Any] | None = got.get("Item")
    return item


def _put(world: World, item: dict[str, Any]) -> None:
    world.dynamodb.put_item(TableName=SETTINGS.state_table, Item=item)


def _lease_calls(log: CallLog) -> list[str]:
    return [
        c.operation
        for c in log.calls
        if c.service == "dynamodb" and PK in str(c.params) and "fanout" not in str(c.params)
    ]


def _tick(world: World, log: CallLog | None = None, **kwargs: Any) -> Any:
    clients = world.clients() if log is None else log.attach(world.clients())
    return run_tick(clients, SETTINGS, at=STOP, dry_run=False, scope=(None, None), **kwargs)


def test_a_released_scope_record_is_deleted_and_taken_again_with_one_write(world: World) -> None:
    expected = snapshot(["c1/web", "c1/api"])
    first, second = CallLog(), CallLog()
    assert _tick(world, first).lease == "acquired"
    assert _lease_calls(first) == ["PutItem", "DeleteItem"]
    assert _record(world) is None
    assert _tick(world, second).lease == "acquired"
    assert _lease_calls(second) == ["PutItem", "DeleteItem"]
    assert_invariant(world, expected)


def test_a_record_an_earlier_version_left_costs_one_refused_write_once(world: World) -> None:
    """An earlier version gave a scope's lease back by writing its record with no slot: the
    guess "no record" is refused once, the record read and taken, and deleted on release."""
    _put(world, record_item(LeaseRecord(1, {}), "an-earlier-version", PK))
    expected = snapshot(["c1/web", "c1/api"])
    log = CallLog()
    assert _tick(world, log).lease == "acquired"
    assert _lease_calls(log) == ["PutItem", "Query", "PutItem", "DeleteItem"]
    assert _record(world) is None
    assert _desired(world, "web") == 0
    log.clear()
    assert _tick(world, log).lease == "acquired"
    assert _lease_calls(log) == ["PutItem", "DeleteItem"]  # from then on, one write
    assert_invariant(world, expected)


def test_a_record_an_earlier_version_left_with_a_live_slot_blocks(world: World) -> None:
    held = LeaseRecord(1, {0: Slot("another-tick", 0.0, 4_000_000_000.0)})
    _put(world, record_item(held, "v0", PK))
    report = _tick(world)
    assert report.lease == "held"
    assert _desired(world, "web") == 2 and _desired(world, "api") == 3
    assert _record(world) == record_item(held, "v0", PK)  # untouched


@pytest.mark.parametrize(
    "corrupt",
    [
        {"slots": {"S": "garbage"}},
        {"shards": {"S": "one"}},
        {"version": {"N": "7"}},
        {"version": None},
        {"slots": {"M": {"0": {"M": {"holder": {"N": "1"}}}}}},
        {"slots": {"M": {"zero": {"M": {"holder": {"S": "x"}, "taken_at": {"N": "0"}}}}}},
    ],
    ids=[
        "slots-a-string",
        "shards-a-string",
        "version-a-number",
        "no-version",
        "slot-cut",
        "slot-index-a-word",
    ],
)
def test_a_scope_record_corrupted_by_hand_fails_the_tick_and_is_left_for_people(
    world: World, corrupt: dict[str, Any]
) -> None:
    item = {**record_item(LeaseRecord(1, {}), "v0", PK), **corrupt}
    item = {k: v for k, v in item.items() if v is not None}
    _put(world, item)
    # The error names the record people must mend or delete: the scope's, not the ticks'.
    with pytest.raises(TickError, match=f"lease record pk={PK} sk={RECORD_SK}"):
        _tick(world)
    assert _desired(world, "web") == 2 and _desired(world, "api") == 3
    assert _record(world) == item  # neither overwritten nor deleted


def test_the_old_holders_release_after_a_takeover_leaves_the_new_holders_lease(
    world: World,
) -> None:
    """A's lease ran out (a slow invocation); B took it over; A then gives it back: A's
    conditional delete on its own version is refused and B's record stays."""
    now = [1_000.0]
    cover = cover_for(None, 1, None)
    a_table = LeaseTable(world.clients(), SETTINGS.state_table, pk=PK, sleep=lambda _: None)
    a = acquire(a_table, None, cover, "A", 60, lambda: now[0], may_switch=True)
    assert isinstance(a, HeldLease)
    now[0] += 120  # A's lease has run out
    b_table = LeaseTable(world.clients(), SETTINGS.state_table, pk=PK, sleep=lambda _: None)
    b = acquire(b_table, None, cover, "B", 60, lambda: now[0], may_switch=True)
    assert isinstance(b, HeldLease)
    a.release()
    record = _record(world)
    assert record is not None and "B" in str(record["slots"]) and "A" not in str(record["slots"])
    b.release()
    assert _record(world) is None


def test_the_edits_function_and_a_worker_racing_on_one_scope_never_act_at_once(
    world: World,
) -> None:
    expected = snapshot(["c1/web", "c1/api"])
    with ThreadPoolExecutor(2) as pool:
        reports = list(
            pool.map(
                lambda services: _tick(world, services=services, holder=f"h{services}"),
                [["c1/web"], None],
            )
        )
    leases = sorted(r.lease for r in reports)
    assert leases in (["acquired", "acquired"], ["acquired", "held"]), leases
    acted = [r for r in reports if r.lease == "acquired"]
    assert {s.key for r in acted for s in r.services} <= {"c1/web", "c1/api"}
    assert _record(world) is None  # whoever held it last gave it back: deleted
    if "held" not in leases or any(
        r.lease == "acquired" and r.services and len(r.services) == 2 for r in reports
    ):
        pass
    assert_invariant(world, expected)
