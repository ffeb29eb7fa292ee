"""Small value types shared by deciding, planning, acting and reporting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

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
