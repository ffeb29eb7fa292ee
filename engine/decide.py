"""The decision rules: is a service running, stopped or unmanaged at an instant, and until when.

The rules, in order (``Decider.decide``):

1. ``mode: unmanaged``: teiji never touches the service; nothing else is consulted.
2. An active override (``start <= t < until``; no start means active until ``until``) decides.
   When several are active, the one with the latest ``start`` wins (no start counts as the
   earliest; then the latest ``created_at``, then the greatest id).
3. ``always_on`` is running and ``always_off`` stopped.
4. ``scheduled`` is running while a window occurrence or a cron pair says so, else stopped:

   - a window occurrence starts on each local date whose weekday is in ``days`` at ``start``
     and ends at ``end`` that day, or the next day when ``end <= start``; ``24:00`` is the next
     day's 00:00;
   - a cron pair is running at t when its latest ``start`` fire at or before t comes after its
     latest ``stop`` fire at or before t. Fires are ordered by the naive local wall-clock time
     they were scheduled at (which orders their instants too): where a DST gap moves a 02:30
     stop and a 03:00 start onto one instant, the stop comes first and the pair keeps running,
     as the window ``03:00-02:30`` does. A start and a stop scheduled at the same wall-clock
     time are a tie: stopped. Fires are looked for back to the previous one however far, up to
     ``CRON_LOOKBACK`` (a year and four days; ``schemas.validation`` refuses expressions that
     can go longer without firing, and ones that fire more than ``MAX_CRON_FIRES_PER_DAY``
     times a day); a start fire with no stop after it keeps the pair running for at most that
     long. Cron expressions are evaluated on naive local wall-clock times (``engine.cron``)
     and each fire is mapped to an instant with ``engine.localtime.localize``, as window times
     are, so a window and the cron pair that says the same hours decide the same at every
     instant;
   - a window occurrence or cron start fire whose start falls on a local date that is a holiday
     in any calendar listed in ``holidays`` is suppressed. An occurrence that began the evening
     before a holiday still runs to its end; a suppressed start fire is ignored (the latest
     unsuppressed start counts). Where a suppressed occurrence would have covered t, the source
     is ``holiday`` instead of ``default``;
   - wall-clock times that do not exist move to the first instant after the DST gap; ambiguous
     ones take their first occurrence (``engine.localtime``).

``next_change`` is the first instant in (t, t + lookahead] at which the state (not just the
source) changes, overrides included.

Why there is a cache, and why it cannot change an answer
--------------------------------------------------------
A tick decides thousands of services that share a few dozen distinct schedules, and croniter is
slow. So a ``Decider`` computes each schedule's *base timeline* (the decision without overrides)
once per *rule key* -- mode, timezone, windows, cron pairs and holiday calendars, never the
service name -- as a sorted list of pieces, each a stretch of constant state, source, reason and
holiday. A timeline covers whole UTC days from the day before the first instant asked about to
two days after ``t + lookahead`` (a decision first builds one day ahead, and the whole
look-ahead only when the state does not change within it); cron fires are enumerated over its
span plus the latest start fires before it that can still be running, found by walking back
over dates, so the look-back is complete at its first instant. Each piece also records the
next instant at which the base state changes. A decision is then a bisect into the timeline
plus that service's own overrides, and ``segments`` clips the same pieces.

The pieces of a timeline do not depend on the range it was built for (only the first and the
last piece are cut at its edges, and an answer is only ever read well inside it), so a warm
Decider answers exactly like a fresh one; ``tests/test_decide_properties.py`` checks both against
a direct per-instant evaluation. The calendars are fixed when the Decider is made: make a new
Decider when calendar documents change.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Final

import pytz

from engine.calendars import HolidayCalendars
from engine.cron import compiled
from engine.localtime import (
    from_utc,
    localize_utc,
    require_aware,
    steady_midnight,
    time_text,
    to_local,
    zone,
)
from engine.model import Decision, DecisionSource, DecisionState, Segment
from schemas.documents import Calendar, Override, Schedule, Window
from schemas.validation import MAX_CRON_SILENCE, cron_rule_problems

__all__ = ["CRON_LOOKBACK", "LOOKAHEAD", "Decider", "Meaning", "Run", "decide", "local_segments"]

LOOKAHEAD: Final = timedelta(days=14)
# Every expression teiji accepts fires at least once a year; a few days more cover DST shifts.
CRON_LOOKBACK: Final = MAX_CRON_SILENCE + timedelta(days=4)

_DAY: Final = timedelta(days=1)
_TICK: Final = timedelta(microseconds=1)  # the resolution of datetime
_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
# A decision first builds a timeline this far ahead, and the whole look-ahead only when the
# state does not change in it: most schedules change within a day or two.
_FIRST_REACH: Final = timedelta(days=1)
# A cached timeline grows to cover neighbouring requests up to this span, then starts afresh.
_MAX_TIMELINE_SPAN: Final = timedelta(days=120)
# Bounds on the caches, so a long-lived Decider cannot grow without limit.
_MAX_RULE_KEYS: Final = 4096
_MAX_SCHEDULES: Final = 65536

_UNMANAGED_REASON: Final = "mode unmanaged: teiji leaves this service alone"


# --------------------------------------------------------------------------------------------
# Rule keys: what a base timeline depends on


@dataclass(frozen=True, slots=True)
class _WindowRule:
    weekdays: frozenset[int]
    start: timedelta  # from the local midnight of the occurrence's date
    end: timedelta  # from the local midnight of the date it ends on (24:00 is a whole day)
    end_days: timedelta  # 0, or a day when it ends on the next date
    label: str
    inside: str  # the reason while it runs


@dataclass(frozen=True, slots=True)
class _CronRule:
    start: str
    stop: str
    label: str


# The plain-data identity of a schedule's rules: a cheap, hashable tuple.
_RuleKey = tuple[
    str, str, tuple[tuple[object, str, str], ...], tuple[tuple[str, str], ...], tuple[str, ...]
]


def _rule_key(schedule: Schedule) -> _RuleKey:
    return (
        schedule.mode,
        schedule.timezone,
        tuple(
            (w.days if isinstance(w.days, str) else tuple(w.days), w.start, w.end)
            for w in schedule.windows
        ),
        tuple((c.start, c.stop) for c in schedule.cron),
        tuple(schedule.holidays),
    )


class _Rules:
    """Everything a schedule's base timeline depends on (the service name is not part of it).

    One instance per rule key and Decider; it carries that key's cached base timeline.
    """

    __slots__ = ("cron", "holidays", "last", "mode", "timeline", "timezone", "tz", "windows")

    def __init__(self, schedule: Schedule) -> None:
        self.mode = schedule.mode
        self.timezone = schedule.timezone
        self.tz = zone(schedule.timezone)
        self.windows = tuple(_window_rule(w) for w in schedule.windows)
        self.cron = tuple(
            _CronRule(c.start, c.stop, f"cron pair start '{c.start}' stop '{c.stop}'")
            for c in schedule.cron
        )
        self.holidays = tuple(schedule.holidays)
        self.timeline: _Timeline | None = None
        # The last override-free decision and its instant: a tick decides every service that
        # shares these rules at the same instant, and the answer is the same (immutable) value.
        self.last: tuple[datetime, Decision] | None = None


def _window_rule(window: Window) -> _WindowRule:
    days = window.days if isinstance(window.days, str) else ",".join(window.days)
    label = f"window {days} {window.start}-{window.end}"
    return _WindowRule(
        weekdays=window.weekdays,
        start=timedelta(minutes=window.start_minute),
        end=timedelta(minutes=window.end_minute),
        end_days=_DAY if window.end_minute <= window.start_minute else timedelta(0),
        label=label,
        inside=f"inside {label}",
    )


# --------------------------------------------------------------------------------------------
# Base timelines


# Not frozen: a frozen dataclass is several times slower to make, and timelines make many.
@dataclass(slots=True)
class _Piece:
    """A stretch [start, end) of constant base decision. Instants are in UTC."""

    start: datetime
    end: datetime
    state: DecisionState
    source: DecisionSource
    reason: str
    holiday: str | None = None

    def same_decision(self, other: _Piece) -> bool:
        return (self.state, self.source, self.reason, self.holiday) == (
            other.state,
            other.source,
            other.reason,
            other.holiday,
        )


class _Timeline:
    """A schedule's base decision over [lo, hi), as contiguous pieces."""

    __slots__ = ("_local", "changes", "hi", "lo", "next_change", "pieces", "starts", "tz")

    def __init__(self, pieces: list[_Piece], tz: pytz.BaseTzInfo) -> None:
        self.pieces = pieces
        self.tz = tz
        self.lo = pieces[0].start
        self.hi = pieces[-1].end
        self.starts = [piece.start for piece in pieces]
        # Instants at which the base state changes, and per piece the first one after it.
        self.changes = [
            piece.start for prev, piece in pairwise(pieces) if piece.state != prev.state
        ]
        self.next_change: list[datetime | None] = [None] * len(pieces)
        upcoming: datetime | None = None
        for i in range(len(pieces) - 1, 0, -1):
            if pieces[i].state != pieces[i - 1].state:
                upcoming = pieces[i].start
            self.next_change[i - 1] = upcoming
        # Next changes in local time, converted when first asked for (a tick asks for one).
        self._local: dict[datetime, datetime] = {}

    def local(self, at: datetime) -> datetime:
        found = self._local.get(at)
        if found is None:
            found = self._local[at] = at.astimezone(self.tz)  # at is aware (UTC)
        return found

    def covers(self, lo: datetime, hi: datetime) -> bool:
        return self.lo <= lo and hi < self.hi

    def index(self, at: datetime) -> int:
        """The piece containing ``at`` (which must lie in [lo, hi))."""
        return bisect_right(self.starts, at) - 1

    def state_at(self, at: datetime) -> DecisionState:
        return self.pieces[self.index(at)].state


