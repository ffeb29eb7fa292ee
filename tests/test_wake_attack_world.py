"""Attacking wake on request from the world's side, against moto (ECS, ELBv2, DynamoDB): people
changing the schedule or the listener rule while the service sleeps, a person's cancel and stop
while requests keep coming, another tick holding the lease, a crash inside the wake's converge,
a corrupt saved rule, and schedules that come from a profile."""

from __future__ import annotations

import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.config import Settings
from engine.lease import break_holder
from engine.wake_handler import answer_request
from engine.wake_plan import same_actions
from engine.wake_request import read_request
from engine.wake_store import save_rule, saved_rules
from schemas.records import WAKE_RULE_PK, SavedRule
from tests.faults import Crash, CrashAfter
from tests.wakeworld import WAKE, alb_event, wake_world
from tests.world import World, at, run_cli, schedule

STOP_AT = "2026-12-01T22:15:00+09:00"  # Tuesday, after the window
WAKE_AT = at("2026-12-01T23:00:00+09:00")
MORNING = "2026-12-02T05:00:00+09:00"


@pytest.fixture
def world(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> World:
    w = wake_world(endpoint, capsys, monkeypatch)
    _tick(capsys, endpoint, STOP_AT)
    assert w.state("c1", "web").desired == 0
    assert _rule_group(w) == w._network["wake"]
    return w


def _tick(capsys: pytest.CaptureFixture[str], endpoint: str, when: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, endpoint, "tick", "--at", when, "--json")
    assert code in (0, 1), out + err
    report: dict[str, Any] = json.loads(out)
    return next(s for s in report["services"] if s["service"] == "c1/web")


def _rule(world: World, arn: str | None = None) -> dict[str, Any]:
    rules = world._raw("elbv2").describe_rules(RuleArns=[arn or world._network["rule"]])
    rule: dict[str, Any] = rules["Rules"][0]
    return rule


def _rule_group(world: World, arn: str | None = None) -> str | None:
    group = _rule(world, arn)["Actions"][0].get("TargetGroupArn")
    return None if group is None else str(group)


def _request(world: World, when: datetime, **event: Any) -> dict[str, Any]:
    request = read_request(alb_event(world._network["wake"], **event))
    return answer_request(world.clients(), Settings.from_env(), request, at=when)


def _status(answer: dict[str, Any]) -> str:
    body: dict[str, Any] = json.loads(answer["body"])
    return str(body["status"])


def _overrides(world: World) -> dict[str, dict[str, Any]]:
    items = world.dynamodb.query(
        TableName=world.settings.config_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "override"}},
    )["Items"]
    plain = [{k: next(iter(v.values())) for k, v in item.items()} for item in items]
    return {str(o["sk"]): o for o in plain}


def _healthy(world: World) -> None:
    world._raw("elbv2").register_targets(
        TargetGroupArn=world.target_group(), Targets=[{"Id": "10.0.1.10", "Port": 8080}]
    )


# The schedule and the rule change while the service sleeps ------------------------------------
@pytest.mark.parametrize(
    "document",
    [schedule("c1/web"), {"kind": "schedule", "service": "c1/web", "mode": "always_on"}],
    ids=["wake-taken-out", "replaced-by-always-on"],
)
def test_wake_taken_out_while_asleep_still_gives_the_rule_back_at_the_start(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str], document: dict[str, Any]
) -> None:
    original = saved_rules(world.state_store(), "c1/web")[world._network["rule"]].actions
    world.put(schedule("c1/web"))  # a person took wake out while the service slept
    assert _request(world, WAKE_AT, browser=False)["statusCode"] == 403
    assert _rule_group(world) == world._network["wake"]
    world.put(document)
    _healthy(world)
    _tick(capsys, endpoint, MORNING)
    assert world.state("c1", "web").desired == 2
    assert _rule_group(world) == world.target_group(), "the rule still sends to the wake group"
    assert saved_rules(world.state_store(), "c1/web") == {}
    assert same_actions(_rule(world)["Actions"], original)


