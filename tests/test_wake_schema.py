"""The schedule's ``wake`` field: what is accepted, and the line an operator reads otherwise."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.documents import Schedule
from schemas.jsonschema import document_json_schema
from schemas.validation import parse_document

SOURCE = "stg.yaml"


def schedule(wake: Any) -> dict[str, Any]:
    return {
        "kind": "schedule",
        "service": "example-cluster/example-service-stg",
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
        "wake": wake,
    }


def problem_line(wake: Any) -> str:
    result = parse_document(schedule(wake), source=SOURCE, index=1)
    assert isinstance(result, list), result
    assert len(result) == 1, result
    return str(result[0])


def test_wake_parses_with_its_length() -> None:
    parsed = parse_document(
        schedule({"on_request": True, "keep_for": "1d12h"}), source=SOURCE, index=1
    )
    assert isinstance(parsed, Schedule)
    assert parsed.wake is not None
    assert parsed.wake.on_request is True
    assert parsed.wake.keep_for_delta == timedelta(days=1, hours=12)


def test_no_wake_field_means_no_wake() -> None:
    raw = schedule(None)
    del raw["wake"]
    parsed = parse_document(raw, source=SOURCE, index=1)
    assert isinstance(parsed, Schedule) and parsed.wake is None


@pytest.mark.parametrize(
    ("wake", "line"),
    [
        (
            {"on_request": True, "keep_for": "8d"},
            "wake.keep_for: '8d' is longer than the override cap of 7d; write a duration "
            "from 1m to 7d, like 90m, 2h or 1d12h",
        ),
        (
            {"on_request": True, "keep_for": "0h"},
            "wake.keep_for: '0h' is not positive; write a duration from 1m to 7d, like 90m, "
            "2h or 1d12h",
        ),
        (
            {"on_request": True, "keep_for": "2 hours"},
            "wake.keep_for: '2 hours' is not a duration; write a duration from 1m to 7d, "
            "like 90m, 2h or 1d12h",
        ),
        (
            {"on_request": True, "keep_for": "２h"},  # a full-width digit, as an IME types it
            "wake.keep_for: '２h' is not a duration; write a duration from 1m to 7d, "
            "like 90m, 2h or 1d12h",
        ),
        (
            {"on_request": True, "keep_for": 7200},
            "wake.keep_for: expected a duration, got the number 7200; write a duration from "
            "1m to 7d, like 90m, 2h or 1d12h",
        ),
        ({"on_request": "yes"}, "wake.on_request: expected true or false, got the text 'yes'"),
        (
            {"on_request": True, "stay": "2h"},
            "wake.stay: unknown field 'stay' (allowed: on_request, keep_for)",
        ),
    ],
)
def test_wrong_wake_names_document_and_field(wake: Any, line: str) -> None:
    assert problem_line(wake) == f"{SOURCE}: schedule example-cluster/example-service-stg: {line}"


@given(days=st.integers(0, 9), hours=st.integers(0, 30), minutes=st.integers(0, 200))
def test_keep_for_accepted_exactly_when_positive_and_within_the_cap(
    days: int, hours: int, minutes: int
) -> None:
    text = "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    length = timedelta(days=days, hours=hours, minutes=minutes)
    parsed = parse_document(
        schedule({"on_request": True, "keep_for": text}), source=SOURCE, index=1
    )
    if text and timedelta(0) < length <= timedelta(days=7):
        assert isinstance(parsed, Schedule) and parsed.wake is not None
        assert parsed.wake.keep_for_delta == length
    else:
        assert isinstance(parsed, list)


def test_json_schema_describes_wake() -> None:
    defs = document_json_schema()["$defs"]
    assert "wake" in defs["Schedule"]["properties"]
    assert set(defs["Wake"]["properties"]) == {"on_request", "keep_for"}
    assert defs["Wake"]["additionalProperties"] is False
