"""The monthly projection: each calendar month scaled from the days simulated in it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.decide import Decider
from engine.pricing import DEFAULT_TASK_SIZE, price_for
from engine.projection import monthly_projection, service_months
from engine.simulate import ServiceSimulation, simulate
from schemas.documents import Schedule
from schemas.validation import DocumentSet

PRICES = {"ap-northeast-1": price_for("ap-northeast-1"), "us-east-1": price_for("us-east-1")}
TASK_HOUR = PRICES["ap-northeast-1"].task_hour(DEFAULT_TASK_SIZE)  # 0.015405 USD
DECIDER = Decider()


def _sim(
    first: date,
    last: date,
    *,
    zone: str = "Asia/Tokyo",
    running: int = 1,
    stopped: int = 0,
    holidays: tuple[str, ...] = (),
) -> ServiceSimulation:
    schedule = Schedule(
        service="shop/web-stg",
        timezone=zone,
        region="us-east-1" if zone.startswith("America") else None,
        windows=[{"days": "mon-fri", "start": "08:00", "end": "20:00"}],
        holidays=list(holidays),
        running={"desired_count": running},
        stopped={"desired_count": stopped},
    )
    (sim,) = simulate(
        DocumentSet(schedules={schedule.key: schedule}),
        first,
        last,
        prices=PRICES,
        decider=DECIDER,
    )
    return sim


def test_a_whole_month_is_its_own_projection() -> None:
    sim = _sim(date(2026, 11, 1), date(2026, 11, 30))
    (month,) = service_months(sim)
    assert (month.label, month.days_simulated, month.days_in_month) == ("2026-11", 30, 30)
    assert month.factor == 1
    assert month.projected_saved == pytest.approx(sim.saved)
    assert month.projected_cost_without == pytest.approx(sim.cost_without)
    # November 2026: 21 weekdays of 12 h running; 720 - 252 = 468 h stopped.
    assert month.projected_stopped_task_hours == pytest.approx(468)


def test_a_week_is_scaled_to_its_month() -> None:
    sim = _sim(date(2026, 11, 16), date(2026, 11, 22))
    (month,) = service_months(sim)
    # 168 - 5 x 12 = 108 h stopped, 1 task: 108 task-hours, scaled by 30 / 7.
    assert month.stopped_task_hours == pytest.approx(108)
    assert month.projected_stopped_task_hours == pytest.approx(108 * 30 / 7)
    assert month.projected_saved == pytest.approx(108 * TASK_HOUR * 30 / 7)
    assert month.as_json()["projected_from_days"] == 7


def test_a_range_across_two_months_projects_each_from_its_own_days() -> None:
    sim = _sim(date(2026, 11, 30), date(2026, 12, 6))
    november, december = service_months(sim)
    assert (november.days_simulated, november.days_in_month) == (1, 30)
    assert (december.days_simulated, december.days_in_month) == (6, 31)
    assert november.stopped_task_hours == pytest.approx(12)  # Monday 30 November
    assert december.stopped_task_hours == pytest.approx(4 * 12 + 2 * 24)  # Tue-Fri, Sat, Sun
    assert november.saved + december.saved == pytest.approx(sim.saved)


def test_a_night_size_saves_only_the_tasks_it_stops() -> None:
    sim = _sim(date(2026, 11, 16), date(2026, 11, 22), running=3, stopped=1)
    (month,) = service_months(sim)
    assert month.stopped_task_hours == pytest.approx(108 * 2)  # 3 tasks by day, 1 at night
    assert month.saved == pytest.approx(sim.saved)


def test_a_holiday_in_the_simulated_days_is_scaled_with_them() -> None:
    plain = service_months(_sim(date(2026, 11, 16), date(2026, 11, 29)))[0]
    with_holiday = service_months(_sim(date(2026, 11, 16), date(2026, 11, 29), holidays=("JP",)))
    # Monday 23 November (Labor Thanksgiving Day) is stopped: 12 h more, times 30 / 14.
    assert with_holiday[0].projected_stopped_task_hours - plain.projected_stopped_task_hours == (
        pytest.approx(12 * 30 / 14)
    )


def test_the_fleet_adds_up_its_services() -> None:
    one = _sim(date(2026, 11, 16), date(2026, 12, 13))
    other = _sim(date(2026, 11, 16), date(2026, 12, 13), zone="America/New_York", running=2)
    months = monthly_projection([one, other])
    assert [m.label for m in months] == ["2026-11", "2026-12"]
    for index, month in enumerate(months):
        parts = [service_months(one)[index], service_months(other)[index]]
        assert month.projected_saved == pytest.approx(sum(p.projected_saved for p in parts))
    assert monthly_projection([]) == []


@settings(max_examples=40, deadline=None)
@given(
    first=st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)),
    days=st.integers(min_value=1, max_value=80),
    zone=st.sampled_from(["Asia/Tokyo", "America/New_York"]),
)
def test_the_months_split_the_range_without_loss(first: date, days: int, zone: str) -> None:
    """For any range, in a zone with DST or without: the months' days add up to the range,
    their simulated savings to the service's, and a factor is never below 1."""
    sim = _sim(first, first + timedelta(days=days - 1), zone=zone)
    months = service_months(sim)
    assert sum(m.days_simulated for m in months) == days
    assert sum(m.saved for m in months) == pytest.approx(sim.saved, abs=1e-6)
    assert sum(m.cost_without for m in months) == pytest.approx(sim.cost_without, abs=1e-6)
    assert all(m.factor >= 1 for m in months)
    assert [m.month for m in months] == sorted({m.month for m in months})
