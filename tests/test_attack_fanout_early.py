"""Attacks on EarlyReads (engine.phases) and discovery's describes reused by the tick
(engine.optin ``described`` -> ScopeObserver): the state read beside discovery failing,
cut or throttled while the rest succeeds, and a service deleted between discovery's
describe and the tick's act. Without baselines nothing may act; with them it restores
exactly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from engine.config import Access, Settings
from engine.tick import run_tick
from tests.faults import zero_backoff
from tests.invariant import assert_invariant, snapshot
from tests.world import CallLog, Faults, World, at, moto_tables, on_new_clients, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night: stopped
MORNING = at("2026-12-02T09:00:00+09:00")  # Wednesday morning: running
SETTINGS = Settings(access=Access(clusters=("c1",)))
PROFILE = {
    "kind": "profile",
    "name": "office",
    "timezone": "Asia/Tokyo",
    "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
}


@pytest.fixture
def night() -> Iterator[tuple[World, dict[str, Any]]]:
    """A documented and a tagged service, stopped last night (their baselines saved)."""
    with moto_tables(SETTINGS) as world:
        world.create_service("c1", "web", desired=2, target=(1, 6))
        world.create_service("c1", "tagged", desired=3)
        arn = world.ecs.describe_services(cluster="c1", services=["tagged"])["services"][0][
            "serviceArn"
        ]
        world.ecs.tag_resource(resourceArn=arn, tags=[{"key": "teiji:profile", "value": "office"}])
        world.put(PROFILE, schedule("c1/web"))
        expected = snapshot(["c1/web", "c1/tagged"])
        report = run_tick(world.clients(), SETTINGS, at=STOP, dry_run=False)
        assert {s.key: s.outcome for s in report.services} == {
            "c1/web": "changed",
            "c1/tagged": "changed",
        }
        assert world.baseline("c1/web") is not None and world.baseline("c1/tagged") is not None
        yield world, expected


def _answer_batch_get(
    answer: Callable[[dict[str, Any], int], tuple[int, dict[str, Any]] | None],
) -> Callable[[str, Any], None]:
    """A client hook answering BatchGetItem calls itself when ``answer(params, n)`` (n: the
    how-manieth such call) gives (status, parsed answer); else the call goes on."""
    seen = [0]

    def hook(service: str, client: Any) -> None:
        def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["attack_params"] = params

        def call(model: Any, context: dict[str, Any], **_: Any) -> Any:
            if model.name != "BatchGetItem":
                return None
            seen[0] += 1
            made = answer(context.get("attack_params", {}), seen[0])
            if made is None:
                return None
            status, parsed = made
            return AWSResponse("https://attack.invalid", status, {}, None), {
                **parsed,
                "ResponseMetadata": {"HTTPStatusCode": status},
            }

        client.meta.events.register("before-parameter-build.*.*", remember)
        client.meta.events.register("before-call.*.*", call)

    return hook


def _state_read(params: dict[str, Any]) -> bool:
    text = str(params.get("RequestItems", {}).get(SETTINGS.state_table, ""))
    return "'baseline'" in text


def _morning(world: World, hook: Callable[[str, Any], None], log: CallLog | None = None) -> Any:
    clients = on_new_clients(world.clients() if log is None else log.attach(world.clients()), hook)
    return run_tick(clients, SETTINGS, at=MORNING, dry_run=False)


def _first_state_reads_fail(
    status: int, parsed: dict[str, Any], times: int
) -> Callable[[dict[str, Any], int], tuple[int, dict[str, Any]] | None]:
    left = [times]

    def answer(params: dict[str, Any], _: int) -> tuple[int, dict[str, Any]] | None:
        if left[0] == 0 or not _state_read(params):
            return None
        left[0] -= 1
        return status, parsed

    return answer


@pytest.mark.parametrize(
    ("status", "parsed"),
    [
        # Answered before anything is sent: botocore does not try it again.
        (500, {"Error": {"Code": "InternalServerError", "Message": "injected"}}),
        (400, {"Error": {"Code": "AccessDeniedException", "Message": "injected"}}),
        (200, {}),  # cut: no Responses
        (200, {"Responses": {}}),  # the table left out of a complete answer
        (200, {"Responses": {"teiji-state": "cut"}}),
        (200, {"Responses": {"teiji-state": [{"pk": {"S": "baseline"}, "sk": {"S": "c1/x"}}]}}),
        (200, {"Responses": {"teiji-state": []}, "UnprocessedKeys": "cut"}),
    ],
    ids=["500", "denied", "no-responses", "no-table", "not-a-list", "not-asked", "bad-unprocessed"],
)
def test_the_early_state_read_failing_falls_back_and_restores_exactly(
    night: tuple[World, dict[str, Any]],
    status: int,
    parsed: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, expected = night
    zero_backoff(monkeypatch)
    calls = CallLog()
    hook = _answer_batch_get(_first_state_reads_fail(status, parsed, 1))
    report = _morning(world, hook, calls)
    # The early read (beside discovery's describes) failed: the tick read them again itself
    # and restored from the baselines, never "no baseline: start at 1".
    state_reads = [c for c in calls.named("BatchGetItem") if _state_read(c.params)]
    assert len(state_reads) == 2  # the early one, then the tick's own
    assert {s.key: s.outcome for s in report.services} == {
        "c1/web": "changed",
        "c1/tagged": "changed",
    }
    assert world.state("c1", "web").desired == 2 and world.state("c1", "tagged").desired == 3
    assert_invariant(world, expected)


def test_the_state_read_failing_early_and_again_acts_on_nothing(
    night: tuple[World, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, expected = night
    zero_backoff(monkeypatch)
    hook = _answer_batch_get(_first_state_reads_fail(200, {}, 2))
    report = _morning(world, hook)
    assert {s.key: s.outcome for s in report.services} == {
        "c1/web": "failed",
        "c1/tagged": "failed",
    }
    assert world.state("c1", "web").desired == 0 and world.state("c1", "tagged").desired == 0
    assert_invariant(world, expected)


def test_the_early_state_read_throttled_retries_the_keys_handed_back(
    night: tuple[World, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB hands back every key of the mixed baseline and target-check read (throttled),
    then part of them: the read asks again for exactly those, and the tick restores from
    the baselines it then has."""
    world, expected = night
    zero_backoff(monkeypatch)
    asked: list[list[tuple[str, str]]] = []

    def answer(params: dict[str, Any], _: int) -> tuple[int, dict[str, Any]] | None:
        request = params.get("RequestItems", {}).get(SETTINGS.state_table)
        if request is None or not _state_read(params):
            return None
        keys = request["Keys"]
        asked.append([(k["pk"]["S"], k["sk"]["S"]) for k in keys])
        if len(asked) == 1:  # everything handed back
            return 200, {"Responses": {}, "UnprocessedKeys": {SETTINGS.state_table: request}}
        if len(asked) == 2 and len(keys) > 1:  # the first key handed back again, the rest read
            rest = world.dynamodb.batch_get_item(
                RequestItems={SETTINGS.state_table: {**request, "Keys": keys[1:]}}
            )
            return 200, {
                "Responses": rest["Responses"],
                "UnprocessedKeys": {SETTINGS.state_table: {**request, "Keys": keys[:1]}},
            }
        return None

    report = _morning(world, _answer_batch_get(answer))
    assert {s.key: s.outcome for s in report.services} == {
        "c1/web": "changed",
        "c1/tagged": "changed",
    }
    assert len(asked) >= 3 and asked[2] == asked[0][:1]
    assert world.state("c1", "web").desired == 2 and world.state("c1", "tagged").desired == 3
    assert_invariant(world, expected)


