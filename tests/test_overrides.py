"""The override rules people meet at the terminal: times, lengths, ids, lookups (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.localtime import to_local, zone
from engine.overrides import (
    OverrideError,
    StoredOverride,
    build_override,
    caller_name,
    check_length,
    extend_override,
    extended_until,
    find_override,
    new_override_id,
    next_wall_clock,
    override_status,
    parse_instant,
    parse_length,
)
from schemas.documents import Override, Schedule

TOKYO = "Asia/Tokyo"
NEW_YORK = "America/New_York"
WEEK = timedelta(days=7)


def at(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.utcoffset() is not None
    return value


def schedule(service: str = "c1/web", timezone: str = TOKYO, **fields: object) -> Schedule:
    return Schedule.model_validate(
        {
            "service": service,
            "timezone": timezone,
            "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
            **fields,
        }
    )


def override(**fields: object) -> Override:
    doc: dict[str, object] = {
        "service": "c1/web",
        "state": "running",
        "start": at("2026-12-01T21:00:00+09:00"),
        "until": at("2026-12-01T23:30:00+09:00"),
        "reason": "release check",
        "id": "3fa2c1d0",
    }
    doc.update(fields)
    return Override.model_validate(doc)


# Times ----------------------------------------------------------------------------------------
def test_until_hhmm_is_today_when_still_ahead() -> None:
    now = at("2026-12-01T21:00:00+09:00")
    assert parse_instant("23:30", TOKYO, after=now, flag="--until") == at(
        "2026-12-01T23:30:00+09:00"
    )


def test_until_hhmm_is_tomorrow_when_passed() -> None:
    now = at("2026-12-01T23:45:00+09:00")
    assert parse_instant("23:30", TOKYO, after=now, flag="--until") == at(
        "2026-12-02T23:30:00+09:00"
    )


def test_until_now_exactly_means_tomorrow() -> None:
    now = at("2026-12-01T23:30:00+09:00")
    assert parse_instant("23:30", TOKYO, after=now, flag="--until") == at(
        "2026-12-02T23:30:00+09:00"
    )


def test_until_hhmm_is_read_in_the_schedules_zone_not_utc() -> None:
    # 20:00 UTC on Dec 1 is 15:00 in New York: 18:00 there is still ahead today.
    now = at("2026-12-01T20:00:00+00:00")
    result = parse_instant("18:00", NEW_YORK, after=now, flag="--until")
    assert result == at("2026-12-01T18:00:00-05:00")


def test_until_24_00_is_the_coming_midnight() -> None:
    now = at("2026-12-01T21:00:00+09:00")
    assert parse_instant("24:00", TOKYO, after=now, flag="--until") == at(
        "2026-12-02T00:00:00+09:00"
    )


def test_until_single_digit_hour() -> None:
    now = at("2026-12-01T21:00:00+09:00")
    assert parse_instant("7:15", TOKYO, after=now, flag="--until") == at(
        "2026-12-02T07:15:00+09:00"
    )


def test_until_in_the_spring_forward_gap_moves_to_the_end_of_the_gap() -> None:
    # 2026-03-08 02:30 does not exist in New York; the first instant after the gap is 03:00 EDT.
    now = at("2026-03-08T01:00:00-05:00")
    assert parse_instant("02:30", NEW_YORK, after=now, flag="--until") == at(
        "2026-03-08T03:00:00-04:00"
    )


def test_until_iso_with_offset_is_taken_as_written() -> None:
    now = at("2026-12-01T21:00:00+09:00")
    value = parse_instant("2026-12-01T14:30:00Z", TOKYO, after=now, flag="--until")
    assert value == at("2026-12-01T23:30:00+09:00")


def test_until_naive_iso_is_local_to_the_schedule() -> None:
    now = at("2026-12-01T21:00:00+09:00")
    value = parse_instant("2026-12-02T01:00", TOKYO, after=now, flag="--until")
    assert value == at("2026-12-02T01:00:00+09:00")
    # Never pytz's LMT offset (+09:19) for Tokyo.
    assert value.utcoffset() == timedelta(hours=9)


@pytest.mark.parametrize("text", ["tonight", "25:00", "23:61", "2026-13-01T10:00"])
def test_bad_times_name_the_flag_and_the_forms(text: str) -> None:
    with pytest.raises(OverrideError, match="--until"):
        parse_instant(text, TOKYO, after=at("2026-12-01T21:00:00+09:00"), flag="--until")


def test_length_forms_and_errors() -> None:
    assert parse_length("2h", flag="--for") == timedelta(hours=2)
    assert parse_length("1d12h", flag="--for") == timedelta(days=1, hours=12)
    assert parse_length("90m", flag="--for") == timedelta(minutes=90)
    with pytest.raises(OverrideError, match="--for: 'two hours' is not a duration"):
        parse_length("two hours", flag="--for")
    with pytest.raises(OverrideError, match="no time at all"):
        parse_length("0h", flag="--for")


@given(
    now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)),
    minutes=st.integers(min_value=0, max_value=24 * 60),
    timezone=st.sampled_from([TOKYO, NEW_YORK, "Europe/London", "Australia/Lord_Howe", "UTC"]),
)
def test_next_wall_clock_is_the_next_time_the_clock_shows_it(
    now: datetime, minutes: int, timezone: str
) -> None:
    instant = now.replace(tzinfo=UTC)
    result = next_wall_clock(minutes, tz_name=timezone, after=instant)
    assert result > instant
    # At most a day and the largest DST shift ahead.
    assert result - instant <= timedelta(hours=26)
    local = to_local(result, zone(timezone))
    wanted = minutes % (24 * 60)
    shown = local.hour * 60 + local.minute
    # Either the clock shows it, or the time fell in a DST gap and moved to the gap's end.
    assert shown == wanted or (shown > wanted and shown - wanted <= 60)


# Length limit ---------------------------------------------------------------------------------
def test_limit_allows_exactly_the_limit() -> None:
    start = at("2026-12-01T21:00:00+09:00")
    check_length(start, start + WEEK, WEEK)


def test_limit_message_names_the_limit_and_both_ways_to_raise_it() -> None:
    start = at("2026-12-01T21:00:00+09:00")
    with pytest.raises(OverrideError) as err:
        check_length(start, start + timedelta(days=9, hours=2), WEEK)
    message = str(err.value)
    assert "9 days 2 hours" in message
    assert "limit of 7 days" in message
    assert "--max 10d" in message
    assert "TEIJI_MAX_OVERRIDE=10d" in message


@given(
    length=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=30)),
    limit=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=30)),
)
def test_build_accepts_exactly_the_overrides_within_the_limit(
    length: timedelta, limit: timedelta
) -> None:
    start = at("2026-12-01T21:00:00+09:00")
    length = timedelta(seconds=int(length.total_seconds()))  # documents keep whole seconds
    limit = timedelta(seconds=int(limit.total_seconds()))
    kwargs = {
        "state": "running",
        "start": start,
        "until": start + length,
        "reason": "late work",
        "created_by": "suzuki",
        "now": start,
        "limit": limit,
        "override_id": "3fa2c1d0",
    }
    if length <= limit:
        built = build_override(schedule(), **kwargs)  # type: ignore[arg-type]
        assert built.until - (built.start or start) == length
    else:
        with pytest.raises(OverrideError, match="longer than the limit"):
            build_override(schedule(), **kwargs)  # type: ignore[arg-type]


# Building -------------------------------------------------------------------------------------
def test_build_writes_the_schedules_zone_to_the_second_with_scope() -> None:
    now = at("2026-12-01T12:00:07.5+00:00")
    built = build_override(
        schedule("c1/web", NEW_YORK, region="us-east-1"),
        state="stopped",
        start=now,
        until=now + timedelta(hours=2),
        reason="  maintenance  ",
        created_by="tanaka",
        now=now,
        limit=WEEK,
        override_id="0a1b2c3d",
    )
    assert built.key == "c1/web@us-east-1"
    assert built.start is not None and built.start.isoformat() == "2026-12-01T07:00:07-05:00"
    assert built.until.isoformat() == "2026-12-01T09:00:07-05:00"
    assert built.created_at == built.start
    assert (built.state, built.reason, built.created_by, built.id) == (
        "stopped",
        "maintenance",
        "tanaka",
        "0a1b2c3d",
    )


@pytest.mark.parametrize(
    ("start", "until", "message"),
    [
        ("2026-12-01T21:00:00+09:00", "2026-12-01T20:00:00+09:00", "before it starts"),
        ("2026-12-01T18:00:00+09:00", "2026-12-01T19:00:00+09:00", "already passed"),
    ],
)
def test_build_refuses_spans_that_end_too_early(start: str, until: str, message: str) -> None:
    with pytest.raises(OverrideError, match=message):
        build_override(
            schedule(),
            state="running",
            start=at(start),
            until=at(until),
            reason="x",
            created_by=None,
            now=at("2026-12-01T20:30:00+09:00"),
            limit=WEEK,
            override_id="3fa2c1d0",
        )


def test_build_needs_a_reason() -> None:
    now = at("2026-12-01T20:30:00+09:00")
    with pytest.raises(OverrideError, match="--reason must say why"):
        build_override(
            schedule(),
            state="running",
            start=now,
            until=now + timedelta(hours=1),
            reason="   ",
            created_by=None,
            now=now,
            limit=WEEK,
            override_id="3fa2c1d0",
        )


def test_build_reports_document_problems_in_words() -> None:
    now = at("2026-12-01T20:30:00+09:00")
    with pytest.raises(OverrideError, match="reason: too long"):
        build_override(
            schedule(),
            state="running",
            start=now,
            until=now + timedelta(hours=1),
            reason="x" * 2000,
            created_by=None,
            now=now,
            limit=WEEK,
            override_id="3fa2c1d0",
        )


# Extending ------------------------------------------------------------------------------------
def test_extend_for_adds_to_the_current_end() -> None:
    now = at("2026-12-01T22:00:00+09:00")
    value = extended_until(override(), until=None, length=timedelta(hours=1), now=now)
    assert value == at("2026-12-02T00:30:00+09:00")


def test_extend_for_an_ended_override_counts_from_now() -> None:
    now = at("2026-12-02T09:00:00+09:00")
    value = extended_until(override(), until=None, length=timedelta(hours=1), now=now)
    assert value == at("2026-12-02T10:00:00+09:00")


def test_extend_keeps_everything_but_the_end() -> None:
    original = override(created_by="suzuki", created_at=at("2026-12-01T20:00:00+09:00"))
    now = at("2026-12-01T22:00:00+09:00")
    extended = extend_override(original, until=at("2026-12-02T01:00:00+09:00"), now=now, limit=WEEK)
    assert extended.until == at("2026-12-02T01:00:00+09:00")
    assert extended.model_dump(exclude={"until"}) == original.model_dump(exclude={"until"})


def test_extend_measures_the_limit_from_the_start_not_from_now() -> None:
    original = override(
        start=at("2026-12-01T21:00:00+09:00"), until=at("2026-12-05T21:00:00+09:00")
    )
    now = at("2026-12-05T20:00:00+09:00")
    with pytest.raises(OverrideError, match="limit of 7 days"):
        extend_override(original, until=at("2026-12-09T21:00:00+09:00"), now=now, limit=WEEK)
    extended = extend_override(original, until=at("2026-12-08T21:00:00+09:00"), now=now, limit=WEEK)
    assert extended.until == at("2026-12-08T21:00:00+09:00")


def test_extend_without_a_start_measures_from_when_it_was_written() -> None:
    original = override(start=None, created_at=at("2026-12-01T12:00:00+09:00"))
    with pytest.raises(OverrideError, match="limit"):
        extend_override(
            original,
            until=at("2026-12-08T13:00:00+09:00"),
            now=at("2026-12-01T22:00:00+09:00"),
            limit=WEEK,
        )


# Ids, names and status -------------------------------------------------------------------------
def test_new_ids_are_8_hex_characters() -> None:
    assert re.fullmatch(r"[0-9a-f]{8}", new_override_id(set()))


def test_new_ids_avoid_the_services_other_ids() -> None:
    tokens = iter(["aaaaaaaa", "aaaaaaaa", "bbbbbbbb"])
    assert new_override_id({"aaaaaaaa"}, token=lambda: next(tokens)) == "bbbbbbbb"


def test_new_id_gives_up_with_a_sentence() -> None:
    with pytest.raises(OverrideError, match="could not find a free override id"):
        new_override_id({"aaaaaaaa"}, token=lambda: "aaaaaaaa")


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:sts::123456789012:assumed-role/Admin/suzuki", "suzuki"),
        ("arn:aws:iam::123456789012:user/ops/tanaka", "tanaka"),
        ("arn:aws:iam::123456789012:root", "root"),
        ("arn:aws:sts::123456789012:assumed-role/Role/sato@example.com", "sato@example.com"),
        ("", None),
        (None, None),
    ],
)
def test_caller_name_is_the_arns_last_part(arn: str | None, name: str | None) -> None:
    assert caller_name(arn) == name


def test_status_active_upcoming_expired() -> None:
    item = override()
    assert override_status(item, at("2026-12-01T20:00:00+09:00")) == "upcoming"
    assert override_status(item, at("2026-12-01T21:00:00+09:00")) == "active"
    assert override_status(item, at("2026-12-01T23:30:00+09:00")) == "expired"
    assert override_status(override(start=None), at("2026-12-01T10:00:00+09:00")) == "active"


STORED = [
    StoredOverride("c1/web#3fa2c1d0", override()),
    StoredOverride("c1/api#3fa2c1d0", override(service="c1/api")),
    StoredOverride("c1/web@us-east-1#77aa00ff", override(region="us-east-1", id="77aa00ff")),
    StoredOverride("c1/web#broken00", None),
]


def test_find_by_unique_id() -> None:
    assert find_override("77aa00ff", STORED).sk == "c1/web@us-east-1#77aa00ff"
    assert find_override("broken00", STORED).override is None


def test_find_by_service_and_id() -> None:
    assert find_override("c1/api#3fa2c1d0", STORED).key == "c1/api"
    # The scope may be left out when that is unique.
    assert find_override("c1/web#77aa00ff", STORED).id == "77aa00ff"


def test_an_ambiguous_id_asks_for_the_service() -> None:
    with pytest.raises(OverrideError, match=r"names 2 overrides .*write SERVICE#ID"):
        find_override("3fa2c1d0", STORED)


def test_an_unknown_id_lists_what_is_stored() -> None:
    with pytest.raises(OverrideError, match="no override 'deadbeef'; stored overrides: 3fa2"):
        find_override("deadbeef", STORED)
