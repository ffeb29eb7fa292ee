"""teiji's EventBridge events: which ones a tick sends, what they say, and that publishing
never holds up or fails a convergence.

From the world's side: a rule on the bus routes teiji's events to an SQS queue in moto, and
the test reads what arrived, as a subscriber would; PutEvents answers errors, partial failures
and hostile text; people edit documents and services between ticks.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.aws.events import PUT_EVENTS_BATCH, PUT_EVENTS_BYTES, batches, entry_bytes
from engine.config import Settings, SettingsError
from engine.events import DETAIL_TYPES, TEXT_LIMIT, events_for
from engine.logs import setup_logging
from engine.report import TickReport
from engine.tick import run_tick
from tests.world import CallLog, Faults, Subscriber, World, at, moto_tables, schedule

DAY = at("2026-12-02T12:00:00+09:00")  # Wednesday, inside the window
NIGHT = at("2026-12-02T23:00:00+09:00")  # the same evening, outside it
BUS = "default"


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables(Settings(event_bus=BUS)) as w:
        yield w


def tick(
    world: World, when: Any, *, faults: Faults | None = None, dry_run: bool = False
) -> TickReport:
    clients = world.clients()
    if faults is not None:
        clients = faults.attach(clients)
    return run_tick(clients, world.settings, at=when, dry_run=dry_run)


def by_type(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        found.setdefault(event["detail-type"], []).append(event)
    return found


# What arrives ------------------------------------------------------------------------------
def test_a_stop_and_a_start_arrive_with_the_capacity_before_and_after(world: World) -> None:
    world.create_service("c1", "web", desired=3, target=(2, 6))
    world.put(schedule("c1/web"))
    subscriber = Subscriber(world)
    assert tick(world, DAY).events_sent == 0  # converged: nothing to tell
    report = tick(world, NIGHT)
    assert report.events_sent == 1 and report.events_failed == 0
    (stopped,) = subscriber.received()
    assert stopped["source"] == "teiji"
    assert stopped["detail-type"] == "Service Stopped"
    detail = stopped["detail"]
    assert detail["service"] == "c1/web"
    assert detail["service_arn"].endswith(":service/c1/web")
    assert stopped["resources"] == [detail["service_arn"]]
    assert detail["decision"] == "stopped" and detail["source"] == "default"
    assert detail["before"] == {"desired_count": 3, "min_capacity": 2, "max_capacity": 6}
    assert detail["after"] == {"desired_count": 0, "min_capacity": 0, "max_capacity": 0}
    assert detail["next_change"].startswith("2026-12-03T05:00:00+09:00")
    assert detail["override"] is None
    tick(world, DAY + timedelta(days=1))
    (started,) = subscriber.received()
    assert started["detail-type"] == "Service Started"
    assert started["detail"]["after"] == {"desired_count": 3, "min_capacity": 2, "max_capacity": 6}


def test_an_override_says_who_and_why(world: World) -> None:
    world.create_service("c1", "web", desired=2)
    world.put(
        schedule("c1/web"),
        {
            "kind": "override",
            "service": "c1/web",
            "id": "late-release",
            "state": "running",
            "start": "2026-12-02T22:00:00+09:00",
            "until": "2026-12-03T01:00:00+09:00",
            "reason": "release night",
            "created_by": "hanako",
        },
    )
    subscriber = Subscriber(world)
    tick(world, NIGHT)  # the override keeps it running: no change, no event
    assert subscriber.received() == []
    tick(world, at("2026-12-03T01:15:00+09:00"))
    (stopped,) = subscriber.received()
    assert stopped["detail"]["source"] == "default"
    world.put(
        {
            "kind": "override",
            "service": "c1/web",
            "id": "hotfix",
            "state": "running",
            "start": "2026-12-03T01:20:00+09:00",
            "until": "2026-12-03T03:00:00+09:00",
            "reason": "hotfix for INC-42",
            "created_by": "taro",
        }
    )
    tick(world, at("2026-12-03T01:30:00+09:00"))
    (started,) = subscriber.received()
    assert started["detail-type"] == "Service Started"
    override = started["detail"]["override"]
    assert override["id"] == "hotfix" and override["author"] == "taro"
    assert "INC-42" in override["reason"]


def test_a_night_size_is_a_resize(world: World) -> None:
    world.create_service("c1", "web", desired=4)
    world.put(schedule("c1/web", stopped={"desired_count": 1}))
    subscriber = Subscriber(world)
    tick(world, NIGHT)
    (resized,) = subscriber.received()
    assert resized["detail-type"] == "Service Resized"
    assert resized["detail"]["after"]["desired_count"] == 1


def test_a_person_changing_a_stopped_service_is_a_baseline_amended(world: World) -> None:
    world.create_service("c1", "web", desired=3, target=(2, 6))
    world.put(schedule("c1/web"))
    subscriber = Subscriber(world)
    tick(world, NIGHT)
    subscriber.received()
    # Someone raises the scalable target's maximum while the service sleeps.
    world.autoscaling.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId="service/c1/web",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=0,
        MaxCapacity=9,
    )
    tick(world, NIGHT + timedelta(minutes=15))
    types = by_type(subscriber.received())
    assert "Baseline Amended" in types, types


def test_an_invalid_document_is_reported_with_its_field(world: World) -> None:
    world.create_service("c1", "web", desired=1)
    world.dynamodb.put_item(
        TableName=world.settings.config_table,
        Item={
            "pk": {"S": "schedule"},
            "sk": {"S": "c1/web"},
            "kind": {"S": "schedule"},
            "service": {"S": "c1/web"},
            "windows": {"L": [{"M": {"days": {"S": "mon-fri"}, "start": {"S": "25:00"}}}]},
        },
    )
    subscriber = Subscriber(world)
    report = tick(world, DAY)
    assert report.failed
    types = by_type(subscriber.received())
    invalid = [event["detail"] for event in types["Document Invalid"]]
    assert all("c1/web" in detail["document"] for detail in invalid)
    assert any(detail["field"] == "windows[0].start" for detail in invalid), invalid
    assert all(detail["problem"] for detail in invalid)
    (failed,) = types["Service Failed"]
    assert failed["detail"]["service"] == "c1/web"
    assert world.state("c1", "web").desired == 1  # left as it was


def test_a_dry_run_sends_nothing(world: World) -> None:
    world.create_service("c1", "web", desired=2)
    world.put(schedule("c1/web"))
    subscriber = Subscriber(world)
    log = CallLog()
    report = run_tick(log.attach(world.clients()), world.settings, at=NIGHT, dry_run=True)
    assert report.events_sent == 0 and log.count("PutEvents") == 0
    assert subscriber.received() == []


def test_no_bus_no_calls(world: World) -> None:
    world.create_service("c1", "web", desired=2)
    world.put(schedule("c1/web"))
    log = CallLog()
    settings = replace(world.settings, event_bus=None)
    report = run_tick(log.attach(world.clients()), settings, at=NIGHT, dry_run=False)
    assert report.counts["changed"] == 1
    assert log.count("PutEvents") == 0


# Publishing never fails a convergence ------------------------------------------------------
@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "ResourceNotFoundException", "InternalException"]
)
def test_events_that_cannot_be_sent_are_counted_and_the_services_still_stop(
    world: World, code: str
) -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream)
    for name in ("a", "b", "c"):
        world.create_service("c1", name, desired=2)
        world.put(schedule(f"c1/{name}"))
    faults = Faults().fail("PutEvents", code=code)
    report = tick(world, NIGHT, faults=faults)
    assert report.counts["changed"] == 3
    assert not report.failed
    assert report.events_sent == 0 and report.events_failed == 3
    assert all(world.state("c1", name).desired == 0 for name in ("a", "b", "c"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (fields,) = [line for line in lines if line["event"] == "some events were not published"]
    assert fields["level"] == "WARNING"
    assert fields["failed"] == 3 and fields["bus"] == BUS
    assert any(code in error for error in fields["errors"])


def test_a_partial_failure_counts_exactly_the_entries_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(12):
        world.create_service("c1", f"s{i:02d}", desired=1)
        world.put(schedule(f"c1/s{i:02d}"))
    from botocore.client import BaseClient

    real = BaseClient._make_api_call

    def refuse_every_third(self: Any, operation: str, params: dict[str, Any]) -> Any:
        answer = real(self, operation, params)
        if operation != "PutEvents":
            return answer
        results = []
        for index, result in enumerate(answer["Entries"]):
            if index % 3 == 0:
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try later"})
            else:
                results.append(result)
        return {**answer, "Entries": results, "FailedEntryCount": (len(results) + 2) // 3}

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse_every_third)
    log = CallLog()
    report = run_tick(log.attach(world.clients()), world.settings, at=NIGHT, dry_run=False)
    assert report.counts["changed"] == 12
    assert log.count("PutEvents") == 2  # 10 entries a call
    assert report.events_failed == 4 + 1  # entries 0,3,6,9 of the first call, 0 of the second
    assert report.events_sent == 12 - 5


def test_an_answer_that_cannot_be_matched_to_the_entries_counts_none_sent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.create_service("c1", "web", desired=1)
    world.put(schedule("c1/web"))
    from botocore.client import BaseClient

    real = BaseClient._make_api_call

    def cut(self: Any, operation: str, params: dict[str, Any]) -> Any:
        answer = real(self, operation, params)
        return {**answer, "Entries": []} if operation == "PutEvents" else answer

    monkeypatch.setattr(BaseClient, "_make_api_call", cut)
    report = tick(world, NIGHT)
    assert report.events_sent == 0 and report.events_failed == 1
    assert report.counts["changed"] == 1


# Hostile text ------------------------------------------------------------------------------
def test_hostile_text_written_past_validation_is_cleaned_and_cut(world: World) -> None:
    world.create_service("c1", "web", desired=2)
    world.put(schedule("c1/web"))
    hostile = "\x1b[2J\x1b]0;owned\x07\u202e" + "r" * 5_000
    world.dynamodb.put_item(
        TableName=world.settings.config_table,
        Item={
            "pk": {"S": "override"},
            "sk": {"S": "c1/web#" + hostile[:900]},
            "kind": {"S": "override"},
            "service": {"S": "c1/web"},
            "id": {"S": hostile[:900]},
            "state": {"S": hostile},
            "until": {"S": "2026-12-02T23:30:00+09:00"},
            "reason": {"S": hostile},
            "created_by": {"S": hostile},
        },
    )
    subscriber = Subscriber(world)
    tick(world, DAY)
    events = subscriber.received()
    assert events
    text = json.dumps(events, ensure_ascii=False)
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    for event in events:
        for value in event["detail"].values():
            assert not isinstance(value, str) or len(value) <= TEXT_LIMIT


# The rules, for all inputs -----------------------------------------------------------------
_entry = st.builds(
    lambda detail, resources: {
        "Source": "teiji",
        "DetailType": "Service Stopped",
        "Detail": detail,
        "Resources": resources,
        "Time": DAY,
    },
    st.text(max_size=60_000),
    st.lists(st.text(max_size=200), max_size=3),
)


@given(st.lists(_entry, max_size=40))
def test_batches_keep_every_entry_in_order_within_the_limits(entries: list[dict[str, Any]]) -> None:
    found = batches(entries)
    assert [e for batch in found for e in batch] == entries
    for batch in found:
        assert 1 <= len(batch) <= PUT_EVENTS_BATCH
        assert len(batch) == 1 or sum(entry_bytes(e) for e in batch) <= PUT_EVENTS_BYTES


def test_every_detail_type_is_one_the_terraform_module_knows() -> None:
    from pathlib import Path

    variables = (Path(__file__).parent.parent / "infra" / "variables.tf").read_text()
    for detail_type in DETAIL_TYPES:
        assert f'"{detail_type}"' in variables


def test_a_report_of_a_dry_run_has_no_events() -> None:
    assert events_for(TickReport(at=DAY, dry_run=True, lease="not taken (dry run)")) == []


def test_a_failed_tick_is_one_event_with_its_problems() -> None:
    report = TickReport(at=DAY, dry_run=False, lease="acquired", problems=["calendar x: bad"])
    (event,) = events_for(report)
    assert event.detail_type == "Tick Failed"
    assert event.detail["problems"] == ["calendar x: bad"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bus with spaces", "is not an event bus"),
        ("arn:aws:events:ap-northeast-1:12:event-bus/x", "is not an event bus"),
    ],
)
def test_a_bus_that_cannot_be_one_stops_the_run(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"TEIJI_EVENT_BUS": text})


def test_the_bus_may_be_a_name_or_an_arn_and_is_off_by_default() -> None:
    assert Settings.from_env({}).event_bus is None
    assert Settings.from_env({"TEIJI_EVENT_BUS": "default"}).event_bus == "default"
    arn = "arn:aws:events:ap-northeast-1:123456789012:event-bus/platform"
    assert Settings.from_env({"TEIJI_EVENT_BUS": arn}).event_bus == arn
