"""Cron pairs and windows across DST changes: the same hours written either way decide the same.

A window ``daily 03:00-02:30`` and the cron pair ``0 3 * * *`` / ``30 2 * * *`` say one thing.
Where a DST gap swallows 02:30, both the window's end and the pair's stop fire at the first
instant after the gap -- the instant the 03:00 start fires. The stop was scheduled first (02:30
comes before 03:00 on the wall clock), so it ends the previous run and the start begins the next:
the service keeps running. Fires that land on one instant are ordered by the wall-clock time
they were scheduled at; a stop and a start scheduled at the same wall-clock time are a tie
(stopped). An ambiguous time (the fall-back overlap) fires once, at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.decide import Decider
from engine.localtime import localize, zone
from schemas.documents import Schedule, Window

SERVICE = "example-cluster/example-service-dev"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def window_schedule(timezone: str, days: str, start: str, end: str, **extra: object) -> Schedule:
    window = {"days": days, "start": start, "end": end}
    return Schedule.model_validate(
        {"service": SERVICE, "timezone": timezone, "windows": [window], **extra}
    )


def cron_days(weekdays: frozenset[int], shift: int) -> str:
    if len(weekdays) == 7:
        return "*"
    return ",".join(DAY_NAMES[(day + shift) % 7] for day in sorted(weekdays))


def as_cron_pair(schedule: Schedule) -> Schedule:
    """The schedule's one window as the cron pair that says the same."""
    window: Window = schedule.windows[0]
    start, end = window.start_minute, window.end_minute % (24 * 60)
    next_day = 1 if window.overnight or window.end_minute == 24 * 60 else 0
    pair = {
        "start": f"{start % 60} {start // 60} * * {cron_days(window.weekdays, 0)}",
        "stop": f"{end % 60} {end // 60} * * {cron_days(window.weekdays, next_day)}",
    }
    body = schedule.model_dump(exclude={"windows"})
    return Schedule.model_validate({**body, "windows": [], "cron": [pair]})


def local(timezone: str, *args: int) -> datetime:
    return localize(zone(timezone), datetime(*args))


# (zone, start cron, stop cron, window, an instant on the day of the change, the next stop)
GAP_DAYS = [
    pytest.param(
        "America/New_York",
        "0 3 * * *",
        "30 2 * * *",
        ("03:00", "02:30"),
        local("America/New_York", 2026, 3, 8, 12),
        local("America/New_York", 2026, 3, 9, 2, 30),
        id="new-york-stop-in-the-gap",
    ),
    pytest.param(
        "Europe/Berlin",
        "0 3 * * *",
        "30 2 * * *",
        ("03:00", "02:30"),
        local("Europe/Berlin", 2026, 3, 29, 12),
        local("Europe/Berlin", 2026, 3, 30, 2, 30),
        id="berlin-stop-in-the-gap",
    ),
    pytest.param(
        "America/Santiago",
        "0 1 * * *",
        "30 0 * * *",
        ("01:00", "00:30"),
        local("America/Santiago", 2026, 9, 6, 12),
        local("America/Santiago", 2026, 9, 7, 0, 30),
        id="santiago-stop-in-the-midnight-gap",
    ),
    pytest.param(
        "America/Havana",
        "0 1 * * *",
        "30 0 * * *",
        ("01:00", "00:30"),
        local("America/Havana", 2026, 3, 8, 12),
        local("America/Havana", 2026, 3, 9, 0, 30),
        id="havana-stop-in-the-midnight-gap",
    ),
    pytest.param(
        "Pacific/Apia",
        "0 3 * * *",
        "30 2 * * *",
        ("03:00", "02:30"),
        local("Pacific/Apia", 2011, 12, 31, 12),
        local("Pacific/Apia", 2012, 1, 1, 2, 30),
        id="apia-skipped-day",
    ),
]


@pytest.mark.parametrize(("timezone", "start", "stop", "hours", "at", "next_stop"), GAP_DAYS)
def test_a_stop_in_the_gap_does_not_stop_the_service_for_a_day(
    timezone: str,
    start: str,
    stop: str,
    hours: tuple[str, str],
    at: datetime,
    next_stop: datetime,
) -> None:
    cron = Schedule.model_validate(
        {"service": SERVICE, "timezone": timezone, "cron": [{"start": start, "stop": stop}]}
    )
    window = window_schedule(timezone, "daily", *hours)
    for schedule in (cron, window):
        decision = Decider().decide(schedule, at)
        assert decision.state == "running", decision.reason
        assert decision.next_change == next_stop


@pytest.mark.parametrize(("timezone", "start", "stop", "hours", "at", "next_stop"), GAP_DAYS)
def test_cron_pair_and_window_agree_every_minute_around_the_change(
    timezone: str,
    start: str,
    stop: str,
    hours: tuple[str, str],
    at: datetime,
    next_stop: datetime,
) -> None:
    window = window_schedule(timezone, "daily", *hours)
    cron = as_cron_pair(window)
    assert (cron.cron[0].start, cron.cron[0].stop) == (start, stop)
    decider = Decider()
    instant = at.astimezone(UTC) - timedelta(days=2)
    while instant < at + timedelta(days=1):
        assert decider.decide(cron, instant).state == decider.decide(window, instant).state, instant
        instant += timedelta(minutes=5)


