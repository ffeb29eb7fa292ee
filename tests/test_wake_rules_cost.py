"""With wake on request on, a tick reads the saved listener rules of the whole fleet with one
Query (every page), not one per service; a record that cannot be read still fails only its
own service, closed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from engine.config import Settings
from engine.tick import run_tick
from tests.world import CallLog, World, at, moto_tables, schedule

STOP_AT = at("2026-12-01T22:15:00+09:00")
PREFIX = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
PAIR = (PREFIX + "loadbalancer/app/stg/0123456789abcdef", PREFIX + "targetgroup/w/0123456789abcdef")
SETTINGS = Settings(wake_target_groups=(PAIR,))
WAKE = {"on_request": True, "keep_for": "2h"}


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables(SETTINGS) as w:
        for i in range(6):
            w.create_service("c1", f"svc{i}", desired=1)
        w.put(*(schedule(f"c1/svc{i}", **({"wake": WAKE} if i % 2 else {})) for i in range(6)))
        yield w


def _wake_rule_queries(log: CallLog) -> int:
    return sum(
        1
        for call in log.named("Query")
        if call.params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S") == "wake-rule"
    )


def test_one_query_reads_every_services_saved_rules(world: World) -> None:
    log = CallLog()
    for when in (STOP_AT, datetime.fromisoformat("2026-12-02T06:00:00+09:00")):
        log.clear()
        report = run_tick(log.attach(world.clients()), SETTINGS, at=when, dry_run=False)
        assert not any(s.failed for s in report.services), report.services
        assert _wake_rule_queries(log) == 1


def test_an_unreadable_record_fails_its_own_service_only(world: World) -> None:
    world.put_item(
        {"pk": "wake-rule", "sk": "c1/svc1#arn:rule/1", "key": "c1/svc1", "actions": "{cut"},
        table=SETTINGS.state_table,
    )
    report = run_tick(world.clients(), SETTINGS, at=STOP_AT, dry_run=False)
    failed = {s.key for s in report.services if s.failed}
    assert failed == {"c1/svc1"}, report.services
    assert "cannot be read" in next(s.error for s in report.services if s.key == "c1/svc1")
