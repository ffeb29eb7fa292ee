"""The event source mapping's filter (infra/streams.tf) against the records moto's stream makes:
people's edits pass; DynamoDB's TTL deletions and items that are not documents do not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.streamworld import (
    Stream,
    edits_world,
    put_raw,
)
from tests.world import World


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, teiji_logging_restored: None) -> Iterator[World]:
    with edits_world(monkeypatch) as w:
        yield w


@pytest.fixture
def stream(world: World) -> Stream:
    return Stream(world)


# The filter on the event source mapping -----------------------------------------------------
# infra/streams.tf's two patterns, either matching (infra/tests/streams.tftest.hcl asserts the
# module renders exactly these).
KINDS = ["schedule", "calendar", "override", "profile"]
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