def test_a_start_in_the_gap_starts_at_the_gap_end_like_a_window() -> None:
    # 02:30 does not exist on 2026-03-08 in New York: start at 03:00 EDT, stop at 04:00 EDT.
    cron = Schedule.model_validate(
        {
            "service": SERVICE,
            "timezone": "America/New_York",
            "cron": [{"start": "30 2 * * *", "stop": "0 4 * * *"}],
        }
    )
    decision = Decider().decide(cron, datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    assert decision.state == "running"
    assert decision.next_change == local("America/New_York", 2026, 3, 8, 4)


def test_start_and_stop_in_one_gap_keep_their_wall_clock_order() -> None:
    # Both scheduled inside the gap land on 03:00 EDT; the start (02:10) comes before the stop
    # (02:40), so the run is empty: stopped, as the window 02:10-02:40 is.
    cron = Schedule.model_validate(
        {
            "service": SERVICE,
            "timezone": "America/New_York",
            "cron": [{"start": "10 2 * * *", "stop": "40 2 * * *"}],
        }
    )
    at = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert Decider().decide(cron, at).state == "stopped"
    assert Decider().decide(as_cron_pair(window_schedule(*NY_GAP_WINDOW)), at).state == "stopped"


NY_GAP_WINDOW = ("America/New_York", "daily", "02:10", "02:40")


def test_fall_back_overlap_fires_once() -> None:
    # 01:30 happens twice on 2026-11-01 in New York; the stop fires at the first (05:30 UTC)
    # and not again at the second (06:30 UTC); the 02:00 EST start comes at 07:00 UTC.
    window = window_schedule("America/New_York", "daily", "02:00", "01:30")
    cron = as_cron_pair(window)
    decider = Decider()
    for schedule in (window, cron):
        assert decider.decide(schedule, datetime(2026, 11, 1, 5, 29, tzinfo=UTC)).state == "running"
        for minute in (30, 45, 90, 119):
            at = datetime(2026, 11, 1, 5, tzinfo=UTC) + timedelta(minutes=minute)
            assert decider.decide(schedule, at).state == "stopped", at
        assert decider.decide(schedule, datetime(2026, 11, 1, 7, tzinfo=UTC)).state == "running"


# --- the property -------------------------------------------------------------------------

# Zones with DST gaps and overlaps at 02:00, at midnight, of half an hour, and a skipped day.
CHANGES = {
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Europe/Berlin": [date(2026, 3, 29), date(2026, 10, 25)],
    "America/Santiago": [date(2026, 4, 5), date(2026, 9, 6)],
    "America/Havana": [date(2026, 3, 8), date(2026, 11, 1)],
    "Australia/Lord_Howe": [date(2026, 4, 5), date(2026, 10, 4)],
    "Pacific/Apia": [date(2011, 12, 30)],
    "Asia/Tokyo": [date(2026, 3, 8)],
}
TIMES = [f"{h:02d}:{m:02d}" for h in (0, 1, 2, 3, 23) for m in (0, 15, 30, 45)]
DAYS = ["daily", "mon-fri", "sat,sun", "fri-mon", "sun", "sat"]


@st.composite
def window_and_instant(draw: st.DrawFn) -> tuple[Schedule, datetime]:
    timezone = draw(st.sampled_from(sorted(CHANGES)))
    start = draw(st.sampled_from(TIMES))
    # An end equal to the start (24:00 is 00:00) is a 24-hour window, while a start and a stop
    # scheduled at the same time are a tie (stopped): the one shape the two forms do not share.
    ends = [t for t in [*TIMES, "24:00"] if t.replace("24:00", "00:00") != start]
    end = draw(st.sampled_from(ends))
    holidays = draw(st.sampled_from([[], ["US"]]))
    schedule = window_schedule(timezone, draw(st.sampled_from(DAYS)), start, end, holidays=holidays)
    change = draw(st.sampled_from(CHANGES[timezone]))
    midnight = localize(zone(timezone), datetime.combine(change, datetime.min.time()))
    offset = draw(st.integers(-36 * 60, 60 * 60))
    return schedule, midnight.astimezone(UTC) + timedelta(minutes=offset)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=window_and_instant())
def test_a_window_and_its_cron_pair_decide_the_same_at_every_instant(
    case: tuple[Schedule, datetime],
) -> None:
    window, at = case
    cron = as_cron_pair(window)
    by_window = Decider().decide(window, at)
    by_cron = Decider().decide(cron, at)
    assert by_window.state == by_cron.state, (window.windows[0], cron.cron[0], at)
    assert by_window.next_change == by_cron.next_change
