"""Edits and the tick lease: the edits function waits (boundedly) for a tick's lease, then hands
the records back to be delivered again; a lease on another shard holds nothing up; a scheduled
tick that meets the edits function's lease waits for it, and leaves any other tick's at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from freezegun import freeze_time

import engine.handler as lambda_handler
from engine.edits import read_batch
from engine.lease import break_holder
from engine.stream_handler import apply_batch, handler
from tests.streamworld import (
    DAY,
    NIGHT,
    Context,
    Stream,
    deliver,
    edits_world,
    put_raw,
)
from tests.world import World, at


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, teiji_logging_restored: None) -> Iterator[World]:
    with edits_world(monkeypatch) as w:
        yield w


@pytest.fixture
def stream(world: World) -> Stream:
    return Stream(world)


class FakeClock:
    """Wall time that moves only when slept on, so waiting for a lease takes no real time."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept = 0.0
        self.on_sleep: list[Any] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        for hook in self.on_sleep:
            hook(self)


def test_an_edit_while_a_tick_holds_the_lease_is_delivered_again_then_converges(
    world: World, stream: Stream
) -> None:
    with freeze_time(DAY):
        assert world.hold_lease("lambda:scheduled-tick/1234abcd")
        put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
        event = stream.batch()
        clock = FakeClock(1_000_000_000.0)
        outcome = apply_batch(
            world.clients(),
            world.settings,
            read_batch(event),
            at=at("2026-12-02T12:00:00+09:00"),
            wall=clock.time,
            sleep=clock.sleep,
            lease_wait_s=10,
        )
    sequences = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": s} for s in sequences]}
    assert 9 <= clock.slept <= 11  # it waited, boundedly
    assert world.state("c1", "web").desired == 2  # the tick's services are the tick's
    assert world.lease_slots() == {"tick": "lambda:scheduled-tick/1234abcd"}
    # The tick ends; the event source mapping delivers the same batch again.
    break_holder(world.leases(), "lambda:scheduled-tick/1234abcd")
    with freeze_time(DAY):
        result = handler(event, Context())
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 0


def test_a_lease_freed_while_waiting_is_taken_in_the_same_invocation(
    world: World, stream: Stream
) -> None:
    with freeze_time(DAY):
        assert world.hold_lease("lambda:scheduled-tick/1234abcd")
        put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
        event = stream.batch()
        clock = FakeClock(1_000_000_000.0)

        def tick_ends_after_three_seconds(c: FakeClock) -> None:
            if c.slept >= 3:
                break_holder(world.leases(), "lambda:scheduled-tick/1234abcd")

        clock.on_sleep.append(tick_ends_after_three_seconds)
        outcome = apply_batch(
            world.clients(),
            world.settings,
            read_batch(event),
            at=at("2026-12-02T12:00:00+09:00"),
            wall=clock.time,
            sleep=clock.sleep,
        )
    assert outcome.response() == {"batchItemFailures": []}
    assert 3 <= clock.slept < 5
    assert world.state("c1", "web").desired == 0
    assert world.lease_slots() == {}  # taken and released


def test_a_lease_held_on_another_shard_does_not_hold_up_an_edit(
    world: World, stream: Stream
) -> None:
    from engine.lease import shard_of

    two = replace(world.settings, shards=2)
    other = 1 - shard_of("c1/web", 2)
    with freeze_time(DAY):
        assert world.hold_lease("lambda:scheduled-tick/1234abcd", (other, 2))
        put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
        clock = FakeClock(1_000_000_000.0)
        outcome = apply_batch(
            world.clients(),
            two,
            read_batch(stream.batch()),
            at=at("2026-12-02T12:00:00+09:00"),
            wall=clock.time,
            sleep=clock.sleep,
        )
    assert outcome.response() == {"batchItemFailures": []}
    assert clock.slept == 0
    assert world.state("c1", "web").desired == 0


# The other way round: a scheduled tick meets the edits function's lease ------------------------
def test_a_scheduled_tick_waits_for_the_edits_functions_lease_then_ticks(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []

    def edits_done(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:  # the edits function releases its slot
            break_holder(world.leases(), "edits:lambda:req-e/0000abcd")

    monkeypatch.setattr(lambda_handler, "_pause", edits_done)
    with freeze_time(NIGHT):
        assert world.hold_lease("edits:lambda:req-e/0000abcd", ttl=120)
        result = lambda_handler.lambda_handler({"shard": 0, "shards": 1}, Context())
    assert result["lease"] == "acquired"
    assert pauses == [1.0, 1.0]
    assert world.state("c1", "web").desired == 0 and world.state("c1", "api").desired == 0


def test_a_scheduled_tick_leaves_another_ticks_lease_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(lambda_handler, "_pause", pauses.append)
    with freeze_time(NIGHT):
        assert world.hold_lease("lambda:older-tick/1234abcd", ttl=120)
        result = lambda_handler.lambda_handler({"shard": 0, "shards": 1}, Context())
    assert result["lease"] == "held" and pauses == []
    assert world.state("c1", "web").desired == 2


def test_the_edits_function_names_itself_in_the_lease(world: World, stream: Stream) -> None:
    seen: list[str] = []
    original = lambda_handler.EDITS_HOLDER

    import engine.tick

    real = engine.tick.run_tick

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["holder"])
        return real(*args, **kwargs)

    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.tick, "run_tick", spy)
        deliver(stream, DAY)
    assert seen and all(h.startswith(original + "lambda:req-edits/") for h in seen)
