"""Wall-clock to instant rules: DST gaps move forward, overlaps take the first occurrence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import pytz
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.localtime import localize, require_aware, to_local, zone


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
