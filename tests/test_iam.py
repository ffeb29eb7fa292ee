"""Least privilege, proven against the code.

The execution role in ``infra/iam.tf`` (with the ECS, Application Auto Scaling and ELB statements
of ``infra/modules/ecs-access``) must allow exactly the actions of the operations the engine
calls from the Lambda (``engine.aws.operations``, ``lambda_=True``) plus the two CloudWatch Logs
actions the runtime needs; ``engine.aws.clients`` refuses every call outside that catalogue, so
the role covers every call the engine can make and nothing more. The role in each target
account (``infra/modules/target-account-role``) allows the catalogue's ECS, Application Auto
Scaling and ELB operations only, less ``ModifyRule``: wake on request works in teiji's own
account only. The wake function (``infra/wake.tf``) has a role of its own: the tick's grants in
teiji's own account and region, and on the config table the override items alone.

These checks read the HCL (no terraform needed). Where a terraform binary and a provider mirror
exist, ``make iac`` also plans the policy with a mock provider and asserts the planned document
(``infra/tests/policy.tftest.hcl``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from engine.aws.operations import DYNAMODB_WRITES, OPERATIONS
from tests.test_infra import INFRA, blocks, first, locals_, parse, typed

ECS_ACCESS = INFRA / "modules" / "ecs-access" / "main.tf"
TARGET_ROLE = INFRA / "modules" / "target-account-role" / "main.tf"

LOGS_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents"})
LAMBDA_ACTIONS = frozenset(op.iam_action for op in OPERATIONS if op.lambda_)
WRITE_ACTIONS = frozenset(op.iam_action for op in OPERATIONS if op.write) | LOGS_ACTIONS
# What a tick calls in a target account: the ECS, Application Auto Scaling and ELB operations.
TARGET_SERVICES = ("ecs", "application-autoscaling", "elbv2")
TARGET_ACTIONS = frozenset(
    op.iam_action for op in OPERATIONS if op.lambda_ and op.service in TARGET_SERVICES
)
KMS_TABLE = frozenset({"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"})
# What the edits function's event source mapping calls with the role (infra/streams.tf), not the
# engine: it reads the config table's stream and sends a batch it gave up on to the queue.
STREAM_READS = frozenset(
    {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    }
)
STREAM_ACTIONS = STREAM_READS | {"sqs:SendMessage"}

# Statements of modules/ecs-access that exist only when a variable is set, as CONDITIONAL.
ECS_CONDITIONAL = {
    # Wake on request: the listener rules of the load balancers with a wake target group.
    "SwapWakeRules": (
        "${length(var.wake_load_balancer_arns) > 0}",
        frozenset({"elasticloadbalancing:ModifyRule"}),
    ),
}
# What the wake function never calls: it acts in teiji's own account and region only.
CROSS_ACCOUNT = frozenset({"sts:AssumeRole", "ssm:GetParameter"})
# The tick's own account id: for opt-in by tag over the allowed accounts, which the wake
# function (one named service at a time) never looks through.
TAG_SCOPES = frozenset({"sts:GetCallerIdentity"})
# What the wake function calls beyond the tick's calls: its keep-awake run reads the load
# balancers' RequestCount (engine.wake_keep_run), a CLI-only operation for the other roles.
WAKE_KEEP_ACTIONS = frozenset({"cloudwatch:GetMetricData"})

# Statements that exist only when a variable is set: key -> (the enabling expression, actions).
CONDITIONAL = {
    "AssumeRole": (
        "${length(local.other_accounts) > 0 && var.organization_id == null}",
        frozenset({"sts:AssumeRole"}),
    ),
    "AssumeRoleInOrganization": (
        "${length(local.other_accounts) > 0 && var.organization_id != null}",
        frozenset({"sts:AssumeRole"}),
    ),
    "ReadExternalIds": ("${length(local.other_accounts) > 0}", frozenset({"ssm:GetParameter"})),
    "ExternalIdKeyThroughSsm": (
        "${length(local.other_accounts) > 0 && var.external_id_kms_key_arn != null}",
        frozenset({"kms:Decrypt"}),
    ),
    "TableKeyThroughDynamoDB": ("${var.table_kms_key_arn != null}", KMS_TABLE),
    "PublishEvents": ('${var.event_bus_name != ""}', frozenset({"events:PutEvents"})),
    "ReadConfigStream": ("${var.stream_edits}", STREAM_READS),
    "EditsFailedQueue": ("${var.stream_edits}", frozenset({"sqs:SendMessage"})),
    "WriteEditsLogs": ("${var.stream_edits}", LOGS_ACTIONS),
}

# Actions that may be granted on "*": the API offers no resource-level permission, or (ListTasks)
# it authorizes a cluster-wide listing against "*" and a condition narrows it.
READ_ON_ANY_RESOURCE = {
    "application-autoscaling:DescribeScalableTargets": "no resource-level permission",
    "elasticloadbalancing:DescribeTargetHealth": "no resource-level permission",
    "elasticloadbalancing:DescribeListeners": "no resource-level permission",
    "elasticloadbalancing:DescribeRules": "no resource-level permission",
    "elasticloadbalancing:DescribeTargetGroups": "no resource-level permission",
    "ecs:ListTasks": "listing without containerInstance is authorized on '*'; ecs:cluster narrows",
    "ecs:ListServices": "a listing is authorized on '*'; ecs:cluster narrows it",
    "ecs:DescribeTaskDefinition": "no resource-level permission (aws/containers-roadmap#929)",
    "cloudwatch:GetMetricData": "no resource-level permission",
    "sts:GetCallerIdentity": "no resource, and no permission needed",
}
REGIONS_ONLY = {"StringEquals": {"aws:RequestedRegion": "${var.regions}"}}
# Write actions that may be granted on "*", each only with conditions.
WRITE_ON_ANY_RESOURCE = {
    # A scalable target's ARN ends in a random id, unknown before it exists; the
    # service-namespace and scalable-dimension conditions restrict it to ECS desired counts,
    # aws:RequestedRegion to the allowed regions.
    "application-autoscaling:RegisterScalableTarget": {
        "StringEquals": {
            "aws:RequestedRegion": "${var.regions}",
            "application-autoscaling:service-namespace": ["ecs"],
            "application-autoscaling:scalable-dimension": ["ecs:service:DesiredCount"],
        }
    },
}


# Reading the policy ---------------------------------------------------------------------------
def _module_locals(path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry in parse(path).get("locals", []):
        merged.update(entry)
    return merged


def ecs_unconditional() -> list[dict[str, Any]]:
    """The ECS, Application Auto Scaling and ELB statements every role has (one of the repair
    variants always)."""
    found = _module_locals(ECS_ACCESS)
    always: list[dict[str, Any]] = found["always_statements"]
    return always + list(found["repair_variants"].values())


def ecs_conditional() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = _module_locals(ECS_ACCESS)["wake_variants"]
    return found


def ecs_statements() -> list[dict[str, Any]]:
    """The ECS, Application Auto Scaling and ELB statements, every variant of each."""
    return ecs_unconditional() + list(ecs_conditional().values())


def static_statements() -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = locals_()["execution_statements"]
    return statements + ecs_unconditional()


def conditional_statements() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = locals_()["execution_conditional"]
    return found


def all_statements() -> list[dict[str, Any]]:
    return (
        static_statements()
        + list(conditional_statements().values())
        + list(ecs_conditional().values())
    )


def wake_statements() -> list[dict[str, Any]]:
    """The wake role's statements, every variant of each (its conditional ones are the
    execution role's of the same key)."""
    own: list[dict[str, Any]] = locals_()["wake_statements"]
    keep: list[dict[str, Any]] = locals_()["wake_keep_statements"]
    shared = [conditional_statements()[key] for key in locals_()["wake_conditional"]]
    return own + keep + ecs_statements() + shared


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in statement["Action"]}


