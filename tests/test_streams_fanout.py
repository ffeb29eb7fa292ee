"""Edits in fan-out mode: the edits function converges each (account, region) under that scope's
own lease, the one its fan-out worker takes. An edit that meets a worker of its scope is
delivered again (and never acted on beside it); a worker of another scope holds nothing up; a
worker that meets the edits function waits for it; the ticks' lease is not the one taken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import boto3
import pytest
from freezegun import freeze_time

import engine.handler as lambda_handler
import engine.tick
from engine.aws.operations import Operation
from engine.config import Access, Settings
from engine.edits import read_batch
from engine.fanout import scope_id
from engine.fanout_run import orchestrate, sqs_sender
from engine.lease import (
    HeldLease,
    LeaseTable,
    acquire,
    break_holder,
    cover_for,
    scope_lease_pk,
)
from engine.report import TickReport
from engine.stream_handler import EditsOutcome, apply_batch
from engine.tick import run_tick
from tests.faults import FaultLayer
from tests.streamworld import DAY, Context, Stream, put_raw
from tests.test_streams_lease import FakeClock
from tests.world import CallLog, World, at, moto_tables, schedule

EAST = "us-east-1"
OWN = (None, None)
US = (None, EAST)
QUEUE = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/teiji-work"
SETTINGS = Settings(access=Access(regions=("ap-northeast-1", EAST)), fanout_queue_url=QUEUE)
NOON = at("2026-12-02T12:00:00+09:00")  # DAY: every schedule says running
NIGHT = at("2026-12-02T23:00:00+09:00")  # every schedule says stopped
WORKER = "lambda:worker-us/1234abcd"
EDITS = "edits:lambda:req-e/0000abcd"
WEB_US = "c1/web@" + EAST


class Fleet:
    """Two scopes: c1/web (2 tasks) and c1/api (3) in the deployment's own region, c1/web (4)
    in us-east-1; the config table's stream on."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.east = World(region=EAST, settings=world.settings)
        world.create_service("c1", "web", desired=2)
        world.create_service("c1", "api", desired=3)
        self.east.create_service("c1", "web", desired=4)
        world.put(schedule("c1/web"), schedule("c1/api"), schedule("c1/web", region=EAST))
        self.stream = Stream(world)

    def scope_lease(self, scope: tuple[str | None, str | None]) -> LeaseTable:
        return LeaseTable(
            self.world.clients(), SETTINGS.state_table, pk=scope_lease_pk(scope_id(scope))
        )

    def hold(self, scope: tuple[str | None, str | None], holder: str, ttl: float = 120) -> None:
        """Hold ``scope``'s lease as a worker (or the edits function) would."""
        held = acquire(
            self.scope_lease(scope),
            None,
            cover_for(None, 1, None),
            holder,
            ttl,
            _now,
            may_switch=True,
        )
        assert isinstance(held, HeldLease), held

    def holder(self, scope: tuple[str | None, str | None]) -> str | None:
        record = self.scope_lease(scope).read().record
        slot = record.slots.get(0) if record is not None else None
        return slot.holder if slot is not None and slot.live(_now()) else None

    def desired(self, scope: tuple[str | None, str | None], name: str) -> int:
        world = self.east if scope == US else self.world
        return world.state("c1", name).desired

    def edits(
        self,
        event: dict[str, Any],
        *,
        clients: Any = None,
        settings: Settings = SETTINGS,
        clock: FakeClock | None = None,
        lease_wait_s: float = 10,
        when: datetime = NOON,
    ) -> EditsOutcome:
        """The edits function on ``event`` (its lease waits on ``clock``, else real time)."""
        waits: dict[str, Any] = {}
        if clock is not None:
            waits = {"wall": clock.time, "sleep": clock.sleep}
        return apply_batch(
            clients or self.world.clients(),
            settings,
            read_batch(event),
            at=when,
            holder=EDITS,
            lease_wait_s=lease_wait_s,
            **waits,
        )


def _now() -> float:
    return time.time()


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch, teiji_logging_restored: None) -> Iterator[Fleet]:
    monkeypatch.setattr(lambda_handler, "_clients", {})
    monkeypatch.setenv("TEIJI_ALLOWED_REGIONS", f"ap-northeast-1,{EAST}")
    monkeypatch.setenv("TEIJI_FANOUT_QUEUE_URL", QUEUE)
    with moto_tables(SETTINGS) as world:
        yield Fleet(world)


def _sequences(event: dict[str, Any]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]


