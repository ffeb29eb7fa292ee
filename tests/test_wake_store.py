"""Saved listener rules in the state table (moto DynamoDB): never overwritten, amended and
deleted only if still the version read, read back exactly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from engine.wake_store import amend_rule, delete_rule, save_rule, saved_rules
from schemas.records import SavedRule
from tests.world import World, moto_tables

AT = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)
WEIGHTED = [
    {
        "Type": "forward",
        "Order": 1,
        "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "tg-a", "Weight": 3}]},
    }
]


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables() as w:
        yield w


def saved(key: str = "c1/web", version: str = "v1", actions: object = None) -> SavedRule:
    return SavedRule(
        key=key,
        rule_arn="arn:rule/1",
        listener_arn="arn:listener/1",
        actions=WEIGHTED if actions is None else actions,  # type: ignore[arg-type]
        conditions=[{"Field": "host-header", "Values": ["stg.example.com"]}],
        saved_at=AT,
        version=version,
    )


def test_rule_round_trips_exactly_and_is_never_overwritten(world: World) -> None:
    store = world.state_store()
    first = saved()
    assert save_rule(store, first) is True
    assert save_rule(store, saved(version="v2", actions=[{"Type": "forward"}])) is False
    back = saved_rules(store, "c1/web")
    assert back == {"arn:rule/1": first}
    assert type(back["arn:rule/1"].actions[0]["Order"]) is int  # not a Decimal


def test_amend_and_delete_are_conditional_on_the_version_read(world: World) -> None:
    store = world.state_store()
    first = saved()
    save_rule(store, first)
    theirs = saved(version="v2", actions=[{"Type": "forward", "TargetGroupArn": "tg-b"}])
    assert amend_rule(store, saved(version="other"), theirs) is False
    assert amend_rule(store, first, theirs) is True
    assert delete_rule(store, first) is False
    assert delete_rule(store, theirs) is True
    assert saved_rules(store, "c1/web") == {}


def test_a_service_reads_only_its_own_rules(world: World) -> None:
    store = world.state_store()
    save_rule(store, saved("c1/web"))
    save_rule(store, saved("c1/web#x"))
    assert set(r.key for r in saved_rules(store, "c1/web").values()) == {"c1/web"}
