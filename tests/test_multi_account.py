"""Several accounts and regions: one AssumeRole per other account, clients per (account, region),
reads at the floor, an unreachable account failing its own services only, each account's
ExternalId read from SSM Parameter Store, and the allow-list keeping teiji to its own.

The world (``bench.world``) is built in moto over three accounts and two regions; the other
accounts are reached through AssumeRole, as teiji reaches them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bench.floor import call_floor
from bench.world import (
    HOME_REGION,
    OWN_ACCOUNT,
    REGIONS,
    ROLE_NAME,
    RUNNING_AT,
    STOPPED_AT,
    World,
    WorldSpec,
    build_world,
    deployment_access,
    desired_counts,
)
from engine.aws.clients import Clients
from engine.config import Access, Settings
from engine.report import TickReport
from engine.tick import run_tick
from tests.world import CallLog, Faults, store_schedules

A, B = "210987654321", "345678901234"
PARAMETER = "/teiji/external-id"
# The deployment of these tests: both other accounts and both regions allowed.
EVERYWHERE = deployment_access()
SPEC = WorldSpec(
    services=36,
    accounts=(OWN_ACCOUNT, A, B),
    regions=REGIONS,
    services_per_cluster=4,  # two clusters in each (account, region)
    load_balanced_every=10**6,
)


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        built = build_world(SPEC)
        store_schedules(Clients(region=HOME_REGION), built.schedules(targets="ignore"))
        yield built


def _tick(
    world: World,
    at: Any,
    *,
    role_name: str | None = ROLE_NAME,
    parameter: str | None = None,
    faults: Faults | None = None,
    access: Access = EVERYWHERE,
    clients: Clients | None = None,
) -> tuple[TickReport, CallLog, Clients]:
    log = CallLog()
    if clients is None:
        clients = Clients(region=HOME_REGION, role_name=role_name, external_id_parameter=parameter)
    log.attach(clients)
    if faults is not None:
        faults.attach(clients)
    report = run_tick(clients, Settings(access=access), at=at, dry_run=False)
    return report, log, clients


def _put_external_id(account: str, value: str, kind: str = "SecureString") -> None:
    boto3.client("ssm", region_name=HOME_REGION).put_parameter(
        Name=f"{PARAMETER}/{account}", Value=value, Type=kind, Overwrite=True
    )


def _keys_in(world: World, account: str) -> set[str]:
    return {world.key(s) for s in world.services if s.account == account}


def test_services_in_every_account_and_region_are_stopped(world: World) -> None:
    _put_external_id(A, "ext-for-a")
    _put_external_id(B, "ext-for-b")
    report, log, clients = _tick(world, STOPPED_AT, parameter=PARAMETER)
    assert not report.failed, [s.as_json() for s in report.services if s.failed]
    assert report.counts["changed"] == 36
    assert set(desired_counts(world).values()) == {0}
    # One AssumeRole per other account, although each is used in two regions.
    assumed = sorted(c.params["RoleArn"] for c in log.named("AssumeRole"))
    assert assumed == [f"arn:aws:iam::{a}:role/{ROLE_NAME}" for a in (A, B)]
    # Each account with its own ExternalId, read once from its SecureString.
    external = {
        c.params["RoleArn"].split(":")[4]: c.params["ExternalId"] for c in log.named("AssumeRole")
    }
    assert external == {A: "ext-for-a", B: "ext-for-b"}
    read = sorted((c.params["Name"], c.params["WithDecryption"]) for c in log.named("GetParameter"))
    assert read == [(f"{PARAMETER}/{A}", True), (f"{PARAMETER}/{B}", True)]
    # One ECS client per (account, region) that has services; None is the own account.
    ecs = {(account, region) for service, account, region in clients._cache if service == "ecs"}
    assert ecs == {(a, r) for a in (None, A, B) for r in REGIONS}
    # The keys name the account and region only where they differ from the deployment's own.
    keys = [s.key for s in report.services]
    assert any(k.endswith(f"@{A}") for k in keys) and any("@" not in k for k in keys)


def test_a_no_op_tick_reads_at_the_floor(world: World) -> None:
    report, log, _ = _tick(world, RUNNING_AT)
    assert report.counts["converged"] == 36
    floor = call_floor(world, transition=False)
    assert (
        log.count("DescribeServices")
        == floor.describe_services
        == sum(math.ceil(n / 10) for n in world.cluster_sizes().values())
    )
    assert log.count("DescribeScalableTargets") == floor.describe_scalable_targets == 6
    assert log.count("AssumeRole") == floor.assume_role == 2
    assert log.count("BatchGetItem") == floor.baseline_reads
    assert log.count("Query") == 1 + 4  # the lease record, one page per kind of document
    assert [c.operation for c in log.calls if c.write] == ["PutItem", "PutItem"]  # the lease
    assert report.api_calls == len(log.calls) <= 1.1 * floor.total


def test_an_account_whose_role_cannot_be_assumed_fails_only_its_services(world: World) -> None:
    refused = Faults().fail(
        "AssumeRole",
        code="AccessDenied",
        message=f"not authorized to perform sts:AssumeRole on arn:aws:iam::{B}:role/{ROLE_NAME}",
        when=lambda p: f"::{B}:" in p["RoleArn"],
    )
    report, log, _ = _tick(world, STOPPED_AT, faults=refused)
    failed = {s.key: s.error or "" for s in report.services if s.failed}
    assert set(failed) == _keys_in(world, B)
    for error in failed.values():
        assert f"account {B}: cannot assume role" in error
        assert "AccessDenied" in error
    assert report.counts["changed"] == 24
    # Asked once for the account, not once per region or per service.
    assert sum(1 for c in log.named("AssumeRole") if f"::{B}:" in c.params["RoleArn"]) == 1
    counts = desired_counts(world)
    for service in world.services:
        assert (counts[service.ident] == 0) == (service.account != B), service.ident


def test_without_a_role_name_other_accounts_fail_with_the_setting_to_fix(world: World) -> None:
    report, log, _ = _tick(world, STOPPED_AT, role_name=None)
    failed = {s.key: s.error or "" for s in report.services if s.failed}
    assert set(failed) == _keys_in(world, A) | _keys_in(world, B)
    assert all("set TEIJI_ROLE_NAME" in error for error in failed.values())
    assert log.count("AssumeRole") == 0
    assert report.counts["changed"] == 12  # the deployment's own account, both regions


# ExternalIds in SSM Parameter Store ---------------------------------------------------------------
def test_a_warm_container_reads_each_external_id_once(world: World) -> None:
    _put_external_id(A, "ext-for-a")
    _put_external_id(B, "ext-for-b")
    _, first, clients = _tick(world, STOPPED_AT, parameter=PARAMETER)
    assert first.count("GetParameter") == 2
    # The handler keeps its Clients across invocations: the next tick reads nothing from SSM.
    report, second, _ = _tick(world, RUNNING_AT, clients=clients)
    assert not report.failed
    assert second.count("GetParameter") == 0


def test_no_parameter_is_read_when_no_other_account_is_managed(world: World) -> None:
    own_only = Access(accounts=(), regions=REGIONS)
    report, log, _ = _tick(world, STOPPED_AT, parameter=PARAMETER, access=own_only)
    assert report.counts["changed"] == 12
    assert log.count("GetParameter") == 0
    assert log.count("AssumeRole") == 0


def test_a_missing_external_id_fails_that_account_only_and_names_the_parameter(
    world: World,
) -> None:
    _put_external_id(A, "ext-for-a")
    report, log, _ = _tick(world, STOPPED_AT, parameter=PARAMETER)
    failed = {s.key: s.error or "" for s in report.services if s.failed}
    assert set(failed) == _keys_in(world, B)
    assert all(f"the SSM parameter {PARAMETER}/{B}" in e for e in failed.values())
    # Never assumed without its ExternalId.
    assert all(f"::{B}:" not in c.params["RoleArn"] for c in log.named("AssumeRole"))
    assert report.counts["changed"] == 24


def test_an_external_id_in_a_plain_string_parameter_is_refused(world: World) -> None:
    _put_external_id(A, "ext-for-a")
    _put_external_id(B, "ext-for-b", kind="String")
    report, log, _ = _tick(world, STOPPED_AT, parameter=PARAMETER)
    failed = {s.key: s.error or "" for s in report.services if s.failed}
    assert set(failed) == _keys_in(world, B)
    assert all("must be a non-empty SecureString" in e for e in failed.values())
    assert all(f"::{B}:" not in c.params["RoleArn"] for c in log.named("AssumeRole"))


def test_a_rotated_external_id_is_read_again_after_the_role_refuses_the_old_one(
    world: World,
) -> None:
    """Someone rotates B's ExternalId (trust policy and parameter) while a container is warm."""
    _put_external_id(A, "ext-for-a")
    _put_external_id(B, "old")
    trust = Faults().fail(
        "AssumeRole",
        code="AccessDenied",
        when=lambda p: f"::{B}:" in p["RoleArn"] and p.get("ExternalId") != "new",
    )
    report, _, clients = _tick(world, STOPPED_AT, parameter=PARAMETER, faults=trust)
    assert {s.key for s in report.services if s.failed} == _keys_in(world, B)
    _put_external_id(B, "new")
    report, log, _ = _tick(world, STOPPED_AT, clients=clients)
    assert not report.failed, [s.as_json() for s in report.services if s.failed]
    assert [c.params["Name"] for c in log.named("GetParameter")] == [f"{PARAMETER}/{B}"]
    assert set(desired_counts(world).values()) == {0}