def test_a_rule_whose_host_a_person_changed_while_asleep_still_wakes_its_service(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = world._network["rule"]
    before = saved_rules(world.state_store(), "c1/web")[arn]
    _tick(capsys, endpoint, "2026-12-01T22:30:00+09:00")
    assert saved_rules(world.state_store(), "c1/web")[arn] == before, "no rewrite every tick"
    elbv2 = world._raw("elbv2")
    elbv2.modify_rule(
        RuleArn=arn, Conditions=[{"Field": "host-header", "Values": ["new.example.com"]}]
    )
    elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": arn, "Priority": 3}])
    report = _tick(capsys, endpoint, "2026-12-01T22:45:00+09:00")  # the next quarter hour
    assert any("changed the rule's conditions" in n for n in report["notes"]), report["notes"]
    record = saved_rules(world.state_store(), "c1/web")[arn]
    assert record.priority == "3" and same_actions(record.actions, before.actions)
    assert _rule_group(world) == world._network["wake"]
    answer = _request(world, WAKE_AT, host="new.example.com", browser=False)
    assert _status(answer) == "starting", "the saved conditions are still the old host's"
    assert world.state("c1", "web").desired == 2


def test_a_schedule_deleted_while_asleep_is_refused_and_nothing_is_written(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, endpoint, "delete", "c1/web")
    assert code == 0, out + err
    answer = _request(world, WAKE_AT, browser=False)
    assert answer["statusCode"] == 403
    assert _overrides(world) == {}
    assert world.state("c1", "web").desired == 0


def test_keep_for_changed_while_asleep_is_what_the_next_wake_keeps(world: World) -> None:
    world.put(schedule("c1/web", wake={**WAKE, "keep_for": "30m"}))
    _request(world, WAKE_AT)
    wake = _overrides(world)["c1/web#wake"]
    assert datetime.fromisoformat(wake["until"]) == WAKE_AT + timedelta(minutes=30)


def test_a_protected_service_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEIJI_PROTECTED", "c1/*")
    answer = _request(world, WAKE_AT, browser=False)
    assert answer["statusCode"] == 403
    assert _overrides(world) == {}
    assert world.state("c1", "web").desired == 0


def test_a_schedule_taking_wake_from_its_profile_is_woken(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = {
        "kind": "profile",
        "name": "office",
        "timezone": "Asia/Tokyo",
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
        "wake": WAKE,
    }
    w = wake_world(endpoint, capsys, monkeypatch, document=profile)
    w.put_item({"pk": "schedule", "sk": "c1/web", "profile": "office"})
    _tick(capsys, endpoint, STOP_AT)
    assert _rule_group(w) == w._network["wake"]
    assert _status(_request(w, WAKE_AT, browser=False)) == "starting"
    assert w.state("c1", "web").desired == 2


# People and requests at once ------------------------------------------------------------------
def test_a_cancelled_wake_is_written_again_by_the_next_request_and_a_stop_override_holds(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``override cancel wake`` while the page keeps reloading: the rule still sends to the
    wake function (the targets were not yet healthy), so the next reload wakes it again. A
    cancel says "the schedule decides again", and the schedule asks to be woken on request; a
    person who wants it down says so with a stop override, and that holds."""
    _request(world, WAKE_AT)
    code, out, err = run_cli(capsys, endpoint, "override", "cancel", "c1/web#wake")
    assert code == 0, out + err
    assert "c1/web#wake" not in _overrides(world)
    assert _status(_request(world, WAKE_AT + timedelta(seconds=20), browser=False)) == "starting"
    again = _overrides(world)["c1/web#wake"]
    assert datetime.fromisoformat(again["start"]) == WAKE_AT + timedelta(seconds=20)

    world.put(
        {
            "kind": "override",
            "service": "c1/web",
            "state": "stopped",
            "start": "2026-12-01T23:01:00+09:00",
            "until": "2026-12-02T01:00:00+09:00",
            "reason": "stop it, please",
            "created_by": "suzuki",
            "id": "keepdown",
        }
    )
    later = WAKE_AT + timedelta(minutes=2)
    answer = _request(world, later, browser=False)
    assert _status(answer) == "kept-stopped"
    assert "Retry-After" not in answer["headers"]
    assert _overrides(world)["c1/web#wake"] == again, "nothing written past the stop"
    done = _tick(capsys, endpoint, later.isoformat())
    assert (done["decision"], done["override_id"]) == ("stopped", "keepdown")
    assert world.state("c1", "web").desired == 0
    assert _rule_group(world) == world._network["wake"]


def test_while_another_tick_holds_the_lease_the_request_is_answered_and_a_reload_converges(
    world: World,
) -> None:
    assert world.hold_lease("lambda:scheduled-tick/1234abcd", ttl=120)
    started = time.monotonic()
    answer = _request(world, WAKE_AT, browser=False)
    assert time.monotonic() - started < 5, "the request never waits for the lease"
    assert _status(answer) == "starting"
    assert "c1/web#wake" in _overrides(world)
    assert world.state("c1", "web").desired == 0  # not converged: the lease is held
    _request(world, WAKE_AT + timedelta(seconds=5))  # within the step: no converge either
    assert world.state("c1", "web").desired == 0
    break_holder(world.leases(), "lambda:scheduled-tick/1234abcd")
    _request(world, WAKE_AT + timedelta(seconds=10))  # the page's next reload
    assert world.state("c1", "web").desired == 2


@pytest.mark.parametrize("writes", [0, 1, 2, 3, 4, 5, 6, 7])
def test_a_crash_inside_the_wakes_converge_keeps_every_rule_restorable_and_a_reload_starts_it(
    world: World, writes: int
) -> None:
    original = world._raw("elbv2").describe_rules(RuleArns=[world._network["rule"]])
    record = saved_rules(world.state_store(), "c1/web")[world._network["rule"]]
    _healthy(world)  # so that the converge restores the rule too, and can crash in between
    crash = CrashAfter(writes)
    clients = crash.attach(world.clients())
    request = read_request(alb_event(world._network["wake"], browser=False))
    holder = "wake:lambda:crashed/0000abcd"
    with contextlib.suppress(Crash):
        answer_request(clients, Settings.from_env(), request, at=WAKE_AT, holder=holder)
    # Every rule is as people left it, or swapped with its record holding what they left.
    records = saved_rules(world.state_store(), "c1/web")
    now = _rule(world)["Actions"]
    if not same_actions(now, record.actions):
        assert now[0]["TargetGroupArn"] == world._network["wake"]
        assert same_actions(records[world._network["rule"]].actions, record.actions)
    assert original["Rules"][0]["Conditions"] == _rule(world)["Conditions"]
    # The crashed process's lease runs out; the page's next reload finishes the wake.
    break_holder(world.leases(), holder)
    for seconds in (15, 30):
        _request(world, WAKE_AT + timedelta(seconds=seconds))
    assert world.state("c1", "web").desired == 2
    assert _rule_group(world) == world.target_group()
    assert saved_rules(world.state_store(), "c1/web") == {}
    assert set(_overrides(world)) == {"c1/web#wake"}


def test_a_crash_right_after_the_override_is_written_is_finished_by_the_next_tick(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    clients = CrashAfter(1).attach(world.clients())  # the override, then gone
    request = read_request(alb_event(world._network["wake"], browser=False))
    with contextlib.suppress(Crash):
        answer_request(clients, Settings.from_env(), request, at=WAKE_AT)
    assert "c1/web#wake" in _overrides(world) and world.state("c1", "web").desired == 0
    report = _tick(capsys, endpoint, (WAKE_AT + timedelta(minutes=15)).isoformat())
    assert report["override_id"] == "wake" and world.state("c1", "web").desired == 2


def test_a_service_made_unmanaged_while_asleep_is_not_claimed_to_be_starting(
    world: World,
) -> None:
    world.put(schedule("c1/web", mode="unmanaged", wake=WAKE))
    answer = _request(world, WAKE_AT, browser=False)
    assert world.state("c1", "web").desired == 0  # teiji never touches it now
    assert answer["statusCode"] == 403, "the page would reload 'Starting' for ever"
    assert "unmanaged" in json.loads(answer["body"])["message"]
    assert _overrides(world) == {}


def test_a_dry_run_deployment_does_not_claim_to_bring_the_service_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_DRY_RUN", "true")
    message = json.loads(_request(world, WAKE_AT, browser=False)["body"])["message"]
    assert "dry run" in message and "bringing it back" not in message
    assert _overrides(world) == {} and world.state("c1", "web").desired == 0


def test_a_saved_rule_with_a_key_that_names_nothing_is_answered_without_a_traceback(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    [item] = world.dynamodb.query(
        TableName=world.settings.state_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": WAKE_RULE_PK}},
    )["Items"]
    forged = {**item, "key": {"S": "no such/thing/at/all"}, "sk": {"S": "forged#rule"}}
    forged["conditions"] = {"S": json.dumps([{"Field": "path-pattern", "Values": ["/x*"]}])}
    forged["priority"] = {"S": "1"}
    world.dynamodb.put_item(TableName=world.settings.state_table, Item=forged)
    answer = _request(world, WAKE_AT, path="/xyz", browser=False)
    assert answer["statusCode"] in (403, 500, 503)
    assert "Traceback" not in caplog.text
    assert _overrides(world) == {}


# Two services behind one listener ------------------------------------------------------------
@pytest.fixture
def two(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> World:
    """c1/web (host stg.example.com, priority 10) and c1/api (the same host and /api/*,
    priority 5) on one listener, both asleep."""
    w = wake_world(endpoint, capsys, monkeypatch)
    elbv2 = w._raw("elbv2")
    group = elbv2.create_target_group(
        Name="teiji-api", Protocol="HTTP", Port=8080, VpcId=w._network["vpc"], TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    w.ecs.create_service(
        cluster="c1",
        serviceName="api",
        taskDefinition=w.task_definition(awsvpc=True),
        desiredCount=3,
        launchType="FARGATE",
        loadBalancers=[{"targetGroupArn": group, "containerName": "app", "containerPort": 8080}],
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [w._network["subnet"]],
                "securityGroups": [w._network["security_group"]],
            }
        },
    )
    rule = elbv2.create_rule(
        ListenerArn=w._network["listener"],
        Priority=5,
        Conditions=[
            {"Field": "host-header", "Values": ["stg.example.com"]},
            {"Field": "path-pattern", "Values": ["/api/*"]},
        ],
        Actions=[{"Type": "forward", "TargetGroupArn": group}],
    )["Rules"][0]["RuleArn"]
    w._network.update(api_rule=rule, api_group=group)
    w.put(schedule("c1/api", wake=WAKE))
    _tick(capsys, endpoint, STOP_AT)
    assert w.state("c1", "web").desired == 0 and w.state("c1", "api").desired == 0
    assert _rule_group(w, rule) == w._network["wake"]
    return w


def test_of_two_sleeping_services_on_one_listener_the_higher_priority_rule_wakes(
    two: World,
) -> None:
    assert _status(_request(two, WAKE_AT, path="/api/orders", browser=False)) == "starting"
    assert two.state("c1", "api").desired == 3 and two.state("c1", "web").desired == 0
    assert set(_overrides(two)) == {"c1/api#wake"}
    # Paths mind case: /Api is not /api/*, so the balancer took web's rule.
    answer = _request(two, WAKE_AT + timedelta(seconds=1), path="/Api/orders", browser=False)
    assert json.loads(answer["body"])["service"] == "c1/web"


def test_two_services_woken_at_once_both_start(two: World) -> None:
    settings, clients = Settings.from_env(), two.clients()
    wake = two._network["wake"]

    def one(path: str) -> str:
        request = read_request(alb_event(wake, path=path, browser=False))
        return _status(answer_request(clients, settings, request, at=WAKE_AT))

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, ["/api/x", "/", "/api/y", "/z"] * 4))
    assert set(statuses) == {"starting"}
    assert set(_overrides(two)) == {"c1/api#wake", "c1/web#wake"}
    # The one that met the other's lease converges on the page's next reload.
    _request(two, WAKE_AT + timedelta(seconds=10), path="/api/x")
    _request(two, WAKE_AT + timedelta(seconds=10), path="/")
    assert two.state("c1", "api").desired == 3 and two.state("c1", "web").desired == 2


def test_a_service_woken_the_morning_after_another_ones_wake_ended_starts(
    two: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _request(two, WAKE_AT, path="/api/orders")
    _tick(capsys, endpoint, (WAKE_AT + timedelta(hours=2, minutes=1)).isoformat())
    assert two.state("c1", "api").desired == 0  # api's wake ended; its item stays a day
    later = WAKE_AT + timedelta(hours=3)
    assert _status(_request(two, later, browser=False)) == "starting"
    assert two.state("c1", "web").desired == 2
    report = _tick(capsys, endpoint, (later + timedelta(minutes=5)).isoformat())
    assert report["outcome"] != "failed", report["error"]


# What moto allows and AWS refuses -------------------------------------------------------------
def _refuse_default_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """ModifyRule on a listener's default rule as AWS answers it (moto carries it out):
    ``OperationNotPermitted: Default rule '<arn>' cannot be modified``; a default action is
    changed with ModifyListener, which teiji's role is not given."""
    from botocore.exceptions import ClientError

    import engine.aws.elbv2 as adapter

    real = adapter.modify_rule

    def modify_rule(client: Any, rule: Any) -> None:
        [found] = client.describe_rules(RuleArns=[rule.rule_arn])["Rules"]
        if found.get("IsDefault"):
            error = {
                "Code": "OperationNotPermitted",
                "Message": f"Default rule '{rule.rule_arn}' cannot be modified",
            }
            raise ClientError({"Error": error}, "ModifyRule")
        real(client, rule)

    monkeypatch.setattr(adapter, "modify_rule", modify_rule)


def test_a_service_behind_its_listeners_default_action_sleeps_without_failing_every_tick(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = wake_world(endpoint, capsys, monkeypatch)
    elbv2 = w._raw("elbv2")
    elbv2.delete_rule(RuleArn=w._network["rule"])
    elbv2.modify_listener(
        ListenerArn=w._network["listener"],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": w.target_group()}],
    )
    _refuse_default_rules(monkeypatch)
    first = _tick(capsys, endpoint, STOP_AT)
    assert w.state("c1", "web").desired == 0
    later = _tick(capsys, endpoint, "2026-12-01T22:30:00+09:00")
    for report in (first, later):
        assert report["outcome"] != "failed", report["error"]
        assert any("default action" in note for note in report["notes"]), report["notes"]
    [default] = elbv2.describe_rules(ListenerArn=w._network["listener"])["Rules"]
    assert default["Actions"] == [{"Type": "forward", "TargetGroupArn": w.target_group()}]
    assert saved_rules(w.state_store(), "c1/web") == {}


def test_a_record_saved_for_a_default_rule_is_dropped_and_the_rule_left_alone(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a tick before this left behind in AWS: the default rule saved, its swap refused."""
    w = wake_world(endpoint, capsys, monkeypatch)
    elbv2 = w._raw("elbv2")
    elbv2.delete_rule(RuleArn=w._network["rule"])
    elbv2.modify_listener(
        ListenerArn=w._network["listener"],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": w.target_group()}],
    )

    [default] = elbv2.describe_rules(ListenerArn=w._network["listener"])["Rules"]
    save_rule(
        w.state_store(),
        SavedRule(
            key="c1/web",
            rule_arn=default["RuleArn"],
            listener_arn=w._network["listener"],
            actions=default["Actions"],
            priority="default",
            saved_at=WAKE_AT,
            version="v0",
        ),
    )
    _refuse_default_rules(monkeypatch)
    report = _tick(capsys, endpoint, STOP_AT)
    assert report["outcome"] != "failed", report["error"]
    assert saved_rules(w.state_store(), "c1/web") == {}
    [now] = elbv2.describe_rules(ListenerArn=w._network["listener"])["Rules"]
    assert now["Actions"] == default["Actions"]