# A worker holds the edit's scope ----------------------------------------------------------------
def test_an_edit_while_its_scopes_worker_holds_the_lease_is_delivered_again_then_converges(
    fleet: Fleet,
) -> None:
    fleet.hold(US, WORKER)
    put_raw(fleet.world, {"pk": "schedule", "sk": WEB_US, "mode": "always_off"})
    event = fleet.stream.batch()
    log = CallLog()
    clock = FakeClock(_now())
    outcome = fleet.edits(event, clients=log.attach(fleet.world.clients()), clock=clock)
    assert outcome.response() == {
        "batchItemFailures": [{"itemIdentifier": s} for s in _sequences(event)]
    }
    assert 9 <= clock.slept <= 11  # it waited, boundedly
    assert not log.writes()  # nothing acted beside the worker
    assert fleet.desired(US, "web") == 4
    assert fleet.holder(US) == WORKER  # the worker's lease untouched
    # The worker ends; the event source mapping delivers the same batch again.
    break_holder(fleet.scope_lease(US), WORKER)
    _, result = deliver_at(fleet, event, DAY)
    assert result == {"batchItemFailures": []}
    assert fleet.desired(US, "web") == 0
    assert fleet.holder(US) is None  # taken and released
    # The ticks' lease was never the one taken.
    assert fleet.world.leases().read().record is None


def deliver_at(fleet: Fleet, event: dict[str, Any], when: str) -> tuple[dict[str, Any], Any]:
    """The function's entry point on ``event`` again (a redelivery), at ``when``."""
    with freeze_time(when):
        return event, lambda_handler.stream_handler(event, Context())


def test_a_worker_of_another_scope_holds_nothing_up(fleet: Fleet) -> None:
    fleet.hold(OWN, WORKER)
    put_raw(fleet.world, {"pk": "schedule", "sk": WEB_US, "mode": "always_off"})
    clock = FakeClock(_now())
    outcome = fleet.edits(fleet.stream.batch(), clock=clock)
    assert outcome.response() == {"batchItemFailures": []}
    assert clock.slept == 0
    assert fleet.desired(US, "web") == 0 and outcome.converged == [WEB_US]
    assert fleet.holder(OWN) == WORKER


def test_edits_of_two_scopes_converge_each_under_its_own_lease(fleet: Fleet) -> None:
    # One edit in each scope, in one batch.
    put_raw(fleet.world, {"pk": "schedule", "sk": "c1/api", "mode": "always_off"})
    put_raw(fleet.world, {"pk": "schedule", "sk": WEB_US, "mode": "always_off"})
    event = fleet.stream.batch()
    leases: list[tuple[Any, list[str], str | None]] = []
    real = engine.tick.run_tick

    def spy(*args: Any, **kwargs: Any) -> TickReport:
        report = real(*args, **kwargs)
        leases.append((kwargs["scope"], sorted(kwargs["services"]), report.lease))
        return report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.tick, "run_tick", spy)
        outcome = fleet.edits(event, clock=FakeClock(_now()))
    assert leases == [(OWN, ["c1/api"], "acquired"), (US, [WEB_US], "acquired")]
    assert outcome.response() == {"batchItemFailures": []}
    assert fleet.desired(OWN, "api") == 0 and fleet.desired(US, "web") == 0
    assert fleet.desired(OWN, "web") == 2  # not touched


def test_a_calendar_of_both_scopes_converges_the_free_one_and_comes_back_for_the_other(
    fleet: Fleet,
) -> None:
    fleet.world.put(
        schedule("c1/web", holidays=["company"]),
        schedule("c1/web", region=EAST, holidays=["company"]),
    )
    fleet.stream.records()
    fleet.hold(US, WORKER)
    fleet.world.put({"kind": "calendar", "name": "company", "dates": ["2026-12-02"]})
    event = fleet.stream.batch()
    clock = FakeClock(_now())
    outcome = fleet.edits(event, clock=clock)
    # A company holiday today: the own region's web stops now; the US one waits for its worker.
    assert fleet.desired(OWN, "web") == 0 and fleet.desired(US, "web") == 4
    assert outcome.converged == ["c1/web"]
    assert outcome.response() == {
        "batchItemFailures": [{"itemIdentifier": s} for s in _sequences(event)]
    }
    break_holder(fleet.scope_lease(US), WORKER)
    outcome = fleet.edits(event, clock=FakeClock(_now()))
    assert outcome.response() == {"batchItemFailures": []}
    assert fleet.desired(US, "web") == 0 and fleet.desired(OWN, "web") == 0


