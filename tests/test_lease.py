"""Leases: any two ticks that could touch the same service contend for the same slot.

The scheduled Lambda sends ``{"shard": i, "shards": n}``; a tick from a terminal (``teiji tick``,
``--now``) gives no shard and takes the slot of every shard holding a service it will act on,
as the deployment's recorded shard count splits them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

import engine.handler as handler
from engine.config import Settings
from engine.lease import Cover, cover_for, lease_name, record_from_item, shard_of, wanted_keys
from engine.report import TickReport
from engine.store import ConfigStore, LoadedConfig
from engine.tick import run_tick
from tests.world import CallLog, World, at, moto_tables, schedule

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
    assert wanted_keys(stored, ["c1/web"]) == {"c1/web", "c1/web@us-east-1"}
    assert wanted_keys(stored, ["c1/web@us-east-1"]) == {"c1/web@us-east-1"}
    assert wanted_keys(stored, ["c9/none"]) == set()


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
