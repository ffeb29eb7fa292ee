"""The document models: what they accept, how they normalise, and the helpers others use."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import (
    DEFAULT_TIMEZONE,
    Calendar,
    CronPair,
    DateRange,
    Override,
    RunningCapacity,
    Schedule,
    StoppedCapacity,
    Window,
)
from schemas.documents import DAY_NAMES, describe_value, parse_days, parse_hhmm
from schemas.keys import ServiceKey, service_key
from schemas.validation import parse_document

JST = timezone(timedelta(hours=9))


@pytest.mark.parametrize(
    ("spec", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("sat,sun", {5, 6}),
        ("fri-mon", {4, 5, 6, 0}),
        ("Mon - Wed", {0, 1, 2}),
        ("daily", set(range(7))),
        ("sunday", {6}),
        (["mon", "wed-thu"], {0, 2, 3}),
        ("tue-tue", {1}),
    ],
)
def test_parse_days(spec: str | list[str], days: set[int]) -> None:
    assert parse_days(spec) == frozenset(days)


@pytest.mark.parametrize("spec", ["", "mon,", "moon", "mon-xyz", [], ["mon", ""]])
def test_parse_days_refuses(spec: str | list[str]) -> None:
    with pytest.raises(ValueError):
        parse_days(spec)


@given(first=st.sampled_from(DAY_NAMES), last=st.sampled_from(DAY_NAMES))
def test_day_ranges_wrap_and_cover_first_to_last(first: str, last: str) -> None:
    days = parse_days(f"{first}-{last}")
    a, b = DAY_NAMES.index(first), DAY_NAMES.index(last)
    assert len(days) == (b - a) % 7 + 1
    assert a in days and b in days


def test_parse_hhmm() -> None:
    assert parse_hhmm("05:30", allow_24=False) == 330
    assert parse_hhmm("24:00", allow_24=True) == 1440
    for bad in ("24:00", "5:30", "05:60", "０５:００", "05:00:00"):
        with pytest.raises(ValueError):
            parse_hhmm(bad, allow_24=False)


def test_digits_of_other_scripts_are_not_times() -> None:
    with pytest.raises(ValidationError):
        Window(days="mon", start="0٥:00", end="22:00")


def test_window_properties() -> None:
    window = Window(days="mon-fri", start="05:00", end="22:00")
    assert window.weekdays == frozenset(range(5))
    assert (window.start_minute, window.end_minute, window.overnight) == (300, 1320, False)
    night = Window(days="fri", start="22:00", end="06:00")
    assert night.overnight
    assert Window(days="mon", start="00:00", end="24:00").end_minute == 1440


def test_window_days_are_text_only() -> None:
    assert Window(days="sat,sun", start="10:00", end="12:00").weekdays == {5, 6}
    for shape in ({"sun", "sat"}, ("mon", "tue"), ["mon"]):
        with pytest.raises(ValidationError, match="expected the days as one text"):
            Window(days=shape, start="10:00", end="12:00")


def test_schedule_defaults_and_names() -> None:
    schedule = Schedule(
        service="example-cluster/example-service-stg",
        windows=[Window(days="mon-fri", start="05:00", end="22:00")],
    )
    assert schedule.kind == "schedule"
    assert schedule.timezone == DEFAULT_TIMEZONE == "Asia/Tokyo"
    assert schedule.mode == "scheduled" and schedule.targets == "verify"
    assert schedule.stopped == StoppedCapacity(desired_count=0)
    assert schedule.cluster == "example-cluster"
    assert schedule.service_name == "example-service-stg"
    assert schedule.key == "example-cluster/example-service-stg"


def test_schedule_key_carries_account_and_region() -> None:
    schedule = Schedule(service="c/s", mode="always_on", account="123456789012", region="us-east-1")
    assert schedule.key == "c/s@123456789012/us-east-1"
    assert ServiceKey.parse(schedule.key) == ServiceKey("c/s", "123456789012", "us-east-1")


@pytest.mark.parametrize(
    ("account", "region", "key"),
    [
        (None, None, "c/s"),
        (None, "us-east-1", "c/s@us-east-1"),
        ("123456789012", None, "c/s@123456789012"),
    ],
)
def test_service_key_round_trip(account: str | None, region: str | None, key: str) -> None:
    assert service_key("c/s", account, region) == key
    assert ServiceKey.parse(key) == ServiceKey("c/s", account, region)
    assert str(ServiceKey.parse(key)) == key


def test_parse_service_key_refuses_other_scopes() -> None:
    with pytest.raises(ValueError, match="neither an account id nor a region"):
        ServiceKey.parse("c/s@somewhere")


def test_holidays_from_one_text_and_a_set() -> None:
    assert Schedule(service="c/s", mode="always_on", holidays="JP").holidays == ["JP"]
    assert Schedule(service="c/s", mode="always_on", holidays={"US", "JP"}).holidays == [
        "JP",
        "US",
    ]


def test_documents_are_immutable() -> None:
    schedule = Schedule(service="c/s", mode="always_off")
    with pytest.raises(ValidationError):
        schedule.mode = "always_on"  # type: ignore[misc]


def test_whitespace_is_stripped() -> None:
    schedule = Schedule(service=" c/s ", mode="always_off", timezone=" UTC ")
    assert (schedule.service, schedule.timezone) == ("c/s", "UTC")


def test_running_capacity_accepts_decimals_and_bounds() -> None:
    running = RunningCapacity(
        desired_count=Decimal("2"), min_capacity=Decimal("1"), max_capacity=Decimal("4")
    )
    assert (running.desired_count, running.min_capacity, running.max_capacity) == (2, 1, 4)
    with pytest.raises(ValidationError):
        RunningCapacity(desired_count=100_001)


def test_cron_pair() -> None:
    pair = CronPair(start="0 5 * * mon-fri", stop="0 22 * * mon-fri")
    assert pair.start == "0 5 * * mon-fri"
    for bad in ("0 5 * *", "@daily", "0 5 * * mon-fri *", "x" * 500, "0 ５ * * *"):
        with pytest.raises(ValidationError):
            CronPair(start=bad, stop="0 22 * * *")


def test_calendar_contains_dates_and_ranges() -> None:
    calendar = Calendar(
        name="company",
        dates=[date(2026, 6, 15)],
        ranges=[DateRange.model_validate({"from": "2026-12-29", "to": "2027-01-03"})],
    )
    assert calendar.contains(date(2026, 6, 15))
    assert calendar.contains(date(2026, 12, 29)) and calendar.contains(date(2027, 1, 3))
    assert not calendar.contains(date(2027, 1, 4))
    assert DateRange(from_=date(2026, 1, 1), to=date(2026, 1, 1)).to == date(2026, 1, 1)


def test_override_activity_is_start_inclusive_until_exclusive() -> None:
    start = datetime(2026, 12, 1, 22, 0, tzinfo=JST)
    until = datetime(2026, 12, 1, 23, 30, tzinfo=JST)
    override = Override(service="c/s", state="running", start=start, until=until, reason="release")
    assert not override.active_at(start - timedelta(microseconds=1))
    assert override.active_at(start)
    assert not override.active_at(until)
    assert override.key == "c/s"
    open_start = Override(service="c/s", state="stopped", until=until, reason="x")
    assert open_start.active_at(datetime(2000, 1, 1, tzinfo=UTC))


def test_override_timestamps_from_text_and_refusing_numbers() -> None:
    override = Override.model_validate(
        {"service": "c/s", "state": "running", "until": "2026-12-01T23:30+09:00", "reason": "x"}
    )
    assert override.until == datetime(2026, 12, 1, 23, 30, tzinfo=JST)
    with pytest.raises(ValidationError, match="expected a timestamp"):
        Override.model_validate(
            {"service": "c/s", "state": "running", "until": 1796000000, "reason": "x"}
        )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (False, "false"),
        (300, "the number 300"),
        (Decimal("1.5"), "the number 1.5"),
        ("x" * 100, "the text '" + "x" * 57 + "...'"),
        ("", "empty text"),
        ([1], "a list"),
        ({"a": 1}, "a mapping"),
        (frozenset(), "a set"),
        (date(2026, 1, 2), "the date 2026-01-02"),
        (b"x", "a value of type bytes"),
    ],
)
def test_describe_value(value: object, text: str) -> None:
    assert describe_value(value) == text


@pytest.mark.parametrize("reason", ["\x1f", "   ", "---", "line one\nline two", "tab\there"])
def test_an_override_reason_must_be_one_readable_line(reason: str) -> None:
    problems = parse_document(
        {
            "kind": "override",
            "service": "c/s",
            "state": "running",
            "until": "2026-12-01T23:30:00+09:00",
            "reason": reason,
        },
        source="f.yaml",
        index=1,
    )
    assert isinstance(problems, list)
    assert [p.path for p in problems] == ["reason"]
