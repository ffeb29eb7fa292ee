"""What a tick did, per service and in total; JSON for logs, the CLI and the Lambda's result."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from engine.model import Decision
from engine.plan import Action
from engine.savings import Saving

Outcome = Literal["converged", "changed", "planned", "unmanaged", "skipped", "failed"]
OUTCOMES: tuple[Outcome, ...] = (
    "converged",
    "changed",
    "planned",
    "unmanaged",
    "skipped",
    "failed",
)
# ANSI escape sequences: CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \), and the
# ones of ESC and one more character (ESC c resets the terminal).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -~]")


def for_people(text: str, limit: int | None = None) -> str:
    """``text`` fit for a terminal: escape sequences removed, every other control or format
    character (a newline, a bell, a right-to-left override) shown as ``?``, cut at ``limit``.

    Anyone who can write the config table writes ``created_by`` and other free text; what
    they write must not move the cursor, recolour or rewrite an operator's terminal."""
    if text.isascii() and text.isprintable():
        shown = text  # the common case: no escape (ESC is not printable), no control character
    else:
        shown = _ANSI.sub("", text)
        shown = "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in shown)
    if limit is not None and len(shown) > limit:
        shown = shown[: max(0, limit - 1)] + "…"
    return shown


_T = TypeVar("_T")


@dataclass(frozen=True)
class Phase(Generic[_T]):
    """What one phase of a tick hands on (``value``), the services it settled on the way
    (failed, skipped or unmanaged: the next phases never see them) and problems that belong to
    no service. The tick merges each phase into its report; no phase writes the report."""

    value: _T
    settled: tuple[ServiceReport, ...] = ()
    problems: tuple[str, ...] = ()


LeaseStatus = Literal["acquired", "held", "lost", "not taken (dry run)", "not taken"]


@dataclass
class ServiceReport:
    """One service's result: its decision, what was done (or planned), and why."""

    key: str
    outcome: Outcome
    decision: Decision | None = None
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: dict[str, Any] | None = None
    error: str | None = None
    decided_by: str | None = None
    arn: str | None = None  # the service's ARN, when it was observed
    # What keeping it stopped saves until the next tick (engine.savings); None: nothing.
    saving: Saving | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == "failed" or (self.outcome == "skipped" and self.error is not None)

    def as_json(self) -> dict[str, Any]:
        decision = self.decision
        return {
            "service": self.key,
            "arn": self.arn,
            "outcome": self.outcome,
            "decision": decision.state if decision else None,
            "source": decision.source if decision else None,
            "reason": decision.reason if decision else None,
            "next_change": (
                decision.next_change.isoformat() if decision and decision.next_change else None
            ),
            "override_id": decision.override_id if decision else None,
            "override_by": decision.override_by if decision else None,
            "holiday": decision.holiday if decision else None,
            "decided_by": self.decided_by,
            "actions": [a.as_json() for a in self.actions],
            "notes": list(self.notes),
            "targets": self.targets,
            "error": self.error,
        }


@dataclass
class TickReport:
    """The whole run. ``failed`` is what makes the Lambda end in error (and its alarm fire)."""

    at: datetime
    dry_run: bool
    lease: LeaseStatus
    services: list[ServiceReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    # When another tick holds the lease: which slot, who, since when and until when.
    lease_name: str | None = None
    lease_holder: str | None = None
    lease_taken_at: datetime | None = None
    lease_expires_at: datetime | None = None
    # Requests sent to AWS (every attempt, retries included) and throttling errors among them.
    api_calls: int = 0
    throttle_errors: int = 0
    # Every document that does not parse or validate: source, document, field and message.
    invalid_documents: list[dict[str, str]] = field(default_factory=list)
    # Where each service's schedule came from when a profile made it (Schedule.origin_detail).
    origins: dict[str, dict[str, Any]] = field(default_factory=dict)
    # EventBridge events sent, and those that did not arrive (counted and logged, never fatal).
    events_sent: int = 0
    events_failed: int = 0

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(s.outcome for s in self.services)
        return {outcome: counted.get(outcome, 0) for outcome in OUTCOMES}

    @property
    def failed(self) -> bool:
        return (
            bool(self.problems)
            or self.lease == "lost"
            or any(service.failed for service in self.services)
        )

    def service(self, key: str) -> ServiceReport:
        for report in self.services:
            if report.key == key:
                return report
        raise KeyError(key)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "lease": self.lease,
            "lease_name": self.lease_name,
            "lease_holder": self.lease_holder,
            "lease_taken_at": _iso(self.lease_taken_at),
            "lease_expires_at": _iso(self.lease_expires_at),
            "failed": self.failed,
            "counts": self.counts,
            "duration_s": round(self.duration_s, 3),
            "api_calls": self.api_calls,
            "throttle_errors": self.throttle_errors,
            "events_sent": self.events_sent,
            "events_failed": self.events_failed,
            "problems": list(self.problems),
            "invalid_documents": list(self.invalid_documents),
            "services": [s.as_json() for s in self.services],
        }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
