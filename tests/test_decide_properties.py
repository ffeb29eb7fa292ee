"""Properties of deciding that must hold for every schedule and instant.

The Decider answers from cached base timelines (see ``engine.decide``). Here a tiny direct
implementation of the rules -- every window occurrence and cron fire near the instant, evaluated
one instant at a time -- is the reference both a fresh and a warmed Decider must agree with.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.calendars import HolidayCalendars
from engine.decide import CRON_LOOKBACK, LOOKAHEAD, Decider
from engine.localtime import localize, to_local, zone
from engine.model import Decision
from schemas.documents import Calendar, Override, Schedule

SERVICE = "example-cluster/example-service-stg"
COMPANY = Calendar.model_validate(
    {
        "name": "company",
        "dates": ["2026-03-09", "2026-05-08", "2026-11-02"],
        "ranges": [
            {"from": "2026-10-23", "to": "2026-10-26"},
            {"from": "2026-12-29", "to": "2027-01-03"},
        ],
    }
)
CALENDARS = {"company": COMPANY}
HOLIDAYS = HolidayCalendars(CALENDARS)
# Shared across examples, so it answers from timelines built for other instants and rules.
WARM = Decider(CALENDARS)

ZONES = [
    "Asia/Tokyo",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Havana",
    "UTC",
]
DAYS = ["mon-fri", "sat,sun", "fri-mon", "daily", "fri", "sun-thu", "wed"]
TIMES = ["00:00", "01:30", "02:00", "02:30", "05:00", "09:00", "17:00", "22:00", "23:59"]
CRON_PAIRS = [
    ("0 5 * * mon-fri", "0 22 * * mon-fri"),
    ("30 2 * * *", "0 4 * * *"),
    ("30 1 * * *", "45 1 * * *"),
    ("0 12 * * *", "0 12 * * *"),
    ("0 22 * * *", "0 6 * * *"),
    ("0 9 * * 1", "0 17 * * 5"),
    ("0 0 1 * *", "0 0 15 * *"),
    ("0 8,20 * * *", "30 14 * * *"),
    ("0 3 * * *", "30 2 * * *"),  # a stop in the spring-forward gap ties with the start
    ("0 1 * * *", "30 0 * * *"),  # the same where the clocks change at midnight
    ("0 0 1 4 *", "0 0 1 6 *"),  # fires once a year: the look-back reaches a year back
]
HOLIDAY_LISTS = [[], ["JP"], ["company"], ["JP", "company"], ["US-NY"]]
# Days around DST changes, Japanese holidays and the company's dates.
AROUND = [
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 4, 5, tzinfo=UTC),
    datetime(2026, 5, 4, tzinfo=UTC),
    datetime(2026, 9, 21, tzinfo=UTC),
    datetime(2026, 10, 4, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 12, 31, tzinfo=UTC),
    datetime(2026, 6, 3, tzinfo=UTC),
]
TICK = timedelta(microseconds=1)


# --- strategies ----------------------------------------------------------------------------


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    mode = draw(st.sampled_from(["scheduled"] * 6 + ["always_on", "always_off", "unmanaged"]))
    windows: list[dict[str, str]] = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.sampled_from(TIMES))
        end = draw(st.sampled_from([*TIMES, "24:00"]).filter(lambda e, s=start: e != s))
        windows.append({"days": draw(st.sampled_from(DAYS)), "start": start, "end": end})
    pairs = draw(st.lists(st.sampled_from(CRON_PAIRS), min_size=0 if windows else 1, max_size=2))
    return Schedule.model_validate(
        {
            "service": SERVICE,
            "mode": mode,
            "timezone": draw(st.sampled_from(ZONES)),
            "windows": windows,
            "cron": [{"start": a, "stop": b} for a, b in pairs],
            "holidays": draw(st.sampled_from(HOLIDAY_LISTS)),
        }
    )


# Minute resolution, so that window and fire boundaries are hit exactly now and then.
instants = st.builds(
    lambda base, minutes: base + timedelta(minutes=minutes),
    st.sampled_from(AROUND),
    st.integers(-3 * 24 * 60, 3 * 24 * 60),
)


@st.composite
def override_lists(draw: st.DrawFn, around: datetime) -> list[Override]:
    overrides = []
    # Distinct starts (hours from ``around``; None at most once), so the winner is unambiguous.
    starts = draw(st.lists(st.none() | st.integers(-30, 30), max_size=3, unique=True))
    for start in starts:
        length = draw(st.integers(1, 40))
        begin = None if start is None else around + timedelta(hours=start)
        until = (begin or around - timedelta(hours=2)) + timedelta(hours=length)
        service = draw(st.sampled_from([SERVICE, SERVICE, "example-cluster/other"]))
        overrides.append(
            Override.model_validate(
                {
                    "service": service,
                    "state": draw(st.sampled_from(["running", "stopped"])),
                    "start": begin,
                    "until": until,
                    "reason": "testing",
                }
            )
        )
    return overrides


# --- the reference: the rules evaluated directly at one instant -----------------------------


def reference(
    schedule: Schedule, at: datetime, overrides: Sequence[Override] = ()
) -> tuple[str, str]:
    """(state, source) at ``at`` straight from the rules, with no caching or timelines."""
    if schedule.mode == "unmanaged":
        return "unmanaged", "mode"
    active = [o for o in overrides if o.key == schedule.key and o.active_at(at)]
    if active:
        earliest = datetime.min.replace(tzinfo=UTC)
        return max(active, key=lambda o: o.start or earliest).state, "override"
    if schedule.mode == "always_on":
        return "running", "mode"
    if schedule.mode == "always_off":
        return "stopped", "mode"
    tz = zone(schedule.timezone)
    runs_window = runs_cron = suppressed = False
    today = to_local(at, tz).date()
    for window in schedule.windows:
        for day in (today - timedelta(days=back) for back in range(3)):
            if day.weekday() not in window.weekdays:
                continue
            midnight = datetime.combine(day, datetime.min.time())
            end_day = midnight + timedelta(days=1) if window.overnight else midnight
            start = localize(tz, midnight + timedelta(minutes=window.start_minute))
            end = localize(tz, end_day + timedelta(minutes=window.end_minute))
            if start <= at < end:
                if is_holiday(schedule, day):
                    suppressed = True
                else:
                    runs_window = True
    for pair in schedule.cron:
        # Fires are ordered by (instant, wall clock): a DST gap moves fires onto one instant.
        stop = latest_fire(pair.stop, tz, at)
        start = latest_fire(pair.start, tz, at, lambda day: not is_holiday(schedule, day))
        any_start = latest_fire(pair.start, tz, at)
        if start is not None and (stop is None or start > stop):
            runs_cron = True
        elif any_start is not None and (stop is None or any_start > stop):
            suppressed = True
    if runs_window:
        return "running", "window"
    if runs_cron:
        return "running", "cron"
    return "stopped", "holiday" if suppressed else "default"


def is_holiday(schedule: Schedule, day: date) -> bool:
    return HOLIDAYS.lookup(schedule.holidays, day) is not None


def latest_fire(
    expression: str, tz: Any, at: datetime, counts: Callable[[date], bool] = lambda day: True
) -> tuple[datetime, datetime] | None:
    """The latest fire in the look-back (at - CRON_LOOKBACK, at] scheduled on a local date that
    ``counts``, as (instant, wall clock); walked back one fire at a time with croniter."""
    walk = croniter(expression, to_local(at, tz).replace(tzinfo=None) + timedelta(days=1))
    while True:
        fire = walk.get_prev(datetime)
        instant = localize(tz, fire)
        if instant <= at - CRON_LOOKBACK:
            return None
        if instant <= at and counts(fire.date()):
            return instant, fire


# --- properties ----------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(data=st.data(), schedule=schedules(), at=instants)
def test_fresh_and_warm_deciders_match_the_direct_rules(
    data: st.DataObject, schedule: Schedule, at: datetime
) -> None:
    overrides = data.draw(override_lists(at))
    fresh = Decider(CALENDARS).decide(schedule, at, overrides)
    warm = WARM.decide(schedule, at, overrides)
    assert fresh == warm
    assert (fresh.state, fresh.source) == reference(schedule, at, overrides)


@PROPERTY_SETTINGS
@given(data=st.data(), schedule=schedules(), at=instants)
def test_next_change_is_consistent(data: st.DataObject, schedule: Schedule, at: datetime) -> None:
    overrides = data.draw(override_lists(at))
    decider = Decider(CALENDARS)
    decision = decider.decide(schedule, at, overrides)

    def state(instant: datetime) -> str:
        return decider.decide(schedule, instant, overrides).state

    change = decision.next_change
    if change is None:
        end = at + LOOKAHEAD
    else:
        assert at < change <= at + LOOKAHEAD
        assert state(change - TICK) == decision.state
        assert state(change) != decision.state
        assert reference(schedule, change, overrides)[0] != decision.state
        assert reference(schedule, change - TICK, overrides)[0] == decision.state
        end = change
    instant = at + timedelta(minutes=20)
    while instant < end:
        assert state(instant) == decision.state
        instant += timedelta(minutes=20)
    between = at + data.draw(st.floats(0, 1, exclude_max=True)) * (end - at)
    assert reference(schedule, min(between, end - TICK), overrides)[0] == decision.state


@contextmanager
def machine_timezone(name: str) -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules(), at=instants)
def test_decisions_do_not_depend_on_the_machines_timezone(schedule: Schedule, at: datetime) -> None:
    decisions = []
    for name in ("UTC", "Asia/Tokyo", "America/New_York", "Pacific/Chatham"):
        with machine_timezone(name):
            decisions.append(Decider(CALENDARS).decide(schedule, at))
    assert all(d == decisions[0] for d in decisions)


def test_machine_timezone_really_changes() -> None:
    # Guards the test above: time.tzset() must take effect, or it proves nothing.
    with machine_timezone("Asia/Tokyo"):
        tokyo = time.localtime(0).tm_gmtoff
    with machine_timezone("America/New_York"):
        new_york = time.localtime(0).tm_gmtoff
    assert (tokyo, new_york) == (9 * 3600, -5 * 3600)


@PROPERTY_SETTINGS
@given(schedule=schedules(), at=instants, offset_minutes=st.sampled_from([0, 540, -300, 345, 765]))
def test_the_same_instant_in_any_offset_decides_the_same(
    schedule: Schedule, at: datetime, offset_minutes: int
) -> None:
    shifted = at.astimezone(timezone(timedelta(minutes=offset_minutes)))
    tz_expressed = to_local(at, zone("Asia/Kolkata"))
    decision = WARM.decide(schedule, at)
    assert Decider(CALENDARS).decide(schedule, shifted) == decision
    assert WARM.decide(schedule, tz_expressed) == decision


def same(decision: Decision, segment: Any) -> bool:
    return (
        decision.state,
        decision.source,
        decision.reason,
        decision.override_id,
        decision.holiday,
    ) == (segment.state, segment.source, segment.reason, segment.override_id, segment.holiday)


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    schedule=schedules(),
    start=instants,
    length=st.integers(1, 10 * 24 * 60),
)
def test_segments_cover_the_range_and_agree_with_decide(
    data: st.DataObject, schedule: Schedule, start: datetime, length: int
) -> None:
    end = start + timedelta(minutes=length)
    overrides = data.draw(override_lists(start))
    decider = WARM if data.draw(st.booleans()) else Decider(CALENDARS)
    segments = decider.segments(schedule, start, end, overrides)
    assert segments[0].start == start
    assert segments[-1].end == end
    for before, after in pairwise(segments):
        assert before.end == after.start  # no gap, no overlap
        assert (before.state, before.source, before.reason, before.override_id, before.holiday) != (
            after.state,
            after.source,
            after.reason,
            after.override_id,
            after.holiday,
        )  # merged
    for segment in segments:
        assert segment.start < segment.end
        assert segment.start.tzinfo is not None
        assert to_local(segment.start, zone(schedule.timezone)).utcoffset() == (
            segment.start.utcoffset()
        )
        middle = segment.start + (segment.end - segment.start) / 2
        for instant in (segment.start, middle, segment.end - TICK):
            assert same(decider.decide(schedule, instant, overrides), segment)
        assert (segment.state, segment.source) == reference(schedule, segment.start, overrides)
