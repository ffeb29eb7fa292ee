"""A warm Lambda reuses what it parsed and its Decider, and still sees every change.

Each test invokes the handler twice (or more) in this one process, as a warm container does,
and changes the table in between as a person would: in the console, with ``teiji put``, or
by writing back exactly what was there. Tuesday 2026-12-01, 12:00 in Tokyo is inside the
schedules' 05:00-22:00 window.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from freezegun import freeze_time

import engine.documents as documents
import engine.handler as handler
import schemas.validation as validation
from tests.world import World, moto_tables, schedule

NOON_TOKYO = "2026-12-01T03:00:00Z"
QUARTER_PAST = "2026-12-01T03:15:00Z"
HALF_PAST = "2026-12-01T03:30:00Z"


class Context:
    aws_request_id = "req-1"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setattr(handler, "_clients", {})
    documents.forget()  # a fresh container
    with moto_tables() as w:
        w.create_service("c1", "web", desired=2, target=(1, 4))
        w.create_service("c1", "api", desired=2, target=(1, 4))
        w.put(schedule("c1/web"), schedule("c1/api"))
        yield w
    documents.forget()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every document actually validated (not answered from what was parsed before)."""
    seen: list[object] = []
    real = validation._parse

    def counting(raw: object, **kwargs: Any) -> Any:
        seen.append(raw)
        return real(raw, **kwargs)

    monkeypatch.setattr(validation, "_parse", counting)
    return seen


def tick(when: str, **event: Any) -> dict[str, Any]:
    with freeze_time(when):
        return handler.lambda_handler(event, Context())


def decisions(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {s["service"]: (s["decision"], s["source"]) for s in result["services"]}


def services_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["service"]: s for s in result["services"]}


def test_an_unchanged_table_is_read_again_but_not_validated_again(
    world: World, parses: list[object]
) -> None:
    first = tick(NOON_TOKYO)
    assert len(parses) == 2  # each document validated once, though read twice in the tick
    # The table is still read on every tick: the warm container's own client asks.
    (clients,) = handler._clients.values()
    read: list[str] = []
    clients.dynamodb().meta.events.register(
        "before-call.dynamodb.Query", lambda **kw: read.append("Query")
    )
    parses.clear()
    second = tick(QUARTER_PAST)
    assert parses == []
    assert read, "the warm tick must still read the documents"
    assert decisions(second) == decisions(first)


def test_a_schedule_edited_between_two_warm_ticks_takes_effect(
    world: World, parses: list[object]
) -> None:
    assert decisions(tick(NOON_TOKYO))["c1/web"][0] == "running"
    # A one-character edit in the console: the window now ends at 11:00.
    world.put(schedule("c1/web", windows=[{"days": "mon-fri", "start": "05:00", "end": "11:00"}]))
    parses.clear()
    result = tick(QUARTER_PAST)
    assert decisions(result)["c1/web"] == ("stopped", "default")
    assert world.state("c1", "web").desired == 0
    assert decisions(result)["c1/api"][0] == "running"
    assert len(parses) == 1  # only the edited one


def test_an_item_written_back_unchanged_is_reused(world: World, parses: list[object]) -> None:
    tick(NOON_TOKYO)
    world.put(schedule("c1/web"))  # `teiji put` of the same file again
    parses.clear()
    result = tick(QUARTER_PAST)
    assert parses == []
    assert decisions(result)["c1/web"][0] == "running"


def test_same_content_with_another_type_is_validated_again(
    world: World, parses: list[object]
) -> None:
    # desired_count 1 (a number) is valid; "1" (text, as a console edit can make it) is not.
    item = {"pk": "schedule", "sk": "c1/web", "timezone": "Asia/Tokyo"}
    item["windows"] = [{"days": "mon-fri", "start": "05:00", "end": "22:00"}]
    world.put_item({**item, "running": {"desired_count": 1}})
    first = tick(NOON_TOKYO, dry_run=True)
    assert services_of(first)["c1/web"]["decision"] == "running"
    world.put_item({**item, "running": {"desired_count": "1"}})
    parses.clear()
    with pytest.raises(handler.TickFailedError, match=r"1 service\(s\) failed: c1/web"):
        tick(QUARTER_PAST, dry_run=True)
    assert len(parses) == 1


def test_an_invalid_edit_is_reported_not_the_good_copy_used(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    tick(NOON_TOKYO)
    assert world.state("c1", "web").desired == 2
    # The person means always_off and types it wrong; the last good copy said running.
    world.put_item({"pk": "schedule", "sk": "c1/web", "mode": "alway_off"})
    capsys.readouterr()
    with pytest.raises(handler.TickFailedError) as err:
        tick(QUARTER_PAST)
    assert str(err.value) == "1 service(s) failed: c1/web"
    assert "alway_off" in capsys.readouterr().out  # the problem is logged with the value
    assert world.state("c1", "web").desired == 2  # nothing done on the old copy's say-so
    # Fixed in the next minute: the fix is read, validated and acted on.
    world.put(schedule("c1/web", mode="always_off"))
    result = tick(HALF_PAST)
    assert decisions(result)["c1/web"] == ("stopped", "mode")
    assert world.state("c1", "web").desired == 0


def test_a_calendar_change_redecides_the_services_that_use_it(world: World) -> None:
    world.put_item({"pk": "calendar", "sk": "company", "dates": ["2026-06-01"]})
    world.put(schedule("c1/web", holidays=["company"]))
    assert decisions(tick(NOON_TOKYO, dry_run=True))["c1/web"][0] == "running"
    kept = documents._kept[0]
    assert decisions(tick(QUARTER_PAST, dry_run=True))["c1/web"][0] == "running"
    assert documents._kept[0] is kept  # same calendars: the same Decider, timelines and all
    # The office closes today after all.
    world.put_item({"pk": "calendar", "sk": "company", "dates": ["2026-06-01", "2026-12-01"]})
    result = tick(HALF_PAST, dry_run=True)
    assert decisions(result)["c1/web"] == ("stopped", "holiday")
    assert decisions(result)["c1/api"][0] == "running"
    assert documents._kept[0] is not kept
    # And removing the calendar document altogether is seen too.
    world.dynamodb.delete_item(
        TableName=world.settings.config_table,
        Key={"pk": {"S": "calendar"}, "sk": {"S": "company"}},
    )
    with pytest.raises(handler.TickFailedError, match="c1/web"):
        tick("2026-12-01T03:45:00Z", dry_run=True)


def test_an_override_added_then_removed_between_warm_ticks(world: World) -> None:
    assert decisions(tick(NOON_TOKYO))["c1/web"][0] == "running"
    override = {
        "kind": "override",
        "service": "c1/web",
        "state": "stopped",
        "until": "2026-12-01T18:00:00+09:00",
        "reason": "maintenance",
        "id": "m1",
    }
    world.put(override)
    result = tick(QUARTER_PAST)
    assert decisions(result)["c1/web"] == ("stopped", "override")
    assert world.state("c1", "web").desired == 0
    world.dynamodb.delete_item(
        TableName=world.settings.config_table,
        Key={"pk": {"S": "override"}, "sk": {"S": "c1/web#m1"}},
    )
    result = tick(HALF_PAST)
    assert decisions(result)["c1/web"][0] == "running"
    assert world.state("c1", "web").desired == 2


def test_outside_the_handler_nothing_is_reused(world: World, parses: list[object]) -> None:
    store = world.config()
    store.load_config()
    store.load_config()
    # Every load validates each of the two documents (twice: as an item, then as a set).
    assert len(parses) == 2 * 2 * 2
