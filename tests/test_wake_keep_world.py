"""The keep-awake run from the world's side, against moto's server: a service woken by a
request, its rule restored, then requests the load balancer counts (put with PutMetricData
in ``AWS/ApplicationELB`` as the load balancer publishes them) keep the wake going. People
cancel or edit the wake while a run reads, answers arrive cut or garbled, runs race."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.aws.operations import Operation
from engine.config import Settings
from engine.wake_handler import answer_request
from engine.wake_keep_run import KeepReport, keep_awake
from engine.wake_request import read_request
from tests.corrupt import CorruptAnswers, garble
from tests.wakeworld import alb_event, wake_world
from tests.world import CallLog, World, at, run_cli, schedule

STOP_AT = "2026-12-01T22:15:00+09:00"  # Tuesday, after the window
WAKE_AT = at("2026-12-01T23:00:00+09:00")


@pytest.fixture
def world(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> World:
    """Woken at 23:00 by a request, healthy, and its rule restored at 23:00:15: requests now
    go to the service, not to the wake function."""
    w = wake_world(endpoint, capsys, monkeypatch)
    _tick(capsys, endpoint, STOP_AT)
    _request(w, WAKE_AT)
    w._raw("elbv2").register_targets(
        TargetGroupArn=w.target_group(), Targets=[{"Id": "10.0.1.10", "Port": 8080}]
    )
    _request(w, WAKE_AT + timedelta(seconds=15))
    rule = w._raw("elbv2").describe_rules(RuleArns=[w._network["rule"]])["Rules"][0]
    assert rule["Actions"][0]["TargetGroupArn"] == w.target_group()
    assert _until(w) == WAKE_AT + timedelta(hours=2)
    return w


def _tick(capsys: pytest.CaptureFixture[str], endpoint: str, when: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, endpoint, "tick", "--at", when, "--json")
    assert code in (0, 1), out + err
    report: dict[str, Any] = json.loads(out)
    return next(s for s in report["services"] if s["service"] == "c1/web")


def _request(world: World, when: datetime) -> None:
    request = read_request(alb_event(world._network["wake"]))
    answer_request(world.clients(), Settings.from_env(), request, at=when)


def _item(world: World) -> dict[str, Any] | None:
    found = world.dynamodb.get_item(
        TableName=world.settings.config_table,
        Key={"pk": {"S": "override"}, "sk": {"S": "c1/web#wake"}},
        ConsistentRead=True,
    ).get("Item")
    return {k: next(iter(v.values())) for k, v in found.items()} if found else None


def _until(world: World) -> datetime | None:
    item = _item(world)
    return datetime.fromisoformat(item["until"]) if item else None


def _dims(world: World, group: str | None = None) -> list[dict[str, str]]:
    balancer = world._network["lb"].split(":loadbalancer/", 1)[1]
    target = (group or world.target_group()).rsplit(":", 1)[1]
    return [{"Name": "LoadBalancer", "Value": balancer}, {"Name": "TargetGroup", "Value": target}]


def _requests(world: World, *minutes: int, count: float = 4.0, group: str | None = None) -> None:
    """What the load balancer publishes: RequestCount sums in these minutes after the wake."""
    world._raw("cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "RequestCount",
                "Dimensions": _dims(world, group),
                "Timestamp": WAKE_AT + timedelta(minutes=m),
                "Value": count,
                "Unit": "Count",
            }
            for m in minutes
        ],
    )


def _run(world: World, when: datetime, clients: Any = None) -> KeepReport:
    return keep_awake(clients or world.clients(), Settings.from_env(), at=when)


def test_requests_counted_by_the_load_balancer_extend_the_wake(world: World) -> None:
    _requests(world, 10, 38, 40)
    log = CallLog()
    clients = log.attach(world.clients())
    report = _run(world, WAKE_AT + timedelta(minutes=45), clients)
    assert report.outcomes == {"c1/web": "extended"}, report
    assert report.series == 1 and report.read_failed is None
    # keep_for (2h) after the end of the latest minute counted (23:40-23:41).
    assert _until(world) == WAKE_AT + timedelta(minutes=41, hours=2)
    [query] = log.named("GetMetricData")
    [asked] = query.params["MetricDataQueries"]
    assert asked["MetricStat"]["Metric"]["Namespace"] == "AWS/ApplicationELB"
    assert asked["MetricStat"]["Period"] == 60 and asked["MetricStat"]["Stat"] == "Sum"
    assert {d["Name"]: d["Value"] for d in asked["MetricStat"]["Metric"]["Dimensions"]} == {
        "LoadBalancer": world._network["lb"].split(":loadbalancer/", 1)[1],
        "TargetGroup": "targetgroup/" + world.target_group().split(":targetgroup/", 1)[1],
    }
    assert [c.operation for c in log.calls if c.write] == ["PutItem"]
    # The item is still a wake: the same start, author and reason; only its end moved.
    item = _item(world)
    assert item is not None and item["created_by"] == "wake"
    assert datetime.fromisoformat(item["start"]) == WAKE_AT

    # Five minutes later, nothing new that could move it: nothing is written.
    log.clear()
    again = _run(world, WAKE_AT + timedelta(minutes=50), clients)
    assert again.outcomes == {"c1/web": "no-request"}
    assert not [c for c in log.calls if c.write]


def test_without_requests_the_wake_ends_and_the_next_tick_stops_the_service(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Requests to another service's target group on the same load balancer do not count.
    other = world._raw("elbv2").create_target_group(
        Name="other", Protocol="HTTP", Port=80, VpcId=world._network["vpc"], TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    _requests(world, 100, 110, group=other)
    for minutes in range(5, 120, 5):
        report = _run(world, WAKE_AT + timedelta(minutes=minutes))
        assert report.outcomes == {"c1/web": "no-request"}, (minutes, report)
    assert _until(world) == WAKE_AT + timedelta(hours=2)
    ended = _run(world, WAKE_AT + timedelta(hours=2, minutes=1))
    assert ended.wakes == 0 and ended.outcomes == {}
    stopped = _tick(capsys, endpoint, (WAKE_AT + timedelta(hours=2, minutes=1)).isoformat())
    assert stopped["outcome"] == "changed"
    assert world.state("c1", "web").desired == 0


def test_never_past_the_cap_from_the_wakes_start(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_MAX_OVERRIDE", "3h")
    _requests(world, 60)
    report = _run(world, WAKE_AT + timedelta(minutes=65))
    assert report.outcomes == {"c1/web": "extended (to the cap)"}
    assert _until(world) == WAKE_AT + timedelta(hours=3)
    _requests(world, 150, 170)
    report = _run(world, WAKE_AT + timedelta(minutes=172))
    assert report.outcomes == {"c1/web": "none"}
    assert _until(world) == WAKE_AT + timedelta(hours=3)


def test_a_persons_override_is_never_touched(world: World) -> None:
    world.put(
        {
            "kind": "override",
            "service": "c1/web",
            "state": "running",
            "start": "2026-12-01T23:10:00+09:00",
            "until": "2026-12-02T00:30:00+09:00",
            "reason": "demo tonight",
            "created_by": "suzuki",
            "id": "demo",
        }
    )
    before = world.config().get_item("override", "c1/web#demo")
    _requests(world, 50)
    assert _run(world, WAKE_AT + timedelta(minutes=55)).outcomes == {"c1/web": "extended"}
    assert world.config().get_item("override", "c1/web#demo") == before


def test_a_wake_a_person_took_over_is_theirs(world: World) -> None:
    """Rewritten by hand with another author: the run leaves it alone."""
    item = world.config().get_item("override", "c1/web#wake")
    assert item is not None
    world.put_item({**item, "created_by": "suzuki"})
    _requests(world, 50)
    report = _run(world, WAKE_AT + timedelta(minutes=55))
    assert report.wakes == 0
    assert _until(world) == WAKE_AT + timedelta(hours=2)


def test_a_schedule_that_no_longer_asks_is_not_kept_awake(world: World) -> None:
    world.put(schedule("c1/web"))  # wake taken out while the wake runs
    _requests(world, 50)
    report = _run(world, WAKE_AT + timedelta(minutes=55))
    assert report.outcomes == {"c1/web": "its schedule no longer asks for wake on request"}
    assert _until(world) == WAKE_AT + timedelta(hours=2)


def test_a_service_deleted_while_awake_is_left_to_the_tick(world: World) -> None:
    _requests(world, 50)
    world.delete_service("c1", "web")
    log = CallLog()
    report = _run(world, WAKE_AT + timedelta(minutes=55), log.attach(world.clients()))
    assert report.outcomes == {"c1/web": "no service or no target group"}
    assert log.count("GetMetricData") == 0 and not [c for c in log.calls if c.write]
    assert _until(world) == WAKE_AT + timedelta(hours=2)


def _during_metrics(clients: Any, action: Any) -> Any:
    """Run ``action`` right before each GetMetricData call (after the run read the wake)."""

    def hook(operation: Operation, account: str | None, region: str | None) -> None:
        if operation.name == "GetMetricData":
            action()

    clients.before_call.append(hook)
    return clients


def test_a_person_cancelling_the_wake_while_the_run_reads_wins(world: World) -> None:
    _requests(world, 50)
    cancel = lambda: world.dynamodb.delete_item(  # noqa: E731
        TableName=world.settings.config_table,
        Key={"pk": {"S": "override"}, "sk": {"S": "c1/web#wake"}},
    )
    report = _run(world, WAKE_AT + timedelta(minutes=55), _during_metrics(world.clients(), cancel))
    assert report.outcomes == {"c1/web": "changed meanwhile; left as it is"}
    assert _item(world) is None, "a cancelled wake is not written again"


def test_a_person_editing_the_wake_while_the_run_reads_wins(world: World) -> None:
    _requests(world, 50)

    def extend() -> None:  # as `teiji override extend c1/web#wake --until 05:00` writes it
        item = world.config().get("override", "c1/web#wake")
        assert item is not None
        world.put({**item, "until": "2026-12-02T05:00:00+09:00"})

    report = _run(world, WAKE_AT + timedelta(minutes=55), _during_metrics(world.clients(), extend))
    assert report.outcomes == {"c1/web": "changed meanwhile; left as it is"}
    assert _until(world) == at("2026-12-02T05:00:00+09:00")
    # The next run reads the person's end: later than the requests ask, so it stands.
    assert _run(world, WAKE_AT + timedelta(minutes=60)).outcomes == {"c1/web": "none"}
    assert _until(world) == at("2026-12-02T05:00:00+09:00")


@pytest.mark.parametrize("damage", ["cut", "garble"])
def test_an_answer_that_cannot_be_read_extends_nothing_and_is_logged(
    world: World, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    _requests(world, 50, 51, 52)
    answers = CorruptAnswers()
    if damage == "cut":
        answers.cut("GetMetricData")
    else:
        answers.answer("GetMetricData", garble)
    clients = answers.attach(world.clients())
    with caplog.at_level(logging.INFO, logger="teiji"):
        report = _run(world, WAKE_AT + timedelta(minutes=55), clients)
    assert answers.damaged["GetMetricData"] == 1
    assert report.read_failed is not None and "cannot be read" in report.read_failed
    assert report.outcomes == {"c1/web": "not read"}
    assert _until(world) == WAKE_AT + timedelta(hours=2), "never extended, never shortened"
    [line] = [r for r in caplog.records if r.getMessage() == "keep-awake run"]
    assert line.levelno == logging.ERROR
    # The next run, with a whole answer, extends as usual.
    assert _run(world, WAKE_AT + timedelta(minutes=60)).outcomes == {"c1/web": "extended"}
    assert _until(world) == WAKE_AT + timedelta(minutes=53, hours=2)


def test_two_runs_racing_write_once(world: World) -> None:
    _requests(world, 50)
    both_read = threading.Barrier(2, timeout=30)
    runs = [_during_metrics(world.clients(), both_read.wait) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda c: _run(world, WAKE_AT + timedelta(minutes=55), c), runs))
    outcomes = sorted(r.outcomes["c1/web"] for r in reports)
    assert outcomes == ["changed meanwhile; left as it is", "extended"]
    assert _until(world) == WAKE_AT + timedelta(minutes=51, hours=2)


def test_the_wake_function_answers_its_schedules_event(
    world: World, endpoint: str, monkeypatch: pytest.MonkeyPatch, teiji_logging_restored: None
) -> None:
    from freezegun import freeze_time

    from engine.handler import wake_handler

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    _requests(world, 50)
    with freeze_time(WAKE_AT + timedelta(minutes=55)):
        result = wake_handler({"teiji": "keep-awake"}, None)
    assert result["outcomes"] == {"c1/web": "extended"}
    assert _until(world) == WAKE_AT + timedelta(minutes=51, hours=2)
    # A load balancer's event is still a request (a body saying so changes nothing).
    event = alb_event(world._network["wake"], browser=False)
    event["body"] = json.dumps({"teiji": "keep-awake"})
    with freeze_time(WAKE_AT + timedelta(minutes=56)):
        answer = wake_handler(event, None)
    assert answer["statusCode"] == 503  # nothing asleep answers it: the rule is restored


def test_wake_on_request_off_reads_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEIJI_WAKE_TARGET_GROUPS", "")
    log = CallLog()
    report = _run(world, WAKE_AT + timedelta(minutes=55), log.attach(world.clients()))
    assert report.wakes == 0 and log.calls == []


def test_overrides_that_cannot_be_listed_stop_the_run_and_say_so(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    _requests(world, 50)
    clients = CorruptAnswers().cut("Query").attach(world.clients())
    with caplog.at_level(logging.INFO, logger="teiji"):
        report = _run(world, WAKE_AT + timedelta(minutes=55), clients)
    assert report.read_failed is not None
    assert report.read_failed.startswith("the overrides cannot be read: ")
    assert "Query: the answer cannot be read" in report.read_failed
    assert report.outcomes == {} and _until(world) == WAKE_AT + timedelta(hours=2)
    [line] = [r for r in caplog.records if r.getMessage() == "keep-awake run"]
    assert line.levelno == logging.ERROR
