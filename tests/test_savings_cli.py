"""``teiji savings`` end to end over HTTP against moto's server.

The ticks run for real against the server and print their metrics lines; moto does not extract
the embedded metric format, so each line is put into CloudWatch the way CloudWatch Logs would
have extracted it (namespace, dimensions, values, units and the line's own timestamp). Quarter
hours between the real ticks get the line of the real tick in the same state (a steady tick's
figures are the same each quarter hour), re-timed; a gap is a range with no line at all.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

import engine.cli.savings as savings_cli
from engine.logs import setup_logging
from engine.pricing import price_for
from engine.simulate import simulate, totals
from engine.tick import run_tick
from tests.faults import InstantClock
from tests.world import World, at, run_cli, schedule

# 0.25 vCPU / 0.5 GB in ap-northeast-1 (engine/data/fargate_prices.json, as of 2026-06-17).
SMALL_TASK_HOUR = 0.015405
QUARTER = timedelta(minutes=15)


@pytest.fixture
def world(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, teiji_logging_restored: None
) -> Iterator[World]:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "teiji-tick")
    from engine.sizing import forget_read_sizes

    forget_read_sizes()
    w = World(endpoint)
    w.init_tables()
    w.create_cluster("c1")
    w.ecs.create_service(
        cluster="c1",
        serviceName="web",
        taskDefinition=w.task_definition(awsvpc=True),
        desiredCount=3,
        launchType="FARGATE",
    )
    w.put(schedule("c1/web"))  # Mon-Fri 05:00-22:00 Asia/Tokyo
    yield w
    forget_read_sizes()


def real_tick(world: World, when: datetime) -> dict[str, Any]:
    """One tick as the Lambda runs it; its metrics line, parsed."""
    stream = io.StringIO()
    setup_logging("INFO", stream)
    run_tick(world.clients(), world.settings, at=when, dry_run=False, pacing_clock=InstantClock())
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    (line,) = [line for line in lines if line.get("event") == "tick metrics"]
    return line


def extracted(line: dict[str, Any], when: datetime | None = None) -> list[dict[str, Any]]:
    """What CloudWatch Logs makes of an embedded-metric-format line: one data point per metric
    named in the directive, with the directive's dimensions, at the line's timestamp (or
    ``when``, for a steady line re-timed)."""
    meta = line["_aws"]
    stamp = when or datetime.fromtimestamp(meta["Timestamp"] / 1000).astimezone()
    points = []
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] == "teiji"
        for dimension_set in directive["Dimensions"]:
            dims = [{"Name": name, "Value": line[name]} for name in dimension_set]
            points.extend(
                {
                    "MetricName": metric["Name"],
                    "Dimensions": dims,
                    "Timestamp": stamp,
                    "Value": float(line[metric["Name"]]),
                    "Unit": metric["Unit"],
                }
                for metric in directive["Metrics"]
            )
    return points


def put(world: World, points: list[dict[str, Any]]) -> None:
    cloudwatch = world._raw("cloudwatch")
    for start in range(0, len(points), 1000):  # PutMetricData takes 1,000 a call
        cloudwatch.put_metric_data(Namespace="teiji", MetricData=points[start : start + 1000])


def stopped_at(when: datetime) -> bool:
    local = when.astimezone(at("2026-11-02T00:00:00+09:00").tzinfo)
    return local.weekday() >= 5 or not (5 <= local.hour < 22)


def run_days(
    world: World, first: datetime, last: datetime, gap: tuple[datetime, datetime] | None = None
) -> None:
    """Real ticks at a stop and after it, at a start and after it; the other quarter hours in
    [first, last) re-time the steady line of the same state. Nothing in ``gap``."""
    steady: dict[bool, dict[str, Any]] = {}
    points: list[dict[str, Any]] = []
    when = first
    previous: bool | None = None
    while when < last:
        state = stopped_at(when)
        if gap and gap[0] <= when < gap[1]:
            previous = None
        elif state != previous or state not in steady:
            line = real_tick(world, when)
            if state == previous:
                steady[state] = line
            points.extend(extracted(line))
            previous = state
        else:
            points.extend(extracted(steady[state], when))
        when += QUARTER
    put(world, points)


def savings(capsys: pytest.CaptureFixture[str], endpoint: str, *args: str) -> tuple[int, Any, str]:
    code, out, err = run_cli(capsys, endpoint, "savings", *args)
    return code, (json.loads(out) if out.strip().startswith("{") else out), err


def predicted_saving(world: World, first: str, last: str) -> float:
    docs, _ = world.config().load(
        now=at("2026-12-01T00:00:00Z"), max_override=world.settings.max_override
    )
    from datetime import date

    sims = simulate(
        docs,
        date.fromisoformat(first),
        date.fromisoformat(last),
        prices={"ap-northeast-1": price_for("ap-northeast-1")},
        observed_tasks={"c1/web": 3},
    )
    return totals(sims).saved


def test_one_day_realised_next_to_predicted(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Tuesday 24 November 2026 in Tokyo: stopped 00:00-05:00 and 22:00-24:00, 7 hours.
    run_days(world, at("2026-11-24T00:00:00+09:00"), at("2026-11-25T00:00:00+09:00"))
    code, report, err = savings(
        capsys, endpoint, "--from", "2026-11-24", "--to", "2026-11-24", "--json"
    )
    assert code == 0, err
    realised = report["realised"]
    assert realised["stopped_task_hours"] == pytest.approx(7 * 3)
    assert realised["estimated_savings_usd"] == pytest.approx(21 * SMALL_TASK_HOUR, abs=1e-4)
    assert realised["ticks"] == 96
    assert report["hours_without_metrics"] == []
    predicted = report["predicted"]
    assert predicted["stopped_task_hours"] == pytest.approx(21)
    assert predicted["estimated_savings_usd"] == pytest.approx(
        predicted_saving(world, "2026-11-24", "2026-11-24"), abs=1e-4
    )
    assert predicted["estimated_savings_usd"] == pytest.approx(
        realised["estimated_savings_usd"], abs=1e-3
    )

    code, text, _ = savings(capsys, endpoint, "--from", "2026-11-24", "--to", "2026-11-24")
    assert code == 0
    assert "REALISED (metrics)" in text and "PREDICTED (simulate)" in text
    assert "21.00" in text and "hours without metrics" not in text


def test_a_week_with_a_gap_where_the_function_did_not_run(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Sunday 1 to Saturday 7 November 2026; the function did not run on Tuesday the 3rd.
    gap = (at("2026-11-03T00:00:00+09:00"), at("2026-11-04T00:00:00+09:00"))
    run_days(world, at("2026-11-01T00:00:00+09:00"), at("2026-11-08T00:00:00+09:00"), gap)
    code, report, err = savings(
        capsys, endpoint, "--from", "2026-11-01", "--to", "2026-11-07", "--json"
    )
    assert code == 0, err
    # 2 weekend days of 24 h and 5 weekdays of 7 h: 83 stopped hours, 3 tasks each; the gap's
    # 7 stopped hours are missing from what was realised, and reported.
    predicted, realised = report["predicted"], report["realised"]
    assert predicted["stopped_task_hours"] == pytest.approx(83 * 3)
    assert realised["stopped_task_hours"] == pytest.approx((83 - 7) * 3)
    assert report["hours_without_metrics"] == [
        {"from": "2026-11-03T00:00:00+09:00", "to": "2026-11-04T00:00:00+09:00"}
    ]
    days = {d["date"]: d for d in realised["days"]}
    assert "2026-11-03" not in days  # no figure, not a zero
    assert days["2026-11-07"]["stopped_task_hours"] == pytest.approx(72)

    code, text, _ = savings(capsys, endpoint, "--from", "2026-11-01", "--to", "2026-11-07")
    assert code == 0
    assert "24 hours without metrics" in text and "2026-11-03 00:00" in text


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "give the range"),
        (("--from", "2026-11-24"), 2, "give the range"),
        (("--from", "2026-11-24", "--to", "2026-11-01"), 2, "is before --from"),
        (("--from", "2026-11-24", "--to", "24/11/2026"), 2, "is not a date"),
        (("--from", "2025-01-01", "--to", "2026-11-30"), 2, "at most 455"),
        (
            ("--from", "2026-11-24", "--to", "2026-11-24", "--deployment", "\x1b[2Jgone"),
            2,
            "control",
        ),
        (
            ("--from", "2026-11-24", "--to", "2026-11-24", "--deployment", "x" * 2000),
            2,
            "at most 1024",
        ),
        (("--from", "2026-11-24", "--to", "2026-11-24", "--deployment", ""), 2, "is empty"),
        (
            ("--from", "2026-11-24", "--to", "2026-11-24", "--deployment", "other"),
            1,
            "no teiji metrics",
        ),
    ],
)
def test_errors_people_read(
    world: World,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    got, _, err = savings(capsys, endpoint, *args)
    assert got == code
    assert message in err and "Traceback" not in err
    assert "\x1b" not in err


def test_no_metrics_yet(world: World, endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = savings(capsys, endpoint, "--from", "2026-11-24", "--to", "2026-11-24")
    assert code == 1 and "no teiji metrics for deployment 'teiji-tick'" in err


def test_access_denied_says_what_to_allow(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*_: Any, **__: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not authorized to GetMetricData"}},
            "GetMetricData",
        )

    monkeypatch.setattr(savings_cli, "metric_data", denied)
    code, _, err = savings(capsys, endpoint, "--from", "2026-11-24", "--to", "2026-11-24")
    assert code == 1 and "cloudwatch:GetMetricData" in err and "Traceback" not in err
