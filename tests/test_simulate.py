"""Simulated hours and costs, checked against figures computed by hand.

Hand arithmetic for the samples (one task, unless said otherwise):
- Mon-Fri 05:00-22:00 JST: 5 x 17 h = 85 h running; 168 - 85 = 83 h stopped.
- The same with one weekday a Japanese holiday: 4 x 17 h = 68 h running, 100 h stopped.
- A window starting at 05:07 starts at the 05:15 tick: 5 x 16.75 h = 83.75 h.
- America/New_York, Mon 2026-03-02 .. Sun 2026-03-08 (clocks go forward on Sunday, 167 h):
  mon-fri 08:00-19:00 = 55 h, plus Sunday 00:00-06:00 which loses 02:00-03:00 = 5 h: 60 h
  running, 107 h stopped. Mon 2026-10-26 .. Sun 2026-11-01 (clocks go back, 169 h): 55 h plus
  Sunday 00:00-06:00 with 01:00-02:00 twice = 7 h: 62 h running, 107 h stopped.
- An override keeping the service up Wednesday 22:00-23:30 adds 1.5 h: 86.5 h running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
import pytz
from hypothesis import given
from hypothesis import strategies as st

from engine.decide import Decider, Run
from engine.model import DecisionSource, DecisionState, Segment
from engine.pricing import DEFAULT_TASK_SIZE, TaskSize, parse_price_table, price_for
from engine.simulate import (
    TICK,
    ServiceSimulation,
    apply_tick_delay,
    local_range,
    running_tasks,
    simulate,
    simulate_service,
    tick_at_or_after,
    totals,
)
from schemas.documents import Override, Schedule
from schemas.validation import DocumentSet

TOKYO = "Asia/Tokyo"
NEW_YORK = "America/New_York"
PRICES = price_for("ap-northeast-1")


def at(zone: str, text: str, *, first: bool = True) -> datetime:
    """A local wall-clock time as an instant (``first`` picks the first of a repeated hour)."""
    return pytz.timezone(zone).localize(datetime.fromisoformat(text), is_dst=first)


Interval = tuple[datetime, datetime, DecisionState, DecisionSource]


def build(
    start: datetime, end: datetime, changes: Sequence[Interval], *, holiday: str | None = None
) -> list[Segment]:
    """Contiguous segments over [start, end): the given intervals, stopped/default elsewhere."""
    segments: list[Segment] = []
    cursor = start
    for first, last, state, source in sorted(changes, key=lambda c: c[0]):
        if first > cursor:
            segments.append(Segment(cursor, first, "stopped", "default", "outside windows"))
        reason = f"{source} {state}"
        segments.append(
            Segment(
                first,
                last,
                state,
                source,
                reason,
                holiday=holiday if source == "holiday" else None,
                override_id="o-1" if source == "override" else None,
            )
        )
        cursor = last
    if cursor < end:
        segments.append(Segment(cursor, end, "stopped", "default", "outside windows"))
    return segments


def weekdays(
    zone: str,
    monday: date,
    start: str,
    end: str,
    *,
    skip: Sequence[date] = (),
) -> list[Interval]:
    return [
        (
            at(zone, f"{day.isoformat()}T{start}"),
            at(zone, f"{day.isoformat()}T{end}"),
            "running",
            "window",
        )
        for day in (monday + timedelta(days=i) for i in range(5))
        if day not in skip
    ]


def schedule(zone: str = TOKYO, **extra: Any) -> Schedule:
    fields: dict[str, Any] = {
        "service": "shop/web-stg",
        "timezone": zone,
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
    }
    fields.update(extra)
    return Schedule.model_validate(fields)


def run(
    segments: Sequence[Segment],
    *,
    zone: str = TOKYO,
    tasks_running: int = 1,
    tasks_stopped: int = 0,
    size: TaskSize = DEFAULT_TASK_SIZE,
    **extra: Any,
) -> ServiceSimulation:
    return simulate_service(
        schedule(zone, **extra),
        segments,
        tasks_running=tasks_running,
        tasks_stopped=tasks_stopped,
        size=size,
        prices=PRICES,
    )


def week(zone: str, monday: date) -> tuple[datetime, datetime]:
    return local_range(monday, monday + timedelta(days=6), zone)


# The tick -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-11-16T05:07", "2026-11-16T05:15"),
        ("2026-11-16T05:00", "2026-11-16T05:00"),
        ("2026-11-16T05:00:01", "2026-11-16T05:15"),
        ("2026-11-16T23:59", "2026-11-17T00:00"),
        ("2026-11-16T22:14:59", "2026-11-16T22:15"),
    ],
)
def test_a_change_takes_effect_at_the_first_tick_at_or_after_it(local: str, expected: str) -> None:
    assert tick_at_or_after(at(TOKYO, local)) == at(TOKYO, expected)


def test_ticks_fall_on_local_quarter_hours_in_a_quarter_hour_zone() -> None:
    # Nepal is UTC+05:45: the 05:07 change still lands on the local 05:15 tick.
    assert tick_at_or_after(at("Asia/Kathmandu", "2026-11-16T05:07")) == at(
        "Asia/Kathmandu", "2026-11-16T05:15"
    )


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_tick_is_the_earliest_aligned_instant_not_before_the_change(naive: datetime) -> None:
    instant = naive.replace(tzinfo=UTC)
    tick = tick_at_or_after(instant)
    assert instant <= tick < instant + TICK
    assert (tick.minute % 15, tick.second, tick.microsecond) == (0, 0, 0)


def test_delay_moves_both_directions_of_change() -> None:
    start, end = week(TOKYO, date(2026, 11, 16))
    segments = build(
        start,
        end,
        [(at(TOKYO, "2026-11-16T05:07"), at(TOKYO, "2026-11-16T22:01"), "running", "window")],
    )
    delayed = apply_tick_delay(segments)
    assert [(s.start, s.state) for s in delayed] == [
        (start, "stopped"),
        (at(TOKYO, "2026-11-16T05:15"), "running"),
        (at(TOKYO, "2026-11-16T22:15"), "stopped"),
    ]
    assert delayed[-1].end == end


def test_a_change_no_tick_sees_disappears_and_neighbours_merge() -> None:
    start, end = week(TOKYO, date(2026, 11, 16))
    blip = (at(TOKYO, "2026-11-16T05:02"), at(TOKYO, "2026-11-16T05:14"), "running", "window")
    delayed = apply_tick_delay(build(start, end, [blip]))
    assert len(delayed) == 1
    assert (delayed[0].start, delayed[0].end, delayed[0].state) == (start, end, "stopped")


def test_delay_of_nothing_is_nothing() -> None:
    assert apply_tick_delay([]) == []


_quarter_minutes = st.integers(min_value=1, max_value=7 * 24 * 60 - 1)


@given(st.lists(_quarter_minutes, min_size=0, max_size=30, unique=True))
def test_delayed_segments_cover_the_range_contiguously_on_ticks(cuts: list[int]) -> None:
    start, end = week(TOKYO, date(2026, 11, 16))
    bounds = [start, *(start + timedelta(minutes=m) for m in sorted(cuts)), end]
    states: tuple[DecisionState, ...] = ("running", "stopped")
    segments = [
        Segment(a, b, states[i % 2], "window", f"part {i % 2}")
        for i, (a, b) in enumerate(pairwise(bounds))
    ]
    delayed = apply_tick_delay(segments)
    assert delayed[0].start == start
    assert delayed[-1].end == end
    for before, after in pairwise(delayed):
        assert before.end == after.start
        assert before.start < before.end
        assert after.start == tick_at_or_after(after.start)
        assert (before.state, before.reason) != (after.state, after.reason)
    # The state in force at every tick is what the undelayed segments said at that tick.
    tick = start
    while tick < end:
        said = next(s for s in segments if s.start <= tick < s.end)
        done = next(s for s in delayed if s.start <= tick < s.end)
        assert said.state == done.state
        tick += TICK * 7  # a sample of ticks keeps the test fast


# Hours ----------------------------------------------------------------------------------------
def test_weekday_business_hours_in_tokyo() -> None:
    monday = date(2026, 11, 16)
    start, end = week(TOKYO, monday)
    sim = run(build(start, end, weekdays(TOKYO, monday, "05:00", "22:00")))
    assert (sim.running_hours, sim.stopped_hours, sim.total_hours) == (85, 83, 168)
    assert sim.share_off == pytest.approx(83 / 168)


def test_a_weekday_holiday_takes_a_day_off() -> None:
    monday = date(2026, 11, 23)  # Labor Thanksgiving Day
    start, end = week(TOKYO, monday)
    holiday = (at(TOKYO, "2026-11-23T00:00"), at(TOKYO, "2026-11-24T00:00"), "stopped", "holiday")
    segments = build(
        start,
        end,
        [*weekdays(TOKYO, monday, "05:00", "22:00", skip=[monday]), holiday],
        holiday="Labor Thanksgiving Day (JP)",
    )
    sim = run(segments)
    assert (sim.running_hours, sim.stopped_hours) == (68, 100)


def test_a_window_starting_at_0507_counts_from_0515() -> None:
    monday = date(2026, 11, 16)
    start, end = week(TOKYO, monday)
    sim = run(build(start, end, weekdays(TOKYO, monday, "05:07", "22:00")))
    assert (sim.running_hours, sim.stopped_hours) == (83.75, 84.25)
    assert sim.running_minutes == 5 * (16 * 60 + 45)


def _dst_week(monday: date, sunday_hours: list[Interval]) -> ServiceSimulation:
    start, end = week(NEW_YORK, monday)
    segments = build(start, end, [*weekdays(NEW_YORK, monday, "08:00", "19:00"), *sunday_hours])
    return run(segments, zone=NEW_YORK)


def test_week_when_clocks_go_forward_in_new_york() -> None:
    sunday = (
        at(NEW_YORK, "2026-03-08T00:00"),
        at(NEW_YORK, "2026-03-08T06:00"),
        "running",
        "window",
    )
    sim = _dst_week(date(2026, 3, 2), [sunday])
    assert sim.total_hours == 167
    assert (sim.running_hours, sim.stopped_hours) == (60, 107)


def test_week_when_clocks_go_back_in_new_york() -> None:
    sunday = (
        at(NEW_YORK, "2026-11-01T00:00"),
        at(NEW_YORK, "2026-11-01T06:00"),
        "running",
        "window",
    )
    sim = _dst_week(date(2026, 10, 26), [sunday])
    assert sim.total_hours == 169
    assert (sim.running_hours, sim.stopped_hours) == (62, 107)


def test_an_override_adds_evening_hours() -> None:
    monday = date(2026, 11, 16)
    start, end = week(TOKYO, monday)
    evening = (at(TOKYO, "2026-11-18T22:00"), at(TOKYO, "2026-11-18T23:30"), "running", "override")
    sim = run(build(start, end, [*weekdays(TOKYO, monday, "05:00", "22:00"), evening]))
    assert (sim.running_hours, sim.stopped_hours) == (86.5, 81.5)
    assert any(s.source == "override" and s.override_id == "o-1" for s in sim.segments)


def test_an_override_ending_off_the_quarter_runs_to_the_next_tick() -> None:
    monday = date(2026, 11, 16)
    start, end = week(TOKYO, monday)
    evening = (at(TOKYO, "2026-11-18T22:00"), at(TOKYO, "2026-11-18T23:37"), "running", "override")
    sim = run(build(start, end, [*weekdays(TOKYO, monday, "05:00", "22:00"), evening]))
    assert sim.running_hours == 85 + 1.75


def test_unmanaged_time_counts_as_running() -> None:
    start, end = week(TOKYO, date(2026, 11, 16))
    sim = run([Segment(start, end, "unmanaged", "mode", "mode unmanaged")])
    assert (sim.running_hours, sim.stopped_hours, sim.unmanaged_minutes) == (168, 0, 168 * 60)
    assert sim.saved == 0


# Cost -----------------------------------------------------------------------------------------
def test_cost_to_the_cent_with_a_fixed_price_table() -> None:
    table = parse_price_table(
        {
            "as_of": "2030-01-01",
            "source": "test",
            "regions": {"ap-northeast-1": {"x86_64": {"vcpu_hour": 0.04, "gb_hour": 0.004}}},
        }
    )
    prices = price_for("ap-northeast-1", table=table)
    monday = date(2026, 11, 16)
    start, end = week(TOKYO, monday)
    sim = simulate_service(
        schedule(),
        build(start, end, weekdays(TOKYO, monday, "05:00", "22:00")),
        tasks_running=3,
        tasks_stopped=1,
        size=TaskSize(1, 2),  # 1 x 0.04 + 2 x 0.004 = 0.048 per task-hour
        prices=prices,
    )
    # without: 168 h x 3 tasks x 0.048 = 24.192; with: (85 x 3 + 83 x 1) x 0.048 = 16.224
    assert round(sim.cost_without, 2) == 24.19
    assert round(sim.cost_with, 2) == 16.22
    assert round(sim.saved, 2) == 7.97
    assert round(sim.saved_share * 100, 1) == 32.9
    data = sim.as_json()
    assert (data["cost_without"], data["cost_with"], data["saved"]) == (24.19, 16.22, 7.97)


def test_tokyo_list_price_for_the_smallest_task() -> None:
    monday = date(2026, 11, 16)
    start, end = week(TOKYO, monday)
    sim = run(build(start, end, weekdays(TOKYO, monday, "05:00", "22:00")))
    # 0.015405 per task-hour: 168 h = 2.58804, 85 h = 1.309425.
    assert (round(sim.cost_without, 2), round(sim.cost_with, 2)) == (2.59, 1.31)


def test_totals_add_up() -> None:
    monday = date(2026, 11, 16)
    start, end = week(TOKYO, monday)
    segments = build(start, end, weekdays(TOKYO, monday, "05:00", "22:00"))
    sims = [run(segments), run(segments, tasks_running=2)]
    total = totals(sims)
    assert (total.running_hours, total.stopped_hours, total.services) == (170, 166, 2)
    assert total.cost_without == pytest.approx(sims[0].cost_without * 3)
    assert total.saved == pytest.approx(sum(s.saved for s in sims))


def test_json_has_the_figures_and_local_segments() -> None:
    monday = date(2026, 11, 16)
    start, end = week(TOKYO, monday)
    data = run(build(start, end, weekdays(TOKYO, monday, "05:07", "22:00"))).as_json()
    assert data["running_hours"] == 83.75
    segments = data["segments"]
    assert isinstance(segments, list)
    assert segments[1]["start"] == "2026-11-16T05:15:00+09:00"


# Tasks ----------------------------------------------------------------------------------------
def test_running_task_count_precedence() -> None:
    plain = schedule()
    sized = schedule(running={"desired_count": 4})
    assert running_tasks(sized, tasks=2, observed=7) == 2
    assert running_tasks(sized, observed=7) == 4
    assert running_tasks(plain, observed=7) == 7
    assert running_tasks(plain) == 1


# Many services, with a stand-in Decider --------------------------------------------------------
@dataclass
class _FakeDecider:
    """Returns weekday-window segments and records what it was asked."""

    calls: list[tuple[str, datetime, datetime, int]] = field(default_factory=list)

    def segments(
        self, sched: Schedule, start: datetime, end: datetime, overrides: Sequence[Override]
    ) -> list[Segment]:
        self.calls.append((sched.key, start, end, len(overrides)))
        monday = start.astimezone(pytz.timezone(sched.timezone)).date()
        return build(start, end, weekdays(sched.timezone, monday, "05:00", "22:00"))

    def runs(
        self, sched: Schedule, start: datetime, end: datetime, overrides: Sequence[Override]
    ) -> list[Run]:
        return [
            (s.start, s.end, (s.state, s.source, s.reason, s.override_id, s.holiday))
            for s in self.segments(sched, start, end, overrides)
        ]


def _docs(*schedules: Schedule, overrides: Sequence[Override] = ()) -> DocumentSet:
    return DocumentSet(
        schedules={s.key: s for s in schedules}, calendars={}, overrides=list(overrides)
    )


def test_simulate_uses_each_zone_task_count_size_and_region() -> None:
    tokyo = schedule(service="a/one", running={"desired_count": 2})
    virginia = schedule(NEW_YORK, service="b/two", region="us-east-1")
    override = Override(
        service="a/one",
        state="running",
        until=datetime(2026, 11, 18, 23, tzinfo=UTC),
        reason="release",
    )
    decider = _FakeDecider()
    sims = simulate(
        _docs(tokyo, virginia, overrides=[override]),
        date(2026, 11, 16),
        date(2026, 11, 22),
        prices={"ap-northeast-1": PRICES, "us-east-1": price_for("us-east-1")},
        observed_tasks={"b/two@us-east-1": 5},
        sizes={"a/one": TaskSize(1, 2)},
        decider=decider,  # type: ignore[arg-type]
    )
    assert [s.service for s in sims] == ["a/one", "b/two@us-east-1"]
    one, two = sims
    assert (one.tasks_running, one.size, one.region) == (2, TaskSize(1, 2), "ap-northeast-1")
    assert (two.tasks_running, two.size, two.region) == (5, DEFAULT_TASK_SIZE, "us-east-1")
    assert two.prices.vcpu_hour == 0.04048
    assert decider.calls == [
        ("a/one", at(TOKYO, "2026-11-16T00:00"), at(TOKYO, "2026-11-23T00:00"), 1),
        ("b/two@us-east-1", at(NEW_YORK, "2026-11-16T00:00"), at(NEW_YORK, "2026-11-23T00:00"), 0),
    ]
    assert (one.running_hours, two.running_hours) == (85, 85)


def test_simulate_selects_services_by_name_and_shares_identical_work() -> None:
    schedules = [schedule(service=f"c/s{i}") for i in range(5)]
    sims = simulate(
        _docs(*schedules),
        date(2026, 11, 16),
        date(2026, 11, 22),
        prices={"ap-northeast-1": PRICES},
        services=["c/s1", "c/s3", "c/s4"],
        tasks=3,
        decider=_FakeDecider(),  # type: ignore[arg-type]
    )
    assert [s.service for s in sims] == ["c/s1", "c/s3", "c/s4"]
    assert all(s.tasks_running == 3 for s in sims)
    # The same segments are delayed and counted once: every result holds the same tuple.
    assert sims[0].segments is sims[1].segments is sims[2].segments


# The same samples through the real Decider -----------------------------------------------------
def _simulate_one(
    sched: Schedule, first: date, last: date, *overrides: Override
) -> ServiceSimulation:
    docs = _docs(sched, overrides=overrides)
    prices = {"ap-northeast-1": PRICES, "us-east-1": price_for("us-east-1")}
    (sim,) = simulate(docs, first, last, prices=prices)
    return sim


def test_decided_weekday_business_hours_in_tokyo() -> None:
    sim = _simulate_one(schedule(), date(2026, 11, 16), date(2026, 11, 22))
    assert (sim.running_hours, sim.stopped_hours) == (85, 83)


def test_decided_week_with_a_japanese_holiday() -> None:
    sim = _simulate_one(schedule(holidays=["JP"]), date(2026, 11, 23), date(2026, 11, 29))
    assert (sim.running_hours, sim.stopped_hours) == (68, 100)
    assert sim.holidays == {date(2026, 11, 23): "Labor Thanksgiving Day (JP)"}
    assert any(s.source == "holiday" for s in sim.segments)
    # The calendars it came from, so the page can name the day in another language.
    assert sim.calendars == ("JP",)


def test_decided_window_starting_at_0507() -> None:
    sched = schedule(windows=[{"days": "mon-fri", "start": "05:07", "end": "22:00"}])
    sim = _simulate_one(sched, date(2026, 11, 16), date(2026, 11, 22))
    assert sim.running_hours == 83.75
    assert sim.segments[1].start == at(TOKYO, "2026-11-16T05:15")


_NEW_YORK_WINDOWS = [
    {"days": "mon-fri", "start": "08:00", "end": "19:00"},
    {"days": "sun", "start": "00:00", "end": "06:00"},
]


@pytest.mark.parametrize(
    ("monday", "total", "running"),
    [(date(2026, 3, 2), 167, 60), (date(2026, 10, 26), 169, 62)],
)
def test_decided_dst_weeks_in_new_york(monday: date, total: int, running: int) -> None:
    sched = schedule(NEW_YORK, region="us-east-1", windows=_NEW_YORK_WINDOWS)
    sim = _simulate_one(sched, monday, monday + timedelta(days=6))
    assert (sim.total_hours, sim.running_hours, sim.stopped_hours) == (total, running, 107)


def test_decided_override_adds_evening_hours() -> None:
    override = Override(
        service="shop/web-stg",
        state="running",
        start=at(TOKYO, "2026-11-18T21:00"),
        until=at(TOKYO, "2026-11-18T23:30"),
        reason="release night",
        id="release",
    )
    sim = _simulate_one(schedule(), date(2026, 11, 16), date(2026, 11, 22), override)
    assert (sim.running_hours, sim.stopped_hours) == (86.5, 81.5)
    assert [s.override_id for s in sim.segments if s.source == "override"] == ["release"]


_times = st.sampled_from(["00:00", "04:30", "05:07", "08:00", "12:53", "19:00", "22:00", "23:59"])


@given(
    start=_times,
    end=st.sampled_from(["04:30", "06:15", "12:00", "19:00", "22:00", "24:00"]),
    days=st.sampled_from(["mon-fri", "sat,sun", "fri-mon", "wed", "daily"]),
    zone=st.sampled_from([TOKYO, NEW_YORK, "Asia/Kathmandu"]),
)
def test_hours_by_transitions_equal_hours_by_asking_at_every_tick(
    start: str, end: str, days: str, zone: str
) -> None:
    if start == end:
        return
    sched = schedule(zone, windows=[{"days": days, "start": start, "end": end}])
    monday = date(2026, 3, 2)  # the week before New York's clocks go forward
    sim = _simulate_one(sched, monday, monday + timedelta(days=7))
    range_start, range_end = local_range(monday, monday + timedelta(days=7), zone)
    decider = Decider()
    running = 0
    tick = range_start
    while tick < range_end:
        running += decider.decide(sched, tick).state == "running"
        tick = (tick + TICK).astimezone(UTC)
    assert sim.running_minutes == running * 15


def test_the_garbage_collector_is_paused_only_while_simulating() -> None:
    import gc

    from engine.simulate import _collector_paused

    assert gc.isenabled()
    with _collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _collector_paused():
        raise RuntimeError("a failure inside")
    assert gc.isenabled()
    gc.disable()
    try:
        with _collector_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
