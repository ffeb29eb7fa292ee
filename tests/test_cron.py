"""Compiled cron expressions give exactly croniter's fires, found faster."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from croniter import CroniterBadDateError, croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cron import compiled
from schemas.validation import cron_fires_per_day

MINUTES = ["0", "*/15", "5,35", "59", "*", "10-20/5"]
HOURS = ["0", "2", "9-17", "*/6", "23", "*"]
DOMS = ["*", "1", "15", "1-7", "*/10", "29", "31", "L", "28-31"]
MONTHS = ["*", "1", "2", "4,6", "2-3", "*/3", "dec"]
DOWS = ["*", "mon-fri", "0", "7", "sat,sun", "5", "fri#2", "1-5/2"]


@st.composite
def expressions(draw: st.DrawFn) -> str:
    fields = [draw(st.sampled_from(f)) for f in (MINUTES, HOURS, DOMS, MONTHS, DOWS)]
    return " ".join(fields)


def croniter_walls(expression: str, first: datetime, last: datetime) -> list[datetime]:
    walk = croniter(expression, first - timedelta(microseconds=1))
    found = []
    try:
        while (fire := walk.get_next(datetime)) <= last:
            found.append(fire)
    except CroniterBadDateError:  # croniter gives up on expressions that fire rarely
        pass
    return found


starts = st.datetimes(datetime(2023, 1, 1), datetime(2029, 1, 1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=expressions(), first=starts, days=st.integers(0, 40))
def test_compiled_walls_are_croniter_fires(expression: str, first: datetime, days: int) -> None:
    last = first + timedelta(days=days, hours=3)
    assert compiled(expression).walls(first, last) == croniter_walls(expression, first, last)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=expressions(), before=starts)
def test_previous_is_croniters_previous_fire(expression: str, before: datetime) -> None:
    within = timedelta(days=400)
    expected: datetime | None
    try:
        expected = croniter(expression, before).get_prev(datetime)
    except CroniterBadDateError:
        expected = None
    if expected is not None and (expected < before - within or expected >= before):
        expected = None
    assert compiled(expression).previous(before, within) == expected


@settings(max_examples=60, deadline=None)
@given(expression=expressions(), day=st.dates(date(2024, 1, 1), date(2028, 12, 31)))
def test_fires_per_day_bounds_every_date(expression: str, day: date) -> None:
    first = datetime.combine(day, datetime.min.time())
    fires = compiled(expression).walls(first, first + timedelta(days=1, microseconds=-1))
    assert len(fires) <= cron_fires_per_day(expression)


def test_fires_per_day() -> None:
    assert cron_fires_per_day("*/2 * * * *") == 720
    assert cron_fires_per_day("0 5 * * mon-fri") == 1
    assert cron_fires_per_day("0,30 9-17 * * *") == 18
