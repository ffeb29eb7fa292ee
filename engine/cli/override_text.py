"""What teiji says about an override: the sentence after a write, what happens when it ends
or is cancelled, and its JSON and table row (``engine.cli.overrides`` runs the commands)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from engine.cli.common import CliError, colour
from engine.cli.documents import explain
from engine.cli.fleet import find_service
from engine.cli.session import Session, load_service_documents
from engine.cli.text import local_text
from engine.decide import Decider
from engine.overrides import StoredOverride, override_status
from engine.report import for_people
from schemas.documents import Override, Schedule

_STATE_VERB = {"running": "will run", "stopped": "will be kept stopped"}


def override_sentence(
    override: Override, key: str, now: datetime, *, ticking: bool, timezone: str | None = None
) -> str:
    """``<key> will run until Tue 2026-12-01 23:30 JST (override 3fa2c1d0 by suzuki: why).``"""
    verb = _STATE_VERB[override.state]
    span = f"until {local_text(override.until, timezone)}"
    if override.start is not None and override.start > now:
        span = f"from {local_text(override.start, timezone)} {span}"
    author = f" by {override.created_by}" if override.created_by else ""
    text = f"{key} {verb} {span} (override {override.id}{author}: {override.reason})."
    if override.start is not None and override.start > now:
        return f"{text} The first tick from its start acts on it."
    if ticking:
        return text
    return f"{text} Next tick within 15 minutes, or use --now."


def after_lines(
    session: Session, schedule: Schedule, override: Override, now: datetime, limit: timedelta
) -> list[str]:
    """What happens when the override ends, and a note when it changes nothing."""
    docs, _ = load_service_documents(session, schedule.key, now=now, limit=limit)
    decider = Decider(docs.calendars)
    overrides = [o for o in docs.overrides_for(schedule.key) if o.id != override.id]
    lines: list[str] = []
    try:
        start = override.start or now
        base = decider.segments(schedule, max(start, now), override.until, overrides)
        if base and all(s.state == override.state for s in base):
            others = sorted({s.override_id or "" for s in base if s.source == "override"})
            mixed = any(s.source != "override" for s in base)
            why = "its schedule"
            if others:
                why = f"override {', '.join(others)}" + (" and its schedule" if mixed else "")
            lines.append(
                f"note: {why} already keep{'s' if why == 'its schedule' or not mixed else ''} "
                f"it {override.state} for all of that time; this override changes nothing "
                "unless that changes"
            )
        after = decider.decide(schedule, override.until, [*overrides, override])
    except ValueError:
        return lines
    lines.append(
        f"At {local_text(override.until, schedule.timezone)} its schedule decides again: "
        f"{after.state} ({after.reason})."
    )
    return lines


def override_json(stored: StoredOverride, now: datetime) -> dict[str, Any]:
    override = stored.override
    assert override is not None
    status = override_status(override, now)
    return {
        "id": stored.id,
        "ref": stored.sk,
        "service": stored.key,
        "state": override.state,
        "start": override.start.isoformat() if override.start else None,
        "until": override.until.isoformat(),
        "reason": override.reason,
        "created_by": override.created_by,
        "created_at": override.created_at.isoformat() if override.created_at else None,
        "status": status,
        "active": status == "active",
    }


def override_cells(stored: StoredOverride, now: datetime, timezone: str) -> list[str]:
    override = stored.override
    assert override is not None
    status = override_status(override, now)
    start = local_text(override.start, timezone) if override.start else "-"
    return [
        stored.id,
        stored.key,
        colour(override.state, override.state),
        start,
        local_text(override.until, timezone),
        colour(status, "bold") if status == "active" else status,
        for_people(override.created_by or "-"),
        for_people(override.reason),
    ]


def now_line(session: Session, key: str, now: datetime, *, ticking: bool) -> str:
    docs, problems = load_service_documents(
        session, key, now=now, limit=session.settings.max_override
    )
    if key not in docs.schedules and not problems and session.settings.access.clusters:
        # No document: its teiji:profile tag may opt it in, as the tick finds it.
        try:
            found = find_service(session, key, now=now)
        except CliError:
            found = None
        if found is not None and found.kind == "protected":
            return f"{key} is tagged teiji:protected=true: teiji leaves it as it is."
        if found is not None and found.fleet is not None and found.schedule() is not None:
            docs, problems = found.fleet.documents, found.problems()
    if key not in docs.schedules or problems:
        return f"{key} has no valid schedule: teiji leaves it as it is."
    try:
        decision = explain(docs, key, now).decision
    except CliError:
        return ""
    tail = "" if ticking else " Next tick within 15 minutes, or use --now."
    return f"{key} now follows its schedule: {decision.state} ({decision.reason}).{tail}"
