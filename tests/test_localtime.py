"""Wall-clock to instant rules: DST gaps move forward, overlaps take the first occurrence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import pytz
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.localtime import (
    from_utc,
    localize,
    localize_utc,
    require_aware,
    steady_midnight,
    to_local,
    zone,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone_name", "naive", "expected"),
    [
        pytest.param("Asia/Tokyo", datetime(2026, 1, 5, 5, 0), utc(2026, 1, 4, 20, 0), id="tokyo"),
        pytest.param("UTC", datetime(2026, 1, 5, 5, 0), utc(2026, 1, 5, 5, 0), id="utc"),
        pytest.param(
            "America/New_York",
            datetime(2026, 3, 8, 1, 59),
            utc(2026, 3, 8, 6, 59),
            id="new-york-just-before-gap",
        ),
        pytest.param(
            "America/New_York",
            datetime(2026, 3, 8, 2, 0),
            utc(2026, 3, 8, 7, 0),
            id="new-york-gap-start-moves-to-03:00-edt",
        ),
        pytest.param(
            "America/New_York",
            datetime(2026, 3, 8, 2, 30),
            utc(2026, 3, 8, 7, 0),
            id="new-york-gap-middle-moves-to-03:00-edt",
        ),
        pytest.param(
            "America/New_York",
            datetime(2026, 3, 8, 2, 59, 59, 999999),
            utc(2026, 3, 8, 7, 0),
            id="new-york-gap-last-microsecond-moves-to-03:00-edt",
        ),
        pytest.param(
            "America/New_York",
            datetime(2026, 3, 8, 3, 0),
            utc(2026, 3, 8, 7, 0),
            id="new-york-gap-end",
        ),
        pytest.param(
            "America/New_York",
            datetime(2026, 11, 1, 0, 59),
            utc(2026, 11, 1, 4, 59),
            id="new-york-before-overlap",
        ),
        pytest.param(
            "America/New_York",
            datetime(2026, 11, 1, 1, 0),
            utc(2026, 11, 1, 5, 0),
            id="new-york-overlap-start-first-occurrence-edt",
        ),
        pytest.param(
            "America/New_York",
            datetime(2026, 11, 1, 1, 30),
            utc(2026, 11, 1, 5, 30),
            id="new-york-overlap-middle-first-occurrence-edt",
        ),
        pytest.param(
            "America/New_York",
            datetime(2026, 11, 1, 2, 0),
            utc(2026, 11, 1, 7, 0),
            id="new-york-after-overlap-est",
        ),
        pytest.param(
            "Europe/London",
            datetime(2026, 3, 29, 1, 30),
            utc(2026, 3, 29, 1, 0),
            id="london-gap",
        ),
        pytest.param(
            "Europe/London",
            datetime(2026, 10, 25, 1, 30),
            utc(2026, 10, 25, 0, 30),
            id="london-overlap-first-occurrence-bst",
        ),
        pytest.param(
            "Australia/Lord_Howe",
            datetime(2026, 10, 4, 2, 15),
            utc(2026, 10, 3, 15, 30),
            id="lord-howe-half-hour-gap",
        ),
        pytest.param(
            "Australia/Lord_Howe",
            datetime(2026, 4, 5, 1, 45),
            utc(2026, 4, 4, 14, 45),
            id="lord-howe-half-hour-overlap-first-occurrence",
        ),
    ],
)
def test_localize(zone_name: str, naive: datetime, expected: datetime) -> None:
    assert localize(zone(zone_name), naive) == expected


def test_tokyo_is_nine_hours_not_local_mean_time() -> None:
    tokyo = zone("Asia/Tokyo")
    # The trap localize exists to avoid: attaching a pytz zone takes its first (LMT) offset.
    trap = datetime(2026, 1, 5, 5, 0, tzinfo=tokyo)
    assert trap.utcoffset() == timedelta(hours=9, minutes=19)
    assert localize(tokyo, datetime(2026, 1, 5, 5, 0)).utcoffset() == timedelta(hours=9)
    assert to_local(utc(2026, 1, 4, 20, 0), tokyo).utcoffset() == timedelta(hours=9)


@pytest.mark.parametrize(
    ("at", "zone_name", "wall", "offset"),
    [
        pytest.param(
            utc(2026, 7, 1, 12), "America/New_York", datetime(2026, 7, 1, 8), -4, id="edt"
        ),
        pytest.param(
            utc(2026, 1, 1, 12), "America/New_York", datetime(2026, 1, 1, 7), -5, id="est"
        ),
        pytest.param(
            datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5))),
            "Asia/Tokyo",
            datetime(2026, 1, 2, 2),
            9,
            id="from-fixed-offset",
        ),
        pytest.param(
            utc(2026, 11, 1, 6, 30),
            "America/New_York",
            datetime(2026, 11, 1, 1, 30),
            -5,
            id="second-occurrence-of-ambiguous-time",
        ),
    ],
)
def test_to_local(at: datetime, zone_name: str, wall: datetime, offset: int) -> None:
    local = to_local(at, zone(zone_name))
    assert local == at
    assert local.replace(tzinfo=None) == wall
    assert local.utcoffset() == timedelta(hours=offset)


def test_zone_is_cached_and_rejects_unknown_names() -> None:
    assert zone("Asia/Tokyo") is zone("Asia/Tokyo")
    with pytest.raises(pytz.UnknownTimeZoneError):
        zone("Asia/Tokio")


def test_require_aware() -> None:
    aware = utc(2026, 1, 1)
    assert require_aware(aware) is aware
    with pytest.raises(ValueError, match=r"at 2026-01-01T00:00:00 has no UTC offset"):
        require_aware(datetime(2026, 1, 1), "at")


def test_naive_and_aware_are_not_mixed_up() -> None:
    with pytest.raises(ValueError, match="without offset"):
        localize(zone("Asia/Tokyo"), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="has no UTC offset"):
        to_local(datetime(2026, 1, 1), zone("Asia/Tokyo"))


ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Tokyo", "UTC"]
# 2026 plus a margin, in minutes; DST changes are hit often enough at minute resolution.
MINUTES = st.integers(0, 400 * 24 * 60)
START = datetime(2025, 12, 1)


@settings(max_examples=300, deadline=None)
@given(zone_name=st.sampled_from(ZONES), minutes=MINUTES)
def test_localize_of_every_instant_wall_clock_is_that_instant_or_its_first_occurrence(
    zone_name: str, minutes: int
) -> None:
    tz = zone(zone_name)
    instant = utc(2025, 12, 1) + timedelta(minutes=minutes)
    wall = to_local(instant, tz).replace(tzinfo=None)
    back = localize(tz, wall)
    assert to_local(back, tz).replace(tzinfo=None) == wall
    assert back <= instant
    assert instant - back in (timedelta(0), timedelta(hours=1), timedelta(minutes=30))


@settings(max_examples=300, deadline=None)
@given(zone_name=st.sampled_from(ZONES), minutes=MINUTES)
def test_localize_of_every_wall_clock_time_follows_the_rules(zone_name: str, minutes: int) -> None:
    tz = zone(zone_name)
    naive = START + timedelta(minutes=minutes)
    instant = localize(tz, naive)
    shown = to_local(instant, tz).replace(tzinfo=None)
    if shown == naive:
        # Exists: no earlier instant shows the same wall clock (first occurrence).
        for earlier in (instant - timedelta(minutes=30), instant - timedelta(hours=1)):
            assert to_local(earlier, tz).replace(tzinfo=None) != naive
    else:
        # Does not exist: the first instant after the gap.
        assert shown > naive
        assert to_local(instant - timedelta(microseconds=1), tz).replace(tzinfo=None) < naive


# The fast paths (plain offset arithmetic on dates with one offset, caches) say exactly what
# pytz says: zones with DST at 02:00, at midnight (Santiago, Havana), half-hour DST (Lord
# Howe), fixed offsets, and a zone with no DST now but a history (Kolkata).
FAST_ZONES = [
    *ZONES,
    "America/Santiago",
    "America/Havana",
    "Asia/Kolkata",
    "Etc/GMT+5",
    "Pacific/Chatham",
]


@settings(max_examples=400, deadline=None)
@given(zone_name=st.sampled_from(FAST_ZONES), minutes=MINUTES)
def test_localize_utc_is_localize_in_utc(zone_name: str, minutes: int) -> None:
    tz = zone(zone_name)
    naive = START + timedelta(minutes=minutes)
    assert localize_utc(tz, naive) == localize(tz, naive).astimezone(UTC)
    assert localize_utc(tz, naive).tzinfo is UTC


@pytest.mark.parametrize("zone_name", FAST_ZONES)
def test_localize_utc_every_quarter_hour_of_the_days_around_each_change(zone_name: str) -> None:
    tz = zone(zone_name)
    changes = [
        t
        for t in getattr(tz, "_utc_transition_times", [])
        if datetime(2025, 1, 1) <= t <= datetime(2027, 12, 31)
    ]
    for change in changes or [datetime(2026, 6, 1)]:
        day = change.date() - timedelta(days=2)
        for quarter in range(5 * 24 * 4):
            naive = datetime.combine(day, datetime.min.time()) + timedelta(minutes=15 * quarter)
            expected = pytz.utc.normalize(_pytz_rule(tz, naive))
            assert localize_utc(tz, naive) == expected, (zone_name, naive)


def _pytz_rule(tz: pytz.BaseTzInfo, naive: datetime) -> datetime:
    """The rule straight from pytz, without teiji's caches or fast paths."""
    try:
        return tz.localize(naive, is_dst=None)
    except pytz.AmbiguousTimeError:
        return min(tz.localize(naive, is_dst=flag) for flag in (True, False))
    except pytz.NonExistentTimeError:
        # The first instant after the gap: the earliest instant showing a later wall clock.
        instant = tz.localize(naive, is_dst=False).astimezone(UTC) - timedelta(hours=2)
        while to_local(instant, tz).replace(tzinfo=None) < naive:
            instant += timedelta(minutes=15)
        return instant


