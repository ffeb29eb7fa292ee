"""Settings from the environment: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.cli.main import main
from engine.config import Settings, SettingsError, parse_duration


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings.config_table == "teiji-config"
    assert settings.state_table == "teiji-state"
    assert settings.max_override == timedelta(days=7)
    assert settings.concurrency == 8
    assert settings.protected == ()
    assert not settings.dry_run


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "TEIJI_MAX_OVERRIDE": "1d12h",
            "TEIJI_CONCURRENCY": "4",
            "TEIJI_PROTECTED": "*prod*, shared/*",
            "TEIJI_DRY_RUN": "true",
            "TEIJI_LEASE_SECONDS": "600",
        }
    )
    assert settings.max_override == timedelta(days=1, hours=12)
    assert settings.concurrency == 4
    assert settings.protected == ("*prod*", "shared/*")
    assert settings.dry_run
    assert settings.lease_seconds == 600


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TEIJI_MAX_OVERRIDE", "2x", "TEIJI_MAX_OVERRIDE: '2x' is not a duration"),
        ("TEIJI_CONCURRENCY", "abc", "TEIJI_CONCURRENCY: 'abc' is not a whole number"),
        ("TEIJI_CONCURRENCY", "0", "TEIJI_CONCURRENCY: 0 is out of range"),
        ("TEIJI_LEASE_SECONDS", "10", "TEIJI_LEASE_SECONDS: 10 is too short"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        Settings.from_env({name: value})


def test_cli_reports_a_bad_setting_in_one_line_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEIJI_CONCURRENCY", "many")
    assert main(["plan", "--endpoint-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "TEIJI_CONCURRENCY" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text", ["", "2", "h", "1.5h", "-1d"])
def test_parse_duration_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
