"""A work item carries its scope's schedule keys, and its worker reads those documents only.

At 20,000 services every worker used to read the whole table (about 10 s warm, most of a
wave); now the orchestrator, which reads every key anyway, hands each scope its own, and the
worker fetches them by key (BatchGetItem, strongly consistent) beside the other kinds. What
happens to documents between the hand-out and the worker is the world's side of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from engine import fanout
from engine.fanout import (
    MAX_BODY_BYTES,
    SEND_BATCH,
    WorkItem,
    batches,
    parse_work_item,
    scope_id,
    work_items,
)
from engine.fanout_run import work
from engine.tick import run_tick
from tests.test_fanout import EAST, OWN, SETTINGS, STOP, US, Fleet, _desired
from tests.test_fanout import fleet as fleet  # the fixture
from tests.world import CallLog, schedule


def _items(fleet: Fleet) -> dict[str, WorkItem]:
    fleet.orchestrate()
    bodies = [parse_work_item(m["Body"]) for m in fleet.receive()]
    return {scope_id(b.scope): b for b in bodies if b.kind == "scope"}


def _work(fleet: Fleet, item: WorkItem, log: CallLog | None = None) -> str:
    clients = fleet.world.clients()
    if log is not None:
        clients = log.attach(clients)

    def run(it: WorkItem, when: Any, hooks: Any) -> Any:
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
        receives=1,
        now=STOP + timedelta(seconds=5),
        run_scope=run,
        holder="keys-test",
    )


def _schedule_queries(log: CallLog) -> int:
    return sum(
        1
        for call in log.named("Query")
        if call.params["ExpressionAttributeValues"][":pk"]["S"] == "schedule"
    )


def test_each_item_carries_its_own_scope_keys_and_the_worker_reads_only_those(
    fleet: Fleet,
) -> None:
    items = _items(fleet)
    assert items[OWN].keys == ("c1/api", "c1/web")
    assert items[US].keys == (f"c1/web@{EAST}",)
    log = CallLog()
    assert _work(fleet, items[US], log) == "done"
    assert _desired(fleet.east, "web") == 0
    assert _desired(fleet.world, "web") == 2  # another scope's: not its worker's
    assert _schedule_queries(log) == 0  # by key, not the whole kind
    keys = [
        k["sk"]["S"]
        for call in log.named("BatchGetItem")
        for request in call.params["RequestItems"].values()
        for k in request["Keys"]
        if k["pk"]["S"] == "schedule"
    ]
    assert keys == [f"c1/web@{EAST}"]


def test_a_document_edited_after_the_handout_is_read_as_it_is_now(fleet: Fleet) -> None:
    items = _items(fleet)
    # Someone sets the service to be left alone between the hand-out and the worker.
    fleet.world.put(schedule("c1/web", region=EAST, mode="unmanaged"))
    assert _work(fleet, items[US]) == "done"
    assert _desired(fleet.east, "web") == 4


def test_a_document_deleted_after_the_handout_manages_nothing(fleet: Fleet) -> None:
    items = _items(fleet)
    fleet.world.dynamodb.delete_item(
        TableName=SETTINGS.config_table,
        Key={"pk": {"S": "schedule"}, "sk": {"S": f"c1/web@{EAST}"}},
    )
    assert _work(fleet, items[US]) == "done"
    assert _desired(fleet.east, "web") == 4


def test_a_document_added_after_the_handout_waits_for_the_next_tick(fleet: Fleet) -> None:
    items = _items(fleet)
    fleet.east.create_service("c1", "late", desired=1)
    fleet.world.put(schedule("c1/late", region=EAST))
    assert _work(fleet, items[US]) == "done"
    assert _desired(fleet.east, "web") == 0
    assert _desired(fleet.east, "late") == 1  # the edits function or the next tick takes it


@pytest.fixture
def small_budget() -> Iterator[None]:
    budget = fanout.KEYS_BUDGET_BYTES
    fanout.KEYS_BUDGET_BYTES = 17
    try:
        yield
    finally:
        fanout.KEYS_BUDGET_BYTES = budget


def test_a_scope_whose_keys_do_not_fit_reads_every_schedule(
    fleet: Fleet, small_budget: None
) -> None:
    items = _items(fleet)
    assert items[OWN].keys is None and items[US].keys is None
    log = CallLog()
    assert _work(fleet, items[OWN], log) == "done"
    assert _schedule_queries(log) == 1
    assert _desired(fleet.world, "web") == 0 and _desired(fleet.world, "api") == 0


def test_an_item_of_an_earlier_version_without_keys_still_works(fleet: Fleet) -> None:
    items = _items(fleet)
    old = WorkItem("scope", items[US].tick, items[US].at, items[US].scope)
    assert '"keys"' not in old.body()
    assert parse_work_item(old.body()).keys is None
    assert _work(fleet, parse_work_item(old.body())) == "done"
    assert _desired(fleet.east, "web") == 0


def test_batches_keep_sqs_limits_whatever_the_keys() -> None:
    scopes = {
        (f"{n:012d}", "us-east-1"): [f"c/s{i:05d}@{n:012d}/us-east-1" for i in range(size)]
        for n, size in enumerate([0, 1, 3_000, 5, 3_500, 2, 1, 0, 7, 2_000, 9, 4, 3, 1, 10_000])
    }
    items = work_items("20261202T2015Z", STOP, scopes)
    sent = batches(items)
    assert [e["MessageBody"] for b in sent for e in b] == [i.body() for i in items]
    for entries in sent:
        assert 1 <= len(entries) <= SEND_BATCH
        assert sum(len(e["MessageBody"].encode()) for e in entries) <= MAX_BODY_BYTES
        assert [e["Id"] for e in entries] == [str(i) for i in range(len(entries))]
    by_scope = {i.scope: i for i in items}
    assert by_scope[("000000000014", "us-east-1")].keys is None  # 10,000 keys: too many
    assert by_scope[("000000000004", "us-east-1")].keys is not None
    for item in items:
        assert parse_work_item(item.body()) == item


def test_a_duplicate_delivery_acts_on_nothing_even_after_a_person_changed_the_service(
    fleet: Fleet,
) -> None:
    items = _items(fleet)
    assert _work(fleet, items[US]) == "done"
    assert _desired(fleet.east, "web") == 0
    # Someone needs the service tonight and starts it by hand; SQS then delivers the stop
    # item a second time. The duplicate learns it is one under the lease and acts on nothing.
    fleet.east.ecs.update_service(cluster="c1", service="web", desiredCount=3)
    log = CallLog()
    assert _work(fleet, items[US], log) == "duplicate"
    assert _desired(fleet.east, "web") == 3
    assert not log.writes()


def test_only_the_last_worker_reads_the_count_back_and_publishes_once(fleet: Fleet) -> None:
    items = _items(fleet)
    first, second = CallLog(), CallLog()
    assert _work(fleet, items[US], first) == "done"
    # Not the last: the conditional count said so; the tick's record is not read back.
    assert first.count("GetItem") == 0
    (outcome,) = [c for c in first.named("TransactWriteItems") if "fanout" in str(c.params)]
    assert "done < :last" in str(outcome.params)
    record = fleet.store().read_tick(items[US].tick)
    assert record is not None and record.done == 1 and record.reported is None
    assert _work(fleet, items[OWN], second) == "done"
    record = fleet.store().read_tick(items[OWN].tick)
    assert record is not None and record.done == 2 and record.reported == "keys-test"


def test_two_last_workers_racing_count_both_and_publish_once(fleet: Fleet) -> None:
    from concurrent.futures import ThreadPoolExecutor

    items = _items(fleet)
    with ThreadPoolExecutor(2) as pool:
        verdicts = list(pool.map(lambda i: _work(fleet, i), [items[US], items[OWN]]))
    assert verdicts == ["done", "done"]
    record = fleet.store().read_tick(items[US].tick)
    assert record is not None and record.done == 2 and record.reported == "keys-test"