def test_steady_midnight_only_on_dates_with_one_offset() -> None:
    new_york = zone("America/New_York")
    assert steady_midnight(new_york, datetime(2026, 3, 2).date()) == utc(2026, 3, 2, 5)
    # The spring-forward date, and the dates next to it (their wall-clock times can be read
    # near the change), are left to localize.
    assert steady_midnight(new_york, datetime(2026, 3, 8).date()) is None
    assert steady_midnight(zone("Asia/Tokyo"), datetime(2026, 3, 8).date()) == utc(2026, 3, 7, 15)
    assert steady_midnight(zone("UTC"), datetime(2026, 3, 8).date()) == utc(2026, 3, 8)
    assert steady_midnight(zone("Etc/GMT+5"), datetime(2026, 3, 8).date()) == utc(2026, 3, 8, 5)


@settings(max_examples=200, deadline=None)
@given(zone_name=st.sampled_from(FAST_ZONES), minutes=MINUTES)
def test_from_utc_is_astimezone(zone_name: str, minutes: int) -> None:
    tz = zone(zone_name)
    instant = utc(2025, 12, 1) + timedelta(minutes=minutes)
    shown = from_utc(instant, tz)
    assert shown == instant
    assert shown.utcoffset() == instant.astimezone(tz).utcoffset()
    assert shown.tzname() == instant.astimezone(tz).tzname()