def by_sid(sid: str) -> list[dict[str, Any]]:
    found = [s for s in all_statements() if s["Sid"] == sid]
    assert found, sid
    return found


# The action set --------------------------------------------------------------------------------
def test_static_actions_are_exactly_the_lambda_operations_and_logs() -> None:
    conditional = set().union(*(actions for _, actions in (CONDITIONAL | ECS_CONDITIONAL).values()))
    expected = (LAMBDA_ACTIONS - conditional) | LOGS_ACTIONS
    assert actions_of(static_statements()) == expected


def test_all_actions_are_the_catalogue_logs_and_the_keys() -> None:
    assert (
        actions_of(all_statements()) == LAMBDA_ACTIONS | LOGS_ACTIONS | KMS_TABLE | STREAM_ACTIONS
    )


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


def test_update_item_is_neither_called_nor_granted() -> None:
    assert "dynamodb:UpdateItem" not in {op.iam_action for op in OPERATIONS}
    assert "dynamodb:UpdateItem" not in actions_of(all_statements())


@pytest.mark.parametrize(("key", "expected"), list(CONDITIONAL.items()))
def test_conditional_statements_exist_only_when_their_variable_is_set(
    key: str, expected: tuple[str, frozenset[str]]
) -> None:
    enabling, actions = expected
    assert locals_()["execution_enabled"][key] == enabling
    assert set(conditional_statements()[key]["Action"]) == actions
    assert set(locals_()["execution_enabled"]) == set(conditional_statements())


