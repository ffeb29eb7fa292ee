"""What a tick tells the world: one EventBridge event per change and per problem (pure).

``events_for`` reads a finished ``TickReport`` and returns the events, source ``teiji``:

- ``Service Stopped`` / ``Service Started``: a service teiji scaled to zero, or back up;
- ``Service Resized``: a service teiji brought to a reduced size while stopped (a night size);
- ``Baseline Amended``: people changed a stopped service, and its saved capacity follows them;
- ``Service Failed``: a service teiji could not converge (or ran out of time for);
- ``Document Invalid``: a document that does not parse or validate (its field, what is wrong
  and what is allowed), which leaves its service as it was;
- ``Tick Failed``: a problem of the whole run (a setting, the documents unreadable, the lease
  lost).

Each detail carries the service key and ARN, the decision, its source and reason, the override
that decided (id, author, reason) when one did, the capacity before and after and the next
change. ``entries`` turns events into PutEvents entries for one bus, each well under
EventBridge's 256 KB. A dry run changes nothing, so it has no events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from engine.plan import Action
from engine.report import ServiceReport, TickReport, for_people

SOURCE = "teiji"

DetailType = Literal[
    "Service Stopped",
    "Service Started",
    "Service Resized",
    "Service Failed",
    "Document Invalid",
    "Baseline Amended",
    "Tick Failed",
]
DETAIL_TYPES: tuple[DetailType, ...] = get_args(DetailType)

# Free text (a reason, an error, a note) is cut to this many characters: an event is a signal
# for people and chat channels; the whole story is in the tick's log line.
TEXT_LIMIT = 1_000
# Notes and problems listed in one event at most.
LIST_LIMIT = 20


@dataclass(frozen=True)
class Event:
    """One event before it is addressed to a bus."""

    detail_type: DetailType
    detail: Mapping[str, Any]
    resources: tuple[str, ...] = field(default=())


def events_for(report: TickReport) -> list[Event]:
    """The events of a finished tick, services in the report's order, then the run's own."""
    if report.dry_run:
        return []
    events: list[Event] = []
    for service in report.services:
        events.extend(_service_events(report, service))
    events.extend(_document_events(report))
    if report.failed and (report.problems or report.lease == "lost"):
        events.append(_tick_failed(report))
    return events


def entries(events: Sequence[Event], bus: str, report: TickReport) -> list[dict[str, Any]]:
    """PutEvents entries for ``bus``, timed at the tick's instant."""
    return [
        {
            "Source": SOURCE,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail, sort_keys=True, default=str),
            "Resources": list(event.resources),
            "EventBusName": bus,
            "Time": report.at,
        }
        for event in events
    ]


# Services ----------------------------------------------------------------------------------
def _service_events(report: TickReport, service: ServiceReport) -> list[Event]:
    if service.failed:
        return [_event(report, service, "Service Failed")]
    if service.outcome != "changed":
        return []
    found: list[Event] = []
    if any(action.kind == "amend_baseline" for action in service.actions):
        found.append(_event(report, service, "Baseline Amended"))
    change = _change_type(service)
    if change is not None:
        found.append(_event(report, service, change))
    return found


def _change_type(service: ServiceReport) -> DetailType | None:
    """Stopped, started or resized, by the decision and the desired count it led to."""
    writes = [a for a in service.actions if a.kind in ("update_service", "register_target")]
    if not writes or service.decision is None:
        return None
    if service.decision.state == "running":
        return "Service Started"
    after = capacity(service.actions, "after")
    return "Service Resized" if after.get("desired_count", 0) else "Service Stopped"


def capacity(actions: Sequence[Action], side: Literal["before", "after"]) -> dict[str, Any]:
    """The desired count and the scalable target's bounds on one side of the service's writes
    (what a write did not touch is left out)."""
    values: dict[str, Any] = {}
    for action in actions:
        if action.kind not in ("update_service", "register_target"):
            continue
        chosen = action.before if side == "before" else action.after
        for name in ("desired_count", "min_capacity", "max_capacity"):
            if name in chosen and name not in values:
                values[name] = chosen[name]
    return values


def _event(report: TickReport, service: ServiceReport, detail_type: DetailType) -> Event:
    decision = service.decision
    detail: dict[str, Any] = {
        "service": service.key,
        "service_arn": service.arn,
        "outcome": service.outcome,
        "decision": decision.state if decision else None,
        "source": decision.source if decision else None,
        "reason": _text(decision.reason) if decision else None,
        "override": _override(service),
        "holiday": decision.holiday if decision else None,
        "decided_by": service.decided_by,
        "before": capacity(service.actions, "before"),
        "after": capacity(service.actions, "after"),
        "next_change": (
            decision.next_change.isoformat() if decision and decision.next_change else None
        ),
        "tick_at": report.at.isoformat(),
        # Which document decided: the service's own, or a profile (by document or by tag),
        # and the fields the schedule set itself.
        "schedule": report.origins.get(service.key, {"from": "document", "profile": None}),
    }
    if service.error is not None:
        detail["error"] = _text(service.error)
    if service.notes:
        detail["notes"] = [_text(note) for note in service.notes[:LIST_LIMIT]]
    return Event(detail_type, detail, (service.arn,) if service.arn else ())


def _override(service: ServiceReport) -> dict[str, Any] | None:
    decision = service.decision
    if decision is None or decision.override_id is None:
        return None
    return {
        "id": decision.override_id,
        "author": _text(decision.override_by or ""),
        "reason": _text(decision.reason),
    }


# Documents and the run ---------------------------------------------------------------------
def _document_events(report: TickReport) -> list[Event]:
    return [
        Event(
            "Document Invalid",
            {
                "document": _text(problem.get("document", "")),
                "field": _text(problem.get("field", "")),
                "problem": _text(problem.get("message", "")),
                "table": _text(problem.get("source", "")),
                "tick_at": report.at.isoformat(),
            },
        )
        for problem in report.invalid_documents
    ]


def _tick_failed(report: TickReport) -> Event:
    return Event(
        "Tick Failed",
        {
            "problems": [_text(p) for p in report.problems[:LIST_LIMIT]],
            "lease": report.lease,
            "counts": report.counts,
            "tick_at": report.at.isoformat(),
        },
    )


def _text(value: str) -> str:
    # Anyone who can write the config table writes free text: keep it printable and short.
    return for_people(value, TEXT_LIMIT)
