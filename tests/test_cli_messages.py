"""What people read from the CLI: usage of the right command, a description on every --help,
document errors before any AWS call, one time format, an invalid calendar named once."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.cli.main import build_parser, main
from engine.localtime import time_text, zone

BAD_SCHEDULE = """\
kind: schedule
service: c1/web
windows: [{days: mon-fir, start: "05:00", end: "22:00"}]
holidays: [company]
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# Document errors before AWS ---------------------------------------------------------------------
@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> str:
    """No credentials anywhere and an endpoint nothing listens on."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return "http://127.0.0.1:9"


@pytest.mark.parametrize("dry_run", [["--dry-run"], []])
def test_put_shows_the_document_errors_without_aws(
    no_aws: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dry_run: list[str],
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SCHEDULE, encoding="utf-8")
    code, out, err = run(capsys, "put", str(path), *dry_run, "--endpoint-url", no_aws)
    assert code == 2
    assert out == ""
    assert f"{path}: schedule c1/web: windows[0].days: unknown day 'fir'" in err
    assert "teiji: 1 problem in the documents; nothing was written" in err
    # The calendar may be stored: that is for the second pass, once the table can be read.
    assert "company" not in err
    assert "credential" not in err.lower() and "cannot read" not in err


def test_put_of_valid_documents_still_needs_the_table(
    no_aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(BAD_SCHEDULE.replace("mon-fir", "mon-fri"), encoding="utf-8")
    code, _, err = run(capsys, "put", str(path), "--dry-run", "--endpoint-url", no_aws)
    assert code == 1
    assert err.startswith("teiji: cannot read the calendars in teiji-config: ")


# Usage and help ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["validate", "--bogus", "x.yaml"], "usage: teiji validate "),
        (["override", "list", "--bogus"], "usage: teiji override list "),
        (["put", "--dry", "x.yaml", "--nope"], "usage: teiji put "),
        (["--bogus"], "usage: teiji "),
    ],
)
def test_an_unknown_option_shows_that_commands_usage(
    capsys: pytest.CaptureFixture[str], argv: list[str], usage: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith(usage)
    assert err.rstrip().endswith("--bogus") or "--nope" in err


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                found.append((f"{prefix}{name}", command))
                found.extend(_commands(command, f"{prefix}{name} "))
    return found


def test_every_command_has_a_description_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _commands(build_parser())
    assert {"override list", "override cancel", "override extend", "put", "init"} <= {
        name for name, _ in commands
    }
    for name, _ in commands:
        with pytest.raises(SystemExit) as exited:
            main([*name.split(), "--help"])
        assert exited.value.code == 0
        text = capsys.readouterr().out
        usage, _, rest = text.partition("\n\n")
        assert usage.startswith(f"usage: teiji {name}"), name
        description = rest.split("\n\n", 1)[0]
        assert description and not description.startswith(("positional", "options")), name


# One time format --------------------------------------------------------------------------------
def test_time_text_is_local_time_with_the_zones_abbreviation() -> None:
    at = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert time_text(at, "Asia/Tokyo") == "Wed 2026-12-02 21:00 JST"
    # An offset is no zone: without a zone it is shown in UTC, never as "UTC+09:00".
    fixed = at.astimezone(timezone(timedelta(hours=9)))
    assert time_text(fixed) == "Wed 2026-12-02 12:00 UTC"
    assert time_text(fixed, "Asia/Tokyo") == "Wed 2026-12-02 21:00 JST"
    assert time_text(at.astimezone(zone("Asia/Tokyo"))) == "Wed 2026-12-02 21:00 JST"


def test_time_text_in_a_dst_zone_names_the_offset_in_force() -> None:
    # New York 2026-11-01: 01:30 happens twice, first EDT then EST.
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    second = first + timedelta(hours=1)
    assert time_text(first, "America/New_York") == "Sun 2026-11-01 01:30 EDT"
    assert time_text(second, "America/New_York") == "Sun 2026-11-01 01:30 EST"
    # 2026-03-08 02:30 does not exist: 07:00 UTC is 03:00 EDT.
    assert time_text(datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "America/New_York") == (
        "Sun 2026-03-08 03:00 EDT"
    )


def test_time_text_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        time_text(datetime(2026, 12, 2, 12, 0))


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(["Asia/Tokyo", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]),
)
def test_time_text_always_has_one_shape(at: datetime, name: str) -> None:
    weekday, day, clock, abbreviation = time_text(at, name).split(" ")
    local = at.astimezone(zone(name))
    assert weekday == ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[local.weekday()]
    assert day == local.strftime("%Y-%m-%d") and clock == local.strftime("%H:%M")
    assert abbreviation == local.tzname() and not abbreviation.startswith("UTC+")


# An invalid calendar, once ----------------------------------------------------------------------
def test_validate_names_an_invalid_calendar_once_and_the_schedules_it_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(
        "kind: calendar\nname: company\ndates: ['2026-02-30']\n---\n"
        + BAD_SCHEDULE.replace("mon-fir", "mon-fri")
        + "---\n"
        + BAD_SCHEDULE.replace("mon-fir", "daily").replace("c1/web", "c1/api"),
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    lines = out.splitlines()
    assert sum("2026-02-30" in line for line in lines) == 1
    assert (
        f"{path}: calendar company: -: this calendar is invalid, so 2 schedules that list it "
        "cannot be decided until it is fixed: c1/api, c1/web"
    ) in lines
    assert "no calendar named" not in out
    assert len(lines) == 4


# Instants at the ends of the calendar ------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ("plan", "--at", "9999-12-31T23:59Z"),
        ("list", "--at", "9999-12-31T23:00+00:00"),
        ("explain", "c1/web", "--at", "9999-12-31T23:00Z"),
        ("explain", "c1/web", "--at", "0001-01-01T00:00Z"),
        ("tick", "--at", "0001-01-01T00:00Z", "--dry-run"),
        ("start", "c1/web", "--until", "9999-12-31T23:59Z", "--max", "99999999d", "--reason", "x"),
        ("start", "c1/web", "--for", "99999999d", "--max", "99999999d", "--reason", "x"),
        ("stop", "c1/web", "--from", "0001-01-02T00:00Z", "--for", "1h", "--reason", "x"),
    ],
)
def test_an_instant_out_of_teijis_range_is_bad_input_said_in_one_line(
    endpoint: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    from tests.world import World, schedule

    world = World(endpoint)
    world.init_tables()
    world.put(schedule("c1/web"))
    code, out, err = run(capsys, *argv, "--endpoint-url", endpoint)
    assert code == 2, out + err
    assert "out of range" in err and "1970-01-01 to 2999-12-31" in err
    assert "OverflowError" not in err
    assert len(err.strip().splitlines()) == 1
