"""The wake function from the world's side: ALB events (browsers and API clients) handed to
it against moto's server (ECS, ELBv2 listeners and rules, DynamoDB), after a tick put the
service to sleep. One override per wake, later requests extend it, the rule is restored once
the targets are healthy, and nothing is done for a service whose schedule does not ask."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.config import Settings
from engine.wake_handler import answer_request
from engine.wake_request import read_request
from engine.wake_store import saved_rules
from tests.wakeworld import WAKE, alb_event, wake_world
from tests.world import World, at, run_cli, schedule

STOP_AT = "2026-12-01T22:15:00+09:00"  # Tuesday, after the window
WAKE_AT = at("2026-12-01T23:00:00+09:00")


@pytest.fixture
def world(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> World:
    w = wake_world(endpoint, capsys, monkeypatch)
    _tick(capsys, endpoint, STOP_AT)
    assert w.state("c1", "web").desired == 0
    assert _rule_group(w) == w._network["wake"]
    # Saved with what matching needs: conditions, priority and the listener's port.
    record = saved_rules(w.state_store(), "c1/web")[w._network["rule"]]
    assert (record.priority, record.port) == ("10", 80)
    return w


def _tick(capsys: pytest.CaptureFixture[str], endpoint: str, when: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, endpoint, "tick", "--at", when, "--json")
    assert code in (0, 1), out + err
    report: dict[str, Any] = json.loads(out)
    return next(s for s in report["services"] if s["service"] == "c1/web")


def _rule_group(world: World) -> str | None:
    rule = world._raw("elbv2").describe_rules(RuleArns=[world._network["rule"]])["Rules"][0]
    return rule["Actions"][0].get("TargetGroupArn")


def _request(world: World, when: datetime, **event: Any) -> dict[str, Any]:
    request = read_request(alb_event(world._network["wake"], **event))
    return answer_request(world.clients(), Settings.from_env(), request, at=when)


def _overrides(world: World) -> list[dict[str, Any]]:
    items = world.dynamodb.query(
        TableName=world.settings.config_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "override"}},
    )["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


def _healthy(world: World) -> None:
    world._raw("elbv2").register_targets(
        TargetGroupArn=world.target_group(), Targets=[{"Id": "10.0.1.10", "Port": 8080}]
    )


def test_a_browser_request_starts_the_service_and_the_rule_comes_back_when_healthy(
    world: World,
) -> None:
    answer = _request(world, WAKE_AT, path="/login")
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"].startswith("text/html")
    assert "Starting c1/web" in answer["body"] and 'http-equiv="refresh"' in answer["body"]
    assert "secret-cookie-value" not in answer["body"] and "hunter2" not in answer["body"]
    [override] = _overrides(world)
    assert override["sk"] == "c1/web#wake"
    assert override["state"] == "running" and override["created_by"] == "wake"
    assert override["reason"] == "woken by a request to stg.example.com/login"
    assert datetime.fromisoformat(override["until"]) == WAKE_AT + timedelta(hours=2)
    assert world.state("c1", "web").desired == 2  # converged at once, capacity restored
    # No healthy target yet: the rule still sends to the wake function.
    assert _rule_group(world) == world._network["wake"]

    _healthy(world)
    again = _request(world, WAKE_AT + timedelta(seconds=5))  # within the converge step
    assert again["statusCode"] == 200
    assert _rule_group(world) == world._network["wake"]
    _request(world, WAKE_AT + timedelta(seconds=15))  # the page's reload converges again
    assert _rule_group(world) == world.target_group()
    assert saved_rules(world.state_store(), "c1/web") == {}
    assert len(_overrides(world)) == 1  # the reloads wrote nothing new


def test_an_api_client_gets_503_with_retry_after_and_json(world: World) -> None:
    answer = _request(world, WAKE_AT, browser=False)
    assert answer["statusCode"] == 503
    assert answer["headers"]["Retry-After"] == "5"
    body = json.loads(answer["body"])
    assert body["status"] == "starting" and body["service"] == "c1/web"


def test_multi_value_headers_are_answered_in_kind(world: World) -> None:
    answer = _request(world, WAKE_AT, multi_value=True, browser=False)
    assert answer["multiValueHeaders"]["Retry-After"] == ["5"]
    assert "headers" not in answer


def test_a_burst_of_a_thousand_requests_writes_one_override_and_converges_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env()
    clients = world.clients()
    event = alb_event(world._network["wake"], browser=False)

    def one(i: int) -> int:
        request = read_request(event)
        answer = answer_request(clients, settings, request, at=WAKE_AT + timedelta(seconds=i % 3))
        return int(answer["statusCode"])

    with caplog.at_level(logging.INFO, logger="teiji"), ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(one, range(1000)))
    assert set(codes) == {503}  # every one answered "starting", none failed
    assert len(_overrides(world)) == 1
    lines = [r for r in caplog.records if r.getMessage() == "wake request"]
    fields = [getattr(r, "teiji_fields", None) or r.__dict__ for r in lines]
    assert len(lines) == 1000
    written = [f for f in fields if str(f).count("'written': 'create'")]
    assert len(written) == 1, "exactly one request wrote the override"
    converged = [f for f in fields if "'converged': True" in str(f)]
    assert len(converged) == 1, "one request in the step converged the service"
    assert world.state("c1", "web").desired == 2


def test_requests_while_it_runs_extend_the_wake_up_to_the_cap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_MAX_OVERRIDE", "3h")
    _request(world, WAKE_AT)
    first = datetime.fromisoformat(_overrides(world)[0]["until"])
    _request(world, WAKE_AT + timedelta(minutes=3))  # adds less than 6 min: nothing written
    assert datetime.fromisoformat(_overrides(world)[0]["until"]) == first
    _request(world, WAKE_AT + timedelta(minutes=30))
    assert datetime.fromisoformat(_overrides(world)[0]["until"]) == WAKE_AT + timedelta(minutes=150)
    _request(world, WAKE_AT + timedelta(minutes=149))
    until = datetime.fromisoformat(_overrides(world)[0]["until"])
    assert until == WAKE_AT + timedelta(hours=3), "never past the cap from the wake's start"


def test_when_the_wake_ends_the_next_tick_stops_it_and_a_later_request_wakes_it_again(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _request(world, WAKE_AT)
    _healthy(world)
    _request(world, WAKE_AT + timedelta(seconds=30))
    assert _rule_group(world) == world.target_group()
    ended = (WAKE_AT + timedelta(hours=2, minutes=1)).isoformat()
    assert _tick(capsys, endpoint, ended)["outcome"] == "changed"
    assert world.state("c1", "web").desired == 0
    assert _rule_group(world) == world._network["wake"]
    later = WAKE_AT + timedelta(hours=3)
    _request(world, later)
    [override] = _overrides(world)  # the ended one replaced, still one record
    assert datetime.fromisoformat(override["start"]) == later
    assert world.state("c1", "web").desired == 2


def test_a_schedule_that_no_longer_asks_is_not_woken(
    world: World, capsys: pytest.CaptureFixture[str], endpoint: str
) -> None:
    world.put(schedule("c1/web"))  # a person took wake out while the service slept
    answer = _request(world, WAKE_AT, browser=False)
    assert answer["statusCode"] == 403
    assert "does not ask" in json.loads(answer["body"])["message"]
    assert _overrides(world) == []
    assert world.state("c1", "web").desired == 0


def test_outside_the_allow_list_nothing_is_written(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_ALLOWED_CLUSTERS", "other")
    answer = _request(world, WAKE_AT, browser=False)
    assert answer["statusCode"] == 403
    assert _overrides(world) == []
    assert world.state("c1", "web").desired == 0


def test_a_persons_stop_override_wins_over_a_request(world: World) -> None:
    world.put(
        {
            "kind": "override",
            "service": "c1/web",
            "state": "stopped",
            "start": "2026-12-01T22:30:00+09:00",
            "until": "2026-12-02T03:00:00+09:00",
            "reason": "database migration",
            "created_by": "suzuki",
            "id": "db-migration",
        }
    )
    answer = _request(world, WAKE_AT)
    assert answer["statusCode"] == 503
    assert "kept stopped" in answer["body"] and "database migration" in answer["body"]
    assert all(o.get("created_by") != "wake" for o in _overrides(world))
    assert world.state("c1", "web").desired == 0


def test_a_request_no_saved_rule_matches_is_told_to_retry(world: World) -> None:
    answer = _request(world, WAKE_AT, host="other.example.com", browser=False)
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["status"] == "not-asleep"
    assert _overrides(world) == []


def test_a_target_group_that_is_not_a_wake_group_is_refused(world: World) -> None:
    event = alb_event(world.target_group(), browser=False)
    answer = answer_request(world.clients(), Settings.from_env(), read_request(event), at=WAKE_AT)
    assert answer["statusCode"] == 403
    assert _overrides(world) == []


def test_a_dry_run_deployment_writes_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEIJI_DRY_RUN", "true")
    assert _request(world, WAKE_AT)["statusCode"] == 200
    assert _overrides(world) == []
    assert world.state("c1", "web").desired == 0


def test_the_lambda_entry_point_answers_hostile_events_400_without_echo(
    world: World, endpoint: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.handler import wake_handler

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    good = alb_event(world._network["wake"], browser=False)
    hostile: list[Any] = [
        None,
        [],
        "GET /",
        {},
        {**good, "httpMethod": "BREW"},
        {**good, "path": "/\x00<script>alert(1)</script>"},
        {**good, "path": "x" * 10},
        {**good, "headers": {**good["headers"], "host": "<script>"}},
        {**good, "headers": {**good["headers"], "host": ["a", "b"]}},
        {**good, "headers": "host: x"},
        {**good, "requestContext": {"elb": {"targetGroupArn": 7}}},
        {**good, "queryStringParameters": {"a": 1}},
    ]
    with caplog.at_level(logging.INFO, logger="teiji"):
        for event in hostile:
            answer = wake_handler(event, None)
            assert answer["statusCode"] == 400, event
            assert "<script>" not in answer["body"]
    assert "Traceback" not in caplog.text and "<script>" not in caplog.text
    assert _overrides(world) == []


def test_the_logs_name_host_and_path_and_no_other_header_or_body(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="teiji"):
        _request(world, WAKE_AT, path="/account", authorization="Bearer token-123")
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert "stg.example.com/account" in text
    for secret in ("secret-cookie-value", "hunter2", "token-123", "203.0.113.7", "Mozilla"):
        assert secret not in text


def test_a_tag_opted_service_with_wake_in_its_profile_is_woken(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = {
        "kind": "profile",
        "name": "office",
        "timezone": "Asia/Tokyo",
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
        "wake": WAKE,
    }
    monkeypatch.setenv("TEIJI_ALLOWED_CLUSTERS", "c1")
    w = wake_world(endpoint, capsys, monkeypatch, document=profile)
    arn = w.ecs.describe_services(cluster="c1", services=["web"])["services"][0]["serviceArn"]
    w.ecs.tag_resource(resourceArn=arn, tags=[{"key": "teiji:profile", "value": "office"}])
    _tick(capsys, endpoint, STOP_AT)
    assert _rule_group(w) == w._network["wake"]
    answer = _request(w, WAKE_AT, browser=False)
    assert json.loads(answer["body"])["status"] == "starting", answer
    assert w.state("c1", "web").desired == 2


def test_with_fan_out_a_wake_converges_under_its_scopes_lease(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from engine.fanout import scope_id
    from engine.lease import (
        RECORD_SK,
        HeldLease,
        LeaseTable,
        acquire,
        cover_for,
        scope_lease_pk,
    )

    monkeypatch.setenv(
        "TEIJI_FANOUT_QUEUE_URL", "https://sqs.ap-northeast-1.amazonaws.com/111111111111/teiji-work"
    )
    settings = Settings.from_env()
    pk = scope_lease_pk(scope_id((None, None)))
    scope_lease = LeaseTable(world.clients(), settings.state_table, pk=pk)
    held = acquire(
        scope_lease, None, cover_for(None, 1, None), "worker:a", 120, time.time, may_switch=True
    )
    assert isinstance(held, HeldLease)
    answer = _request(world, WAKE_AT, browser=False)
    assert json.loads(answer["body"])["status"] == "starting"
    assert len(_overrides(world)) == 1
    assert world.state("c1", "web").desired == 0, "never beside the scope's worker"

    world.dynamodb.delete_item(
        TableName=settings.state_table, Key={"pk": {"S": pk}, "sk": {"S": RECORD_SK}}
    )
    _request(world, WAKE_AT + timedelta(seconds=15))  # the reload after the worker is done
    assert world.state("c1", "web").desired == 2


def test_a_service_without_a_load_balancer_is_refused_at_validation(
    endpoint: str, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    w = World(endpoint)
    w.create_service("c1", "worker", desired=1)  # no load balancer
    w.create_service("c1", "web", desired=2, load_balancer=True)
    assert run_cli(capsys, endpoint, "init")[0] == 0
    files = tmp_path / "docs.json"
    files.write_text(
        json.dumps(
            [
                schedule("c1/worker", wake=WAKE),
                schedule("c1/web", wake=WAKE),
                schedule("c1/later", wake=WAKE),  # not created yet: not judged
            ]
        )
    )
    code, out, err = run_cli(capsys, endpoint, "put", str(files))
    assert code == 2, out + err  # bad input, as for any invalid document
    assert "schedule c1/worker: wake.on_request: the service has no load balancer" in err
    assert "c1/web" not in err and "Traceback" not in err
    assert w.config().query_kind("schedule") == []  # nothing written

    # Written by hand (the console), the table check names it.
    w.put(schedule("c1/worker", wake=WAKE))
    code, out, err = run_cli(capsys, endpoint, "validate", "--table")
    assert code == 1
    assert "schedule c1/worker: wake.on_request: the service has no load balancer" in out + err


def test_a_service_in_another_region_is_refused_at_validation(
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEIJI_ALLOWED_REGIONS", "us-east-1")
    World(endpoint)
    assert run_cli(capsys, endpoint, "init")[0] == 0
    files = tmp_path / "docs.json"
    files.write_text(json.dumps([schedule("c1/web", region="us-east-1", wake=WAKE)]))
    code, out, err = run_cli(capsys, endpoint, "put", str(files))
    assert code == 2, out + err
    assert "wake on request works only for services in teiji's own account and region" in err


def test_people_see_the_wake_and_can_cancel_it(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _request(world, WAKE_AT)
    code, out, err = run_cli(capsys, endpoint, "override", "list", "--all", "--json")
    assert code == 0, err
    [shown] = json.loads(out)
    assert shown["id"] == "wake" and shown["created_by"] == "wake"
    code, out, err = run_cli(capsys, endpoint, "override", "cancel", "c1/web#wake")
    assert code == 0, out + err
    assert _overrides(world) == []
