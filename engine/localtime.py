"""Wall-clock to instant rules.

Schedules speak in local wall-clock times ("05:00 in Asia/Tokyo"); deciding needs instants.
Two wall-clock times need a rule, and teiji uses one everywhere (windows, cron fires, reports):

- a local time that does not exist (the spring-forward gap, e.g. 02:30 on 2026-03-08 in
  America/New_York) means the first instant after the gap (03:00 EDT), so a window that should
  have started in the gap starts as soon as the clock allows;
- an ambiguous local time (the fall-back overlap, e.g. 01:30 on 2026-11-01 in New York) means
  its first occurrence (01:30 EDT), so it happens once and as early as it can.

pytz zones must never be attached with ``datetime(..., tzinfo=zone)``: that picks the zone's
first historical offset (Tokyo becomes +09:19 LMT). ``localize`` and ``to_local`` are the only
ways this code base turns wall-clock times into instants and back.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache

import pytz

__all__ = [
    "from_utc",
    "localize",
    "localize_utc",
    "require_aware",
    "steady_midnight",
    "time_text",
    "to_local",
    "zone",
]

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
# localize is pure and pytz's is slow; deciding asks for the same few wall-clock times (each
# window's start and end on each date) over and over, across schedules. Bounded: cleared when
# full.
_LOCALIZED: dict[tuple[pytz.BaseTzInfo, datetime], datetime] = {}
_MAX_LOCALIZED = 65536
# The same for the other direction and for instants wanted in UTC: a fleet's segment
# boundaries (09:00 in Tokyo on each date) recur across services, and pytz's fromutc and
# utcoffset cost microseconds each.
_LOCALIZED_UTC: dict[tuple[pytz.BaseTzInfo, datetime], datetime] = {}
_FROM_UTC: dict[tuple[tzinfo, datetime], datetime] = {}


@cache
def zone(name: str) -> pytz.BaseTzInfo:
    """The pytz zone called ``name`` (cached). Raises pytz.UnknownTimeZoneError if unknown."""
    return pytz.timezone(name)


# The dates teiji reads from people (``--at``, ``--until``, ``--from``/``--to``): far from the ends
# of Python's calendar, so a day or an offset added to any of them is still a date.
FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2999, 12, 31)


def in_range(at: datetime) -> bool:
    """True when ``at``'s own (local) date is from ``FIRST_DATE`` to ``LAST_DATE``."""
    return FIRST_DATE <= at.date() <= LAST_DATE


def range_text() -> str:
    return f"give a time from {FIRST_DATE} to {LAST_DATE}"


