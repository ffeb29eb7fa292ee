"""One corrupt answer loses nothing: through the ``teiji`` command against moto's server.

An answer that arrives with status 200 but cannot be read (cut short, garbled) or that lacks
what the operation always returns (its list, a page, a service asked for) fails the services
that call covered, for this tick, and nothing is written for them. Absence (no scalable target,
no baseline, no service) is concluded only from a complete, parsed answer. The next clean tick
converges as if the fault had never happened, and the invariant holds after every tick.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import engine.cli.tick as cli_tick
from tests.corrupt import CorruptAnswers, Mangle, as_json, cut, edit, garble
from tests.invariant import Capacity, assert_invariant, snapshot
from tests.world import CallLog, World, run_cli, schedule

STOP_AT = "2026-12-01T22:15:00+09:00"
LATER_AT = "2026-12-01T23:00:00+09:00"
START_AT = "2026-12-02T05:00:00+09:00"
SERVICES = ("c1/web", "c1/api", "c1/pinned", "c1/worker")


@pytest.fixture
def world(endpoint: str, capsys: pytest.CaptureFixture[str]) -> World:
    w = World(endpoint)
    w.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
    w.create_service(
        "c1",
        "api",
        desired=1,
        target=(1, 4),
        suspended={"in": True, "out": True, "scheduled": True},
    )
    w.create_service("c1", "pinned", desired=4, target=(4, 4))
    w.create_service("c1", "worker", desired=2)  # no autoscaling at all
    assert run_cli(capsys, endpoint, "init")[0] == 0
    w.put(*(schedule(key) for key in SERVICES))
    return w


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CorruptAnswers, CallLog]]:
    layer, log = CorruptAnswers(), CallLog()
    make = cli_tick.make_clients
    monkeypatch.setattr(
        cli_tick, "make_clients", lambda *a, **k: log.attach(layer.attach(make(*a, **k)))
    )
    yield layer, log


def _tick(capsys: pytest.CaptureFixture[str], endpoint: str, at: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(capsys, endpoint, "tick", "--at", at, "--json")
    assert "Traceback" not in err and out, err
    return code, json.loads(out)


def _outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {s["service"]: s["outcome"] for s in report["services"]}


def _errors(report: dict[str, Any]) -> dict[str, str]:
    return {s["service"]: s["error"] or "" for s in report["services"]}


def _drop_first(key: str) -> Callable[[dict[str, Any]], None]:
    def change(value: dict[str, Any]) -> None:
        del value[key][0]

    return change


def _foreign_target(value: dict[str, Any]) -> None:
    value["ScalableTargets"][0]["ResourceId"] = "service/c1/someone-else"


def _no_min(value: dict[str, Any]) -> None:
    del value["ScalableTargets"][0]["MinCapacity"]


TARGET_FAULTS: dict[str, Mangle] = {
    "cut": cut,
    "garbled": garble,
    "empty object": as_json({}),
    "list is not a list": as_json({"ScalableTargets": {"ResourceId": "x"}}),
    "a JSON list": as_json([]),
    # Every page says another follows, with the same token: the rest never comes.
    "pages missing": as_json({"ScalableTargets": [], "NextToken": "more-to-come"}),
    "a target not asked for": edit(_foreign_target),
    "an entry without MinCapacity": edit(_no_min),
}


@pytest.mark.parametrize("fault", TARGET_FAULTS, ids=str)
def test_an_unreadable_target_answer_fails_the_services_and_writes_nothing(
    fault: str,
    world: World,
    endpoint: str,
    answers: tuple[CorruptAnswers, CallLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    layer, log = answers
    expected = snapshot(SERVICES)
    layer.answer("DescribeScalableTargets", TARGET_FAULTS[fault], times=None, status=200)

    code, report = _tick(capsys, endpoint, STOP_AT)

    assert code == 1
    assert layer.damaged["DescribeScalableTargets"] >= 1
    # One DescribeScalableTargets call covers all four: every one fails, none is touched.
    assert set(_outcomes(report).values()) == {"failed"}, _outcomes(report)
    assert all("scalable target" in e and "cannot be read" in e for e in _errors(report).values())
    assert log.writes(("ecs", "application-autoscaling", "dynamodb")) == [
        c for c in log.writes(("dynamodb",)) if "lease" in json.dumps(c.params)
    ]
    assert snapshot(SERVICES) == expected
    assert all(world.baseline(key) is None for key in SERVICES)
    assert_invariant(world, expected, context=fault)

    layer.rules.clear()
    _converges_after(world, endpoint, capsys, expected)


def _converges_after(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str], expected: dict[str, Capacity]
) -> None:
    """Clean ticks: the night stops everything, the morning brings back exactly ``expected``."""
    code, _ = _tick(capsys, endpoint, LATER_AT)
    assert code == 0
    assert all(snapshot(SERVICES)[key].in_stopped_shape(0) for key in SERVICES)
    assert_invariant(world, expected, context="stopped after the fault")
    code, _ = _tick(capsys, endpoint, START_AT)
    assert code == 0
    assert snapshot(SERVICES) == expected
    assert_invariant(world, expected, context="restored")


SERVICE_FAULTS: dict[str, Mangle] = {
    "cut": cut,
    "garbled": garble,
    "empty object": as_json({}),
    "a service left out": edit(_drop_first("services")),
}


@pytest.mark.parametrize("fault", SERVICE_FAULTS, ids=str)
def test_an_unreadable_services_answer_fails_the_services_and_writes_nothing(
    fault: str,
    world: World,
    endpoint: str,
    answers: tuple[CorruptAnswers, CallLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    layer, log = answers
    expected = snapshot(SERVICES)
    layer.answer("DescribeServices", SERVICE_FAULTS[fault], times=None)

    code, report = _tick(capsys, endpoint, STOP_AT)

    assert code == 1
    assert set(_outcomes(report).values()) == {"failed"}
    assert all("cannot be read" in e for e in _errors(report).values()), _errors(report)
    assert log.writes() == []
    assert snapshot(SERVICES) == expected
    assert_invariant(world, expected, context=fault)
    layer.rules.clear()
    _converges_after(world, endpoint, capsys, expected)


def _no_table(value: dict[str, Any]) -> None:
    value["Responses"] = {}


BASELINE_FAULTS: dict[str, Mangle] = {
    "cut": cut,
    "garbled": garble,
    "empty object": as_json({}),
    "the table left out": edit(_no_table),
    "an item not asked for": edit(
        lambda v: v["Responses"]["teiji-state"][0].__setitem__("sk", {"S": "c9/other"})
    ),
}


@pytest.mark.parametrize("fault", BASELINE_FAULTS, ids=str)
def test_an_unreadable_baseline_answer_restores_nothing_and_loses_nothing(
    fault: str,
    world: World,
    endpoint: str,
    answers: tuple[CorruptAnswers, CallLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    layer, log = answers
    expected = snapshot(SERVICES)
    assert _tick(capsys, endpoint, STOP_AT)[0] == 0
    assert_invariant(world, expected, context="stopped")
    log.clear()
    layer.answer("BatchGetItem", BASELINE_FAULTS[fault], times=None)

    code, report = _tick(capsys, endpoint, START_AT)

    assert code == 1
    assert set(_outcomes(report).values()) == {"failed"}
    assert all("cannot read baselines" in e for e in _errors(report).values()), _errors(report)
    assert log.writes() == []
    assert all(snapshot(SERVICES)[key].in_stopped_shape(0) for key in SERVICES)
    assert_invariant(world, expected, context=fault)

    layer.rules.clear()
    assert _tick(capsys, endpoint, START_AT)[0] == 0
    assert snapshot(SERVICES) == {
        key: (
            want if want.min is None else Capacity(want.desired, want.min, want.max, want.suspended)
        )
        for key, want in expected.items()
    }
    assert_invariant(world, expected, context="restored")


@pytest.mark.parametrize("fault", ["cut", "pages missing"], ids=str)
def test_an_unreadable_target_answer_in_the_morning_keeps_every_bound(
    fault: str,
    world: World,
    endpoint: str,
    answers: tuple[CorruptAnswers, CallLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Read as "no scalable target", the restore would bring back only the desired counts and
    # leave 1..4 suspended at 0..0, 4..4 at 0..0.
    layer, log = answers
    expected = snapshot(SERVICES)
    assert _tick(capsys, endpoint, STOP_AT)[0] == 0
    log.clear()
    layer.answer("DescribeScalableTargets", TARGET_FAULTS[fault], times=None, status=200)

    code, report = _tick(capsys, endpoint, START_AT)

    assert code == 1 and set(_outcomes(report).values()) == {"failed"}
    assert log.writes() == []
    assert_invariant(world, expected, context=fault)
    layer.rules.clear()
    assert _tick(capsys, endpoint, START_AT)[0] == 0
    assert snapshot(SERVICES) == expected
    assert_invariant(world, expected, context="restored")


def test_an_unreadable_document_listing_stops_the_tick_before_anything(
    world: World,
    endpoint: str,
    answers: tuple[CorruptAnswers, CallLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A cut page of overrides would drop the override that keeps a service up tonight.
    layer, log = answers
    expected = snapshot(SERVICES)
    layer.cut("Query", when=lambda params: "override" in json.dumps(params), times=None)
    code, out, err = run_cli(capsys, endpoint, "tick", "--at", STOP_AT)
    assert code == 1
    assert "cannot read the documents" in out + err and "cannot be read" in out + err
    assert "Traceback" not in out + err
    assert log.writes() == []
    assert snapshot(SERVICES) == expected
    assert_invariant(world, expected)


def _next_token(token: str | None) -> Callable[[dict[str, Any]], bool]:
    return lambda params: params.get("NextToken") == token


def test_target_pages_that_come_round_again_fail_the_services_and_write_nothing(
    world: World,
    endpoint: str,
    answers: tuple[CorruptAnswers, CallLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # botocore's paginator stops on a token equal to the one just before it, not on one that
    # came earlier: pages that go A, B, A never end either, and are not "no target".
    layer, log = answers
    expected = snapshot(SERVICES)
    # A few times each: were the cycle not seen, the tick would go on to moto's own answers.
    first = edit(lambda value: value.__setitem__("NextToken", "A"))
    layer.answer("DescribeScalableTargets", first, when=_next_token(None), times=2)
    for asked, handed in (("A", "B"), ("B", "A")):
        page = as_json({"ScalableTargets": [], "NextToken": handed})
        layer.answer("DescribeScalableTargets", page, when=_next_token(asked), times=2, status=200)

    code, report = _tick(capsys, endpoint, STOP_AT)

    assert code == 1
    assert layer.damaged["DescribeScalableTargets"] == 3
    assert set(_outcomes(report).values()) == {"failed"}, _outcomes(report)
    assert all("the same NextToken came twice" in e for e in _errors(report).values())
    assert log.writes(("ecs", "application-autoscaling", "dynamodb")) == [
        c for c in log.writes(("dynamodb",)) if "lease" in json.dumps(c.params)
    ]
    assert snapshot(SERVICES) == expected
    assert_invariant(world, expected, context="pages A, B, A")
    layer.rules.clear()
    _converges_after(world, endpoint, capsys, expected)


def test_document_pages_that_never_end_stop_the_tick_before_anything(
    world: World,
    endpoint: str,
    answers: tuple[CorruptAnswers, CallLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Every page of the schedules says more follow from the same key: the schedules after it
    # never come, and a tick that went on would leave those services unmanaged tonight.
    layer, log = answers
    expected = snapshot(SERVICES)
    key = {"pk": {"S": "schedule"}, "sk": {"S": "c1/api"}}
    layer.answer(
        "Query",
        edit(lambda value: value.__setitem__("LastEvaluatedKey", key)),
        when=lambda params: (
            params.get("ExpressionAttributeValues", {}).get(":pk") == {"S": "schedule"}
        ),
        times=None,
    )
    code, out, err = run_cli(capsys, endpoint, "tick", "--at", STOP_AT)
    assert code == 1
    assert layer.damaged["Query"] == 2  # the first page, and the one after it: no third
    assert "cannot read the documents" in out + err
    assert "the same LastEvaluatedKey came twice" in out + err
    assert "Traceback" not in out + err
    assert log.writes() == []
    assert snapshot(SERVICES) == expected
    assert_invariant(world, expected)
