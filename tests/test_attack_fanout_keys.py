"""Attacks on the keys a work item carries (engine.fanout ``keys``) from the world's side:
documents written, deleted or forged between the hand-out and the worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from engine.config import Access, Settings
from engine.fanout import BadWorkItemError, WorkItem, parse_work_item, scope_id
from engine.fanout_run import FanoutStore, orchestrate, sqs_sender, work
from engine.report import TickReport
from engine.tick import ScopeHooks, run_tick
from tests.fanoutworld import desired as _desired
from tests.fanoutworld import handout
from tests.invariant import assert_invariant, snapshot
from tests.world import CallLog, World, at, moto_tables, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
OWN = scope_id((None, None))
SETTINGS = Settings(access=Access(clusters=("c1",)))
PROFILE = {
    "kind": "profile",
    "name": "office",
    "timezone": "Asia/Tokyo",
    "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
}
ALL_DAY = [{"days": "mon-sun", "start": "00:00", "end": "24:00"}]


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables(SETTINGS) as world:
        world.create_service("c1", "web", desired=2)
        world.create_service("c1", "tagged", desired=3)
        arn = world.ecs.describe_services(cluster="c1", services=["tagged"])["services"][0][
            "serviceArn"
        ]
        world.ecs.tag_resource(resourceArn=arn, tags=[{"key": "teiji:profile", "value": "office"}])
        world.put(PROFILE, schedule("c1/web"))
        yield world


def _handout(world: World) -> WorkItem:
    return handout(world, SETTINGS, STOP)


def _work(world: World, item: WorkItem, log: CallLog | None = None, receives: int = 1) -> str:
    clients = world.clients()
    if log is not None:
        clients = log.attach(clients)

    def run(it: WorkItem, when: datetime, hooks: ScopeHooks | None) -> TickReport:
        return run_tick(
            clients,
            SETTINGS,
            at=when,
            dry_run=False,
            scope=it.scope,
            schedule_keys=it.keys,
            hooks=hooks,
        )

    return work(
        clients,
        SETTINGS,
        item,
        receives=receives,
        now=STOP + timedelta(seconds=5),
        run_scope=run,
        holder="attack",
    )


def test_a_document_written_for_a_tagged_service_after_the_handout_wins_over_its_tag(
    world: World,
) -> None:
    item = _handout(world)
    expected = snapshot(["c1/web", "c1/tagged"])
    assert item.keys == ("c1/web",)
    # Someone needs the tagged service tonight and writes a schedule for it (a document wins
    # over the tag): it must keep running. The edits function would converge it to running;
    # the worker, reading by the keys of the hand-out, must not stop it again.
    world.put(schedule("c1/tagged", windows=ALL_DAY))
    assert _work(world, item) == "done"
    assert _desired(world, "web") == 0
    assert _desired(world, "tagged") == 3
    assert_invariant(world, expected)


def test_an_invalid_document_written_for_a_tagged_service_after_the_handout_is_its_problem(
    world: World,
) -> None:
    """Without keys (an item of an earlier version) the worker reads every schedule: the
    person's document, even invalid, leaves the service alone."""
    item = _handout(world)
    expected = snapshot(["c1/web", "c1/tagged"])
    world.put_item(
        {"pk": "schedule", "sk": "c1/tagged", "kind": "schedule", "service": "c1/tagged"}
    )
    old = WorkItem(item.kind, item.tick, item.at, item.scope)
    assert _work(world, old) == "done"
    assert _desired(world, "tagged") == 3  # its document is invalid: left alone, not tagged
    assert _desired(world, "web") == 0
    assert_invariant(world, expected)


# Forged items -----------------------------------------------------------------------------
def _body(**fields: Any) -> str:
    base: dict[str, Any] = {
        "v": 1,
        "kind": "scope",
        "tick": "20261201T1400Z",
        "at": "2026-12-01T14:00:00+00:00",
        "account": None,
        "region": None,
        "dry_run": False,
    }
    base.update(fields)
    return json.dumps(base)


@pytest.mark.parametrize(
    "keys",
    [
        ["c1/web@111111111111/us-east-1"],  # another scope's
        ["c1/web@us-east-1"],  # the own account, another region
        ["c1/web", "c1/api@222222222222"],  # one of another account among its own
        "c1/web",  # not a list
        [["c1/web"]],
        [None],
        [""],
        ["x" * 700],
        [{"S": "c1/web"}],
    ],
)
def test_a_forged_item_with_keys_not_of_its_scope_is_refused(keys: Any) -> None:
    with pytest.raises(BadWorkItemError, match="keys"):
        parse_work_item(_body(keys=keys))


