"""Fail closed on stored input: ended overrides, binary attributes, forged baselines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from boto3.dynamodb.types import Binary

from engine.tick import run_tick
from tests.invariant import Capacity, assert_invariant, snapshot
from tests.world import World, at, moto_tables, schedule

NIGHT = at("2026-12-01T22:15:00+09:00")


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables() as w:
        w.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
        yield w


def test_an_override_that_ended_long_ago_never_fails_its_service(world: World) -> None:
    world.put(schedule("c1/web", mode="always_off"))
    # Written by hand in the console, long before the cap, without expires_at.
    world.put_item(
        {
            "pk": "override",
            "sk": "c1/web#old",
            "state": "running",
            "start": "2017-01-01T09:00:00+09:00",
            "until": "2017-03-01T09:00:00+09:00",
            "reason": "migration",
        }
    )
    expected = snapshot(["c1/web"])
    report = run_tick(world.clients(), world.settings, at=NIGHT, dry_run=False)
    assert report.service("c1/web").outcome == "changed", report.service("c1/web").error
    assert snapshot(["c1/web"])["c1/web"].in_stopped_shape(0)
    assert report.problems == []
    assert_invariant(world, expected)


def test_an_override_in_force_beyond_the_cap_still_fails(world: World) -> None:
    world.put(schedule("c1/web", mode="always_off"))
    world.put_item(
        {
            "pk": "override",
            "sk": "c1/web#long",
            "state": "running",
            "start": "2026-11-01T09:00:00+09:00",
            "until": "2027-03-01T09:00:00+09:00",
            "reason": "forever",
        }
    )
    expected = snapshot(["c1/web"])
    report = run_tick(world.clients(), world.settings, at=NIGHT, dry_run=False)
    service = report.service("c1/web")
    assert service.outcome == "failed" and "longer than the limit" in (service.error or "")
    assert_invariant(world, expected)


def test_a_binary_attribute_is_refused_naming_the_item_and_field(world: World) -> None:
    item = {
        "pk": "schedule",
        "sk": "c1/web",
        "mode": "always_off",
        "timezone": Binary(b"Asia/Tokyo"),
    }
    world.put_item(item)
    expected = snapshot(["c1/web"])
    report = run_tick(world.clients(), world.settings, at=NIGHT, dry_run=False)
    service = report.service("c1/web")
    assert service.outcome == "failed"
    assert "timezone is a binary (B) attribute" in (service.error or ""), service.error
    assert "schedule c1/web" in (service.error or "")
    assert snapshot(["c1/web"]) == expected


def test_a_binary_baseline_field_fails_the_service_and_restores_nothing(world: World) -> None:
    world.put(schedule("c1/web"))
    world.put_item(
        {
            "pk": "baseline",
            "sk": "c1/web",
            "desired_count": 3,
            "decided_by": Binary(b"window"),
            "saved_at": "2026-12-01T13:00:00+00:00",
            "version": "v1",
        },
        table=world.settings.state_table,
    )
    world.set_desired("c1", "web", 0)
    report = run_tick(
        world.clients(), world.settings, at=at("2026-12-02T05:00:00+09:00"), dry_run=False
    )
    service = report.service("c1/web")
    assert service.outcome == "failed"
    assert "decided_by is a binary (B) attribute" in (service.error or "")
    assert snapshot(["c1/web"])["c1/web"].desired == 0


def test_a_baseline_shaped_item_in_the_config_table_is_never_read(world: World) -> None:
    world.put(schedule("c1/web", mode="always_on"))
    world.put_item(
        {
            "pk": "baseline",
            "sk": "c1/web",
            "desired_count": 500,
            "min_capacity": 500,
            "max_capacity": 500,
            "saved_at": "2026-12-01T13:00:00+00:00",
            "decided_by": "forged",
            "version": "v1",
        }
    )
    world.set_desired("c1", "web", 0)
    world.register_target("c1", "web", 0, 6, {"in": True})
    report = run_tick(world.clients(), world.settings, at=NIGHT, dry_run=False)
    assert report.problems == [] or all("baseline" not in p for p in report.problems)
    assert snapshot(["c1/web"])["c1/web"] == Capacity.of(1, (0, 6), {"in": True})
