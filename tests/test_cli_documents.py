"""``teiji validate``, ``teiji explain`` and ``teiji schema`` through the real entry point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.cli.documents import explain_service
from engine.cli.main import main
from engine.files import load_and_validate

STG = """\
kind: schedule
service: example-cluster/example-service-stg
timezone: Asia/Tokyo
windows:
  - {days: mon-fri, start: "05:00", end: "22:00"}
holidays: [JP, company]
"""
CALENDAR = """\
kind: calendar
name: company
ranges: [{from: 2026-12-29, to: 2027-01-03}]
"""
DEV = """\
kind: schedule
service: example-cluster/example-service-dev
mode: always_off
---
kind: override
service: example-cluster/example-service-dev
state: running
start: 2026-12-01T20:00:00+09:00
until: 2026-12-01T23:30:00+09:00
reason: release verification
"""


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEIJI_MAX_OVERRIDE", raising=False)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, text in (("stg.yaml", STG), ("calendar.yaml", CALENDAR), ("dev.yaml", DEV)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths[name] = str(path)
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# --------------------------------------------------------------------------------------------
# validate


def test_validate_ok(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    code, out, _ = run(capsys, "validate", *files.values())
    assert code == 0
    assert out == "4 documents OK (2 schedules, 1 calendar, 1 override)\n"


def test_validate_prints_one_line_per_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "kind: schedule\nservice: example-cluster/svc\ntimezon: UTC\n"
        "windows: [{days: mon-fir, start: '05:00', end: '22:00'}]\n"
        "---\nkind: calendar\nname: company\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "validate", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"{path}: schedule example-cluster/svc: windows[0].days: unknown day 'fir'; use mon, "
        "tue, wed, thu, fri, sat, sun (or the full names, tues, thur, thurs; any case), ranges "
        "such as mon-fri or fri-mon, lists such as sat,sun, or daily",
        f"{path}: schedule example-cluster/svc: timezon: unknown field 'timezon' (did you mean "
        "'timezone'? allowed: kind, service, mode, timezone, windows, cron, holidays, running, "
        "stopped, targets, account, region, description, wake, profile)",
    ]
    assert err == "teiji: 2 problems in 1 of 2 documents\n"


def test_validate_unknown_calendar_across_files(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    code, out, _ = run(capsys, "validate", files["stg.yaml"])
    assert code == 1
    assert out == (
        f"{files['stg.yaml']}: schedule example-cluster/example-service-stg: holidays[1]: no "
        "calendar named 'company'; calendars defined: none; or use a country code such as JP "
        "or US\n"
    )


def test_validate_missing_file_is_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    code, out, err = run(capsys, "validate", files["stg.yaml"], "missing.yaml")
    assert code == 2
    assert out == ""
    assert err == "teiji: cannot read missing.yaml: no such file\n"


def test_validate_syntax_error_is_a_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: calendar\nname: [company\n", encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    assert out.startswith(f"{path}: document 1: -: YAML syntax error at line 3, column 1: ")


def test_validate_json_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("kind: calendar\nname: JP\n", encoding="utf-8")
    code, out, _ = run(capsys, "validate", "--json", str(path))
    assert code == 1
    assert json.loads(out) == {
        "ok": False,
        "documents": 1,
        "problems": [
            {
                "source": str(path),
                "document": "calendar JP",
                "path": "name",
                "message": "'JP' looks like a country code; choose a name such as company or "
                "jp-office",
            }
        ],
    }


def test_validate_override_limit_from_option_and_environment(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cap applies to overrides still in force (one that has ended limits nothing).
    path = Path(files["dev.yaml"]).with_name("dev-later.yaml")
    path.write_text(DEV.replace("2026-12-01", "2099-12-01"), encoding="utf-8")
    dev = str(path)
    code, out, _ = run(capsys, "validate", "--max-override", "4h", dev)
    assert code == 0
    code, out, _ = run(capsys, "validate", "--max-override", "2h", dev)
    assert code == 1
    assert "longer than the limit of 2 hours" in out
    monkeypatch.setenv("TEIJI_MAX_OVERRIDE", "1h")
    code, out, _ = run(capsys, "validate", dev)
    assert code == 1
    assert "longer than the limit of 1 hour;" in out


def test_validate_bad_limit_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    code, _, err = run(capsys, "validate", "--max-override", "soon", files["dev.yaml"])
    assert code == 2
    assert err.startswith("teiji: --max-override: 'soon' is not a duration")


def test_validate_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate")
    assert code == 2
    assert "teiji: give FILE... or --table (the config table), not both or neither" in err
    code, _, err = run(capsys, "validate", "x.yaml", "--table")
    assert code == 2 and "not both or neither" in err


# --------------------------------------------------------------------------------------------
# explain


def explain_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    code, out, err = run(capsys, "explain", *argv, "--json")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    result = json.loads(out)
    assert isinstance(result, dict)
    return result


def test_explain_json_has_exactly_the_documented_keys(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    result = explain_json(
        capsys,
        "example-cluster/example-service-stg",
        "--file",
        files["stg.yaml"],
        "--file",
        files["calendar.yaml"],
        "--at",
        "2026-12-01T10:00",
    )
    assert set(result) == {
        "service", "state", "source", "reason", "at", "next_change", "schedule",
        "protected", "ignored_tag",
    }  # fmt: skip
    # Files hold no tags: what the tags say is not known.
    assert (result["protected"], result["ignored_tag"]) == (None, None)
    assert result["service"] == "example-cluster/example-service-stg"
    assert (result["state"], result["source"]) == ("running", "window")
    assert result["at"] == "2026-12-01T10:00:00+09:00"
    assert result["next_change"] == "2026-12-01T22:00:00+09:00"


def test_explain_sentence(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    code, out, _ = run(
        capsys, "explain", "-f", files["stg.yaml"], "-f", files["calendar.yaml"],
        "--at", "2026-12-01T10:00", "example-cluster/example-service-stg",
    )  # fmt: skip
    assert code == 0
    assert re.fullmatch(
        r"example-cluster/example-service-stg is RUNNING at Tue 2026-12-01 10:00 JST "
        r"\(.*window mon-fri 05:00-22:00.*\)\. "
        r"Next change: stopped at Tue 2026-12-01 22:00 JST\.\n",
        out,
    ), out


@pytest.mark.parametrize(
    "at",
    [
        "2026-12-01T13:00Z",
        "2026-12-01T13:00:00+00:00",
        "2026-12-01 22:00",
        "2026-12-01T22:00+09:00",
    ],
)
def test_explain_accepts_instants_in_several_forms(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], at: str
) -> None:
    result = explain_json(
        capsys, "-f", files["stg.yaml"], "-f", files["calendar.yaml"], "--at", at,
        "example-cluster/example-service-stg",
    )  # fmt: skip
    assert result["at"] == "2026-12-01T22:00:00+09:00"
    assert (result["state"], result["next_change"]) == ("stopped", "2026-12-02T05:00:00+09:00")


def test_explain_holiday_from_company_calendar(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    result = explain_json(
        capsys, "-f", files["stg.yaml"], "-f", files["calendar.yaml"],
        "--at", "2026-12-29T10:00", "example-service-stg",
    )  # fmt: skip
    assert (result["state"], result["source"]) == ("stopped", "holiday")
    assert result["next_change"] == "2027-01-04T05:00:00+09:00"


def test_explain_override(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    result = explain_json(capsys, "-f", files["dev.yaml"], "--at", "2026-12-01T21:00")
    assert (result["state"], result["source"]) == ("running", "override")
    assert result["next_change"] == "2026-12-01T23:30:00+09:00"
    code, out, _ = run(capsys, "explain", "-f", files["dev.yaml"], "--at", "2026-12-05T12:00")
    assert code == 0
    assert out.endswith("(mode always_off). No change in the next 14 days.\n")


def test_explain_needs_a_service_when_there_are_several(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    code, out, err = run(capsys, "explain", "-f", files["dev.yaml"], "-f", files["stg.yaml"],
                         "-f", files["calendar.yaml"])  # fmt: skip
    assert code == 2
    assert out == ""
    assert err == (
        "teiji: these files hold 2 schedules; name one: example-cluster/example-service-dev, "
        "example-cluster/example-service-stg\n"
    )


def test_explain_unknown_service(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    code, _, err = run(capsys, "explain", "example-cluster/nope", "-f", files["dev.yaml"])
    assert code == 2
    assert err == (
        "teiji: no schedule for 'example-cluster/nope'; schedules here: "
        "example-cluster/example-service-dev\n"
    )


def test_explain_invalid_documents_exit_2_with_problems_on_stderr(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    code, out, err = run(capsys, "explain", "-f", files["stg.yaml"], "--at", "2026-12-01T10:00")
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(
        f"{files['stg.yaml']}: schedule example-cluster/example-service-stg: holidays[1]: "
    )
    assert lines[1] == (
        "teiji: 1 problem in the documents; fix them first (teiji validate shows the same list)"
    )


def test_explain_bad_instant(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    code, _, err = run(capsys, "explain", "-f", files["dev.yaml"], "--at", "tomorrow")
    assert code == 2
    assert err == (
        "teiji: --at 'tomorrow' is not a date and time; write it like 2026-12-01T22:00, "
        "2026-12-01T22:00+09:00 or 2026-12-01T13:00Z\n"
    )


def test_explain_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "explain", "-f", "missing.yaml")
    assert code == 2
    assert err == "teiji: cannot read missing.yaml: no such file\n"


def test_explain_without_at_uses_now(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    result = explain_json(capsys, "-f", files["dev.yaml"])
    assert result["state"] in ("running", "stopped")
    assert str(result["at"]).endswith("+09:00")


def test_explain_service_works_on_any_document_set(files: dict[str, str]) -> None:
    from datetime import UTC, datetime

    docs, problems = load_and_validate([files["dev.yaml"]])
    assert problems == []
    result = explain_service(docs, None, datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    assert result["state"] == "running"
    assert result["at"] == "2026-12-01T21:00:00+09:00"


# --------------------------------------------------------------------------------------------
# schema


def test_schema_prints_a_draft_2020_12_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"Schedule", "Calendar", "Override", "Document"} <= set(schema["$defs"])
