"""``--json`` on every command: each prints one JSON document on stdout, nothing else, with
instants in ISO 8601; moto's server mode over HTTP."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import engine.cli.session as operator
from engine.cli.main import build_parser
from tests.world import World, schedule
from tests.world import run_cli as run

NOW = datetime.fromisoformat("2026-12-01T21:00:00+09:00")
# Commands whose output is JSON already, a shell script or a browser page, not a report.
WITHOUT_JSON = {"schema", "demo", "completion", "override"}


@pytest.fixture
def world(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr(operator, "utc_now", lambda: NOW)
    w = World(endpoint)
    w.init_tables()
    w.create_service("c1", "web", desired=2, target=(1, 4))
    w.put(schedule("c1/web"), {"kind": "calendar", "name": "company", "dates": ["2026-12-29"]})
    return w


def parsed(capsys: pytest.CaptureFixture[str], endpoint: str, *argv: str) -> Any:
    code, out, err = run(capsys, endpoint, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                found[f"{prefix}{name}"] = command
                found.update(_commands(command, f"{prefix}{name} "))
    return found


def test_every_command_that_reports_takes_json() -> None:
    missing = [
        name
        for name, command in _commands(build_parser()).items()
        if name not in WITHOUT_JSON
        and not any("--json" in a.option_strings for a in command._actions)
    ]
    assert missing == []


def test_init_json(world: World, capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    result = parsed(capsys, endpoint, "init")
    assert result["tables"] == {"config": "teiji-config", "state": "teiji-state"}
    assert "table teiji-config exists" in result["done"]


def test_start_stop_json(world: World, capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    result = parsed(capsys, endpoint, "start", "c1/web", "--for", "2h", "--reason", "release")
    override = result["override"]
    assert (override["service"], override["state"], override["status"]) == (
        "c1/web",
        "running",
        "active",
    )
    assert datetime.fromisoformat(override["until"]) == datetime.fromisoformat(
        "2026-12-01T23:00:00+09:00"
    )
    result = parsed(capsys, endpoint, "stop", "c1/web", "--until", "23:30", "--reason", "x")
    assert result["override"]["state"] == "stopped"
    assert isinstance(result["notes"], list)


def test_start_now_json_holds_the_tick_report(
    world: World, capsys: pytest.CaptureFixture[str], endpoint: str
) -> None:
    result = parsed(capsys, endpoint, "start", "c1/web", "--for", "1h", "--reason", "r", "--now")
    assert result["override"]["state"] == "running"
    assert [s["service"] for s in result["tick"]["services"]] == ["c1/web"]


def test_override_cancel_and_extend_json(
    world: World, capsys: pytest.CaptureFixture[str], endpoint: str
) -> None:
    ident = parsed(capsys, endpoint, "start", "c1/web", "--for", "1h", "--reason", "r")["override"][
        "id"
    ]
    extended = parsed(capsys, endpoint, "override", "extend", ident, "--for", "1h")
    assert datetime.fromisoformat(extended["override"]["until"]) == datetime.fromisoformat(
        "2026-12-01T23:00:00+09:00"
    )
    assert datetime.fromisoformat(extended["was_until"]) == datetime.fromisoformat(
        "2026-12-01T22:00:00+09:00"
    )
    cancelled = parsed(capsys, endpoint, "override", "cancel", ident)
    assert cancelled["cancelled"] == {"id": ident, "ref": f"c1/web#{ident}", "service": "c1/web"}
    assert cancelled["override"]["reason"] == "r"


def test_delete_json(
    world: World, capsys: pytest.CaptureFixture[str], endpoint: str, tmp_path: Path
) -> None:
    result = parsed(capsys, endpoint, "delete", "c1/web")
    assert result["deleted"] == {"kind": "schedule", "name": "c1/web"}
    assert result["baseline_kept"] is None and result["overrides_remaining"] == []
    result = parsed(capsys, endpoint, "delete", "--calendar", "company")
    assert result["deleted"] == {"kind": "calendar", "name": "company"}


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["get", "c1/web"],
        ["override", "list"],
        ["plan", "--at", "2026-12-01T23:00+09:00"],
        ["explain", "c1/web", "--at", "2026-12-01T23:00+09:00"],
    ],
)
def test_reading_commands_print_json(
    world: World, capsys: pytest.CaptureFixture[str], endpoint: str, argv: list[str]
) -> None:
    assert parsed(capsys, endpoint, *argv) is not None