# The allow-list ---------------------------------------------------------------------------------
def test_by_default_only_the_own_account_and_region_are_touched(world: World) -> None:
    before = desired_counts(world)
    report, log, _ = _tick(world, STOPPED_AT, access=Access())
    own = {
        world.key(s) for s in world.services if s.account == OWN_ACCOUNT and s.region == HOME_REGION
    }
    assert {s.key for s in report.services if s.outcome == "changed"} == own
    refused = {s.key: s.error or "" for s in report.services if s.failed}
    assert set(refused) == {world.key(s) for s in world.services} - own
    for key, error in refused.items():
        assert error.startswith(f"schedule {key}: "), error
        assert "is not one teiji may manage" in error
    assert (
        f"schedule {world.key(next(s for s in world.services if s.account == A))}: account: "
        f"account {A} is not one teiji may manage; allowed accounts: its own account "
        "(TEIJI_ALLOWED_ACCOUNTS, Terraform variable allowed_accounts)"
    ) in refused.values()
    assert any(
        e.endswith(
            "region: region us-east-1 is not one teiji may manage; allowed regions: "
            "ap-northeast-1 (its own) (TEIJI_ALLOWED_REGIONS, Terraform variable allowed_regions)"
        )
        for e in refused.values()
    )
    # Never acted on, never even reached: no AssumeRole, no read in another account or region.
    assert log.count("AssumeRole") == 0
    assert {c.params.get("cluster") for c in log.named("DescribeServices")} <= {
        s.cluster for s in world.services if s.account == OWN_ACCOUNT
    }
    after = desired_counts(world)
    for service in world.services:
        if world.key(service) not in own:
            assert after[service.ident] == before[service.ident], service.ident


