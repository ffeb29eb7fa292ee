"""The scheduled tick meeting the wake function's lease. A wake converges its one service under
the tick's lease (holder ``wake:<request>``), once per ``CONVERGE_EVERY_S`` while a page keeps
reloading, so a quarter-hour tick finds it there far more often than the edits function's. A
tick that leaves at once on meeting it skips the whole fleet until the next quarter hour."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from freezegun import freeze_time

import engine.handler as lambda_handler
from engine.lease import break_holder
from engine.wake_handler import WAKE_HOLDER
from tests.streamworld import NIGHT, Context, edits_world
from tests.world import World

HOLDER = WAKE_HOLDER + "lambda:req-w/0000abcd"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, teiji_logging_restored: None) -> Iterator[World]:
    with edits_world(monkeypatch) as w:
        yield w


def test_a_scheduled_tick_waits_for_the_wake_functions_lease_then_ticks(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []

    def wake_done(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:  # the wake function's converge ends and releases its slot
            break_holder(world.leases(), HOLDER)

    monkeypatch.setattr(lambda_handler, "_pause", wake_done)
    with freeze_time(NIGHT):
        assert world.hold_lease(HOLDER, ttl=120)
        result = lambda_handler.lambda_handler({"shard": 0, "shards": 1}, Context())
    assert result["lease"] == "acquired"
    assert world.state("c1", "web").desired == 0 and world.state("c1", "api").desired == 0
