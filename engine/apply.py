"""Carry out one service's plan, in order, stopping at the first failing call.

Every write goes through the thin adapters; the first error ends this service's work (the
plan is ordered so that whatever was done is safe to leave: the baseline is saved before any
capacity change and deleted only after the restore calls succeeded). Other services go on.

What people set while a service was stopped is folded into its baseline first
(``amend_baseline``, conditional on the version that was read), before teiji pins or restores.

A baseline that cannot be saved because one is already there (saved meanwhile by a person or
a racing tick) ends the plan before anything about the service changes: the stored baseline
is kept and the next tick plans from it. The tick may have saved the baseline already, in a
batch with others (``saved``), and may leave a start's final baseline delete to a batch
(``defer_delete``): both are version- or existence-conditional like the single writes.

A stop of a service whose baseline slot holds an earlier service's baseline first archives
that baseline, then deletes it from the slot; a failure of either ends the plan before this
service's capacity changes. Archived baselines are never deleted by teiji.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

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
    # A start's last action, the baseline delete, left to the tick's batch (``defer_delete``).
    deferred: Action | None = None


# The baseline save, already written in a batch: "done" (this tick wrote it) or "refused" (one
# was there); None when the batch did not confirm it (or it was not in one): save it here.
PreSaved = Literal["done", "refused"] | None

_SAVED_MEANWHILE = (
    "a baseline was saved since it was read (by a person or another tick); it is kept, this "
    "service is left as it is and the next tick plans from the stored baseline"
)


def apply_plan(
    clients: Clients,
    state: StateStore,
    plan: ServicePlan,
    observation: Observation,
    *,
    sleep: Callable[[float], None] | None = None,
    still_leased: Callable[[], bool] | None = None,
    saved: PreSaved = None,
    defer_delete: bool = False,
) -> ApplyResult:
    """``sleep`` waits between retries of a busy scalable target (None: the adapter's own).

    ``still_leased`` is asked before every write: once the tick's lease has run out, the next
    tick may already be acting on this very service (restoring it and deleting its baseline),
    so finishing a stop here could leave the service stopped with no baseline. The rest is
    left to the next tick, which sees what was done.

    ``saved``: the outcome of this plan's baseline save in the tick's batch. ``defer_delete``:
    a start's final baseline delete is not made here but handed back (``result.deferred``)
    for the tick to make in a batch, once the restore calls succeeded.
    """
    result = ApplyResult()
    last = len(plan.actions) - 1
    for index, action in enumerate(plan.actions):
        if action.kind == "save_baseline" and saved is not None:
            if saved == "refused":
                result.error = f"{action.kind}: {_SAVED_MEANWHILE}"
                return result
            result.done.append(action)
            continue
        if defer_delete and index == last and intent_deletes(plan, action):
            result.deferred = action
            return result
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


def intent_deletes(plan: ServicePlan, action: Action) -> bool:
    """True for a start's baseline delete after its restore: safe to make later, in a batch
    (it is conditional on the version read, and a baseline left over is deleted next tick)."""
    return plan.intent == "start" and action.kind == "delete_baseline"


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
            raise _StateChangedError(_SAVED_MEANWHILE)
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
