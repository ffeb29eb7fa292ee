"""The sample schedules operators copy: they validate, and they mean what their comments say."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.cli.documents import explain_service
from engine.cli.main import main
from engine.files import load_and_validate, load_files
from engine.optin import PROFILE_TAG, tagged_schedule
from engine.overrides import build_override
from schemas.jsonschema import document_json_schema
from schemas.validation import DocumentSet, Problem

SAMPLES = Path(__file__).resolve().parent.parent / "sample_schedules"
EXPECTED_FILES = {
    "stg.yaml",
    "company-calendar.yaml",
    "dev-manual.yaml",
    "overnight-batch.yaml",
    "cron-pair.yaml",
    "new-york.yaml",
    "office-hours.yaml",
}


@pytest.fixture(scope="module")
def docs() -> DocumentSet:
    found, problems = load_and_validate([str(SAMPLES)])
    assert problems == []
    return found


def test_the_samples_are_there_and_commented() -> None:
    names = {p.name for p in SAMPLES.iterdir()}
    assert names >= EXPECTED_FILES
    for name in EXPECTED_FILES:
        text = (SAMPLES / name).read_text(encoding="utf-8")
        comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
        assert len(comments) >= 3, f"{name} should explain its choices"
        assert "example-cluster/" in text or "kind: calendar" in text


def test_teiji_validate_passes_on_every_sample(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The samples also name a service in us-east-1: a deployment that allows that region.
    monkeypatch.setenv("TEIJI_ALLOWED_REGIONS", "us-east-1")
    paths = sorted(str(p) for p in SAMPLES.iterdir() if p.suffix == ".yaml")
    code = main(["validate", *paths])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.startswith("9 documents OK")


def _as_json(value: Any) -> Any:
    # What an editor sees: YAML dates and timestamps are text to a JSON Schema validator.
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, date) else str(v))
    )


def test_samples_match_the_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = document_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for source, index, raw in load_files([str(SAMPLES)]):
        errors = [e.message for e in validator.iter_errors(_as_json(raw))]
        assert errors == [], f"{source} document {index}"


def test_the_json_schema_refuses_a_typo() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(document_json_schema())
    raw = {"kind": "schedule", "service": "c/s", "mode": "always_on", "timezon": "UTC"}
    assert list(validator.iter_errors(raw))
    assert list(validator.iter_errors([{"kind": "calendar"}]))  # name is required
    assert not list(validator.iter_errors([{"kind": "calendar", "name": "company"}]))


def at(docs: DocumentSet, service: str, instant: str) -> dict[str, Any]:
    return explain_service(docs, service, datetime.fromisoformat(instant))


STG = "example-cluster/example-service-stg"


@pytest.mark.parametrize(
    ("instant", "state", "source"),
    [
        # The hand-written tool started this service Tuesday to Saturday: not any more.
        ("2026-12-07T10:00", "running", "window"),  # Monday
        ("2026-12-05T10:00", "stopped", "default"),  # Saturday
        ("2026-12-07T04:59", "stopped", "default"),
        ("2026-12-07T05:00", "running", "window"),
        ("2026-12-04T21:59", "running", "window"),
        ("2026-12-04T22:00", "stopped", "default"),  # end is exclusive
        ("2026-11-23T10:00", "stopped", "holiday"),  # Labour Thanksgiving Day (JP)
        ("2026-12-29T10:00", "stopped", "holiday"),  # company year-end break
        ("2026-06-15T10:00", "stopped", "holiday"),  # company foundation day
        ("2027-01-04T10:00", "running", "window"),
    ],
)
def test_stg(docs: DocumentSet, instant: str, state: str, source: str) -> None:
    result = at(docs, STG, instant)
    assert (result["state"], result["source"]) == (state, source)


def test_stg_year_end_break_ends_on_the_first_working_morning(docs: DocumentSet) -> None:
    assert at(docs, STG, "2026-12-28T21:00")["next_change"] == "2026-12-28T22:00:00+09:00"
    assert at(docs, STG, "2026-12-28T23:00")["next_change"] == "2027-01-04T05:00:00+09:00"


@pytest.mark.parametrize(
    ("instant", "state"),
    [
        ("2026-12-04T23:00", "running"),  # Friday night
        ("2026-12-05T05:59", "running"),  # Saturday early morning, from Friday's start
        ("2026-12-05T06:00", "stopped"),
        ("2026-12-07T03:00", "stopped"),  # Monday early morning: no Sunday start
        ("2026-12-07T22:00", "running"),
    ],
)
def test_overnight_batch(docs: DocumentSet, instant: str, state: str) -> None:
    assert at(docs, "example-cluster/example-batch-worker", instant)["state"] == state


def test_cron_pairs(docs: DocumentSet) -> None:
    service = "example-cluster/example-reporting"
    assert at(docs, service, "2026-12-02T08:29")["state"] == "stopped"
    assert at(docs, service, "2026-12-02T08:30")["state"] == "running"
    assert at(docs, service, "2026-12-02T19:30")["state"] == "stopped"
    # The 1st of the month runs 07:00 to 21:00, a Tuesday here.
    first = at(docs, service, "2026-12-01T20:00")
    assert (first["state"], first["source"], first["next_change"]) == (
        "running",
        "cron",
        "2026-12-01T21:00:00+09:00",
    )


def test_dev_is_off_until_someone_writes_an_override(docs: DocumentSet) -> None:
    service = "example-cluster/example-service-dev"
    off = at(docs, service, "2026-12-01T21:00")
    assert (off["state"], off["source"], off["next_change"]) == ("stopped", "mode", None)
    # What `teiji start SERVICE --for 2h` writes, and the override in the sample's comment.
    start = datetime.fromisoformat("2026-12-01T20:00:00+09:00")
    late = build_override(
        docs.schedules[service],
        state="running",
        start=start,
        until=start + timedelta(hours=2),
        reason="debug OPS-1234",
        created_by="suzuki",
        now=start,
        limit=timedelta(days=7),
        override_id="0a1b2c3d",
    )
    with_override = DocumentSet(docs.schedules, docs.calendars, [late])
    running = at(with_override, service, "2026-12-01T21:00")
    assert (running["state"], running["source"]) == ("running", "override")
    assert running["next_change"] == "2026-12-01T22:00:00+09:00"
    commented = (SAMPLES / "dev-manual.yaml").read_text(encoding="utf-8")
    assert "#   until: 2026-12-01T22:00:00+09:00" in commented


# Samples are copied for years: nothing in them may end. -----------------------------------------
@pytest.mark.parametrize("years", [0, 1, 3])
def test_the_samples_validate_without_a_word_years_from_now(years: int) -> None:
    later = datetime.now(UTC) + timedelta(days=365 * years)
    docs, problems = load_and_validate([str(SAMPLES)], now=later)
    assert problems == []
    assert docs.overrides == []  # dated documents belong in the table, written relative to now


def test_putting_the_samples_a_year_from_now_warns_about_nothing(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import engine.cli.session as operator
    from tests.world import World, run_cli

    later = datetime.now(UTC) + timedelta(days=365)
    monkeypatch.setattr(operator, "utc_now", lambda: later)
    World(endpoint).init_tables()
    code, out, err = run_cli(capsys, endpoint, "put", str(SAMPLES), "--dry-run")
    assert code == 0, err
    assert "would write 9 documents" in out
    assert err == ""


@pytest.mark.parametrize(
    ("instant", "state", "local"),
    [
        ("2026-07-01T12:30+00:00", "running", "2026-07-01T08:30:00-04:00"),  # EDT
        ("2026-12-01T12:30+00:00", "stopped", "2026-12-01T07:30:00-05:00"),  # EST
        ("2026-03-09T12:00+00:00", "running", "2026-03-09T08:00:00-04:00"),  # day after DST
        ("2026-03-06T12:00+00:00", "stopped", "2026-03-06T07:00:00-05:00"),  # before DST
    ],
)
def test_new_york_follows_the_local_clock(
    docs: DocumentSet, instant: str, state: str, local: str
) -> None:
    result = at(docs, "example-cluster/example-service-us", instant)
    assert (result["state"], result["at"]) == (state, local)


def test_new_york_winter_start_is_13_utc(docs: DocumentSet) -> None:
    result = at(docs, "example-service-us", "2026-12-01T07:30")  # naive: New York time
    assert result["next_change"] == "2026-12-01T08:00:00-05:00"


def test_new_york_federal_holiday(docs: DocumentSet) -> None:
    result = at(docs, "example-cluster/example-service-us", "2026-07-03T10:00")
    assert (result["state"], result["source"]) == ("stopped", "holiday")  # the 4th, observed


# office-hours.yaml: a profile, two schedules that use it, and the tag that opts a service in. --
ADMIN = "example-cluster/example-admin"
QA = "example-cluster/example-service-qa"


def test_the_profile_sample_says_where_each_schedule_came_from(docs: DocumentSet) -> None:
    assert docs.schedules[ADMIN].origin_detail() == {
        "from": "profile",
        "profile": "office-hours",
        "own_fields": [],
        "profile_fields": ["timezone", "windows", "holidays", "stopped"],
    }
    qa = docs.schedules[QA].origin_detail()
    assert (qa["own_fields"], qa["profile_fields"]) == (
        ["windows"],
        ["timezone", "holidays", "stopped"],
    )


@pytest.mark.parametrize(
    ("instant", "admin", "qa"),
    [
        ("2026-12-07T07:59", "stopped", "stopped"),  # Monday, before the office opens
        ("2026-12-07T08:00", "running", "running"),
        ("2026-12-07T20:00", "stopped", "running"),  # the QA schedule's own, longer window
        ("2026-12-07T22:00", "stopped", "stopped"),
        ("2026-12-05T10:00", "stopped", "stopped"),  # Saturday
        (
            "2026-11-23T10:00",
            "stopped",
            "stopped",
        ),  # Labour Thanksgiving Day (JP), from the profile
        ("2026-12-29T10:00", "stopped", "stopped"),  # the company calendar, from the profile
    ],
)
def test_the_profile_sample_decides_as_its_comments_say(
    docs: DocumentSet, instant: str, admin: str, qa: str
) -> None:
    assert at(docs, ADMIN, instant)["state"] == admin
    assert at(docs, QA, instant)["state"] == qa
    assert at(docs, QA, instant)["at"].endswith("+09:00")  # the profile's zone


def test_the_tag_in_the_profile_sample_opts_a_service_in(docs: DocumentSet) -> None:
    text = (SAMPLES / "office-hours.yaml").read_text(encoding="utf-8")
    (value,) = re.findall(r'^#\s+tags\s+= \{ "teiji:profile" = "([^"]+)" \}$', text, re.MULTILINE)
    assert PROFILE_TAG == "teiji:profile"
    made = tagged_schedule(
        "example-cluster", "example-wiki", (None, None), value, docs, default_timezone="UTC"
    )
    assert not isinstance(made, Problem), made
    assert made.origin == "tag" and made.profile == "office-hours"
    assert made.timezone == "Asia/Tokyo"  # every field from the profile, not the default zone
    result = explain_service(
        DocumentSet({made.key: made}, docs.calendars),
        made.key,
        datetime.fromisoformat("2026-12-07T10:00+09:00"),
    )
    assert result["state"] == "running" and result["schedule"]["from"] == "tag"


def test_simulating_the_samples_names_the_profile_of_each_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["simulate", "-f", str(SAMPLES), "--from", "2026-12-07", "--to", "2026-12-13"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    start = lines.index("schedules made with a profile:")
    made = [line.split()[:4] for line in lines[start + 1 : start + 3]]
    assert made == [
        [ADMIN, "profile", "office-hours", "via"],
        [QA, "profile", "office-hours", "via"],
    ]
    assert "set by the document: windows;" in lines[start + 2]
