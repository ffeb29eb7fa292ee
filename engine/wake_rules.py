"""The tick's work on the listener rules of one wake-enabled service (imperative shell).

While the decision is stopped, every rule forwarding to the service's target groups is saved
(``engine.wake_store``) and pointed at the wake target group; once it runs again and its
targets are healthy, each saved rule is restored and its record deleted. What to do is
``engine.wake_plan``'s (pure); this module reads, then makes the planned steps in order and
stops at the first that fails, so the invariant of ``engine.wake_plan`` holds after a fault.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from engine.aws import elbv2
from engine.aws.errors import error_text
from engine.report import ServiceReport
from engine.targets import target_group_arns
from engine.wake_plan import (
    Rule,
    RuleStep,
    default_rules_forwarding,
    plan_restore,
    plan_sleep,
)
from engine.wake_store import (
    UnreadableRuleError,
    amend_rule,
    delete_rule,
    save_rule,
    saved_rules,
)
from schemas.records import SavedRule

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

    from engine.converge import Acting, Service

NO_LOAD_BALANCER = (
    "wake.on_request: the service has no load balancer target group, so no request can wake "
    "it; wake is not acted on (the rest of its schedule is followed)"
)
UNAVAILABLE = (
    "wake.on_request: wake on request is unavailable (TEIJI_WAKE_TARGET_GROUPS is not set); "
    "the listener rules are left alone"
)


def wake_wanted(service: Service) -> bool:
    wake = service.schedule.wake
    return wake is not None and wake.on_request


def converge_rules(service: Service, acting: Acting, report: ServiceReport) -> None:
    """Save and swap (stopped) or restore (running, targets healthy) the service's rules,
    reporting into ``report``; never raises.

    A schedule that no longer asks for wake still gets back the rules saved while it did (a
    person took ``wake`` out while the service slept): they are restored as at any start,
    and none is swapped again."""
    wanted = wake_wanted(service)
    wake_for = dict(acting.settings.wake_target_groups)
    if not wake_for:
        if wanted:
            report.notes.append(UNAVAILABLE)
        return
    try:
        _converge(service, acting, report, wake_for, wanted)
    except UnreadableRuleError as exc:  # a sentence for people: no class name
        report.outcome = "failed"
        report.error = f"listener rules: {exc}"
    except Exception as exc:  # one service's trouble fails only that service
        report.outcome = "failed"
        report.error = f"listener rules: {error_text(exc)}"


def _converge(
    service: Service,
    acting: Acting,
    report: ServiceReport,
    wake_for: Mapping[str, str],
    wanted: bool,
) -> None:
    schedule = service.schedule
    groups = target_group_arns(service.observation.raw)
    sleeping = wanted and service.decision.state == "stopped"
    saved = (acting.saved_rules or partial(saved_rules, acting.state))(schedule.key)
    if not sleeping and not saved:
        return  # nothing to swap and nothing saved: no ELB call at all
    client = acting.clients.elbv2(schedule.account, schedule.region)
    balancers = elbv2.load_balancers_of(client, groups) if groups else set()
    if not balancers and not saved:
        report.notes.append(f"schedule {schedule.service}: {NO_LOAD_BALANCER}")
        return
    if sleeping:
        report.notes.extend(
            f"wake.on_request: load balancer {lb} has no wake target group, so its rules are "
            "left alone (add it to the Terraform variable wake_load_balancers)"
            for lb in sorted(balancers - set(wake_for))
        )
    listeners = {r.listener_arn for r in saved.values()}
    rules = elbv2.listener_rules(client, sorted(balancers))
    if listeners - {r.listener_arn for r in rules}:
        # A saved rule's listener is not on the service's balancers any more: read it too, so
        # that its rule is restored rather than taken for deleted.
        rules += _rules_of_listeners(client, listeners - {r.listener_arn for r in rules})
    if sleeping:
        report.notes.extend(
            f"wake.on_request: the default action of listener {r.listener_arn} forwards to "
            "the service, and AWS lets no listener rule change a default action, so requests "
            "it takes are not woken (give the service a listener rule of its own)"
            for r in default_rules_forwarding(rules, groups, wake_for)
        )
        steps = plan_sleep(rules, groups, saved, wake_for)
    else:
        steps = plan_restore(rules, saved, wake_for, _healthy(client, groups))
        if saved and not steps:
            report.notes.append("listener rules are restored once the targets are healthy")
    if acting.dry_run:
        report.notes.extend(
            f"listener rule {s.rule_arn}: {s.note}"
            if s.kind == "note"
            else f"would {s.kind} listener rule {s.rule_arn}"
            for s in steps
        )
        return
    _make(steps, saved, schedule.key, acting, client, report)


def _rules_of_listeners(client: ElasticLoadBalancingv2Client, listeners: set[str]) -> list[Rule]:
    found: list[Rule] = []
    for arn in sorted(listeners):
        try:
            found += elbv2.rules_of_listener(client, arn)
        except Exception as exc:
            if "ListenerNotFound" not in error_text(exc):
                raise
    return found


def _healthy(client: ElasticLoadBalancingv2Client, groups: Sequence[str]) -> bool:
    """Every target group of the service has a target, and every target in it is healthy."""
    for arn in groups:
        states = [
            (d.get("TargetHealth") or {}).get("State")
            for d in elbv2.describe_target_health(client, arn)
        ]
        if not states or any(state != "healthy" for state in states):
            return False
    return bool(groups)


def _make(
    steps: Sequence[RuleStep],
    saved: Mapping[str, SavedRule],
    key: str,
    acting: Acting,
    client: ElasticLoadBalancingv2Client,
    report: ServiceReport,
) -> None:
    at = acting.at or datetime.now(UTC)
    records = dict(saved)
    for step in steps:
        if step.kind in ("save", "amend"):
            new = SavedRule(
                key=key,
                rule_arn=step.rule_arn,
                listener_arn=step.listener_arn,
                actions=[dict(a) for a in step.actions],
                conditions=[dict(c) for c in step.conditions],
                priority=step.priority,
                port=step.port,
                saved_at=records[step.rule_arn].saved_at if step.kind == "amend" else at,
                version=uuid.uuid4().hex[:16],
                amended_at=at if step.kind == "amend" else None,
            )
            wrote = (
                save_rule(acting.state, new)
                if step.kind == "save"
                else amend_rule(acting.state, records[step.rule_arn], new)
            )
            if not wrote:
                report.notes.append(
                    f"listener rule {step.rule_arn}: its record changed meanwhile; the next "
                    "tick reads it again"
                )
                return  # never swap a rule whose actions are not saved as read
            records[step.rule_arn] = new
            if step.note:
                report.notes.append(f"listener rule {step.rule_arn}: {step.note}; kept theirs")
        elif step.kind == "note":
            report.notes.append(f"listener rule {step.rule_arn}: {step.note}")
        elif step.kind in ("swap", "restore"):
            elbv2.modify_rule(client, step)
            report.notes.append(
                f"listener rule {step.rule_arn}: {step.kind}ped".replace("eped", "ed")
            )
        else:
            if not delete_rule(acting.state, records[step.rule_arn]):
                report.notes.append(f"listener rule {step.rule_arn}: its record changed; kept")
                return
            if step.kind == "drop" and step.note:
                report.notes.append(f"warning: {step.note}")