@pytest.mark.parametrize(("key", "expected"), list(ECS_CONDITIONAL.items()))
def test_ecs_access_statements_exist_only_when_their_variable_is_set(
    key: str, expected: tuple[str, frozenset[str]]
) -> None:
    enabling, actions = expected
    found = _module_locals(ECS_ACCESS)
    assert found["wake_enabled"][key] == enabling
    assert set(ecs_conditional()[key]["Action"]) == actions
    assert set(found["wake_enabled"]) == set(ecs_conditional())
    assert "local.wake_variants : statement if local.wake_enabled[name]" in found["statements"]


def test_the_policy_is_every_statement_with_the_enabled_conditional_ones() -> None:
    policy = locals_()["execution_policy"]
    assert "local.execution_statements" in policy
    assert "module.ecs_access.statements" in policy
    assert "local.execution_conditional : statement if local.execution_enabled[sid]" in policy


def test_actions_are_real_api_operations() -> None:
    """A typo in an action would grant nothing; every action must name an API operation."""
    session = botocore.session.get_session()
    prefixes = {"elasticloadbalancing": "elbv2"}
    for action in sorted(actions_of(all_statements())):
        prefix, _, name = action.partition(":")
        service = "dynamodbstreams" if action in STREAM_READS else prefixes.get(prefix, prefix)
        model = session.get_service_model(service)
        assert name in model.operation_names, f"{action} is not an operation of {service}"


# Who may be reached ------------------------------------------------------------------------------
def test_assume_role_names_exactly_the_role_in_each_other_allowed_account() -> None:
    for statement in by_sid("AssumeRoleInOtherAccounts"):
        assert statement["Action"] == ["sts:AssumeRole"]
        assert statement["Resource"] == "${local.target_role_arns}"
    assert locals_()["target_role_arns"] == (
        '${[for account in local.other_accounts : "arn:${local.partition}:iam::${account}:role/'
        '${coalesce(var.role_name, "-")}"]}'
    )
    assert locals_()["other_accounts"] == (
        "${[for account in local.allowed_accounts : account if account != local.account_id]}"
    )
    assert "sts:AssumeRole" not in actions_of(static_statements())


def test_an_organization_holds_assume_role_to_its_accounts() -> None:
    statement = conditional_statements()["AssumeRoleInOrganization"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:ResourceOrgID": ['${coalesce(var.organization_id, "-")}']}
    }


def test_external_ids_are_one_parameter_per_other_account() -> None:
    [statement] = by_sid("ReadExternalIds")
    assert statement["Action"] == ["ssm:GetParameter"]
    assert statement["Resource"] == (
        '${[for account in local.other_accounts : "${local.external_id_parameter_arn}/${account}"]}'
    )
    assert "TEIJI_EXTERNAL_ID" not in locals_()["lambda_environment"]


def test_keys_are_usable_only_through_their_service() -> None:
    [table] = by_sid("TableKeyThroughDynamoDB")
    assert table["Condition"] == {
        "StringEquals": {"kms:ViaService": ["dynamodb.${local.region}.amazonaws.com"]}
    }
    [ssm] = by_sid("ExternalIdKeyThroughSsm")
    assert ssm["Condition"] == {
        "StringEquals": {"kms:ViaService": ["ssm.${local.region}.amazonaws.com"]}
    }


