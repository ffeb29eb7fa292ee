"""The Lambda handler: EventBridge events under a frozen clock, options, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from freezegun import freeze_time

import engine.handler as handler
from tests.world import World, moto_tables, schedule

# EventBridge Scheduler's event for a tick that was due at 12:00 in Tokyo (running hours).
STALE_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "4a3f2e1d-0000-0000-0000-000000000000",
    "detail-type": "Scheduled Event",
    "source": "aws.scheduler",
    "account": "123456789012",
    "time": "2026-12-01T03:00:00Z",
    "region": "ap-northeast-1",
    "resources": ["arn:aws:scheduler:ap-northeast-1:123456789012:schedule/default/teiji"],
    "detail": {},
}


class Context:
    aws_request_id = "req-1"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setattr(handler, "_clients", {})
    with moto_tables() as w:
        w.create_service("c1", "web", desired=2, target=(1, 4))
        w.put(schedule("c1/web"))
        yield w


def _log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_decides_at_the_current_time_not_the_events_time(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # The event says 12:00 JST (running), but it arrives late: it is 23:00 JST now.
    with freeze_time("2026-12-01T14:00:00Z"):
        result = handler.lambda_handler(STALE_EVENT, Context())
    assert result["at"].startswith("2026-12-01T14:00:00")
    json.dumps(result)  # a Lambda result must be plain JSON
    web = result["services"][0]
    assert (web["decision"], web["outcome"]) == ("stopped", "changed")
    assert world.state("c1", "web").desired == 0
    lines = _log_lines(capsys.readouterr().out)
    assert lines[0]["event"] == "tick starting"
    assert "resources" not in json.dumps(lines)  # the event payload is never logged
    assert lines[-1]["event"] == "tick finished"


def test_running_hours_leave_the_service_alone(world: World) -> None:
    with freeze_time("2026-12-01T03:00:00Z"):
        result = handler.lambda_handler(STALE_EVENT, Context())
    assert result["services"][0]["outcome"] == "converged"
    assert result["lease"] == "acquired"


def test_dry_run_event_changes_nothing(world: World) -> None:
    with freeze_time("2026-12-01T14:00:00Z"):
        result = handler.lambda_handler({"dry_run": True}, Context())
    assert result["dry_run"] is True
    assert result["services"][0]["outcome"] == "planned"
    assert world.state("c1", "web").desired == 2


def test_dry_run_from_the_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEIJI_DRY_RUN", "1")
    with freeze_time("2026-12-01T14:00:00Z"):
        result = handler.lambda_handler({}, Context())
    assert result["dry_run"] is True
    assert world.state("c1", "web").desired == 2


def test_services_subset_and_shards(world: World) -> None:
    world.create_service("c1", "api", desired=2)
    world.put(schedule("c1/api"))
    with freeze_time("2026-12-01T14:00:00Z"):
        result = handler.lambda_handler({"services": ["c1/api"]}, Context())
    assert [s["service"] for s in result["services"]] == ["c1/api"]
    assert world.state("c1", "web").desired == 2
    with freeze_time("2026-12-01T14:00:00Z"):
        one = handler.lambda_handler({"shard": 0, "shards": 2, "dry_run": True}, Context())
        two = handler.lambda_handler({"shard": 1, "shards": 2, "dry_run": True}, Context())
    keys = [s["service"] for s in one["services"]] + [s["service"] for s in two["services"]]
    assert sorted(keys) == ["c1/api", "c1/web"]


@pytest.mark.parametrize(
    "event",
    [
        {"shard": 2, "shards": 2},
        {"shard": 0},
        {"shard": "0", "shards": 2},
        {"dry_run": "yes"},
        {"services": "c1/web"},
    ],
)
def test_events_it_does_not_understand_are_refused(world: World, event: dict[str, Any]) -> None:
    with pytest.raises(handler.BadEventError):
        handler.lambda_handler(event, Context())
    assert world.state("c1", "web").desired == 2


def test_a_failed_service_raises_after_the_report_is_logged(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put(schedule("c1/ghost"))
    with freeze_time("2026-12-01T14:00:00Z"), pytest.raises(handler.TickFailedError) as err:
        handler.lambda_handler({}, Context())
    assert "c1/ghost" in str(err.value)
    assert world.state("c1", "web").desired == 0  # the others went on
    lines = _log_lines(capsys.readouterr().out)
    ghost = next(line for line in lines if line.get("service") == "c1/ghost")
    assert ghost["level"] == "ERROR"
    assert lines[-1]["event"] == "tick finished"
    assert lines[-1]["failed"] is True


def test_a_bad_rate_setting_is_named_as_a_setting_not_a_document(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_RATE_ECS_MODIFY", "5/50")
    with freeze_time("2026-12-01T14:00:00Z"), pytest.raises(handler.TickFailedError) as err:
        handler.lambda_handler({}, Context())
    message = str(err.value)
    assert message.startswith("the tick could not start, nothing was done: ")
    assert "TEIJI_RATE_ECS_MODIFY" in message
    assert "document" not in message
    assert "service(s) failed" not in message
    assert world.state("c1", "web").desired == 2


def test_document_problems_are_counted_as_such(world: World) -> None:
    world.put_item({"pk": "calendar", "sk": "company", "dates": ["2026-02-30"]})
    world.put(schedule("c1/ghost"))
    with freeze_time("2026-12-01T14:00:00Z"), pytest.raises(handler.TickFailedError) as err:
        handler.lambda_handler({}, Context())
    assert str(err.value) == "1 service(s) failed: c1/ghost; 1 problem(s) in documents"


def test_the_default_timezone_comes_from_the_environment(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    office = [{"days": "mon-fri", "start": "09:00", "end": "17:00"}]
    world.put_item({"pk": "schedule", "sk": "c1/web", "windows": office})  # no timezone
    # Tuesday 23:00 in Tokyo (stopped there), 09:00 in New York (running).
    with freeze_time("2026-12-01T14:00:00Z"):
        monkeypatch.setenv("TEIJI_DEFAULT_TIMEZONE", "America/New_York")
        result = handler.lambda_handler({"dry_run": True}, Context())
        assert result["services"][0]["decision"] == "running"
        monkeypatch.delenv("TEIJI_DEFAULT_TIMEZONE")
        result = handler.lambda_handler({"dry_run": True}, Context())
        assert result["services"][0]["decision"] == "stopped"


def test_importing_the_handler_is_light() -> None:
    import subprocess

    code = (
        "import sys, engine.handler; "
        "heavy = [m for m in ('engine.tick', 'engine.decide', 'holidays', 'pydantic') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
