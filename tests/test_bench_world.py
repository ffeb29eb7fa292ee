"""The benchmark's parts: the world builder, the latency/throttle emulator, the hand-written
tool's call pattern, the floors and the naive decision baseline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from bench.emulator import AWS_LIMITS, AwsBucket, AwsEmulator, Limit, throttling_response
from bench.floor import call_floor, drain_seconds, time_floor
from bench.micro import DECIDE_AT, Workload, decision_workload, naive_decide, window_crons
from bench.seed_tool import run_seed_tool
from bench.world import (
    HOME_REGION,
    OWN_ACCOUNT,
    RUNNING_AT,
    STOPPED_AT,
    World,
    WorldSpec,
    build_world,
    desired_counts,
    layout,
    moto_sessions,
)
from engine.aws.clock import VirtualClock
from schemas.documents import Window

OTHER = "210987654321"
SMALL = WorldSpec(
    services=7,
    accounts=(OWN_ACCOUNT, OTHER),
    regions=(HOME_REGION,),
    services_per_cluster=2,
    load_balanced_every=3,
)


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        yield build_world(SMALL)


def _client(name: str, account: str = OWN_ACCOUNT, *, config: Config | None = None) -> Any:
    """A client made now: inside ``installed()`` it goes through the emulator."""
    session = moto_sessions()(account, HOME_REGION)
    return session.client(name, config=config)  # type: ignore[call-overload]


NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})

# World -------------------------------------------------------------------------------------


def test_layout_spreads_services_over_scopes_and_clusters() -> None:
    placed = layout(WorldSpec(services=250, services_per_cluster=20))
    scopes = {(a, r) for a, r, _, _ in placed}
    assert len(placed) == 250
    assert len(scopes) == 6  # 3 accounts x 2 regions
    per_cluster: dict[tuple[str, str, str], int] = {}
    for account, region, cluster, _ in placed:
        per_cluster[(account, region, cluster)] = per_cluster.get((account, region, cluster), 0) + 1
    assert max(per_cluster.values()) <= 20


def test_small_world_exists_in_each_account(world: World) -> None:
    assert len(world.services) == 7
    assert {s.account for s in world.services} == {OWN_ACCOUNT, OTHER}
    counts = desired_counts(world)
    assert counts == {s.ident: s.desired for s in world.services}
    # Accounts are separate: the own account does not see the other account's clusters.
    own_clusters = {s.cluster for s in world.services if s.account == OWN_ACCOUNT}
    listed = _client("ecs").list_clusters()["clusterArns"]
    assert {arn.rsplit("/", 1)[-1] for arn in listed} == own_clusters
    other = next(s for s in world.services if s.account == OTHER)
    targets = _client("application-autoscaling", OTHER).describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[other.resource_id]
    )["ScalableTargets"]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(1, 4)]
    balanced = [s for s in world.services if s.target_groups]
    assert balanced and all(len(s.target_groups) == 1 for s in balanced)


def test_world_schedules_name_each_service_in_its_scope(world: World) -> None:
    schedules = world.schedules()
    keys = {s.key for s in schedules}
    assert len(keys) == 7
    assert any(key.endswith(f"@{OTHER}") for key in keys)
    assert any("@" not in key for key in keys)
    states_running = naive_decide(Workload(schedules, [], [], RUNNING_AT))
    states_stopped = naive_decide(Workload(schedules, [], [], STOPPED_AT))
    assert set(states_running.values()) == {"running"}
    assert set(states_stopped.values()) == {"stopped"}


# Emulator ----------------------------------------------------------------------------------


def test_emulator_throttles_when_the_bucket_is_empty(world: World) -> None:
    service = next(s for s in world.services if s.account == OWN_ACCOUNT)
    clock = VirtualClock()
    emulator = AwsEmulator(clock, latency=0.0, limits={"ecs_service_modify": Limit(1, 2)})
    with emulator.installed():
        ecs = _client("ecs", config=NO_RETRIES)
        for desired in (2, 3):
            ecs.update_service(cluster=service.cluster, service=service.name, desiredCount=desired)
        with pytest.raises(ClientError) as info:
            ecs.update_service(cluster=service.cluster, service=service.name, desiredCount=0)
    error = info.value.response
    assert error["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert emulator.traffic.requests["ecs.UpdateService"] == 3
    assert emulator.traffic.throttled["ecs.UpdateService"] == 1
    # A throttled request never reached moto: the service kept the last admitted count.
    assert desired_counts(world)[service.ident] == 3


def test_emulator_buckets_are_per_account(world: World) -> None:
    own = next(s for s in world.services if s.account == OWN_ACCOUNT)
    other = next(s for s in world.services if s.account == OTHER)
    emulator = AwsEmulator(VirtualClock(), latency=0.0, limits={"ecs_service_modify": Limit(1, 1)})
    with emulator.installed():
        _client("ecs", config=NO_RETRIES).update_service(
            cluster=own.cluster, service=own.name, desiredCount=0
        )
        _client("ecs", OTHER, config=NO_RETRIES).update_service(
            cluster=other.cluster, service=other.name, desiredCount=0
        )
    assert emulator.traffic.total_throttled == 0
    assert emulator.bucket(OWN_ACCOUNT, HOME_REGION, "ecs_service_modify").tokens < 1
    assert emulator.bucket(OTHER, HOME_REGION, "ecs_service_modify").tokens < 1


def test_botocore_retries_a_throttle_after_backing_off_on_the_clock(world: World) -> None:
    service = world.services[0]
    clock = VirtualClock()
    # Refills a token in a microsecond: any back-off at all is enough.
    emulator = AwsEmulator(clock, latency=0.0, limits={"ecs_service_modify": Limit(1e6, 1)})
    with emulator.installed():
        ecs = _client("ecs", service.account, config=Config(retries={"mode": "standard"}))
        ecs.update_service(cluster=service.cluster, service=service.name, desiredCount=1)
        answer = ecs.update_service(cluster=service.cluster, service=service.name, desiredCount=0)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert emulator.traffic.throttled["ecs.UpdateService"] == 1
    assert clock.monotonic() > 0  # the back-off slept on the virtual clock


def test_emulator_adds_latency_to_every_request(world: World) -> None:
    clock = VirtualClock()
    emulator = AwsEmulator(clock, latency=0.020)
    with emulator.installed():
        ecs = _client("ecs")
        for _ in range(5):
            ecs.list_clusters()
    assert clock.monotonic() == pytest.approx(0.100)
    assert emulator.traffic.total == 5


def test_query_protocol_throttles_parse_as_throttling() -> None:
    with mock_aws():
        emulator = AwsEmulator(
            VirtualClock(),
            latency=0.0,
            limits={"elb": Limit(1, 1)},
            categories={("elastic-load-balancing-v2", "DescribeLoadBalancers"): "elb"},
        )
        with emulator.installed():
            elbv2 = _client("elbv2", config=NO_RETRIES)
            elbv2.describe_load_balancers()
            with pytest.raises(ClientError) as info:
                elbv2.describe_load_balancers()
    assert info.value.response["Error"]["Code"] == "Throttling"
    assert throttling_response("ecs", "https://x").status_code == 400


# Hand-written tool -------------------------------------------------------------------------


def test_seed_tool_stop_makes_three_calls_per_service(world: World) -> None:
    clock = VirtualClock()
    emulator = AwsEmulator(clock, latency=0.020)
    with emulator.installed():
        run = run_seed_tool("stop", world.services, moto_sessions(), clock)
    by_operation = emulator.traffic.requests
    assert by_operation["application-auto-scaling.DescribeScalableTargets"] == 7
    assert by_operation["application-auto-scaling.RegisterScalableTarget"] == 7
    assert by_operation["ecs.UpdateService"] == 7
    assert emulator.traffic.total - by_operation["sts.AssumeRole"] == 21
    assert run.failed_services == 0
    # One request after another: the run lasts exactly the sum of the latencies.
    assert run.wall_s == pytest.approx(emulator.traffic.total * 0.020)
    assert set(desired_counts(world).values()) == {0}
    target = _client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[world.services[0].resource_id]
    )["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 4)  # Max left as it was


def test_seed_tool_start_registers_targets_for_each_target_group(world: World) -> None:
    clock = VirtualClock()
    emulator = AwsEmulator(clock, latency=0.0)
    with emulator.installed():
        run_seed_tool("start", world.services, moto_sessions(), clock)
    by_operation = emulator.traffic.requests
    groups = sum(len(s.target_groups) for s in world.services)
    assert by_operation["ecs.ListTasks"] == 7
    assert by_operation["ecs.UpdateService"] == 7
    assert by_operation["elastic-load-balancing-v2.RegisterTargets"] == groups
    assert set(desired_counts(world).values()) == {1}  # forced to 1, whatever it was


def test_seed_tool_first_error_ends_the_run_for_the_rest(world: World) -> None:
    own = [s for s in world.services if s.account == OWN_ACCOUNT]
    clock = VirtualClock()
    # Two UpdateService, then nothing for hours: legacy retries give up on the third service.
    emulator = AwsEmulator(clock, latency=0.0, limits={"ecs_service_modify": Limit(1e-4, 2)})
    with emulator.installed():
        run = run_seed_tool("stop", own, moto_sessions(), clock)
    assert len(own) >= 4
    assert run.failed_services == len(own) - 2
    assert "ThrottlingException" in run.printed[0]
    assert emulator.traffic.throttled["ecs.UpdateService"] == 5  # legacy: 5 attempts
    counts = desired_counts(world)
    assert [counts[s.ident] == 0 for s in own] == [True, True] + [False] * (len(own) - 2)


# Floors ------------------------------------------------------------------------------------


def test_thousand_updates_in_one_bucket_take_190_seconds() -> None:
    assert drain_seconds(1000, Limit(5, 50)) == pytest.approx(190)
    assert drain_seconds(30, Limit(5, 50)) == 0


def test_call_and_time_floor_of_a_known_world() -> None:
    spec = WorldSpec(services=120, accounts=(OWN_ACCOUNT,), regions=(HOME_REGION,))
    services = tuple(
        _fake_service(cluster, index)
        for _, _, cluster, index in layout(spec)  # two clusters of 60
    )
    world = World(spec, services)
    noop = call_floor(world, transition=False)
    assert (noop.describe_services, noop.describe_scalable_targets) == (12, 3)
    assert (noop.assume_role, noop.document_pages, noop.baseline_reads, noop.lease) == (0, 1, 2, 3)
    assert noop.total == 21
    # Each service: UpdateService and RegisterScalableTarget; the baselines 100 a transaction.
    assert call_floor(world, transition=True).total == 21 + 2 * 120 + 2
    assert time_floor(world, transition=False, latency=0.02) == pytest.approx(0.04)
    assert time_floor(world, transition=True, latency=0.02) == pytest.approx(0.06 + 70 / 5)
    # Another caller using 10% of service modify leaves 4.5/s: the floor of what is left.
    left = {**AWS_LIMITS, "ecs_service_modify": Limit(4.5, 50)}
    assert time_floor(world, transition=True, latency=0.02, limits=left) == pytest.approx(
        0.06 + 70 / 4.5
    )


def test_another_caller_in_the_account_takes_its_share_of_the_emulated_bucket() -> None:
    clock = VirtualClock()
    alone = AwsBucket(5, 50, clock)
    shared = AwsBucket(5, 50, clock, other=0.5)
    admitted = {"alone": 0, "shared": 0}
    for _ in range(1000):  # 100 emulated seconds, asking ten times a second
        clock.sleep(0.1)
        admitted["alone"] += alone.try_acquire()
        admitted["shared"] += shared.try_acquire()
    assert admitted["alone"] == pytest.approx(50 + 5 * 100, abs=2)  # the burst, then the rate
    # The other caller took 0.5 a second of the 5: 50 fewer in 100 s.
    assert admitted["alone"] - admitted["shared"] == pytest.approx(0.5 * 100, abs=2)


def _fake_service(cluster: str, index: int) -> Any:
    from bench.world import WorldService

    return WorldService(OWN_ACCOUNT, HOME_REGION, cluster, f"svc-{index:04d}", 1, 1, 4, ())


# Naive decision baseline -------------------------------------------------------------------


def test_window_crons_cover_overnight_and_midnight_ends() -> None:
    assert window_crons(Window(days="mon-fri", start="05:00", end="22:00")) == (
        "0 5 * * 1,2,3,4,5",
        "0 22 * * 1,2,3,4,5",
    )
    assert window_crons(Window(days="fri-sat", start="20:00", end="02:00"))[1] == "0 2 * * 6,0"
    assert window_crons(Window(days="sun", start="09:45", end="24:00"))[1] == "0 0 * * 1"


def test_naive_decide_workload_mixes_states_and_honours_overrides() -> None:
    workload = decision_workload(services=200)
    states = naive_decide(workload)
    assert len(states) == 200
    assert {"running", "stopped"} <= set(states.values())
    for override in workload.overrides:
        assert states[override.key] == override.state
    assert workload.at == DECIDE_AT
    shapes = {
        (s.timezone, tuple(s.windows), tuple(s.cron), tuple(s.holidays)) for s in workload.schedules
    }
    assert len(shapes) == 50


# moto's transactions, each table copied once -------------------------------------------------
def _table(client: Any) -> None:
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(20):
        client.put_item(TableName="t", Item={"pk": {"S": f"k{i}"}, "n": {"N": "1"}})


def _puts(keys: list[str], condition: str | None = None) -> list[dict[str, Any]]:
    puts = []
    for key in keys:
        put: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": key}, "n": {"N": "2"}}}
        if condition:
            put["ConditionExpression"] = condition
        puts.append({"Put": put})
    return puts


@mock_aws
def test_a_transaction_copies_its_table_once_and_still_rolls_back_whole() -> None:
    import copy

    import boto3
    from moto.dynamodb import models

    from bench.world import transactions_copy_each_table_once

    client = boto3.client("dynamodb", region_name="ap-northeast-1")
    _table(client)
    copies: list[object] = []
    real = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        if isinstance(value, models.Table):
            copies.append(value)
        return real(value, memo)

    with transactions_copy_each_table_once(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(copy, "deepcopy", counting)
        client.transact_write_items(TransactItems=_puts([f"new{i}" for i in range(10)]))
        assert len(copies) == 1  # moto alone copies the table once per action: 10
        # The last action fails its condition: nothing of the transaction is written.
        failing = _puts(["a", "b"]) + _puts(["k0"], "attribute_not_exists(pk)")
        with pytest.raises(ClientError, match="TransactionCanceled"):
            client.transact_write_items(TransactItems=failing)
    keys = {item["pk"]["S"] for item in client.scan(TableName="t")["Items"]}
    assert "a" not in keys and "b" not in keys
    assert len(keys) == 30
    # Outside a transaction, deepcopy is copy's own again.
    assert models.copy is copy


@mock_aws
def test_a_warm_containers_floor_assumes_no_role() -> None:
    world = build_world(SMALL)
    cold, warm = call_floor(world, transition=False), call_floor(world, transition=False, warm=True)
    assert cold.assume_role > 0 and warm.assume_role == 0
    assert cold.total - warm.total == cold.assume_role
