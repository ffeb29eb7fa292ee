"""Edits that take effect in seconds: real writes to the config table in moto, read back from
its DynamoDB stream with GetRecords and handed to the edits function in the Lambda's shape.

Every kind of edit (a schedule put, updated and deleted; an override set and cancelled; a
calendar), a burst of 100, poison records, an invalid edit, and people editing the same
document twice in a row. The lease: tests/test_streams_lease.py; the mapping's filter:
tests/test_streams_filter.py; which services a batch touches: tests/test_streams_edits.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from freezegun import freeze_time

import engine.handler as lambda_handler
from engine.store import CheckedWrite, from_attribute_map, item_from_document
from engine.stream_handler import handler
from engine.tick import run_tick
from schemas.validation import parse_document
from tests.streamworld import (
    DAY,
    NIGHT,
    Context,
    Stream,
    deliver,
    edits_world,
    log_lines,
    put_raw,
)
from tests.world import Subscriber, World, at, schedule


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, teiji_logging_restored: None) -> Iterator[World]:
    with edits_world(monkeypatch) as w:
        yield w


@pytest.fixture
def stream(world: World) -> Stream:
    return Stream(world)


# Every kind of edit -----------------------------------------------------------------------
def test_a_schedule_put_converges_that_service_and_nothing_else(
    world: World, stream: Stream
) -> None:
    # At night both should be stopped; only web's schedule is edited.
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    event, result = deliver(stream, NIGHT)
    assert [r["eventName"] for r in event["Records"]] == ["MODIFY"]
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 0
    assert world.state("c1", "api").desired == 3  # not edited: left to the tick


def test_an_update_item_of_a_schedule_converges(world: World, stream: Stream) -> None:
    world.dynamodb.update_item(
        TableName=world.settings.config_table,
        Key={"pk": {"S": "schedule"}, "sk": {"S": "c1/web"}},
        UpdateExpression="SET #m = :m REMOVE windows",
        ExpressionAttributeNames={"#m": "mode"},
        ExpressionAttributeValues={":m": {"S": "always_off"}},
    )
    _, result = deliver(stream, DAY)
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 0
    assert world.state("c1", "api").desired == 3


def test_a_deleted_schedule_leaves_its_service_as_it_is_like_the_tick(
    world: World, stream: Stream
) -> None:
    with freeze_time(NIGHT):
        run_tick(world.clients(), world.settings, at=at("2026-12-02T23:00:00+09:00"), dry_run=False)
    assert world.state("c1", "web").desired == 0
    saved = world.baseline("c1/web")
    assert saved is not None
    stream.records()  # the tick wrote the state table only: the stream has nothing
    world.dynamodb.delete_item(
        TableName=world.settings.config_table,
        Key={"pk": {"S": "schedule"}, "sk": {"S": "c1/web"}},
    )
    subscriber = Subscriber(world)
    event, result = deliver(stream, DAY)  # daytime: a managed web would start now
    assert [r["eventName"] for r in event["Records"]] == ["REMOVE"]
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 0  # no longer managed: left as it is
    assert world.baseline("c1/web") == saved  # kept, as `teiji delete` promises
    assert subscriber.received() == []  # not a failure either: nothing to say
    # The scheduled tick does the same.
    with freeze_time(DAY):
        report = run_tick(
            world.clients(), world.settings, at=at(DAY.replace("Z", "+00:00")), dry_run=False
        )
    assert "c1/web" not in [s.key for s in report.services]
    assert world.state("c1", "web").desired == 0


def test_an_override_and_its_cancellation_each_converge(world: World, stream: Stream) -> None:
    with freeze_time(NIGHT):
        run_tick(world.clients(), world.settings, at=at("2026-12-02T23:00:00+09:00"), dry_run=False)
    stream.records()
    override = {
        "kind": "override",
        "service": "c1/web",
        "id": "late",
        "state": "running",
        "until": "2026-12-03T02:00:00+09:00",
        "reason": "release night",
        "created_by": "hanako",
    }
    world.put(override)  # what `teiji start` writes
    _, result = deliver(stream, NIGHT)
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 2  # restored exactly
    assert world.state("c1", "api").desired == 0
    world.dynamodb.delete_item(  # `teiji override cancel`
        TableName=world.settings.config_table,
        Key={"pk": {"S": "override"}, "sk": {"S": "c1/web#late"}},
    )
    _, result = deliver(stream, NIGHT)
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 0


def test_a_calendar_converges_the_services_that_list_it_only(world: World, stream: Stream) -> None:
    world.put(schedule("c1/web", holidays=["company"]))
    stream.records()
    world.put({"kind": "calendar", "name": "company", "dates": ["2026-12-02"]})
    event, result = deliver(stream, DAY)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]] == ["calendar"]
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 0  # a company holiday today
    assert world.state("c1", "api").desired == 3


def test_the_teiji_commands_writes_are_edits(world: World, stream: Stream) -> None:
    """`teiji put` writes through write_checked and `teiji start` through put_override_item:
    both are people's edits and converge (the Lambda itself never writes the config table)."""
    stored = world.dynamodb.get_item(
        TableName=world.settings.config_table,
        Key={"pk": {"S": "schedule"}, "sk": {"S": "c1/api"}},
        ConsistentRead=True,
    )["Item"]
    doc = parse_document(schedule("c1/api", mode="always_off"), source="t", index=1)
    assert not isinstance(doc, list)
    world.config().write_checked(
        [CheckedWrite(item_from_document(doc), from_attribute_map(stored))]
    )
    _, result = deliver(stream, DAY)
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "api").desired == 0
    assert world.state("c1", "web").desired == 2


