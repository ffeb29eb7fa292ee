"""Edits from the world's side: a schedule for a cluster outside the allow-list, a calendar
that many services list, and a tick that took the lease and died without letting it go."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from freezegun import freeze_time

from engine.edits import read_batch
from engine.stream_handler import apply_batch
from tests.streamworld import DAY, NIGHT, Context, Stream, deliver, edits_world, log_lines, put_raw
from tests.test_streams_lease import FakeClock
from tests.world import World, at, schedule


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, teiji_logging_restored: None) -> Iterator[World]:
    with edits_world(monkeypatch) as w:
        yield w


@pytest.fixture
def stream(world: World) -> Stream:
    return Stream(world)


def test_an_edit_for_a_cluster_outside_the_allow_list_acts_on_nothing(
    world: World, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_ALLOWED_CLUSTERS", "c1")
    world.create_service("c2", "web", desired=2)
    put_raw(world, {"pk": "schedule", "sk": "c2/web", "mode": "always_off"})
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    _, result = deliver(stream, DAY)
    assert result == {"batchItemFailures": []}  # refused, not retried
    assert world.state("c2", "web").desired == 2
    assert world.state("c1", "web").desired == 0  # the allowed edit of the batch still acts


def test_a_calendar_listed_by_many_services_converges_each_of_them_once(
    world: World, stream: Stream
) -> None:
    keys = [f"c1/s{i:02d}" for i in range(30)]
    for key in keys:
        world.create_service("c1", key.split("/")[1], desired=1)
    world.put(*(schedule(key, holidays="days-off") for key in keys))
    stream.records()
    put_raw(world, {"pk": "calendar", "sk": "days-off", "dates": ["2026-12-02"]})
    _, result = deliver(stream, DAY)
    assert result == {"batchItemFailures": []}
    assert all(world.state("c1", key.split("/")[1]).desired == 0 for key in keys)
    assert world.state("c1", "web").desired == 2  # does not list it


def test_a_tick_that_died_holding_the_lease_holds_edits_up_only_until_its_lease_runs_out(
    world: World, stream: Stream
) -> None:
    with freeze_time(NIGHT) as frozen:
        ttl = world.settings.lease_seconds
        # A tick takes the lease and dies (killed, timed out): it never lets it go.
        assert world.hold_lease("lambda:scheduled-tick/dead", ttl=ttl)
        put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_on"})
        put_raw(world, {"pk": "schedule", "sk": "c1/api", "mode": "always_off"})
        event = stream.batch()
        clock = FakeClock(frozen().timestamp())  # type: ignore[attr-defined]
        outcome = apply_batch(
            world.clients(),
            world.settings,
            read_batch(event),
            at=at("2026-12-02T23:00:00+09:00"),
            wall=clock.time,
            sleep=clock.sleep,
            lease_wait_s=10,
        )
        assert len(outcome.failures) == 2  # handed back, never dropped
        # Deliveries later, the dead tick's lease has run out: the edits act.
        frozen.tick(ttl + 1)
        clock.now = frozen().timestamp()  # type: ignore[attr-defined]
        outcome = apply_batch(
            world.clients(),
            world.settings,
            read_batch(event),
            at=at("2026-12-02T23:00:00+09:00") + timedelta(seconds=ttl + 1),
            wall=clock.time,
            sleep=clock.sleep,
            lease_wait_s=10,
        )
    assert outcome.failures == []
    assert world.state("c1", "api").desired == 0
    assert world.state("c1", "web").desired == 2


def test_every_line_of_an_edits_run_carries_its_request_id(
    world: World, stream: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    put_raw(world, {"pk": "note", "sk": "readme"})  # a skipped record logs a line too
    capsys.readouterr()
    deliver(stream, DAY)
    lines = log_lines(capsys.readouterr().out)
    assert lines and all(line.get("request_id") == Context.aws_request_id for line in lines)


def test_an_edits_run_writes_no_tick_metrics(
    world: World, stream: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    capsys.readouterr()
    deliver(stream, DAY)
    lines = log_lines(capsys.readouterr().out)
    assert world.state("c1", "web").desired == 0
    assert [line for line in lines if line["event"] == "tick metrics"] == []