@dataclass(slots=True)  # not frozen, like _Piece: made once per occurrence
class _Span:
    """One window occurrence or cron run, before overlaps are resolved. Instants in UTC."""

    start: datetime
    end: datetime
    rank: int  # position among the schedule's windows, then cron pairs: earlier ranks name it
    source: DecisionSource  # "window" or "cron" when it runs, "holiday" when suppressed
    reason: str
    holiday: str | None


# What a segment says: state, source, reason, override id, holiday.
Meaning = tuple[DecisionState, DecisionSource, str, str | None, str | None]
# A segment before it is put in local time: [start, end) in UTC and what it says.
Run = tuple[datetime, datetime, Meaning]


def local_segments(runs: Sequence[Run], tz: pytz.BaseTzInfo) -> list[Segment]:
    """Runs as Segments in ``tz``; each boundary is converted once (it ends one, starts the
    next), through ``engine.localtime.from_utc``'s cache."""
    segments: list[Segment] = []
    if not runs:
        return segments
    start_local = from_utc(runs[0][0], tz)
    start_utc = runs[0][0]
    for a, b, (state, source, reason, override_id, holiday) in runs:
        if a != start_utc:
            start_local = from_utc(a, tz)
        end_local = from_utc(b, tz)
        segments.append(
            Segment(start_local, end_local, state, source, reason, override_id, holiday)
        )
        start_utc, start_local = b, end_local
    return segments


