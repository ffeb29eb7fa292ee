"""API calls per tick: batched reads only when nothing needs to change, and no write calls."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from tests.faults import logged_tick
from tests.world import ALL_SUSPENDED, World, at, moto_tables, schedule

CLUSTERS = {"alpha": 50, "beta": 45, "gamma": 25}  # 120 services
DAY = at("2026-12-02T12:00:00+09:00")
NIGHT = at("2026-12-02T23:00:00+09:00")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with moto_tables() as w:
        docs = []
        for cluster, count in CLUSTERS.items():
            for i in range(count):
                name = f"svc-{i:02d}"
                with_target = i % 4 != 0  # a quarter have no scalable target
                w.create_service(cluster, name, desired=2, target=(1, 4) if with_target else None)
                docs.append(schedule(f"{cluster}/{name}"))
        w.put(*docs)
        yield w


def test_no_op_tick_makes_only_batched_reads(world: World) -> None:
    log, report = logged_tick(world, DAY)
    assert report.counts["converged"] == 120
    total = sum(CLUSTERS.values())
    assert log.count("DescribeServices") == sum(math.ceil(n / 10) for n in CLUSTERS.values())
    assert log.count("DescribeScalableTargets") == math.ceil(total / 50)
    # The baselines, then the last target checks (a second set of 100-key reads: a schedule
    # that checks targets needs its record even before the observation says it has any).
    assert log.count("BatchGetItem") == math.ceil(2 * total / 100)  # baselines + checks
    # The lease record, then schedules, calendars, overrides, profiles: one page each.
    assert log.count("Query") == 5
    assert log.writes() == []  # no ECS or Application Auto Scaling writes
    dynamodb_writes = [c.operation for c in log.writes(("dynamodb",))]
    assert dynamodb_writes == ["PutItem", "PutItem"]  # the lease, taken and given back
    for call in log.named("DescribeServices"):
        assert len(call.params["services"]) <= 10
    for call in log.named("DescribeScalableTargets"):
        assert len(call.params["ResourceIds"]) <= 50
    assert sorted(log.counts()) == [
        "BatchGetItem",
        "DescribeScalableTargets",
        "DescribeServices",
        "PutItem",
        "Query",
    ]


def test_stop_transition_costs_one_write_of_each_kind_per_service(world: World) -> None:
    log, report = logged_tick(world, NIGHT)
    assert report.counts["changed"] == 120
    with_target = sum(1 for n in CLUSTERS.values() for i in range(n) if i % 4 != 0)
    assert log.count("UpdateService") == 120
    assert log.count("RegisterScalableTarget") == with_target
    assert log.count("PutItem") == 2  # the lease, taken and given back
    # The baselines, saved 100 a transaction (one group: 100 + 20) before any change.
    batches = [len(c.params["TransactItems"]) for c in log.named("TransactWriteItems")]
    assert sorted(batches) == [20, 100]
    assert log.count("DescribeServices") == sum(math.ceil(n / 10) for n in CLUSTERS.values())
    for call in log.named("RegisterScalableTarget"):
        assert call.params["SuspendedState"] == ALL_SUSPENDED

    # Stopped and pinned: the next tick at night is a no-op again.
    log, report = logged_tick(world, NIGHT)
    assert report.counts["converged"] == 120
    assert log.writes() == []
