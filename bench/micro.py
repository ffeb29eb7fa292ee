"""Micro-benchmarks of deciding and simulating, the naive evaluation they are compared with,
and the bounds ``make bench`` holds them to.

Two workloads. The mix: 10,000 services sharing ~50 distinct schedules that mix windows (some
past midnight), cron pairs, national and company holidays, five time zones, and an active
override on every 20th service, all decided at one instant. The distinct fleet: the same
shapes, but no two services with the same rules (minutes, hours and zones all vary), so no
cache is shared between services: the worst case for teiji, the usual one for croniter.
Figures are CPU seconds of this process (``time.process_time``): on a machine shared with
other work they move far less than wall-clock seconds.

The comparison is what a simple tool does every tick: for each service, turn its windows into
cron expressions and ask a fresh ``croniter`` for the last start and the last stop. It is a
timing baseline only; teiji's rules (holidays, DST, overrides) live in ``engine.decide``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import holidays as holiday_lib
import pytz
from croniter import croniter

from schemas.documents import Calendar, CronPair, Override, Schedule, Window

TIMEZONES = ("Asia/Tokyo", "UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata")
DECIDE_AT = datetime(2026, 12, 2, 3, 7, tzinfo=pytz.UTC)  # a Wednesday, mid-morning in Tokyo


@dataclass(frozen=True)
class Workload:
    schedules: list[Schedule]
    calendars: list[Calendar]
    overrides: list[Override]
    at: datetime


def _template(i: int, service: str) -> Schedule:
    """The i-th of the distinct schedules, for ``service``."""
    # kind, zone and hours vary at different strides so that i in 0..49 gives 50 shapes.
    kind = i % 5
    tz = TIMEZONES[(i // 5) % len(TIMEZONES)]
    start, end = 6 + (i // 25) * 2 + i % 2, 18 + (i // 3) % 5
    if kind == 0:
        return Schedule(
            service=service,
            timezone=tz,
            windows=[Window(days="mon-fri", start=f"{start:02d}:00", end=f"{end:02d}:30")],
        )
    if kind == 1:  # a day window and a night window that runs past midnight
        return Schedule(
            service=service,
            timezone=tz,
            windows=[
                Window(days="mon-fri", start=f"{start:02d}:15", end=f"{end:02d}:00"),
                Window(days="fri-sat", start="20:00", end="02:00"),
            ],
        )
    if kind == 2:
        return Schedule(
            service=service,
            timezone=tz,
            cron=[CronPair(start=f"0 {start} * * mon-fri", stop=f"30 {end} * * mon-fri")],
        )
    if kind == 3:
        return Schedule(
            service=service,
            timezone=tz,
            windows=[Window(days="mon-thu", start=f"{start:02d}:00", end=f"{end:02d}:00")],
            cron=[CronPair(start="0 9 * * fri", stop="0 15 * * fri")],
            holidays=["JP", "company"],
        )
    return Schedule(
        service=service,
        timezone=tz,
        windows=[Window(days="mon-fri", start=f"{start:02d}:45", end="24:00")],
        holidays=["US" if i % 2 else "DE", "company"],
    )


def decision_workload(
    services: int = 10_000, distinct: int = 50, override_every: int = 20
) -> Workload:
    schedules = [
        _template(n % distinct, f"cluster-{n // 100:03d}/service-{n:05d}") for n in range(services)
    ]
    company = Calendar(
        name="company",
        dates=[date(2026, 12, 29), date(2026, 12, 30), date(2026, 12, 31)],
    )
    overrides = [
        Override(
            service=schedules[n].service,
            state="running" if n % 2 else "stopped",
            start=DECIDE_AT - timedelta(hours=1),
            until=DECIDE_AT + timedelta(hours=3),
            reason="release rehearsal",
            id=f"o{n}",
        )
        for n in range(0, services, override_every)
    ]
    return Workload(schedules, [company], overrides, DECIDE_AT)


def simulate_workload(services: int = 1_000) -> Workload:
    return decision_workload(services)


def _distinct_template(n: int, service: str) -> Schedule:
    """The n-th of 10,500 schedules whose rules all differ (minute, end hour, zone, kind)."""
    kind, zone = n % 5, TIMEZONES[(n // 5) % len(TIMEZONES)]
    minute, end = (n // 25) % 60, 17 + (n // 1500) % 7
    start = 6
    if kind == 0:
        windows = [Window(days="mon-fri", start=f"{start:02d}:{minute:02d}", end=f"{end:02d}:30")]
        return Schedule(service=service, timezone=zone, windows=windows)
    if kind == 1:
        windows = [
            Window(days="mon-fri", start=f"{start:02d}:{minute:02d}", end=f"{end:02d}:00"),
            Window(days="fri-sat", start="20:00", end=f"02:{minute:02d}"),
        ]
        return Schedule(service=service, timezone=zone, windows=windows)
    if kind == 2:
        pair = CronPair(start=f"{minute} {start} * * mon-fri", stop=f"30 {end} * * mon-fri")
        return Schedule(service=service, timezone=zone, cron=[pair])
    if kind == 3:
        window = Window(days="mon-thu", start=f"{start:02d}:{minute:02d}", end=f"{end:02d}:00")
        return Schedule(
            service=service,
            timezone=zone,
            windows=[window],
            cron=[CronPair(start=f"{minute} 9 * * fri", stop=f"0 {end - 2} * * fri")],
            holidays=["JP", "company"],
        )
    return Schedule(
        service=service,
        timezone=zone,
        windows=[Window(days="mon-fri", start=f"{start:02d}:{minute:02d}", end=f"{end:02d}:45")],
        holidays=["US" if n % 2 else "DE", "company"],
    )


def distinct_workload(services: int = 10_000, override_every: int = 20) -> Workload:
    """``services`` services, no two with the same rules: the worst case for teiji's caches."""
    shared = decision_workload(services, override_every=override_every)
    schedules = [_distinct_template(n, s.service) for n, s in enumerate(shared.schedules)]
    return Workload(schedules, shared.calendars, shared.overrides, shared.at)


