"""The ELBv2 calls of wake on request against moto: find the rules in front of a service's
target groups, swap one to the wake target group and restore it exactly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from engine.aws import elbv2
from engine.wake_plan import RuleStep, plan_restore, plan_sleep, same_actions, wake_actions
from schemas.records import SavedRule

REGION = "ap-northeast-1"


@pytest.fixture
def world() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}"
            )["Subnet"]["SubnetId"]
            for i, z in ((1, "a"), (2, "c"))
        ]
        client = boto3.client("elbv2", region_name=REGION)
        lb = client.create_load_balancer(Name="stg", Subnets=subnets)["LoadBalancers"][0]
        groups = {
            name: client.create_target_group(
                Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
            )["TargetGroups"][0]["TargetGroupArn"]
            for name in ("svc", "other", "wake")
        }
        listener = client.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["other"]}],
        )["Listeners"][0]["ListenerArn"]
        rule = client.create_rule(
            ListenerArn=listener,
            Priority=10,
            Conditions=[{"Field": "host-header", "Values": ["stg.example.com"]}],
            Actions=[{"Type": "forward", "TargetGroupArn": groups["svc"]}],
        )["Rules"][0]["RuleArn"]
        yield {"client": client, "lb": lb["LoadBalancerArn"], "groups": groups, "rule": rule}


def _saved(step: RuleStep) -> SavedRule:
    from datetime import UTC, datetime

    return SavedRule(
        key="c/s",
        rule_arn=step.rule_arn,
        listener_arn=step.listener_arn,
        actions=[dict(a) for a in step.actions],
        conditions=[dict(c) for c in step.conditions],
        saved_at=datetime(2026, 12, 2, 23, 0, tzinfo=UTC),
        version="v1",
    )


def test_the_service_rule_is_found_swapped_and_restored_exactly(world: dict[str, Any]) -> None:
    client, groups = world["client"], world["groups"]
    assert elbv2.load_balancers_of(client, [groups["svc"]]) == {world["lb"]}
    rules = elbv2.listener_rules(client, [world["lb"]])
    original = next(r for r in rules if r.arn == world["rule"])

    steps = plan_sleep(rules, [groups["svc"]], {}, {world["lb"]: groups["wake"]})
    assert [(s.kind, s.rule_arn) for s in steps] == [
        ("save", world["rule"]),
        ("swap", world["rule"]),
    ]
    record = _saved(steps[0])
    assert record.conditions[0]["Values"] == ["stg.example.com"]
    elbv2.modify_rule(client, steps[1])
    now = {r.arn: r for r in elbv2.listener_rules(client, [world["lb"]])}
    assert forwards(now[world["rule"]].actions) == groups["wake"]
    # The default rule forwards elsewhere: left alone.
    assert all(forwards(r.actions) == groups["other"] for r in now.values() if r.is_default)

    back = plan_restore(
        list(now.values()), {world["rule"]: record}, {world["lb"]: groups["wake"]}, True
    )
    assert [s.kind for s in back] == ["restore", "delete"]
    elbv2.modify_rule(client, back[0])
    restored = {r.arn: r for r in elbv2.listener_rules(client, [world["lb"]])}[world["rule"]]
    assert same_actions(restored.actions, original.actions)
    assert not same_actions(restored.actions, wake_actions(groups["wake"]))


def test_a_target_group_without_a_load_balancer_has_none(world: dict[str, Any]) -> None:
    assert elbv2.load_balancers_of(world["client"], [world["groups"]["wake"]]) == set()


def forwards(actions: Any) -> str:
    return str(
        actions[0].get("TargetGroupArn")
        or actions[0]["ForwardConfig"]["TargetGroups"][0]["TargetGroupArn"]
    )
