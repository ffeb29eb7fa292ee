"""Attacks on discovery's scopes (engine.optin.allowed_scopes): the Terraform module always
writes the deployment's own account first in TEIJI_ALLOWED_ACCOUNTS and its own region first
in TEIJI_ALLOWED_REGIONS (infra/main.tf ``distinct(concat([local.account_id], ...))``), so
the allow-list a deployed teiji reads names its own account by id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from engine.aws.clients import Clients
from engine.config import Access, Settings
from engine.fanout import WorkItem, parse_work_item, scope_id
from engine.fanout_run import orchestrate, sqs_sender, work
from engine.optin import allowed_scopes
from engine.report import TickReport
from engine.tick import ScopeHooks, run_tick
from tests.invariant import assert_invariant, snapshot
from tests.world import ACCOUNT, REGION, World, at, moto_tables

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
MORNING = at("2026-12-02T09:00:00+09:00")  # Wednesday morning: running
PROFILE = {
    "kind": "profile",
    "name": "office",
    "timezone": "Asia/Tokyo",
    "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
}
# As infra/main.tf writes it: this account first, this region first.
AS_DEPLOYED = Settings(
    access=Access(accounts=(ACCOUNT,), regions=(REGION,), clusters=("c1",)),
    role_name="teiji-target",
)


def _tag(world: World, name: str) -> None:
    arn = world.ecs.describe_services(cluster="c1", services=[name])["services"][0]["serviceArn"]
    world.ecs.tag_resource(resourceArn=arn, tags=[{"key": "teiji:profile", "value": "office"}])


@pytest.fixture
def deployed() -> Iterator[World]:
    with moto_tables(AS_DEPLOYED) as world:
        world.create_service("c1", "tagged", desired=2)
        _tag(world, "tagged")
        world.put(PROFILE)
        yield world


def _desired(world: World, name: str) -> int:
    return int(
        world.ecs.describe_services(cluster="c1", services=[name])["services"][0]["desiredCount"]
    )


def test_the_own_region_listed_is_not_a_second_scope() -> None:
    access = Access(regions=(REGION, "us-east-1"))
    assert allowed_scopes(access, REGION) == [(None, None), (None, "us-east-1")]


# The module lists the deployment's own account first in TEIJI_ALLOWED_ACCOUNTS (infra/main.tf):
# the tick learns its own id (GetCallerIdentity) so that its services keep one key each.


def _clients(world: World, settings: Settings) -> Clients:
    return Clients(
        region=world.region, session=world._session, role_name=settings.role_name, max_attempts=2
    )


def test_a_single_tick_as_deployed_stops_a_tagged_service_of_its_own_account(
    deployed: World,
) -> None:
    # Before a944582 the own account's tagged services were looked for once, as (None, None).
    report = run_tick(_clients(deployed, AS_DEPLOYED), AS_DEPLOYED, at=STOP, dry_run=False)
    assert {s.key: s.outcome for s in report.services} == {"c1/tagged": "changed"}
    assert _desired(deployed, "tagged") == 0


def test_a_single_account_deployment_reports_no_problem_every_tick(deployed: World) -> None:
    # TEIJI_ROLE_NAME unset (one account): the own account by id cannot be reached, so every
    # tick said "cannot discover tagged services of cluster c1 in <own id>/own region".
    settings = Settings(access=AS_DEPLOYED.access)
    report = run_tick(_clients(deployed, settings), settings, at=STOP, dry_run=False)
    assert report.service("c1/tagged").outcome == "changed"
    assert report.problems == []


def test_the_orchestrator_as_deployed_hands_out_the_own_scope_once(deployed: World) -> None:
    clients = _clients(deployed, AS_DEPLOYED)
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="teiji-work")["QueueUrl"]
    handout = orchestrate(clients, AS_DEPLOYED, sqs_sender(clients, queue), at=STOP, dry_run=False)
    assert set(handout.scopes) == {scope_id((None, None))}


def _scope_items(sqs: Any, queue: str, tick: str) -> list[WorkItem]:
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=300)
    items = [parse_work_item(m["Body"]) for m in got.get("Messages", [])]
    return [i for i in items if i.kind == "scope" and i.tick == tick]


def test_fan_out_as_deployed_restores_a_tagged_service_exactly(deployed: World) -> None:
    """Two workers (scopes -/- and <own id>/-) manage one service under two keys, neither
    seeing the other: the night's second worker finds it stopped, and in the morning the
    worker without a baseline starts it at 1, which the other then takes for a person's
    change while stopped: the service people ran at 2 wakes at 1, its baseline gone."""
    clients = _clients(deployed, AS_DEPLOYED)
    expected = snapshot(["c1/tagged"])
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="teiji-work")["QueueUrl"]

    def run(item: WorkItem, when: datetime, hooks: ScopeHooks | None) -> TickReport:
        return run_tick(
            clients,
            AS_DEPLOYED,
            at=when,
            dry_run=False,
            scope=item.scope,
            schedule_keys=item.keys,
            hooks=hooks,
        )

    verdicts: list[str] = []
    for when, order in ((STOP, 1), (MORNING, -1)):
        handout = orchestrate(
            clients, AS_DEPLOYED, sqs_sender(clients, queue), at=when, dry_run=False
        )
        for item in _scope_items(sqs, queue, handout.tick)[::order]:
            now = when + timedelta(seconds=5)
            verdicts.append(
                work(clients, AS_DEPLOYED, item, receives=1, now=now, run_scope=run, holder="w")
            )
        assert_invariant(deployed, expected, context=f"after the tick at {when}")
    assert _desired(deployed, "tagged") == 2