# The naive comparison ----------------------------------------------------------------------


def _cron_days(weekdays: frozenset[int], shift: int = 0) -> str:
    # teiji counts Monday as 0; cron counts Sunday as 0.
    return ",".join(str((day + shift + 1) % 7) for day in sorted(weekdays))


def window_crons(window: Window) -> tuple[str, str]:
    """A window as (start cron, stop cron) in local time."""
    start = f"{window.start_minute % 60} {window.start_minute // 60} * * "
    start += _cron_days(window.weekdays)
    end = window.end_minute % (24 * 60)
    next_day = 1 if window.overnight or window.end_minute == 24 * 60 else 0
    stop = f"{end % 60} {end // 60} * * {_cron_days(window.weekdays, next_day)}"
    return start, stop


def _holiday_dates(workload: Workload, years: range) -> dict[str, set[date]]:
    # Built once, not per service: the comparison is about the per-service cron work.
    names = {name for s in workload.schedules for name in s.holidays}
    found: dict[str, set[date]] = {}
    for name in names:
        if Schedule.is_country_code(name):
            found[name] = set(holiday_lib.country_holidays(name, years=years))
        else:
            found[name] = {d for c in workload.calendars if c.name == name for d in c.dates}
    return found


def naive_decide(workload: Workload) -> dict[str, str]:
    """running/stopped per service key, with a fresh croniter per expression per service."""
    at = workload.at
    holidays = _holiday_dates(workload, range(at.year - 1, at.year + 2))
    overrides = {o.key: o for o in workload.overrides if o.active_at(at)}
    states: dict[str, str] = {}
    for schedule in workload.schedules:
        override = overrides.get(schedule.key)
        if override is not None:
            states[schedule.key] = override.state
            continue
        local = at.astimezone(pytz.timezone(schedule.timezone))
        if any(local.date() in holidays[name] for name in schedule.holidays):
            states[schedule.key] = "stopped"
            continue
        pairs = [window_crons(w) for w in schedule.windows]
        pairs += [(c.start, c.stop) for c in schedule.cron]
        running = False
        for start, stop in pairs:
            last_start = croniter(start, local).get_prev(datetime)
            last_stop = croniter(stop, local).get_prev(datetime)
            if last_start > last_stop:
                running = True
                break
        states[schedule.key] = "running" if running else "stopped"
    return states


