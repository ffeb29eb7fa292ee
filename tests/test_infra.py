"""The Terraform module agrees with the code it deploys.

Table keys and the TTL attribute match what ``engine.store`` writes, the environment names are
the ones ``engine.config`` reads, the handler exists, and the tick is wired the way the engine
assumes (quarter-hour cron, no retries, one concurrent run per shard). The files must parse
(python-hcl2) and be formatted (``terraform fmt``, when the binary is installed).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from engine.config import ENV_VARS

INFRA = Path(__file__).resolve().parent.parent / "infra"
EXAMPLE = INFRA / "examples" / "basic"
TF_FILES = (
    sorted(INFRA.glob("*.tf"))
    + sorted(INFRA.glob("modules/*/*.tf"))
    + sorted(INFRA.glob("examples/*/*.tf"))
)


# Loading -------------------------------------------------------------------------------------
# Environment variables the Lambda sets for its runtime (glibc), not settings teiji reads.
RUNTIME_TUNABLES = ("MALLOC_ARENA_MAX",)


def _plain(value: Any) -> Any:
    """python-hcl2 output without its quoting and bookkeeping (the format differs by version)."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        parsed: dict[str, Any] = _plain(hcl2.load(handle))
    return parsed


def blocks(kind: str, directory: Path = INFRA) -> dict[str, Any]:
    """Every ``kind`` block of the module (``variable``, ``output``, ``locals`` ...) by name."""
    found: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in parse(path).get(kind, []):
            found.update(entry)
    return found


def typed(kind: str, type_name: str, directory: Path = INFRA) -> dict[str, Any]:
    """``resource``/``data`` blocks of one type, by name."""
    found: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in parse(path).get(kind, []):
            found.update(entry.get(type_name, {}))
    return found


