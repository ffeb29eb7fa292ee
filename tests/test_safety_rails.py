"""Safety rails: protected services, only scheduled services, capped overrides, honest logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from freezegun import freeze_time

import engine.handler
import engine.logs
from engine.aws.operations import OPERATIONS
from engine.config import Settings
from engine.report import TickReport
from engine.tick import run_tick
from schemas.validation import validate_documents
from tests.faults import Capacity, baseline_capacity, capacities
from tests.world import CallLog, World, at, moto_tables, schedule

# The handler points teiji's log handler at a test's captured stdout.
pytestmark = pytest.mark.usefixtures("teiji_logging_restored")


STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
START = at("2026-12-02T06:00:00+09:00")  # Wednesday morning: running
ORIGINAL = Capacity.of(3, (2, 6), {"in": True})


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables(Settings(lease_seconds=360)) as world:
        yield world


def _tick(
    world: World, when: datetime, settings: Settings | None = None, log: CallLog | None = None
) -> TickReport:
    clients = world.clients()
    if log is not None:
        log.attach(clients)
    return run_tick(
        clients, settings or world.settings, at=when, dry_run=False, clock=when.timestamp
    )


def _mentions(log: CallLog, name: str) -> list[str]:
    return [c.operation for c in log.calls if name in json.dumps(c.params, default=str)]


def _writes_for(log: CallLog, key: str) -> list[str]:
    """The writes that change ``cluster/service`` or save or delete its baseline."""
    cluster, name = key.split("/")
    found = []
    for call in log.calls:
        params = call.params
        if call.operation == "UpdateService":
            hit = (params.get("cluster"), params.get("service")) == (cluster, name)
        elif call.operation == "RegisterScalableTarget":
            hit = params.get("ResourceId") == f"service/{key}"
        elif call.write and call.service == "dynamodb":
            hit = json.dumps(params.get("Item") or params.get("Key") or {}).count(f'"{key}"') > 0
        else:
            hit = False
        if hit:
            found.append(call.operation)
    return found


# Protected services -------------------------------------------------------------------------------
PROTECTED = Settings(lease_seconds=360, protected=("*prod*", "stg/keep"))


def _protected_fleet(world: World) -> None:
    for cluster, name in (
        ("prod-api", "web"),
        ("stg", "prod-worker"),
        ("stg", "keep"),
        ("stg", "web"),
    ):
        world.create_service(cluster, name, desired=3, target=(2, 6), suspended={"in": True})
    world.put(
        schedule("prod-api/web"),
        schedule("stg/prod-worker", mode="always_off"),
        schedule("stg/keep"),
        schedule("stg/web"),
    )


def test_protected_services_are_never_stopped_whatever_the_document_says(world: World) -> None:
    _protected_fleet(world)
    world.put(
        {
            "kind": "override",
            "service": "prod-api/web",
            "state": "stopped",
            "start": "2026-12-02T05:00:00+09:00",
            "until": "2026-12-02T12:00:00+09:00",
            "reason": "someone asked",
            "id": "stop-prod",
        }
    )
    log = CallLog()
    for when in (STOP, START):  # a window's night, always_off, and an override at day
        report = _tick(world, when, PROTECTED, log)
        for key in ("prod-api/web", "stg/prod-worker", "stg/keep"):
            service = report.service(key)
            if service.decision is not None and service.decision.state == "running":
                continue
            assert service.outcome == "failed", (when, key)
            assert "protected by TEIJI_PROTECTED" in (service.error or ""), service.error
        assert report.failed
    for key in ("prod-api/web", "stg/prod-worker", "stg/keep"):
        assert capacities()[key] == ORIGINAL
        assert world.baseline(key) is None
        assert not _writes_for(log, key), key
    # The unprotected service next to them is stopped and started as usual.
    assert capacities()["stg/web"] == ORIGINAL
    assert _writes_for(log, "stg/web").count("UpdateService") == 2


def test_a_protected_service_is_neither_shrunk_nor_started(world: World) -> None:
    world.create_service("prod-api", "web", desired=3, target=(2, 6), suspended={"in": True})
    world.put(schedule("prod-api/web"))
    _tick(world, STOP)  # stopped before anyone protected it
    world.set_desired("prod-api", "web", 8)  # scaled up by hand at night, above its baseline

    report = _tick(world, START, PROTECTED).service("prod-api/web")

    assert report.outcome == "failed"  # restoring 3 would shrink it from 8
    assert "protected" in (report.error or "")
    assert capacities()["prod-api/web"].desired == 8
    stored = world.baseline("prod-api/web")
    assert stored is not None and baseline_capacity(stored) == ORIGINAL

    world.set_desired("prod-api", "web", 0)
    started = _tick(world, START, PROTECTED).service("prod-api/web")
    assert started.outcome == "failed"  # teiji changes nothing about it, not even a start
    assert "teiji changes nothing" in (started.error or "")
    assert capacities()["prod-api/web"].desired == 0


def test_protection_through_the_handler_fails_the_invocation_and_logs_the_refusal(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _protected_fleet(world)
    monkeypatch.setattr(engine.handler, "_clients", {})
    monkeypatch.setenv("TEIJI_PROTECTED", "*prod*, stg/keep")
    monkeypatch.setenv("TEIJI_LEASE_SECONDS", "360")
    with freeze_time(STOP), pytest.raises(engine.handler.TickFailedError) as failed:
        engine.handler.lambda_handler({}, None)
    assert "prod-api/web" in str(failed.value)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    refusals = [line for line in lines if line.get("service") == "prod-api/web"]
    assert refusals and refusals[0]["level"] == "ERROR"
    assert "protected by TEIJI_PROTECTED" in refusals[0]["error"]
    assert capacities()["prod-api/web"] == ORIGINAL
    assert capacities()["stg/web"].in_stopped_shape(0)


# Only services with a schedule document -----------------------------------------------------------
def test_teiji_never_touches_an_unscheduled_service_in_the_same_cluster(world: World) -> None:
    world.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
    world.create_service("c1", "bystander", desired=4, target=(1, 9))
    world.put(schedule("c1/web"))
    log = CallLog()
    for when in (STOP, START, STOP.replace(day=2)):
        _tick(world, when, log=log)
    assert not _mentions(log, "bystander")
    assert capacities()["c1/bystander"] == Capacity.of(4, (1, 9))
    assert log.named("UpdateService")  # the scheduled one was acted on
    # Without an allow-list of clusters teiji lists no cluster's services (opt-in by tag looks
    # only inside the allowed clusters), and it can never list the clusters themselves.
    assert log.count("ListServices") == 0
    assert not [op for op in OPERATIONS if op.name == "ListClusters"]


# Overrides: capped in length, with a reason -------------------------------------------------------
def _override(**fields: Any) -> dict[str, Any]:
    document = {
        "kind": "override",
        "service": "c1/web",
        "state": "running",
        "start": "2026-12-01T20:00:00+09:00",
        "until": "2026-12-09T20:00:00+09:00",  # 8 days
        "reason": "load test",
        "id": "long",
    }
    document.update(fields)
    return document


def test_overrides_longer_than_the_cap_are_refused_with_the_way_out() -> None:
    _, problems = validate_documents([("o.yaml", 1, _override())], now=STOP)
    (problem,) = problems
    assert problem.path == "until"
    assert "longer than the limit of 7 days" in problem.message
    assert "TEIJI_MAX_OVERRIDE=8d" in problem.message
    docs, problems = validate_documents(
        [("o.yaml", 1, _override())],
        now=STOP,
        max_override=Settings.from_env({"TEIJI_MAX_OVERRIDE": "10d"}).max_override,
    )
    assert not problems and len(docs.overrides) == 1


@pytest.mark.parametrize(
    ("reason", "message"),
    [(None, "required"), ("", "must not be empty"), ("   ", "must not be empty")],
)
def test_overrides_must_carry_a_reason(reason: str | None, message: str) -> None:
    document = _override(until="2026-12-02T02:00:00+09:00")
    if reason is None:
        del document["reason"]
    else:
        document["reason"] = reason
    _, problems = validate_documents([("o.yaml", 1, document)], now=STOP)
    assert [(p.path, message in p.message) for p in problems] == [("reason", True)]


def test_the_tick_refuses_an_over_long_override_and_leaves_the_service_alone(
    world: World,
) -> None:
    world.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
    world.put(schedule("c1/web"))
    _tick(world, STOP)
    # Written straight into the table, past any client-side check: 8 days of running.
    world.put_item({"pk": "override", "sk": "c1/web#long", **_override(service=None, id=None)})
    log = CallLog()

    report = _tick(world, STOP.replace(hour=23, minute=15), log=log).service("c1/web")

    assert report.outcome == "failed"
    assert "longer than the limit" in (report.error or "")
    assert capacities()["c1/web"].in_stopped_shape(0)  # not started by the refused override
    assert not _writes_for(log, "c1/web")

    allowed = Settings(
        lease_seconds=360,
        max_override=Settings.from_env({"TEIJI_MAX_OVERRIDE": "10d"}).max_override,
    )
    report = _tick(world, STOP.replace(hour=23, minute=30), allowed).service("c1/web")
    assert report.outcome == "changed"
    assert report.decision is not None and report.decision.override_id == "long"
    assert capacities()["c1/web"] == ORIGINAL


# Logs ---------------------------------------------------------------------------------------------
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN"
PAYLOAD = "payload-marker-8f3a"


def test_logs_name_who_decided_every_change_and_hold_no_secrets_or_payloads(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world.create_service("c1", "office", desired=2, target=(1, 4))
    world.create_service("c1", "night", desired=2, target=(1, 4))
    world.create_service("c1", "release", desired=0)
    world.put(
        schedule("c1/office", holidays=["JP"]),
        schedule("c1/night", windows=[{"days": "daily", "start": "00:00", "end": "06:00"}]),
        schedule("c1/release", mode="always_off"),
        {
            "kind": "override",
            "service": "c1/release",
            "state": "running",
            "until": "2026-11-24T02:00:00+09:00",
            "reason": "release night",
            "created_by": "aiko@example.com",
            "id": "rel-42",
        },
    )
    monkeypatch.setattr(engine.handler, "_clients", {})
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("TEIJI_LEASE_SECONDS", "360")
    caplog.set_level(logging.INFO)
    stream = io.StringIO()
    setup = engine.logs.setup_logging
    monkeypatch.setattr(
        engine.logs, "setup_logging", lambda level="INFO", _=None: setup(level, stream)
    )
    event = {"source": "aws.events", "detail": {"secret": PAYLOAD}, "time": "2026-11-22T03:00:00Z"}
    # Monday 23 November 2026 (Labour Thanksgiving Day, a JP holiday), noon in Tokyo.
    with freeze_time("2026-11-23T03:00:00Z"):
        engine.handler.lambda_handler(event, None)

    text = stream.getvalue() + "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in text and TOKEN not in text
    assert PAYLOAD not in text and "detail" not in text
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    changes = {line["service"]: line for line in lines if line.get("event") == "service changed"}
    assert set(changes) == {"c1/office", "c1/night", "c1/release"}
    holiday = changes["c1/office"]
    assert holiday["holiday"] and holiday["holiday"] in holiday["decided_by"]
    assert changes["c1/night"]["decided_by"].startswith(("default", "window"))
    release = changes["c1/release"]
    assert release["override_id"] == "rel-42"
    assert release["override_by"] == "aiko@example.com"
    assert "override rel-42 by aiko@example.com" in release["decided_by"]
    for line in changes.values():
        assert line["actions"] and all("before" in a and "after" in a for a in line["actions"])
