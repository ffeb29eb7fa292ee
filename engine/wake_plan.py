"""Listener rules while a wake-enabled service sleeps: what to save, swap, restore (pure).

While teiji keeps such a service stopped, every listener rule whose forward action sends to
one of the service's target groups is pointed at the wake target group instead, after its
actions were saved exactly (``schemas.records.SavedRule``). On start, once the service's
targets are healthy, each saved rule gets its actions back and its record is deleted.

The steps are ordered so that after any of them (a crash, a fault) every rule is either as
people left it or saved in a record that restores it: a record is written before its rule is
swapped, and deleted only after its rule was restored. A person's edit while the service
sleeps wins: the record is amended with what they set (and the rule swapped again); a rule
they deleted drops its record, and nothing is recreated.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from schemas.records import SavedRule

StepKind = Literal["save", "amend", "swap", "restore", "delete", "drop", "note"]


@dataclass(frozen=True)
class Rule:
    """One listener rule as DescribeRules answers it."""

    arn: str
    listener_arn: str
    actions: tuple[Mapping[str, Any], ...]
    conditions: tuple[Mapping[str, Any], ...] = ()
    is_default: bool = False
    priority: str | None = None  # "1".."50000" or "default", as DescribeRules says
    port: int | None = None  # its listener's port (DescribeListeners)


@dataclass(frozen=True)
class RuleStep:
    """One step on one rule: ``actions`` are what to write (record or ModifyRule)."""

    kind: StepKind
    rule_arn: str
    listener_arn: str
    actions: tuple[Mapping[str, Any], ...] = ()
    conditions: tuple[Mapping[str, Any], ...] = ()
    note: str | None = None
    priority: str | None = None
    port: int | None = None


def balancer_of(listener_arn: str) -> str:
    """The load balancer a listener (or listener rule) ARN belongs to:
    ``...:listener/app/<name>/<id>/<listener id>`` -> ``...:loadbalancer/app/<name>/<id>``."""
    head, _, resource = listener_arn.partition(":listener")
    parts = resource.removeprefix("-rule").removeprefix("/").split("/")
    return f"{head}:loadbalancer/{'/'.join(parts[:3])}"


def wake_actions(wake_target_group: str) -> tuple[Mapping[str, Any], ...]:
    """The actions of a rule while its service sleeps: forward to the wake function."""
    return ({"Type": "forward", "TargetGroupArn": wake_target_group},)


def same_actions(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    """Equal as data (key order and ``Order`` fields as written, never guessed)."""
    return _canonical(a) == _canonical(b)


def _canonical(actions: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(actions), sort_keys=True, default=str)


def forwarded_groups(actions: Sequence[Mapping[str, Any]]) -> set[str]:
    """Every target group the rule's forward actions send to (plain or weighted)."""
    groups: set[str] = set()
    for action in actions:
        if action.get("Type") != "forward":
            continue
        arn = action.get("TargetGroupArn")
        if isinstance(arn, str):
            groups.add(arn)
        config = action.get("ForwardConfig")
        if isinstance(config, Mapping):
            for group in config.get("TargetGroups") or []:
                if isinstance(group, Mapping) and isinstance(group.get("TargetGroupArn"), str):
                    groups.add(group["TargetGroupArn"])
    return groups