# Cron fires by (expression, timezone, lo, hi): schedules with different rule keys often share
# a cron expression. Each fire is (UTC instant, naive local wall-clock time it was scheduled at).
_Fire = tuple[datetime, datetime]
_FireCache = dict[tuple[str, str, datetime, datetime], list[_Fire]]


def _build_timeline(
    rules: _Rules, lo: datetime, hi: datetime, calendars: HolidayCalendars, fires: _FireCache
) -> _Timeline:
    tz = rules.tz
    if rules.mode == "always_on":
        pieces = [_Piece(lo, hi, "running", "mode", "mode always_on")]
    elif rules.mode == "always_off":
        pieces = [_Piece(lo, hi, "stopped", "mode", "mode always_off")]
    else:
        spans = _window_spans(rules, tz, lo, hi, calendars)
        spans += _cron_spans(rules, tz, lo, hi, calendars, fires)
        pieces = _resolve(spans, lo, hi, _default_reason(rules))
    return _Timeline(pieces, tz)


def _default_reason(rules: _Rules) -> str:
    if rules.windows and rules.cron:
        return "outside every window, and no cron pair is running"
    if rules.windows:
        return "outside every window"
    return "no cron pair is running"


def _window_spans(
    rules: _Rules, tz: pytz.BaseTzInfo, lo: datetime, hi: datetime, calendars: HolidayCalendars
) -> list[_Span]:
    spans: list[_Span] = []
    # An occurrence lasts less than a day (25 h at most across a DST change), so occurrences
    # starting two local dates before ``lo`` are the earliest that can still reach it.
    first = to_local(lo, tz).date() - 2 * _DAY
    last = to_local(hi, tz).date()
    # Occurrences end on their date or the next: the midnights of first..last + 1.
    midnights = {day: steady_midnight(tz, day) for day in _dates(first, last + _DAY)}
    for day in _dates(first, last):
        weekday = day.weekday()
        holiday: str | None = None
        looked_up = False
        for rank, window in enumerate(rules.windows):
            if weekday not in window.weekdays:
                continue
            start = _wall_instant(tz, midnights, day, window.start)
            end = _wall_instant(tz, midnights, day + window.end_days, window.end)
            if end <= lo or start >= hi or end <= start:
                continue  # outside the range, or swallowed whole by a DST gap
            if rules.holidays and not looked_up:
                holiday, looked_up = calendars.lookup(rules.holidays, day), True
            if holiday is None:
                spans.append(_Span(start, end, rank, "window", window.inside, None))
            else:
                reason = f"{holiday}: {window.label} does not start on holidays"
                spans.append(_Span(start, end, rank, "holiday", reason, holiday))
    return spans


