"""The ECS adapter keeps of a described service what teiji reads, and not its event log."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
from botocore.stub import Stubber

from engine.aws.ecs import describe_services

ARN = "arn:aws:ecs:ap-northeast-1:123456789012:service/c1/web"


def _answer(events: int) -> dict[str, object]:
    return {
        "services": [
            {
                "serviceArn": ARN,
                "serviceName": "web",
                "status": "ACTIVE",
                "desiredCount": 2,
                "runningCount": 2,
                "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "desiredCount": 2}],
                "loadBalancers": [{"targetGroupArn": "arn:tg", "containerPort": 80}],
                # ECS sends a service's latest 100 events with every description.
                "events": [
                    {
                        "id": f"e{i}",
                        "createdAt": datetime(2026, 12, 1, tzinfo=UTC),
                        "message": "(service web) has reached a steady state. " * 4,
                    }
                    for i in range(events)
                ],
            }
        ],
        "failures": [],
    }


def test_a_described_service_is_kept_without_its_events() -> None:
    client = boto3.client("ecs", region_name="ap-northeast-1")
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_services", _answer(100), {"cluster": "c1", "services": ["web"]}
        )
        lookup = describe_services(client, "c1", ["web"])
    kept = lookup.found["web"]
    assert "events" not in kept
    assert kept["desiredCount"] == 2 and kept["runningCount"] == 2
    assert kept["deployments"][0]["status"] == "PRIMARY"
    assert kept["loadBalancers"] == [{"targetGroupArn": "arn:tg", "containerPort": 80}]
    assert kept["serviceArn"] == ARN