# Wildcards and resources ------------------------------------------------------------------------
def test_no_wildcard_actions_anywhere() -> None:
    for statement in all_statements() + wake_statements():
        assert "NotAction" not in statement, f"{statement['Sid']}: NotAction grants too much"
        assert "NotResource" not in statement, f"{statement['Sid']}: NotResource grants too much"
        for action in statement["Action"]:
            assert "*" not in action and "?" not in action, f"wildcard action {action}"
        assert statement["Effect"] == "Allow"


def test_any_resource_only_where_the_api_allows_nothing_narrower() -> None:
    for statement in all_statements() + wake_statements():
        if "*" not in statement["Resource"]:
            continue
        assert statement["Resource"] == ["*"], statement["Sid"]
        for action in statement["Action"]:
            if action in WRITE_ACTIONS:
                assert action in WRITE_ON_ANY_RESOURCE, f"write {action} on '*'"
                assert statement["Condition"] == WRITE_ON_ANY_RESOURCE[action], action
            else:
                assert action in READ_ON_ANY_RESOURCE, f"{action} on '*' though it can be narrowed"


@pytest.mark.parametrize(
    "sid", ["DescribeScalableTargets", "DescribeTargetHealth", "RegisterEcsScalableTargets"]
)
def test_grants_on_any_resource_are_held_to_the_allowed_regions(sid: str) -> None:
    [statement] = by_sid(sid)
    assert statement["Condition"]["StringEquals"]["aws:RequestedRegion"] == "${var.regions}"


def test_list_tasks_is_limited_to_the_clusters_of_the_allowed_regions() -> None:
    [statement] = by_sid("ListTasksInClusters")
    assert statement["Action"] == ["ecs:ListTasks"]
    assert statement["Condition"] == {"ArnLike": {"ecs:cluster": "${local.cluster_arns}"}}


@pytest.mark.parametrize(
    ("action", "local", "kind"),
    [
        ("ecs:UpdateService", "service_arns", "service"),
        ("ecs:DescribeServices", "service_arns", "service"),
        ("ecs:DescribeTasks", "task_arns", "task"),
        ("ecs:DescribeContainerInstances", "instance_arns", "container-instance"),
    ],
)
def test_ecs_actions_are_limited_to_the_clusters_of_the_allowed_regions(
    action: str, local: str, kind: str
) -> None:
    [statement] = [s for s in ecs_statements() if action in s["Action"]]
    assert statement["Resource"] == f"${{local.{local}}}"
    found = _module_locals(ECS_ACCESS)
    suffix = "/*" if kind != "cluster" else ""
    assert found[local] == (
        f'${{flatten([for p in local.ecs_prefixes : [for c in local.clusters : "${{p}}:{kind}/'
        f'${{c}}{suffix}"]])}}'
    )
    assert found["ecs_prefixes"] == (
        '${[for region in var.regions : "arn:${var.partition}:ecs:${region}:${var.account_id}"]}'
    )


def test_the_root_module_passes_exactly_the_allowed_regions() -> None:
    module = parse(INFRA / "iam.tf")["module"][0]["ecs_access"]
    assert module["regions"] == "${local.allowed_regions}"
    assert module["account_id"] == "${local.account_id}"
    assert module["wake_load_balancer_arns"] == "${var.wake_load_balancers}"
    assert locals_()["allowed_regions"] == (
        "${distinct(concat([local.region], var.allowed_regions))}"
    )


def test_the_config_table_is_read_only_and_the_state_table_read_write() -> None:
    config_arn, state_arn = "${aws_dynamodb_table.config.arn}", "${aws_dynamodb_table.state.arn}"
    dynamodb = {a for a in LAMBDA_ACTIONS if a.startswith("dynamodb:")}
    for statement in all_statements():
        if config_arn in statement["Resource"]:
            assert not set(statement["Action"]) & DYNAMODB_WRITES, statement["Sid"]
    [config] = by_sid("ReadConfigTable")
    assert config["Resource"] == [config_arn]
    assert set(config["Action"]) == dynamodb - DYNAMODB_WRITES
    [state] = by_sid("StateTable")
    assert state["Resource"] == [state_arn]
    assert set(state["Action"]) == dynamodb


def test_logs_are_limited_to_the_function_log_group() -> None:
    [statement] = by_sid("WriteOwnLogs")
    assert statement["Resource"] == ["${aws_cloudwatch_log_group.tick.arn}:*"]


