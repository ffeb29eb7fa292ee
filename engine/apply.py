"""Carry out one service's plan, in order, stopping at the first failing call.

Every write goes through the thin adapters; the first error ends this service's work (the
plan is ordered so that whatever was done is safe to leave: the baseline is saved before any
capacity change and deleted only after the restore calls succeeded). Other services go on.

What people set while a service was stopped is folded into its baseline first
(``amend_baseline``, conditional on the version that was read), before teiji pins or restores.

A stop of a service whose baseline slot holds an earlier service's baseline first archives
that baseline, then deletes it from the slot; a failure of either ends the plan before this
service's capacity changes. Archived baselines are never deleted by teiji.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from engine.aws import autoscaling, ecs
from engine.aws.errors import AWS_ERRORS, error_text
from engine.model import Observation
from engine.plan import Action, Intent, ServicePlan
from engine.store import StateStore

if TYPE_CHECKING:
    from engine.aws.clients import Clients


class _StateChangedError(Exception):
    """A write that found the state table other than the plan expects: leave the rest."""


@dataclass
class ApplyResult:
    """The actions that were carried out, notes, and the error that stopped the rest."""

    done: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def apply_plan(
    clients: Clients,
    state: StateStore,
    plan: ServicePlan,
    observation: Observation,
    *,
    sleep: Callable[[float], None] | None = None,
    still_leased: Callable[[], bool] | None = None,
) -> ApplyResult:
    """``sleep`` waits between retries of a busy scalable target (None: the adapter's own).

    ``still_leased`` is asked before every write: once the tick's lease has run out, the next
    tick may already be acting on this very service (restoring it and deleting its baseline),
    so finishing a stop here could leave the service stopped with no baseline. The rest is
    left to the next tick, which sees what was done.
    """
    result = ApplyResult()
    for action in plan.actions:
        if still_leased is not None and not still_leased():
            result.error = (
                f"the tick ran out of its lease before {action.kind}; the rest is left to the "
                "next tick"
            )
            return result
        try:
            note = _apply_action(clients, state, action, observation, sleep, plan.intent)
        except _StateChangedError as exc:
            result.error = f"{action.kind}: {exc}"
            return result
        except AWS_ERRORS as exc:
            result.error = f"{action.kind} failed: {error_text(exc)}"
            return result
        result.done.append(action)
        if note:
            result.notes.append(note)
    return result


def _apply_action(
    clients: Clients,
    state: StateStore,
    action: Action,
    observation: Observation,
    sleep: Callable[[float], None] | None,
    intent: Intent,
) -> str | None:
    account, region = observation.account, observation.region
    if action.kind == "archive_baseline":
        assert action.baseline is not None
        archived_at = datetime.fromisoformat(str(action.after["archived_at"]))
        superseded_by = action.after.get("superseded_by")
        if not state.archive_baseline(
            action.baseline,
            archived_at=archived_at,
            superseded_by=str(superseded_by) if superseded_by else None,
        ):
            return "the earlier baseline was already archived by an earlier attempt"
        return None
    if action.kind == "save_baseline":
        assert action.baseline is not None
        if not state.save_baseline(action.baseline):
            return "a baseline from an earlier stop already exists; it is kept (never overwritten)"
        return None
    if action.kind == "amend_baseline":
        assert action.baseline is not None and action.replaces is not None
        if not state.amend_baseline(action.replaces, action.baseline):
            # Another tick (or a person) changed the baseline since it was read: plan again
            # from what is stored now, next tick.
            raise _StateChangedError(
                "the baseline changed since it was read; it is kept as it is and the rest is "
                "left to the next tick"
            )
        return None
    if action.kind == "register_target":
        autoscaling.register_scalable_target(
            clients.autoscaling(account, region),
            observation.resource_id,
            min_capacity=action.min_capacity,
            max_capacity=action.max_capacity,
            suspended=action.suspended,
            sleep=sleep,
        )
        return None
    if action.kind == "update_service":
        ecs.update_desired_count(
            clients.ecs(account, region),
            observation.cluster,
            observation.service,
            action.desired_count,
        )
        return None
    assert action.baseline is not None
    if not state.delete_baseline(observation.key, action.baseline):
        if intent == "stop":
            # The slot must hold no baseline we have not read before this service's own is
            # saved: whatever is there now is kept, and the next tick plans from it.
            raise _StateChangedError(
                "the earlier baseline changed since it was read; it is kept and the stop is "
                "left to the next tick"
            )
        return "the baseline changed since it was read; it is kept"
    return None
