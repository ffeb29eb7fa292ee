"""``teiji savings`` for a fleet whose schedules are in another zone than
``TEIJI_DEFAULT_TIMEZONE``, over the day New York moves its clocks forward (23 hours): the
realised column reads the same local dates as the predicted one, so the two agree."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import pytz

from tests.test_savings_cli import QUARTER, extracted, put, real_tick, savings
from tests.test_savings_cli import world as base_world
from tests.world import World, at, schedule

NEW_YORK = pytz.timezone("America/New_York")


@pytest.fixture
def world(base_world: World) -> Iterator[World]:
    base_world.put(schedule("c1/web", timezone="America/New_York"))
    yield base_world


__all__ = ["base_world", "world"]


def stopped_in_new_york(when: datetime) -> bool:
    local = when.astimezone(NEW_YORK)
    return local.weekday() >= 5 or not (5 <= local.hour < 22)


def run_quarters(world: World, first: datetime, last: datetime) -> None:
    """Real ticks where the state changes, the steady line re-timed in between."""
    steady: dict[bool, dict[str, Any]] = {}
    points: list[dict[str, Any]] = []
    previous: bool | None = None
    when = first
    while when < last:
        state = stopped_in_new_york(when)
        if state != previous or state not in steady:
            line = real_tick(world, when)
            if state == previous:
                steady[state] = line
            points.extend(extracted(line))
            previous = state
        else:
            points.extend(extracted(steady[state], when))
        when += QUARTER
    put(world, points)


def test_a_new_york_fleet_is_read_over_new_york_dates_across_the_dst_change(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Saturday 7 to Tuesday 10 March 2026 in New York, every quarter hour; clocks go forward
    # on Sunday the 8th. Asked: Sunday (23 hours, all stopped) and Monday (7 hours stopped).
    run_quarters(world, at("2026-03-07T00:00:00-05:00"), at("2026-03-11T00:00:00-04:00"))
    code, report, err = savings(
        capsys, endpoint, "--from", "2026-03-08", "--to", "2026-03-09", "--json"
    )
    assert code == 0, err
    assert report["timezone"] == "America/New_York"
    assert report["predicted"]["stopped_task_hours"] == pytest.approx((23 + 7) * 3)
    assert report["realised"]["stopped_task_hours"] == pytest.approx((23 + 7) * 3)
    days = {d["date"]: d["stopped_task_hours"] for d in report["realised"]["days"]}
    assert days == {"2026-03-08": pytest.approx(69), "2026-03-09": pytest.approx(21)}
    assert report["hours_without_metrics"] == []

    code, text, _ = savings(capsys, endpoint, "--from", "2026-03-08", "--to", "2026-03-09")
    assert code == 0 and "local dates in America/New_York" in text
