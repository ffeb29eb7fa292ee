"""Validation errors: one test per kind of mistake, asserting the exact line an operator reads."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.documents import Calendar, Override, Schedule, describe_value
from schemas.validation import (
    DocumentSet,
    Problem,
    duration_text,
    is_country,
    parse_document,
    validate_documents,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SOURCE = "stg.yaml"
SCHEDULE_LABEL = "stg.yaml: schedule example-cluster/example-service-stg"


def schedule(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "kind": "schedule",
        "service": "example-cluster/example-service-stg",
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def window(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"days": "mon-fri", "start": "05:00", "end": "22:00"}
    raw.update(changes)
    return raw


def override(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "kind": "override",
        "service": "example-cluster/example-service-stg",
        "state": "running",
        "start": "2026-12-01T22:00:00+09:00",
        "until": "2026-12-01T23:30:00+09:00",
        "reason": "release verification",
        "id": "abc",
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def lines(raw: object, index: int = 1) -> list[str]:
    result = parse_document(raw, source=SOURCE, index=index)
    assert isinstance(result, list), f"expected problems, got {result!r}"
    return [str(p) for p in result]


def only_line(raw: object) -> str:
    found = lines(raw)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------------------------
# The Problem line


def test_problem_reads_source_document_path_message() -> None:
    problem = Problem("a.yaml", "calendar company", "dates[0]", "expected a date")
    assert str(problem) == "a.yaml: calendar company: dates[0]: expected a date"


def test_valid_documents_parse_to_models() -> None:
    assert isinstance(parse_document(schedule(), source=SOURCE, index=1), Schedule)
    assert isinstance(parse_document(override(), source=SOURCE, index=1), Override)
    calendar = {"kind": "calendar", "name": "company", "dates": ["2026-12-29"]}
    assert isinstance(parse_document(calendar, source=SOURCE, index=1), Calendar)


# --------------------------------------------------------------------------------------------
# Shape and kind


def test_not_a_mapping() -> None:
    assert only_line(["kind", "schedule"]) == (
        "stg.yaml: document 1: -: expected a mapping with a kind (schedule, calendar, override, "
        "profile), got a list"
    )


def test_missing_kind() -> None:
    raw = schedule()
    del raw["kind"]
    assert only_line(raw) == (
        "stg.yaml: document 1: kind: required; use one of: schedule, calendar, override, profile"
    )


def test_bad_kind_suggests_the_closest() -> None:
    assert only_line(schedule(kind="schedul")) == (
        "stg.yaml: document 1: kind: 'schedul' is not allowed; use one of: schedule, calendar, "
        "override, profile (did you mean 'schedule'?)"
    )


def test_kind_of_wrong_type() -> None:
    assert only_line(schedule(kind=3)).endswith(
        "kind: the number 3 is not allowed; use one of: schedule, calendar, override, profile"
    )


def test_typo_in_field_name_suggests_and_lists_allowed() -> None:
    assert only_line(schedule(timezon="Asia/Tokyo")) == (
        f"{SCHEDULE_LABEL}: timezon: unknown field 'timezon' (did you mean 'timezone'? allowed: "
        "kind, service, mode, timezone, windows, cron, holidays, running, stopped, targets, "
        "account, region, description, wake, profile)"
    )


def test_typo_in_nested_field_lists_that_models_fields() -> None:
    raw = schedule(windows=[{"day": "mon", "start": "05:00", "end": "22:00"}])
    assert lines(raw) == [
        f"{SCHEDULE_LABEL}: windows[0].days: required; write day names such as mon-fri or a "
        "list of them",
        f"{SCHEDULE_LABEL}: windows[0].day: unknown field 'day' (did you mean 'days'? allowed: "
        "days, start, end)",
    ]


def test_unknown_field_far_from_any_lists_allowed_only() -> None:
    assert only_line(schedule(colour="red")).endswith(
        "colour: unknown field 'colour' (allowed: kind, service, mode, timezone, windows, cron, "
        "holidays, running, stopped, targets, account, region, description, wake, profile)"
    )


def test_literal_lists_choices() -> None:
    assert only_line(schedule(mode="sometimes")) == (
        f"{SCHEDULE_LABEL}: mode: 'sometimes' is not allowed; use one of: scheduled, always_on, "
        "always_off, unmanaged"
    )


def test_literal_suggests_close_value() -> None:
    assert only_line(schedule(targets="repiar")).endswith(
        "targets: 'repiar' is not allowed; use one of: verify, repair, ignore "
        "(did you mean 'repair'?)"
    )


def test_missing_required_field_says_what_to_write() -> None:
    raw = schedule()
    del raw["service"]
    assert only_line(raw) == (
        "stg.yaml: document 1: service: required; write '<cluster>/<service>' as text, for "
        "example example-cluster/example-service-stg"
    )


def test_bad_service_name() -> None:
    assert only_line(schedule(service="example-service-stg")) == (
        "stg.yaml: schedule example-service-stg: service: 'example-service-stg' is not "
        "'<cluster>/<service>' (letters, digits, '-' and '_', for example "
        "example-cluster/example-service-stg)"
    )


def test_no_pydantic_boilerplate_in_any_message() -> None:
    raws = [
        schedule(mode="x", timezone=5, windows=[window(days="xyz", start=1, end="25:00")]),
        override(until="soon", reason=""),
        {"kind": "calendar", "name": "JP", "dates": ["2026-02-30"]},
    ]
    for raw in raws:
        for line in lines(raw):
            for boilerplate in ("Value error", "Input should", "pydantic", "type=", "[type"):
                assert boilerplate not in line


# --------------------------------------------------------------------------------------------
# Windows


def test_bad_day_name() -> None:
    assert only_line(schedule(windows=[window(days="mon-fir")])) == (
        f"{SCHEDULE_LABEL}: windows[0].days: unknown day 'fir'; use mon, tue, wed, thu, fri, "
        "sat, sun (or the full names, tues, thur, thurs; any case), ranges such as mon-fri or "
        "fri-mon, lists such as sat,sun, or daily"
    )


def test_days_of_wrong_type() -> None:
    assert only_line(schedule(windows=[window(days=5)])) == (
        f"{SCHEDULE_LABEL}: windows[0].days: expected the days as one text such as 'mon-fri' "
        "or 'sat,sun', got the number 5"
    )


@pytest.mark.parametrize(
    ("days", "got"),
    [
        (["mon", "wed-fri"], "a list; write 'mon,wed-fri'"),
        (("sat", "sun"), "a list; write 'sat,sun'"),
        ({"sun", "sat"}, "a set; write 'sat,sun'"),  # a DynamoDB string set (SS)
        (["mon", 1], "a list"),
        ([], "a list"),
    ],
)
def test_days_are_one_text_never_a_list(days: object, got: str) -> None:
    assert only_line(schedule(windows=[window(days=days)])) == (
        f"{SCHEDULE_LABEL}: windows[0].days: expected the days as one text such as 'mon-fri' "
        f"or 'sat,sun', got {got}"
    )


@pytest.mark.parametrize("spelling", ["thu", "Thu", "THURSDAY", "thur", "thurs"])
def test_documented_day_spellings_are_accepted(spelling: str) -> None:
    parsed = parse_document(schedule(windows=[window(days=spelling)]), source=SOURCE, index=1)
    assert isinstance(parsed, Schedule)
    assert parsed.windows[0].weekdays == frozenset({3})


def test_bad_time() -> None:
    assert only_line(schedule(windows=[window(start="5am")])) == (
        f"{SCHEDULE_LABEL}: windows[0].start: '5am' is not a time HH:MM (00:00 to 23:59)"
    )


def test_bad_end_time_mentions_24() -> None:
    assert only_line(schedule(windows=[window(end="25:00")])).endswith(
        "windows[0].end: '25:00' is not a time HH:MM (00:00 to 24:00)"
    )


def test_24_00_as_start() -> None:
    assert only_line(schedule(windows=[window(start="24:00", end="06:00")])) == (
        f"{SCHEDULE_LABEL}: windows[0].start: 24:00 is allowed only as an end; a window that "
        "starts at midnight starts at 00:00"
    )


def test_start_equal_to_end() -> None:
    assert only_line(schedule(windows=[window(start="05:00", end="05:00")])) == (
        f"{SCHEDULE_LABEL}: windows[0].end: start and end are both 05:00: a window must have a "
        "length (00:00 to 24:00 is a whole day)"
    )


def test_whole_day_and_overnight_windows_are_fine() -> None:
    whole = parse_document(
        schedule(windows=[window(start="00:00", end="24:00")]), source=SOURCE, index=1
    )
    night = parse_document(
        schedule(windows=[window(start="22:00", end="06:00")]), source=SOURCE, index=1
    )
    assert isinstance(whole, Schedule) and not whole.windows[0].overnight
    assert isinstance(night, Schedule) and night.windows[0].overnight


def test_a_number_as_time_suggests_hhmm_then_base_60() -> None:
    # 300 is most likely 03:00 written without a colon; a YAML 1.1 tool would have made it
    # of an unquoted 05:00.
    assert only_line(schedule(windows=[window(start=300)])) == (
        f'{SCHEDULE_LABEL}: windows[0].start: expected a time as quoted text "HH:MM", for '
        'example "05:00", got the number 300; if you meant 03:00, write "03:00" in quotes; '
        'or, if a YAML 1.1 tool wrote it, "05:00" (such tools read an unquoted 05:00 as 300, '
        "base 60)"
    )


def test_scheduled_mode_without_windows_or_cron() -> None:
    assert only_line(schedule(windows=[])) == (
        f"{SCHEDULE_LABEL}: -: mode scheduled needs at least one entry in windows or cron "
        "(use mode: always_off to keep the service stopped)"
    )


# --------------------------------------------------------------------------------------------
# Cron, timezone, holidays, capacity


def test_bad_cron() -> None:
    raw = schedule(windows=None, cron=[{"start": "0 5 * * mon-fri", "stop": "0 25 * * *"}])
    assert only_line(raw) == (
        f"{SCHEDULE_LABEL}: cron[0].stop: '0 25 * * *' is not a 5-field cron expression "
        "(minute hour day month weekday), for example '0 5 * * mon-fri'"
    )


def test_cron_with_six_fields_is_refused() -> None:
    raw = schedule(windows=None, cron=[{"start": "0 0 5 * * *", "stop": "0 22 * * *"}])
    assert "cron[0].start: '0 0 5 * * *' is not a 5-field cron expression" in only_line(raw)


def test_cron_pair_missing_stop() -> None:
    raw = schedule(windows=None, cron=[{"start": "0 5 * * *"}])
    assert only_line(raw) == (
        f"{SCHEDULE_LABEL}: cron[0].stop: required; write a cron expression such as "
        "'0 22 * * mon-fri'"
    )


def test_unknown_timezone() -> None:
    assert only_line(schedule(timezone="Asia/Tokio")) == (
        f"{SCHEDULE_LABEL}: timezone: unknown timezone 'Asia/Tokio'; use an IANA name such as "
        "Asia/Tokyo, UTC or America/New_York"
    )


def test_date_in_holidays_points_to_calendars() -> None:
    assert only_line(schedule(holidays=[date(2026, 12, 29)])) == (
        f"{SCHEDULE_LABEL}: holidays: expected country codes such as JP or calendar document "
        "names (dates belong in a calendar document), got the date 2026-12-29 in the list"
    )


def test_min_greater_than_max() -> None:
    assert only_line(schedule(running={"min_capacity": 3, "max_capacity": 1})) == (
        f"{SCHEDULE_LABEL}: running: min_capacity 3 is greater than max_capacity 1"
    )


@pytest.mark.parametrize(
    ("running", "message"),
    [
        ({"desired_count": 5, "max_capacity": 4}, "desired_count 5 is above max_capacity 4"),
        ({"desired_count": 0, "min_capacity": 1}, "desired_count 0 is below min_capacity 1"),
    ],
)
def test_desired_outside_bounds(running: dict[str, int], message: str) -> None:
    assert only_line(schedule(running=running)) == f"{SCHEDULE_LABEL}: running: {message}"


def test_negative_count() -> None:
    assert only_line(schedule(stopped={"desired_count": -1})) == (
        f"{SCHEDULE_LABEL}: stopped.desired_count: must be at least 0, got the number -1"
    )


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (True, "true"),
        (1.5, "the number 1.5"),
        (Decimal("2.5"), "the number 2.5"),
    ],
)
def test_count_that_is_not_a_whole_number(value: object, got: str) -> None:
    assert only_line(schedule(running={"desired_count": value})) == (
        f"{SCHEDULE_LABEL}: running.desired_count: expected a whole number from 0 to 100000, "
        f"got {got}"
    )


@pytest.mark.parametrize("text", ["2", "two", " 2 ", ""])
@pytest.mark.parametrize("field", ["desired_count", "min_capacity", "max_capacity"])
def test_count_written_as_text_is_refused(field: str, text: str) -> None:
    # {"S": "2"} in the console: the stored shape of a count is a number (N).
    problems = parse_document(schedule(running={field: text}), source=SOURCE, index=1)
    assert isinstance(problems, list)
    assert [str(p) for p in problems] == [
        f"{SCHEDULE_LABEL}: running.{field}: expected a whole number from 0 to 100000, got "
        f"{describe_value(text)}; write it as a number, not text (in DynamoDB a number N, not "
        "a string S)"
    ]


def test_capacity_of_wrong_type() -> None:
    assert only_line(schedule(running=2)) == (
        f"{SCHEDULE_LABEL}: running: expected a mapping with desired_count, min_capacity and "
        "max_capacity, got the number 2"
    )


def test_norway_is_a_country_code() -> None:
    parsed = parse_document(schedule(holidays=["NO"]), source=SOURCE, index=1)
    assert isinstance(parsed, Schedule) and parsed.holidays == ["NO"]


# --------------------------------------------------------------------------------------------
# DynamoDB values


def test_decimal_numbers_and_string_sets_from_dynamodb_are_accepted() -> None:
    raw = schedule(
        windows=[{"days": "sat,sun", "start": "10:00", "end": "18:00"}],
        holidays={"JP", "company"},
        running={"desired_count": Decimal("2"), "min_capacity": Decimal(1), "max_capacity": 4},
        stopped={"desired_count": Decimal("0")},
    )
    parsed = parse_document(raw, source="dynamodb:teiji-config", index=3)
    assert isinstance(parsed, Schedule)
    assert parsed.windows[0].weekdays == frozenset({5, 6})
    assert parsed.holidays == ["JP", "company"]
    assert parsed.running is not None
    assert (parsed.running.desired_count, parsed.running.min_capacity) == (2, 1)
    assert isinstance(parsed.running.desired_count, int)
    assert parsed.stopped.desired_count == 0


def test_string_set_of_calendar_dates_is_accepted() -> None:
    raw = {"kind": "calendar", "name": "company", "dates": {"2026-12-30", "2026-12-29"}}
    parsed = parse_document(raw, source=SOURCE, index=1)
    assert isinstance(parsed, Calendar)
    assert parsed.dates == [date(2026, 12, 29), date(2026, 12, 30)]


# --------------------------------------------------------------------------------------------
# Calendars and overrides


def test_calendar_date_as_number_is_refused_not_read_as_unix_time() -> None:
    raw = {"kind": "calendar", "name": "company", "dates": [20261229]}
    assert only_line(raw) == (
        "stg.yaml: calendar company: dates[0]: expected a date such as 2026-12-29, "
        "got the number 20261229"
    )


def test_calendar_range_backwards() -> None:
    raw = {
        "kind": "calendar",
        "name": "company",
        "ranges": [{"from": "2027-01-03", "to": "2026-12-29"}],
    }
    assert only_line(raw) == (
        "stg.yaml: calendar company: ranges[0].to: 'to' 2026-12-29 is before 'from' 2027-01-03"
    )


def test_calendar_named_like_a_country() -> None:
    raw = {"kind": "calendar", "name": "JP", "dates": ["2026-12-29"]}
    assert only_line(raw) == (
        "stg.yaml: calendar JP: name: 'JP' looks like a country code; choose a name such as "
        "company or jp-office"
    )


def test_naive_until() -> None:
    assert only_line(override(start=None, until="2026-12-01T23:30:00")) == (
        "stg.yaml: override example-cluster/example-service-stg#abc: until: 2026-12-01T23:30:00 "
        "has no UTC offset; write it with one, for example 2026-12-01T23:30:00+09:00"
    )


def test_until_before_start() -> None:
    raw = override(start="2026-12-02T00:00:00+09:00", until="2026-12-01T23:30:00+09:00")
    assert only_line(raw) == (
        "stg.yaml: override example-cluster/example-service-stg#abc: until: until "
        "2026-12-01T23:30:00+09:00 is not after start 2026-12-02T00:00:00+09:00"
    )


def test_override_without_id_is_named_by_position() -> None:
    assert only_line(override(id=None, reason="")) == (
        "stg.yaml: override example-cluster/example-service-stg (document 1): reason: "
        "must not be empty"
    )


def test_override_state_typo() -> None:
    assert only_line(override(state="started")).endswith(
        "state: 'started' is not allowed; use one of: running, stopped"
    )


# --------------------------------------------------------------------------------------------
# Across documents


def validate(*raws: object, **kwargs: Any) -> tuple[DocumentSet, list[str]]:
    items = [(SOURCE, i, raw) for i, raw in enumerate(raws, start=1)]
    kwargs.setdefault("now", NOW)
    docs, problems = validate_documents(items, **kwargs)
    return docs, [str(p) for p in problems]


def test_valid_set_is_keyed() -> None:
    calendar = {"kind": "calendar", "name": "company", "dates": ["2026-12-29"]}
    docs, problems = validate(schedule(holidays=["JP", "company"]), calendar, override())
    assert problems == []
    assert list(docs.schedules) == ["example-cluster/example-service-stg"]
    assert list(docs.calendars) == ["company"]
    assert [o.id for o in docs.overrides] == ["abc"]
    assert docs.overrides_for("example-cluster/example-service-stg") == docs.overrides


def test_unknown_calendar_names_field_and_lists_calendars() -> None:
    calendar = {"kind": "calendar", "name": "company", "dates": ["2026-12-29"]}
    docs, problems = validate(schedule(holidays=["JP", "compny"]), calendar)
    assert problems == [
        f"{SCHEDULE_LABEL}: holidays[1]: no calendar named 'compny' (did you mean 'company'?); "
        "calendars defined: company; or use a country code such as JP or US"
    ]
    assert docs.schedules == {}


def test_an_invalid_calendar_is_named_once_with_the_schedules_it_stops() -> None:
    bad = {"kind": "calendar", "name": "company", "dates": ["2026-12-29", "2026-02-30"]}
    other = schedule(service="example-cluster/example-service-dev", holidays=["company"])
    unrelated = schedule(service="example-cluster/batch", holidays=["JP"])
    docs, problems = validate(schedule(holidays=["JP", "company"]), bad, other, unrelated)
    why = [p for p in problems if "2026-02-30" in p]
    assert len(why) == 1 and why[0].startswith("stg.yaml: calendar company: dates[1]: ")
    assert (
        f"{SCHEDULE_LABEL}: holidays[1]: calendar 'company' is invalid (its problems are "
        "listed under calendar company); this schedule is not acted on until it is fixed"
    ) in problems
    assert (
        "stg.yaml: calendar company: -: this calendar is invalid, so 2 schedules that list it "
        "cannot be decided until it is fixed: example-cluster/example-service-dev, "
        "example-cluster/example-service-stg"
    ) in problems
    assert not any("no calendar named" in p for p in problems)
    assert len(problems) == 4  # the date, the calendar's summary, one line per schedule
    assert list(docs.schedules) == ["example-cluster/batch"]


def test_a_schedule_naming_a_missing_and_an_invalid_calendar_gets_both() -> None:
    bad = {"kind": "calendar", "name": "company", "ranges": [{"from": "2026-12-30", "to": "x"}]}
    _, problems = validate(schedule(holidays=["company", "compny2"]), bad)
    assert any("holidays[0]: calendar 'company' is invalid" in p for p in problems)
    assert any("holidays[1]: no calendar named 'compny2'" in p for p in problems)


def test_the_first_pass_without_the_table_still_checks_country_codes() -> None:
    _, problems = validate(schedule(holidays=["company", "XX"]), check_calendars=False)
    assert len(problems) == 1 and "holidays[1]: 'XX' is not a country code" in problems[0]


def test_lowercase_country_code_suggests_the_country() -> None:
    _, problems = validate(schedule(holidays=["jp"]))
    assert problems == [
        f"{SCHEDULE_LABEL}: holidays[0]: no calendar named 'jp' (did you mean the country "
        "'JP'?); calendars defined: none; or use a country code such as JP or US"
    ]


def test_unknown_country_code() -> None:
    _, problems = validate(schedule(holidays=["XX"]))
    assert problems == [
        f"{SCHEDULE_LABEL}: holidays[0]: 'XX' is not a country code the holidays library "
        "knows; use an ISO 3166 code such as JP, US or GB, or the name of a calendar document"
    ]


def test_unknown_subdivision_lists_the_known_ones() -> None:
    _, problems = validate(schedule(holidays=["JP-99"]))
    assert len(problems) == 1
    assert problems[0].startswith(f"{SCHEDULE_LABEL}: holidays[0]: JP has no subdivision '99'")


def test_calendars_defined_elsewhere_count_as_known() -> None:
    docs, problems = validate(schedule(holidays=["company"]), known_calendars=["company"])
    assert problems == []
    assert len(docs.schedules) == 1


def test_duplicate_schedule() -> None:
    docs, problems = validate(schedule(), schedule(mode="always_on"))
    assert problems == [
        f"{SCHEDULE_LABEL}: service: a second schedule for example-cluster/example-service-stg; "
        "the first is document 1 of stg.yaml; keep one of them"
    ]
    assert docs.schedules["example-cluster/example-service-stg"].mode == "scheduled"


def test_same_service_in_another_region_is_not_a_duplicate() -> None:
    docs, problems = validate(schedule(), schedule(region="us-east-1"))
    assert problems == []
    assert sorted(docs.schedules) == [
        "example-cluster/example-service-stg",
        "example-cluster/example-service-stg@us-east-1",
    ]


def test_duplicate_calendar() -> None:
    calendar = {"kind": "calendar", "name": "company", "dates": ["2026-12-29"]}
    _, problems = validate(calendar, calendar)
    assert problems == [
        "stg.yaml: calendar company: name: a second calendar for company; the first is "
        "document 1 of stg.yaml; keep one of them"
    ]


def test_override_too_long_says_limit_and_how_to_change_it() -> None:
    raw = override(start="2026-12-01T00:00:00+09:00", until="2026-12-10T02:00:00+09:00")
    docs, problems = validate(raw)
    assert problems == [
        "stg.yaml: override example-cluster/example-service-stg#abc: until: the override lasts "
        "9 days 2 hours from its start, longer than the limit of 7 days; end it sooner, or "
        "raise the limit with TEIJI_MAX_OVERRIDE (for example TEIJI_MAX_OVERRIDE=10d)"
    ]
    assert docs.overrides == []


def test_override_without_start_is_measured_from_now() -> None:
    raw = override(start=None, until="2026-12-01T15:00:00+00:00")
    _, problems = validate(raw, max_override=timedelta(hours=2))
    assert problems == [
        "stg.yaml: override example-cluster/example-service-stg#abc: until: the override lasts "
        "3 hours from now (it has no start), longer than the limit of 2 hours; end it sooner, "
        "or raise the limit with TEIJI_MAX_OVERRIDE (for example TEIJI_MAX_OVERRIDE=1d)"
    ]


def test_override_that_already_ended_is_valid() -> None:
    raw = override(start=None, until="2026-11-01T00:00:00+09:00")
    docs, problems = validate(raw)
    assert problems == []
    assert len(docs.overrides) == 1 and not docs.overrides[0].active_at(NOW)


def test_override_at_exactly_the_limit_is_fine() -> None:
    raw = override(start="2026-12-01T00:00:00+09:00", until="2026-12-08T00:00:00+09:00")
    assert validate(raw)[1] == []


def test_duplicate_override_id() -> None:
    _, problems = validate(override(), override())
    assert problems == [
        "stg.yaml: override example-cluster/example-service-stg#abc: id: a second override "
        "for abc; the first is document 1 of stg.yaml; keep one of them"
    ]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        validate_documents([], now=datetime(2026, 12, 1, 12, 0))


def test_problems_of_all_documents_are_reported_together() -> None:
    _, problems = validate(schedule(mode="x"), {"kind": "calendar"}, "text")
    assert [p.split(": ")[1] for p in problems] == [
        "schedule example-cluster/example-service-stg",
        "document 2",
        "document 3",
    ]


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(days=7), "7 days"),
        (timedelta(days=1, hours=1, minutes=1), "1 day 1 hour 1 minute"),
        (timedelta(minutes=90), "1 hour 30 minutes"),
        (timedelta(seconds=5), "less than a minute"),
    ],
)
def test_duration_text(span: timedelta, text: str) -> None:
    assert duration_text(span) == text


@pytest.mark.parametrize("name", ["JP", "US", "NO", "GB", "US-NY", "JPN", "XX", "jp", "US-ZZ"])
def test_country_codes_agree_with_the_decision_engine(name: str) -> None:
    from engine.calendars import HolidayCalendars

    assert is_country(name) == HolidayCalendars.is_country(name)


# --------------------------------------------------------------------------------------------
# Never raises


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.decimals()
    | st.text(max_size=300)
    | st.dates()
    | st.datetimes()
)
_keys = st.sampled_from(
    [
        "kind",
        "service",
        "mode",
        "timezone",
        "windows",
        "days",
        "start",
        "end",
        "cron",
        "stop",
        "holidays",
        "running",
        "stopped",
        "desired_count",
        "min_capacity",
        "max_capacity",
        "name",
        "dates",
        "ranges",
        "from",
        "to",
        "state",
        "until",
        "reason",
        "id",
        "account",
        "region",
    ]
) | st.text(max_size=20)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_keys, inner, max_size=6)
        | st.frozensets(st.text(max_size=10), max_size=3)
    ),
    max_leaves=20,
)
_documents = (
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["schedule", "calendar", "override", "other"])},
        optional={
            "service": st.sampled_from(["a/b", "example-cluster/svc", "x"]) | st.text(max_size=30),
            "windows": st.lists(st.dictionaries(_keys, _values, max_size=4), max_size=3),
            "holidays": _values,
            "until": _values,
            "start": _values,
            "name": _values,
            "running": st.dictionaries(_keys, _values, max_size=4),
        },
    ).map(dict)
    | _values
)


@settings(max_examples=300, deadline=None)
@given(raw=_documents, index=st.integers(min_value=1, max_value=10_000))
def test_parse_document_never_raises_and_returns_readable_problems(raw: object, index: int) -> None:
    result = parse_document(raw, source="fuzz.yaml", index=index)
    if isinstance(result, list):
        assert result, "an invalid document has at least one problem"
        for problem in result:
            line = str(problem)
            assert line.startswith("fuzz.yaml: ")
            assert "\n" not in problem.document and "\n" not in problem.path
            assert problem.message and "Value error" not in problem.message
    else:
        assert isinstance(result, Schedule | Calendar | Override)


@settings(max_examples=100, deadline=None)
@given(raws=st.lists(_documents, max_size=5))
def test_validate_documents_never_raises(raws: list[object]) -> None:
    items = [("fuzz.yaml", i, raw) for i, raw in enumerate(raws, start=1)]
    docs, problems = validate_documents(items, now=NOW)
    assert len(docs.schedules) + len(docs.calendars) + len(docs.overrides) <= len(raws)
    assert all(isinstance(p, Problem) for p in problems)


def test_huge_text_and_control_characters_stay_on_one_short_line() -> None:
    line = only_line(schedule(service="a/b\n" + "x" * 100_000, timezone="Asia/Tokyo"))
    assert "\n" not in line
    assert len(line) < 400


def test_non_text_keys() -> None:
    raw = schedule()
    raw[1] = "x"
    assert only_line(raw) == f"{SCHEDULE_LABEL}: -: field names must be text, got the number 1"


def test_override_ids_are_unique_per_service_not_across_services() -> None:
    # Every service's wake override has the id "wake": one each is fine, two for one is not.
    other = override(service="example-cluster/example-service-dev")
    docs, problems = validate(override(), other)
    assert problems == [] and len(docs.overrides) == 2