def test_of_two_scopes_only_the_held_ones_edits_are_delivered_again(fleet: Fleet) -> None:
    fleet.hold(US, WORKER)
    put_raw(fleet.world, {"pk": "schedule", "sk": "c1/api", "mode": "always_off"})
    put_raw(fleet.world, {"pk": "schedule", "sk": WEB_US, "mode": "always_off"})
    event = fleet.stream.batch()
    api, web = _sequences(event)
    clock = FakeClock(_now())
    outcome = fleet.edits(event, clock=clock)
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": web}]}
    assert api != web and outcome.converged == ["c1/api"]
    assert fleet.desired(OWN, "api") == 0 and fleet.desired(US, "web") == 4
    assert 9 <= clock.slept <= 11


def test_a_worker_freeing_its_scope_while_the_edits_wait_lets_them_act_at_once(
    fleet: Fleet,
) -> None:
    fleet.hold(US, WORKER)
    put_raw(fleet.world, {"pk": "schedule", "sk": WEB_US, "mode": "always_off"})
    clock = FakeClock(_now())

    def worker_ends(c: FakeClock) -> None:
        if c.slept >= 3:
            break_holder(fleet.scope_lease(US), WORKER)

    clock.on_sleep.append(worker_ends)
    outcome = fleet.edits(fleet.stream.batch(), clock=clock)
    assert outcome.response() == {"batchItemFailures": []}
    assert 3 <= clock.slept < 5
    assert fleet.desired(US, "web") == 0


def test_without_fanout_the_edits_take_the_ticks_lease_and_ignore_the_scopes(
    fleet: Fleet,
) -> None:
    # The single-invocation mode: the scopes' records are nobody's, the ticks' lease is taken.
    single = replace(SETTINGS, fanout_queue_url=None)
    fleet.hold(US, WORKER)
    put_raw(fleet.world, {"pk": "schedule", "sk": WEB_US, "mode": "always_off"})
    clock = FakeClock(_now())
    outcome = fleet.edits(fleet.stream.batch(), settings=single, clock=clock)
    assert outcome.response() == {"batchItemFailures": []} and clock.slept == 0
    assert fleet.desired(US, "web") == 0
    assert fleet.world.leases().read().record is not None  # the ticks' record was written


# Both at once, in threads -----------------------------------------------------------------------
Hook = Callable[[Operation, str | None, str], None]


def _at_first_write(then: Callable[[], object]) -> Hook:
    """A hook that runs ``then`` at the first ECS or scaling write, once."""
    done: list[bool] = []

    def hook(operation: Operation, account: str | None, region: str) -> None:
        if operation.write and operation.service != "dynamodb" and not done:
            done.append(True)
            then()

    return hook


def _race(
    fleet: Fleet,
    worker_scope: tuple[str | None, str | None],
    hooks: tuple[Hook, Hook],
    finished: tuple[threading.Event, threading.Event] | None = None,
    worker_late_s: float = 0.0,
) -> tuple[TickReport, EditsOutcome, CallLog, CallLog]:
    """A worker converging ``worker_scope`` at night and the edits function stopping ``WEB_US``,
    started together, ``hooks`` (the worker's, the edits') on their calls; each sets its
    ``finished`` event when it is done; the worker starts ``worker_late_s`` after the edits."""
    put_raw(fleet.world, {"pk": "schedule", "sk": WEB_US, "mode": "always_off"})
    event = fleet.stream.batch()
    done = finished or (threading.Event(), threading.Event())
    barrier = threading.Barrier(2)
    logs = (CallLog(), CallLog())
    results: list[Any] = [None, None]

    def clients(me: int) -> Any:
        # serialize=True: each request is atomic, as on AWS (moto alone is not, under threads)
        made = FaultLayer(serialize=True).attach(logs[me].attach(fleet.world.clients()))
        made.before_call.append(hooks[me])
        return made

    def worker() -> None:
        made = clients(0)
        barrier.wait()
        time.sleep(worker_late_s)
        try:
            results[0] = run_tick(
                made, SETTINGS, at=NIGHT, dry_run=False, scope=worker_scope, holder=WORKER
            )
        finally:
            done[0].set()

    def edits() -> None:
        made = clients(1)
        barrier.wait()
        try:
            results[1] = fleet.edits(event, clients=made, lease_wait_s=3)
        finally:
            done[1].set()

    threads = [threading.Thread(target=worker), threading.Thread(target=edits)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in results)
    return results[0], results[1], logs[0], logs[1]


