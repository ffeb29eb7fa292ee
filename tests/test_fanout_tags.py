"""Fan-out with opt-in by tag: the orchestrator hands out teiji's own scope even when no
document names a service there (its tagged services are found by its worker, as the
single-invocation tick finds them), and each worker looks for tagged services in its own
scope only, never in every scope of the fleet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from engine.config import Access, Settings
from engine.fanout import parse_work_item, scope_id
from engine.fanout_run import orchestrate, sqs_sender
from engine.tick import run_tick
from tests.world import World, at, moto_tables, on_new_clients, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
EAST = "us-east-1"
SETTINGS = Settings(access=Access(regions=("ap-northeast-1", EAST), clusters=("c1",)))
PROFILE = {
    "kind": "profile",
    "name": "office",
    "timezone": "Asia/Tokyo",
    "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
}


@pytest.fixture
def worlds() -> Iterator[tuple[World, World]]:
    with moto_tables(SETTINGS) as world:
        east = World(region=EAST, settings=SETTINGS)
        for w, name in ((world, "tagged"), (east, "tagged-east")):
            w.create_service("c1", name, desired=2)
            arn = w.ecs.describe_services(cluster="c1", services=[name])["services"][0][
                "serviceArn"
            ]
            w.ecs.tag_resource(resourceArn=arn, tags=[{"key": "teiji:profile", "value": "office"}])
        east.create_service("c1", "web", desired=1)
        world.put(PROFILE, schedule("c1/web", region=EAST))  # no document in the own scope
        yield world, east


def _desired(world: World, name: str) -> int:
    found = world.ecs.describe_services(cluster="c1", services=[name])["services"][0]
    return int(found["desiredCount"])


def test_the_own_scope_is_handed_out_for_its_tagged_services(
    worlds: tuple[World, World],
) -> None:
    world, _ = worlds
    sqs = boto3.client("sqs", region_name="ap-northeast-1")
    queue = sqs.create_queue(QueueName="teiji-work")["QueueUrl"]
    clients = world.clients()
    handout = orchestrate(clients, SETTINGS, sqs_sender(clients, queue), at=STOP, dry_run=False)
    assert set(handout.scopes) == {scope_id((None, None)), scope_id((None, EAST))}
    assert handout.scopes[scope_id((None, None))] == 0  # no document there, a worker all the same
    items = [
        parse_work_item(m["Body"])
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    ]
    assert {i.scope for i in items if i.kind == "scope"} == {(None, None), (None, EAST)}


def test_a_worker_discovers_its_own_scope_only(worlds: tuple[World, World]) -> None:
    world, east = worlds
    listed: list[tuple[str, str]] = []

    def hook(service: str, client: Any) -> None:
        region = client.meta.region_name

        def record(model: Any, **_: Any) -> None:
            if model.name == "ListServices":
                listed.append((service, region))

        client.meta.events.register("before-call.*.*", record)

    clients = on_new_clients(world.clients(), hook)
    report = run_tick(clients, SETTINGS, at=STOP, dry_run=False, scope=(None, EAST))
    assert listed and set(listed) == {("ecs", EAST)}, listed
    assert {s.key for s in report.services} == {"c1/web@us-east-1", "c1/tagged-east@us-east-1"}
    assert _desired(east, "tagged-east") == 0
    assert _desired(world, "tagged") == 2  # the own scope's worker's, not this one's

    listed.clear()
    own = run_tick(
        on_new_clients(world.clients(), hook), SETTINGS, at=STOP, dry_run=False, scope=(None, None)
    )
    assert set(listed) == {("ecs", "ap-northeast-1")}
    assert {s.key for s in own.services} == {"c1/tagged"}
    assert _desired(world, "tagged") == 0


WEST = "eu-west-1"
ALLOWED_WEST = Settings(access=Access(regions=("ap-northeast-1", WEST), clusters=("c1",)))


@pytest.fixture
def tag_only_west() -> Iterator[tuple[World, World, World]]:
    """A region of the allow-list whose services opt in by tag alone: no document names it;
    and a region outside the allow-list with a tagged service of its own."""
    with moto_tables(ALLOWED_WEST) as world:
        west = World(region=WEST, settings=ALLOWED_WEST)
        outside = World(region="us-west-2", settings=ALLOWED_WEST)
        for w in (west, outside):
            w.create_service("c1", "tagged", desired=2)
            arn = w.ecs.describe_services(cluster="c1", services=["tagged"])["services"][0][
                "serviceArn"
            ]
            w.ecs.tag_resource(resourceArn=arn, tags=[{"key": "teiji:profile", "value": "office"}])
        world.put(PROFILE)
        yield world, west, outside


def test_a_scope_with_tagged_services_only_is_found_by_a_single_tick(
    tag_only_west: tuple[World, World, World],
) -> None:
    world, west, outside = tag_only_west
    report = run_tick(world.clients(), ALLOWED_WEST, at=STOP, dry_run=False)
    assert report.service(f"c1/tagged@{WEST}").outcome == "changed"
    assert _desired(west, "tagged") == 0
    assert _desired(outside, "tagged") == 2  # its region is not allowed: never listed


def test_a_scope_with_tagged_services_only_is_handed_out_and_worked(
    tag_only_west: tuple[World, World, World],
) -> None:
    world, west, outside = tag_only_west
    sqs = boto3.client("sqs", region_name="ap-northeast-1")
    queue = sqs.create_queue(QueueName="teiji-work")["QueueUrl"]
    clients = world.clients()
    handout = orchestrate(clients, ALLOWED_WEST, sqs_sender(clients, queue), at=STOP, dry_run=False)
    assert set(handout.scopes) == {scope_id((None, None)), scope_id((None, WEST))}
    bodies = [
        parse_work_item(m["Body"])
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    ]
    (item,) = [b for b in bodies if b.kind == "scope" and b.scope == (None, WEST)]
    assert item.keys == ()
    report = run_tick(
        world.clients(),
        ALLOWED_WEST,
        at=STOP,
        dry_run=False,
        scope=item.scope,
        schedule_keys=item.keys,
    )
    assert report.service(f"c1/tagged@{WEST}").outcome == "changed"
    assert _desired(west, "tagged") == 0 and _desired(outside, "tagged") == 2


OWN_LISTED = Settings(
    access=Access(accounts=("123456789012",), regions=("ap-northeast-1", WEST), clusters=("c1",))
)


def test_the_own_account_listed_in_the_allow_list_gives_each_service_one_key(
    tag_only_west: tuple[World, World, World],
) -> None:
    # The module lists the deployment's own account first in TEIJI_ALLOWED_ACCOUNTS (moto's
    # account is 123456789012): its services must not be found a second time under
    # @123456789012, which would leave both keys alone as one service shared by two.
    world, west, _ = tag_only_west
    report = run_tick(world.clients(), OWN_LISTED, at=STOP, dry_run=False)
    assert _desired(west, "tagged") == 0
    keys = sorted(s.key for s in report.services)
    assert keys == [f"c1/tagged@{WEST}"], keys
    assert report.service(f"c1/tagged@{WEST}").outcome == "changed"
    # The own region has no cluster c1: an allowed name need not exist everywhere.
    assert not report.failed, report.problems
    sqs = boto3.client("sqs", region_name="ap-northeast-1")
    queue = sqs.create_queue(QueueName="teiji-work")["QueueUrl"]
    clients = world.clients()
    handout = orchestrate(clients, OWN_LISTED, sqs_sender(clients, queue), at=STOP, dry_run=False)
    assert set(handout.scopes) == {scope_id((None, None)), scope_id((None, WEST))}


def test_an_own_account_that_cannot_be_learned_keeps_to_the_documents_accounts(
    tag_only_west: tuple[World, World, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from engine.aws.clients import Clients

    def refuse(self: Clients) -> str:
        raise ClientError(
            {"Error": {"Code": "InternalFailure", "Message": "x"}}, "GetCallerIdentity"
        )

    monkeypatch.setattr(Clients, "own_account", refuse)
    world, _, _ = tag_only_west
    report = run_tick(world.clients(), OWN_LISTED, at=STOP, dry_run=False)
    assert report.service(f"c1/tagged@{WEST}").outcome == "changed"  # own account's regions
    assert not report.failed, report.problems


def test_a_worker_that_cannot_tell_whether_a_tagged_service_has_a_document_leaves_it_alone(
    tag_only_west: tuple[World, World, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker read only the documents its hand-out named; whether a person wrote one for a
    # tagged service since is asked by key. An answer that cannot be had acts on no tag.
    from botocore.exceptions import ClientError

    from engine.tick import _Tick

    def refuse(self: _Tick, keys: Any) -> set[str]:
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "x"}}, "BatchGetItem"
        )

    monkeypatch.setattr(_Tick, "_documents_now", refuse)
    world, west, _ = tag_only_west
    report = run_tick(
        world.clients(), ALLOWED_WEST, at=STOP, dry_run=False, scope=(None, WEST), schedule_keys=()
    )
    assert _desired(west, "tagged") == 2
    assert not any(s.key == f"c1/tagged@{WEST}" and s.outcome == "changed" for s in report.services)
