"""The config table's DynamoDB stream in moto, read as the event source mapping reads it.

``Stream(world)`` turns the stream on (``KEYS_ONLY``, as infra/dynamodb.tf does), and
``stream.batch()`` reads every record written since the last call with ``dynamodbstreams``
GetRecords and hands them back in the Lambda's event shape::

    {"Records": [{"eventID", "eventName", "eventVersion", "eventSource": "aws:dynamodb",
                  "awsRegion", "dynamodb": {...}, "eventSourceARN"}]}

(``ApproximateCreationDateTime`` as epoch seconds, as Lambda sends it.) ``tests.world.Subscriber``
reads the events teiji published, through a rule on the bus and an SQS queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.config import Config
from freezegun import freeze_time

import engine.handler as lambda_handler
from engine.config import Settings
from tests.world import World, moto_tables, schedule


class Context:
    aws_request_id = "req-edits"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 180_000


class Stream:
    """The config table's stream, read from where the last ``batch`` stopped."""

    def __init__(self, world: World, view: str = "KEYS_ONLY") -> None:
        self.world = world
        answer = world.dynamodb.update_table(
            TableName=world.settings.config_table,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
        )
        self.arn: str = answer["TableDescription"]["LatestStreamArn"]
        # moto answers the classic endpoint only (botocore now prefers one per account).
        self.client = world._session.client(
            "dynamodbstreams",
            region_name=world.region,
            endpoint_url=world.endpoint_url,
            config=Config(account_id_endpoint_mode="disabled"),
        )
        shard = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]
        self.iterator: str = self.client.get_shard_iterator(
            StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]

    def records(self) -> list[dict[str, Any]]:
        answer = self.client.get_records(ShardIterator=self.iterator)
        self.iterator = answer["NextShardIterator"]
        return [self.lambda_shape(record) for record in answer["Records"]]

    def lambda_shape(self, record: dict[str, Any]) -> dict[str, Any]:
        shaped = json.loads(json.dumps(record, default=str))
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if created is not None:
            shaped["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
        shaped["eventSourceARN"] = self.arn
        shaped["awsRegion"] = self.world.region
        return shaped

    def batch(self) -> dict[str, Any]:
        """Every record since the last batch, as one Lambda event."""
        return {"Records": self.records()}


DAY = "2026-12-02T03:00:00Z"  # Wednesday 12:00 in Tokyo, inside Mon-Fri 05:00-22:00
NIGHT = "2026-12-02T14:00:00Z"  # the same day, 23:00 in Tokyo
BUS = "default"


@contextmanager
def edits_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """In-process moto: c1/web (2 tasks, target 1..4) and c1/api (3) on Mon-Fri 05:00-22:00
    schedules, events to the default bus, the handlers' client cache empty."""
    monkeypatch.setattr(lambda_handler, "_clients", {})
    monkeypatch.setenv("TEIJI_EVENT_BUS", BUS)
    with moto_tables(Settings(event_bus=BUS)) as w:
        w.create_service("c1", "web", desired=2, target=(1, 4))
        w.create_service("c1", "api", desired=3)
        w.put(schedule("c1/web"), schedule("c1/api"))
        yield w


def deliver(stream: Stream, when: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the event source mapping does: the records since the last batch, to the function's
    entry point, at ``when``."""
    event = stream.batch()
    with freeze_time(when):
        result = lambda_handler.stream_handler(event, Context())
    json.dumps(result)  # a Lambda result is plain JSON
    return event, result


def put_raw(world: World, item: dict[str, Any]) -> None:
    """A person writing an item in the console (plain values, no teiji stamp)."""
    world.put_item(item)


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