def require_aware(at: datetime, what: str = "instant") -> datetime:
    """Return ``at`` unchanged, or raise ValueError when it has no UTC offset."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(
            f"{what} {at.isoformat()} has no UTC offset; teiji needs an aware time such as "
            "2026-12-01T23:30:00+09:00"
        )
    return at


def localize(tz: pytz.BaseTzInfo, naive: datetime) -> datetime:
    """The instant at which the wall clock of ``tz`` shows ``naive``.

    Nonexistent local times (spring-forward gap) move to the first instant after the gap;
    ambiguous ones (fall-back overlap) take their first occurrence.
    """
    if naive.tzinfo is not None:
        raise ValueError(f"localize needs a wall-clock time without offset, got {naive!r}")
    key = (tz, naive)
    found = _LOCALIZED.get(key)
    if found is None:
        if len(_LOCALIZED) >= _MAX_LOCALIZED:
            _LOCALIZED.clear()
        found = _LOCALIZED[key] = _localize(tz, naive)
    return found


def localize_utc(tz: pytz.BaseTzInfo, naive: datetime) -> datetime:
    """``localize(tz, naive)`` expressed in UTC (cached, like ``localize``).

    On a local date with one UTC offset throughout (``_steady_offset``), every wall-clock
    time exists once, so the instant is the wall clock minus that offset; other dates (and
    anything unusual) go through ``localize``."""
    key = (tz, naive)
    found = _LOCALIZED_UTC.get(key)
    if found is None:
        if len(_LOCALIZED_UTC) >= _MAX_LOCALIZED:
            _LOCALIZED_UTC.clear()
        if naive.tzinfo is not None:
            raise ValueError(f"localize needs a wall-clock time without offset, got {naive!r}")
        offset = _steady_offset(tz, naive.date())
        if offset is None:
            found = localize(tz, naive).astimezone(UTC)
        else:
            found = (naive - offset).replace(tzinfo=UTC)
        _LOCALIZED_UTC[key] = found
    return found


def steady_midnight(tz: pytz.BaseTzInfo, day: date) -> datetime | None:
    """The UTC instant of ``day``'s local midnight when ``day`` has one UTC offset throughout
    (then any wall-clock time that day is that instant plus the time); else None (cached)."""
    key = (tz, day)
    if key in _MIDNIGHTS:
        return _MIDNIGHTS[key]
    if len(_MIDNIGHTS) >= _MAX_LOCALIZED:
        _MIDNIGHTS.clear()
    offset = _steady_offset(tz, day)
    found = None if offset is None else (datetime.combine(day, time()) - offset).replace(tzinfo=UTC)
    _MIDNIGHTS[key] = found
    return found


_MIDNIGHTS: dict[tuple[pytz.BaseTzInfo, date], datetime | None] = {}
# Every UTC offset in the tz database lies within this of UTC (the widest are -12 h and +14 h).
_OFFSET_REACH = timedelta(hours=15)
_STEADY: dict[tuple[pytz.BaseTzInfo, date], timedelta | None] = {}


def _steady_offset(tz: pytz.BaseTzInfo, day: date) -> timedelta | None:
    """The UTC offset of ``tz`` when no transition falls anywhere a wall-clock time on ``day``
    can be read (so each one has exactly one reading, wall clock minus that offset); None when
    one does, or for a zone that is neither fixed nor a table of transitions."""
    key = (tz, day)
    if key in _STEADY:
        return _STEADY[key]
    if len(_STEADY) >= _MAX_LOCALIZED:
        _STEADY.clear()
    offset: timedelta | None = None
    # pytz's tables for zones with transitions (what its own fromutc and localize read).
    transitions: list[datetime] | None = getattr(tz, "_utc_transition_times", None)
    info: list[tuple[timedelta, timedelta, str]] | None = getattr(tz, "_transition_info", None)
    if transitions is None or info is None:
        if isinstance(tz, pytz.tzinfo.StaticTzInfo) or tz is pytz.utc:
            offset = tz.utcoffset(None)
    else:
        # Any reading of a wall-clock time on ``day`` is an instant in [lo, hi]: with no
        # transition in that stretch, the offset at lo holds for all of it.
        midnight = datetime.combine(day, time())
        lo, hi = midnight - _OFFSET_REACH, midnight + _DAY + _OFFSET_REACH
        i = bisect_right(transitions, lo)
        if i == bisect_right(transitions, hi):
            offset = info[max(0, i - 1)][0]
    _STEADY[key] = offset
    return offset


def from_utc(at_utc: datetime, tz: tzinfo) -> datetime:
    """``to_local`` of an aware instant, cached: callers convert the same boundaries of many
    services. Instants in ``datetime.UTC`` are the cheap ones to look up (hashing an aware
    datetime asks its zone for the offset)."""
    key = (tz, at_utc)
    found = _FROM_UTC.get(key)
    if found is None:
        if len(_FROM_UTC) >= _MAX_LOCALIZED:
            _FROM_UTC.clear()
        found = _FROM_UTC[key] = at_utc.astimezone(tz)
    return found


def _localize(tz: pytz.BaseTzInfo, naive: datetime) -> datetime:
    try:
        return tz.localize(naive, is_dst=None)
    except pytz.AmbiguousTimeError:
        # Both readings exist; the earlier instant is the first occurrence. Asking pytz for both
        # (rather than trusting is_dst) also covers zones whose overlap is not a DST change.
        readings = (tz.localize(naive, is_dst=True), tz.localize(naive, is_dst=False))
        return min(readings, key=_utc)
    except pytz.NonExistentTimeError:
        return _first_instant_after_gap(tz, naive)


def to_local(at: datetime, tz: tzinfo) -> datetime:
    """The same instant as ``at``, expressed in ``tz`` (with the offset in force there then)."""
    require_aware(at)
    # astimezone goes through tz.fromutc, which for pytz zones picks the offset in force at
    # that instant: no normalize() needed (that is only for arithmetic on local times).
    return at.astimezone(tz)


def time_text(at: datetime, timezone: str | tzinfo | None = None) -> str:
    """An instant as people read it everywhere teiji prints one: ``Wed 2026-12-02 21:00 JST``.

    Local time in ``timezone`` (a zone or its IANA name) with the zone's abbreviation; without
    one, in the zone ``at`` carries when that is a named zone, else in UTC (an offset such as
    +09:00 names no zone, and ``UTC+09:00`` is no abbreviation). Weekdays are English
    whatever the locale. JSON output uses ISO 8601 (``datetime.isoformat``) instead.
    """
    require_aware(at)
    tz: tzinfo
    if isinstance(timezone, str):
        tz = zone(timezone)
    elif timezone is not None:
        tz = timezone
    elif at.tzinfo is not None and (
        isinstance(at.tzinfo, pytz.BaseTzInfo) or hasattr(at.tzinfo, "key")
    ):
        tz = at.tzinfo  # a pytz zone or a zoneinfo.ZoneInfo
    else:
        tz = pytz.utc
    local = to_local(at, tz)
    return f"{_WEEKDAYS[local.weekday()]} {local:%Y-%m-%d %H:%M} {local.tzname()}"


def _utc(at: datetime) -> datetime:
    return at.astimezone(pytz.utc)


def _wall(tz: pytz.BaseTzInfo, at_utc: datetime) -> datetime:
    return to_local(at_utc, tz).replace(tzinfo=None)


def _first_instant_after_gap(tz: pytz.BaseTzInfo, naive: datetime) -> datetime:
    """The transition instant that skips over ``naive`` (the gap's end).

    Read with the offset before the gap, ``naive`` lies at or after the transition; read with the
    offset after it, before. Between those two instants the wall clock shows earlier than
    ``naive`` until the transition and later from it on, so a binary search over whole seconds
    (transitions fall on whole seconds) finds it exactly.
    """
    readings = [_utc(tz.localize(naive, is_dst=flag)) for flag in (True, False)]
    before, after = min(readings).replace(microsecond=0), max(readings)
    if not (_wall(tz, before) < naive <= _wall(tz, after)):
        # Not the usual shape (a zone whose gap pytz reads oddly): UTC offsets lie within
        # -12 h..+14 h, so these two instants show a wall clock before and after ``naive``.
        as_utc = pytz.utc.localize(naive.replace(microsecond=0))
        before, after = as_utc - timedelta(hours=27), as_utc + timedelta(hours=27)
    low, high = 0, int((after - before) / _SECOND)
    # Invariant: wall(before + low s) < naive <= wall(before + high s).
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(tz, before + middle * _SECOND) < naive:
            low = middle
        else:
            high = middle
    return to_local(before + high * _SECOND, tz)
