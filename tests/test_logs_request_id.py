"""The invocation's request id on every line the Lambda logs: the handler's own, the tick's,
its metrics line (still a valid embedded-metric-format document) and lines logged from the
tick's worker threads; the next invocation's lines carry the next id only."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from freezegun import freeze_time

import engine.handler as handler
from engine.logs import bind_request_id, log_event, setup_logging
from tests.world import World, moto_tables, schedule


class Context:
    def __init__(self, request_id: object) -> None:
        self.aws_request_id = request_id


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, teiji_logging_restored: None) -> Iterator[World]:
    monkeypatch.setattr(handler, "_clients", {})
    with moto_tables() as w:
        w.create_service("c1", "web", desired=2, target=(1, 4))
        w.put(schedule("c1/web"))
        yield w
    bind_request_id(None)


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_every_line_of_an_invocation_carries_its_request_id(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    with freeze_time("2026-12-01T14:00:00Z"):
        handler.lambda_handler({}, Context("req-aaa"))
    lines = _lines(capsys.readouterr().out)
    assert {line["event"] for line in lines} >= {"tick starting", "tick metrics", "tick finished"}
    assert all(line.get("request_id") == "req-aaa" for line in lines), lines
    (emf,) = [line for line in lines if line["event"] == "tick metrics"]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "teiji"

    with freeze_time("2026-12-01T14:15:00Z"):
        handler.lambda_handler({}, Context("req-bbb"))
    later = _lines(capsys.readouterr().out)
    assert later and all(line.get("request_id") == "req-bbb" for line in later)


def test_a_context_without_a_usable_request_id_logs_none(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    with freeze_time("2026-12-01T14:00:00Z"):
        handler.lambda_handler({}, Context({"not": "a string"}))
    lines = _lines(capsys.readouterr().out)
    assert lines and all("request_id" not in line for line in lines)


def test_worker_threads_log_the_invocations_id_and_a_long_one_is_cut(
    teiji_logging_restored: None,
) -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream)
    bind_request_id("x" * 10_000)
    try:
        worker = threading.Thread(target=lambda: log_event("from a worker"))
        worker.start()
        worker.join()
        log_event("from the invocation")
    finally:
        bind_request_id(None)
    log_event("after the invocation")
    first, second, third = _lines(stream.getvalue())
    assert first["event"] == "from a worker" and first["request_id"].startswith("x" * 128)
    assert len(first["request_id"]) < 200 and second["request_id"] == first["request_id"]
    assert "request_id" not in third