def _wall_instant(
    tz: pytz.BaseTzInfo,
    midnights: Mapping[date, datetime | None],
    day: date,
    since_midnight: timedelta,
) -> datetime:
    """The UTC instant at which the wall clock of ``tz`` shows ``day`` + ``since_midnight``
    (24:00 is the next day's 00:00), as ``localize`` says."""
    if since_midnight >= _DAY:
        day, since_midnight = day + _DAY, since_midnight - _DAY
    midnight = midnights.get(day)
    if midnight is not None:
        return midnight + since_midnight  # one offset all day: plain arithmetic
    return localize_utc(tz, datetime.combine(day, time()) + since_midnight)


def _dates(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += _DAY


def _cron_spans(
    rules: _Rules,
    tz: pytz.BaseTzInfo,
    lo: datetime,
    hi: datetime,
    calendars: HolidayCalendars,
    cache: _FireCache,
) -> list[_Span]:
    spans: list[_Span] = []
    rank0 = len(rules.windows)
    wall_lo, wall_hi = _wall_range(tz, lo, hi)

    def holiday_of(wall: datetime) -> str | None:
        return calendars.lookup(rules.holidays, wall.date()) if rules.holidays else None

    for offset, pair in enumerate(rules.cron):
        stops = _cached_fires(cache, pair.stop, rules.timezone, wall_lo, wall_hi)
        stop_walls = [wall for _, wall in stops]
        before = _earlier_starts(pair, wall_lo, holiday_of)
        starts = [(localize_utc(tz, wall), wall) for wall in before]
        starts += _cached_fires(cache, pair.start, rules.timezone, wall_lo, wall_hi)
        for start, wall in starts:
            # Running from the fire until the first stop fire scheduled at or after it, in
            # wall-clock order (a stop scheduled at the same time is a tie: stopped), for at
            # most the look-back. Ordering by wall clock matters where a DST gap moves fires
            # onto one instant: a stop scheduled at 02:30 ends the run before a 03:00 start.
            end = start + CRON_LOOKBACK
            k = bisect_left(stop_walls, wall)
            if k < len(stops) and stops[k][0] < end:
                end = stops[k][0]
            if end <= lo or end <= start or start >= hi:
                continue
            holiday = holiday_of(wall)
            if holiday is None:
                reason = f"{pair.label} started it and has not stopped it"
                spans.append(_Span(start, end, rank0 + offset, "cron", reason, None))
            else:
                reason = f"{holiday}: {pair.label} does not start on holidays"
                spans.append(_Span(start, end, rank0 + offset, "holiday", reason, holiday))
    return spans


def _wall_range(tz: pytz.BaseTzInfo, lo: datetime, hi: datetime) -> tuple[datetime, datetime]:
    """Naive wall-clock times whose fires can fall in [lo, hi], with a day to spare."""
    return (
        to_local(lo, tz).replace(tzinfo=None) - _DAY,
        to_local(hi, tz).replace(tzinfo=None) + _DAY,
    )


def _earlier_starts(
    pair: _CronRule,
    wall_lo: datetime,
    holiday_of: Callable[[datetime], str | None],
) -> list[datetime]:
    """The start fires before ``wall_lo`` that can still be running at it, oldest first.

    Only starts after the latest stop before ``wall_lo`` can be, and among those the latest
    (which names a holiday when it is suppressed) and the latest that is not suppressed (which
    keeps the pair running). However rare the expressions, this looks back at most
    ``CRON_LOOKBACK``: one walk back over dates, not an enumeration of every fire.
    """
    start_cron, stop_cron = compiled(pair.start), compiled(pair.stop)
    window = CRON_LOOKBACK + _DAY
    last_stop = stop_cron.previous(wall_lo, window)
    floor = wall_lo - window if last_stop is None else last_stop
    found: list[datetime] = []
    fire = start_cron.previous(wall_lo, wall_lo - floor)
    while fire is not None and fire > floor:
        found.append(fire)
        if holiday_of(fire) is None:
            break
        # The whole local date is a holiday: look before it.
        day_start = datetime.combine(fire.date(), time())
        fire = start_cron.previous(day_start, day_start - floor) if day_start > floor else None
    if len(found) > 2:
        found = [found[0], found[-1]]
    # The stops from wall_lo on, which end these runs, are among the pair's enumerated fires.
    return found[::-1]


def _cached_fires(
    cache: _FireCache, expression: str, timezone: str, wall_lo: datetime, wall_hi: datetime
) -> list[_Fire]:
    key = (expression, timezone, wall_lo, wall_hi)
    fires = cache.get(key)
    if fires is None:
        if len(cache) >= _MAX_RULE_KEYS:
            cache.clear()
        fires = cache[key] = _fires(expression, zone(timezone), wall_lo, wall_hi)
    return fires


def _fires(
    expression: str, tz: pytz.BaseTzInfo, wall_lo: datetime, wall_hi: datetime
) -> list[_Fire]:
    """Fires of ``expression`` scheduled in [wall_lo, wall_hi] as (UTC instant, wall clock).

    A wall-clock time in a DST gap fires at the first instant after the gap, an ambiguous one
    once, at its first occurrence (``engine.localtime.localize``), so instants never decrease.
    """
    return [(localize_utc(tz, wall), wall) for wall in compiled(expression).walls(wall_lo, wall_hi)]


def _resolve(spans: list[_Span], lo: datetime, hi: datetime, default_reason: str) -> list[_Piece]:
    """Turn overlapping spans into contiguous pieces covering [lo, hi).

    Running spans win over suppressed ones; among running spans the first window (then cron
    pair) in document order names the reason; among suppressed ones the latest to start.
    """
    spans = sorted(spans, key=lambda s: s.start)
    if all(a.end <= b.start for a, b in pairwise(spans)):
        return _resolve_apart(spans, lo, hi, default_reason)
    points = sorted({lo, hi} | {p for s in spans for p in (s.start, s.end) if lo < p < hi})
    pieces: list[_Piece] = []
    active: list[_Span] = []
    j = 0
    for a, b in pairwise(points):
        while j < len(spans) and spans[j].start <= a:
            active.append(spans[j])
            j += 1
        active = [s for s in active if s.end > a]
        piece = _piece_for(active, a, b, default_reason)
        if pieces and pieces[-1].same_decision(piece):
            last = pieces.pop()
            piece = _Piece(last.start, b, piece.state, piece.source, piece.reason, piece.holiday)
        pieces.append(piece)
    return pieces


def _resolve_apart(
    spans: list[_Span], lo: datetime, hi: datetime, default_reason: str
) -> list[_Piece]:
    """``_resolve`` for spans sorted by start that do not overlap (the usual case): each
    stretch is one span or none, so no stretch needs the spans active in it worked out.

    Only a span can say what the piece before it says (a span right after another with the
    same meaning), so that is the only merge; the pieces are made here and extended in place.
    """
    pieces: list[_Piece] = []
    last: _Piece | None = None
    cursor = lo
    for span in spans:
        a = span.start if span.start > lo else lo
        b = span.end if span.end < hi else hi
        if b <= a:
            continue
        if a > cursor:
            last = _Piece(cursor, a, "stopped", "default", default_reason)
            pieces.append(last)
        if span.source == "holiday":
            state: DecisionState = "stopped"
            holiday = span.holiday
        else:
            state, holiday = "running", None
        if (
            last is not None
            and last.source == span.source
            and last.state == state
            and last.reason == span.reason
            and last.holiday == holiday
        ):
            last.end = b
        else:
            last = _Piece(a, b, state, span.source, span.reason, holiday)
            pieces.append(last)
        cursor = b
    if cursor < hi:
        pieces.append(_Piece(cursor, hi, "stopped", "default", default_reason))
    return pieces


def _piece_for(active: list[_Span], a: datetime, b: datetime, default_reason: str) -> _Piece:
    running = [s for s in active if s.source != "holiday"]
    if running:
        span = min(running, key=lambda s: s.rank)
        return _Piece(a, b, "running", span.source, span.reason)
    if active:
        span = max(active, key=lambda s: (s.start, -s.rank))
        return _Piece(a, b, "stopped", "holiday", span.reason, span.holiday)
    return _Piece(a, b, "stopped", "default", default_reason)


def _utc_day(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


# --------------------------------------------------------------------------------------------
# Overrides


class _Own:
    """One of the service's overrides, with its instants in UTC (fast to compare)."""

    __slots__ = ("override", "precedence", "start", "until")

    def __init__(self, override: Override) -> None:
        self.override = override
        self.start = None if override.start is None else override.start.astimezone(UTC)
        self.until = override.until.astimezone(UTC)
        created = override.created_at
        # Latest start wins; no start counts as the earliest. Then creation time, then id.
        self.precedence = (
            self.start or _EARLIEST,
            _EARLIEST if created is None else created.astimezone(UTC),
            override.id or "",
        )

    def active_at(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and at < self.until


def _own_overrides(
    schedule: Schedule, overrides: Sequence[Override], not_before: datetime
) -> list[_Own]:
    """The schedule's own overrides that have not ended by ``not_before``."""
    if not overrides:
        return []
    key = schedule.key
    own = [_Own(o) for o in overrides if o.key == key]
    return [o for o in own if o.until > not_before]


def _winning_override(overrides: Sequence[_Own], at: datetime) -> _Own | None:
    active = [o for o in overrides if o.active_at(at)]
    if not active:
        return None
    return active[0] if len(active) == 1 else max(active, key=lambda o: o.precedence)


def _override_reason(own: _Own, tz: pytz.BaseTzInfo) -> str:
    override = own.override
    name = f" {override.id}" if override.id else ""
    author = f" by {override.created_by}" if override.created_by else ""
    until = time_text(own.until, tz)
    return f"override{name}{author} keeps it {override.state} until {until}: {override.reason}"


def _override_boundaries(overrides: Sequence[_Own], lo: datetime, hi: datetime) -> set[datetime]:
    """Override starts and ends in the open interval (lo, hi)."""
    points = {o.until for o in overrides} | {o.start for o in overrides if o.start is not None}
    return {p for p in points if lo < p < hi}


# --------------------------------------------------------------------------------------------
# The Decider


class Decider:
    """Decides schedules at instants; caches base timelines per rule key (see module docs)."""

    def __init__(
        self,
        calendars: Mapping[str, Calendar] | None = None,
        *,
        lookahead: timedelta = LOOKAHEAD,
    ) -> None:
        if lookahead <= timedelta(0):
            raise ValueError(f"lookahead must be positive, got {lookahead}")
        self._calendars = HolidayCalendars(calendars or {})
        self._calendar_documents = _calendar_contents(calendars or {})
        self._lookahead = lookahead
        self._rules_by_key: dict[_RuleKey, _Rules] = {}
        # Rules by schedule object: the entry keeps the schedule alive, so its id is not reused
        # while the entry exists.
        self._rules_by_schedule: dict[int, tuple[Schedule, _Rules]] = {}
        self._fires: _FireCache = {}
        self._local_at: dict[str, tuple[datetime, datetime]] = {}

    def calendars_are(self, calendars: Mapping[str, Calendar]) -> bool:
        """True when ``calendars`` say what the ones this Decider was made with say."""
        return self._calendar_documents == _calendar_contents(calendars)

    def release_schedules(self) -> None:
        """Forget the schedule objects seen so far (the index by object keeps them alive);
        the timelines per rule key stay. For a Decider kept from one tick to the next, whose
        documents are new objects each tick."""
        self._rules_by_schedule.clear()

    def decide(
        self, schedule: Schedule, at: datetime, overrides: Sequence[Override] = ()
    ) -> Decision:
        """The decision for ``schedule`` at the aware instant ``at``, with its own overrides.

        Overrides for other services (another ``key``) are ignored. ``at`` and ``next_change``
        of the result are expressed in the schedule's timezone.
        """
        require_aware(at, "at")
        rules = self._rules(schedule)
        tz = rules.tz
        local_at = self._to_local_at(at, rules)
        if rules.mode == "unmanaged":
            return Decision("unmanaged", "mode", _UNMANAGED_REASON, local_at, None)
        t = at.astimezone(UTC)
        own = _own_overrides(schedule, overrides, t)
        if not own and rules.last is not None and rules.last[0] == t:
            return rules.last[1]
        horizon = t + self._lookahead
        timeline = self._timeline(rules, t, min(horizon, t + _FIRST_REACH), schedule)
        if not own and timeline.next_change[timeline.index(t)] is None:
            # No change in the short stretch built first: the look-ahead needs all of it.
            timeline = self._timeline(rules, t, horizon, schedule)
        elif own:
            timeline = self._timeline(rules, t, horizon, schedule)
        if not own:
            i = timeline.index(t)
            piece = timeline.pieces[i]
            change = timeline.next_change[i]
            next_local = timeline.local(change) if change and change <= horizon else None
            decision = Decision(
                piece.state, piece.source, piece.reason, local_at, next_local, holiday=piece.holiday
            )
            rules.last = (t, decision)
            return decision
        next_change = _next_change_with_overrides(timeline, own, t, horizon)
        next_local = None if next_change is None else next_change.astimezone(tz)
        winner = _winning_override(own, t)
        if winner is not None:
            return Decision(
                winner.override.state,
                "override",
                _override_reason(winner, tz),
                local_at,
                next_local,
                override_id=winner.override.id,
                override_by=winner.override.created_by,
            )
        piece = timeline.pieces[timeline.index(t)]
        return Decision(
            piece.state, piece.source, piece.reason, local_at, next_local, holiday=piece.holiday
        )

    def segments(
        self,
        schedule: Schedule,
        start: datetime,
        end: datetime,
        overrides: Sequence[Override] = (),
    ) -> list[Segment]:
        """Contiguous segments covering exactly [start, end), in the schedule's timezone.

        Adjacent segments are merged when state, source, reason, override id and holiday are
        all equal.
        """
        runs = self.runs(schedule, start, end, overrides)
        return local_segments(runs, self._rules(schedule).tz)

    def runs(
        self,
        schedule: Schedule,
        start: datetime,
        end: datetime,
        overrides: Sequence[Override] = (),
    ) -> list[Run]:
        """``segments`` as ``Run`` tuples in UTC: cheaper for callers that compute with them
        (``simulate``) before turning them into Segments with ``local_segments``."""
        require_aware(start, "start")
        require_aware(end, "end")
        if end < start:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        rules = self._rules(schedule)
        tz = rules.tz
        lo, hi = start.astimezone(UTC), end.astimezone(UTC)
        if lo == hi:
            return []
        if rules.mode == "unmanaged":
            return [(lo, hi, ("unmanaged", "mode", _UNMANAGED_REASON, None, None))]
        timeline = self._timeline(rules, lo, hi, schedule)
        own = _own_overrides(schedule, overrides, lo)
        first = timeline.index(lo)
        if not own:
            return _clipped(timeline, first, lo, hi)
        points = sorted(
            {lo, hi}
            | {s for s in timeline.starts[first + 1 :] if s < hi}
            | _override_boundaries(own, lo, hi)
        )
        runs: list[Run] = []
        reasons: dict[int, str] = {}
        index = first
        for a, b in pairwise(points):
            winner = _winning_override(own, a) if own else None
            if winner is not None:
                reason = reasons.get(id(winner))
                if reason is None:
                    reason = reasons[id(winner)] = _override_reason(winner, tz)
                override = winner.override
                meaning: Meaning = (override.state, "override", reason, override.id, None)
            else:
                # Points only grow, so the piece is this one or a later one.
                while index + 1 < len(timeline.starts) and timeline.starts[index + 1] <= a:
                    index += 1
                piece = timeline.pieces[index]
                meaning = (piece.state, piece.source, piece.reason, None, piece.holiday)
            if runs and runs[-1][2] == meaning:
                runs[-1] = (runs[-1][0], b, meaning)
            else:
                runs.append((a, b, meaning))
        return runs

    # ----------------------------------------------------------------------------------------

    def _rules(self, schedule: Schedule) -> _Rules:
        entry = self._rules_by_schedule.get(id(schedule))
        if entry is not None and entry[0] is schedule:
            return entry[1]
        key = _rule_key(schedule)
        rules = self._rules_by_key.get(key)
        if rules is None:
            _refuse_costly_rules(schedule)
            if len(self._rules_by_key) >= _MAX_RULE_KEYS:
                self._rules_by_key.clear()
                self._rules_by_schedule.clear()
            rules = self._rules_by_key[key] = _Rules(schedule)
        if len(self._rules_by_schedule) >= _MAX_SCHEDULES:
            self._rules_by_schedule.clear()
        self._rules_by_schedule[id(schedule)] = (schedule, rules)
        return rules

    def _to_local_at(self, at: datetime, rules: _Rules) -> datetime:
        # A tick decides every service at one instant: convert it once per timezone.
        cached = self._local_at.get(rules.timezone)
        if cached is not None and cached[0] == at:
            return cached[1]
        local = to_local(at, rules.tz)
        self._local_at[rules.timezone] = (at, local)
        return local

    def _timeline(self, rules: _Rules, lo: datetime, hi: datetime, schedule: Schedule) -> _Timeline:
        """A base timeline covering [lo, hi] (built, or extended, on a miss)."""
        cached = rules.timeline
        if cached is not None and cached.covers(lo, hi):
            return cached
        if rules.mode == "scheduled":
            self._check_calendars(rules, schedule)
        build_lo, build_hi = _utc_day(lo) - _DAY, _utc_day(hi) + 2 * _DAY
        if (
            cached is not None
            and build_lo <= cached.hi
            and cached.lo <= build_hi
            and max(build_hi, cached.hi) - min(build_lo, cached.lo) <= _MAX_TIMELINE_SPAN
        ):
            build_lo, build_hi = min(build_lo, cached.lo), max(build_hi, cached.hi)
        rules.timeline = _build_timeline(rules, build_lo, build_hi, self._calendars, self._fires)
        return rules.timeline

    def _check_calendars(self, rules: _Rules, schedule: Schedule) -> None:
        for name in rules.holidays:
            if not self._calendars.known(name):
                raise ValueError(
                    f"schedule {schedule.service}: holidays lists unknown calendar {name!r}; "
                    "use a country code the holidays library knows (such as JP or US-NY) or "
                    "the name of a calendar document"
                )


def _clipped(timeline: _Timeline, first: int, lo: datetime, hi: datetime) -> list[Run]:
    """The base timeline's pieces from index ``first`` (the one holding ``lo``) cut to
    [lo, hi): without overrides, the runs are the pieces themselves (neighbouring pieces never
    say the same thing: ``_resolve`` merges them)."""
    runs: list[Run] = []
    pieces = timeline.pieces
    for i in range(first, len(pieces)):
        piece = pieces[i]
        if piece.start >= hi:
            break
        meaning: Meaning = (piece.state, piece.source, piece.reason, None, piece.holiday)
        a = piece.start if piece.start > lo else lo
        b = piece.end if piece.end < hi else hi
        runs.append((a, b, meaning))
    return runs


def _calendar_contents(calendars: Mapping[str, Calendar]) -> dict[str, object]:
    return {name: calendar.model_dump() for name, calendar in calendars.items()}


def _refuse_costly_rules(schedule: Schedule) -> None:
    """Deciding walks every fire of a cron pair: refuse, before any work, the rules validation
    refuses (documents made without validating them reach here too)."""
    problems = cron_rule_problems(schedule)
    if problems:
        path, message = problems[0]
        raise ValueError(f"schedule {schedule.service}: {path}: {message}")


def _next_change_with_overrides(
    timeline: _Timeline, overrides: Sequence[_Own], t: datetime, horizon: datetime
) -> datetime | None:
    """The first instant in (t, horizon] where the effective state differs from that at t.

    The effective state can only change where the base state changes or an override starts or
    ends, so those instants are the only candidates.
    """

    def state_at(at: datetime) -> DecisionState:
        winner = _winning_override(overrides, at)
        return winner.override.state if winner is not None else timeline.state_at(at)

    now = state_at(t)
    base = timeline.changes[
        bisect_right(timeline.changes, t) : bisect_right(timeline.changes, horizon)
    ]
    for candidate in sorted(set(base) | _override_boundaries(overrides, t, horizon + _TICK)):
        if state_at(candidate) != now:
            return candidate
    return None


def decide(
    schedule: Schedule,
    at: datetime,
    *,
    calendars: Mapping[str, Calendar] | None = None,
    overrides: Sequence[Override] = (),
) -> Decision:
    """Decide one schedule at one instant. Callers deciding many services should keep a
    ``Decider``, which reuses work across schedules that share rules."""
    return Decider(calendars).decide(schedule, at, overrides)
