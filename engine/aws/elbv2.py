"""Thin Elastic Load Balancing v2 adapter: a target group's registered targets, and repairs.

teiji never registers a task after starting a service (ECS does that itself); these calls
serve the target check and ``targets: repair`` (``engine.targets``), which decides what to
send. A target description is ``{"Id": <IPv4 or EC2 instance id>, "Port": <port>}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.aws.answers import require

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_elbv2.type_defs import TargetDescriptionTypeDef


def describe_target_health(client: ElasticLoadBalancingv2Client, arn: str) -> list[Any]:
    """Every target registered in the group ``arn``, draining ones included (without
    ``Targets``, DescribeTargetHealth lists them all)."""
    answer: Mapping[str, Any] = client.describe_target_health(TargetGroupArn=arn)
    return list(require(answer, "DescribeTargetHealth", "TargetHealthDescriptions", list))


def register_targets(
    client: ElasticLoadBalancingv2Client, arn: str, targets: Sequence[TargetDescriptionTypeDef]
) -> None:
    client.register_targets(TargetGroupArn=arn, Targets=targets)


def deregister_targets(
    client: ElasticLoadBalancingv2Client, arn: str, targets: Sequence[TargetDescriptionTypeDef]
) -> None:
    client.deregister_targets(TargetGroupArn=arn, Targets=targets)
