"""The emulated AWS throttles every API teiji calls, each past its own bucket, in the error
shape the real service sends (botocore parses it as it would AWS's answer), and DynamoDB by
table capacity. Its buckets are its own, not teiji's pacing classes."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from bench.emulator import (
    AWS_LIMITS,
    AwsEmulator,
    Limit,
    TableCapacity,
    category_of,
)
from bench.world import HOME_REGION, OWN_ACCOUNT, moto_sessions
from engine.aws.clock import VirtualClock

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
ONE = Limit(1e-6, 1)  # one request, then nothing for a very long time


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _client(name: str) -> Any:
    session = moto_sessions()(OWN_ACCOUNT, HOME_REGION)
    return session.client(name, config=NO_RETRIES)  # type: ignore[call-overload]


def _second_call_refused(category: str, call: Any) -> dict[str, Any]:
    """Call twice through an emulator whose ``category`` bucket holds one token."""
    emulator = AwsEmulator(VirtualClock(), latency=0.0, limits={**AWS_LIMITS, category: ONE})
    with emulator.installed():
        call()
        with pytest.raises(ClientError) as info:
            call()
    assert emulator.traffic.throttled.total() == 1
    response: dict[str, Any] = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response


def test_every_api_teiji_calls_has_a_bucket() -> None:
    from engine.aws.operations import OPERATIONS

    service_ids = {
        "ecs": "ecs",
        "application-autoscaling": "application-auto-scaling",
        "elbv2": "elastic-load-balancing-v2",
        "sts": "sts",
    }
    for op in OPERATIONS:
        if op.lambda_ and op.service in service_ids:
            category = category_of(service_ids[op.service], op.name)
            assert category in AWS_LIMITS, (op.service, op.name)


def test_elb_describe_is_throttled_in_the_query_shape(aws: None) -> None:
    elbv2 = None

    def call() -> None:
        nonlocal elbv2
        elbv2 = elbv2 or _client("elbv2")
        elbv2.describe_target_groups()

    response = _second_call_refused("elb_describe", call)
    assert response["Error"]["Code"] == "Throttling"
    assert response["Error"]["Message"] == "Rate exceeded"
    assert AWS_LIMITS["elb_describe"] == Limit(10, 40)  # the ELB guide's Describe* bucket


def test_elb_register_targets_has_its_own_bucket(aws: None) -> None:
    vpc = _client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    arn = _client("elbv2").create_target_group(
        Name="tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    emulator = AwsEmulator(
        VirtualClock(), latency=0.0, limits={**AWS_LIMITS, "elb_register_targets": ONE}
    )
    with emulator.installed():
        elbv2 = _client("elbv2")
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1", "Port": 80}])
        elbv2.describe_target_health(TargetGroupArn=arn)  # another bucket: admitted
        with pytest.raises(ClientError) as info:
            elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.2", "Port": 80}])
    assert info.value.response["Error"]["Code"] == "Throttling"
    assert emulator.traffic.throttled == {"elastic-load-balancing-v2.RegisterTargets": 1}


def test_application_auto_scaling_is_throttled(aws: None) -> None:
    aas = None

    def call() -> None:
        nonlocal aas
        aas = aas or _client("application-autoscaling")
        aas.describe_scalable_targets(ServiceNamespace="ecs")

    response = _second_call_refused("autoscaling", call)
    assert response["Error"]["Code"] == "ThrottlingException"


def test_sts_is_throttled(aws: None) -> None:
    sts = None

    def call() -> None:
        nonlocal sts
        sts = sts or _client("sts")
        sts.get_caller_identity()

    response = _second_call_refused("sts", call)
    assert response["Error"]["Code"] == "Throttling"


def _table(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName="state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("provisioned", "ProvisionedThroughputExceededException"),
        ("on-demand", "ThrottlingException"),
    ],
)
def test_dynamodb_answers_a_capacity_error_past_the_tables_capacity(
    aws: None, mode: str, code: str
) -> None:
    _table(_client("dynamodb"))
    capacity = TableCapacity(read_units=1, write_units=2, mode=mode, burst_seconds=1)  # type: ignore[arg-type]
    clock = VirtualClock()
    emulator = AwsEmulator(clock, latency=0.0, tables={"state": capacity})
    with emulator.installed():
        dynamodb = _client("dynamodb")
        item = {"pk": {"S": "a"}, "body": {"S": "x" * 100}}
        dynamodb.put_item(TableName="state", Item=item)  # 1 unit of the 2
        dynamodb.put_item(TableName="state", Item=item)  # the last unit
        with pytest.raises(ClientError) as written:
            dynamodb.put_item(TableName="state", Item=item)
        dynamodb.get_item(TableName="state", Key={"pk": {"S": "a"}})  # the 1 read unit
        with pytest.raises(ClientError) as read:
            dynamodb.get_item(TableName="state", Key={"pk": {"S": "a"}})
        clock.sleep(1.0)  # a second of capacity refills a unit of each
        dynamodb.get_item(TableName="state", Key={"pk": {"S": "a"}})
        dynamodb.describe_table(TableName="state")  # the control plane has no capacity
    for info in (written, read):
        assert info.value.response["Error"]["Code"] == code
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert emulator.traffic.throttled == {"dynamodb.PutItem": 1, "dynamodb.GetItem": 1}


def test_a_big_read_takes_the_table_into_debt(aws: None) -> None:
    _table(_client("dynamodb"))
    for n in range(3):
        _client("dynamodb").put_item(
            TableName="state", Item={"pk": {"S": str(n)}, "body": {"S": "x" * 5000}}
        )
    capacity = TableCapacity(read_units=1, mode="provisioned", burst_seconds=2)
    emulator = AwsEmulator(VirtualClock(), latency=0.0, tables={"state": capacity})
    with emulator.installed():
        dynamodb = _client("dynamodb")
        dynamodb.scan(TableName="state")  # about 15 KB: 4 units of the 2 there are
        with pytest.raises(ClientError):
            dynamodb.get_item(TableName="state", Key={"pk": {"S": "0"}})
    assert emulator.table_bucket(OWN_ACCOUNT, HOME_REGION, "state", "read").tokens < 0  # type: ignore[union-attr]


def test_the_emulator_counts_the_cpu_aws_spends(aws: None) -> None:
    emulator = AwsEmulator(VirtualClock(), latency=0.0)
    with emulator.installed():
        ecs = _client("ecs")
        for _ in range(20):
            ecs.list_clusters()
    assert emulator.traffic.aws_cpu_s > 0


def test_the_emulator_does_not_use_teijis_pacing() -> None:
    source = Path(__file__).resolve().parent.parent / "bench" / "emulator.py"
    imported = {
        node.module
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not {m for m in imported if m.startswith("engine") and m != "engine.aws.clock"}
