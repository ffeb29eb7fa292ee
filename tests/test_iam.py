"""Least privilege, proven against the code.

The execution role in ``infra/iam.tf`` must allow exactly the actions of the operations the
engine calls from the Lambda (``engine.aws.operations``, ``lambda_=True``) plus the two
CloudWatch Logs actions the runtime needs; ``engine.aws.clients`` refuses every call outside that
catalogue, so the role covers every call the engine can make and nothing more.
"""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from engine.aws.operations import OPERATIONS
from tests.test_infra import first, locals_, typed

LOGS_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents"})
LAMBDA_ACTIONS = frozenset(op.iam_action for op in OPERATIONS if op.lambda_)
WRITE_ACTIONS = frozenset(op.iam_action for op in OPERATIONS if op.write) | LOGS_ACTIONS

# Statements that exist only when a variable is set, by sid: (the variable, their actions).
CONDITIONAL = {
    "AssumeRoleInOtherAccounts": ("var.role_name", frozenset({"sts:AssumeRole"})),
    # A customer managed table key, usable only through DynamoDB (kms:ViaService).
    "TableKeyThroughDynamoDB": (
        "var.table_kms_key_arn",
        frozenset({"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"}),
    ),
}

# Actions that may be granted on "*": the API offers no resource-level permission, or (ListTasks)
# it authorizes a cluster-wide listing against "*" and a condition narrows it.
READ_ON_ANY_RESOURCE = {
    "application-autoscaling:DescribeScalableTargets": "no resource-level permission",
    "elasticloadbalancing:DescribeTargetHealth": "no resource-level permission",
    "ecs:ListTasks": "listing without containerInstance is authorized on '*'; ecs:cluster narrows",
}
# Write actions that may be granted on "*", each only with conditions.
WRITE_ON_ANY_RESOURCE = {
    # A scalable target's ARN ends in a random id, unknown before it exists; the
    # service-namespace and scalable-dimension conditions restrict it to ECS desired counts.
    "application-autoscaling:RegisterScalableTarget": {
        "application-autoscaling:service-namespace": ["ecs"],
        "application-autoscaling:scalable-dimension": ["ecs:service:DesiredCount"],
    },
}


# Reading the policy ---------------------------------------------------------------------------
def execution_document() -> dict[str, Any]:
    document: dict[str, Any] = typed("data", "aws_iam_policy_document")["execution"]
    return document


def static_statements() -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = execution_document().get("statement", [])
    return statements


def dynamic_statements() -> list[tuple[str, dict[str, Any]]]:
    """(for_each expression, content) of each ``dynamic "statement"`` block."""
    found = []
    for entry in execution_document().get("dynamic", []):
        for label, body in entry.items():
            assert label == "statement", f"unexpected dynamic block {label}"
            found.append((body["for_each"], first(body["content"])))
    return found


def all_statements() -> list[dict[str, Any]]:
    return static_statements() + [content for _, content in dynamic_statements()]


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in statement["actions"]}


