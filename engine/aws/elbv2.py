"""Thin Elastic Load Balancing v2 adapter: a target group's registered targets, and repairs.

teiji never registers a task after starting a service (ECS does that itself); these calls
serve the target check and ``targets: repair`` (``engine.targets``), which decides what to
send. A target description is ``{"Id": <IPv4 or EC2 instance id>, "Port": <port>}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from engine.aws.answers import require
from engine.aws.batching import chunks
from engine.wake_plan import Rule, RuleStep

# TargetGroupArns sent per DescribeTargetGroups (the API documents no limit: kept small).
TARGET_GROUPS_PER_CALL = 20

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


# Wake on request: the listener rules in front of a service (see engine.wake_plan). -----------


def load_balancers_of(
    client: ElasticLoadBalancingv2Client, target_groups: Sequence[str]
) -> set[str]:
    """The load balancers the target groups are attached to (none: the service has no LB)."""
    found: set[str] = set()
    for batch in chunks(list(target_groups), TARGET_GROUPS_PER_CALL):
        answer: Mapping[str, Any] = client.describe_target_groups(TargetGroupArns=batch)
        for group in require(answer, "DescribeTargetGroups", "TargetGroups", list):
            found.update(str(arn) for arn in group.get("LoadBalancerArns") or [])
    return found


def listener_rules(
    client: ElasticLoadBalancingv2Client, load_balancers: Sequence[str]
) -> list[Rule]:
    """Every rule of every listener of the load balancers, default rules included, paged."""
    rules: list[Rule] = []
    for lb in sorted(load_balancers):
        for listener in _paged(
            client.describe_listeners, "DescribeListeners", "Listeners", LoadBalancerArn=lb
        ):
            port = listener.get("Port")
            rules += rules_of_listener(
                client, str(listener["ListenerArn"]), port if isinstance(port, int) else None
            )
    return rules


def rules_of_listener(
    client: ElasticLoadBalancingv2Client, arn: str, port: int | None = None
) -> list[Rule]:
    """Every rule of the listener ``arn`` (on ``port``, when known), paged."""
    return [
        Rule(
            arn=str(rule["RuleArn"]),
            listener_arn=arn,
            actions=tuple(rule.get("Actions") or ()),
            conditions=tuple(rule.get("Conditions") or ()),
            is_default=bool(rule.get("IsDefault", False)),
            priority=str(rule["Priority"]) if rule.get("Priority") is not None else None,
            port=port,
        )
        for rule in _paged(client.describe_rules, "DescribeRules", "Rules", ListenerArn=arn)
    ]


def modify_rule(client: ElasticLoadBalancingv2Client, rule: RuleStep) -> None:
    """Set the rule's actions exactly (a swap to the wake group, or a restore)."""
    client.modify_rule(RuleArn=rule.rule_arn, Actions=cast(Any, [dict(a) for a in rule.actions]))


def _paged(call: Any, operation: str, key: str, **kwargs: Any) -> list[Mapping[str, Any]]:
    items: list[Mapping[str, Any]] = []
    marker: str | None = None
    while True:
        answer: Mapping[str, Any] = call(**kwargs, **({"Marker": marker} if marker else {}))
        items.extend(require(answer, operation, key, list))
        marker = answer.get("NextMarker")
        if not marker:
            return items
