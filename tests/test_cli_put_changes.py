"""``teiji put`` shows what it replaces and refuses to undo edits made outside teiji.

The edits are made as an operator makes them with the AWS CLI or the console: a raw
``put_item`` of DynamoDB JSON through a boto3 client, keeping the attributes it does not
change (``teiji_hash`` among them). moto's server mode over HTTP.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import engine.cli.session as operator
from engine.putdiff import HASH_ATTRIBUTE, content_hash, field_changes, plan_put
from engine.store import ConfigStore
from tests.world import World
from tests.world import run_cli as run

STG = """\
kind: schedule
service: c1/web
timezone: Asia/Tokyo
windows:
  - days: mon-fri
    start: "05:00"
    end: "22:00"
holidays: [JP]
running:
  desired_count: 2
"""
KEY = {"pk": {"S": "schedule"}, "sk": {"S": "c1/web"}}


@pytest.fixture
def world(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr(operator, "utc_now", lambda: datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    w = World(endpoint)
    w.init_tables()
    return w


@pytest.fixture
def stg(tmp_path: Path) -> str:
    path = tmp_path / "stg.yaml"
    path.write_text(STG, encoding="utf-8")
    return str(path)


def raw_item(world: World) -> dict[str, Any]:
    item: dict[str, Any] = world.dynamodb.get_item(
        TableName=world.settings.config_table, Key=KEY, ConsistentRead=True
    )["Item"]
    return item


def console_edit(world: World, end: str = "20:00") -> None:
    """What `aws dynamodb put-item --item file://item.json` does after editing one value."""
    item = raw_item(world)
    item["windows"]["L"][0]["M"]["end"] = {"S": end}
    world.dynamodb.put_item(TableName=world.settings.config_table, Item=item)


def stored_end(world: World) -> str:
    end: str = raw_item(world)["windows"]["L"][0]["M"]["end"]["S"]
    return end


# put stamps what it writes ----------------------------------------------------------------------
def test_put_stores_the_hash_of_what_it_wrote(
    world: World, endpoint: str, stg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, endpoint, "put", stg)[0] == 0
    item = world.config().query_kind("schedule")[0]
    from engine.store import plain

    assert item[HASH_ATTRIBUTE] == content_hash(plain(item))
    # The stamp is the item's, not the document's: get and list never show it.
    code, out, _ = run(capsys, endpoint, "get", "c1/web")
    assert code == 0 and HASH_ATTRIBUTE not in out


def test_putting_the_same_file_again_changes_nothing(
    world: World, endpoint: str, stg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "put", stg)
    code, out, _ = run(capsys, endpoint, "put", stg)
    assert code == 0
    assert "wrote 0 documents to teiji-config:" in out
    assert "unchanged  schedule  c1/web" in out


# A console edit is shown and kept -------------------------------------------------------------
def test_put_refuses_to_undo_a_console_edit_and_shows_the_field(
    world: World, endpoint: str, stg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "put", stg)
    console_edit(world, "20:00")
    code, out, err = run(capsys, endpoint, "put", stg)
    assert code == 1
    assert "refused  schedule  c1/web" in out
    assert "schedule c1/web (edited outside teiji since teiji wrote it): stored -> file" in out
    assert '    windows[0].end: "20:00" -> "22:00"' in out
    assert "changed outside teiji since teiji last wrote it (schedule c1/web)" in err
    assert "`teiji get c1/web`" in err and "teiji put --force" in err
    assert stored_end(world) == "20:00"


def test_dry_run_shows_the_same_difference_and_refusal(
    world: World, endpoint: str, stg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "put", stg)
    console_edit(world, "20:00")
    code, out, err = run(capsys, endpoint, "put", stg, "--dry-run")
    assert code == 1
    assert '    windows[0].end: "20:00" -> "22:00"' in out
    assert "dry run: nothing was written" in out
    assert "changed outside teiji" in err
    code, out, _ = run(capsys, endpoint, "put", stg, "--dry-run", "--force", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["written"] is False
    (document,) = result["documents"]
    assert document["change"] == "replaced" and document["edited_outside_teiji"] is True
    assert document["fields"] == [{"path": "windows[0].end", "stored": "20:00", "new": "22:00"}]
    assert stored_end(world) == "20:00"


def test_force_replaces_the_edit_and_stamps_it_again(
    world: World, endpoint: str, stg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "put", stg)
    console_edit(world, "20:00")
    code, out, _ = run(capsys, endpoint, "put", stg, "--force")
    assert code == 0
    assert "replaced (--force)  schedule  c1/web" in out
    assert stored_end(world) == "22:00"
    # Stamped again: the next put of the same file is quiet.
    assert "unchanged" in run(capsys, endpoint, "put", stg)[1]


def test_a_replacement_of_an_unedited_item_shows_its_fields_and_writes(
    world: World, endpoint: str, stg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "put", stg)
    later = tmp_path / "later.yaml"
    later.write_text(STG.replace('"22:00"', '"23:00"').replace("[JP]", "[JP, US]"), "utf-8")
    code, out, _ = run(capsys, endpoint, "put", str(later))
    assert code == 0
    assert "replaced  schedule  c1/web" in out
    assert '    windows[0].end: "22:00" -> "23:00"' in out
    assert '    holidays[1]: (none) -> "US"' in out
    assert stored_end(world) == "23:00"


def test_an_item_written_by_hand_is_refused_until_force_with_its_differences_shown(
    world: World, endpoint: str, stg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # No teiji_hash: someone made it in the console, as the README shows. It is their work.
    world.dynamodb.put_item(
        TableName=world.settings.config_table,
        Item={
            **KEY,
            "timezone": {"S": "Asia/Tokyo"},
            "windows": {
                "L": [
                    {
                        "M": {
                            "days": {"S": "mon-fri"},
                            "start": {"S": "05:00"},
                            "end": {"S": "21:00"},
                        }
                    }
                ]
            },
        },
    )
    code, out, err = run(capsys, endpoint, "put", stg)
    assert code == 1
    assert "schedule c1/web (written outside teiji: it has no teiji_hash): stored -> file" in out
    assert '    windows[0].end: "21:00" -> "22:00"' in out
    assert '    running: (none) -> {"desired_count": 2}' in out
    assert "was written outside teiji (no teiji_hash) (schedule c1/web)" in err
    assert "teiji get c1/web" in err and "teiji put --force" in err
    assert stored_end(world) == "21:00"  # nothing written

    code, out, _ = run(capsys, endpoint, "put", stg, "--force")
    assert code == 0
    assert stored_end(world) == "22:00"
    assert run(capsys, endpoint, "put", stg)[0] == 0  # stamped now: the same file is no change


def test_an_item_written_by_hand_that_matches_the_file_is_left_alone(
    world: World, endpoint: str, stg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, endpoint, "put", stg)[0] == 0
    item = raw_item(world)
    del item[HASH_ATTRIBUTE]  # the same content, copied by hand without the stamp
    world.dynamodb.put_item(TableName=world.settings.config_table, Item=item)
    code, out, _ = run(capsys, endpoint, "put", stg)
    assert code == 0
    assert "unchanged" in out


# A racing edit between put's read and its write -------------------------------------------------
def test_an_edit_between_reading_and_writing_is_caught_by_the_condition(
    world: World,
    endpoint: str,
    stg: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run(capsys, endpoint, "put", stg)
    later = tmp_path / "later.yaml"
    later.write_text(STG.replace('"22:00"', '"23:00"'), "utf-8")
    original = ConfigStore.query_kind

    def read_then_someone_edits(self: ConfigStore, kind: str, **kwargs: Any) -> Any:
        items = original(self, kind, **kwargs)
        if kind == "schedule" and not kwargs:
            console_edit(world, "19:00")  # just after put has read the item
        return items

    monkeypatch.setattr(ConfigStore, "query_kind", read_then_someone_edits)
    code, _, err = run(capsys, endpoint, "put", str(later))
    assert code == 1
    assert "schedule c1/web changed in teiji-config while put was writing" in err
    assert stored_end(world) == "19:00"


def test_a_document_created_between_reading_and_writing_is_not_overwritten(
    world: World,
    endpoint: str,
    stg: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = ConfigStore.query_kind
    made = False

    def read_then_someone_creates(self: ConfigStore, kind: str, **kwargs: Any) -> Any:
        nonlocal made
        items = original(self, kind, **kwargs)
        if kind == "schedule" and not kwargs and not made:
            made = True
            world.dynamodb.put_item(
                TableName=world.settings.config_table, Item={**KEY, "mode": {"S": "always_on"}}
            )
        return items

    monkeypatch.setattr(ConfigStore, "query_kind", read_then_someone_creates)
    code, _, err = run(capsys, endpoint, "put", stg)
    assert code == 1
    assert "while put was writing" in err
    assert raw_item(world)["mode"] == {"S": "always_on"}


# The comparison itself --------------------------------------------------------------------------
def test_field_changes_walk_maps_and_lists() -> None:
    stored = {"pk": "schedule", "windows": [{"end": "20:00", "days": "mon-fri"}], "x": 1}
    new = {"pk": "schedule", "windows": [{"end": "22:00", "days": "mon-fri"}, {"end": "1"}]}
    assert [str(c) for c in field_changes(stored, new)] == [
        'windows[0].end: "20:00" -> "22:00"',
        'windows[1]: (none) -> {"end": "1"}',
        "x: 1 -> (none)",
    ]


def test_the_stamp_ignores_attribute_order_and_catches_any_change() -> None:
    item = {"pk": "calendar", "sk": "company", "dates": ["2026-12-29"], "description": "x"}
    stamped = {**item, HASH_ATTRIBUTE: content_hash(item)}
    reordered = dict(reversed(list(stamped.items())))
    assert plan_put("calendar", "company", item, reordered).change == "unchanged"
    edited = {**stamped, "description": "y"}
    plan = plan_put("calendar", "company", item, edited)
    assert (plan.change, plan.edited) == ("replaced", True)
    assert plan_put("calendar", "company", {**item, "description": "y"}, edited).change == (
        "unchanged"
    )


# a schedule naming a profile is written as its file says ---------------------------------------
OFFICE = """\
kind: profile
name: office
timezone: Asia/Tokyo
windows:
  - days: mon-fri
    start: "08:00"
    end: "20:00"