def conditions(statement: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for condition in statement.get("condition", []):
        found[condition["variable"]] = condition["values"]
    return found


# The action set --------------------------------------------------------------------------------
def test_static_actions_are_exactly_the_lambda_operations_and_logs() -> None:
    conditional = set().union(*(actions for _, actions in CONDITIONAL.values()))
    expected = (LAMBDA_ACTIONS - conditional) | LOGS_ACTIONS
    assert actions_of(static_statements()) == expected


def test_all_actions_are_the_catalogue_logs_and_the_table_key() -> None:
    kms = CONDITIONAL["TableKeyThroughDynamoDB"][1]
    assert actions_of(all_statements()) == LAMBDA_ACTIONS | LOGS_ACTIONS | kms


def test_every_lambda_operation_is_granted() -> None:
    granted = actions_of(all_statements())
    missing = sorted(
        op.iam_action for op in OPERATIONS if op.lambda_ and op.iam_action not in granted
    )
    assert not missing, (
        f"the engine calls these from the Lambda but the role forbids them: {missing}"
    )


def test_operations_the_lambda_does_not_call_are_not_granted() -> None:
    cli_only = {op.iam_action for op in OPERATIONS if not op.lambda_}
    assert cli_only, "the catalogue has CLI-only operations (CreateTable, BatchWriteItem, ...)"
    assert not cli_only & actions_of(all_statements())


@pytest.mark.parametrize(("sid", "expected"), list(CONDITIONAL.items()))
def test_conditional_statements_exist_only_when_their_variable_is_set(
    sid: str, expected: tuple[str, frozenset[str]]
) -> None:
    variable, actions = expected
    [(for_each, content)] = [(f, c) for f, c in dynamic_statements() if c["sid"] == sid]
    assert for_each == f"${{{variable} == null ? [] : [{variable}]}}"
    assert set(content["actions"]) == actions


def test_sts_assume_role_names_only_the_configured_role() -> None:
    [content] = [c for _, c in dynamic_statements() if c["sid"] == "AssumeRoleInOtherAccounts"]
    assert content["resources"] == ["arn:${local.partition}:iam::*:role/${statement.value}"]
    assert "sts:AssumeRole" not in actions_of(static_statements())


def test_table_key_is_usable_only_through_dynamodb() -> None:
    [content] = [c for _, c in dynamic_statements() if c["sid"] == "TableKeyThroughDynamoDB"]
    assert content["resources"] == ["${statement.value}"]
    assert conditions(content) == {"kms:ViaService": ["dynamodb.${local.region}.amazonaws.com"]}


def test_actions_are_real_api_operations() -> None:
    """A typo in an action would grant nothing; every action must name an API operation."""
    session = botocore.session.get_session()
    prefixes = {"elasticloadbalancing": "elbv2"}
    for action in sorted(actions_of(all_statements())):
        prefix, _, name = action.partition(":")
        model = session.get_service_model(prefixes.get(prefix, prefix))
        assert name in model.operation_names, f"{action} is not an operation of {prefix}"


# Wildcards and resources ------------------------------------------------------------------------
def _every_policy_document() -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = typed("data", "aws_iam_policy_document")
    return documents


def test_no_wildcard_actions_anywhere() -> None:
    for name, document in _every_policy_document().items():
        statements = document.get("statement", []) + [
            first(body["content"])
            for entry in document.get("dynamic", [])
            for body in entry.values()
        ]
        for statement in statements:
            assert "not_actions" not in statement, f"{name}: NotAction grants too much"
            assert "not_resources" not in statement, f"{name}: NotResource grants too much"
            for action in statement["actions"]:
                assert "*" not in action and "?" not in action, f"{name}: wildcard action {action}"
            assert statement.get("effect", "Allow") == "Allow"


def test_any_resource_only_where_the_api_allows_nothing_narrower() -> None:
    for statement in all_statements():
        if "*" not in statement.get("resources", []):
            continue
        assert statement["resources"] == ["*"], statement["sid"]
        for action in statement["actions"]:
            if action in WRITE_ACTIONS:
                assert action in WRITE_ON_ANY_RESOURCE, f"write {action} on '*'"
                assert conditions(statement) == WRITE_ON_ANY_RESOURCE[action], action
            else:
                assert action in READ_ON_ANY_RESOURCE, f"{action} on '*' though it can be narrowed"


def test_list_tasks_is_limited_to_the_clusters() -> None:
    [statement] = [s for s in all_statements() if "ecs:ListTasks" in s["actions"]]
    assert statement["actions"] == ["ecs:ListTasks"]
    [condition] = statement["condition"]
    assert condition["test"] in ("ArnEquals", "ArnLike")
    assert condition["variable"] == "ecs:cluster"
    assert condition["values"] == "${local.cluster_arns}"
    assert locals_()["cluster_arns"] == (
        '${[for cluster in var.clusters : "${local.ecs_arn_prefix}:cluster/${cluster}"]}'
    )


def _resources_for(action: str) -> Any:
    [statement] = [s for s in all_statements() if action in s["actions"]]
    return statement["resources"]


@pytest.mark.parametrize(
    ("action", "local", "kind"),
    [
        ("ecs:UpdateService", "service_arns", "service"),
        ("ecs:DescribeServices", "service_arns", "service"),
        ("ecs:DescribeTasks", "task_arns", "task"),
        ("ecs:DescribeContainerInstances", "instance_arns", "container-instance"),
    ],
)
def test_ecs_actions_are_limited_to_the_clusters(action: str, local: str, kind: str) -> None:
    assert _resources_for(action) == f"${{local.{local}}}"
    pattern = (
        f'${{[for cluster in var.clusters : "${{local.ecs_arn_prefix}}:{kind}/${{cluster}}/*"]}}'
    )
    assert locals_()[local] == pattern
    assert locals_()["ecs_arn_prefix"] == (
        "arn:${local.partition}:ecs:${local.region}:${local.account_id}"
    )


def test_table_actions_are_limited_to_the_two_tables() -> None:
    [statement] = [s for s in all_statements() if s["sid"] == "Tables"]
    assert {a.split(":")[0] for a in statement["actions"]} == {"dynamodb"}
    assert actions_of([statement]) == {a for a in LAMBDA_ACTIONS if a.startswith("dynamodb:")}
    assert statement["resources"] == [
        "${aws_dynamodb_table.config.arn}",
        "${aws_dynamodb_table.state.arn}",
    ]


def test_logs_are_limited_to_the_function_log_group() -> None:
    assert _resources_for("logs:PutLogEvents") == ["${aws_cloudwatch_log_group.tick.arn}:*"]
    assert _resources_for("logs:CreateLogStream") == ["${aws_cloudwatch_log_group.tick.arn}:*"]


def test_target_registration_is_limited_to_target_groups() -> None:
    assert _resources_for("elasticloadbalancing:RegisterTargets") == "${local.target_group_arns}"
    assert _resources_for("elasticloadbalancing:DeregisterTargets") == "${local.target_group_arns}"
    assert locals_()["target_group_all"] == (
        "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}"
        ":targetgroup/*"
    )


def test_the_role_is_for_lambda_only() -> None:
    trust = first(typed("data", "aws_iam_policy_document")["execution_trust"]["statement"])
    assert trust["actions"] == ["sts:AssumeRole"]
    assert first(trust["principals"]) == {
        "type": "Service",
        "identifiers": ["lambda.amazonaws.com"],
    }
    role = typed("resource", "aws_iam_role")["execution"]
    assert "managed_policy_arns" not in role, (
        "no managed policy: they grant more than the catalogue"
    )
    policies = typed("resource", "aws_iam_role_policy")
    attached = [p for p in policies.values() if p["role"] == "${aws_iam_role.execution.id}"]
    assert [p["policy"] for p in attached] == ["${data.aws_iam_policy_document.execution.json}"]
    assert not typed("resource", "aws_iam_role_policy_attachment")
