"""Attacks on the fan-out worker's protocol around its tick (engine.fanout_run._Protocol and
engine.tick.ScopeHooks): the outcome written beside the lease's release, the tick's record
read beside the documents, deliveries racing, a process killed between the two writes, and
answers cut or refused."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.aws.clients import Clients
from engine.config import Settings
from engine.fanout import WorkItem, scope_id
from engine.fanout_run import FanoutStore, work
from engine.lease import RECORD_SK, scope_lease_pk
from engine.report import TickReport
from engine.tick import ScopeHooks, run_tick
from tests.fanoutworld import desired as _desired
from tests.fanoutworld import handout
from tests.invariant import assert_invariant, snapshot
from tests.world import CallLog, Faults, World, at, moto_tables, on_new_clients, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
OWN = scope_id((None, None))
SETTINGS = Settings()
LEASE_PK = scope_lease_pk(OWN)


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables(SETTINGS) as world:
        world.create_service("c1", "web", desired=2)
        world.create_service("c1", "api", desired=3)
        world.put(schedule("c1/web"), schedule("c1/api"))
        yield world


def _handout(world: World) -> WorkItem:
    return handout(world, SETTINGS, STOP)


def _work(
    world: World,
    item: WorkItem,
    *,
    clients: Clients | None = None,
    receives: int = 1,
    holder: str = "attack",
) -> str:
    used = clients or world.clients()

    def run(it: WorkItem, when: datetime, hooks: ScopeHooks | None) -> TickReport:
        return run_tick(
            used,
            SETTINGS,
            at=when,
            dry_run=False,
            scope=it.scope,
            schedule_keys=it.keys,
            hooks=hooks,
            holder=holder,
        )

    return work(
        used,
        SETTINGS,
        item,
        receives=receives,
        now=STOP + timedelta(seconds=5),
        run_scope=run,
        holder=holder,
    )


def _lease_record(world: World) -> dict[str, Any] | None:
    found = world.dynamodb.get_item(
        TableName=SETTINGS.state_table,
        Key={"pk": {"S": LEASE_PK}, "sk": {"S": RECORD_SK}},
        ConsistentRead=True,
    )
    item: dict[str, Any] | None = found.get("Item")
    return item


def _before(operation: str, act: Callable[[dict[str, Any]], None]) -> Callable[[str, Any], None]:
    """A client hook running ``act(params)`` before each ``operation`` call."""

    def hook(service: str, client: Any) -> None:
        def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["attack_params"] = params

        def call(model: Any, context: dict[str, Any], **_: Any) -> None:
            if model.name == operation:
                act(context.get("attack_params", {}))

        client.meta.events.register("before-parameter-build.*.*", remember)
        client.meta.events.register("before-call.*.*", call)

    return hook


def _is_outcome(params: dict[str, Any]) -> bool:
    return "fanout" in str(params.get("TransactItems", ""))


# Deliveries racing -------------------------------------------------------------------------
def test_two_deliveries_racing_act_once_count_once_and_report_once(world: World) -> None:
    item = _handout(world)
    expected = snapshot(["c1/web", "c1/api"])
    logs = [CallLog(), CallLog()]
    with ThreadPoolExecutor(2) as pool:
        verdicts = list(
            pool.map(
                lambda n: _work(
                    world, item, clients=logs[n].attach(world.clients()), holder=f"d{n}"
                ),
                [0, 1],
            )
        )
    # The one that lost the lease either saw the outcome (duplicate) or asks to come again.
    assert sorted(verdicts) in (["done", "duplicate"], ["done", "retry"]), verdicts
    acted = [log for log in logs if log.writes()]
    assert len(acted) == 1
    assert sorted(c.params["service"] for c in acted[0].named("UpdateService")) == ["api", "web"]
    record = FanoutStore(world.clients(), SETTINGS.state_table).read_tick(item.tick)
    assert record is not None and record.done == 1 and record.reported is not None
    if "retry" in verdicts:  # SQS delivers it again: a duplicate now, acting on nothing
        log = CallLog()
        assert _work(world, item, clients=log.attach(world.clients()), receives=2) == "duplicate"
        assert not log.writes()
    assert _lease_record(world) is None  # released: deleted
    assert_invariant(world, expected)


def test_a_duplicate_taking_the_lease_before_the_outcome_lands_acts_on_nothing(
    world: World,
) -> None:
    item = _handout(world)
    expected = snapshot(["c1/web", "c1/api"])
    second: dict[str, Any] = {}

    def duplicate_meanwhile(params: dict[str, Any]) -> None:
        if not _is_outcome(params) or second:
            return
        # The release is an action of this very write: until it lands, the lease is held.
        second["lease_gone"] = _lease_record(world) is None
        # Someone needs web tonight and starts it by hand; SQS delivers the item again.
        world.set_desired("c1", "web", 5)
        log = CallLog()
        second["verdict"] = _work(
            world, item, clients=log.attach(world.clients()), receives=2, holder="second"
        )
        second["writes"] = [c.params.get("service") for c in log.writes()]

    first = on_new_clients(world.clients(), _before("TransactWriteItems", duplicate_meanwhile))
    verdict = _work(world, item, clients=first, holder="first")
    assert not second["lease_gone"]
    record = FanoutStore(world.clients(), SETTINGS.state_table).read_tick(item.tick)
    assert record is not None and record.done == 1  # counted once
    # The second delivery found the lease held and no outcome yet: SQS delivers it again.
    assert (verdict, second["verdict"]) == ("done", "retry")
    assert second["writes"] == [], second  # it acted on nothing
    assert _lease_record(world) is None  # given back with the outcome
    log = CallLog()
    assert _work(world, item, clients=log.attach(world.clients()), receives=2) == "duplicate"
    assert not log.writes()
    assert _desired(world, "web") == 5
    expected["c1/web"] = snapshot(["c1/web"])["c1/web"]
    # The next tick takes the person's 5 for the new original and stops it again.
    run_tick(world.clients(), SETTINGS, at=STOP + timedelta(minutes=15), dry_run=False)
    assert _desired(world, "web") == 0
    assert_invariant(world, expected)


# A process killed between its two writes ---------------------------------------------------
def test_the_outcome_and_the_release_are_one_write_so_no_kill_falls_between(
    world: World,
) -> None:
    """A worker's outcome, its count and its lease's release are one transaction: a process
    killed at any moment leaves either all three or none (then the lease is held by the dead
    holder until it runs out, and the scope is worked again then)."""
    item = _handout(world)
    expected = snapshot(["c1/web", "c1/api"])
    log = CallLog()
    assert _work(world, item, clients=log.attach(world.clients())) == "done"
    assert log.count("DeleteItem") == 0  # no release of its own
    (outcome,) = [c for c in log.named("TransactWriteItems") if "ADD done" in str(c.params)]
    deletes = [a for a in outcome.params["TransactItems"] if "Delete" in a]
    assert len(deletes) == 1 and deletes[0]["Delete"]["Key"]["pk"]["S"].startswith("lease#scope#")
    assert _lease_record(world) is None
    assert_invariant(world, expected)


def _after_call(operation: str, done: threading.Event) -> Callable[[str, Any], None]:
    def hook(service: str, client: Any) -> None:
        def call(model: Any, **_: Any) -> None:
            if model.name == operation:
                done.set()

        client.meta.events.register("after-call.*.*", call)

    return hook


# The outcome's write failing after the release -----------------------------------------------
def test_an_outcome_refused_after_the_release_is_retried_and_counted_once(world: World) -> None:
    item = _handout(world)
    expected = snapshot(["c1/web", "c1/api"])
    faults = Faults().fail(
        "TransactWriteItems",
        code="TransactionCanceledException",
        message="Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, TransactionConflict]",
        when=_is_outcome,
        times=1,
    )
    assert _work(world, item, clients=faults.attach(world.clients())) == "retry"
    assert faults.injected == 1
    assert _lease_record(world) is None  # given back all the same
    store = FanoutStore(world.clients(), SETTINGS.state_table)
    assert not store.has_outcome(item.tick, OWN)
    assert _desired(world, "web") == 0
    # SQS delivers it again: the services are converged already; the outcome lands once.
    log = CallLog()
    assert _work(world, item, clients=log.attach(world.clients()), receives=2) == "done"
    assert not log.writes()
    record = store.read_tick(item.tick)
    assert record is not None and record.done == 1 and record.reported is not None
    assert_invariant(world, expected)


# The tick's record read beside the documents, cut (fixed in read_both) ---------------------
def test_a_cut_answer_to_the_tick_record_read_is_retried_not_dropped(world: World) -> None:
    item = _handout(world)
    expected = snapshot(["c1/web", "c1/api"])

    def hook(service: str, client: Any) -> None:
        from botocore.awsrequest import AWSResponse

        def answer(model: Any, context: dict[str, Any], **_: Any) -> Any:
            params = context.get("attack_params", {})
            if model.name == "BatchGetItem" and "fanout" in str(params):
                return AWSResponse("https://cut.invalid", 200, {}, None), {
                    "ResponseMetadata": {"HTTPStatusCode": 200}
                }
            return None

        def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["attack_params"] = params

        client.meta.events.register("before-parameter-build.*.*", remember)
        client.meta.events.register("before-call.*.*", answer)

    clients = on_new_clients(world.clients(), hook)
    assert _work(world, item, clients=clients) == "retry"
    assert _desired(world, "web") == 2  # nothing acted on a record it could not read
    assert _lease_record(world) is None  # given back
    assert _work(world, item, receives=2) == "done"  # delivered again, it reads and works
    assert _desired(world, "web") == 0
    assert_invariant(world, expected)
