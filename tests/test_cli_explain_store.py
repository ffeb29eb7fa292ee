"""``teiji explain`` without ``--file``: the documents come from the config table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.world import World, schedule
from tests.world import run_cli as run

SAMPLES = Path(__file__).resolve().parent.parent / "sample_schedules"


@pytest.fixture
def world(endpoint: str) -> World:
    w = World(endpoint)
    w.init_tables()
    w.put(
        {
            "kind": "calendar",
            "name": "company",
            "ranges": [{"from": "2026-12-29", "to": "2027-01-03"}],
        },
        schedule("c1/web", holidays=["JP", "company"]),
        schedule("c1/api", timezone="America/New_York", region="us-east-1"),
        {
            "kind": "override",
            "service": "c1/web",
            "state": "running",
            "start": "2026-12-01T20:00:00+09:00",
            "until": "2026-12-01T23:30:00+09:00",
            "reason": "release check",
            "created_by": "suzuki",
            "id": "3fa2c1d0",
        },
    )
    return w


def test_explain_reads_schedule_and_company_calendar_from_the_table(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, endpoint, "explain", "c1/web", "--at", "2026-12-29T10:00+09:00")
    assert code == 0
    assert out.startswith(
        "c1/web is STOPPED at Tue 2026-12-29 10:00 JST (company calendar 'company': window"
    )
    assert "Next change: running at Mon 2027-01-04 05:00 JST." in out


def test_explain_sees_the_stored_override(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, endpoint, "explain", "web", "--at", "2026-12-01T22:30+09:00", "--json"
    )
    assert code == 0
    assert json.loads(out) == {
        "service": "c1/web",
        "state": "running",
        "source": "override",
        "reason": "override 3fa2c1d0 by suzuki keeps it running until Tue 2026-12-01 23:30 JST: "
        "release check",
        "at": "2026-12-01T22:30:00+09:00",
        "next_change": "2026-12-01T23:30:00+09:00",
        "schedule": {"from": "document", "profile": None},
        # c1/web is not in ECS here: its tags cannot be read (a warning says so).
        "protected": None,
        "ignored_tag": None,
    }


def test_explain_reads_a_naive_instant_in_the_schedules_zone(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, endpoint, "explain", "c1/api", "--at", "2026-12-01T09:00", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["service"] == "c1/api@us-east-1"
    assert result["state"] == "running"
    assert result["at"] == "2026-12-01T09:00:00-05:00"


def test_explain_needs_a_service_when_there_are_several(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, endpoint, "explain", "--at", "2026-12-01T10:00+09:00")
    assert code == 2
    assert err == "teiji: name a service; schedules: c1/api@us-east-1, c1/web\n"


def test_explain_the_only_schedule_without_naming_it(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(endpoint)
    world.init_tables()
    world.put(schedule("c1/web"))
    code, out, _ = run(capsys, endpoint, "explain", "--at", "2026-12-01T10:00+09:00")
    assert code == 0
    assert out.startswith("c1/web is RUNNING")


def test_explain_unknown_service(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, endpoint, "explain", "c1/nope")
    assert code == 2
    assert (
        "no schedule for 'c1/nope' in teiji-config; no stored name is like it; schedules: "
        "c1/api@us-east-1, c1/web"
    ) in err


def test_explain_refuses_when_this_services_documents_are_invalid(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put_item(
        {
            "pk": "override",
            "sk": "c1/web#toolong1",
            "state": "running",
            "start": "2026-12-01T20:00:00+09:00",
            "until": "2026-12-20T20:00:00+09:00",
            "reason": "forgotten",
        }
    )
    code, out, err = run(capsys, endpoint, "explain", "c1/web", "--at", "2026-12-01T10:00+09:00")
    assert code == 2
    assert out == ""
    assert (
        "dynamodb:teiji-config: override c1/web#toolong1: until: the override lasts 19 days" in err
    )
    assert "the tick does not act on it until they are fixed" in err


def test_explain_ignores_problems_of_other_services(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put_item({"pk": "schedule", "sk": "c1/broken", "mode": "sometimes"})
    code, out, _ = run(capsys, endpoint, "explain", "c1/web", "--at", "2026-12-01T10:00+09:00")
    assert code == 0
    assert out.startswith("c1/web is RUNNING")


def test_explain_without_tables_says_to_run_init(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, endpoint, "explain", "c1/web")
    assert code == 1
    assert "run `teiji init`" in err


def test_explain_with_files_still_needs_no_aws(capsys: pytest.CaptureFixture[str]) -> None:
    # An endpoint nobody listens on: with --file nothing is sent.
    code, out, _ = run(
        capsys,
        "http://127.0.0.1:9",
        "explain",
        "example-cluster/example-service-stg",
        "-f",
        str(SAMPLES),
        "--at",
        "2026-12-01T10:00+09:00",
    )
    assert code == 0
    assert "is RUNNING" in out


def test_a_broken_calendar_stops_only_the_explanations_of_the_schedules_that_list_it(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Someone breaks the company calendar by hand. The tick holds back c1/web, which lists
    # it, and goes on deciding c1/api; explain says the same of each.
    world.dynamodb.put_item(
        TableName=world.settings.config_table,
        Item={"pk": {"S": "calendar"}, "sk": {"S": "company"}, "ranges": {"S": "not a list"}},
    )
    code, out, err = run(capsys, endpoint, "explain", "c1/api", "--at", "2026-12-01T10:00-05:00")
    assert code == 0, err
    assert "company" not in out + err
    code, out, err = run(capsys, endpoint, "explain", "c1/web", "--at", "2026-12-29T10:00+09:00")
    assert code == 2
    assert "calendar company" in err and "holidays[1]" in err
    assert "the tick does not act on it until they are fixed" in err
