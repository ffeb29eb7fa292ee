"""Several accounts and regions: one AssumeRole per other account, clients per (account, region),
reads at the floor, and an unreachable account failing its own services only.

The world (``bench.world``) is built in moto over three accounts and two regions; the other
accounts are reached through AssumeRole, as teiji reaches them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

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
    desired_counts,
)
from engine.aws.clients import Clients
from engine.config import Settings
from engine.report import TickReport
from engine.tick import run_tick
from tests.world import CallLog, Faults, store_schedules

A, B = "210987654321", "345678901234"
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
    external_id: str | None = None,
    faults: Faults | None = None,
) -> tuple[TickReport, CallLog, Clients]:
    log = CallLog()
    clients = Clients(region=HOME_REGION, role_name=role_name, external_id=external_id)
    log.attach(clients)
    if faults is not None:
        faults.attach(clients)
    report = run_tick(clients, Settings(), at=at, dry_run=False)
    return report, log, clients


def _keys_in(world: World, account: str) -> set[str]:
    return {world.key(s) for s in world.services if s.account == account}


def test_services_in_every_account_and_region_are_stopped(world: World) -> None:
    report, log, clients = _tick(world, STOPPED_AT, external_id="teiji-ext")
    assert not report.failed, [s.as_json() for s in report.services if s.failed]
    assert report.counts["changed"] == 36
    assert set(desired_counts(world).values()) == {0}
    # One AssumeRole per other account, although each is used in two regions.
    assumed = sorted(c.params["RoleArn"] for c in log.named("AssumeRole"))
    assert assumed == [f"arn:aws:iam::{a}:role/{ROLE_NAME}" for a in (A, B)]
    assert {c.params.get("ExternalId") for c in log.named("AssumeRole")} == {"teiji-ext"}
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
    assert log.count("Query") == 3  # one page per kind of document
    assert [c.operation for c in log.calls if c.write] == ["PutItem", "DeleteItem"]  # the lease
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
