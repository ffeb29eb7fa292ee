"""A world for wake on request: an ECS service behind an ALB listener rule (host
stg.example.com), the wake function's Lambda target group paired with that load balancer in
TEIJI_WAKE_TARGET_GROUPS, and ALB events as the load balancer sends them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.world import World, run_cli, schedule

WAKE = {"on_request": True, "keep_for": "2h"}
HOST = "stg.example.com"


def wake_world(
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    document: Mapping[str, Any] | None = None,
) -> World:
    """The world, its tables made and the service's schedule stored (``document``, or
    Mon-Fri 05:00-22:00 JST with wake on request). ``world._network`` holds ``rule``,
    ``listener``, ``lb`` and ``wake`` (the wake target group)."""
    w = World(endpoint)
    w.create_service("c1", "web", desired=2, load_balancer=True)
    assert run_cli(capsys, endpoint, "init")[0] == 0
    w.put(dict(document) if document is not None else schedule("c1/web", wake=WAKE))
    elbv2 = w._raw("elbv2")
    second = w._raw("ec2").create_subnet(
        VpcId=w._network["vpc"], CidrBlock="10.0.2.0/24", AvailabilityZone=f"{w.region}c"
    )["Subnet"]["SubnetId"]
    lb = elbv2.create_load_balancer(Name="stg", Subnets=[w._network["subnet"], second])
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    wake = elbv2.create_target_group(Name="teiji-wake", TargetType="lambda")["TargetGroups"][0]
    listener = elbv2.create_listener(
        LoadBalancerArn=lb_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=10,
        Conditions=[{"Field": "host-header", "Values": [HOST]}],
        Actions=[{"Type": "forward", "TargetGroupArn": w.target_group()}],
    )["Rules"][0]["RuleArn"]
    w._network.update(rule=rule, listener=listener, wake=wake["TargetGroupArn"], lb=lb_arn)
    monkeypatch.setenv("TEIJI_WAKE_TARGET_GROUPS", f"{lb_arn}={wake['TargetGroupArn']}")
    return w


def alb_event(
    target_group: str,
    *,
    host: str = HOST,
    path: str = "/",
    browser: bool = True,
    method: str = "GET",
    multi_value: bool = False,
    **headers: str,
) -> dict[str, Any]:
    """An ALB Lambda-target event as the load balancer sends it."""
    sent = {
        "host": host,
        "accept": "text/html,application/xhtml+xml" if browser else "application/json",
        "user-agent": "Mozilla/5.0" if browser else "curl/8.5.0",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "80",
        "x-forwarded-proto": "http",
        "cookie": "session=secret-cookie-value",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": target_group}},
        "httpMethod": method,
        "path": path,
        "body": "password=hunter2",
        "isBase64Encoded": False,
    }
    if multi_value:
        event["multiValueHeaders"] = {k: [v] for k, v in sent.items()}
        event["multiValueQueryStringParameters"] = {}
    else:
        event["headers"] = sent
        event["queryStringParameters"] = {}
    return event