def resource(type_name: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = typed("resource", type_name)[name]
    return body


def locals_() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted(INFRA.glob("*.tf")):
        for entry in parse(path).get("locals", []):
            merged.update(entry)
    return merged


def first(block: Any) -> dict[str, Any]:
    """A nested block (a list of one dict in hcl2's output)."""
    assert isinstance(block, list) and len(block) == 1, block
    inner: dict[str, Any] = block[0]
    return inner


# Files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_terraform_file_parses(path: Path) -> None:
    assert parse(path), f"{path} is empty"


def test_module_has_the_expected_files() -> None:
    names = {p.name for p in INFRA.glob("*.tf")}
    assert {"versions.tf", "variables.tf", "outputs.tf", "iam.tf", "lambda.tf"} <= names
    assert (EXAMPLE / "main.tf").is_file()


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_files_are_formatted() -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-list=true", str(INFRA)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive infra`:\n{result.stdout}"


def test_every_checkov_skip_gives_a_reason() -> None:
    skips = [
        (path.name, match)
        for path in TF_FILES
        for match in re.finditer(r"#\s*checkov:skip=([^\n]*)", path.read_text(encoding="utf-8"))
    ]
    assert skips, "expected the justified skips in lambda.tf"
    for name, match in skips:
        check, _, reason = match.group(1).partition(":")
        assert re.fullmatch(r"CKV2?_AWS_\d+", check), f"{name}: {match.group(0)}"
        assert len(reason.strip()) >= 30, f"{name}: {check} needs a reason that explains the skip"


# Tables --------------------------------------------------------------------------------------
def _key_schema(table: dict[str, Any]) -> dict[str, Any]:
    return {
        "hash": table["hash_key"],
        "range": table["range_key"],
        "attributes": sorted((a["name"], a["type"]) for a in table["attribute"]),
    }


def _code_tables() -> dict[str, Any]:
    """What ``engine.store.init_tables`` (the code's own definition) creates."""
    import boto3
    from moto import mock_aws

    from engine.aws.clients import Clients
    from engine.config import Settings
    from engine.store import init_tables

    settings = Settings(config_table="c", state_table="s")
    with mock_aws():
        init_tables(Clients(region="ap-northeast-1"), settings)
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        tables = {}
        for name in ("c", "s"):
            desc = client.describe_table(TableName=name)["Table"]
            keys = {k["KeyType"]: k["AttributeName"] for k in desc["KeySchema"]}
            tables[name] = {
                "hash": keys["HASH"],
                "range": keys["RANGE"],
                "attributes": sorted(
                    (a["AttributeName"], a["AttributeType"]) for a in desc["AttributeDefinitions"]
                ),
            }
        ttl = client.describe_time_to_live(TableName="c")["TimeToLiveDescription"]
    return {"config": tables["c"], "state": tables["s"], "ttl": ttl["AttributeName"]}


def test_table_keys_match_the_store() -> None:
    code = _code_tables()
    for name in ("config", "state"):
        assert _key_schema(resource("aws_dynamodb_table", name)) == code[name], name


def test_config_table_ttl_matches_the_attribute_the_store_writes() -> None:
    from engine.store import item_from_document
    from schemas.documents import Override

    ttl = first(resource("aws_dynamodb_table", "config")["ttl"])
    assert ttl["enabled"] is True
    assert ttl["attribute_name"] == _code_tables()["ttl"]

    until = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    override = Override(
        service="example-cluster/example-service-stg",
        state="running",
        until=until,
        reason="release tonight",
    )
    item = item_from_document(override)
    expires = item[ttl["attribute_name"]]
    assert isinstance(expires, int), "TTL needs a number of epoch seconds"
    assert expires >= int(until.timestamp()), "the item must outlive the override"
    assert expires <= int((until + timedelta(days=7)).timestamp())


@pytest.mark.parametrize("name", ["config", "state"])
def test_tables_are_on_demand_recoverable_and_encrypted(name: str) -> None:
    table = resource("aws_dynamodb_table", name)
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert first(table["point_in_time_recovery"])["enabled"] is True
    sse = first(table["server_side_encryption"])
    assert sse["enabled"] is True
    assert sse["kms_key_arn"] == "${var.table_kms_key_arn}"
    assert table["deletion_protection_enabled"] == "${var.deletion_protection}"


# Lambda --------------------------------------------------------------------------------------
# Every function of the module and its handler: the tick, the fan-out worker, the edits
# function and the wake function, one zip.
FUNCTIONS = {
    "tick": "engine.handler.lambda_handler",
    "worker": "engine.handler.fanout_worker_handler",
    "edits": "engine.handler.stream_handler",
    "wake": "engine.handler.wake_handler",
}
# How each function passes the settings on: every one of them, null and empty values left out.
FUNCTION_ENVIRONMENT = (
    "${{for name, value in local.lambda_environment : "
    'name => value if value != null && value != ""}}'
)


def test_the_functions_are_the_known_ones() -> None:
    functions = typed("resource", "aws_lambda_function")
    assert {name: f["handler"] for name, f in functions.items()} == FUNCTIONS


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_handler_exists(name: str) -> None:
    handler = resource("aws_lambda_function", name)["handler"]
    module_name, _, function_name = handler.rpartition(".")
    if importlib.util.find_spec(module_name) is None:
        pytest.fail(f"the Lambda handler module {module_name} does not exist")
    function = getattr(importlib.import_module(module_name), function_name, None)
    assert callable(function), f"{handler} is not a function"
    assert len(inspect.signature(function).parameters) == 2, "a handler takes (event, context)"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_reads_every_setting(name: str) -> None:
    """A function left without one of the settings (TEIJI_WAKE_TARGET_GROUPS, say) would act
    on a different deployment: the worker would leave a sleeping service's rules alone."""
    function = resource("aws_lambda_function", name)
    variables = first(function["environment"])["variables"]
    if name == "worker":  # one scope per worker: all its threads serve that one group
        worker_only = "{TEIJI_CONCURRENCY = tostring(var.fanout_worker_concurrency)}"
        assert variables == f"${{merge({FUNCTION_ENVIRONMENT[2:-1]}, {worker_only})}}"
    else:
        assert variables == FUNCTION_ENVIRONMENT
    assert function["filename"] == "${local.zip_path}"
    assert function["source_code_hash"] == "${filebase64sha256(local.zip_path)}"


def test_environment_names_are_the_ones_the_engine_reads() -> None:
    environment = locals_()["lambda_environment"]
    names = set(environment) - set(RUNTIME_TUNABLES)
    unknown = names - set(ENV_VARS)
    assert not unknown, f"Terraform sets variables nothing reads: {sorted(unknown)}"
    missing = set(ENV_VARS) - names
    assert not missing, f"engine.config reads variables Terraform never sets: {sorted(missing)}"
    assert environment["TEIJI_CONFIG_TABLE"] == "${aws_dynamodb_table.config.name}"
    assert environment["TEIJI_STATE_TABLE"] == "${aws_dynamodb_table.state.name}"
    function = resource("aws_lambda_function", "tick")
    assert "local.lambda_environment" in first(function["environment"])["variables"]


def test_the_lambda_runs_with_the_malloc_setting_the_bench_measures() -> None:
    # Read by glibc, not by teiji: bench/rss.py measures the tick's peak RSS with it.
    from bench.rss import LAMBDA_MALLOC

    environment = locals_()["lambda_environment"]
    assert {name: environment.get(name) for name in LAMBDA_MALLOC} == LAMBDA_MALLOC
    assert set(LAMBDA_MALLOC) == set(RUNTIME_TUNABLES)


def test_environment_carries_the_shards_and_the_default_timezone() -> None:
    environment = locals_()["lambda_environment"]
    # A tick given no shard takes the leases of TEIJI_SHARDS shards: the same count the
    # schedules send, or a terminal's tick and a scheduled one would not contend.
    assert environment["TEIJI_SHARDS"] == "${tostring(var.shards)}"
    assert environment["TEIJI_DEFAULT_TIMEZONE"] == "${var.default_timezone}"


def test_variable_defaults_are_settings_the_engine_accepts() -> None:
    from engine.config import Settings

    variables = blocks("variable")
    settings = Settings.from_env(
        {
            "TEIJI_DEFAULT_TIMEZONE": variables["default_timezone"]["default"],
            "TEIJI_SHARDS": str(variables["shards"]["default"]),
        }
    )
    assert (settings.default_timezone, settings.shards) == ("Asia/Tokyo", 1)
    condition = first(variables["shards"]["validation"])["condition"]
    assert "var.shards <= 50" in condition  # engine.config.MAX_SHARDS


def test_default_timezone_pattern_admits_every_iana_name() -> None:
    import pytz

    condition = first(blocks("variable")["default_timezone"]["validation"])["condition"]
    match = re.search(r'regex\("(.+)", var\.default_timezone\)', condition)
    assert match, condition
    pattern = re.compile(match.group(1).replace("\\\\", "\\"))
    rejected = [name for name in pytz.all_timezones if not pattern.fullmatch(name)]
    assert rejected == []
    for wrong in ("", "Asia Tokyo", "/Tokyo", "Asia/"):
        assert not pattern.fullmatch(wrong), wrong


def test_the_lease_is_short_and_renewed_not_as_long_as_the_timeout() -> None:
    # A dead tick blocks the next for one lease length: two minutes, whatever the timeout.
    lease = locals_()["lambda_environment"]["TEIJI_LEASE_SECONDS"]
    assert int(lease) == 120


def test_runtime_and_architecture_match_the_build_script() -> None:
    spec = importlib.util.spec_from_file_location("build_lambda", INFRA / "build_lambda.py")
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    sys.modules["build_lambda"] = build
    spec.loader.exec_module(build)

    variables = blocks("variable")
    assert variables["runtime"]["default"] == "python3.12"
    assert variables["architecture"]["default"] == "arm64"
    validation = first(variables["runtime"]["validation"])["condition"]
    runtimes = set(re.findall(r"python(3\.\d+)", validation))
    assert runtimes == set(build.PYTHON_VERSIONS) == {"3.11", "3.12"}
    architectures = set(
        re.findall(r"arm64|x86_64", first(variables["architecture"]["validation"])["condition"])
    )
    assert architectures == set(build.ARCHITECTURES)


def test_function_settings() -> None:
    function = resource("aws_lambda_function", "tick")
    assert function["runtime"] == "${var.runtime}"
    assert function["architectures"] == ["${var.architecture}"]
    assert function["timeout"] == "${var.timeout}"
    assert function["memory_size"] == "${var.memory_size}"
    assert function["source_code_hash"] == "${filebase64sha256(local.zip_path)}"
    assert function["reserved_concurrent_executions"] == "${var.shards}"
    variables = blocks("variable")
    assert variables["timeout"]["default"] == 600
    assert "var.timeout <= 900" in first(variables["timeout"]["validation"])["condition"]
    assert variables["memory_size"]["default"] == 1024
    assert variables["shards"]["default"] == 1


def test_async_invocations_are_never_retried() -> None:
    config = resource("aws_lambda_function_event_invoke_config", "tick")
    assert config["maximum_retry_attempts"] == 0
    assert config["maximum_event_age_in_seconds"] == 60


def test_log_group_is_the_one_the_runtime_writes_to() -> None:
    group = resource("aws_cloudwatch_log_group", "tick")
    assert group["name"] == "${local.log_group_name}"
    assert group["retention_in_days"] == "${var.log_retention_days}"
    assert locals_()["log_group_name"] == "/aws/lambda/${local.function_name}"
    assert locals_()["function_name"] == "${var.name_prefix}-tick"


def test_errors_alarm_fires_on_one_failed_tick() -> None:
    alarm = resource("aws_cloudwatch_metric_alarm", "errors")
    assert (alarm["namespace"], alarm["metric_name"]) == ("AWS/Lambda", "Errors")
    assert alarm["threshold"] == 1
    assert alarm["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["statistic"] == "Sum"
    assert alarm["alarm_actions"] == "${local.alarm_topic_arns}"
    topic = resource("aws_sns_topic", "alarms")
    assert topic["count"] == "${var.create_alarm_topic ? 1 : 0}"


# Wake on request -----------------------------------------------------------------------------
WAKE_HEAD = "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:"


def _wake_pattern() -> re.Pattern[str]:
    """The ALB ARN pattern of the variable wake_load_balancers' validation."""
    validation = blocks("variable")["wake_load_balancers"]["validation"][0]["condition"]
    match = re.search(r'regex\("(.+)", arn\)', validation)
    assert match, validation
    return re.compile(match.group(1).replace("\\\\", "\\"))


@pytest.mark.parametrize(
    "balancer",
    [
        WAKE_HEAD + "loadbalancer/app/stg/0123456789abcdef",
        WAKE_HEAD + "loadbalancer/app/a-32-character-load-balancer-nam/0123456789abcdef",
        "arn:aws-cn:elasticloadbalancing:cn-north-1:111111111111:loadbalancer/app/stg/0123456789abcdef",
        WAKE_HEAD + "loadbalancer/net/stg/0123456789abcdef",  # a Network Load Balancer
        WAKE_HEAD + "loadbalancer/app/stg/0123456789ABCDEF",
        WAKE_HEAD + "loadbalancer/app/stg/0123456789abcde",
        WAKE_HEAD + "loadbalancer/app/a-33-character-load-balancer-name/0123456789abcdef",
        WAKE_HEAD + "targetgroup/stg/0123456789abcdef",
        "arn:aws:elasticloadbalancing:ap-northeast-1:1111:loadbalancer/app/stg/0123456789abcdef",
        WAKE_HEAD + "loadbalancer/app/stg/0123456789abcdef/",
        "stg",
    ],
)
def test_wake_load_balancers_admit_exactly_what_the_engine_accepts(balancer: str) -> None:
    """Terraform refuses what the engine would refuse in TEIJI_WAKE_TARGET_GROUPS, at plan
    time, and accepts every ALB ARN it takes."""
    from engine.config import parse_wake_target_groups

    head = balancer.rpartition("loadbalancer/")[0] or WAKE_HEAD
    group = f"{head}targetgroup/teiji-wake-0123456789abcdef/0123456789abcdef"
    try:
        parse_wake_target_groups(f"{balancer}={group}")
        engine_accepts = True
    except ValueError:
        engine_accepts = False
    assert bool(_wake_pattern().fullmatch(balancer)) is engine_accepts


def test_wake_is_off_by_default_and_every_part_follows_the_variable() -> None:
    variables = blocks("variable")
    assert variables["wake_load_balancers"]["default"] == []
    assert locals_()["wake_on"] == "${length(var.wake_load_balancers) > 0}"
    assert resource("aws_lb_target_group", "wake")["for_each"] == "${local.wake_balancers}"
    for type_name in ("aws_lambda_permission", "aws_lb_target_group_attachment"):
        assert resource(type_name, "wake")["for_each"] == "${aws_lb_target_group.wake}", type_name
    for type_name in (
        "aws_lambda_function",
        "aws_cloudwatch_log_group",
        "aws_iam_role",
        "aws_iam_role_policy",
    ):
        assert resource(type_name, "wake")["count"] == "${local.wake_on ? 1 : 0}", type_name


def test_the_setting_pairs_each_load_balancer_with_its_own_target_group() -> None:
    from engine.config import parse_wake_target_groups

    setting = locals_()["lambda_environment"]["TEIJI_WAKE_TARGET_GROUPS"]
    assert setting == (
        '${join(",", [for balancer, group in aws_lb_target_group.wake : '
        '"${balancer}=${group.arn}"])}'
    )
    # Empty (no load balancer) is left out of the environment, which the engine reads as off.
    assert parse_wake_target_groups("") == ()


def test_wake_target_groups_invoke_the_function_and_nothing_checks_their_health() -> None:
    group = resource("aws_lb_target_group", "wake")
    assert group["target_type"] == "lambda"
    # A health check of a Lambda target group invokes the function: it would wake the service.
    assert first(group["health_check"]) == {"enabled": False}
    permission = resource("aws_lambda_permission", "wake")
    assert permission["principal"] == "elasticloadbalancing.amazonaws.com"
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["source_arn"] == "${each.value.arn}"
    attachment = resource("aws_lb_target_group_attachment", "wake")
    assert attachment["target_id"] == "${aws_lambda_function.wake[0].arn}"
    assert attachment["depends_on"] == ["${aws_lambda_permission.wake}"]


def test_wake_target_group_names_fit_and_are_ones_the_engine_accepts() -> None:
    from engine.config import _TARGET_GROUP_ARN

    name = resource("aws_lb_target_group", "wake")["name"]
    assert name == "${substr(var.name_prefix, 0, 10)}-wake-${each.value.id}"
    longest_prefix = "a" * 40  # name_prefix's validation: at most 40 characters
    made = f"{longest_prefix[:10]}-wake-0123456789abcdef"
    assert len(made) == 32  # the most a target group name may have
    assert _TARGET_GROUP_ARN.match(f"{WAKE_HEAD}targetgroup/{made}/0123456789abcdef")
    assert "{0,39}" in first(blocks("variable")["name_prefix"]["validation"])["condition"]


def test_each_load_balancer_must_be_in_this_account_and_region() -> None:
    balancers = locals_()["wake_balancers"]
    assert 'split(":", arn)[3]' in balancers and 'split(":", arn)[4]' in balancers
    [precondition] = first(resource("aws_lb_target_group", "wake")["lifecycle"])["precondition"]
    assert precondition["condition"] == (
        "${each.value.account == local.account_id && each.value.region == local.region}"
    )
    assert "${each.key}" in precondition["error_message"]


def test_wake_function_settings() -> None:
    function = resource("aws_lambda_function", "wake")
    # Someone waits at a browser, and the load balancer's idle timeout is 60 s by default.
    assert function["timeout"] == 30
    assert function["reserved_concurrent_executions"] == "${var.wake_max_concurrency}"
    assert blocks("variable")["wake_max_concurrency"]["default"] == 10
    assert function["runtime"] == "${var.runtime}"
    assert function["architectures"] == ["${var.architecture}"]
    assert (
        first(function["logging_config"])["log_group"] == "${aws_cloudwatch_log_group.wake[0].name}"
    )
    assert locals_()["wake_log_group_name"] == "/aws/lambda/${local.wake_function_name}"


# Scheduler -----------------------------------------------------------------------------------
def test_tick_schedule() -> None:
    schedule = resource("aws_scheduler_schedule", "tick")
    assert schedule["count"] == "${var.shards}"
    assert schedule["schedule_expression"] == "cron(0/15 * * * ? *)"
    assert schedule["schedule_expression_timezone"] == "${var.schedule_expression_timezone}"
    assert blocks("variable")["schedule_expression_timezone"]["default"] == "UTC"
    assert first(schedule["flexible_time_window"])["mode"] == "OFF"
    target = first(schedule["target"])
    assert target["arn"] == "${aws_lambda_function.tick.arn}"
    assert target["role_arn"] == "${aws_iam_role.scheduler.arn}"
    assert target["input"] == "${jsonencode({shard = count.index, shards = var.shards})}"
    retry = first(target["retry_policy"])
    assert retry == {"maximum_retry_attempts": 0, "maximum_event_age_in_seconds": 60}


def test_scheduler_role_may_only_invoke_the_tick() -> None:
    statements = typed("data", "aws_iam_policy_document")["scheduler"]["statement"]
    assert len(statements) == 1
    assert statements[0]["actions"] == ["lambda:InvokeFunction"]
    assert statements[0]["resources"] == ["${aws_lambda_function.tick.arn}"]
    trust = first(typed("data", "aws_iam_policy_document")["scheduler_trust"]["statement"])
    assert first(trust["principals"])["identifiers"] == ["scheduler.amazonaws.com"]


# Variables, outputs, example -------------------------------------------------------------------
def test_every_variable_has_a_type_and_a_description() -> None:
    for name, body in blocks("variable").items():
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("type"), f"variable {name} has no type"


def test_user_facing_variables_exist() -> None:
    expected = {
        "name_prefix",
        "clusters",
        "target_group_arns",
        "lambda_zip_path",
        "runtime",
        "architecture",
        "timeout",
        "memory_size",
        "log_retention_days",
        "default_timezone",
        "dry_run",
        "log_level",
        "protected",
        "max_override",
        "role_name",
        "allowed_accounts",
        "allowed_regions",
        "organization_id",
        "max_desired",
        "external_ids",
        "external_id_parameter_path",
        "shards",
        "schedule_expression_timezone",
        "alarm_sns_topic_arn",
        "create_alarm_topic",
        "table_kms_key_arn",
        "deletion_protection",
        "tags",
        "wake_load_balancers",
        "wake_max_concurrency",
    }
    assert expected <= set(blocks("variable"))
    # ExternalIds go to SSM SecureStrings, never into the function's environment.
    assert blocks("variable")["external_ids"]["sensitive"] is True
    assert "external_id" not in blocks("variable")


def test_access_variables_are_the_engine_settings() -> None:
    """The allow-list and the growth cap reach the engine as the settings it parses."""
    from engine.config import DEFAULT_MAX_DESIRED, MAX_MAX_DESIRED, Settings

    environment = locals_()["lambda_environment"]
    assert environment["TEIJI_ALLOWED_ACCOUNTS"] == '${join(",", local.allowed_accounts)}'
    assert environment["TEIJI_ALLOWED_REGIONS"] == '${join(",", local.allowed_regions)}'
    assert environment["TEIJI_MAX_DESIRED"] == "${tostring(var.max_desired)}"
    assert "local.external_id_parameter_path" in environment["TEIJI_EXTERNAL_ID_PARAMETER"]
    variables = blocks("variable")
    assert variables["max_desired"]["default"] == DEFAULT_MAX_DESIRED
    assert (
        f"var.max_desired <= {MAX_MAX_DESIRED}"
        in first(variables["max_desired"]["validation"])["condition"]
    )
    assert variables["allowed_accounts"]["default"] == []
    assert variables["allowed_regions"]["default"] == []
    assert variables["clusters"]["default"] == ["*"]
    # The patterns Terraform checks are ones the engine accepts (and the engine fails closed).
    access = Settings.from_env(
        {
            "TEIJI_ALLOWED_ACCOUNTS": "111111111111,222222222222",
            "TEIJI_ALLOWED_REGIONS": "ap-northeast-1,us-east-1",
            "TEIJI_ALLOWED_CLUSTERS": "web,batch_1",
            "TEIJI_EXTERNAL_ID_PARAMETER": "/teiji/external-id",
        }
    ).access
    assert access.regions == ("ap-northeast-1", "us-east-1")


def test_max_override_default_is_a_duration_the_engine_accepts() -> None:
    from engine.config import parse_duration

    default = blocks("variable")["max_override"]["default"]
    assert parse_duration(default) == timedelta(days=7)


def test_outputs() -> None:
    outputs = blocks("output")
    for name in (
        "config_table_name",
        "config_table_arn",
        "state_table_name",
        "state_table_arn",
        "function_name",
        "function_arn",
        "wake_target_groups",
        "wake_function_name",
    ):
        assert name in outputs, name
        assert outputs[name].get("description"), name
    assert outputs["config_table_name"]["value"] == "${aws_dynamodb_table.config.name}"
    assert outputs["function_arn"]["value"] == "${aws_lambda_function.tick.arn}"
    assert outputs["wake_target_groups"]["value"] == (
        "${{for balancer, group in aws_lb_target_group.wake : balancer => group.arn}}"
    )


def test_example_calls_the_module() -> None:
    example = parse(EXAMPLE / "main.tf")
    module = example["module"][0]["teiji"]
    assert module["source"] == "../.."
    assert module["clusters"] == ["example-cluster"]
    assert set(module) - {"source"} <= set(blocks("variable")), "unknown module arguments"
    assert example["provider"][0]["aws"]["region"]
