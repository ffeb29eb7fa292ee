"""The tick's metrics line: a valid embedded-metric-format document CloudWatch Logs can extract,
with the tick's own figures, one low-cardinality dimension, and none for a dry run."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from engine.logs import setup_logging
from engine.metrics import DIMENSION, NAMESPACE, UNITS, emf_document
from engine.report import TickReport
from engine.tick import run_tick
from tests.world import World, at, moto_tables, schedule

NIGHT = at("2026-12-02T23:00:00+09:00")

# The embedded metric format's units (CloudWatch's StandardUnit values).
EMF_UNITS = {"Count", "Seconds", "Milliseconds", "Bytes", "Percent", "None"}


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables() as w:
        yield w


def metric_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == "tick metrics"]


def assert_valid_emf(document: dict[str, Any]) -> None:
    """What the specification requires of a document (root members, directive, targets)."""
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
    (directive,) = meta["CloudWatchMetrics"]
    assert 1 <= len(directive["Namespace"]) <= 1024
    for dimension_set in directive["Dimensions"]:
        assert 1 <= len(dimension_set) <= 30
        for name in dimension_set:
            assert isinstance(document[name], str) and document[name]
    assert 1 <= len(directive["Metrics"]) <= 100
    for metric in directive["Metrics"]:
        assert metric["Unit"] in EMF_UNITS
        value = document[metric["Name"]]
        assert isinstance(value, int | float) and not isinstance(value, bool)


def test_a_tick_writes_one_metrics_line_with_its_figures(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "teiji-tick")
    for name in ("a", "b", "c"):
        world.create_service("c1", name, desired=2)
    world.put(schedule("c1/a"), schedule("c1/b"), schedule("c1/c", mode="always_on"))
    world.dynamodb.put_item(
        TableName=world.settings.config_table,
        Item={
            "pk": {"S": "calendar"},
            "sk": {"S": "broken"},
            "kind": {"S": "calendar"},
            "colour": {"S": "red"},
        },
    )
    stream = io.StringIO()
    setup_logging("INFO", stream)
    report = run_tick(world.clients(), world.settings, at=NIGHT, dry_run=False)
    (line,) = metric_lines(stream)
    assert_valid_emf(line)
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE == "teiji"
    assert directive["Dimensions"] == [[DIMENSION]] and line[DIMENSION] == "teiji-tick"
    assert line["ServicesStopped"] == 2 and line["ServicesRunning"] == 1
    assert line["Changed"] == 2 and line["Failed"] == 0
    assert line["InvalidDocuments"] >= 1
    assert line["ApiCalls"] == report.api_calls > 0
    assert line["_aws"]["Timestamp"] == int(NIGHT.timestamp() * 1000)


def test_a_dry_run_writes_no_metrics(world: World) -> None:
    world.create_service("c1", "a", desired=2)
    world.put(schedule("c1/a"))
    stream = io.StringIO()
    setup_logging("INFO", stream)
    run_tick(world.clients(), world.settings, at=NIGHT, dry_run=True)
    assert metric_lines(stream) == []


def test_every_metric_has_a_unit_and_the_empty_tick_is_still_valid() -> None:
    document = emf_document(TickReport(at=NIGHT, dry_run=False, lease="acquired"), "teiji")
    assert_valid_emf(document)
    names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert names == list(UNITS)
