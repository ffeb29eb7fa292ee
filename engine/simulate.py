"""What the schedules will do over a date range, and what that saves (pure).

The Decider says when each decision changes; the tick, which runs every 15 minutes on the
quarter hour, acts on a change at the first tick at or after it. ``apply_tick_delay`` moves
every boundary to that tick, and the hours, shares and costs are counted from the delayed
segments, so the figures describe what will really happen, not what the documents say.

Nothing here samples time: the work per service is proportional to its number of changes,
and services whose segments are identical (the same schedule shape) share the counting.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

import pytz

from engine.calendars import HolidayCalendars
from engine.decide import Decider, Run, local_segments
from engine.localtime import zone
from engine.model import DecisionState, Segment
from engine.pricing import DEFAULT_REGION, DEFAULT_TASK_SIZE, Prices, TaskSize
from schemas.documents import origin_words

if TYPE_CHECKING:
    from schemas.documents import Override, Schedule
    from schemas.validation import DocumentSet

TICK = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATES: tuple[DecisionState, ...] = ("running", "stopped", "unmanaged")
# What Schedule.origin_detail says of a schedule written out in its own document.
OWN_DOCUMENT: Mapping[str, object] = {"from": "document", "profile": None}


# Tick arithmetic -------------------------------------------------------------------------------
def tick_at_or_after(instant: datetime, tick: timedelta = TICK) -> datetime:
    """The first tick at or after ``instant``; ticks are aligned to multiples of ``tick`` in UTC.

    Every real UTC offset is a whole number of quarter hours, so a UTC quarter hour is a local
    quarter hour too: 05:07 becomes 05:15, 05:00 stays 05:00.
    """
    remainder = (instant - _EPOCH) % tick
    if not remainder:
        return instant
    return (instant + (tick - remainder)).astimezone(UTC)


def apply_tick_delay(segments: Sequence[Segment], tick: timedelta = TICK) -> list[Segment]:
    """The segments as the tick acts on them: each boundary moved to the tick at or after it.

    The first start and last end stay (they are the range, not a change). A segment shorter
    than the gap to the next tick disappears, because no tick ever sees it; neighbours that
    then say the same thing merge into one.
    """
    if not segments:
        return []
    range_end = segments[-1].end
    delayed: list[Segment] = []
    start = segments[0].start
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        end = range_end if last else min(tick_at_or_after(segment.end, tick), range_end)
        if end > start:
            if delayed and delayed[-1].same_meaning(segment):
                delayed[-1] = _with_span(delayed[-1], delayed[-1].start, end)
            else:
                delayed.append(_with_span(segment, start, end))
            start = end
    return delayed


def _with_span(segment: Segment, start: datetime, end: datetime) -> Segment:
    # dataclasses.replace is several times slower, and simulate makes one per segment.
    return Segment(
        start,
        end,
        segment.state,
        segment.source,
        segment.reason,
        segment.override_id,
        segment.holiday,
    )


# One service -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Counted:
    """What identical segment lists share: the delayed segments and minutes per state."""

    segments: tuple[Segment, ...]
    minutes: Mapping[DecisionState, int]


def _count_runs(
    runs: Sequence[Run],
    tz: pytz.BaseTzInfo,
    tick: timedelta,
    ticks: dict[datetime, datetime] | None = None,
) -> _Counted:
    """``_count`` of ``local_segments(runs, tz)``, with the tick delay applied to the UTC runs
    (the same boundaries and merges as ``apply_tick_delay``, without making a Segment twice).

    ``ticks`` remembers ``tick_at_or_after`` per instant across calls: a fleet's services
    change at the same few instants."""
    if not runs:
        return _Counted((), dict.fromkeys(_STATES, 0))
    if ticks is None:
        ticks = {}
    range_end = runs[-1][1]
    delayed: list[Run] = []
    start = runs[0][0]
    last = len(runs) - 1
    for index, (_, end, meaning) in enumerate(runs):
        if index == last:
            moved = range_end
        else:
            known = ticks.get(end)
            if known is None:
                known = ticks[end] = tick_at_or_after(end, tick)
            moved = known if known < range_end else range_end
        if moved > start:
            if delayed and delayed[-1][2] == meaning:
                delayed[-1] = (delayed[-1][0], moved, meaning)
            else:
                delayed.append((start, moved, meaning))
            start = moved
    seconds: dict[DecisionState, float] = dict.fromkeys(_STATES, 0.0)
    for a, b, meaning in delayed:
        seconds[meaning[0]] += (b - a).total_seconds()
    minutes = {state: int(value // 60) for state, value in seconds.items()}
    return _Counted(tuple(local_segments(delayed, tz)), minutes)


def _count(segments: Sequence[Segment], tick: timedelta) -> _Counted:
    delayed = apply_tick_delay(segments, tick)
    seconds: dict[DecisionState, float] = dict.fromkeys(_STATES, 0.0)
    for segment in delayed:
        seconds[segment.state] += (segment.end - segment.start).total_seconds()
    minutes = {state: int(value // 60) for state, value in seconds.items()}
    return _Counted(tuple(delayed), minutes)


@dataclass(frozen=True, slots=True)
class ServiceSimulation:
    """One service over the range: hours per state, share off, and cost with and without teiji.

    Unmanaged time (teiji leaves the service alone) counts as running: that is what it costs.
    """

    service: str  # the service key: cluster/service, scoped by @account/region when set
    timezone: str
    region: str
    start: datetime
    end: datetime
    running_minutes: int
    stopped_minutes: int
    unmanaged_minutes: int
    tasks_running: int
    tasks_stopped: int
    size: TaskSize
    prices: Prices
    segments: tuple[Segment, ...] = field(repr=False)  # after the tick delay, for the timeline
    # Local date -> holiday name, for every holiday of the schedule's calendars in the range.
    holidays: Mapping[date, str] = field(default_factory=dict, repr=False)
    # The schedule's holiday calendar names, in its order (to name holidays in other languages).
    calendars: tuple[str, ...] = ()
    # Where the schedule came from (Schedule.origin_detail): its own document, or the profile
    # that decided, named by a document or by the service's tag, and the fields it set itself.
    origin: Mapping[str, object] = field(default_factory=lambda: dict(OWN_DOCUMENT), repr=False)
    # The same in words for people (Schedule.origin_text).
    origin_text: str = "its own document"

    @property
    def total_minutes(self) -> int:
        return self.running_minutes + self.stopped_minutes + self.unmanaged_minutes

    @property
    def running_hours(self) -> float:
        """Hours running, unmanaged included (teiji does not stop it then)."""
        return (self.running_minutes + self.unmanaged_minutes) / 60

    @property
    def stopped_hours(self) -> float:
        return self.stopped_minutes / 60

    @property
    def total_hours(self) -> float:
        return self.total_minutes / 60

    @property
    def share_off(self) -> float:
        """Fraction of the range spent stopped, 0 to 1."""
        return self.stopped_minutes / self.total_minutes if self.total_minutes else 0.0

    @property
    def task_hour(self) -> float:
        return self.prices.task_hour(self.size)

    @property
    def cost_without(self) -> float:
        """The same tasks running for the whole range."""
        return self.task_hour * self.tasks_running * self.total_minutes / 60

    @property
    def cost_with(self) -> float:
        task_minutes = (
            self.running_minutes + self.unmanaged_minutes
        ) * self.tasks_running + self.stopped_minutes * self.tasks_stopped
        return self.task_hour * task_minutes / 60

    @property
    def saved(self) -> float:
        return self.cost_without - self.cost_with

    @property
    def saved_share(self) -> float:
        """Savings as a fraction of the cost without teiji, 0 to 1 (0 when that cost is 0)."""
        return self.saved / self.cost_without if self.cost_without else 0.0

    def as_json(self, *, with_segments: bool = True) -> dict[str, object]:
        data: dict[str, object] = {
            "service": self.service,
            "timezone": self.timezone,
            "region": self.region,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "running_hours": round(self.running_hours, 4),
            "stopped_hours": round(self.stopped_hours, 4),
            "unmanaged_hours": round(self.unmanaged_minutes / 60, 4),
            "total_hours": round(self.total_hours, 4),
            "share_off": round(self.share_off, 4),
            "tasks_running": self.tasks_running,
            "tasks_stopped": self.tasks_stopped,
            "vcpu": self.size.vcpu,
            "memory_gb": self.size.memory_gb,
            "prices": self.prices.as_json(),
            "cost_without": round(self.cost_without, 2),
            "cost_with": round(self.cost_with, 2),
            "saved": round(self.saved, 2),
            "saved_share": round(self.saved_share, 4),
            "currency": self.prices.currency,
            "schedule": dict(self.origin),
        }
        if with_segments:
            data["segments"] = [_segment_json(s, self.timezone) for s in self.segments]
        return data


def _segment_json(segment: Segment, zone: str) -> dict[str, object]:
    tz = pytz.timezone(zone)
    return {
        "start": segment.start.astimezone(tz).isoformat(),
        "end": segment.end.astimezone(tz).isoformat(),
        "state": segment.state,
        "source": segment.source,
        "reason": segment.reason,
        "override_id": segment.override_id,
        "holiday": segment.holiday,
    }


def simulate_service(
    schedule: Schedule,
    segments: Sequence[Segment],
    *,
    tasks_running: int,
    tasks_stopped: int,
    size: TaskSize,
    prices: Prices,
    tick: timedelta = TICK,
    holidays: Mapping[date, str] | None = None,
) -> ServiceSimulation:
    """Hours, share off and costs for one service from its (undelayed) decision segments.

    ``holidays`` (local date -> name) only labels the timeline; the segments already say
    what the holidays do.
    """
    return _from_counted(
        schedule,
        _count(segments, tick),
        tasks_running=tasks_running,
        tasks_stopped=tasks_stopped,
        size=size,
        prices=prices,
        holidays=holidays or {},
    )


def _from_counted(
    schedule: Schedule,
    counted: _Counted,
    *,
    tasks_running: int,
    tasks_stopped: int,
    size: TaskSize,
    prices: Prices,
    holidays: Mapping[date, str],
) -> ServiceSimulation:
    if not counted.segments:
        raise ValueError(f"{schedule.key}: no segments to simulate (empty range)")
    origin = OWN_DOCUMENT if schedule.profile is None else schedule.origin_detail()
    return ServiceSimulation(
        service=schedule.key,
        timezone=schedule.timezone,
        region=prices.region,
        start=counted.segments[0].start,
        end=counted.segments[-1].end,
        running_minutes=counted.minutes["running"],
        stopped_minutes=counted.minutes["stopped"],
        unmanaged_minutes=counted.minutes["unmanaged"],
        tasks_running=tasks_running,
        tasks_stopped=tasks_stopped,
        size=size,
        prices=prices,
        segments=counted.segments,
        holidays=holidays,
        calendars=tuple(schedule.holidays),
        origin=origin,
        origin_text=origin_words(origin),
    )


# Many services ---------------------------------------------------------------------------------
def local_midnight(day: date, zone: str) -> datetime:
    """The instant a local date begins (where midnight is skipped by DST, the first instant)."""
    tz = pytz.timezone(zone)
    return tz.normalize(tz.localize(datetime.combine(day, time()), is_dst=False))


def local_range(first_day: date, last_day: date, zone: str) -> tuple[datetime, datetime]:
    """[first_day 00:00, the day after last_day 00:00) as instants in ``zone``."""
    return local_midnight(first_day, zone), local_midnight(last_day + timedelta(days=1), zone)


def region_of(schedule: Schedule, default_region: str = DEFAULT_REGION) -> str:
    return schedule.region or default_region


def running_tasks(
    schedule: Schedule, *, tasks: int | None = None, observed: int | None = None
) -> int:
    """Tasks while running: the flag, else the schedule's running.desired_count, else what
    ECS reports now, else 1."""
    if tasks is not None:
        return tasks
    if schedule.running is not None and schedule.running.desired_count is not None:
        return schedule.running.desired_count
    if observed is not None:
        return observed
    return 1


def select(schedules: Iterable[Schedule], names: Sequence[str]) -> list[Schedule]:
    """The schedules named by key or by cluster/service (all when ``names`` is empty)."""
    wanted = set(names)
    chosen = [s for s in schedules if not wanted or s.key in wanted or s.service in wanted]
    return sorted(chosen, key=lambda s: s.key)


def simulate(
    docs: DocumentSet,
    start: date,
    end: date,
    *,
    prices: Mapping[str, Prices],
    service_prices: Mapping[str, Prices] | None = None,
    default_region: str = DEFAULT_REGION,
    services: Sequence[str] = (),
    tasks: int | None = None,
    observed_tasks: Mapping[str, int] | None = None,
    sizes: Mapping[str, TaskSize] | None = None,
    default_size: TaskSize = DEFAULT_TASK_SIZE,
    decider: Decider | None = None,
    tick: timedelta = TICK,
) -> list[ServiceSimulation]:
    """Simulate every schedule (or those named in ``services``) from local date ``start`` to
    local date ``end`` inclusive, each in its own time zone.

    ``prices`` maps region -> Prices and must hold every region used (``region_of``) by a
    service missing from ``service_prices`` (service key -> Prices, e.g. for an arm64 task
    definition); ``observed_tasks`` and ``sizes`` are keyed by service key too.
    """
    with _collector_paused():
        return _simulate(
            docs,
            start,
            end,
            prices=prices,
            service_prices=service_prices or {},
            default_region=default_region,
            services=services,
            tasks=tasks,
            observed_tasks=observed_tasks or {},
            sizes=sizes or {},
            default_size=default_size,
            decider=decider or Decider(docs.calendars),
            tick=tick,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while simulating: the work allocates tens of objects
    per service and day and makes no cycles, and each of the collector's full passes walks
    every live object (the caller's thousands of documents), which cost more than the work
    itself (twice the CPU for 1,000 services). Nothing is lost: a cycle made meanwhile is
    collected once it is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _simulate(
    docs: DocumentSet,
    start: date,
    end: date,
    *,
    prices: Mapping[str, Prices],
    service_prices: Mapping[str, Prices],
    default_region: str,
    services: Sequence[str],
    tasks: int | None,
    observed_tasks: Mapping[str, int],
    sizes: Mapping[str, TaskSize],
    default_size: TaskSize,
    decider: Decider,
    tick: timedelta,
) -> list[ServiceSimulation]:
    calendars = HolidayCalendars(docs.calendars)
    holiday_names: dict[tuple[str, ...], Mapping[date, str]] = {}
    overrides = _overrides_by_key(docs.overrides)
    ranges: dict[str, tuple[datetime, datetime]] = {}
    by_shape: dict[_Shape, _Counted] = {}
    by_runs: dict[tuple[Run, ...], _Counted] = {}
    ticks: dict[datetime, datetime] = {}
    results: list[ServiceSimulation] = []
    for schedule in select(docs.schedules.values(), services):
        own = overrides.get(schedule.key, [])
        # Services without overrides of their own and with the same rules have the same
        # segments: ask the Decider once per shape, not once per service.
        shape = None if own else _shape_of(schedule)
        counted = by_shape.get(shape) if shape is not None else None
        if counted is None:
            if schedule.timezone not in ranges:
                ranges[schedule.timezone] = local_range(start, end, schedule.timezone)
            range_start, range_end = ranges[schedule.timezone]
            runs = tuple(decider.runs(schedule, range_start, range_end, own))
            counted = by_runs.get(runs)
            if counted is None:
                tz = zone(schedule.timezone)
                counted = by_runs[runs] = _count_runs(runs, tz, tick, ticks)
            if shape is not None:
                by_shape[shape] = counted
        names = tuple(schedule.holidays)
        if names not in holiday_names:
            holiday_names[names] = _holidays_between(calendars, names, start, end)
        results.append(
            _from_counted(
                schedule,
                counted,
                tasks_running=running_tasks(
                    schedule, tasks=tasks, observed=observed_tasks.get(schedule.key)
                ),
                tasks_stopped=schedule.stopped.desired_count,
                size=sizes.get(schedule.key, default_size),
                prices=service_prices.get(schedule.key)
                or prices[region_of(schedule, default_region)],
                holidays=holiday_names[names],
            )
        )
    return results


def _holidays_between(
    calendars: HolidayCalendars, names: Sequence[str], first: date, last: date
) -> Mapping[date, str]:
    found: dict[date, str] = {}
    if not names:
        return found
    day = first
    while day <= last:
        label = calendars.lookup(names, day)
        if label is not None:
            found[day] = label
        day += timedelta(days=1)
    return found


# What a schedule's segments depend on, apart from overrides: never the service's name.
_Shape = tuple[object, ...]


def _shape_of(schedule: Schedule) -> _Shape:
    return (
        schedule.mode,
        schedule.timezone,
        tuple((_days_key(w.days), w.start, w.end) for w in schedule.windows),
        tuple((c.start, c.stop) for c in schedule.cron),
        tuple(schedule.holidays),
    )


def _days_key(days: str | list[str]) -> str | tuple[str, ...]:
    return days if isinstance(days, str) else tuple(days)


def _overrides_by_key(overrides: Iterable[Override]) -> dict[str, list[Override]]:
    grouped: dict[str, list[Override]] = {}
    for override in overrides:
        grouped.setdefault(override.key, []).append(override)
    return grouped


# Totals ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Totals:
    services: int
    running_hours: float
    stopped_hours: float
    total_hours: float
    cost_without: float
    cost_with: float
    currency: str

    @property
    def share_off(self) -> float:
        return self.stopped_hours / self.total_hours if self.total_hours else 0.0

    @property
    def saved(self) -> float:
        return self.cost_without - self.cost_with

    @property
    def saved_share(self) -> float:
        return self.saved / self.cost_without if self.cost_without else 0.0


def totals(simulations: Sequence[ServiceSimulation]) -> Totals:
    currencies = {s.prices.currency for s in simulations}
    return Totals(
        services=len(simulations),
        running_hours=sum(s.running_hours for s in simulations),
        stopped_hours=sum(s.stopped_hours for s in simulations),
        total_hours=sum(s.total_hours for s in simulations),
        cost_without=sum(s.cost_without for s in simulations),
        cost_with=sum(s.cost_with for s in simulations),
        currency=currencies.pop() if len(currencies) == 1 else "USD",
    )