def test_target_repair_is_the_list_given_or_only_tagged_groups() -> None:
    variants = _module_locals(ECS_ACCESS)["repair_variants"]
    assert variants["listed"]["Resource"] == '${coalesce(var.target_group_arns, ["-"])}'
    assert "Condition" not in variants["listed"]
    tagged = variants["tagged"]
    assert tagged["Resource"] == "${local.target_groups_in_regions}"
    assert tagged["Condition"] == {"StringEquals": {"aws:ResourceTag/teiji:repair": ["true"]}}
    assert _module_locals(ECS_ACCESS)["repair_variant"] == (
        '${var.target_group_arns == null ? "tagged" : "listed"}'
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
    # The fan-out worker's queue and counter (infra/fanout.tf, infra/tests/fanout.tftest.hcl) are
    # added only with fanout = true.
    assert [p["policy"] for p in attached if "count" not in p] == ["${local.execution_policy}"]
    assert [p["count"] for p in attached if "count" in p] == ["${var.fanout ? 1 : 0}"]
    assert not typed("resource", "aws_iam_role_policy_attachment")


# Wake on request: listener rules ----------------------------------------------------------------
def _wake_rule_pattern(balancer_arn: str) -> str:
    """modules/ecs-access's wake_rule_arns for one load balancer, in Python (the expression is
    asserted below, so the two cannot drift)."""
    return balancer_arn.replace(":loadbalancer/app/", ":listener-rule/app/") + "/*"


def test_modify_rule_is_granted_on_the_listed_load_balancers_rules_only() -> None:
    [statement] = [s for s in all_statements() if "elasticloadbalancing:ModifyRule" in s["Action"]]
    assert statement["Sid"] == "SwapWakeRules"
    assert statement["Action"] == ["elasticloadbalancing:ModifyRule"]
    assert statement["Resource"] == "${local.wake_rule_arns}"
    assert _module_locals(ECS_ACCESS)["wake_rule_arns"] == (
        '${[for arn in var.wake_load_balancer_arns : "${replace(arn, ":loadbalancer/app/", '
        '":listener-rule/app/")}/*"]}'
    )
    variable = blocks("variable", ECS_ACCESS.parent)["wake_load_balancer_arns"]
    assert variable["default"] == []


@pytest.mark.parametrize(
    ("rule", "covered"),
    [
        ("listener-rule/app/stg-web/0123456789abcdef/1111111111111111/2222222222222222", True),
        # Another load balancer of the same name prefix, or of another id: not covered.
        ("listener-rule/app/stg-web-2/0123456789abcdef/1111111111111111/2222222222222222", False),
        ("listener-rule/app/stg-web/fedcba9876543210/1111111111111111/2222222222222222", False),
        ("listener-rule/net/stg-web/0123456789abcdef/1111111111111111/2222222222222222", False),
    ],
)
def test_the_rule_pattern_covers_exactly_the_rules_the_engine_swaps(
    rule: str, covered: bool
) -> None:
    """A rule the engine counts as the load balancer's (engine.wake_plan.balancer_of) is one the
    policy lets it modify, and no other load balancer's rule is."""
    from fnmatch import fnmatchcase

    from engine.wake_plan import balancer_of

    head = "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:"
    balancer = f"{head}loadbalancer/app/stg-web/0123456789abcdef"
    arn = head + rule
    assert fnmatchcase(arn, _wake_rule_pattern(balancer)) is covered
    assert (balancer_of(arn) == balancer) is covered


# The wake function's role -------------------------------------------------------------------------
def test_the_wake_role_allows_the_tick_calls_of_its_own_account_and_nothing_more() -> None:
    assert actions_of(wake_statements()) == (
        (LAMBDA_ACTIONS - CROSS_ACCOUNT - TAG_SCOPES) | LOGS_ACTIONS | KMS_TABLE | WAKE_KEEP_ACTIONS
    )
    # The metrics only with the keep-awake run on, and never for the execution role.
    assert "local.wake_keep_on ? local.wake_keep_statements : []" in locals_()["wake_policy"]
    assert locals_()["wake_keep_on"] == "${local.wake_on && var.wake_keep_minutes > 0}"
    assert actions_of(locals_()["wake_keep_statements"]) == WAKE_KEEP_ACTIONS
    assert not WAKE_KEEP_ACTIONS & actions_of(all_statements())
    assert locals_()["wake_conditional"] == {
        key: f"${{local.execution_conditional.{key}}}"
        for key in ("PublishEvents", "TableKeyThroughDynamoDB")
    }
    assert locals_()["wake_enabled"] == {
        key: f"${{local.execution_enabled.{key}}}" for key in locals_()["wake_conditional"]
    }
    policy = locals_()["wake_policy"]
    assert "local.wake_statements" in policy
    assert "module.ecs_access_wake.statements" in policy
    assert "local.wake_conditional : statement if local.wake_enabled[sid]" in policy


def test_the_wake_role_acts_in_this_account_and_region_only() -> None:
    module = blocks("module")["ecs_access_wake"]
    assert module["source"] == "./modules/ecs-access"
    assert module["account_id"] == "${local.account_id}"
    assert module["regions"] == ["${local.region}"]
    assert module["clusters"] == "${var.clusters}"
    assert module["wake_load_balancer_arns"] == "${var.wake_load_balancers}"


def test_the_wake_role_writes_override_items_of_the_config_table_only() -> None:
    from engine.store import item_key
    from schemas.documents import Override

    config_arn = "${aws_dynamodb_table.config.arn}"
    writes = [
        s
        for s in wake_statements()
        if config_arn in s["Resource"] and set(s["Action"]) & DYNAMODB_WRITES
    ]
    assert [s["Sid"] for s in writes] == ["WriteOverrides"]
    [statement] = writes
    assert statement["Action"] == ["dynamodb:PutItem"]
    assert statement["Resource"] == [config_arn]
    assert statement["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["override"]}
    }
    # The partition key the store gives an override is the one the condition allows.
    until = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
    override = Override(service="web/api-stg", state="running", until=until, reason="woken")
    assert item_key(override)[0] == "override"
    [read] = [s for s in locals_()["wake_statements"] if s["Sid"] == "ReadConfigTable"]
    assert read["Resource"] == [config_arn]
    assert not set(read["Action"]) & DYNAMODB_WRITES


def test_the_wake_role_is_for_lambda_only_and_its_own() -> None:
    role = typed("resource", "aws_iam_role")["wake"]
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.execution_trust.json}"
    assert "managed_policy_arns" not in role
    policies = typed("resource", "aws_iam_role_policy")
    attached = [p for p in policies.values() if p["role"] == "${aws_iam_role.wake[0].id}"]
    assert [p["policy"] for p in attached] == ["${local.wake_policy}"]
    function = typed("resource", "aws_lambda_function")["wake"]
    assert function["role"] == "${aws_iam_role.wake[0].arn}"
    [logs] = [s for s in locals_()["wake_statements"] if s["Sid"] == "WriteOwnLogs"]
    assert logs["Resource"] == ['${coalesce(one(aws_cloudwatch_log_group.wake[*].arn), "-")}:*']