def plan_sleep(
    rules: Sequence[Rule],
    target_groups: Collection[str],
    saved: Mapping[str, SavedRule],
    wake_for: Mapping[str, str],
) -> list[RuleStep]:
    """The steps that leave every rule of the service pointing at its load balancer's wake
    target group, each saved first. ``saved`` are the service's records by rule ARN;
    ``wake_for`` maps each load balancer to its wake target group (a rule on a balancer with
    none is left alone: it cannot forward to the wake function)."""
    steps: list[RuleStep] = []
    seen: set[str] = set()
    for rule in rules:
        seen.add(rule.arn)
        record = saved.get(rule.arn)
        group = wake_for.get(balancer_of(rule.listener_arn))
        if rule.is_default and not _swapped(rule, wake_for):
            # AWS refuses ModifyRule on a listener's default rule (its actions are the
            # listener's, changed by ModifyListener): left alone, and a record saved for it
            # before is dropped, the rule being as people left it.
            if record is not None:
                steps.append(RuleStep("delete", rule.arn, rule.listener_arn))
            continue
        if _swapped(rule, wake_for):
            # Already swapped (its record was written before). A person may still change its
            # conditions or priority while it sleeps: the record follows, since the wake
            # function matches requests against what the record says.
            if record is not None and not _same_match(rule, record):
                steps.append(_refresh(rule, record))
            continue
        if group is None:
            continue
        wake = wake_actions(group)
        if record is None:
            forwarded = forwarded_groups(rule.actions)
            if not forwarded & set(target_groups):
                continue
            if forwarded - set(target_groups):
                # A weighted forward that also sends to another service's target group (or a
                # blue/green peer): swapping it would cut that traffic off too.
                others = ", ".join(sorted(forwarded - set(target_groups)))
                steps.append(
                    RuleStep(
                        "note",
                        rule.arn,
                        rule.listener_arn,
                        note=f"it also forwards to {others}, which are not this service's; "
                        "it is left alone, so requests through it cannot wake the service",
                    )
                )
                continue
            steps.append(_step("save", rule))
        elif not same_actions(rule.actions, record.actions):
            steps.append(_step("amend", rule, "a person changed the rule while it slept"))
        steps.append(RuleStep("swap", rule.arn, rule.listener_arn, wake))
    steps.extend(_dropped(saved, seen))
    return steps


def default_rules_forwarding(
    rules: Sequence[Rule], target_groups: Collection[str], wake_for: Mapping[str, str]
) -> list[Rule]:
    """The default rules that send to the service on a balancer with a wake target group:
    requests they take cannot reach the wake function (see ``plan_sleep``)."""
    return [
        rule
        for rule in rules
        if rule.is_default
        and balancer_of(rule.listener_arn) in wake_for
        and forwarded_groups(rule.actions) & set(target_groups)
    ]


def plan_restore(
    rules: Sequence[Rule],
    saved: Mapping[str, SavedRule],
    wake_for: Mapping[str, str],
    healthy: bool,
) -> list[RuleStep]:
    """The steps that give each saved rule back its actions, once the service's targets are
    ``healthy`` (none before: traffic would meet no target), each record deleted after."""
    if not healthy or not saved:
        return []
    steps: list[RuleStep] = []
    seen: set[str] = set()
    for rule in rules:
        record = saved.get(rule.arn)
        if record is None:
            continue
        seen.add(rule.arn)
        if _swapped(rule, wake_for):
            steps.append(RuleStep("restore", rule.arn, rule.listener_arn, tuple(record.actions)))
        # Otherwise restored already (a crash before the delete) or set by a person: theirs.
        steps.append(RuleStep("delete", rule.arn, rule.listener_arn))
    steps.extend(_dropped(saved, seen))
    return steps


def _same_match(rule: Rule, record: SavedRule) -> bool:
    """The record matches requests as the rule does now (conditions, priority, port; a port
    not known when reading, as when a saved rule's listener is read alone, changes nothing)."""
    same_port = rule.port is None or rule.port == record.port
    return (
        same_port
        and rule.priority == record.priority
        and _canonical(rule.conditions) == _canonical(record.conditions)
    )


def _refresh(rule: Rule, record: SavedRule) -> RuleStep:
    """Amend the record with the rule's conditions and priority now, its actions kept."""
    return RuleStep(
        "amend",
        rule.arn,
        rule.listener_arn,
        tuple(record.actions),
        rule.conditions,
        "a person changed the rule's conditions or priority while it slept",
        rule.priority,
        rule.port if rule.port is not None else record.port,
    )


def _swapped(rule: Rule, wake_for: Mapping[str, str]) -> bool:
    """The rule forwards to its load balancer's wake target group, and nowhere else."""
    group = wake_for.get(balancer_of(rule.listener_arn))
    return group is not None and same_actions(rule.actions, wake_actions(group))


def _step(kind: StepKind, rule: Rule, note: str | None = None) -> RuleStep:
    return RuleStep(
        kind,
        rule.arn,
        rule.listener_arn,
        rule.actions,
        rule.conditions,
        note,
        rule.priority,
        rule.port,
    )


def _dropped(saved: Mapping[str, SavedRule], seen: Collection[str]) -> list[RuleStep]:
    """Records of rules that no longer exist: a person deleted them; nothing is recreated."""
    return [
        RuleStep(
            "drop",
            arn,
            record.listener_arn,
            note=f"listener rule {arn} was deleted while the service slept; its record is "
            "dropped and the rule is not recreated",
        )
        for arn, record in sorted(saved.items())
        if arn not in seen
    ]
