"""The benchmark's world behind load balancers: ECS's part done as ECS does it (tasks started
and stopped to desiredCount, their targets registered and deregistered), so that teiji's own
target check finds every target healthy; the floors of a small world worked out by hand; the
hand-written tool's start, call for call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from bench.emulator import AWS_LIMITS, AwsEmulator, Limit
from bench.floor import CHECKS_DUE, START, STEADY, STOP, STOPPED, call_floor, time_floor
from bench.seed_tool import START_CALLS, run_seed_tool
from bench.world import (
    HOME_REGION,
    OWN_ACCOUNT,
    ROLE_NAME,
    World,
    WorldService,
    WorldSpec,
    build_world,
    desired_counts,
    ecs_like,
    moto_sessions,
    planned_world,
    settle,
)
from engine.aws.clients import Clients
from engine.aws.clock import VirtualClock
from engine.targets import check_targets

OTHER = "210987654321"
# 6 services in each of two accounts, in clusters of 3; in each account services 0 (awsvpc) and
# 3 (bridge) are load balanced, and want 1 task each (1 + index % 3).
SPEC = WorldSpec(12, accounts=(OWN_ACCOUNT, OTHER), regions=(HOME_REGION,), services_per_cluster=3)


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws(), ecs_like():
        built = build_world(SPEC)
        settle(built)
        yield built


def _ecs(service: WorldService) -> Any:
    return moto_sessions()(service.account, service.region).client("ecs", region_name=HOME_REGION)


def _check(service: WorldService) -> Any:
    account = None if service.account == OWN_ACCOUNT else service.account
    described = _ecs(service).describe_services(cluster=service.cluster, services=[service.name])
    return check_targets(
        Clients(region=HOME_REGION, role_name=ROLE_NAME),
        account=account,
        region=None,
        cluster=service.cluster,
        service=described["services"][0],
        mode="verify",
        dry_run=False,
    )


def _registered(service: WorldService) -> list[dict[str, Any]]:
    session = moto_sessions()(service.account, service.region)
    elbv2 = session.client("elbv2", region_name=HOME_REGION)
    answer = elbv2.describe_target_health(TargetGroupArn=service.target_groups[0])
    return list(answer["TargetHealthDescriptions"])


def test_the_world_has_awsvpc_and_bridge_services_behind_target_groups(world: World) -> None:
    balanced = [s for s in world.services if s.load_balanced]
    assert len(balanced) == 4
    assert {s.network for s in balanced} == {"awsvpc", "bridge"}
    for service in balanced:
        targets = _registered(service)
        assert len(targets) == service.desired
        target = targets[0]["Target"]
        if service.network == "awsvpc":
            assert target["Id"].startswith("10.") and target["Port"] == 80
        else:
            assert target["Id"].startswith("i-") and target["Port"] > 32768  # host port


@pytest.mark.parametrize("network", ["awsvpc", "bridge"])
def test_teijis_target_check_finds_the_worlds_targets_healthy(world: World, network: str) -> None:
    for service in (s for s in world.services if s.load_balanced and s.network == network):
        report = _check(service)
        assert report.ok, report.as_json()
        assert report.error is None and report.findings == []


def test_settle_stops_and_deregisters_then_starts_and_registers(world: World) -> None:
    service = next(s for s in world.services if s.load_balanced and s.network == "bridge")
    ecs = _ecs(service)
    ecs.update_service(cluster=service.cluster, service=service.name, desiredCount=0)
    done = settle(world)
    assert (done.stopped, done.deregistered) == (1, 1)
    assert _registered(service) == []
    assert ecs.list_tasks(cluster=service.cluster, serviceName=service.name)["taskArns"] == []
    ecs.update_service(cluster=service.cluster, service=service.name, desiredCount=2)
    done = settle(world)
    assert (done.started, done.registered) == (2, 2)
    assert len(_registered(service)) == 2
    assert _check(service).ok
    # A target ECS did not register (a task id, as the hand-written tool sends) is reported.
    session = moto_sessions()(service.account, service.region)
    session.client("elbv2", region_name=HOME_REGION).register_targets(
        TargetGroupArn=service.target_groups[0], Targets=[{"Id": "i-0123456789abcdef0"}]
    )
    assert [f.kind for f in _check(service).findings] == ["foreign"]


def test_list_tasks_answers_as_ecs_does(world: World) -> None:
    one, other = [s for s in world.services if s.load_balanced and s.account == OWN_ACCOUNT][:2]
    ecs = _ecs(one)
    mine = ecs.list_tasks(cluster=one.cluster, serviceName=one.name)["taskArns"]
    assert len(mine) == one.desired
    ecs.update_service(cluster=one.cluster, service=one.name, desiredCount=0)
    settle(world)
    assert ecs.list_tasks(cluster=one.cluster, serviceName=one.name)["taskArns"] == []
    stopped = ecs.list_tasks(cluster=one.cluster, serviceName=one.name, desiredStatus="STOPPED")
    assert stopped["taskArns"] == mine
    assert len(ecs.list_tasks(cluster=other.cluster, serviceName=other.name)["taskArns"]) == 1


# Floors of a small world, by hand ------------------------------------------------------------


def test_floors_of_a_small_world_by_hand() -> None:
    one_scope = {"accounts": (OWN_ACCOUNT,), "regions": (HOME_REGION,)}
    world = planned_world(WorldSpec(12, services_per_cluster=6, **one_scope))  # type: ignore[arg-type]
    assert [s.name for s in world.services if s.load_balanced] == [
        "svc-0000",
        "svc-0003",
        "svc-0006",
        "svc-0009",
    ]
    assert [s.network for s in world.services if s.load_balanced] == [
        "awsvpc",
        "bridge",
        "awsvpc",
        "bridge",
    ]
    # Two clusters of 6: 2 DescribeServices; 1 DescribeScalableTargets; 1 Query page; the
    # lease 3; 12 baselines + 4 target-check records in 1 BatchGetItem. The hour's re-checks
    # fall a quarter in each tick: 1 of the 4, one DescribeTargetHealth and its record.
    steady = call_floor(world, kind=STEADY)
    assert (steady.describe_target_health, steady.target_check_writes) == (1, 1)
    assert steady.total == 2 + 1 + 1 + 3 + 1 + 1 + 1
    assert steady.reads == steady.total - 1
    # A check of each of the 4: ListTasks 4, DescribeTasks 4, DescribeContainerInstances for
    # the 2 bridge ones, DescribeTargetHealth 4, and one BatchWriteItem for the 4 records.
    due = call_floor(world, kind=CHECKS_DUE)
    assert (due.list_tasks, due.describe_tasks, due.describe_container_instances) == (4, 4, 2)
    assert (due.describe_target_health, due.target_check_writes) == (4, 1)
    assert due.total == 8 + 4 + 4 + 2 + 4 + 1
    assert due.reads == due.total - 1
    # Stopped: no target-check record is needed (12 keys: still 1 call); a stop writes 2 each
    # and its 12 baselines in one transaction.
    assert call_floor(world, kind=STOPPED).total == 8
    assert call_floor(world, kind=STOP).total == 8 + 2 * 12 + 1
    assert call_floor(world, kind=START).total == 8 + 2 * 12 + 1
    # Time: documents, observe, then ListTasks -> DescribeTasks -> DescribeContainerInstances.
    assert time_floor(world, kind=STEADY, latency=0.02) == pytest.approx(0.04)
    assert time_floor(world, kind=CHECKS_DUE, latency=0.02) == pytest.approx(0.10)
    # 10 cluster reads through a bucket of 2 at 1 a second: 8 s; 4 Describe* through 1 at 1/s: 3 s.
    tight = {
        **AWS_LIMITS,
        "ecs_cluster_read": Limit(1, 2),
        "elb_describe": Limit(1, 1),
    }
    assert time_floor(world, kind=CHECKS_DUE, latency=0.02, limits=tight) == pytest.approx(8.10)
    # A stop: 12 UpdateService through 1/s after a burst of 2 (10 s); 13 Application Auto
    # Scaling calls through 2/s after 1 (6 s): the slower bucket counts.
    slow = {**AWS_LIMITS, "ecs_service_modify": Limit(1, 2), "autoscaling": Limit(2, 1)}
    assert time_floor(world, kind=STOP, latency=0.02, limits=slow) == pytest.approx(10.06)


def test_a_planned_world_is_the_world_built(world: World) -> None:
    planned = planned_world(SPEC)
    assert [(s.ident, s.desired, s.network) for s in planned.services] == [
        (s.ident, s.desired, s.network) for s in world.services
    ]
    assert call_floor(planned, kind=CHECKS_DUE) == call_floor(world, kind=CHECKS_DUE)


# The hand-written tool's start ---------------------------------------------------------------


def test_the_hand_written_tools_start_makes_the_calls_of_the_post(world: World) -> None:
    clock = VirtualClock()
    run_seed_tool("stop", world.services, moto_sessions(), clock)
    settle(world)  # ECS stops the tasks and deregisters them
    emulator = AwsEmulator(clock, latency=0.0)
    with emulator.installed():
        run = run_seed_tool("start", world.services, moto_sessions(), clock)
    services = len(world.services)
    groups = sum(len(s.target_groups) for s in world.services)
    seen = emulator.traffic.requests
    assert run.failed_services == 0
    for call in (*START_CALLS[:4], "ecs.DescribeServices"):
        assert seen[call] == services, call
    # Right after UpdateService, ECS has started nothing yet: nothing to describe, and the
    # tool registers its (empty) list of task ids in each target group.
    assert seen["ecs.DescribeTasks"] == 0
    assert seen["elastic-load-balancing-v2.RegisterTargets"] == groups
    assert set(desired_counts(world).values()) == {1}
    # Once ECS has started the tasks, a second start lists them, describes them and registers
    # their task ids, which no load balancer accepts as targets of this kind.
    settle(world)
    emulator = AwsEmulator(clock, latency=0.0)
    with emulator.installed():
        run_seed_tool("start", world.services, moto_sessions(), clock)
    balanced = sum(1 for s in world.services if s.load_balanced)
    assert emulator.traffic.requests["ecs.DescribeTasks"] == balanced