# At once, the worker first (the edits read the documents before they ask for the lease);
# started half a second late, the edits come first.
@pytest.mark.parametrize("worker_late_s", [0.0, 0.5])
def test_a_worker_and_the_edits_function_on_one_scope_never_act_at_once(
    fleet: Fleet, worker_late_s: float
) -> None:
    # Whichever takes the scope's lease holds its first write until the other has finished.
    finished = (threading.Event(), threading.Event())
    hooks = (
        _at_first_write(lambda: finished[1].wait(timeout=20)),
        _at_first_write(lambda: finished[0].wait(timeout=20)),
    )
    report, outcome, worker_log, edits_log = _race(fleet, US, hooks, finished, worker_late_s)
    acted = [bool(worker_log.writes()), bool(edits_log.writes())]
    assert acted in ([True, False], [False, True])  # exactly one wrote
    if acted[0]:  # the worker first: the edits waited, then went back to the stream
        assert report.lease == "acquired"
        assert outcome.response()["batchItemFailures"] and outcome.converged == []
    else:  # the edits first: the worker found the scope held
        assert report.lease == "held" and report.lease_holder == EDITS
        assert outcome.response() == {"batchItemFailures": []}
    assert fleet.desired(US, "web") == 0  # stopped once, by one of them
    assert fleet.holder(US) is None


def test_a_worker_and_the_edits_function_on_two_scopes_act_at_once(fleet: Fleet) -> None:
    # Each waits at its first write for the other to reach its own: both hold their leases
    # and write at the same time, or the barrier breaks and the test fails.
    meet = threading.Barrier(2, timeout=20)
    hooks = (_at_first_write(meet.wait), _at_first_write(meet.wait))
    report, outcome, worker_log, edits_log = _race(fleet, OWN, hooks)
    assert not meet.broken
    assert report.lease == "acquired" and outcome.response() == {"batchItemFailures": []}
    assert worker_log.writes() and edits_log.writes()
    assert outcome.converged == [WEB_US]
    assert fleet.desired(OWN, "web") == 0 and fleet.desired(OWN, "api") == 0
    assert fleet.desired(US, "web") == 0


# A worker meets the edits function --------------------------------------------------------------
def _work_records(fleet: Fleet, when: datetime) -> list[dict[str, Any]]:
    """Run the orchestrator at ``when`` on a real (moto) queue; its messages as SQS records."""
    sqs = boto3.client("sqs", region_name="ap-northeast-1")
    queue = sqs.create_queue(QueueName="teiji-work")["QueueUrl"]
    clients = fleet.world.clients()
    orchestrate(clients, SETTINGS, sqs_sender(clients, queue), at=when, dry_run=False)
    records = []
    for message in sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", []):
        records.append(
            {
                "messageId": message["MessageId"],
                "body": message["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
            }
        )
    return records


def _us_only(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if '"region":"us-east-1"' in r["body"]]


def test_a_worker_that_finds_the_edits_function_on_its_scope_waits_for_it(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []

    def edits_done(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:  # the edits function releases the scope
            break_holder(fleet.scope_lease(US), EDITS)

    monkeypatch.setattr(lambda_handler, "_pause", edits_done)
    with freeze_time("2026-12-02T14:00:00Z"):  # 23:00 in Tokyo: stop
        records = _us_only(_work_records(fleet, NIGHT))
        fleet.hold(US, EDITS)
        result = lambda_handler.fanout_worker_handler({"Records": records}, Context())
    assert result == {"batchItemFailures": []}
    assert pauses == [1.0, 1.0]
    assert fleet.desired(US, "web") == 0


def test_a_worker_leaves_the_scope_when_the_edits_function_keeps_it(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(lambda_handler, "_pause", pauses.append)
    with freeze_time("2026-12-02T14:00:00Z"):
        records = _us_only(_work_records(fleet, NIGHT))
        fleet.hold(US, EDITS, ttl=600)
        result = lambda_handler.fanout_worker_handler({"Records": records}, Context())
    # Waited its bounded while, then SQS delivers the scope again.
    assert result == {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}
    assert len(pauses) == lambda_handler.EDITS_LEASE_WAIT_S
    assert fleet.desired(US, "web") == 4


def test_a_worker_that_finds_another_worker_leaves_at_once(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(lambda_handler, "_pause", pauses.append)
    with freeze_time("2026-12-02T14:00:00Z"):
        records = _us_only(_work_records(fleet, NIGHT))
        fleet.hold(US, WORKER)
        result = lambda_handler.fanout_worker_handler({"Records": records}, Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}
    assert pauses == []
    assert fleet.desired(US, "web") == 4
