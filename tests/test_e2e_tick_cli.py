"""End to end through the ``teiji`` command against moto's server over HTTP: a full night.

moto does not clamp desiredCount when a scalable target is registered, and stores
SuspendedState exactly as sent; real AWS does clamp. So besides the resulting state, these
tests assert the calls teiji makes, in order, with their parameters: bounds before desired
count on the way down and on the way up, all three suspension flags every time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import engine.cli.tick as cli_tick
from engine.cli.main import main
from tests.world import ALL_SUSPENDED, CallLog, ServiceState, World, schedule

STOP_AT = "2026-12-01T22:15:00+09:00"
START_AT = "2026-12-02T05:00:00+09:00"


@pytest.fixture
def world(endpoint: str) -> World:
    w = World(endpoint)
    w.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
    w.create_service("c1", "api", desired=1, target=(1, 3))  # SuspendedState never set
    w.create_service("c1", "worker", desired=2)  # no autoscaling at all
    return w


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[CallLog]:
    log = CallLog()
    make = cli_tick.make_clients
    monkeypatch.setattr(cli_tick, "make_clients", lambda *a, **k: log.attach(make(*a, **k)))
    yield log


def run(endpoint: str, *args: str) -> int:
    return main([*args, "--endpoint-url", endpoint])


def setup_documents(world: World, endpoint: str, calls: CallLog | None = None) -> None:
    assert run(endpoint, "init") == 0
    if calls is not None:
        calls.clear()
    world.put(
        schedule("c1/web", holidays=["JP"]),
        schedule("c1/api"),
        schedule("c1/worker", running={"desired_count": 2}),
    )


def order(log: CallLog, resource: str) -> list[str]:
    """The write calls for one service, in the order they were made."""
    out = []
    for call in log.writes():
        if call.operation == "RegisterScalableTarget" and call.params["ResourceId"] == resource:
            out.append("register")
        elif call.operation == "UpdateService" and f"service/c1/{call.params['service']}" == (
            resource
        ):
            out.append(f"update {call.params['desiredCount']}")
    return out


def test_a_full_night_restores_every_service_exactly(
    world: World, endpoint: str, calls: CallLog, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_documents(world, endpoint, calls)
    before = {name: world.state("c1", name) for name in ("web", "api", "worker")}
    assert before["web"] == ServiceState(
        3,
        2,
        6,
        {
            "DynamicScalingInSuspended": True,
            "DynamicScalingOutSuspended": False,
            "ScheduledScalingSuspended": False,
        },
    )
    assert before["api"] == ServiceState(1, 1, 3, None)

    # 22:15: everything stops.
    assert run(endpoint, "tick", "--at", STOP_AT) == 0
    out = capsys.readouterr().out
    assert "3 changed" in out
    for name in ("web", "api"):
        assert world.state("c1", name) == ServiceState(0, 0, 0, ALL_SUSPENDED)
        assert order(calls, f"service/c1/{name}") == ["register", "update 0"]
    assert world.state("c1", "worker") == ServiceState(0)
    registers = calls.named("RegisterScalableTarget")
    assert all(c.params["MinCapacity"] == c.params["MaxCapacity"] == 0 for c in registers)
    assert all(c.params["SuspendedState"] == ALL_SUSPENDED for c in registers)
    assert world.baseline("c1/web")["desired_count"] == 3  # type: ignore[index]

    # 23:00: a no-op; no write calls at all.
    calls.clear()
    assert run(endpoint, "tick", "--at", "2026-12-01T23:00:00+09:00") == 0
    assert calls.writes() == []

    # 05:00: everything comes back as it was.
    calls.clear()
    capsys.readouterr()
    assert run(endpoint, "tick", "--at", START_AT, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["changed"] == 3
    assert world.state("c1", "web") == before["web"]
    # api had no SuspendedState: teiji sends all three flags, so it now reads all false.
    assert world.state("c1", "api") == ServiceState(
        1,
        1,
        3,
        {
            "DynamicScalingInSuspended": False,
            "DynamicScalingOutSuspended": False,
            "ScheduledScalingSuspended": False,
        },
    )
    assert world.state("c1", "worker") == before["worker"]
    # Bounds first (real AWS moves desired into [Min, Max] then), desired second.
    assert order(calls, "service/c1/web") == ["register", "update 3"]
    web_register = next(
        c.params
        for c in calls.named("RegisterScalableTarget")
        if c.params["ResourceId"] == "service/c1/web"
    )
    assert (web_register["MinCapacity"], web_register["MaxCapacity"]) == (2, 6)
    assert web_register["SuspendedState"] == before["web"].suspended
    for name in ("web", "api", "worker"):
        assert world.baseline(f"c1/{name}") is None
    web = next(s for s in report["services"] if s["service"] == "c1/web")
    assert [a["action"] for a in web["actions"]] == [
        "register_target",
        "update_service",
        "delete_baseline",
    ]
    assert web["actions"][1]["before"] == {"desired_count": 0}
    assert web["actions"][1]["after"] == {"desired_count": 3}


def test_plan_shows_an_aligned_table_and_changes_nothing(
    world: World, endpoint: str, calls: CallLog, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_documents(world, endpoint, calls)
    capsys.readouterr()
    assert run(endpoint, "plan", "--at", STOP_AT) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    assert header.split() == ["SERVICE", "DECISION", "SOURCE", "ACTIONS", "PLANNED", "NOTE"]
    rows = {line.split()[0]: line for line in lines[1:4]}
    assert set(rows) == {"c1/api", "c1/web", "c1/worker"}
    column = header.index("ACTIONS PLANNED")
    assert all(row[column - 2 : column] == "  " for row in rows.values())  # aligned
    assert "save baseline, target 2..6 suspended:dynamic_in -> 0..0 suspended" in rows["c1/web"]
    assert "desired 3->0" in rows["c1/web"]
    assert "dry run" in lines[-1]
    assert calls.writes(("ecs", "application-autoscaling", "dynamodb")) == []
    assert world.state("c1", "web").desired == 3

    assert run(endpoint, "plan", "--at", STOP_AT, "--json") == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True
    assert report["counts"]["planned"] == 3


def test_tick_dry_run_and_service_filter(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_documents(world, endpoint)
    assert run(endpoint, "tick", "--at", STOP_AT, "--dry-run", "--service", "c1/web") == 0
    out = capsys.readouterr().out
    assert "c1/web" in out
    assert "c1/api" not in out
    assert world.state("c1", "web").desired == 3
    assert run(endpoint, "tick", "--at", STOP_AT, "--service", "c1/web") == 0
    assert world.state("c1", "web").desired == 0
    assert world.state("c1", "api").desired == 1


def test_a_failed_service_exits_1_and_names_the_problem(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_documents(world, endpoint)
    world.put(schedule("c1/ghost"))
    capsys.readouterr()
    assert run(endpoint, "tick", "--at", STOP_AT) == 1
    out = capsys.readouterr().out
    ghost = next(line for line in out.splitlines() if line.startswith("c1/ghost"))
    assert "failed" in ghost
    assert "does not exist" in ghost
    assert world.state("c1", "web").desired == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-12-01T22:15:00", "no UTC offset"),
        ("tonight", "not an ISO 8601 instant"),
    ],
)
def test_at_needs_an_offset(
    endpoint: str, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    assert run(endpoint, "tick", "--at", value) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_at_accepts_z(world: World, endpoint: str) -> None:
    setup_documents(world, endpoint)
    assert run(endpoint, "tick", "--at", "2026-12-01T13:15:00Z") == 0
    assert world.state("c1", "web").desired == 0
