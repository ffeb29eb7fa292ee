"""Fan-out per (account, region): the orchestrator, the workers and the one tick report, in moto
(SQS, DynamoDB, ECS, Application Auto Scaling), with the world's faults: a worker that fails,
SQS delivering twice, two orchestrators of one tick, a worker killed holding its lease, hostile
message bodies and dry runs."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from engine.config import Access, Settings
from engine.fanout import (
    MAX_RECEIVES,
    BadWorkItemError,
    WorkItem,
    parse_work_item,
    scope_id,
    tick_id,
)
from engine.fanout_run import FanoutStore, orchestrate, publish_report, sqs_sender, work
from engine.lease import LeaseTable, acquire, cover_for, scope_lease_pk
from engine.logs import setup_logging
from engine.report import TickReport
from engine.tick import ScopeHooks, run_tick
from tests.world import World, at, moto_tables, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: every schedule says stopped
EAST = "us-east-1"
OWN = scope_id((None, None))
US = scope_id((None, EAST))
SETTINGS = Settings(access=Access(regions=("ap-northeast-1", EAST)))


@dataclass
class Fleet:
    world: World
    east: World
    queue: str
    dlq: str
    sqs: Any
    settings: Settings = SETTINGS
    runs: list[str] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # scope -> deliveries that raise

    def orchestrate(self, when: datetime = STOP, *, dry_run: bool = False) -> Any:
        clients = self.world.clients()
        return orchestrate(
            clients, self.settings, sqs_sender(clients, self.queue), at=when, dry_run=dry_run
        )

    def run_scope(self, clock: Callable[[], float] | None = None) -> Callable[..., TickReport]:
        def run(item: WorkItem, when: datetime, hooks: ScopeHooks | None = None) -> TickReport:
            scope = scope_id(item.scope)
            self.runs.append(scope)
            if self.fail.get(scope, 0) > 0:
                self.fail[scope] -= 1
                raise RuntimeError(f"worker for {scope} died")
            return run_tick(
                self.world.clients(),
                self.settings,
                at=when,
                dry_run=item.dry_run,
                scope=item.scope,
                clock=clock,
                schedule_keys=item.keys,
                hooks=hooks,
            )

        return run

    def receive(self, queue: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=queue or self.queue,
                MaxNumberOfMessages=10,
                VisibilityTimeout=300,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            if not got:
                return found
            found.extend(got)

    def pump(self, when: datetime = STOP, clock: Callable[[], float] | None = None) -> list[str]:
        """Deliver every visible message as the event source mapping does: deleted unless the
        worker asks for it again; SQS moves it to the DLQ after MAX_RECEIVES deliveries."""
        verdicts: list[str] = []
        for _ in range(MAX_RECEIVES + 1):
            messages = self.receive()
            if not messages:
                break
            for message in messages:
                item = parse_work_item(message["Body"])
                verdict = work(
                    self.world.clients(),
                    self.settings,
                    item,
                    receives=int(message["Attributes"]["ApproximateReceiveCount"]),
                    now=when + timedelta(seconds=5),
                    run_scope=self.run_scope(clock),
                    holder="test-worker",
                )
                verdicts.append(f"{item.kind}:{scope_id(item.scope)}:{verdict}")
                if verdict != "retry":
                    self.sqs.delete_message(
                        QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"]
                    )
                else:  # its visibility timeout runs out: delivered again (or dead-lettered)
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=0,
                    )
        return verdicts

    def store(self) -> FanoutStore:
        return FanoutStore(self.world.clients(), self.settings.state_table)


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    with moto_tables(SETTINGS) as world:
        east = World(region=EAST, settings=SETTINGS)
        world.create_service("c1", "web", desired=2)
        world.create_service("c1", "api", desired=3)
        east.create_service("c1", "web", desired=4)
        world.put(schedule("c1/web"), schedule("c1/api"), schedule("c1/web", region=EAST))
        sqs = boto3.client("sqs", region_name="ap-northeast-1")
        dlq = sqs.create_queue(QueueName="teiji-work-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
        redrive = {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": 2}
        queue = sqs.create_queue(
            QueueName="teiji-work",
            Attributes={"RedrivePolicy": json.dumps(redrive)},
        )["QueueUrl"]
        yield Fleet(world, east, queue, dlq, sqs)


def _desired(world: World, name: str) -> int:
    return int(
        world.ecs.describe_services(cluster="c1", services=[name])["services"][0]["desiredCount"]
    )


# The orchestrator -------------------------------------------------------------------------------
def test_the_orchestrator_sends_one_item_per_scope_and_records_the_tick(fleet: Fleet) -> None:
    handout = fleet.orchestrate()
    assert handout.status == "sent" and handout.scopes == {OWN: 2, US: 1}
    bodies = [parse_work_item(m["Body"]) for m in fleet.receive()]
    scopes = sorted(scope_id(b.scope) for b in bodies if b.kind == "scope")
    assert scopes == [OWN, US]
    assert {b.at for b in bodies} == {STOP} and {b.tick for b in bodies} == {handout.tick}
    # The aggregate message waits (DelaySeconds) until the end of the tick's interval.
    delayed = fleet.sqs.get_queue_attributes(
        QueueUrl=fleet.queue, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]["ApproximateNumberOfMessagesDelayed"]
    assert delayed == "1"
    record = fleet.store().read_tick(handout.tick)
    assert record is not None and record.scopes == {OWN: 2, US: 1} and record.done == 0
    # It changed nothing itself.
    assert _desired(fleet.world, "web") == 2 and _desired(fleet.east, "web") == 4


def test_two_orchestrators_of_one_tick_send_it_once(fleet: Fleet) -> None:
    first = fleet.orchestrate()
    second = fleet.orchestrate(STOP + timedelta(seconds=40))  # a retried invocation
    assert (first.status, second.status) == ("sent", "already sent")
    assert first.tick == second.tick
    assert len([m for m in fleet.receive()]) == 2  # two scopes, nothing twice


def test_two_orchestrators_racing_at_the_same_moment_send_the_tick_once(fleet: Fleet) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda s: fleet.orchestrate(STOP + timedelta(seconds=s)), [0, 1]))
    assert sorted(h.status for h in found) == ["already sent", "sent"]
    assert len(fleet.receive()) == 2


def test_a_dry_run_orchestrator_sends_and_records_nothing(fleet: Fleet) -> None:
    handout = fleet.orchestrate(dry_run=True)
    assert handout.status == "planned" and handout.scopes == {OWN: 2, US: 1}
    assert fleet.receive() == []
    assert fleet.store().read_tick(handout.tick) is None


# The workers and the report ---------------------------------------------------------------------
def test_workers_converge_each_scope_and_the_last_publishes_one_report(fleet: Fleet) -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream)
    handout = fleet.orchestrate()
    verdicts = fleet.pump()
    assert sorted(verdicts) == [f"scope:{OWN}:done", f"scope:{US}:done"]
    assert _desired(fleet.world, "web") == 0 and _desired(fleet.world, "api") == 0
    assert _desired(fleet.east, "web") == 0
    record = fleet.store().read_tick(handout.tick)
    assert record is not None and record.done == 2 and record.reported == "test-worker"
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    metrics = [line for line in lines if line.get("event") == "tick metrics"]
    assert len(metrics) == 1  # one metrics line for the tick, none per scope
    assert metrics[0]["Changed"] == 3 and metrics[0]["ServicesStopped"] == 3
    assert metrics[0]["Failed"] == 0
    # The delayed aggregate message, when it comes, publishes nothing more.
    assert publish_report(fleet.world.clients(), SETTINGS, fleet.store(), handout.tick, "x") is None


def test_a_worker_that_fails_once_is_retried_once(fleet: Fleet) -> None:
    fleet.fail[US] = 1
    handout = fleet.orchestrate()
    verdicts = fleet.pump()
    assert f"scope:{US}:retry" in verdicts and f"scope:{US}:done" in verdicts
    assert fleet.runs.count(US) == 2
    assert _desired(fleet.east, "web") == 0
    record = fleet.store().read_tick(handout.tick)
    assert record is not None and record.done == 2


def test_a_second_failure_is_reported_and_never_blocks_the_other_scopes(fleet: Fleet) -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream)
    fleet.fail[US] = 5
    handout = fleet.orchestrate()
    fleet.pump()
    assert fleet.runs.count(US) == MAX_RECEIVES  # retried once, never more
    assert _desired(fleet.world, "web") == 0 and _desired(fleet.east, "web") == 4
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    (report,) = [line for line in lines if line.get("event") == "fan-out tick report"]
    assert report["failed"] is True and list(report["failed_scopes"]) == [US]
    assert "died" in report["failed_scopes"][US]
    (metrics,) = [line for line in lines if line.get("event") == "tick metrics"]
    assert metrics["Failed"] == 1 and metrics["Changed"] == 2
    assert fleet.store().read_tick(handout.tick) is not None


def test_a_worker_killed_twice_is_counted_failed_by_the_aggregate(fleet: Fleet) -> None:
    handout = fleet.orchestrate()
    messages = fleet.receive()
    own = next(m for m in messages if parse_work_item(m["Body"]).scope == (None, None))
    item = parse_work_item(own["Body"])
    assert (
        work(
            fleet.world.clients(),
            SETTINGS,
            item,
            receives=1,
            now=STOP,
            run_scope=fleet.run_scope(),
            holder="w",
        )
        == "done"
    )
    # The US worker was killed on both deliveries (its messages are in the DLQ): the aggregate
    # message reports the tick without it.
    report = publish_report(fleet.world.clients(), SETTINGS, fleet.store(), handout.tick, "agg")
    assert report is not None and list(report.failed_scopes) == [US]
    assert report.figures["Failed"] == 1 and report.figures["Changed"] == 2
    assert report.done == (OWN,)


def test_a_duplicate_delivery_neither_acts_nor_counts_twice(fleet: Fleet) -> None:
    handout = fleet.orchestrate()
    bodies = [m["Body"] for m in fleet.receive()]
    for body in bodies:  # SQS at least once: every message delivered again
        fleet.sqs.send_message(QueueUrl=fleet.queue, MessageBody=body)
    for body in bodies:
        fleet.sqs.send_message(QueueUrl=fleet.queue, MessageBody=body)
    verdicts = fleet.pump()
    assert sorted(verdicts).count(f"scope:{OWN}:done") == 1
    assert sorted(verdicts).count(f"scope:{OWN}:duplicate") == 1
    # The second delivery learns it is one under the scope's lease, beside the documents'
    # read, and changes nothing: nothing was left to change, and nothing is counted again.
    assert fleet.runs.count(OWN) == 2
    assert _desired(fleet.world, "web") == 0 and _desired(fleet.world, "api") == 0
    record = fleet.store().read_tick(handout.tick)
    assert record is not None and record.done == 2


def test_a_worker_killed_holding_its_lease_blocks_that_scope_until_the_lease_runs_out(
    fleet: Fleet,
) -> None:
    clients = fleet.world.clients()
    table = LeaseTable(clients, SETTINGS.state_table, pk=scope_lease_pk(US))
    wall = 1_800_000_000.0
    dead = acquire(
        table, None, cover_for(None, 1, None), "lambda:dead", 120, lambda: wall, may_switch=True
    )
    assert not isinstance(dead, type(None))
    handout = fleet.orchestrate()
    verdicts = fleet.pump(clock=lambda: wall + 10)
    # The other scope is not held up; the held one is delivered again, then left to the
    # next tick (its worker never acted beside the dead one).
    assert f"scope:{OWN}:done" in verdicts and f"scope:{US}:retry" in verdicts
    assert _desired(fleet.east, "web") == 4
    record = fleet.store().read_tick(handout.tick)
    assert record is not None and record.done == 1
    # The next tick, after the dead worker's lease ran out, converges it.
    later = STOP + timedelta(minutes=15)
    fleet.orchestrate(later)
    fleet.pump(later, clock=lambda: wall + 200)
    assert _desired(fleet.east, "web") == 0


def test_a_late_retry_decides_now_not_at_the_stale_instant(fleet: Fleet) -> None:
    # Sent at the stop, delivered after the morning start: it must not stop the services.
    morning = at("2026-12-02T06:00:00+09:00")
    fleet.orchestrate()
    seen: list[datetime] = []
    for message in fleet.receive():
        item = parse_work_item(message["Body"])
        work(
            fleet.world.clients(),
            SETTINGS,
            item,
            receives=1,
            now=morning,
            run_scope=lambda item, when, hooks: _seen(seen, fleet.run_scope()(item, when, hooks)),
            holder="late",
        )
    assert seen and set(seen) == {morning}
    assert _desired(fleet.world, "web") == 2


def _seen(seen: list[datetime], report: TickReport) -> TickReport:
    seen.append(report.at)  # the instant it decided at
    return report


def test_a_forged_instant_in_a_real_work_item_is_not_what_decides(fleet: Fleet) -> None:
    # Someone who can send to the queue copies a real item of the 04:50 tick (stopped) and
    # moves its instant past the 05:00 start: the worker decides at the instant the
    # orchestrator recorded.
    recorded = at("2026-12-02T04:50:00+09:00")
    handout = fleet.orchestrate(recorded)
    forged = WorkItem("scope", handout.tick, at("2026-12-02T05:01:00+09:00"), (None, EAST))
    seen: list[datetime] = []

    def run(item: WorkItem, when: datetime, hooks: ScopeHooks | None) -> TickReport:
        report: TickReport = fleet.run_scope()(item, when, hooks)
        seen.append(report.at)  # the instant it decided at
        return report

    now = at("2026-12-02T05:02:00+09:00")
    work(fleet.world.clients(), SETTINGS, forged, receives=1, now=now, run_scope=run, holder="f")
    assert seen == [recorded] and _desired(fleet.east, "web") == 0


# Hostile messages and dry runs ------------------------------------------------------------------
GOOD = WorkItem("scope", tick_id(STOP, timedelta(minutes=15)), STOP, (None, EAST)).body()


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        GOOD[:-5],  # cut
        "[]",
        "{" * 100_000,
        GOOD.replace('"v":1', '"v":true'),
        GOOD.replace('"kind":"scope"', '"kind":"tick"'),
        GOOD.replace('"region":"us-east-1"', '"region":"us-east-1; rm -rf /"'),
        GOOD.replace('"account":null', '"account":"12345"'),
        GOOD.replace('"dry_run":false', '"dry_run":"no"'),
        GOOD.replace("+09:00", ""),  # an instant without its offset
        GOOD.replace('"tick":"', '"tick":"../'),
        GOOD[:-1] + ',"services":["c1/web"]}',  # an unknown field
        GOOD + " " * 300_000,  # longer than SQS takes
        GOOD[:-1] + ',"keys":"c1/web"}',
        GOOD[:-1] + ',"keys":[1]}',
        GOOD[:-1] + ',"keys":["c1/web"]}',  # the deployment's own scope, not us-east-1
        GOOD[:-1] + ',"keys":["c1/web@us-east-1/123"]}',
        GOOD[:-1] + ',"keys":["' + "c/" + "w" * 700 + '@us-east-1"]}',
        GOOD[:-1] + ',"keys":[""]}',
    ],
)
def test_hostile_bodies_are_refused(body: object) -> None:
    with pytest.raises(BadWorkItemError):
        parse_work_item(body)


def test_hostile_messages_are_dropped_not_retried_and_act_on_nothing(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import handler

    monkeypatch.setenv("TEIJI_ALLOWED_REGIONS", f"ap-northeast-1,{EAST}")
    handler._clients.clear()
    forged = WorkItem("scope", "20261201T1400Z", STOP, (None, EAST)).body()  # no such tick
    event = {
        "Records": [
            {"messageId": "1", "body": GOOD[:30], "attributes": {"ApproximateReceiveCount": "1"}},
            {"messageId": "2", "body": forged, "attributes": {"ApproximateReceiveCount": "x"}},
            {"messageId": "3"},
            "not a record",
        ]
    }
    assert handler.fanout_worker_handler(event, None) == {"batchItemFailures": []}
    assert handler.fanout_worker_handler({"Records": "x"}, None) == {"batchItemFailures": []}
    assert _desired(fleet.east, "web") == 4


def test_a_dry_run_work_item_changes_nothing_and_records_nothing(fleet: Fleet) -> None:
    handout = fleet.orchestrate()
    item = WorkItem("scope", handout.tick, STOP, (None, EAST), dry_run=True)
    verdict = work(
        fleet.world.clients(),
        SETTINGS,
        item,
        receives=1,
        now=STOP,
        run_scope=fleet.run_scope(),
        holder="dry",
    )
    assert verdict == "dry run" and _desired(fleet.east, "web") == 4
    record = fleet.store().read_tick(handout.tick)
    assert record is not None and record.done == 0
    assert not fleet.store().has_outcome(handout.tick, US)
    assert (
        LeaseTable(fleet.world.clients(), SETTINGS.state_table, pk=scope_lease_pk(US)).read().record
        is None
    )


# The entry points -------------------------------------------------------------------------------
def test_the_scheduled_tick_in_fanout_mode_hands_out_and_refuses_named_services(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import handler

    monkeypatch.setenv("TEIJI_ALLOWED_REGIONS", f"ap-northeast-1,{EAST}")
    monkeypatch.setenv("TEIJI_FANOUT_QUEUE_URL", fleet.queue)
    handler._clients.clear()
    result = handler.lambda_handler({"shard": 0, "shards": 1}, None)
    assert result["fanout"] is True and result["scopes"] == 2 and result["status"] == "sent"
    assert _desired(fleet.world, "web") == 2  # the orchestrator converged nothing itself
    with pytest.raises(handler.BadEventError, match="fan-out mode"):
        handler.lambda_handler({"services": ["c1/web"]}, None)
    # The worker entry point converges what the queue holds.
    records = [
        {
            "messageId": m["MessageId"],
            "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": m["Attributes"]["ApproximateReceiveCount"]},
        }
        for m in fleet.receive()
    ]
    assert handler.fanout_worker_handler({"Records": records}, None) == {"batchItemFailures": []}


def test_a_bad_queue_url_stops_the_settings() -> None:
    from engine.config import SettingsError

    with pytest.raises(SettingsError, match=r"TEIJI_FANOUT_QUEUE_URL.*not an SQS queue URL"):
        Settings.from_env({"TEIJI_FANOUT_QUEUE_URL": "sqs://x; rm"})
    url = "https://sqs.ap-northeast-1.amazonaws.com/111111111111/teiji-work"
    assert Settings.from_env({"TEIJI_FANOUT_QUEUE_URL": url}).fanout_queue_url == url