def test_a_forged_item_with_ten_thousand_keys_of_its_scope_reads_them_and_acts_on_none(
    world: World,
) -> None:
    """SQS takes a 256 KiB body: 10,000 keys fit. The worker asks for them (100 a call) and
    converges what exists, nothing else; the services named and absent are not created."""
    item = _handout(world)
    forged = [f"c1/s{i:05d}" for i in range(10_000)] + ["c1/web"]
    body = WorkItem(item.kind, item.tick, item.at, item.scope, keys=tuple(forged)).body()
    assert len(body.encode()) <= 262_144
    expected = snapshot(["c1/web", "c1/tagged"])
    log = CallLog()
    assert _work(world, parse_work_item(body), log) == "done"
    asked = sum(
        len(r["Keys"]) for c in log.named("BatchGetItem") for r in c.params["RequestItems"].values()
    )
    assert asked >= 10_001 and all(
        len(r["Keys"]) <= 100
        for c in log.named("BatchGetItem")
        for r in c.params["RequestItems"].values()
    )
    assert _desired(world, "web") == 0 and _desired(world, "tagged") == 0
    assert not [c for c in log.writes() if "s0" in json.dumps(c.params)]
    assert_invariant(world, expected)


def test_an_item_whose_keys_are_empty_manages_the_tagged_services_only(world: World) -> None:
    item = _handout(world)
    expected = snapshot(["c1/web", "c1/tagged"])
    empty = WorkItem(item.kind, item.tick, item.at, item.scope, keys=())
    assert parse_work_item(empty.body()).keys == ()
    assert _work(world, parse_work_item(empty.body())) == "done"
    assert _desired(world, "web") == 2  # its key was not handed out: not this worker's
    assert _desired(world, "tagged") == 0
    record = FanoutStore(world.clients(), SETTINGS.state_table).read_tick(item.tick)
    assert record is not None and record.done == 1
    assert_invariant(world, expected)


def test_a_key_whose_document_now_names_another_service_acts_on_neither_by_it(
    world: World,
) -> None:
    """Between the hand-out and the worker, someone overwrites the item under c1/web with a
    document naming c1/tagged: the worker reads c1/web's key, finds a document that does not
    match its sort key, reports it and acts on neither service because of it."""
    item = _handout(world)
    expected = snapshot(["c1/web", "c1/tagged"])
    forged = schedule("c1/tagged", windows=ALL_DAY)
    world.put_item({"pk": "schedule", "sk": "c1/web", **forged})
    clients = world.clients()
    report = run_tick(
        clients,
        SETTINGS,
        at=STOP + timedelta(seconds=5),
        dry_run=False,
        scope=item.scope,
        schedule_keys=item.keys,
    )
    assert _desired(world, "web") == 2  # its document is wrong: left alone
    assert any("c1/web" in str(p) for p in report.invalid_documents), report.invalid_documents
    # c1/tagged is still its tag's (stopped at night), not the forged document's (all day).
    assert report.service("c1/tagged").outcome == "changed"
    assert _desired(world, "tagged") == 0
    assert_invariant(world, expected)


def test_an_invalid_document_with_a_long_sort_key_does_not_knock_out_its_scope(
    world: World,
) -> None:
    """Someone writes a schedule by hand (console) under a sort key of 700 characters (longer
    than any service key; DynamoDB holds 1,024 bytes): it parses as a key of the own scope.
    Handed out, the worker refused the whole item ("keys: ... 1 to 600 characters") and the
    handler dropped it: the scope had no worker while the document stayed. The orchestrator
    counts it invalid instead (as a key that does not parse; `teiji validate` names it)."""
    long_key = "c1/" + "x" * 697
    world.put_item({"pk": "schedule", "sk": long_key, "kind": "schedule", "service": long_key})
    sqs = boto3.client("sqs", region_name=world.region)
    queue = sqs.create_queue(QueueName="teiji-work")["QueueUrl"]
    clients = world.clients()
    handout = orchestrate(clients, SETTINGS, sqs_sender(clients, queue), at=STOP, dry_run=False)
    assert handout.invalid_documents == 1
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    (item,) = [i for i in (parse_work_item(m["Body"]) for m in got) if i.kind == "scope"]
    assert item.keys == ("c1/web",)
    expected = snapshot(["c1/web", "c1/tagged"])
    assert _work(world, item) == "done"
    assert _desired(world, "web") == 0 and _desired(world, "tagged") == 0
    assert_invariant(world, expected)
