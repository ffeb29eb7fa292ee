"""Override documents for people at a terminal: build, extend and cap them (pure).

``teiji start`` / ``teiji stop`` / ``teiji override extend`` turn what someone types
(``--for 2h``, ``--until 23:30``, ``--from 20:00``) into an ``Override`` document. Everything
here is a function of its arguments: the clock, the random id and the caller's name come in
as parameters, so the rules can be tested for every input.

The rules:
- ``HH:MM`` is wall-clock time in the schedule's timezone: the next time the clock shows it
  after the reference instant (today's 23:30 if it is still ahead, else tomorrow's). ``24:00``
  is the coming midnight. A full ISO timestamp is taken as written; without an offset it is
  read in the schedule's timezone. Wall-clock times that do not exist or occur twice (DST)
  follow ``engine.localtime``.
- An override always has a start (now when none is given) and ends after it and after now.
- It is at most ``limit`` long, measured from its start; the error names the limit and how to
  raise it. The tick checks the same limit (``TEIJI_MAX_OVERRIDE``), so both must allow it.
- Ids are 8 hex characters, unique among the service's overrides, so they can be typed.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from engine.localtime import in_range, localize, range_text, to_local, zone
from schemas.documents import Override, Schedule, State, parse_hhmm
from schemas.keys import Closeness, keys_named, split_override_sk
from schemas.validation import duration_text, parse_document

OVERRIDE_ID_BYTES = 4  # 8 hex characters: short enough to type, 4 billion values per service
MAX_OVERRIDE_ENV = "TEIJI_MAX_OVERRIDE"
_ID_ATTEMPTS = 64
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$", re.ASCII)

OverrideStatus = Literal["active", "upcoming", "expired"]


class OverrideError(ValueError):
    """Something about an override request a person must change; one line, said plainly."""


# Ids and names ----------------------------------------------------------------------------------
def random_id() -> str:
    return secrets.token_hex(OVERRIDE_ID_BYTES)


def new_override_id(taken: Collection[str], token: Callable[[], str] = random_id) -> str:
    """A fresh id not in ``taken`` (the ids of the service's stored overrides)."""
    for _ in range(_ID_ATTEMPTS):
        candidate = token()
        if candidate not in taken:
            return candidate
    raise OverrideError("could not find a free override id; cancel some old overrides")


def caller_name(arn: str | None) -> str | None:
    """The last part of an IAM or STS ARN: the user name or the role session name.

    ``arn:aws:sts::123456789012:assumed-role/Admin/suzuki`` -> ``suzuki``;
    ``arn:aws:iam::123456789012:user/ops/tanaka`` -> ``tanaka``; ``...:root`` -> ``root``.
    """
    if not arn:
        return None
    resource = arn.split(":", 5)[-1]
    name = resource.rsplit("/", 1)[-1].strip()
    return name or None


# Reading times -----------------------------------------------------------------------------------
def parse_instant(text: str, timezone: str, *, after: datetime, flag: str) -> datetime:
    """``--until`` / ``--from``: ``HH:MM`` (next occurrence after ``after``) or ISO 8601.

    Raises OverrideError naming ``flag`` and the forms allowed.
    """
    tz = zone(timezone)
    value = text.strip()
    clock = _CLOCK.match(value)
    if clock:
        try:
            minutes = parse_hhmm(f"{int(clock.group(1)):02d}:{clock.group(2)}", allow_24=True)
        except ValueError as exc:
            raise OverrideError(f"{flag} {text!r}: {exc}") from None
        return next_wall_clock(minutes, tz_name=timezone, after=after)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise OverrideError(
            f"{flag} {text!r} is not a time; write HH:MM (local time in {timezone}, the next "
            "time the clock shows it) or a timestamp such as 2026-12-01T23:30+09:00"
        ) from None
    if not in_range(parsed):
        raise OverrideError(f"{flag} {text!r} is out of range; {range_text()}")
    if parsed.utcoffset() is None:
        return localize(tz, parsed)
    return parsed


def after_length(start: datetime, length: timedelta, *, flag: str) -> datetime:
    """``start`` + ``length``; an OverrideError naming ``flag`` past the dates teiji reads."""
    try:
        end = start + length
    except OverflowError:
        end = None
    if end is None or not in_range(end):
        raise OverrideError(f"{flag} {duration_text(length)} ends out of range; {range_text()}")
    return end


def next_wall_clock(minutes: int, *, tz_name: str, after: datetime) -> datetime:
    """The first instant after ``after`` at which the clock in ``tz_name`` shows ``minutes``
    past midnight (1440 = the coming midnight)."""
    tz = zone(tz_name)
    day = to_local(after, tz).date()
    for offset in range(3):
        candidate_day = day + timedelta(days=offset)
        naive = datetime.combine(candidate_day, datetime.min.time()) + timedelta(minutes=minutes)
        candidate = localize(tz, naive)
        if candidate > after:
            return candidate
    raise AssertionError("a wall-clock time recurs within three days")  # pragma: no cover


def parse_length(text: str, *, flag: str) -> timedelta:
    """``--for 2h``, ``90m``, ``1d12h``."""
    from engine.config import parse_duration

    try:
        length = parse_duration(text)
    except ValueError as exc:
        raise OverrideError(f"{flag}: {exc}") from None
    if length <= timedelta(0):
        raise OverrideError(f"{flag} {text!r} is no time at all; give a length such as 2h")
    return length


# Building ---------------------------------------------------------------------------------------
def check_length(start: datetime, until: datetime, limit: timedelta) -> None:
    """Refuse an override longer than ``limit`` (measured from its start), saying how to
    raise the limit."""
    length = until - start
    if length <= limit:
        return
    days = max(1, math.ceil(length / timedelta(days=1)))
    raise OverrideError(
        f"the override would last {duration_text(length)} from its start, longer than the limit "
        f"of {duration_text(limit)}; end it sooner, or raise the limit with --max {days}d "
        f"(the tick checks the limit too: set {MAX_OVERRIDE_ENV}={days}d on the Lambda and "
        "where you run teiji)"
    )


def _check_span(start: datetime, until: datetime, now: datetime) -> None:
    if until <= start:
        raise OverrideError(
            f"the override would end ({until.isoformat()}) before it starts "
            f"({start.isoformat()}); give a later --until or a longer --for"
        )
    if until <= now:
        raise OverrideError(
            f"the end {until.isoformat()} has already passed; give a later --until or --for"
        )


def _truncate(at: datetime) -> datetime:
    return at.replace(microsecond=0)


def build_override(
    schedule: Schedule,
    *,
    state: State,
    start: datetime,
    until: datetime,
    reason: str,
    created_by: str | None,
    now: datetime,
    limit: timedelta,
    override_id: str,
) -> Override:
    """The override document for ``schedule``'s service, or OverrideError saying what to change.

    Instants are written in the schedule's timezone (so they read naturally in the table) and
    to the second.
    """
    if not reason.strip():
        raise OverrideError("--reason must say why (it is shown in reports and logs)")
    _check_span(start, until, now)
    check_length(start, until, limit)
    tz = zone(schedule.timezone)
    raw: dict[str, Any] = {
        "kind": "override",
        "service": schedule.service,
        "account": schedule.account,
        "region": schedule.region,
        "state": state,
        "start": _truncate(to_local(start, tz)),
        "until": _truncate(to_local(until, tz)),
        "reason": reason.strip(),
        "created_by": created_by,
        "created_at": _truncate(to_local(now, tz)),
        "id": override_id,
    }
    return _validated({k: v for k, v in raw.items() if v is not None})


def _validated(raw: dict[str, Any]) -> Override:
    parsed = parse_document(raw, source="command line", index=1)
    if isinstance(parsed, list):
        raise OverrideError("; ".join(f"{p.path}: {p.message}" for p in parsed))
    if not isinstance(parsed, Override):  # pragma: no cover - the kind is fixed above
        raise OverrideError("not an override")
    return parsed


def override_start(override: Override, now: datetime) -> datetime:
    """Where an override's length is measured from: its start, else when it was written,
    else now (an override without either has been running since it was written)."""
    return override.start or override.created_at or now


def extended_until(
    override: Override, *, until: datetime | None, length: timedelta | None, now: datetime
) -> datetime:
    """The new end for ``override extend``: ``--until`` as given, or ``--for`` added to the
    current end (to now when it has already ended)."""
    if until is not None:
        return until
    if length is None:
        raise OverrideError("give --until or --for")
    return after_length(max(override.until, now), length, flag="--for")


def extend_override(
    override: Override, *, until: datetime, now: datetime, limit: timedelta
) -> Override:
    """The same override ending at ``until``; the limit is measured from its start."""
    start = override_start(override, now)
    _check_span(start, until, now)
    check_length(start, until, limit)
    data = override.model_dump(mode="python", by_alias=True, exclude_none=True)
    tz = override.until.tzinfo or UTC
    data["until"] = _truncate(until.astimezone(tz))
    return _validated(data)


# Reading what is stored -------------------------------------------------------------------------
def override_status(override: Override, now: datetime) -> OverrideStatus:
    if override.until <= now:
        return "expired"
    if override.start is not None and override.start > now:
        return "upcoming"
    return "active"


@dataclass(frozen=True)
class StoredOverride:
    """An override as stored: its sort key (``<service key>#<id>``) and the document (None
    when the stored item is not a valid override: it can still be found and cancelled)."""

    sk: str
    override: Override | None

    @property
    def id(self) -> str:
        return split_override_sk(self.sk)[1]

    @property
    def key(self) -> str:
        return split_override_sk(self.sk)[0]


def find_override(ref: str, stored: Sequence[StoredOverride]) -> StoredOverride:
    """The override named by ``ID`` (when unique) or ``SERVICE#ID`` (SERVICE may leave out
    its ``@scope`` when that is unique). Raises OverrideError listing what would match."""
    ref = ref.strip()
    service, ident = split_override_sk(ref) if "#" in ref else ("", ref)
    matches = [s for s in stored if s.id == ident]
    if service:
        named = set(keys_named(service, {s.key for s in matches}, loosest=Closeness.UNSCOPED))
        matches = [s for s in matches if s.key in named]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(sorted(s.id for s in stored)[:10]) or "none"
        raise OverrideError(
            f"no override {ref!r}; stored overrides: {known} (see teiji override list --all)"
        )
    refs = ", ".join(sorted(s.sk for s in matches))
    raise OverrideError(f"{ref!r} names {len(matches)} overrides ({refs}); write SERVICE#ID")
