"""Leases: any two ticks that could touch the same service contend for the same slot.

The scheduled Lambda sends ``{"shard": i, "shards": n}``; a tick from a terminal (``teiji tick``,
``--now``) gives no shard and takes the slot of every shard holding a service it will act on,
as the deployment's recorded shard count splits them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

import engine.handler as handler
from engine.config import Settings
from engine.lease import (
    Blocked,
    CountRefused,
    Cover,
    LeaseRecord,
    Slot,
    Snapshot,
    break_holder,
    cover_for,
    lease_name,
    record_from_item,
    renew,
    shard_of,
    take,
    without,
)
from engine.report import TickReport
from engine.store import ConfigStore, LoadedConfig
from engine.tick import TickError, run_tick
from schemas.keys import keys_wanted
from tests.faults import capacities
from tests.invariant import Capacity, assert_invariant
from tests.world import CallLog, World, at, moto_tables, run_cli, schedule

NIGHT = at("2026-12-01T23:00:00+09:00")  # Tuesday night in Tokyo: every service should stop
NIGHT_UTC = "2026-12-01T14:00:00Z"
TWO = Settings(shards=2)


class Context:
    aws_request_id = "req-lease"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setattr(handler, "_clients", {})
    with moto_tables() as w:
        yield w


def _keys_in_both_shards() -> tuple[str, str]:
    """Two service keys of cluster c1 that fall in different shards of two."""
    names = [f"c1/svc-{i}" for i in range(20)]
    first = next(k for k in names if shard_of(k, 2) == 0)
    second = next(k for k in names if shard_of(k, 2) == 1)
    return first, second


def _services(world: World, *keys: str) -> None:
    for key in keys:
        cluster, name = key.split("/")
        world.create_service(cluster, name, desired=2)
    world.put(*(schedule(key) for key in keys))


def _lease_puts(log: CallLog) -> list[str]:
    """The slots a tick took (its first write of the lease record), by name."""
    for call in log.named("PutItem"):
        item = call.params["Item"]
        if item["pk"]["S"] == "lease":
            record = record_from_item(item, "teiji-state")
            return [lease_name((i, record.shards)) for i in sorted(record.slots)]
    return []


def _during_the_lease(monkeypatch: pytest.MonkeyPatch, act: Callable[[], Any]) -> list[Any]:
    """Run ``act`` once, while the next tick holds its leases (when it reads the documents)."""
    results: list[Any] = []
    original = ConfigStore.load_config

    def load_config(self: ConfigStore, **kwargs: Any) -> LoadedConfig:
        if not results:
            results.append(None)  # the tick inside ``act`` reads documents too
            results[0] = act()
        return original(self, **kwargs)

    monkeypatch.setattr(ConfigStore, "load_config", load_config)
    return results


def _tick(world: World, settings: Settings = TWO, **kwargs: Any) -> tuple[TickReport, CallLog]:
    log = CallLog()
    kwargs.setdefault("dry_run", False)
    report = run_tick(log.attach(world.clients()), settings, at=NIGHT, **kwargs)
    return report, log


# Names --------------------------------------------------------------------------------------------
def test_one_shard_is_the_lease_every_tick_takes() -> None:
    assert lease_name(None) == lease_name((0, 1)) == "tick"
    assert lease_name((1, 3)) == "tick#1/3"
    assert Cover((0,), 1).lease_names() == ["tick"]
    assert cover_for(None, 1, None).lease_names() == ["tick"]
    assert cover_for((0, 1), 1, None).lease_names() == ["tick"]


def test_a_tick_given_no_shard_covers_every_shard_in_ascending_order() -> None:
    assert cover_for(None, 3, None).lease_names() == ["tick#0/3", "tick#1/3", "tick#2/3"]
    assert cover_for((2, 3), 3, None).lease_names() == ["tick#2/3"]


keys = st.from_regex(r"c[0-9]/[a-z]{1,8}(@(us-east-1|123456789012))?", fullmatch=True)


@given(named=st.sets(keys, min_size=1, max_size=30), count=st.integers(1, 12))
def test_the_leases_of_named_services_cover_exactly_their_shards(
    named: set[str], count: int
) -> None:
    cover = cover_for(None, count, named)
    assert all(cover.holds(key) for key in named)
    # Ascending shard order, each shard once; one shard is the single lease "tick".
    expected = sorted({shard_of(key, count) for key in named})
    assert cover.lease_names() == [lease_name((index, count)) for index in expected]


def test_a_service_name_stands_for_its_schedules_in_every_account_and_region() -> None:
    stored = {"c1/web", "c1/web@us-east-1", "c1/webapp", "c2/web"}
    assert keys_wanted(stored, ["c1/web"]) == {"c1/web", "c1/web@us-east-1"}
    assert keys_wanted(stored, ["c1/web@us-east-1"]) == {"c1/web@us-east-1"}
    assert keys_wanted(stored, ["c9/none"]) == set()


# One shard: the terminal and the scheduled Lambda ------------------------------------------------
def test_a_terminal_tick_waits_for_the_scheduled_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _services(world, "c1/web")
    # `teiji start c1/web --now` while the Lambda's tick (which decided "stop") is acting.
    inner = _during_the_lease(monkeypatch, lambda: _tick(world, Settings(), services=["c1/web"])[0])
    with freeze_time(NIGHT_UTC):
        scheduled = handler.lambda_handler({"shard": 0, "shards": 1}, Context())
    assert scheduled["lease"] == "acquired"
    terminal: TickReport = inner[0]
    assert terminal.lease == "held"
    assert terminal.services == []  # it acted on nothing
    assert world.state("c1", "web").desired == 0  # the scheduled tick did its work
    assert world.lease_slots() == {}  # and gave the lease back


def test_the_scheduled_tick_waits_for_a_terminal_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _services(world, "c1/web")

    def scheduled() -> dict[str, Any]:
        return handler.lambda_handler({"shard": 0, "shards": 1}, Context())

    inner = _during_the_lease(monkeypatch, scheduled)
    with freeze_time(NIGHT_UTC):  # one wall clock for both: leases expire by it
        terminal, log = _tick(world, Settings())
    assert _lease_puts(log) == ["tick"]
    assert terminal.lease == "acquired"
    assert terminal.service("c1/web").outcome == "changed"
    assert inner[0]["lease"] == "held"
    assert inner[0]["services"] == []


# Several shards --------------------------------------------------------------------------------
def test_a_service_tick_takes_only_the_lease_of_that_services_shard(world: World) -> None:
    first, second = _keys_in_both_shards()
    _services(world, first, second)
    report, log = _tick(world, services=[second])
    assert _lease_puts(log) == [lease_name((1, 2))]
    assert report.lease == "acquired"
    assert [s.key for s in report.services] == [second]
    assert report.service(second).outcome == "changed"
    assert world.state("c1", first.split("/")[1]).desired == 2  # not named: left alone
    assert world.lease_slots() == {}  # given back


def test_a_full_tick_takes_every_shards_lease(world: World) -> None:
    first, second = _keys_in_both_shards()
    _services(world, first, second)
    report, log = _tick(world)
    assert _lease_puts(log) == [lease_name((0, 2)), lease_name((1, 2))]
    assert report.lease == "acquired"
    assert report.counts["changed"] == 2
    assert world.lease_slots() == {}


def test_a_service_tick_runs_beside_the_other_shards_tick_but_not_its_own(
    world: World,
) -> None:
    first, second = _keys_in_both_shards()
    _services(world, first, second)
    assert world.hold_lease("shard-0-lambda", (0, 2))

    beside, _ = _tick(world, services=[second])  # shard 1: nobody is acting on it
    assert beside.lease == "acquired"
    assert beside.service(second).outcome == "changed"

    blocked, log = _tick(world, services=[first])  # shard 0 is busy
    assert blocked.lease == "held"
    assert blocked.lease_holder == "shard-0-lambda"
    assert blocked.services == []
    assert log.writes(("ecs", "application-autoscaling")) == []
    assert world.state("c1", first.split("/")[1]).desired == 2


def test_a_full_tick_gives_back_what_it_took_when_one_shard_is_held(world: World) -> None:
    first, second = _keys_in_both_shards()
    _services(world, first, second)
    assert world.hold_lease("shard-1-lambda", (1, 2))

    report, log = _tick(world)
    assert report.lease == "held"
    assert report.lease_holder == "shard-1-lambda"
    assert report.services == []
    assert log.writes(("ecs", "application-autoscaling")) == []
    assert world.lease_slots() == {lease_name((1, 2)): "shard-1-lambda"}  # nothing taken
    # The scheduled shard 0 is not blocked by the tick that gave up.
    assert world.hold_lease("shard-0-lambda", (0, 2))


def test_a_full_tick_and_a_shards_lambda_contend(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _keys_in_both_shards()
    _services(world, first, second)
    monkeypatch.setenv("TEIJI_SHARDS", "2")

    def shard_one() -> dict[str, Any]:
        return handler.lambda_handler({"shard": 1, "shards": 2}, Context())

    inner = _during_the_lease(monkeypatch, shard_one)
    with freeze_time(NIGHT_UTC):  # one wall clock for both: leases expire by it
        report, _ = _tick(world)
    assert report.lease == "acquired"
    assert inner[0]["lease"] == "held"


def test_the_handler_takes_only_its_shards_lease(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _keys_in_both_shards()
    _services(world, first, second)
    monkeypatch.setenv("TEIJI_SHARDS", "2")
    assert world.hold_lease("shard-0-lambda", (0, 2))
    with freeze_time(NIGHT_UTC):
        result = handler.lambda_handler({"shard": 1, "shards": 2}, Context())
    assert result["lease"] == "acquired"
    assert [s["service"] for s in result["services"]] == [second]
    assert world.state("c1", second.split("/")[1]).desired == 0


def test_a_schedule_written_while_a_service_tick_starts_waits_for_the_next_tick(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _keys_in_both_shards()  # shard 0
    _services(world, first)
    region = next(
        r
        for r in ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1")
        if shard_of(f"{first}@{r}", 2) == 1
    )
    late = f"{first}@{region}"
    original = ConfigStore.load_config
    reads: list[datetime] = []

    def load_config(self: ConfigStore, **kwargs: Any) -> LoadedConfig:
        loaded = original(self, **kwargs)
        if not reads:  # the read that chooses the leases; the schedule lands right after it
            world.put(schedule(first, region=region))
        reads.append(kwargs["now"])
        return loaded

    monkeypatch.setattr(ConfigStore, "load_config", load_config)
    report, log = _tick(world, services=[first])
    assert len(reads) == 2  # chose the leases, then read again under them
    assert _lease_puts(log) == [lease_name((0, 2))]
    assert report.service(first).outcome == "changed"
    skipped = report.service(late)
    assert skipped.outcome == "skipped"
    assert skipped.error is not None and "run the tick again" in skipped.error
    assert report.failed  # the operator asked for it and it was not done


# The record: one shard count for the deployment -------------------------------------------------
def _record(*slots: tuple[int, str, float], shards: int = 2) -> Snapshot:
    return Snapshot(
        LeaseRecord(shards, {i: Slot(h, 0.0, expires) for i, h, expires in slots}, "v1")
    )


def test_a_tick_of_another_shard_count_is_refused_while_any_slot_is_live() -> None:
    held = _record((0, "lambda-0", 100.0))
    outcome = take(held, Cover((0,), 1), "terminal", 50.0, 120, may_switch=True)
    assert outcome == CountRefused(recorded=2, asked=1)
    # Not even a count that splits differently but would miss the held shard's services.
    assert isinstance(take(held, Cover((1,), 3), "x", 50.0, 120, may_switch=True), CountRefused)


def test_only_the_deployments_own_count_moves_the_record_and_only_when_nothing_is_held() -> None:
    ran_out = _record((0, "lambda-0", 10.0))
    stray = take(ran_out, Cover((3,), 7), "stray", 50.0, 120, may_switch=False)
    assert stray == CountRefused(recorded=2, asked=7)
    moved = take(ran_out, Cover((1,), 3), "new", 50.0, 120, may_switch=True)
    assert isinstance(moved, LeaseRecord)
    assert moved.shards == 3 and set(moved.slots) == {1}  # the run-out slot of 2 is gone


def test_a_slot_is_taken_only_when_free_run_out_or_already_ours() -> None:
    held = _record((0, "a", 100.0))
    assert take(held, Cover((0, 1), 2), "b", 50.0, 120, may_switch=False) == Blocked(
        "tick#0/2", Slot("a", 0.0, 100.0)
    )
    both = take(held, Cover((0, 1), 2), "b", 150.0, 120, may_switch=False)
    assert isinstance(both, LeaseRecord)
    assert {i: s.holder for i, s in both.slots.items()} == {0: "b", 1: "b"}


def test_an_item_of_an_earlier_version_blocks_every_tick_until_it_runs_out() -> None:
    snapshot = Snapshot(None, {"tick#0/2": Slot("old", 0.0, 100.0)})
    assert isinstance(take(snapshot, Cover((0,), 1), "new", 50.0, 120, may_switch=True), Blocked)
    assert isinstance(
        take(snapshot, Cover((0,), 1), "new", 101.0, 120, may_switch=True), LeaseRecord
    )


def test_a_renewal_is_refused_once_a_slot_ran_out_or_changed_hands() -> None:
    mine = _record((0, "me", 100.0), (1, "me", 100.0))
    renewed = renew(mine.record, "me", 90.0, 120)
    assert renewed is not None and {s.expires_at for s in renewed.slots.values()} == {210.0}
    assert renew(mine.record, "me", 100.0, 120) is None  # ran out: another may hold it now
    assert renew(_record((0, "other", 100.0)).record, "me", 50.0, 120) is None
    assert without(mine.record, "other") is None
    released = without(mine.record, "me")
    assert released is not None and released.slots == {}


@given(
    ticks=st.lists(
        st.tuples(
            st.integers(1, 6),  # the count a tick was started with
            st.integers(0, 5),  # its shard (or all shards: a tick from a terminal)
            st.booleans(),  # whether its count is the deployment's setting
            st.floats(0, 500),  # when it starts
        ),
        min_size=1,
        max_size=12,
    ),
    services=st.sets(keys, min_size=1, max_size=20),
)
def test_no_two_live_holders_ever_cover_one_service(
    ticks: list[tuple[int, int, bool, float]], services: set[str]
) -> None:
    snapshot = Snapshot(None)
    covers: dict[str, Cover] = {}
    for n, (count, index, may_switch, now) in enumerate(sorted(ticks, key=lambda t: t[3])):
        holder = f"t{n}"
        cover = Cover((index % count,), count) if index < 5 else cover_for(None, count, None)
        outcome = take(snapshot, cover, holder, now, 120, may_switch=may_switch)
        if isinstance(outcome, LeaseRecord):
            snapshot = Snapshot(outcome)
            covers[holder] = cover
        live = {s.holder for s in snapshot.record.live(now).values()} if snapshot.record else set()
        for key in services:
            acting = [h for h in live if covers[h].holds(key)]
            assert len(acting) <= 1, (key, acting)


def test_an_unreadable_lease_record_stops_the_tick_before_it_acts(world: World) -> None:
    _services(world, "c1/web")
    world.put_item({"pk": "lease", "sk": "ticks", "shards": "two"}, table="teiji-state")
    with pytest.raises(TickError, match="lease record"):
        _tick(world, Settings())
    assert world.state("c1", "web").desired == 2


# Ticks started with different shard settings ---------------------------------------------------
def _kept(world: World, originals: dict[str, Capacity]) -> None:
    assert_invariant(world, originals)


def _fleet(world: World, count: int = 6) -> dict[str, Capacity]:
    originals = {}
    for n in range(count):
        world.create_service("c1", f"svc-{n}", desired=3, target=(2, 6), suspended={"in": True})
        originals[f"c1/svc-{n}"] = Capacity.of(3, (2, 6), {"in": True})
    world.put(*(schedule(key) for key in originals))
    return originals


def test_a_terminal_tick_without_shards_waits_for_a_lambda_of_two(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    originals = _fleet(world)
    monkeypatch.setenv("TEIJI_SHARDS", "2")
    terminal = _during_the_lease(monkeypatch, lambda: _tick(world, Settings())[0])
    with freeze_time(NIGHT_UTC):
        lambda_tick = handler.lambda_handler({"shard": 0, "shards": 2}, Context())
    assert lambda_tick["lease"] == "acquired"
    assert terminal[0].lease == "held"
    assert terminal[0].lease_name == "tick#0/2"  # it took the recorded count, 2
    assert terminal[0].services == []
    _kept(world, originals)


def test_a_lambda_of_two_is_refused_while_a_tick_of_one_acts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    originals = _fleet(world)
    monkeypatch.setenv("TEIJI_SHARDS", "2")  # the deployment moved to two shards

    def lambda_tick() -> str:
        with pytest.raises(handler.TickFailedError) as err:
            handler.lambda_handler({"shard": 1, "shards": 2}, Context())
        return str(err.value)

    refused = _during_the_lease(monkeypatch, lambda_tick)
    with freeze_time(NIGHT_UTC):
        terminal, _ = _tick(world, Settings())  # records one shard
    assert terminal.lease == "acquired" and terminal.counts["changed"] == 6
    assert "ticks in 1 shard(s)" in refused[0]
    _kept(world, originals)
    # Once nothing is held, the deployment's own count takes over the record.
    with freeze_time(NIGHT_UTC):
        moved = handler.lambda_handler({"shard": 1, "shards": 2}, Context())
    assert moved["lease"] == "acquired"
    assert world.leases().read().record.shards == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "event",
    [
        {"shard": 3, "shards": 1000},
        {"shard": 0, "shards": 10**100},
        {"shard": -1, "shards": 2},
        {"shard": 0, "shards": -2},
        {"shard": 0, "shards": 0},
        {"shard": 1, "shards": 1},
        {"shard": "0", "shards": 2},
        {"shard": 0, "shards": 2.0},
        {"shard": True, "shards": 2},
        {"shard": 0, "shards": True},
        {"shard": 0, "shards": None},
        {"shard": 0},
        {"shards": 2},
    ],
)
def test_a_hostile_shard_event_is_refused_and_acts_on_nothing(
    world: World, event: dict[str, Any]
) -> None:
    originals = _fleet(world)
    with freeze_time(NIGHT_UTC), pytest.raises(handler.BadEventError) as err:
        handler.lambda_handler(event, Context())
    assert len(str(err.value)) < 200  # a huge number is not echoed whole
    assert capacities() == originals
    assert world.lease_slots() == {}


def test_a_valid_event_of_a_count_the_deployment_does_not_use_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    originals = _fleet(world)
    monkeypatch.setenv("TEIJI_SHARDS", "2")
    with freeze_time(NIGHT_UTC):
        handler.lambda_handler({"shard": 0, "shards": 2}, Context())  # records two
    before = capacities()
    with freeze_time(NIGHT_UTC), pytest.raises(handler.TickFailedError, match="2 shard"):
        handler.lambda_handler({"shard": 4, "shards": 7}, Context())
    assert capacities() == before  # nothing acted
    assert world.leases().read().record.shards == 2  # type: ignore[union-attr]
    _kept(world, originals)


# The CLI: `teiji lease`, `teiji lease break` ----------------------------------------------------
@pytest.fixture
def server_world(endpoint: str) -> World:
    world = World(endpoint)
    world.init_tables()
    return world


def test_teiji_lease_lists_the_holders_and_breaks_a_stale_one(
    server_world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, endpoint, "lease")
    assert code == 0 and "no shard count recorded" in out and "no lease is held" in out

    assert server_world.hold_lease("web-01:4242/ab12cd34", (1, 2))
    code, out, _ = run_cli(capsys, endpoint, "lease")
    assert code == 0
    assert "2 shard(s)" in out and "tick#1/2" in out and "web-01:4242/ab12cd34" in out
    code, out, _ = run_cli(capsys, endpoint, "lease", "--json")
    listed = json.loads(out)
    assert listed["shards"] == 2
    assert [(row["lease"], row["holder"], row["live"]) for row in listed["leases"]] == [
        ("tick#1/2", "web-01:4242/ab12cd34", True)
    ]

    code, out, _ = run_cli(capsys, endpoint, "lease", "break", "someone-else")
    assert code == 1 and "holds no lease" in out
    assert server_world.lease_slots() == {"tick#1/2": "web-01:4242/ab12cd34"}
    code, out, _ = run_cli(capsys, endpoint, "lease", "break", "web-01:4242/ab12cd34")
    assert code == 0 and "removed tick#1/2" in out
    assert server_world.lease_slots() == {}
    code, out, _ = run_cli(capsys, endpoint, "lease", "break", "web-01:4242/ab12cd34")
    assert code == 1  # broken already: nothing to remove
    code, _, err = run_cli(capsys, endpoint, "lease", "break", " ")
    assert code == 2 and "HOLDER" in err


def test_lease_break_refuses_when_the_holder_changed_in_between(
    server_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert server_world.hold_lease("dead", (0, 1), ttl=1, now=1_000.0)
    table = server_world.leases()
    original = table.read

    def read_then_taken_over() -> Snapshot:
        snapshot = original()
        if server_world.lease_slots().get("tick") == "dead":  # the new tick takes it over
            assert server_world.hold_lease("alive", (0, 1))
        return snapshot

    monkeypatch.setattr(table, "read", read_then_taken_over)
    assert break_holder(table, "dead") == []
    assert server_world.lease_slots() == {"tick": "alive"}  # the live tick keeps its lease


def test_the_tick_refused_by_a_lease_names_its_holder_and_times(
    server_world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server_world.hold_lease("lambda:6c9175a2-req/0a1b2c3d", (0, 1), now=time.time())
    code, out, _ = run_cli(capsys, endpoint, "tick")
    assert code == 0
    assert "another tick holds the lease tick: lambda:6c9175a2-req/0a1b2c3d" in out
    assert "taken 20" in out and "expires 20" in out and "nothing done" in out


# Deciding within the tick's time ------------------------------------------------------------------
def test_deciding_stops_at_its_budget_and_the_lease_is_kept(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each decision costs 100 s of wall time, longer than a renewal interval: deciding
    renews the lease as it goes, stops at its budget, acts on what it decided and reports the
    rest instead of running out of its lease."""
    from engine.decide import Decider

    keys = [f"c1/svc-{n}" for n in range(5)]
    _services(world, *keys)
    now = [NIGHT.timestamp()]
    original = Decider.decide

    def slow_decide(self: Decider, *args: Any, **kwargs: Any) -> Any:
        now[0] += 100
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Decider, "decide", slow_decide)
    log = CallLog()
    report = run_tick(
        log.attach(world.clients()),
        Settings(lease_seconds=120),
        at=NIGHT,
        dry_run=False,
        clock=lambda: now[0],
        decide_budget_s=250,
    )
    assert report.lease == "acquired"  # renewed while deciding, never lost
    outcomes = [report.service(key).outcome for key in keys]
    assert outcomes == ["changed", "changed", "changed", "skipped", "skipped"]
    assert "not decided" in (report.service(keys[-1]).error or "")
    assert report.failed  # the alarm fires: services were not reached
    assert world.state("c1", "svc-4").desired == 2


def test_a_lambda_near_its_timeout_starts_no_service(world: World) -> None:
    _services(world, "c1/web")

    class Ending(Context):
        def get_remaining_time_in_millis(self) -> int:
            return 20_000  # less than the margin the tick keeps before its deadline

    with freeze_time(NIGHT_UTC), pytest.raises(handler.TickFailedError):
        handler.lambda_handler({}, Ending())
    assert world.state("c1", "web").desired == 2
    assert world.lease_slots() == {}


def test_a_forged_holder_reaches_the_terminal_without_its_escapes(
    server_world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server_world.hold_lease("\x1b[2Jevil\x07", (0, 1))
    code, out, _ = run_cli(capsys, endpoint, "lease")
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "?[2Jevil?" in out
