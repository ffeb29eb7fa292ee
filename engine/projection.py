"""The monthly projection of a simulation (pure): what each calendar month would save.

Rule, the same for every range: for each calendar month the simulated range touches (local
dates in each service's zone), the figures simulated on that month's days are scaled by
``days in the month / days simulated in it``. A whole month simulated is its own projection
(factor 1); a week in November is projected to November's 30 days (factor 30/7); a range of
30 November to 6 December projects November from its 1 day and December from its 6. Each
month says how many days it was projected from, so a thin base is visible, never hidden: the
weekday mix and the holidays of the simulated days are what is scaled.

Savings are the stopped task-hours (hours stopped times the tasks not running then, running
count minus stopped count) at each service's price, which is the dated table of
``engine.pricing`` unless flags gave prices; running and unmanaged time cost the same with and
without teiji, so they add nothing to the savings.
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import pytz

if TYPE_CHECKING:
    from engine.simulate import ServiceSimulation

_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class MonthProjection:
    """One calendar month: what the simulated days in it show, and that scaled to the month."""

    month: date  # the first day of the month
    days_simulated: int
    days_in_month: int
    stopped_task_hours: float  # task-hours not run on the simulated days of the month
    cost_without: float  # the simulated days, everything running
    saved: float  # the simulated days
    projected_stopped_task_hours: float
    projected_cost_without: float
    projected_saved: float
    currency: str

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def factor(self) -> float:
        return self.days_in_month / self.days_simulated if self.days_simulated else 0.0

    @property
    def projected_saved_share(self) -> float:
        if not self.projected_cost_without:
            return 0.0
        return self.projected_saved / self.projected_cost_without

    def as_json(self) -> dict[str, object]:
        return {
            "month": self.label,
            "days_in_month": self.days_in_month,
            "projected_from_days": self.days_simulated,
            "stopped_task_hours": round(self.stopped_task_hours, 4),
            "saved": round(self.saved, 2),
            "projected_stopped_task_hours": round(self.projected_stopped_task_hours, 4),
            "projected_cost_without": round(self.projected_cost_without, 2),
            "projected_saved": round(self.projected_saved, 2),
            "currency": self.currency,
        }


# Per (zone, segments object): days, stopped seconds and all seconds per month. Services of one
# shape share their segments (engine.simulate), so a fleet counts each shape once.
_Counted = tuple[dict[date, int], dict[date, float], dict[date, float]]
MonthCache = dict[tuple[str, int], _Counted]


def service_months(
    sim: ServiceSimulation, *, cache: MonthCache | None = None
) -> list[MonthProjection]:
    """The months of one service's range, in order, each projected from its own days.

    ``cache`` (kept by the caller for one batch of simulations, whose segments stay alive)
    shares the counting between services with the same segments."""
    key = (sim.timezone, id(sim.segments))
    counted = cache.get(key) if cache is not None else None
    if counted is None:
        counted = _seconds_by_month(sim)
        if cache is not None:
            cache[key] = counted
    days, stopped, total = counted
    task_hour = sim.task_hour
    not_running = sim.tasks_running - sim.tasks_stopped
    months = []
    for month, simulated in days.items():
        length = calendar.monthrange(month.year, month.month)[1]
        factor = length / simulated
        task_hours = stopped[month] / 3600 * not_running
        without = total[month] / 3600 * sim.tasks_running * task_hour
        months.append(
            MonthProjection(
                month=month,
                days_simulated=simulated,
                days_in_month=length,
                stopped_task_hours=task_hours,
                cost_without=without,
                saved=task_hours * task_hour,
                projected_stopped_task_hours=task_hours * factor,
                projected_cost_without=without * factor,
                projected_saved=task_hours * task_hour * factor,
                currency=sim.prices.currency,
            )
        )
    return months


def _seconds_by_month(sim: ServiceSimulation) -> _Counted:
    """Days simulated, seconds stopped and seconds in all per local calendar month."""
    tz = pytz.timezone(sim.timezone)
    first = sim.start.astimezone(tz).date()
    last = (sim.end - _MICROSECOND).astimezone(tz).date()
    days: dict[date, int] = {}
    day = first
    while day <= last:
        key = day.replace(day=1)
        days[key] = days.get(key, 0) + 1
        day += timedelta(days=1)
    months = list(days)
    # The instants at which a month after the first begins, in the service's zone.
    boundaries = [
        tz.normalize(tz.localize(datetime(m.year, m.month, 1), is_dst=False)) for m in months[1:]
    ]
    stopped = dict.fromkeys(months, 0.0)
    total = dict.fromkeys(months, 0.0)
    for segment in sim.segments:
        cursor, end = segment.start, segment.end
        index = bisect.bisect_right(boundaries, cursor)
        while cursor < end:
            piece_end = min(end, boundaries[index]) if index < len(boundaries) else end
            seconds = (piece_end - cursor).total_seconds()
            total[months[index]] += seconds
            if segment.state == "stopped":
                stopped[months[index]] += seconds
            cursor = piece_end
            index += 1
    return days, stopped, total


def monthly_projection(simulations: Sequence[ServiceSimulation]) -> list[MonthProjection]:
    """The fleet's months: each service projected from its own days, then added up.

    ``days_simulated`` is the most any service simulated in the month (the same for all when
    they come from one ``simulate`` call, whose range is the same local dates everywhere).
    """
    by_month: dict[date, list[MonthProjection]] = {}
    cache: MonthCache = {}
    for sim in simulations:
        for month in service_months(sim, cache=cache):
            by_month.setdefault(month.month, []).append(month)
    currencies = {s.prices.currency for s in simulations}
    currency = currencies.pop() if len(currencies) == 1 else "USD"
    return [
        MonthProjection(
            month=month,
            days_simulated=max(p.days_simulated for p in parts),
            days_in_month=parts[0].days_in_month,
            stopped_task_hours=sum(p.stopped_task_hours for p in parts),
            cost_without=sum(p.cost_without for p in parts),
            saved=sum(p.saved for p in parts),
            projected_stopped_task_hours=sum(p.projected_stopped_task_hours for p in parts),
            projected_cost_without=sum(p.projected_cost_without for p in parts),
            projected_saved=sum(p.projected_saved for p in parts),
            currency=currency,
        )
        for month, parts in sorted(by_month.items())
    ]
