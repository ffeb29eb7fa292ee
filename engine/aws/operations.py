"""Every AWS operation teiji may call, in one catalogue.

The clients refuse any operation missing here (see ``engine.aws.clients``), the Terraform
policy grants exactly the ``lambda_`` ones (a test proves both), and the pacing layer reads the
throttling category from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Category = Literal[
    "ecs_service_read",
    "ecs_service_modify",
    "ecs_cluster_read",
    "ecs_other",
    "autoscaling",
    "elbv2_read",
    "elbv2_register",
    "dynamodb",
    "sts",
    "events",
    "cloudwatch",
]


@dataclass(frozen=True)
class Operation:
    service: str  # botocore service name, e.g. "ecs"
    name: str  # API operation name, e.g. "UpdateService"
    category: Category
    lambda_: bool  # called by the tick in the Lambda (so the execution role must allow it)
    write: bool

    @property
    def iam_action(self) -> str:
        prefix = {
            "application-autoscaling": "application-autoscaling",
            "elbv2": "elasticloadbalancing",
        }.get(self.service, self.service)
        return f"{prefix}:{self.name}"


def _op(
    service: str, name: str, category: Category, *, lambda_: bool = True, write: bool = False
) -> Operation:
    return Operation(service, name, category, lambda_, write)


OPERATIONS: tuple[Operation, ...] = (
    # ECS
    _op("ecs", "DescribeServices", "ecs_service_read"),
    _op("ecs", "UpdateService", "ecs_service_modify", write=True),
    _op("ecs", "ListTasks", "ecs_cluster_read"),
    # The tick: the services of the allowed clusters, to find those opted in by tag.
    _op("ecs", "ListServices", "ecs_cluster_read"),
    _op("ecs", "DescribeTasks", "ecs_cluster_read"),
    _op("ecs", "DescribeContainerInstances", "ecs_cluster_read"),
    # The tick: the task size of a service it stops, once per revision (engine.sizing).
    _op("ecs", "DescribeTaskDefinition", "ecs_other"),
    # Application Auto Scaling
    _op("application-autoscaling", "DescribeScalableTargets", "autoscaling"),
    _op("application-autoscaling", "RegisterScalableTarget", "autoscaling", write=True),
    # Elastic Load Balancing v2
    _op("elbv2", "DescribeTargetHealth", "elbv2_read"),
    _op("elbv2", "RegisterTargets", "elbv2_register", write=True),
    _op("elbv2", "DeregisterTargets", "elbv2_register", write=True),
    # Wake on request (engine.wake_plan): the rules in front of a sleeping service. ModifyRule
    # is paced in the smaller mutating bucket (an assumption on the safe side).
    _op("elbv2", "DescribeTargetGroups", "elbv2_read"),
    _op("elbv2", "DescribeListeners", "elbv2_read"),
    _op("elbv2", "DescribeRules", "elbv2_read"),
    _op("elbv2", "ModifyRule", "elbv2_register", write=True),
    # DynamoDB
    _op("dynamodb", "Query", "dynamodb"),
    _op("dynamodb", "GetItem", "dynamodb"),
    _op("dynamodb", "BatchGetItem", "dynamodb"),
    _op("dynamodb", "PutItem", "dynamodb", write=True),
    _op("dynamodb", "DeleteItem", "dynamodb", write=True),
    # teiji put; the tick: the records of its target checks, 25 a call
    _op("dynamodb", "BatchWriteItem", "dynamodb", write=True),
    # The tick: baselines saved and deleted 100 a transaction, each action conditional;
    # teiji put: conditional writes of every document at once.
    _op("dynamodb", "TransactWriteItems", "dynamodb", write=True),
    # teiji validate --table: every item, whatever its pk
    _op("dynamodb", "Scan", "dynamodb", lambda_=False),
    _op("dynamodb", "CreateTable", "dynamodb", write=True, lambda_=False),
    _op("dynamodb", "DescribeTable", "dynamodb", lambda_=False),
    _op("dynamodb", "UpdateTimeToLive", "dynamodb", write=True, lambda_=False),
    # EventBridge: what the tick did, on the deployment's bus (TEIJI_EVENT_BUS)
    _op("events", "PutEvents", "events", write=True),
    # STS
    _op("sts", "AssumeRole", "sts"),
    # The tick: its own account id, once per container, when opt-in by tag looks in every
    # allowed account (TEIJI_ALLOWED_ACCOUNTS lists the deployment's own first).
    _op("sts", "GetCallerIdentity", "sts"),
    # CloudWatch: teiji savings reads the tick's metrics (the tick writes them to its log).
    _op("cloudwatch", "GetMetricData", "cloudwatch", lambda_=False),
    # SSM Parameter Store: each other account's ExternalId (a SecureString), read once per
    # account and container right before its AssumeRole, so it shares that small bucket.
    _op("ssm", "GetParameter", "sts"),
)

# The DynamoDB operations that write; the Lambda's access to the config table excludes them.
DYNAMODB_WRITES = frozenset(
    op.iam_action for op in OPERATIONS if op.service == "dynamodb" and op.write
)

BY_NAME: dict[tuple[str, str], Operation] = {(op.service, op.name): op for op in OPERATIONS}


def lookup(service: str, name: str) -> Operation | None:
    return BY_NAME.get((service, name))
