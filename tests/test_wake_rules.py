"""Wake on request, from the world's side: ticks through the CLI against moto (ECS, ELBv2
listeners and rules, DynamoDB). While the service sleeps its listener rule forwards to the
wake target group and is saved; at start it is restored exactly once the targets are
healthy; a person's edit, a deleted rule, a dry run and a service without a load balancer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.wake_plan import same_actions
from engine.wake_store import saved_rules
from tests.faults import Crash
from tests.wakeworld import WAKE, wake_world
from tests.world import World, run_cli, schedule

DAY_AT = "2026-12-01T15:00:00+09:00"  # Tuesday, running
STOP_AT = "2026-12-01T22:15:00+09:00"
LATER_AT = "2026-12-01T23:30:00+09:00"
START_AT = "2026-12-02T05:00:00+09:00"
AFTER_START_AT = "2026-12-02T05:15:00+09:00"


@pytest.fixture
def world(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> World:
    return wake_world(endpoint, capsys, monkeypatch)


def _tick(
    capsys: pytest.CaptureFixture[str], endpoint: str, at: str, *extra: str
) -> dict[str, Any]:
    code, out, err = run_cli(capsys, endpoint, "tick", "--at", at, "--json", *extra)
    assert code in (0, 1), out + err
    report: dict[str, Any] = json.loads(out)
    return next(s for s in report["services"] if s["service"] == "c1/web")


def _actions(world: World) -> Any:
    rules = world._raw("elbv2").describe_rules(RuleArns=[world._network["rule"]])["Rules"]
    return rules[0]["Actions"]


def _healthy_target(world: World) -> None:
    elbv2 = world._raw("elbv2")
    elbv2.register_targets(
        TargetGroupArn=world.target_group(), Targets=[{"Id": "10.0.1.10", "Port": 8080}]
    )
    health = elbv2.describe_target_health(TargetGroupArn=world.target_group())
    assert health["TargetHealthDescriptions"][0]["TargetHealth"]["State"] == "healthy"


def _records(world: World) -> dict[str, Any]:
    return saved_rules(world.state_store(), "c1/web")


def test_stop_swaps_the_rule_after_saving_it_and_start_restores_it_exactly(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    original = _actions(world)
    assert _tick(capsys, endpoint, DAY_AT)["outcome"] in ("converged", "changed")
    assert _records(world) == {}
    stopped = _tick(capsys, endpoint, STOP_AT)
    assert stopped["outcome"] == "changed", stopped
    assert _actions(world)[0]["TargetGroupArn"] == world._network["wake"]
    record = _records(world)[world._network["rule"]]
    assert same_actions(record.actions, original)
    assert record.conditions[0]["Values"] == ["stg.example.com"]
    # A later tick while asleep changes nothing.
    _tick(capsys, endpoint, LATER_AT)
    assert _actions(world)[0]["TargetGroupArn"] == world._network["wake"]

    # Started, but no healthy target yet: the rule still sends to the wake function.
    _tick(capsys, endpoint, START_AT)
    assert _actions(world)[0]["TargetGroupArn"] == world._network["wake"]
    assert world._network["rule"] in _records(world)
    _healthy_target(world)
    _tick(capsys, endpoint, AFTER_START_AT)
    assert same_actions(_actions(world), original)
    assert _records(world) == {}


def test_dry_run_changes_no_rule(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    original = _actions(world)
    report = _tick(capsys, endpoint, STOP_AT, "--dry-run")
    assert any("would save listener rule" in n for n in report.get("notes", [])), report
    assert same_actions(_actions(world), original)
    assert _records(world) == {}


def test_a_persons_edit_while_asleep_is_what_start_restores(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tick(capsys, endpoint, STOP_AT)
    theirs = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}]
    world._raw("elbv2").modify_rule(RuleArn=world._network["rule"], Actions=theirs)
    _tick(capsys, endpoint, LATER_AT)  # amended, and pointed at the wake function again
    assert _actions(world)[0]["TargetGroupArn"] == world._network["wake"]
    assert _records(world)[world._network["rule"]].amended_at is not None
    _tick(capsys, endpoint, START_AT)
    _healthy_target(world)
    _tick(capsys, endpoint, AFTER_START_AT)
    assert _actions(world)[0]["Type"] == "fixed-response"
    assert _actions(world)[0]["FixedResponseConfig"]["StatusCode"] == "503"
    assert _records(world) == {}


def test_a_rule_deleted_while_asleep_drops_its_record_and_is_not_recreated(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tick(capsys, endpoint, STOP_AT)
    world._raw("elbv2").delete_rule(RuleArn=world._network["rule"])
    report = _tick(capsys, endpoint, LATER_AT)
    assert any("was deleted while the service slept" in n for n in report["notes"]), report
    assert _records(world) == {}
    rules = world._raw("elbv2").describe_rules(ListenerArn=world._network["listener"])["Rules"]
    assert [r for r in rules if not r["IsDefault"]] == []


def _holds(world: World, original: Any) -> bool:
    """The invariant: the rule is as people left it, or saved with what they left."""
    if same_actions(_actions(world), original):
        return True
    record = _records(world).get(world._network["rule"])
    return record is not None and same_actions(record.actions, original)


def test_a_crash_between_the_record_and_the_swap_keeps_the_rule_and_the_next_tick_swaps(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = _actions(world)

    def crash(*_: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr("engine.aws.elbv2.modify_rule", crash)
        with pytest.raises(Crash):
            run_cli(capsys, endpoint, "tick", "--at", STOP_AT, "--json")
    assert same_actions(_actions(world), original)  # not swapped
    assert world._network["rule"] in _records(world)  # but saved
    assert _holds(world, original)
    _tick(capsys, endpoint, LATER_AT)
    assert _actions(world)[0]["TargetGroupArn"] == world._network["wake"]
    assert _holds(world, original)


def test_a_crash_between_the_restore_and_the_delete_keeps_the_invariant_and_the_next_tick_deletes(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = _actions(world)
    _tick(capsys, endpoint, STOP_AT)
    _healthy_target(world)

    def crash(*_: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr("engine.wake_rules.delete_rule", crash)
        with pytest.raises(Crash):
            run_cli(capsys, endpoint, "tick", "--at", START_AT, "--json")
    assert same_actions(_actions(world), original)  # restored
    assert world._network["rule"] in _records(world)  # the record outlived the crash
    _tick(capsys, endpoint, AFTER_START_AT)
    assert same_actions(_actions(world), original)
    assert _records(world) == {}


def test_without_a_load_balancer_the_document_is_told_and_the_schedule_followed(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = World(endpoint)
    w.create_service("c1", "web", desired=2)
    assert run_cli(capsys, endpoint, "init")[0] == 0
    w.put(schedule("c1/web", wake=WAKE))
    monkeypatch.setenv(
        "TEIJI_WAKE_TARGET_GROUPS",
        "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/stg/"
        "0123456789abcdef=arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
        "targetgroup/w/0123456789abcdef",
    )
    report = _tick(capsys, endpoint, STOP_AT)
    assert report["outcome"] == "changed"  # stopped as the schedule says
    assert any(
        n.startswith("schedule c1/web: wake.on_request: the service has no load balancer")
        for n in report["notes"]
    ), report


def test_without_the_setting_wake_is_unavailable_and_no_rule_changes(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = _actions(world)
    monkeypatch.delenv("TEIJI_WAKE_TARGET_GROUPS")
    report = _tick(capsys, endpoint, STOP_AT)
    assert report["outcome"] == "changed"
    assert any("wake on request is unavailable" in n for n in report["notes"]), report
    assert same_actions(_actions(world), original)
    assert _records(world) == {}


def test_an_unreadable_record_fails_the_service_closed_and_changes_no_rule(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tick(capsys, endpoint, STOP_AT)
    table = world.state_store().table
    sk = f"c1/web#{world._network['rule']}"
    world._raw("dynamodb").update_item(
        TableName=table,
        Key={"pk": {"S": "wake-rule"}, "sk": {"S": sk}},
        UpdateExpression="SET actions = :a",
        ExpressionAttributeValues={":a": {"S": "not json"}},
    )
    _healthy_target(world)
    report = _tick(capsys, endpoint, START_AT)
    assert report["outcome"] == "failed"
    assert report["error"].startswith("listener rules: the saved rule wake-rule/c1/web#")
    assert "cannot be read" in report["error"]
    assert _actions(world)[0]["TargetGroupArn"] == world._network["wake"]  # not guessed


def test_a_weighted_rule_that_also_feeds_another_service_is_left_alone(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    elbv2 = world._raw("elbv2")
    other = elbv2.create_target_group(
        Name="other-svc", Protocol="HTTP", Port=8080, VpcId=world._network["vpc"], TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    weighted = [
        {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": world.target_group(), "Weight": 50},
                    {"TargetGroupArn": other, "Weight": 50},
                ]
            },
        }
    ]
    canary = elbv2.create_rule(
        ListenerArn=world._network["listener"],
        Priority=20,
        Conditions=[{"Field": "host-header", "Values": ["canary.example.com"]}],
        Actions=weighted,
    )["Rules"][0]["RuleArn"]
    before = elbv2.describe_rules(RuleArns=[canary])["Rules"][0]["Actions"]
    report = _tick(capsys, endpoint, STOP_AT)
    after = elbv2.describe_rules(RuleArns=[canary])["Rules"][0]["Actions"]
    assert same_actions(after, before), "the other service's share of traffic is not cut off"
    assert canary not in _records(world)
    assert any(canary in n and "left alone" in n for n in report["notes"]), report
    assert _actions(world)[0]["TargetGroupArn"] == world._network["wake"]  # its own rule is
