"""The override a wake writes (pure): one per wake, extended by later requests, capped.

A wake is an ordinary override (``schemas.documents.Override``) with the fixed id ``wake``
(sort key ``<service key>#wake``), state running, ``created_by`` ``wake``, from the request to
``keep_for`` later, so ``explain``, ``list``, ``override list``, simulate and the events show
it, and people cancel or extend it by that id. The rules, given the service's overrides now:

- A person's active override that keeps the service stopped wins: nothing is written and the
  request is told so (they asked for it to stay down).
- No wake override, or one that has ended (or that someone moved to begin later): a new one,
  written on condition that the item is still what was read -- of a burst of requests, one
  writes and the rest find it.
- An active wake override is extended to ``keep_for`` after this request, but only when that
  adds at least ``extend_step`` (a twentieth of ``keep_for``, at least a minute): the requests
  that arrive while the service is starting, and a steady stream later, write nothing new.
- Never longer than ``cap`` (``TEIJI_MAX_OVERRIDE``) from the wake's start, as the tick checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from schemas.documents import Override
from schemas.keys import ServiceKey

WAKE_ID = "wake"
WAKE_CREATOR = "wake"
MAX_REASON = 1024

WakeKind = Literal["create", "replace", "extend", "none", "kept-stopped"]


@dataclass(frozen=True)
class WakeWrite:
    """What to write: ``override`` is the new document (None for none / kept-stopped);
    ``blocking`` the person's override that keeps the service stopped."""

    kind: WakeKind
    override: Override | None = None
    blocking: Override | None = None
    capped: bool = False


def extend_step(keep_for: timedelta) -> timedelta:
    return max(timedelta(minutes=1), keep_for / 20)


def wake_reason(shown: str) -> str:
    """``woken by a request to <host><path>``: one printable line within the field's limit."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in shown)
    reason = f"woken by a request to {clean}"
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def plan_wake(
    key: str,
    overrides: Sequence[Override],
    *,
    now: datetime,
    keep_for: timedelta,
    cap: timedelta,
    shown: str,
) -> WakeWrite:
    """The write for a request at ``now`` to the sleeping service ``key`` (see the module)."""
    for override in overrides:
        if override.id != WAKE_ID and override.state == "stopped" and override.active_at(now):
            return WakeWrite("kept-stopped", blocking=override)
    existing = next((o for o in overrides if o.id == WAKE_ID), None)
    if existing is not None and existing.active_at(now):
        start = existing.start or existing.created_at or now
        until, capped = _until(start, now, keep_for, cap)
        if until - existing.until < extend_step(keep_for):
            return WakeWrite("none")
        extended = existing.model_copy(update={"until": until})
        return WakeWrite("extend", override=extended, capped=capped)
    until, capped = _until(now, now, keep_for, cap)
    parsed = ServiceKey.parse(key)
    override = Override(
        service=parsed.name,
        account=parsed.account,
        region=parsed.region,
        state="running",
        start=now,
        until=until,
        reason=wake_reason(shown),
        created_by=WAKE_CREATOR,
        created_at=now,
        id=WAKE_ID,
    )
    return WakeWrite("replace" if existing is not None else "create", override, capped=capped)


def _until(
    start: datetime, now: datetime, keep_for: timedelta, cap: timedelta
) -> tuple[datetime, bool]:
    wanted = now + keep_for
    limit = start + cap
    return (limit, True) if wanted > limit else (wanted, False)
