"""``teiji validate --table``: items the tick never reads or silently keeps, found; and the
one-line kind/pk mismatch in tick and list. Items are written as an operator writes them with
the AWS CLI (DynamoDB JSON through a boto3 client); moto's server mode over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

import engine.cli.session as operator
from engine.tablecheck import OverrideItem, check_table, kind_mismatch, override_warnings
from tests.world import World, schedule
from tests.world import run_cli as run

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # Tuesday 21:00 JST
UNTIL = "2026-12-01T23:30:00+09:00"
UNTIL_EPOCH = int(datetime.fromisoformat(UNTIL).timestamp())


@pytest.fixture
def world(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr(operator, "utc_now", lambda: NOW)
    w = World(endpoint)
    w.init_tables()
    w.put(schedule("c1/web"))
    return w


def raw_put(world: World, item: dict[str, Any]) -> None:
    world.dynamodb.put_item(TableName=world.settings.config_table, Item=item)


def override_json(sk: str, **extra: Any) -> dict[str, Any]:
    return {
        "pk": {"S": "override"},
        "sk": {"S": sk},
        "state": {"S": "running"},
        "until": {"S": UNTIL},
        "reason": {"S": "late work"},
        **extra,
    }


def lines(out: str) -> list[str]:
    return out.splitlines()


def test_a_clean_table_is_ok(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, endpoint, "validate", "--table")
    assert code == 0, err
    assert (
        out
        == "1 item in teiji-config OK (1 schedule, 0 calendars, 0 overrides in force or to come)\n"
    )


def test_an_item_under_a_mistyped_pk_is_found(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_put(world, {"pk": {"S": "Schedule"}, "sk": {"S": "c1/api"}, "mode": {"S": "always_on"}})
    code, out, err = run(capsys, endpoint, "validate", "--table")
    assert code == 1
    assert lines(out) == [
        "error: pk='Schedule' sk='c1/api': teiji reads only the partitions pk=schedule, "
        "calendar, override, profile, so this item is never read (did you mean 'schedule'?); "
        "move it "
        "under the right pk or delete it"
    ]
    assert err == "teiji: 1 error and 0 warnings in 2 items of teiji-config\n"


ODD = {
    "pk": {"S": "schedule"},
    "sk": {"S": "c1/odd"},
    "kind": {"S": "override"},
    "state": {"S": "running"},
    "until": {"S": UNTIL},
    "reason": {"S": "x"},
}
MISMATCH = (
    "stored under pk='schedule' but its kind is 'override': an override belongs under "
    "pk='override' with sk='<cluster>/<service>#<id>'; move it there, or drop the kind "
    "attribute if it is a schedule"
)


def test_kind_under_the_wrong_pk_is_one_clear_message(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_put(world, ODD)
    code, out, _ = run(capsys, endpoint, "validate", "--table")
    assert code == 1
    assert lines(out) == [f"error: dynamodb:teiji-config: schedule c1/odd: kind: {MISMATCH}"]


def test_tick_and_list_report_the_kind_mismatch_in_one_line(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_put(world, ODD)
    _, out, _ = run(capsys, endpoint, "plan", "--at", NOW.isoformat())
    odd = [line for line in lines(out) if "c1/odd" in line]
    assert len(odd) == 1 and odd[0].startswith("c1/odd") and MISMATCH in odd[0]
    assert "required" not in out  # not the errors of reading it as an override
    _, out, _ = run(capsys, endpoint, "list", "--at", NOW.isoformat())
    odd = [line for line in lines(out) if "c1/odd" in line]
    assert len(odd) == 1 and odd[0].startswith("c1/odd") and MISMATCH in odd[0]


def test_a_sort_key_that_does_not_name_the_documents_service(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_put(
        world,
        {
            "pk": {"S": "schedule"},
            "sk": {"S": "c1/api"},
            "service": {"S": "c1/apj"},
            "mode": {"S": "always_on"},
        },
    )
    code, out, _ = run(capsys, endpoint, "validate", "--table")
    assert code == 1
    assert lines(out) == [
        "error: dynamodb:teiji-config: schedule c1/api: sk: the sort key 'c1/api' does not "
        "match the document, which names 'c1/apj'; make them agree"
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "has no expires_at, so DynamoDB's TTL never deletes it"),
        (
            {"expires_at": {"S": "tomorrow"}},
            "expires_at is the text 'tomorrow', not a number of epoch seconds",
        ),
        ({"expires_at": {"N": str(UNTIL_EPOCH - 3600)}}, "is before until"),
    ],
)
def test_overrides_that_ttl_will_not_remove_as_meant_are_warned_about(
    world: World,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    extra: dict[str, Any],
    message: str,
) -> None:
    raw_put(world, override_json("c1/web#hand0001", **extra))
    code, out, _ = run(capsys, endpoint, "validate", "--table")
    assert code == 1
    (line,) = lines(out)
    assert line.startswith("warning: pk='override' sk='c1/web#hand0001': ")
    assert message in line
    assert f'set expires_at to the number {UNTIL_EPOCH + 86400} ({{"N": ' in line
    # The same warning where people look at overrides.
    code, _, err = run(capsys, endpoint, "override", "list")
    assert code == 0 and message in err
    code, out, err = run(capsys, endpoint, "list", "--at", NOW.isoformat())
    assert message in err and message not in out
    assert "teiji: warning: override c1/web#hand0001: " in err
    code, out, err = run(capsys, endpoint, "list", "--at", NOW.isoformat(), "--json")
    assert message in err
    json.loads(out)  # the warning stays out of the JSON


def test_an_override_for_a_service_without_schedule_is_warned_about(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_put(world, override_json("c1/nobody#hand0002", expires_at={"N": str(UNTIL_EPOCH + 86400)}))
    code, out, _ = run(capsys, endpoint, "validate", "--table")
    assert code == 1
    assert lines(out) == [
        "warning: pk='override' sk='c1/nobody#hand0002': c1/nobody has no schedule, so this "
        "override does nothing (teiji only acts on services with a schedule); add the schedule "
        "or cancel the override"
    ]
    code, out, _ = run(capsys, endpoint, "override", "list", "--json")
    (row,) = json.loads(out)
    assert row["status"] == "active"
    assert [w.split(",")[0] for w in row["warnings"]] == ["c1/nobody has no schedule"]
    code, out, err = run(capsys, endpoint, "list", "--at", NOW.isoformat())
    assert "teiji: warning: override c1/nobody#hand0002: c1/nobody has no schedule" in err


def test_an_ended_override_still_stored_is_a_note(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ended = "2026-12-01T10:00:00+09:00"
    epoch = int(datetime.fromisoformat(ended).timestamp()) + 86400
    raw_put(
        world,
        override_json("c1/web#old00001", until={"S": ended}, expires_at={"N": str(epoch)}),
    )
    code, out, _ = run(capsys, endpoint, "validate", "--table", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["ok"] is True
    (finding,) = result["findings"]
    assert finding["severity"] == "note"
    assert finding["message"].startswith("ended 11 hours ago (2026-12-01T10:00:00+09:00)")
    assert "DynamoDB's TTL deletes it after 2026-12-02T01:00:00+00:00" in finding["message"]


def test_validate_needs_files_or_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli.main import main

    assert main(["validate"]) == 2
    assert "give FILE... or --table" in capsys.readouterr().err
    assert main(["validate", "--table", "some.yaml"]) == 2


# The pure rules ---------------------------------------------------------------------------------
def test_kind_mismatch_rules() -> None:
    assert kind_mismatch({"pk": "schedule", "kind": "schedule"}) is None
    assert kind_mismatch({"pk": "schedule"}) is None
    assert kind_mismatch({"pk": "Schedule", "kind": "override"}) is None  # unknown pk: elsewhere
    text = kind_mismatch({"pk": "calendar", "kind": "holiday"})
    assert text == (
        "stored under pk='calendar' but its kind is 'holiday'; the kind attribute may be left out "
        "(the pk says it) or must be 'calendar'"
    )


def test_override_warnings_accept_what_teiji_writes() -> None:
    until = datetime.fromisoformat(UNTIL)
    item = {"pk": "override", "sk": "c1/web#a", "expires_at": UNTIL_EPOCH + 86400}
    assert override_warnings(item, until, {"c1/web"}) == []
    assert check_table([item], [OverrideItem(item, until)], scheduled={"c1/web"}, now=NOW) == []
    assert len(override_warnings({**item, "expires_at": True}, until, {"c1/web"})) == 1


def test_list_json_says_on_stderr_what_its_rows_cannot_hold(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A broken company calendar is nobody's row: with --json it was only an exit code.
    raw_put(
        world,
        {"pk": {"S": "calendar"}, "sk": {"S": "company"}, "dates": {"S": "not a list"}},
    )
    code, out, err = run(capsys, endpoint, "list", "--at", NOW.isoformat(), "--json")
    assert code == 1
    json.loads(out)
    assert "teiji: problem: " in err and "company" in err
    code, out, err = run(capsys, endpoint, "list", "--at", NOW.isoformat())
    assert code == 1 and "problem: " in out and "company" in out


def test_a_hand_written_key_with_a_space_is_named_whole(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The key is not valid; every command names it whole, not its first word ("c1").
    key = "c1 with space/web"
    raw_put(world, {"pk": {"S": "schedule"}, "sk": {"S": key}, "mode": {"S": "always_on"}})
    raw_put(world, override_json(f"{key}#late0001", expires_at={"N": str(UNTIL_EPOCH + 86400)}))
    for command in ("plan", "list"):
        code, out, _ = run(capsys, endpoint, command, "--at", NOW.isoformat())
        assert code == 1
        rows = [line.split("  ")[0] for line in lines(out)[1:]]
        assert key in rows and "c1" not in rows, out
    code, out, err = run(capsys, endpoint, "explain", key, "--at", NOW.isoformat())
    assert code == 2 and key in err and "is not '<cluster>/<service>'" in err
    assert "no schedule documents" not in err


def test_a_sort_key_with_two_hash_signs_is_read_at_the_first(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Neither a key nor an id holds '#': "c1/web#a#b" is c1/web's (invalid) override "a#b",
    # as the tick reads it; no command may call it an override of a service "c1/web#a".
    raw_put(world, override_json("c1/web#a#b", expires_at={"N": str(UNTIL_EPOCH + 86400)}))
    outputs = []
    at = ["--at", NOW.isoformat()]
    for argv in (["validate", "--table"], ["override", "list"], ["list", *at], ["plan", *at]):
        code, out, err = run(capsys, endpoint, *argv)
        assert code in (0, 1), (argv, err)  # not a usage error
        outputs.append(out + err)
        assert "c1/web#a has no schedule" not in out + err, argv
    _, out, err = run(capsys, endpoint, "override", "list", "--json")
    assert json.loads(out) == []  # not a valid override
    assert "override c1/web#a#b is invalid; `teiji override cancel c1/web#a#b` removes it" in err
    # What the warning says works: the id it names is the one stored.
    code, out, err = run(capsys, endpoint, "override", "cancel", "c1/web#a#b")
    assert code == 0, err
    code, out, err = run(capsys, endpoint, "validate", "--table")
    assert code == 0, out + err
