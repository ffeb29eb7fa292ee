"""Settings from the environment: defaults, parsing, errors that name the variable, and the
settings reaching the code that uses them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from moto import mock_aws

from engine.aws.clients import Clients
from engine.cli.main import main
from engine.config import Settings, SettingsError, parse_duration
from engine.files import load_and_validate
from engine.store import ConfigStore, init_tables, to_attribute_map
from schemas.documents import Schedule
from schemas.validation import parse_document, validate_documents


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings.config_table == "teiji-config"
    assert settings.state_table == "teiji-state"
    assert settings.max_override == timedelta(days=7)
    assert settings.concurrency == 8
    assert settings.protected == ()
    assert not settings.dry_run
    assert settings.shards == 1
    assert settings.default_timezone == "Asia/Tokyo"


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "TEIJI_MAX_OVERRIDE": "1d12h",
            "TEIJI_CONCURRENCY": "4",
            "TEIJI_PROTECTED": "*prod*, shared/*",
            "TEIJI_DRY_RUN": "true",
            "TEIJI_LEASE_SECONDS": "600",
            "TEIJI_SHARDS": " 4 ",
            "TEIJI_DEFAULT_TIMEZONE": "America/New_York",
        }
    )
    assert settings.shards == 4
    assert settings.default_timezone == "America/New_York"
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
        ("TEIJI_SHARDS", "two", "TEIJI_SHARDS: 'two' is not a whole number"),
        ("TEIJI_SHARDS", "0", "TEIJI_SHARDS: 0 is out of range; write a whole number from 1 to 50"),
        ("TEIJI_SHARDS", "51", "TEIJI_SHARDS: 51 is out of range"),
        (
            "TEIJI_DEFAULT_TIMEZONE",
            "Tokyo",
            "TEIJI_DEFAULT_TIMEZONE: unknown time zone 'Tokyo'; use an IANA name such as "
            "Asia/Tokyo",
        ),
        ("TEIJI_DEFAULT_TIMEZONE", "JST", "TEIJI_DEFAULT_TIMEZONE: unknown time zone 'JST'"),
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


@pytest.mark.parametrize("text", ["", "2", "h", "1.5h", "-1d", "１h", "2ｈ", "١h"])
def test_parse_duration_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("command", ["tick", "plan"])
def test_a_bad_rate_setting_stops_a_tick_from_the_terminal_with_exit_2(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEIJI_RATE_ECS_SERVICE_MODIFY", "fast")
    assert main([command, "--endpoint-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("teiji: setting TEIJI_RATE_ECS_SERVICE_MODIFY: 'fast' has no '/'")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# TEIJI_DEFAULT_TIMEZONE reaches every reader of documents --------------------------------------
WINDOWS = [{"days": "mon-fri", "start": "09:00", "end": "17:00"}]
OFFICE = {"kind": "schedule", "service": "c1/web", "windows": WINDOWS}  # no timezone
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_a_schedule_without_timezone_gets_the_default_one() -> None:
    parsed = parse_document(OFFICE, source="t", index=1, default_timezone="America/New_York")
    assert isinstance(parsed, Schedule) and parsed.timezone == "America/New_York"
    parsed = parse_document(OFFICE, source="t", index=1)
    assert isinstance(parsed, Schedule) and parsed.timezone == "Asia/Tokyo"
    own = {**OFFICE, "timezone": "Europe/Oslo"}
    parsed = parse_document(own, source="t", index=1, default_timezone="America/New_York")
    assert isinstance(parsed, Schedule) and parsed.timezone == "Europe/Oslo"  # its own wins
    docs, problems = validate_documents(
        [("t", 1, OFFICE)], now=NOW, default_timezone="America/New_York"
    )
    assert problems == [] and docs.schedules["c1/web"].timezone == "America/New_York"
    assert Schedule.model_validate(OFFICE).timezone == "Asia/Tokyo"  # the model's own default


def test_files_and_the_config_table_read_with_the_default_timezone(tmp_path: Path) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(
        "kind: schedule\nservice: c1/web\nwindows: [{days: mon-fri, start: '09:00', "
        "end: '17:00'}]\n",
        encoding="utf-8",
    )
    docs, problems = load_and_validate([str(path)], now=NOW, default_timezone="UTC")
    assert problems == [] and docs.schedules["c1/web"].timezone == "UTC"

    with mock_aws():
        clients = Clients(region="ap-northeast-1")
        init_tables(clients, Settings())
        item = {"pk": "schedule", "sk": "c1/web", "windows": WINDOWS}
        clients.dynamodb().put_item(TableName="teiji-config", Item=to_attribute_map(item))
        store = ConfigStore(clients, "teiji-config")
        loaded = store.load_config(now=NOW, default_timezone="America/New_York")
        assert loaded.problems == []
        assert loaded.documents.schedules["c1/web"].timezone == "America/New_York"
        docs, _ = store.load(now=NOW)
        assert docs.schedules["c1/web"].timezone == "Asia/Tokyo"


# Fail closed: every setting is checked, a typo never reads as a default ------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("1", True),
        (" true ", True),
        ("false", False),
        ("No", False),
        ("0", False),
        ("FALSE", False),
    ],
)
def test_booleans_accept_true_false_one_zero_yes_no_in_any_case(text: str, value: bool) -> None:
    assert Settings.from_env({"TEIJI_DRY_RUN": text}).dry_run is value


@pytest.mark.parametrize("text", ["ture", "on", "off", "y", "2", "enabled", "tru e", "-1"])
def test_a_boolean_that_is_not_one_refuses_to_run(text: str) -> None:
    with pytest.raises(SettingsError, match=r"^TEIJI_DRY_RUN: .* is not a yes/no value"):
        Settings.from_env({"TEIJI_DRY_RUN": text})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("prod-*/*;shared/*", "holds ';'"),
        ("prod-* /*", "holds ' '"),
        ("prod-*/*,,shared/*", "('') is empty"),
        ("prod-*/*,", "('') is empty"),
        (",prod-*/*", "('') is empty"),
        ("prod-*/*\tshared", "holds '\\t'"),
        ("prod/web/extra", "is not cluster or cluster/service"),
        ("prod//web", "is not cluster or cluster/service"),
        ("/web", "is not cluster or cluster/service"),
        ("prod-[ab/*", "opens a '[' it never closes"),
        ("prod-]/*", "closes a ']' it never opened"),
        ("prod/*@", "has a scope"),
        ("prod/*@a/b/c", "has a scope"),
        ("prod@ap-northeast-1", "has a scope"),
        ("prod/web'", 'holds "\'"'),
        ("prod/wéb", "holds 'é'"),
    ],
)
def test_protected_patterns_are_checked_one_by_one(text: str, reason: str) -> None:
    with pytest.raises(SettingsError, match=rf"^TEIJI_PROTECTED: pattern \d .*{re.escape(reason)}"):
        Settings.from_env({"TEIJI_PROTECTED": text})


@pytest.mark.parametrize(
    ("text", "patterns"),
    [
        ("prod-*/*", ("prod-*/*",)),
        ("prod-*/*, shared/*", ("prod-*/*", "shared/*")),
        ("prod", ("prod",)),
        ("c1/web@123456789012/us-east-1", ("c1/web@123456789012/us-east-1",)),
        ("c1/web@*", ("c1/web@*",)),
        ("prod-[!x]?/*", ("prod-[!x]?/*",)),
        ("  ", ()),
    ],
)
def test_protected_patterns_that_can_match_are_kept(text: str, patterns: tuple[str, ...]) -> None:
    assert Settings.from_env({"TEIJI_PROTECTED": text}).protected == patterns


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TEIJI_LOG_LEVEL", "verbose", "TEIJI_LOG_LEVEL: 'verbose' is not a log level"),
        ("TEIJI_CONFIG_TABLE", "a b", "TEIJI_CONFIG_TABLE: 'a b' is not a DynamoDB table name"),
        ("TEIJI_STATE_TABLE", "x", "TEIJI_STATE_TABLE: 'x' is not a DynamoDB table name"),
    ],
)
def test_other_settings_name_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        Settings.from_env({name: value})


def test_the_state_table_cannot_be_the_config_table() -> None:
    with pytest.raises(SettingsError, match=r"^TEIJI_STATE_TABLE: 'teiji-config' is also"):
        Settings.from_env({"TEIJI_STATE_TABLE": "teiji-config"})
    with pytest.raises(SettingsError, match=r"^TEIJI_STATE_TABLE: 'shared' is also"):
        Settings.from_env({"TEIJI_STATE_TABLE": "shared", "TEIJI_CONFIG_TABLE": "shared"})
    assert Settings.from_env({"TEIJI_LOG_LEVEL": "debug"}).log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TEIJI_DRY_RUN", "ture"),
        ("TEIJI_PROTECTED", "prod-*/*;c1/*"),
        ("TEIJI_STATE_TABLE", "teiji-config"),
    ],
)
def test_a_tick_from_the_terminal_refuses_to_run_and_writes_nothing(
    name: str,
    value: str,
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.invariant import assert_invariant, snapshot
    from tests.world import World, schedule

    world = World(endpoint)
    world.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
    assert main(["init", "--endpoint-url", endpoint]) == 0
    world.put(schedule("c1/web", mode="always_off"))
    expected = snapshot(["c1/web"])
    monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["tick", "--endpoint-url", endpoint]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"teiji: setting {name}: ")
    assert "Traceback" not in err
    assert world.state("c1", "web").desired == 3
    assert world.baseline("c1/web") is None
    assert_invariant(world, expected)


@pytest.mark.parametrize("text", ["0d", "0m", "0h0m"])
def test_an_override_limit_of_no_time_is_refused_with_what_is_allowed(
    text: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A limit under a minute would refuse every override, failing each service that has one."""
    with pytest.raises(SettingsError, match="less than a minute"):
        Settings.from_env({"TEIJI_MAX_OVERRIDE": text})
    monkeypatch.setenv("TEIJI_MAX_OVERRIDE", text)
    assert main(["plan", "--endpoint-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "TEIJI_MAX_OVERRIDE" in err and "like 7d or 12h" in err
    monkeypatch.delenv("TEIJI_MAX_OVERRIDE")
    code = main(["start", "c1/web", "--for", "1h", "--max", text, "--reason", "x"])
    assert code == 2
    assert "--max: " in capsys.readouterr().err
