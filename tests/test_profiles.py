"""Profiles: shared schedule bodies that schedules name, their fields under the schedule's own.

Table tests of the merge and of the lines an operator reads; a property that a schedule made
with a profile decides exactly as the same schedule written out in full; the profile's allowed
fields follow the Schedule model; the edits function finds the users of an edited profile.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.decide import decide
from engine.edits import Edit, names_used, touched
from schemas.documents import (
    PROFILE_FIELDS,
    SCHEDULE_IDENTITY_FIELDS,
    Profile,
    ProfileBase,
    Schedule,
    profile_fields,
)
from schemas.jsonschema import document_json_schema
from schemas.validation import Problem, parse_document, validate_documents

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SERVICE = "c1/web"
OFFICE = [{"days": "mon-fri", "start": "09:00", "end": "18:00"}]


def profile(name: str = "office", **body: Any) -> dict[str, Any]:
    return {"kind": "profile", "name": name, **({"windows": OFFICE} | body)}


def user(service: str = SERVICE, name: str | None = "office", **own: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"kind": "schedule", "service": service, **own}
    if name is not None:
        raw["profile"] = name
    return raw


def validate(*raws: Any) -> tuple[dict[str, Schedule], list[str]]:
    docs, problems = validate_documents(
        [("fleet.yaml", i, raw) for i, raw in enumerate(raws, start=1)], now=NOW
    )
    return docs.schedules, [str(p) for p in problems]


# --------------------------------------------------------------------------------------------
# Which fields a profile may set


def test_the_profile_fields_are_the_schedule_fields_but_its_identity() -> None:
    assert PROFILE_FIELDS == (
        "mode",
        "timezone",
        "windows",
        "cron",
        "holidays",
        "running",
        "stopped",
        "targets",
        "wake",
    )
    assert not set(PROFILE_FIELDS) & SCHEDULE_IDENTITY_FIELDS
    assert set(Profile.model_fields) == {"kind", "name", "description", *PROFILE_FIELDS}


def test_a_field_added_to_schedules_is_allowed_in_profiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A future schedule field (for example ``wake``) needs no change here: the derivation
    # reads the model's fields.
    fields = dict(Schedule.model_fields)
    fields["wake"] = fields["targets"]
    monkeypatch.setattr(Schedule, "model_fields", fields)
    assert "wake" in profile_fields()
    assert "service" not in profile_fields()


def test_a_profile_may_not_say_which_service_it_is() -> None:
    result = parse_document(profile(service="c1/web"), source="p.yaml", index=1)
    assert isinstance(result, list)
    assert [str(p) for p in result] == [
        "p.yaml: profile office: service: unknown field 'service' (allowed: kind, name, "
        "description, mode, timezone, windows, cron, holidays, running, stopped, targets, wake)"
    ]


def test_a_profile_body_is_checked_as_a_schedule_body() -> None:
    result = parse_document(
        profile(
            timezone="Mars/Olympus", windows=[{"days": "mno", "start": "09:00", "end": "18:00"}]
        ),
        source="p.yaml",
        index=1,
    )
    assert isinstance(result, list)
    assert [p.path for p in result] == ["timezone", "windows[0].days"]
    assert all(p.document == "profile office" for p in result)


def test_a_profile_without_windows_is_valid_its_users_give_them() -> None:
    parsed = parse_document(
        {"kind": "profile", "name": "tokyo", "timezone": "Asia/Tokyo", "holidays": ["JP"]},
        source="p.yaml",
        index=1,
    )
    assert isinstance(parsed, ProfileBase)


def test_the_json_schema_covers_profiles() -> None:
    schema = document_json_schema()
    props = schema["$defs"]["Profile"]["properties"]
    assert set(props) == {"kind", "name", "description", *PROFILE_FIELDS}
    assert schema["$defs"]["Profile"]["required"] == ["kind", "name"]
    assert "profile" in schema["$defs"]["Schedule"]["properties"]


# --------------------------------------------------------------------------------------------
# Merging


def test_the_schedule_takes_the_profile_fields_it_does_not_set() -> None:
    schedules, problems = validate(
        profile(timezone="UTC", holidays=["JP"], targets="repair"),
        user(timezone="Europe/Berlin"),
    )
    assert problems == []
    merged = schedules[SERVICE]
    assert merged.timezone == "Europe/Berlin"  # its own wins
    assert merged.holidays == ["JP"] and merged.targets == "repair"
    assert [w.start for w in merged.windows] == ["09:00"]
    assert merged.profile == "office" and merged.origin == "profile"
    assert merged.inherited == {"windows", "holidays", "targets"}


def test_a_schedule_before_its_profile_in_the_files_is_merged_too() -> None:
    schedules, problems = validate(user(), profile())
    assert problems == [] and SERVICE in schedules


def test_a_schedule_without_a_profile_says_it_is_its_own() -> None:
    schedules, _ = validate(user(name=None, windows=OFFICE))
    assert schedules[SERVICE].origin == "document" and schedules[SERVICE].inherited == set()


@pytest.mark.parametrize(
    ("raws", "expected"),
    [
        pytest.param(
            (user(),),
            "fleet.yaml: schedule c1/web: profile: no profile named 'office'; profiles defined: "
            "none; this schedule is not acted on until the profile exists or the schedule "
            "names another",
            id="missing",
        ),
        pytest.param(
            (profile("offices"), user()),
            "fleet.yaml: schedule c1/web: profile: no profile named 'office' (did you mean "
            "'offices'?); profiles defined: offices; this schedule is not acted on until the "
            "profile exists or the schedule names another",
            id="typo",
        ),
        pytest.param(
            (profile(), user(cron=[{"start": "0 9 * * mon-fri", "stop": "0 18 * * mon-fri"}])),
            "fleet.yaml: schedule c1/web: cron: this schedule sets cron and its profile 'office' "
            "sets windows; one schedule runs by windows or by cron pairs taken from one "
            "document: write windows: [] here to use only this schedule's cron, or leave cron "
            "out to use the profile's windows",
            id="windows and cron from two documents",
        ),
        pytest.param(
            (profile(running={"min_capacity": 3}), user(running={"max_capacity": 1})),
            None,
            id="own running replaces the profile's whole",
        ),
        pytest.param(
            (profile(windows=[]), user()),
            "fleet.yaml: schedule c1/web: -: mode scheduled needs at least one entry in windows "
            "or cron (use mode: always_off to keep the service stopped) (with profile 'office', "
            "which gives: windows)",
            id="no timing in either",
        ),
        pytest.param(
            (profile(stopped={"desired_count": 2}), user(running={"desired_count": 1})),
            None,
            id="night size from the profile, day size own: valid",
        ),
        pytest.param(
            (profile(), user(name=7)),
            "fleet.yaml: schedule c1/web: profile: expected a profile name such as "
            "office-hours, got the number 7",
            id="profile not text",
        ),
    ],
)
def test_merge_problems_name_both_documents(raws: tuple[Any, ...], expected: str | None) -> None:
    schedules, problems = validate(*raws)
    if expected is None:
        assert problems == [] and SERVICE in schedules
    else:
        assert problems == [expected] and SERVICE not in schedules


def test_a_bad_value_taken_from_the_profile_names_it() -> None:
    # Valid as a profile (no mode check), invalid with this schedule's mode.
    schedules, problems = validate(
        profile(windows=[], cron=[]), user(mode="scheduled", timezone="UTC")
    )
    assert problems and all("profile 'office'" in p for p in problems)
    assert SERVICE not in schedules


def test_an_invalid_profile_fails_exactly_its_users_with_one_line_each() -> None:
    schedules, problems = validate(
        profile(timezone="Mars/Olympus"),
        user("c1/a"),
        user("c1/b", windows=OFFICE),
        user("c1/c", name=None, windows=OFFICE),
    )
    assert set(schedules) == {"c1/c"}
    assert problems == [
        "fleet.yaml: profile office: timezone: unknown timezone 'Mars/Olympus'; use an IANA "
        "name such as Asia/Tokyo, UTC or America/New_York",
        "fleet.yaml: schedule c1/a: profile: profile 'office' is invalid (fields at fault: "
        "timezone; its problems are listed under profile office); this schedule is not acted "
        "on until it is fixed",
        "fleet.yaml: schedule c1/b: profile: profile 'office' is invalid (fields at fault: "
        "timezone; its problems are listed under profile office); this schedule is not acted "
        "on until it is fixed",
        "fleet.yaml: profile office: -: this profile is invalid, so 2 schedules that use it "
        "cannot be decided until it is fixed: c1/a, c1/b",
    ]


def test_two_profiles_of_one_name_keep_the_first() -> None:
    schedules, problems = validate(profile(timezone="UTC"), profile(timezone="Asia/Tokyo"), user())
    assert problems == [
        "fleet.yaml: profile office: name: a second profile for office; the first is document "
        "1 of fleet.yaml; keep one of them"
    ]
    assert schedules[SERVICE].timezone == "UTC"


def test_hostile_profile_names_are_refused_on_one_line() -> None:
    name = "a\nb" + "x" * 500
    schedules, problems = validate(profile(), user(name=name))
    assert len(problems) == 1 and "\n" not in problems[0] and len(problems[0]) < 400
    assert SERVICE not in schedules


# --------------------------------------------------------------------------------------------
# A schedule made with a profile decides as the same schedule written out in full

_WINDOWS = st.lists(
    st.builds(
        lambda days, start, length: {
            "days": days,
            "start": f"{start // 60:02d}:{start % 60:02d}",
            "end": f"{(start + length) % 1440 // 60:02d}:{(start + length) % 60:02d}",
        },
        st.sampled_from(["mon-fri", "sat,sun", "daily", "fri-mon", "wed"]),
        st.integers(0, 95).map(lambda q: q * 15),
        st.integers(1, 60).map(lambda q: q * 15),
    ),
    min_size=1,
    max_size=3,
)
_BODY = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.sampled_from(["scheduled", "always_on", "always_off", "unmanaged"]),
        "timezone": st.sampled_from(["Asia/Tokyo", "UTC", "America/New_York", "Europe/Berlin"]),
        "windows": _WINDOWS,
        "holidays": st.lists(st.sampled_from(["JP", "US"]), max_size=2, unique=True),
        "running": st.fixed_dictionaries({}, optional={"desired_count": st.integers(1, 5)}),
        "stopped": st.fixed_dictionaries({}, optional={"desired_count": st.integers(0, 1)}),
        "targets": st.sampled_from(["verify", "repair", "ignore"]),
    },
)


@settings(max_examples=60, deadline=None)
@given(
    body=_BODY,
    own=_BODY,
    hours=st.lists(st.integers(0, 24 * 14), min_size=1, max_size=6),
)
def test_a_schedule_with_a_profile_decides_as_written_out_in_full(
    body: dict[str, Any], own: dict[str, Any], hours: list[int]
) -> None:
    full = {"kind": "schedule", "service": SERVICE, **body, **own}
    written, written_problems = validate(full)
    merged, merged_problems = validate(
        {"kind": "profile", "name": "p", **body}, user(name="p", **own)
    )
    if written_problems:
        # Invalid written out: invalid with the profile too (never acted on either way).
        assert merged_problems and SERVICE not in merged
        return
    assert merged_problems == []
    assert merged[SERVICE].model_dump(exclude={"profile"}) == written[SERVICE].model_dump(
        exclude={"profile"}
    )
    assert merged[SERVICE].inherited == set(body) - set(own)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for hour in hours:
        at = start + timedelta(hours=hour, minutes=7)
        assert decide(merged[SERVICE], at) == decide(written[SERVICE], at)


# --------------------------------------------------------------------------------------------
# The edits function: a profile edit touches every service whose schedule names it


def test_an_edited_profile_touches_the_schedules_that_name_it() -> None:
    profiles = {"office": {"pk": "profile", "sk": "office", "holidays": ["company"]}}
    schedules = {
        "c1/a": names_used({"profile": "office"}, profiles),
        "c1/b": names_used({"profile": "office", "holidays": ["JP"]}, profiles),
        "c1/c": names_used({"holidays": ["company"]}, profiles),
        "c1/d": names_used({"profile": "other"}, profiles),
    }
    edit = Edit("profile", "office", "MODIFY")
    assert touched([edit], schedules).managed == {"c1/a", "c1/b"}
    # The profile's calendar is used by the schedules that take its holidays.
    calendar = Edit("calendar", "company", "MODIFY")
    assert touched([calendar], schedules).managed == {"c1/a", "c1/c"}
    # A deleted profile touches its users all the same: they then fail closed.
    gone = Edit("profile", "office", "REMOVE")
    assert touched([gone], schedules).managed == {"c1/a", "c1/b"}


def test_problem_documents_name_the_schedule_so_only_it_fails() -> None:
    _, problems = validate_documents([("f", 1, user())], now=NOW)
    assert [p.document for p in problems] == ["schedule c1/web"]
    assert isinstance(problems[0], Problem)