# Timing ------------------------------------------------------------------------------------

DecideRunner = Callable[[Workload], object]
SimulateRunner = Callable[[Workload, datetime, datetime], object]


def best_of(run: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs, in CPU seconds (the least disturbed by the machine).

    Each run starts with what the process already holds (the worlds measured before, the
    workloads) collected and frozen out of the garbage collector's sight, and unfrozen after:
    the collections that the run's own allocations start then scan the run's objects, as
    they would in a process that only decides, not the bench's leftovers. (Beside a heap of
    three million small objects, teiji's distinct fleet took 0.70 s unfrozen and 0.58 s
    frozen; a full bench/run.py, once each, measured it at 1.35 s after the worlds, against
    0.80 s in a process of its own.)"""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.freeze()
        try:
            started = time.process_time()
            run()
            best = min(best, time.process_time() - started)
        finally:
            gc.unfreeze()
    return best


def time_decide(runner: DecideRunner, workload: Workload, repeat: int = 3) -> float:
    return best_of(lambda: runner(workload), repeat)


def time_simulate(runner: SimulateRunner, workload: Workload, days: int = 30) -> float:
    start = workload.at
    return best_of(lambda: runner(workload, start, start + timedelta(days=days)), 1)


# The figures and their bounds ------------------------------------------------------------

DECIDE_10K_MAX_S = 0.2  # the mix: as fast as before the distinct fleet was measured (0.12 s)
DECIDE_DISTINCT_MAX_RATIO = 0.5  # the distinct fleet: at most half of naive croniter's time
SIMULATE_1K_30D_MAX_S = 2.0  # the mix, 1,000 services over 30 days
SIMULATE_DISTINCT_1K_30D_MAX_S = 1.0  # 1,000 distinct services over 30 days

MICRO_FIGURES = (
    "decide_10k_s",
    "naive_decide_10k_s",
    "decide_distinct_10k_s",
    "naive_decide_distinct_10k_s",
    "decide_distinct_ratio",
    "simulate_1k_30d_s",
    "simulate_distinct_1k_30d_s",
)


def measure(
    decide: DecideRunner | None, simulate: SimulateRunner | None
) -> dict[str, float | None]:
    """Every micro figure (None where teiji's runner is missing)."""
    mix, distinct = decision_workload(), distinct_workload()
    naive = best_of(lambda: naive_decide(mix), 1)
    naive_distinct = best_of(lambda: naive_decide(distinct), 2)
    found: dict[str, float | None] = dict.fromkeys(MICRO_FIGURES)
    found["naive_decide_10k_s"] = round(naive, 4)
    found["naive_decide_distinct_10k_s"] = round(naive_distinct, 4)
    if decide is not None:
        found["decide_10k_s"] = round(time_decide(decide, mix), 4)
        teiji = time_decide(decide, distinct, repeat=2)  # best of two, as naive croniter's
        found["decide_distinct_10k_s"] = round(teiji, 4)
        found["decide_distinct_ratio"] = round(teiji / naive_distinct, 3)
    if simulate is not None:
        found["simulate_1k_30d_s"] = round(time_simulate(simulate, simulate_workload()), 4)
        distinct_1k = distinct_workload(1_000)
        found["simulate_distinct_1k_30d_s"] = round(time_simulate(simulate, distinct_1k), 4)
    return found


def micro_bounds(results: dict[str, float | None]) -> list[tuple[str, float | None, float]]:
    """(figure, value, limit): each must be below its limit."""
    return [
        ("decide_10k_s", results["decide_10k_s"], DECIDE_10K_MAX_S),
        ("decide_distinct_ratio", results["decide_distinct_ratio"], DECIDE_DISTINCT_MAX_RATIO),
        ("simulate_1k_30d_s", results["simulate_1k_30d_s"], SIMULATE_1K_30D_MAX_S),
        (
            "simulate_distinct_1k_30d_s",
            results["simulate_distinct_1k_30d_s"],
            SIMULATE_DISTINCT_1K_30D_MAX_S,
        ),
    ]
