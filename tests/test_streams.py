"""Edits that take effect in seconds: real writes to the config table in moto, read back from
its DynamoDB stream with GetRecords and handed to the edits function in the Lambda's shape.

Every kind of edit (a schedule put, updated and deleted; an override set and cancelled; a
calendar), a burst of 100, an edit while a tick holds the lease, poison records, an invalid
edit, and people editing the same document twice in a row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

import engine.handler as lambda_handler
from engine.config import Settings
from engine.edits import read_batch
from engine.lease import break_holder
from engine.store import CheckedWrite, from_attribute_map, item_from_document
from engine.stream_handler import apply_batch, handler
from engine.tick import run_tick
from schemas.validation import parse_document
from tests.streamworld import Context, Stream, Subscriber
from tests.world import World, at, moto_tables, schedule

DAY = "2026-12-02T03:00:00Z"  # Wednesday 12:00 in Tokyo, inside Mon-Fri 05:00-22:00
NIGHT = "2026-12-02T14:00:00Z"  # the same day, 23:00 in Tokyo
BUS = "default"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, teiji_logging_restored: None) -> Iterator[World]:
    monkeypatch.setattr(lambda_handler, "_clients", {})
    monkeypatch.setenv("TEIJI_EVENT_BUS", BUS)
    with moto_tables(Settings(event_bus=BUS)) as w:
        w.create_service("c1", "web", desired=2, target=(1, 4))
        w.create_service("c1", "api", desired=3)
        w.put(schedule("c1/web"), schedule("c1/api"))
        yield w


@pytest.fixture
def stream(world: World) -> Stream:
    return Stream(world)


def deliver(stream: Stream, when: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the event source mapping does: the records since the last batch, to the handler."""
    event = stream.batch()
    with freeze_time(when):
        result = lambda_handler.stream_handler(event, Context())  # the function's entry point
    json.dumps(result)  # a Lambda result is plain JSON
    return event, result


def put_raw(world: World, item: dict[str, Any]) -> None:
    """A person writing an item in the console (plain values, no teiji stamp)."""
    world.put_item(item)


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


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


# The filter on the event source mapping -----------------------------------------------------
# infra/streams.tf's two patterns, either matching (infra/tests/streams.tftest.hcl asserts the
# module renders exactly these).
KINDS = ["schedule", "calendar", "override"]
FILTERS = [
    {
        "dynamodb": {"Keys": {"pk": {"S": KINDS}}},
        "userIdentity": {"principalId": [{"exists": False}]},
    },
    {
        "dynamodb": {"Keys": {"pk": {"S": KINDS}}},
        "userIdentity": {"principalId": [{"anything-but": ["dynamodb.amazonaws.com"]}]},
    },
]
_ABSENT = object()


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """EventBridge pattern matching, the part the filters use: every field of the pattern must
    match; a list matches when one of its values equals the field, or an ``exists`` /
    ``anything-but`` rule holds (an absent field matches only ``exists: false``)."""
    for name, rule in pattern.items():
        value = event.get(name, _ABSENT) if isinstance(event, dict) else _ABSENT
        if isinstance(rule, dict):
            if not matches(rule, value if isinstance(value, dict) else {}):
                return False
            continue
        if not any(_one(option, value) for option in rule):
            return False
    return True


def _one(option: Any, value: Any) -> bool:
    if isinstance(option, dict) and "exists" in option:
        return (value is not _ABSENT) is option["exists"]
    if isinstance(option, dict) and "anything-but" in option:
        return value is not _ABSENT and value not in option["anything-but"]
    return value is not _ABSENT and value == option


def test_the_filter_passes_peoples_edits_and_drops_ttl_and_other_items(
    world: World, stream: Stream
) -> None:
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    world.put({"kind": "calendar", "name": "company", "dates": ["2026-12-29"]})
    world.put(
        {
            "kind": "override",
            "service": "c1/web",
            "id": "late",
            "state": "running",
            "until": "2026-12-03T02:00:00+09:00",
            "reason": "release night",
            "created_by": "hanako",
        }
    )
    world.dynamodb.delete_item(
        TableName=world.settings.config_table,
        Key={"pk": {"S": "override"}, "sk": {"S": "c1/web#late"}},
    )
    put_raw(world, {"pk": "note", "sk": "readme", "text": "not a document"})
    records = stream.batch()["Records"]
    passed = [r for r in records if any(matches(f, r) for f in FILTERS)]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in passed] == [
        "schedule",
        "calendar",
        "override",
        "override",
    ]
    ttl = {
        **records[3],
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
    }
    person = {**records[3], "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE"}}
    assert not any(matches(f, ttl) for f in FILTERS)
    assert any(matches(f, person) for f in FILTERS)  # a delete that names its person
    tftest = (Path(__file__).parent.parent / "infra" / "tests" / "streams.tftest.hcl").read_text()
    for pattern in FILTERS:
        rendered = json.dumps(pattern, separators=(",", ":"))
        assert rendered.replace('"', '\\"') in tftest


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


def test_a_dry_run_deployment_changes_nothing_and_retries_nothing(
    world: World, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_DRY_RUN", "true")
    put_raw(world, {"pk": "schedule", "sk": "c1/web", "mode": "always_off"})
    _, result = deliver(stream, DAY)
    assert result == {"batchItemFailures": []}
    assert world.state("c1", "web").desired == 2
    assert world.lease_slots() == {}


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