def test_a_cluster_list_keeps_teiji_to_those_clusters(world: World) -> None:
    clusters = sorted({s.cluster for s in world.services})
    access = Access(accounts=(A, B), regions=REGIONS, clusters=(clusters[0],))
    report, _, _ = _tick(world, STOPPED_AT, access=access)
    changed = {s.key for s in report.services if s.outcome == "changed"}
    assert changed == {world.key(s) for s in world.services if s.cluster == clusters[0]}
    refused = [s.error or "" for s in report.services if s.failed]
    assert refused and all(
        f"allowed clusters: {clusters[0]} (TEIJI_ALLOWED_CLUSTERS, Terraform variable clusters)"
        in e
        for e in refused
    )


def test_a_document_for_a_foreign_account_written_between_ticks_is_never_acted_on(
    world: World,
) -> None:
    """Someone with write access to the config table adds a schedule for an account outside the
    allow-list (and an always_off one at that) between two ticks."""
    access = Access(accounts=(A,), regions=REGIONS)
    _tick(world, STOPPED_AT, access=access)
    intruder = next(s for s in world.services if s.account == B and s.region == HOME_REGION)
    boto3.client("dynamodb", region_name=HOME_REGION).put_item(
        TableName="teiji-config",
        Item={
            "pk": {"S": "schedule"},
            "sk": {"S": f"{intruder.cluster}/{intruder.name}@{B}"},
            "service": {"S": f"{intruder.cluster}/{intruder.name}"},
            "account": {"S": B},
            "mode": {"S": "always_off"},
        },
    )
    before = desired_counts(world)[intruder.ident]
    report, log, _ = _tick(world, RUNNING_AT, access=access)
    refused = {s.key: s.error or "" for s in report.services if s.failed}
    assert f"{intruder.cluster}/{intruder.name}@{B}" in refused
    assert all(f"::{B}:" not in c.params["RoleArn"] for c in log.named("AssumeRole"))
    assert desired_counts(world)[intruder.ident] == before > 0
