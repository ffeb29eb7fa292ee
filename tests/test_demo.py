"""``teiji demo``: real ticks on moto in memory, over a shorter span than the default week.

Wednesday 2026-04-29 is Showa Day, a Japanese public holiday, and the demo's late-work override
keeps staging up from 21:00 to 23:30 on the Wednesday of the week: one day shows a stop, the
holiday, a start by the override and the stop after it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest

from engine.cli.demo import _Printer
from engine.cli.main import build_parser, main
from engine.demo import (
    DEFAULT_WEEK_OF,
    TICK,
    DemoEvent,
    DemoResult,
    TickProgress,
    capacity_text,
    week_start,
)
from engine.plan import Action

ALL = {"dynamic_in": True, "dynamic_out": True, "scheduled": True}
NONE = {"dynamic_in": False, "dynamic_out": False, "scheduled": False}


def lines_for(out: str, service: str) -> list[str]:
    return [
        line
        for line in out.splitlines()
        if re.match(rf"^\w{{3}} \d\d-\d\d \d\d:\d\d  {service} ", line)
    ]


def test_demo_over_a_holiday_with_late_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Whatever the caller's AWS settings say, the demo stays in memory.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    page = tmp_path / "week.html"
    code = main(["demo", "--from", "2026-04-29", "--days", "1", "--html", str(page)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Holidays in the range: Wed 04-29 Showa Day (JP)" in out
    assert (
        "every 15 minutes from Wed 2026-04-29 00:00 to Wed 2026-04-29 23:45 JST (96 ticks)" in out
    )

    stg = lines_for(out, "example-service-stg")
    assert [line[:15] for line in stg] == [
        "Wed 04-29 00:00",
        "Wed 04-29 05:00",
        "Wed 04-29 21:00",
        "Wed 04-29 23:30",
    ]
    stop, holiday, start, stop_again = stg
    assert "stop " in stop
    assert "desired 2->0, Min/Max 1..4->0..0, scaling suspended" in stop
    assert "stays stopped" in holiday and "holiday: Showa Day (JP)" in holiday
    assert "start " in start
    assert "desired 0->2, Min/Max 0..0->1..4, scaling restored" in start
    assert "override 3fa2c1d0 by suzuki keeps it running until Wed 2026-04-29 23:30 JST" in start
    assert "stop " in stop_again and "outside every window" in stop_again

    # The New York service is shown in its own local time too.
    us = lines_for(out, r"example-service-us@us-east-1")
    assert any("(Wed 08:00 EDT there)" in line for line in us)

    # The savings table and the one-line summary.
    assert re.search(r"^example-cluster/example-service-stg +2\.50 +21\.50", out, re.MULTILINE)
    assert re.search(r"^TOTAL ", out, re.MULTILINE)
    summary = out.splitlines()[-1]
    assert re.fullmatch(
        r"96 ticks run, \d+ changes made \(\d+ AWS writes\), 0 failures; [\d.]+ s, no AWS account "
        r"used\.",
        summary,
    )
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "example-service-stg" in html


def test_quiet_prints_no_set_up_and_no_events(capsys: pytest.CaptureFixture[str]) -> None:
    printer = _Printer(quiet=True)
    printer.start(DemoResult(first_day=DEFAULT_WEEK_OF, last_day=DEFAULT_WEEK_OF))
    at = datetime.fromisoformat("2026-11-23T00:00:00+09:00")
    printer.event(DemoEvent(at, "example-cluster/web", "Asia/Tokyo", "stop", "stopped", "", "x"))
    assert capsys.readouterr().out == ""
    _Printer(quiet=False).event(
        DemoEvent(at, "example-cluster/web", "Asia/Tokyo", "stop", "stopped", "desired 1->0", "x")
    )
    line = capsys.readouterr().out
    assert line.startswith("Mon 11-23 00:00  web ")
    assert "desired 1->0" in line


def test_the_default_is_the_week_of_labor_thanksgiving_day() -> None:
    args = build_parser().parse_args(["demo"])
    assert args.days == 7
    assert week_start(date.fromisoformat(args.week_of)) == DEFAULT_WEEK_OF == date(2026, 11, 23)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--week-of", "next week"], "--week-of 'next week' is not a date"),
        (["demo", "--days", "0"], "--days 0: give 1 to 28 days"),
        (["demo", "--documents", "/nonexistent"], "cannot read /nonexistent"),
    ],
)
def test_demo_usage_mistakes(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_capacity_text_says_what_a_stop_and_a_restore_changed() -> None:
    stop = [
        Action("save_baseline"),
        Action(
            "register_target",
            {"min_capacity": 1, "max_capacity": 4, "suspended": {**NONE, "scheduled": True}},
            {"min_capacity": 0, "max_capacity": 0, "suspended": ALL},
        ),
        Action("update_service", {"desired_count": 2}, {"desired_count": 0}),
    ]
    assert capacity_text(stop) == "desired 2->0, Min/Max 1..4->0..0, scaling suspended"
    restore = [
        Action(
            "register_target",
            {"min_capacity": 0, "max_capacity": 0, "suspended": ALL},
            {"min_capacity": 1, "max_capacity": 4, "suspended": NONE},
        ),
        Action("update_service", {"desired_count": 0}, {"desired_count": 2}),
        Action("delete_baseline"),
    ]
    assert capacity_text(restore) == "desired 0->2, Min/Max 0..0->1..4, scaling restored"
    assert capacity_text([Action("save_baseline")]) == "baseline saved"


# What the demo's faster serialization must not change ------------------------------------------
EVERY_TYPE = {
    "pk": {"S": "schedule"},
    "sk": {"S": "example-cluster/web"},
    "empty": {"S": ""},
    "count": {"N": "2"},
    "fraction": {"N": "-1.5e3"},
    "blob": {"B": b"\x00\xff teiji"},
    "days": {"SS": ["mon", "tue"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"a", b"\x01"]},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "windows": {
        "L": [
            {"M": {"start": {"S": "05:00"}, "end": {"S": "22:00"}, "days": {"S": "mon-fri"}}},
            {"L": [{"N": "0"}, {"BOOL": True}, {"M": {}}, {"L": []}]},
        ]
    },
}


def _dynamodb_answers() -> list[dict[str, object]]:
    import boto3

    client = boto3.client("dynamodb", region_name="ap-northeast-1")
    client.create_table(
        TableName="t",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName="t", Item=EVERY_TYPE)
    key = {"pk": EVERY_TYPE["pk"], "sk": EVERY_TYPE["sk"]}
    answers = [
        client.get_item(TableName="t", Key=key),
        client.query(
            TableName="t",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "schedule"}},
        ),
        client.scan(TableName="t"),
        client.batch_get_item(RequestItems={"t": {"Keys": [key]}}),
        client.update_item(
            TableName="t",
            Key=key,
            UpdateExpression="SET #c = :c",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues={":c": {"N": "3"}},
            ReturnValues="ALL_OLD",
        ),
        client.delete_item(TableName="t", Key=key, ReturnValues="ALL_OLD"),
    ]
    for answer in answers:
        answer.pop("ResponseMetadata")
    return answers


def test_the_demo_reads_dynamodb_items_exactly_as_moto_serializes_them() -> None:
    from moto import mock_aws
    from moto.core.serialize import BaseJSONSerializer

    from engine.demo import _lean_attribute_values

    generic = BaseJSONSerializer._serialize_type_structure
    with mock_aws():
        expected = _dynamodb_answers()
    with mock_aws(), _lean_attribute_values():
        # The shortcut is in place (a test of nothing otherwise) and gives the same answers.
        assert BaseJSONSerializer._serialize_type_structure is not generic
        assert _dynamodb_answers() == expected
    assert BaseJSONSerializer._serialize_type_structure is generic
    assert expected[0]["Item"] == EVERY_TYPE


# Progress -----------------------------------------------------------------------------------------
def _step(done: int, total: int = 192) -> TickProgress:
    at = datetime.fromisoformat("2026-11-23T00:00:00+09:00") + (done - 1) * TICK
    return TickProgress(done, total, at, elapsed=done / 10)


def test_progress_in_a_pipe_is_one_line_per_simulated_day(
    capsys: pytest.CaptureFixture[str],
) -> None:
    printer = _Printer(quiet=False, live=False)
    for done in range(1, 193):
        printer.progress(_step(done))
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "tick 96/192: Mon 11-23 23:45 JST done, 10 s",
        "tick 192/192: Tue 11-24 23:45 JST done, 19 s",
    ]
    _Printer(quiet=True, live=False).progress(_step(96))
    assert capsys.readouterr() == ("", "")


def test_progress_on_a_terminal_is_one_line_that_events_clear(
    capsys: pytest.CaptureFixture[str],
) -> None:
    printer = _Printer(quiet=False, live=True)
    printer.progress(_step(1))
    printer.progress(_step(2))
    at = datetime.fromisoformat("2026-11-23T00:15:00+09:00")
    printer.event(DemoEvent(at, "example-cluster/web", "Asia/Tokyo", "stop", "stopped", "", "x"))
    printer.clear_progress()  # nothing shown: writes nothing
    out, err = capsys.readouterr()
    assert err == (
        "\r\x1b[Ktick 1/192: Mon 11-23 00:00 JST done, 0 s"
        "\r\x1b[Ktick 2/192: Mon 11-23 00:15 JST done, 0 s"
        "\r\x1b[K"
    )
    assert out.startswith("Mon 11-23 00:15  web ")


def test_demo_shows_a_late_request_waking_staging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Thursday 2026-04-30 23:10: someone opens staging, which sleeps from 22:00.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    code = main(["demo", "--from", "2026-04-30", "--days", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    stg = lines_for(out, "example-service-stg")
    whens = [line[:15] for line in stg]
    woken = stg[whens.index("Thu 04-30 23:10")]
    assert "wake " in woken and "desired 0->2" in woken
    assert "a request to stg.example.com/reports/monthly" in woken
    kept = stg[whens.index("Thu 04-30 23:15")]
    assert "override wake by wake keeps it running until Fri 2026-05-01 01:10 JST" in kept
    stop = stg[whens.index("Fri 05-01 01:15")]
    assert "stop " in stop and "desired 2->0" in stop