def test_a_documented_service_deleted_after_discovery_described_it_keeps_its_baseline(
    night: tuple[World, dict[str, Any]],
) -> None:
    """Discovery describes every listed service once and the tick reuses that answer; web is
    deleted right after, so the restore is refused as ECS refuses it for a deleted service
    (ServiceNotActiveException; moto would accept it). The refusal fails web alone, its
    baseline is kept, and the tagged service is restored."""
    world, expected = night
    deleted = [False]

    def hook(service: str, client: Any) -> None:
        def after(model: Any, **_: Any) -> None:
            if model.name == "DescribeServices" and not deleted[0]:
                deleted[0] = True
                world.delete_service("c1", "web")

        client.meta.events.register("after-call.*.*", after)

    faults = Faults().fail(
        "UpdateService",
        code="ServiceNotActiveException",
        message="Service was not ACTIVE.",
        when=lambda p: p.get("service") == "web",
    )
    clients = faults.attach(on_new_clients(world.clients(), hook))
    report = run_tick(clients, SETTINGS, at=MORNING, dry_run=False)
    assert deleted[0]
    assert report.service("c1/web").outcome == "failed"
    assert world.baseline("c1/web") is not None  # never lost on a refused restore
    assert report.service("c1/tagged").outcome == "changed"
    assert world.state("c1", "tagged").desired == 3
    assert_invariant(world, {"c1/tagged": expected["c1/tagged"]})