# Many at once, and a tick at the same time ----------------------------------------------------
def test_a_burst_of_100_edits_converges_each_service_once_to_its_last_edit(
    world: World, stream: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [f"c2/s{i:02d}" for i in range(50)]
    for key in keys:
        world.create_service("c2", key.split("/")[1], desired=1)
    stream.records()
    for mode in ("always_on", "always_off"):  # 2 x 50 edits, the second of each wins
        for key in keys:
            put_raw(world, {"pk": "schedule", "sk": key, "mode": mode})
    capsys.readouterr()
    event, result = deliver(stream, DAY)
    assert len(event["Records"]) == 100
    assert result == {"batchItemFailures": []}
    assert all(world.state("c2", key.split("/")[1]).desired == 0 for key in keys)
    assert world.state("c1", "web").desired == 2
    ticks = [
        line for line in log_lines(capsys.readouterr().out) if line["event"] == "tick finished"
    ]
    assert len(ticks) == 1 and ticks[0]["counts"]["changed"] == 50


# Poison, invalid, and people --------------------------------------------------------------
def test_poison_records_are_skipped_each_with_its_reason_and_never_block(
    world: World, stream: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "c1/\x1b[31mweb\x1b]0;owned\x07" + "x" * 900
    put_raw(world, {"pk": "schedule", "sk": hostile, "mode": "always_off"})
    put_raw(world, {"pk": "note", "sk": "readme", "text": "not a document"})
    big = "y" * 390_000  # an item near DynamoDB's 400 KB limit
    put_raw(world, {"pk": "schedule", "sk": "c1/api", "mode": "always_off", "notes": big})
    event = stream.batch()
    assert len(event["Records"]) == 3
    ttl_delete = {
        **event["Records"][0],
        "eventName": "REMOVE",
        "eventID": "ttl-1",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {"Keys": {"pk": {"S": "override"}, "sk": {"S": "c1/web#old"}}},
    }
    cut = {"eventID": "cut-1", "eventSource": "aws:dynamodb", "eventName": "MODIFY", "dynamodb": {}}
    event["Records"] += [ttl_delete, cut, "garbage", None, {"eventSource": "aws:kinesis"}]
    capsys.readouterr()
    with freeze_time(DAY):
        result = handler(event, Context())
    assert result == {"batchItemFailures": []}  # nothing retried: the same bytes fail the same
    lines = log_lines(capsys.readouterr().out)
    assert not any("Traceback" in json.dumps(line) for line in lines)
    skipped = [line for line in lines if line["event"] == "stream record skipped"]
    reasons = " ".join(line["reason"] for line in skipped)
    assert len(skipped) == 6  # note, TTL, cut, "garbage", None, kinesis
    assert "TTL" in reasons and "no Keys" in reasons and "not a document" in reasons
    assert "\x1b" not in json.dumps(lines, ensure_ascii=False)
    # The 400 KB item is a document: read from the table, it is refused field by field.
    assert world.state("c1", "api").desired == 3
    assert world.state("c1", "web").desired == 2


def test_an_invalid_edit_publishes_document_invalid_at_once_and_leaves_the_service(
    world: World, stream: Stream
) -> None:
    # Another invalid document nobody is editing now: the tick reports it, not this edit.
    put_raw(world, {"pk": "calendar", "sk": "old", "dates": ["2026-02-30"]})
    stream.records()
    subscriber = Subscriber(world)
    put_raw(
        world,
        {"pk": "schedule", "sk": "c1/web", "windows": [{"days": "mon-fri", "start": "25:00"}]},
    )
    _, result = deliver(stream, NIGHT)
    assert result == {"batchItemFailures": []}  # a person's mistake is not retried
    types = subscriber.types()
    invalid = types["Document Invalid"]
    assert invalid and all(d["document"].startswith("schedule c1/web") for d in invalid)
    assert any(d["field"] == "windows[0].start" and d["problem"] for d in invalid), invalid
    assert [d["service"] for d in types["Service Failed"]] == ["c1/web"]
    assert "Tick Failed" not in types
    assert world.state("c1", "web").desired == 2  # left as it was
    assert world.state("c1", "api").desired == 3


def test_a_person_editing_one_schedule_twice_quickly_gets_the_second(
    world: World, stream: Stream
) -> None:
    """The stream delivers both writes; the table, read when acting, holds the second."""
    subscriber = Subscriber(world)
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_on"})
    event, result = deliver(stream, DAY)
    assert [r["eventName"] for r in event["Records"]] == ["MODIFY", "MODIFY"]
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 2  # never stopped in between
    assert "Service Stopped" not in subscriber.types()


def test_a_record_whose_image_was_cut_still_converges_from_the_table(
    world: World, stream: Stream
) -> None:
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    event = stream.batch()
    # A stream switched to NEW_IMAGE by hand, its image cut mid-attribute.
    event["Records"][0]["dynamodb"]["NewImage"] = {"mode": {"S": "alw"}, "windows": {"L": "{"}}
    with freeze_time(DAY):
        result = handler(event, Context())
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 0


def test_an_event_that_is_no_batch_is_refused_quietly(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    with freeze_time(DAY):
        assert handler({"shard": 0, "shards": 1}, Context()) == {"batchItemFailures": []}
    lines = log_lines(capsys.readouterr().out)
    assert lines[-1]["level"] == "ERROR" and "Records" in lines[-1]["error"]
    assert world.state("c1", "web").desired == 2


def test_the_zip_holds_the_edits_function_and_terraform_names_it() -> None:
    """The zip holds what engine.handler reaches (infra/build_lambda.py); the edits function's
    handler must be one of those, taking (event, context)."""
    import inspect

    from tests.test_infra import resource
    from tests.test_package import build_lambda

    handler_name = resource("aws_lambda_function", "edits")["handler"]
    module_name, _, function_name = handler_name.rpartition(".")
    assert module_name == "engine.handler"
    function = getattr(lambda_handler, function_name)
    assert len(inspect.signature(function).parameters) == 2
    reached = build_lambda.import_graph().modules
    assert {"engine.stream_handler", "engine.edits"} <= set(reached)


# More from the world's side -------------------------------------------------------------------
def test_a_schedule_deleted_and_written_again_in_one_batch_converges_to_the_new_one(
    world: World, stream: Stream
) -> None:
    world.dynamodb.delete_item(
        TableName=world.settings.config_table,
        Key={"pk": {"S": "schedule"}, "sk": {"S": "c1/web"}},
    )
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    event, result = deliver(stream, DAY)
    assert [r["eventName"] for r in event["Records"]] == ["REMOVE", "INSERT"]
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 0


def test_a_dry_run_deployment_changes_nothing_and_retries_nothing(
    world: World, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_DRY_RUN", "true")
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    _, result = deliver(stream, DAY)
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 2
    assert world.lease_slots() == {}