# The role in a target account -----------------------------------------------------------------
def test_the_target_role_allows_exactly_what_a_tick_calls_there() -> None:
    assert actions_of(ecs_statements()) == TARGET_ACTIONS
    module = parse(TARGET_ROLE)
    # Wake on request never works in a target account (a Lambda target group must be in its
    # function's account): the role passes no load balancer, so it has no ModifyRule.
    assert "wake_load_balancer_arns" not in module["module"][0]["ecs_access"]
    [policy] = [
        entry["aws_iam_role_policy"]["target"]
        for entry in module["resource"]
        if "aws_iam_role_policy" in entry
    ]
    assert policy["policy"] == (
        '${jsonencode({Version = "2012-10-17", Statement = module.ecs_access.statements})}'
    )
    assert module["module"][0]["ecs_access"]["source"] == "../ecs-access"


def test_the_target_role_trusts_teiji_with_its_external_id_only() -> None:
    module = parse(TARGET_ROLE)
    [role] = [
        entry["aws_iam_role"]["target"] for entry in module["resource"] if "aws_iam_role" in entry
    ]
    trust = role["assume_role_policy"]
    assert "Principal = {AWS = var.teiji_role_arn}" in trust
    assert 'Condition = {StringEquals = {"sts:ExternalId" = var.external_id}}' in trust
    variables = {name for entry in module["variable"] for name in entry}
    assert {"teiji_role_arn", "external_id", "regions"} <= variables