holidays: [JP]
"""
USES_OFFICE = """\
kind: schedule
service: c1/web
profile: office
running:
  desired_count: 2
"""


def test_put_writes_only_what_a_profile_user_sets_so_profile_edits_reach_it(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "office.yaml").write_text(OFFICE, encoding="utf-8")
    (tmp_path / "web.yaml").write_text(USES_OFFICE, encoding="utf-8")
    code, _, err = run(capsys, endpoint, "put", str(tmp_path))
    assert code == 0, err
    stored = set(raw_item(world)) - {"pk", "sk", HASH_ATTRIBUTE}
    assert stored == {"profile", "running"}  # nothing copied from the profile, no defaults

    # Someone shortens the profile's day in the console: the schedule follows it.
    key = {"pk": {"S": "profile"}, "sk": {"S": "office"}}
    table = world.settings.config_table
    item = world.dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    item["windows"]["L"][0]["M"]["end"] = {"S": "17:00"}
    world.dynamodb.put_item(TableName=table, Item=item)
    code, out, err = run(capsys, endpoint, "explain", "c1/web", "--at", "2026-12-07T18:00+09:00")
    assert code == 0, err
    assert "c1/web is STOPPED at Mon 2026-12-07 18:00 JST" in out
    assert "from the profile: timezone, windows, holidays" in out

    # And put of the same files again finds nothing to change.
    code, out, err = run(capsys, endpoint, "put", str(tmp_path / "web.yaml"))
    assert code == 0, err
    assert "wrote 0 documents" in out
