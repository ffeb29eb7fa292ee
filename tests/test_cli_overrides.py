"""``teiji start / stop / override list|cancel|extend`` end to end against moto's server.

The command's clock (``engine.cli.session.utc_now``) is pinned: Tuesday 2026-12-01 21:00 in
Tokyo unless a test moves it. The schedules run Mon-Fri 05:00-22:00 Asia/Tokyo.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

import engine.cli.session as operator
from tests.world import Faults, World, schedule
from tests.world import run_cli as run

TUESDAY_2100 = datetime.fromisoformat("2026-12-01T21:00:00+09:00")


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def move(self, text: str) -> None:
        self.now = datetime.fromisoformat(text)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    pinned = Clock(TUESDAY_2100)
    monkeypatch.setattr(operator, "utc_now", pinned)
    return pinned


@pytest.fixture
def world(endpoint: str, clock: Clock) -> World:
    w = World(endpoint)
    w.init_tables()
    w.create_service("c1", "web", desired=2, target=(1, 4))
    w.create_service("c1", "api", desired=1)
    w.put(schedule("c1/web"), schedule("c1/api"))
    return w


def overrides(world: World) -> list[dict[str, Any]]:
    from engine.store import from_attribute_map, plain

    items = world.dynamodb.query(
        TableName=world.settings.config_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "override"}},
    )["Items"]
    return [plain(from_attribute_map(item)) for item in items]


def listed(capsys: pytest.CaptureFixture[str], endpoint: str, *args: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, endpoint, "override", "list", *args, "--json")
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


# start / stop -----------------------------------------------------------------------------------
def test_start_until_writes_an_override_and_says_what_will_happen(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, endpoint, "start", "c1/web", "--until", "23:30", "--reason", "release check",
        "--by", "suzuki",
    )  # fmt: skip
    assert code == 0
    [item] = overrides(world)
    ident = item["id"]
    assert re.fullmatch(r"[0-9a-f]{8}", ident)
    assert item["sk"] == f"c1/web#{ident}"
    assert item["state"] == "running"
    assert item["start"] == "2026-12-01T21:00:00+09:00"
    assert item["until"] == "2026-12-01T23:30:00+09:00"
    assert item["created_by"] == "suzuki"
    assert item["reason"] == "release check"
    # DynamoDB's TTL deletes it a day after it ends.
    expected_ttl = datetime.fromisoformat("2026-12-02T23:30:00+09:00").timestamp()
    assert item["expires_at"] == int(expected_ttl)
    lines = out.splitlines()
    assert lines[0] == (
        f"c1/web will run until Tue 2026-12-01 23:30 JST (override {ident} by suzuki: release "
        "check). Next tick within 15 minutes, or use --now."
    )
    assert lines[1] == (
        "At Tue 2026-12-01 23:30 JST its schedule decides again: stopped (outside every window)."
    )


def test_now_with_an_unusable_rate_setting_writes_nothing(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_RATE_ECS_SERVICE_MODIFY", "fast")
    code, _, err = run(
        capsys, endpoint, "start", "c1/web", "--for", "2h", "--reason", "release check", "--now"
    )
    assert code == 2
    assert "TEIJI_RATE_ECS_SERVICE_MODIFY" in err
    assert "Traceback" not in err
    assert overrides(world) == []


def test_until_a_time_that_has_passed_means_tomorrow(
    world: World, endpoint: str, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    clock.move("2026-12-01T23:45:00+09:00")
    code, out, _ = run(capsys, endpoint, "start", "web", "--until", "23:30", "--reason", "x")
    assert code == 0
    assert overrides(world)[0]["until"] == "2026-12-02T23:30:00+09:00"
    assert "will run until Wed 2026-12-02 23:30 JST" in out


def test_stop_for_a_while_from_later(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, endpoint, "stop", "c1/api", "--from", "2026-12-02T10:00", "--for", "2h",
        "--reason", "database maintenance", "--by", "sato",
    )  # fmt: skip
    assert code == 0
    [item] = overrides(world)
    assert (item["state"], item["start"], item["until"]) == (
        "stopped",
        "2026-12-02T10:00:00+09:00",
        "2026-12-02T12:00:00+09:00",
    )
    assert "c1/api will be kept stopped from Wed 2026-12-02 10:00 JST until" in out
    assert "The first tick from its start acts on it." in out
    assert "its schedule decides again: running (inside window mon-fri 05:00-22:00)" in out


def test_created_by_defaults_to_the_aws_identity(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # moto's GetCallerIdentity answers arn:aws:sts::123456789012:user/moto.
    assert run(capsys, endpoint, "start", "c1/web", "--for", "1h", "--reason", "x")[0] == 0
    assert overrides(world)[0]["created_by"] == "moto"


def test_created_by_falls_back_to_the_login_name(
    world: World, endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = Faults().fail("GetCallerIdentity", code="AccessDenied")
    make = operator.make_clients
    monkeypatch.setattr(operator, "make_clients", lambda *a, **k: faults.attach(make(*a, **k)))
    monkeypatch.setenv("USER", "yamada")
    assert run(capsys, endpoint, "start", "c1/web", "--for", "1h", "--reason", "x")[0] == 0
    assert faults.injected == 1
    assert overrides(world)[0]["created_by"] == "yamada"


def test_an_override_that_changes_nothing_says_so(
    world: World, endpoint: str, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    clock.move("2026-12-01T10:00:00+09:00")
    code, out, _ = run(capsys, endpoint, "start", "c1/web", "--for", "2h", "--reason", "x")
    assert code == 0
    assert "note: its schedule already keeps it running for all of that time" in out


def test_the_limit_is_enforced_and_can_be_raised(
    world: World, endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, endpoint, "start", "c1/web", "--for", "8d", "--reason", "x")
    assert code == 2
    assert "longer than the limit of 7 days" in err
    assert "--max 8d" in err and "TEIJI_MAX_OVERRIDE=8d" in err
    assert overrides(world) == []
    assert (
        run(capsys, endpoint, "start", "c1/web", "--for", "8d", "--reason", "x", "--max", "9d")[0]
        == 0
    )
    monkeypatch.setenv("TEIJI_MAX_OVERRIDE", "12h")
    code, _, err = run(capsys, endpoint, "stop", "c1/api", "--for", "13h", "--reason", "x")
    assert code == 2
    assert "limit of 12 hours" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start", "c1/web", "--for", "2h"], "the following arguments are required: --reason"),
        (["start", "c1/web", "--reason", "x"], "one of the arguments --for --until is required"),
        (["start", "c1/web", "--for", "2h", "--until", "23:00", "--reason", "x"], "not allowed"),
        (["start", "c1/web", "--for", "2h", "--reason", " "], "--reason must say why"),
        (["start", "c1/web", "--until", "tonight", "--reason", "x"], "--until 'tonight'"),
        (["start", "c1/web", "--for", "soon", "--reason", "x"], "--for: 'soon' is not a duration"),
        (["start", "c1/web", "--for", "2h", "--reason", "x", "--max", "1w"], "--max: '1w'"),
    ],
)
def test_usage_mistakes_exit_2_with_one_line(
    world: World,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code, _, err = run(capsys, endpoint, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert overrides(world) == []


def test_a_service_without_schedule_is_refused_with_near_matches(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, endpoint, "start", "c1/wbe", "--for", "2h", "--reason", "x")
    assert code == 2
    assert err == "teiji: no schedule for 'c1/wbe' in teiji-config; did you mean c1/web?\n"
    code, _, err = run(capsys, endpoint, "start", "c1/nosuch", "--for", "2h", "--reason", "x")
    assert "did you mean" not in err and "no stored name is like it" in err


def test_an_unmanaged_service_is_refused(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put({"kind": "schedule", "service": "c1/api", "mode": "unmanaged"})
    code, _, err = run(capsys, endpoint, "start", "c1/api", "--for", "2h", "--reason", "x")
    assert code == 2
    assert "mode: unmanaged" in err


# --now ------------------------------------------------------------------------------------------
def test_now_ticks_only_that_service(
    world: World, endpoint: str, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    clock.move("2026-12-01T10:00:00+09:00")
    world.set_desired("c1", "api", 0)  # out of line: the schedule says running
    code, out, _ = run(
        capsys, endpoint, "stop", "c1/web", "--for", "2h", "--reason", "maintenance", "--now"
    )
    assert code == 0
    assert "Next tick within 15 minutes" not in out
    assert "tick for c1/web now:" in out
    assert re.search(r"^c1/web +changed", out, re.MULTILINE)
    assert "c1/api" not in out.split("tick for c1/web now:")[1]
    assert world.state("c1", "web").desired == 0
    assert world.state("c1", "api").desired == 0  # untouched until the next full tick
    assert world.baseline("c1/web") is not None


# override list ----------------------------------------------------------------------------------
def test_override_list_shows_active_and_upcoming_and_all_shows_expired(
    world: World, endpoint: str, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "start", "c1/web", "--until", "23:30", "--reason", "late", "--by", "a")
    run(capsys, endpoint, "stop", "c1/api", "--from", "2026-12-02T10:00", "--for", "1h",
        "--reason", "maintenance", "--by", "b")  # fmt: skip
    rows = listed(capsys, endpoint)
    assert [(r["service"], r["status"], r["active"]) for r in rows] == [
        ("c1/web", "active", True),
        ("c1/api", "upcoming", False),
    ]
    assert set(rows[0]) >= {"id", "service", "state", "start", "until", "reason", "created_by"}
    assert rows[0]["created_by"] == "a"

    code, out, _ = run(capsys, endpoint, "override", "list")
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split() == ["ID", "SERVICE", "HOLDS", "FROM", "UNTIL", "STATUS", "BY", "REASON"]
    assert "Tue 2026-12-01 21:00 JST  Tue 2026-12-01 23:30 JST  active" in first
    assert "upcoming" in second

    # Expired but not yet deleted by DynamoDB's TTL: hidden unless --all.
    clock.move("2026-12-02T00:00:00+09:00")
    assert [r["service"] for r in listed(capsys, endpoint)] == ["c1/api"]
    rows = listed(capsys, endpoint, "--all")
    assert [(r["service"], r["status"]) for r in rows] == [
        ("c1/web", "expired"),
        ("c1/api", "upcoming"),
    ]
    assert [r["service"] for r in listed(capsys, endpoint, "api")] == ["c1/api"]


def test_override_list_when_there_are_none(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, endpoint, "override", "list", "c1/web")
    assert code == 0
    assert out == "no active or upcoming overrides for c1/web\n"


# A whole lifecycle ------------------------------------------------------------------------------
def test_create_extend_expire(
    world: World, endpoint: str, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    # 21:00: keep web up until 23:30.
    run(capsys, endpoint, "start", "c1/web", "--until", "23:30", "--reason", "late", "--by", "a")
    ident = overrides(world)[0]["id"]
    assert run(capsys, endpoint, "tick", "--at", "2026-12-01T22:15:00+09:00")[0] == 0
    assert world.state("c1", "web").desired == 2  # kept up past 22:00
    assert world.state("c1", "api").desired == 0

    # 23:00: half an hour more.
    clock.move("2026-12-01T23:00:00+09:00")
    code, out, _ = run(capsys, endpoint, "override", "extend", ident, "--for", "30m")
    assert code == 0
    assert (
        f"override {ident} now ends at Wed 2026-12-02 00:00 JST (it was Tue 2026-12-01 23:30" in out
    )
    assert overrides(world)[0]["until"] == "2026-12-02T00:00:00+09:00"
    assert run(capsys, endpoint, "tick", "--at", "2026-12-01T23:45:00+09:00")[0] == 0
    assert world.state("c1", "web").desired == 2

    # After it ends it is ignored, although DynamoDB has not deleted it yet.
    clock.move("2026-12-02T00:15:00+09:00")
    assert len(overrides(world)) == 1
    code, out, _ = run(capsys, endpoint, "explain", "c1/web", "--at", "2026-12-02T00:15+09:00")
    assert code == 0
    assert "is STOPPED" in out and "outside every window" in out
    assert run(capsys, endpoint, "tick", "--at", "2026-12-02T00:15:00+09:00")[0] == 0
    assert world.state("c1", "web").desired == 0


def test_extend_respects_the_limit_from_the_start(
    world: World, endpoint: str, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "start", "c1/web", "--for", "6d", "--reason", "load test")
    ident = overrides(world)[0]["id"]
    clock.move("2026-12-06T21:00:00+09:00")
    code, _, err = run(capsys, endpoint, "override", "extend", ident, "--for", "2d")
    assert code == 2
    assert "would last 8 days from its start, longer than the limit of 7 days" in err
    assert overrides(world)[0]["until"] == "2026-12-07T21:00:00+09:00"
    code, _, _ = run(
        capsys, endpoint, "override", "extend", f"c1/web#{ident}", "--until", "2026-12-08T20:00"
    )
    assert code == 0
    assert overrides(world)[0]["until"] == "2026-12-08T20:00:00+09:00"


def test_cancel_deletes_and_says_what_the_schedule_decides(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "start", "c1/web", "--until", "23:30", "--reason", "late", "--by", "a")
    ident = overrides(world)[0]["id"]
    code, out, _ = run(capsys, endpoint, "override", "cancel", ident)
    assert code == 0
    assert out.splitlines() == [
        f"cancelled override {ident} of c1/web (kept it running until Tue 2026-12-01 23:30 JST "
        "by a: late).",
        "c1/web now follows its schedule: running (inside window mon-fri 05:00-22:00). Next "
        "tick within 15 minutes, or use --now.",
    ]
    assert overrides(world) == []


def test_cancel_with_now_ticks_the_service(
    world: World, endpoint: str, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    clock.move("2026-12-01T23:00:00+09:00")
    run(capsys, endpoint, "start", "c1/web", "--for", "1h", "--reason", "late", "--now")
    assert world.state("c1", "web").desired == 2
    ident = overrides(world)[0]["id"]
    code, out, _ = run(capsys, endpoint, "override", "cancel", f"c1/web#{ident}", "--now")
    assert code == 0
    assert "tick for c1/web now:" in out
    assert world.state("c1", "web").desired == 0


def test_cancel_and_extend_need_an_unambiguous_id(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ("c1/web", "c1/api"):
        world.put(
            {
                "kind": "override",
                "service": key,
                "state": "running",
                "until": "2026-12-01T23:00:00+09:00",
                "reason": "same id",
                "id": "0badc0de",
            }
        )
    code, _, err = run(capsys, endpoint, "override", "cancel", "0badc0de")
    assert code == 2
    assert "names 2 overrides (c1/api#0badc0de, c1/web#0badc0de); write SERVICE#ID" in err
    code, _, err = run(capsys, endpoint, "override", "extend", "nope", "--for", "1h")
    assert code == 2
    assert "no override 'nope'" in err
    assert run(capsys, endpoint, "override", "cancel", "c1/api#0badc0de")[0] == 0
    assert [o["sk"] for o in overrides(world)] == ["c1/web#0badc0de"]


def test_an_invalid_stored_override_can_be_cancelled(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put_item({"pk": "override", "sk": "c1/web#bad00bad", "state": "sleeping"})
    code, _, err = run(capsys, endpoint, "override", "list")
    assert code == 0
    assert "override c1/web#bad00bad is invalid" in err
    code, _, err = run(capsys, endpoint, "override", "extend", "bad00bad", "--for", "1h")
    assert code == 2
    assert "is invalid and cannot be extended" in err
    assert run(capsys, endpoint, "override", "cancel", "bad00bad")[0] == 0
    assert overrides(world) == []


def test_two_overrides_get_different_ids(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        assert run(capsys, endpoint, "start", "c1/web", "--for", "1h", "--reason", "x")[0] == 0
    ids = {o["id"] for o in overrides(world)}
    assert len(ids) == 3


def test_the_written_override_is_accepted_by_the_tick_as_is(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "start", "c1/web", "--for", "7d", "--reason", "load test")
    code, out, _ = run(capsys, endpoint, "tick", "--at", "2026-12-05T03:00:00+09:00", "--json")
    assert code == 0, out
    report = json.loads(out)
    web = next(s for s in report["services"] if s["service"] == "c1/web")
    assert web["source"] == "override"
    assert web["outcome"] in ("converged", "changed")
    assert timedelta(days=7) == datetime.fromisoformat(
        overrides(world)[0]["until"]
    ) - datetime.fromisoformat(overrides(world)[0]["start"])


def test_override_list_warns_of_an_override_the_tick_refuses(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Written by hand past the override cap (7 days): it parses, so list showed it as
    active with no word, while every tick refuses it and fails the service."""
    world.put_item(
        {
            "pk": "override",
            "sk": "c1/web#far00001",
            "state": "running",
            "until": "2099-01-01T00:00:00+09:00",
            "reason": "forever",
            "expires_at": 4_071_000_000,
        }
    )
    code, _, _ = run(capsys, endpoint, "start", "c1/api", "--for", "2h", "--reason", "fine")
    assert code == 0
    code, out, err = run(capsys, endpoint, "override", "list")
    assert code == 0
    assert "far00001" in out
    assert err.count("the tick does not apply it") == 1  # not the override in order
    warning = [line for line in err.splitlines() if "c1/web#far00001" in line]
    assert len(warning) == 1
    assert "the tick does not apply it" in warning[0] and "longer than the limit" in warning[0]
    code, out, err = run(capsys, endpoint, "override", "list", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert any("the tick does not apply it" in w for w in rows["far00001"]["warnings"])
    assert not any(
        "the tick does not apply it" in w
        for r in rows.values()
        for w in r["warnings"]
        if r is not rows["far00001"]
    )
