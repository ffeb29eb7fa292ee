"""Attacks on the worker's document read (ConfigStore.read_items: the four kinds at once on
threads, the scope's schedules by key with BatchGetItem): one kind failing while the others
succeed, and the by-key read cut, refused or throttled. A document that could not be read
is never taken for one that was deleted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from engine.config import Settings
from engine.tick import TickError, run_tick
from tests.faults import zero_backoff
from tests.invariant import assert_invariant, snapshot
from tests.world import Faults, World, at, moto_tables, on_new_clients, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
LATER = STOP + timedelta(minutes=10)
SETTINGS = Settings()
KEYS = ("c1/api", "c1/web")


@pytest.fixture
def stopped() -> Iterator[tuple[World, dict[str, Any]]]:
    """Two documented services, stopped by the night's first tick (baselines saved)."""
    with moto_tables(SETTINGS) as world:
        world.create_service("c1", "web", desired=2, target=(1, 6))
        world.create_service("c1", "api", desired=3)
        world.put(schedule("c1/web"), schedule("c1/api"))
        expected = snapshot(["c1/web", "c1/api"])
        run_tick(world.clients(), SETTINGS, at=STOP, dry_run=False, scope=(None, None))
        assert world.state("c1", "web").desired == 0
        yield world, expected


def _tick(world: World, clients: Any) -> Any:
    return run_tick(
        clients, SETTINGS, at=LATER, dry_run=False, scope=(None, None), schedule_keys=KEYS
    )


def _answer(
    when: Callable[[dict[str, Any]], bool], parsed: Callable[[dict[str, Any]], dict[str, Any]]
) -> Callable[[str, Any], None]:
    def hook(service: str, client: Any) -> None:
        def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["attack_params"] = params

        def call(model: Any, context: dict[str, Any], **_: Any) -> Any:
            params = context.get("attack_params", {})
            if model.name != "BatchGetItem" or not when(params):
                return None
            return AWSResponse("https://attack.invalid", 200, {}, None), {
                **parsed(params),
                "ResponseMetadata": {"HTTPStatusCode": 200},
            }

        client.meta.events.register("before-parameter-build.*.*", remember)
        client.meta.events.register("before-call.*.*", call)

    return hook


def _schedules(params: dict[str, Any]) -> bool:
    return "'schedule'" in str(params.get("RequestItems", {}).get(SETTINGS.config_table, ""))


@pytest.mark.parametrize(
    "parsed",
    [
        lambda p: {},
        lambda p: {"Responses": {}},
        lambda p: {"Responses": {SETTINGS.config_table: None}},
        lambda p: {"Responses": {SETTINGS.config_table: [{"pk": {"S": "schedule"}}]}},
    ],
    ids=["no-responses", "table-left-out", "null", "an-item-not-asked-for"],
)
def test_a_cut_answer_to_the_schedules_by_key_is_no_answer(
    stopped: tuple[World, dict[str, Any]], parsed: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    world, expected = stopped
    clients = on_new_clients(world.clients(), _answer(_schedules, parsed))
    with pytest.raises(TickError, match="cannot read the documents"):
        _tick(world, clients)
    assert world.state("c1", "web").desired == 0 and world.state("c1", "api").desired == 0
    assert world.baseline("c1/web") is not None and world.baseline("c1/api") is not None
    assert_invariant(world, expected)


def test_the_schedules_by_key_handed_back_throttled_are_asked_for_again(
    stopped: tuple[World, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, expected = stopped
    zero_backoff(monkeypatch)
    handed = [0]

    def once(params: dict[str, Any]) -> bool:
        if not _schedules(params) or handed[0]:
            return False
        handed[0] += 1
        return True

    def all_back(params: dict[str, Any]) -> dict[str, Any]:
        return {"Responses": {}, "UnprocessedKeys": params["RequestItems"]}

    clients = on_new_clients(world.clients(), _answer(once, all_back))
    report = _tick(world, clients)
    assert handed[0] == 1
    assert {s.key: s.outcome for s in report.services} == {
        "c1/web": "converged",
        "c1/api": "converged",
    }
    assert_invariant(world, expected)


@pytest.mark.parametrize("kind", ["profile", "calendar", "override"])
def test_one_kind_failing_while_the_others_are_read_fails_the_whole_read(
    stopped: tuple[World, dict[str, Any]], kind: str
) -> None:
    """The kinds are read at once on threads: the one that fails must fail the tick, never
    read as "none of that kind" (no override would then stop a service kept awake)."""
    world, expected = stopped
    faults = Faults().fail(
        "Query",
        code="AccessDeniedException",
        when=lambda p: p.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S") == kind,
    )
    with pytest.raises(TickError, match="cannot read the documents"):
        _tick(world, faults.attach(world.clients()))
    assert faults.injected == 1
    assert world.state("c1", "web").desired == 0
    assert_invariant(world, expected)
