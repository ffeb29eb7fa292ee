"""Planning listener rules while a service sleeps (pure): tables, then the invariant over
every crash point, edit and deletion (hypothesis)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.wake_plan import (
    Rule,
    RuleStep,
    balancer_of,
    forwarded_groups,
    plan_restore,
    plan_sleep,
    same_actions,
    wake_actions,
)
from schemas.records import SavedRule

TG = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/svc/1"
OTHER = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/other/2"
WAKE = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/wake/3"
LISTENER = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/lb/1/2"
BALANCER = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/lb/1"
WAKE_FOR = {BALANCER: WAKE}
AT = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)
KEY = "example-cluster/example-service-stg"

FORWARD = ({"Type": "forward", "TargetGroupArn": TG},)
WEIGHTED = (
    {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": OTHER, "Weight": 1}, {"TargetGroupArn": TG}]
        },
    },
)
ELSEWHERE = ({"Type": "forward", "TargetGroupArn": OTHER},)
FIXED = ({"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}},)


def rule(arn: str, actions: tuple[Mapping[str, Any], ...], listener: str = LISTENER) -> Rule:
    return Rule(arn, listener, actions, ({"Field": "host-header", "Values": ["stg.example"]},))


def record(arn: str, actions: tuple[Mapping[str, Any], ...]) -> SavedRule:
    return SavedRule(
        key=KEY,
        rule_arn=arn,
        listener_arn=LISTENER,
        actions=[dict(a) for a in actions],
        conditions=[{"Field": "host-header", "Values": ["stg.example"]}],  # as the rule has
        saved_at=AT,
        version="v1",
    )


def kinds(steps: list[RuleStep]) -> list[tuple[str, str]]:
    return [(s.kind, s.rule_arn) for s in steps]


def test_forwarded_groups_reads_plain_and_weighted_forwards() -> None:
    assert forwarded_groups(FORWARD) == {TG}
    assert forwarded_groups(WEIGHTED) == {TG, OTHER}
    assert forwarded_groups(FIXED) == set()


def test_sleep_saves_then_swaps_only_rules_forwarding_to_the_service() -> None:
    rules = [rule("r1", FORWARD), rule("r2", WEIGHTED), rule("r3", ELSEWHERE), rule("r4", FIXED)]
    steps = plan_sleep(rules, [TG], {}, WAKE_FOR)
    # The weighted rule also sends to another service's group: left alone, with a note.
    assert kinds(steps) == [("save", "r1"), ("swap", "r1"), ("note", "r2")]
    assert steps[2].note is not None and OTHER in steps[2].note
    assert steps[0].actions == FORWARD  # exactly as people left it
    assert steps[1].actions == wake_actions(WAKE)


def test_sleep_is_done_once_swapped() -> None:
    assert (
        plan_sleep([rule("r1", wake_actions(WAKE))], [TG], {"r1": record("r1", FORWARD)}, WAKE_FOR)
        == []
    )


def test_sleep_after_a_crash_before_the_swap_swaps_without_saving_again() -> None:
    steps = plan_sleep([rule("r1", FORWARD)], [TG], {"r1": record("r1", FORWARD)}, WAKE_FOR)
    assert kinds(steps) == [("swap", "r1")]


def test_a_persons_edit_while_asleep_amends_the_record() -> None:
    theirs = ({"Type": "forward", "TargetGroupArn": OTHER},)
    steps = plan_sleep([rule("r1", theirs)], [TG], {"r1": record("r1", FORWARD)}, WAKE_FOR)
    assert kinds(steps) == [("amend", "r1"), ("swap", "r1")]
    assert steps[0].actions == theirs


def test_restore_waits_for_healthy_targets() -> None:
    saved = {"r1": record("r1", FORWARD)}
    assert plan_restore([rule("r1", wake_actions(WAKE))], saved, WAKE_FOR, healthy=False) == []
    steps = plan_restore([rule("r1", wake_actions(WAKE))], saved, WAKE_FOR, healthy=True)
    assert kinds(steps) == [("restore", "r1"), ("delete", "r1")]
    assert steps[0].actions == FORWARD


def test_restore_after_a_crash_before_the_delete_only_deletes() -> None:
    steps = plan_restore([rule("r1", FORWARD)], {"r1": record("r1", FORWARD)}, WAKE_FOR, True)
    assert kinds(steps) == [("delete", "r1")]


def test_a_rule_deleted_while_asleep_drops_its_record_and_is_not_recreated() -> None:
    saved = {"r1": record("r1", FORWARD)}
    for steps in (plan_sleep([], [TG], saved, WAKE_FOR), plan_restore([], saved, WAKE_FOR, True)):
        assert kinds(steps) == [("drop", "r1")]
        assert steps[0].note is not None and "deleted" in steps[0].note


# --------------------------------------------------------------------------------------------
# The invariant, over every crash point: a tiny world of rules and records, run step by step.


def _apply(
    rules: dict[str, tuple[Mapping[str, Any], ...]],
    saved: dict[str, SavedRule],
    steps: list[RuleStep],
    crash_after: int,
) -> None:
    for step in steps[:crash_after]:
        if step.kind in ("save", "amend"):
            saved[step.rule_arn] = record(step.rule_arn, step.actions)
        elif step.kind in ("swap", "restore"):
            rules[step.rule_arn] = step.actions
        elif step.kind == "note":
            continue  # nothing changes
        else:  # delete, drop
            saved.pop(step.rule_arn, None)


def _tick(
    rules: dict[str, tuple[Mapping[str, Any], ...]],
    saved: dict[str, SavedRule],
    sleeping: bool,
    crash_after: int,
) -> None:
    seen = [rule(arn, actions) for arn, actions in sorted(rules.items())]
    if sleeping:
        steps = plan_sleep(seen, [TG], saved, WAKE_FOR)
    else:
        steps = plan_restore(seen, saved, WAKE_FOR, healthy=True)
    _apply(rules, saved, steps, crash_after)


def _holds(
    rules: dict[str, tuple[Mapping[str, Any], ...]],
    saved: dict[str, SavedRule],
    people: dict[str, tuple[Mapping[str, Any], ...]],
) -> bool:
    """Every rule is as people left it, or saved with what they left."""
    for arn, actions in rules.items():
        if same_actions(actions, people[arn]):
            continue
        if arn not in saved or not same_actions(saved[arn].actions, people[arn]):
            return False
    return True


ACTIONS = st.sampled_from([FORWARD, WEIGHTED, ELSEWHERE, FIXED])


@given(
    initial=st.lists(ACTIONS, min_size=1, max_size=4),
    ticks=st.lists(
        st.tuples(
            st.booleans(),
            st.integers(0, 10),
            st.none() | st.tuples(st.integers(0, 3), ACTIONS | st.none()),
        ),
        max_size=6,
    ),
)
def test_every_rule_is_as_people_left_it_or_saved(
    initial: list[tuple[Mapping[str, Any], ...]],
    ticks: list[tuple[bool, int, tuple[int, tuple[Mapping[str, Any], ...] | None] | None]],
) -> None:
    rules = {f"r{i}": actions for i, actions in enumerate(initial)}
    people = dict(rules)
    saved: dict[str, SavedRule] = {}
    for sleeping, crash_after, edit in ticks:
        _tick(rules, saved, sleeping, crash_after)
        assert _holds(rules, saved, people)
        if edit is not None:  # a person edits (or deletes) a rule between ticks
            arn = f"r{edit[0] % len(initial)}"
            if arn in rules:
                if edit[1] is None:
                    del rules[arn]
                else:
                    rules[arn] = people[arn] = edit[1]
    # Two full ticks awake later, every rule is back as people left it and no record remains.
    _tick(rules, saved, False, 99)
    _tick(rules, saved, False, 99)
    assert all(same_actions(actions, people[arn]) for arn, actions in rules.items())
    assert saved == {}


def test_the_balancer_of_a_listener_or_rule_arn() -> None:
    assert balancer_of(LISTENER) == BALANCER
    assert balancer_of(LISTENER.replace(":listener/", ":listener-rule/") + "/9") == BALANCER


def test_a_rule_on_a_balancer_without_a_wake_group_is_left_alone() -> None:
    other = LISTENER.replace("/lb/1/", "/other/7/")
    steps = plan_sleep([rule("r1", FORWARD, listener=other)], [TG], {}, WAKE_FOR)
    assert steps == []
