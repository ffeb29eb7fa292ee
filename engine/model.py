"""The values deciding, planning, acting and reporting share: a decision, a segment of time,
what a service looks like (``Observation``) and its scalable target. Plain data, no AWS calls;
``engine.plan`` imports only these and ``schemas``. Service keys are ``schemas.keys``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from schemas.records import SuspendedState, TaskSpec

DecisionState = Literal["running", "stopped", "unmanaged"]
DecisionSource = Literal["window", "cron", "holiday", "override", "mode", "default"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What a schedule says about one service at one instant, and why.

    ``next_change`` is the next instant after ``at`` at which ``state`` changes (looking ahead
    at least 14 days), or None when it does not change in that horizon.
    """

    state: DecisionState
    source: DecisionSource
    reason: str
    at: datetime
    next_change: datetime | None
    override_id: str | None = None
    override_by: str | None = None
    holiday: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "source": self.source,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "next_change": self.next_change.isoformat() if self.next_change else None,
        }


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of time over which one schedule's decision does not change.

    ``Decider.segments`` returns contiguous segments covering a range; ``simulate`` and the
    HTML timeline read them. ``end`` is exclusive.
    """

    start: datetime
    end: datetime
    state: DecisionState
    source: DecisionSource
    reason: str
    override_id: str | None = None
    holiday: str | None = None

    def same_meaning(self, other: Segment) -> bool:
        """True when two segments say the same thing (so adjacent ones can be merged)."""
        return (self.state, self.source, self.reason, self.override_id, self.holiday) == (
            other.state,
            other.source,
            other.reason,
            other.override_id,
            other.holiday,
        )


def resource_id(cluster: str, service: str) -> str:
    """The Application Auto Scaling resource id of an ECS service."""
    return f"service/{cluster}/{service}"


@dataclass(frozen=True, slots=True)
class ScalableTarget:
    """A service's registered scalable target, SuspendedState normalised (missing = false)."""

    resource_id: str
    min_capacity: int
    max_capacity: int
    suspended: SuspendedState

    def holds(self, desired: int) -> bool:
        return self.min_capacity <= desired <= self.max_capacity

    def clamp(self, desired: int) -> int:
        """Where RegisterScalableTarget with these bounds moves ``desired`` on real AWS."""
        return max(self.min_capacity, min(self.max_capacity, desired))

    def as_json(self) -> dict[str, Any]:
        return {
            "min_capacity": self.min_capacity,
            "max_capacity": self.max_capacity,
            "suspended": self.suspended.model_dump(),
        }

    def text(self) -> str:
        return bounds_text(self.as_json())


def bounds_text(values: Mapping[str, Any] | None, *, suspended: bool = True) -> str:
    """``1..4``, ``0..0 suspended`` or ``1..4 suspended:dynamic_in`` from a target's JSON
    form (``ScalableTarget.as_json``, a baseline's or an action's values); ``none`` without.
    ``suspended=False`` leaves the flags out (a line that tells them apart)."""
    if not values or "min_capacity" not in values:
        return "none"
    text = f"{values['min_capacity']}..{values['max_capacity']}"
    flags = values.get("suspended") or {}
    names = ("dynamic_in", "dynamic_out", "scheduled")  # the record's own field names
    on = [name for name in names if flags.get(name)]
    if not suspended or not on:
        return text
    return f"{text} suspended" if len(on) == len(names) else f"{text} suspended:{','.join(on)}"


@dataclass(frozen=True, slots=True)
class Observation:
    """What one ECS service looks like now, with its scalable target (None when it has none)."""

    key: str
    cluster: str
    service: str
    account: str | None
    region: str | None
    desired_count: int
    running_count: int
    service_arn: str | None
    created_at: datetime | None
    target: ScalableTarget | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # The task size read for the savings figures this tick (engine.sizing); a baseline saved
    # now records it. None: not read (not needed, or it could not be).
    task: TaskSpec | None = field(default=None, repr=False, compare=False)

    @property
    def resource_id(self) -> str:
        return resource_id(self.cluster, self.service)

    @property
    def load_balancers(self) -> list[Mapping[str, Any]]:
        return list(self.raw.get("loadBalancers") or [])

    def bounds_text(self) -> str:
        return self.target.text() if self.target else "none"
