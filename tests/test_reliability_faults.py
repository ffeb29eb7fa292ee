"""A simulated week under injected AWS faults: capacity is never lost and teiji converges.

672 ticks (every 15 minutes for 7 days) over 56 services with mixed schedules run against
moto in-process, with 10 % of all requests failing (throttling, HTTP 500/503, connection
resets, read timeouts, answers lost after the request was carried out, concurrent updates of
scalable targets) and only two attempts per call, so many failures escape botocore's retries
and reach teiji's own failure paths. After every tick:

- capacity is never lost: a service is either at its original capacity, or a baseline holding
  exactly that capacity is stored;
- a baseline is never overwritten: while it exists its content never changes;
- a service whose state contradicts its decision was reported failed by that tick (or the
  tick itself ended in error, which makes the Lambda fail and its alarm fire);
- a service that is running after a stop has exactly its original desiredCount, MinCapacity,
  MaxCapacity and SuspendedState.
When the faults stop, the next tick converges every service.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.aws.clients import Clients
from engine.config import Settings
from engine.report import TickReport
from engine.tick import run_tick
from tests.faults import (
    Capacity,
    FaultLayer,
    InstantClock,
    baseline_capacity,
    capacities,
    fast_dynamodb_answers,
    stored_items,
    zero_backoff,
)
from tests.world import World, at, moto_tables

CREATED = at("2026-01-05T09:00:00+09:00")
WEEK_START = at("2026-04-27T00:00:00+09:00")  # Monday; Wednesday 29 April is a JP holiday
TICK = timedelta(minutes=15)
TICKS = 7 * 24 * 4
LEASE_SECONDS = 360  # what infra sets: the Lambda timeout (300 s) plus 60 s
CLUSTERS = 4
PER_KIND = 7


@dataclass(frozen=True)
class Kind:
    """One kind of service in the simulated fleet: its schedule and its original capacity."""

    name: str
    fields: dict[str, Any]
    capacity: Capacity
    stopped: int = 0
    overrides: tuple[dict[str, Any], ...] = ()


def _kinds() -> list[Kind]:
    return [
        Kind(
            "office",
            {
                "timezone": "Asia/Tokyo",
                "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
                "holidays": ["JP"],
            },
            Capacity.of(3, (2, 6), {"in": True}),
        ),
        Kind(
            "overnight",
            {
                "timezone": "UTC",
                "windows": [{"days": "daily", "start": "22:00", "end": "06:00"}],
            },
            Capacity.of(2),
        ),
        Kind(
            "cron",
            {
                "timezone": "America/New_York",
                "cron": [{"start": "0 8 * * mon-fri", "stop": "30 18 * * mon-fri"}],
            },
            Capacity.of(4, (1, 8)),
        ),
        Kind(
            "dark",
            {"mode": "always_off"},
            Capacity.of(2, (2, 4), {"scheduled": True}),
            overrides=(
                {
                    "state": "running",
                    "start": "2026-04-28T10:00:00+09:00",
                    "until": "2026-04-28T13:00:00+09:00",
                    "reason": "demo for a customer",
                    "created_by": "aiko",
                },
            ),
        ),
        Kind(
            "night-size",
            {
                "timezone": "Europe/London",
                "windows": [{"days": "mon-fri", "start": "09:00", "end": "18:00"}],
                "stopped": {"desired_count": 1},
            },
            Capacity.of(3, (2, 6), {"in": True, "out": False}),
            stopped=1,
        ),
        Kind(
            "weekend",
            {
                "timezone": "Asia/Tokyo",
                "windows": [{"days": "sat,sun", "start": "10:00", "end": "16:00"}],
                "holidays": ["company"],
            },
            Capacity.of(1),
        ),
        Kind(
            "lunch",
            {
                "timezone": "Asia/Tokyo",
                "windows": [
                    {"days": "mon-fri", "start": "08:00", "end": "12:00"},
                    {"days": "mon-fri", "start": "13:00", "end": "20:00"},
                ],
                "holidays": ["JP", "company"],
            },
            Capacity.of(5, (5, 10), {"in": True, "out": True}),
        ),
        Kind(
            "weekdays",
            {
                "timezone": "Asia/Tokyo",
                "windows": [{"days": "mon-fri", "start": "00:00", "end": "24:00"}],
                "stopped": {"desired_count": 2},
            },
            Capacity.of(4),
            stopped=2,
            overrides=(
                {
                    "state": "stopped",
                    "start": "2026-04-29T14:00:00+09:00",
                    "until": "2026-04-29T16:00:00+09:00",
                    "reason": "database migration",
                    "created_by": "ken",
                },
            ),
        ),
    ]


@dataclass(frozen=True)
class Managed:
    key: str
    kind: Kind


@dataclass
class WeekTally:
    ticks: int = 0
    ticks_in_error: int = 0
    failed_service_ticks: int = 0
    contradictions: int = 0
    restores: int = 0
    stops: int = 0
    baselines_saved: int = 0
    baselines_deleted: int = 0
    violations: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


def _build_fleet(world: World) -> list[Managed]:
    fleet: list[Managed] = []
    documents: list[dict[str, Any]] = [
        {"kind": "calendar", "name": "company", "dates": ["2026-04-30"]},
    ]
    number = 0
    for kind in _kinds():
        for index in range(PER_KIND):
            cluster = f"team{number % CLUSTERS}"
            name = f"{kind.name}-{index}"
            number += 1
            cap = kind.capacity
            world.create_service(
                cluster,
                name,
                desired=cap.desired,
                target=(cap.min, cap.max) if cap.min is not None and cap.max is not None else None,
                suspended=_flags(cap),
            )
            # A fixed creation time: it is part of the baseline saved for the service, and the
            # fault layer's draws depend on each request's content.
            world.stamp_created_at(cluster, name, CREATED)
            key = f"{cluster}/{name}"
            documents.append({"kind": "schedule", "service": key, **kind.fields})
            for n, override in enumerate(kind.overrides):
                documents.append(
                    {"kind": "override", "service": key, "id": f"{name}-{n}", **override}
                )
            fleet.append(Managed(key, kind))
    world.put(*documents)
    return fleet


def _flags(cap: Capacity) -> dict[str, bool] | None:
    if cap.suspended is None:
        return None
    flags = cap.suspended
    return {"in": flags.dynamic_in, "out": flags.dynamic_out, "scheduled": flags.scheduled}


def _baselines(world: World) -> dict[str, dict[str, Any]]:
    return stored_items(world.settings.state_table, "baseline")


def _converged(state: Capacity, decision: str, managed: Managed) -> bool:
    if decision == "stopped":
        return state.in_stopped_shape(managed.kind.stopped)
    return state == managed.kind.capacity


def _check_tick(
    tally: WeekTally,
    when: datetime,
    fleet: list[Managed],
    report: TickReport | None,
    before: dict[str, Capacity],
    previous: dict[str, dict[str, Any]],
    world: World,
) -> dict[str, dict[str, Any]]:
    """Check the invariants after one tick; return the baselines now stored."""
    states = capacities()
    baselines = _baselines(world)
    stamp = when.isoformat()
    for managed in fleet:
        key, original = managed.key, managed.kind.capacity
        state = states[key]
        stored = baselines.get(key)
        # Capacity is never lost: live, or saved exactly.
        if state != original and (stored is None or baseline_capacity(stored) != original):
            tally.violations.append(f"{stamp} {key}: capacity lost: now {state}, saved {stored}")
        # A baseline is never overwritten.
        old = previous.get(key)
        if old is not None and stored is not None and old != stored:
            tally.violations.append(f"{stamp} {key}: baseline overwritten: {old} -> {stored}")
        if old is None and stored is not None:
            tally.baselines_saved += 1
        if old is not None and stored is None:
            tally.baselines_deleted += 1
            if state != original:
                tally.violations.append(f"{stamp} {key}: baseline deleted but state is {state}")
        # Every stop -> start cycle restores exactly.
        was = before[key]
        if was.in_stopped_shape(managed.kind.stopped) and state == original:
            tally.restores += 1
        if not was.in_stopped_shape(managed.kind.stopped) and state.in_stopped_shape(
            managed.kind.stopped
        ):
            tally.stops += 1
        if report is None:
            continue  # the tick ended in error: the Lambda fails and its alarm fires
        try:
            service = report.service(key)
        except KeyError:
            tally.violations.append(f"{stamp} {key}: missing from the report ({report.lease})")
            continue
        if service.failed:
            tally.failed_service_ticks += 1
            tally.errors[(service.error or "?").split(":")[0]] += 1
        decision = service.decision.state if service.decision else None
        if decision is None:
            continue
        if not _converged(state, decision, managed):
            tally.contradictions += 1
            if not service.failed:
                tally.violations.append(
                    f"{stamp} {key}: decision {decision} but state {state}, reported "
                    f"{service.outcome}"
                )
    return baselines


@pytest.fixture
def week_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    zero_backoff(monkeypatch)
    fast_dynamodb_answers(monkeypatch)
    with moto_tables(Settings(lease_seconds=LEASE_SECONDS)) as world:
        yield world


@pytest.mark.slow
def test_a_week_of_ticks_under_faults_loses_nothing_and_converges(week_world: World) -> None:
    world = week_world
    fleet = _build_fleet(world)
    faults = FaultLayer(seed=20260427, rate=0.10)
    # botocore's max_attempts counts retries: 1 means two attempts per call.
    clients = faults.attach(Clients(region=world.region, max_attempts=1))
    tally = WeekTally()
    baselines: dict[str, dict[str, Any]] = {}

    def tick(when: datetime) -> TickReport:
        return run_tick(
            clients,
            world.settings,
            at=when,
            dry_run=False,
            clock=when.timestamp,
            pacing_clock=InstantClock(),
        )

    for number in range(TICKS):
        when = WEEK_START + number * TICK
        before = capacities()
        report: TickReport | None
        try:
            report = tick(when)
        except Exception as exc:  # the Lambda ends in error; nothing may be lost
            report = None
            tally.ticks_in_error += 1
            tally.errors[f"tick raised {type(exc).__name__}"] += 1
        tally.ticks += 1
        baselines = _check_tick(tally, when, fleet, report, before, baselines, world)

    # The faults stop: the very next tick converges every service.
    faults.enabled = False
    when = WEEK_START + TICKS * TICK
    before = capacities()
    final = tick(when)
    baselines = _check_tick(tally, when, fleet, final, before, baselines, world)
    assert not final.failed, [s.as_json() for s in final.services if s.failed]
    states = capacities()
    for managed in fleet:
        decision = final.service(managed.key).decision
        assert decision is not None
        assert _converged(states[managed.key], decision.state, managed), managed.key

    stats = faults.stats
    print(
        f"\nsimulated week: {tally.ticks} ticks, {len(fleet)} services, "
        f"{stats.total_requests} requests, {stats.total_injected} faults injected "
        f"({dict(sorted(stats.injected.items()))}), {tally.failed_service_ticks} failed "
        f"service-ticks, {tally.ticks_in_error} ticks ended in error, {tally.stops} stops, "
        f"{tally.restores} exact restores, {tally.baselines_saved} baselines saved, "
        f"{tally.baselines_deleted} deleted; failures by cause: {dict(tally.errors)}"
    )
    assert not tally.violations, "\n".join(tally.violations[:20])
    # The faults really reached teiji's failure paths, and the week really cycled services.
    assert set(stats.injected) == {
        "throttling",
        "http_500",
        "http_503",
        "connection_reset",
        "read_timeout",
        "lost_answer",
        "concurrent_update",
    }
    assert tally.failed_service_ticks > 0
    assert tally.restores >= 6 * PER_KIND
    assert tally.stops >= 6 * PER_KIND


def test_one_service_at_a_time_still_converges_every_service() -> None:
    # TEIJI_CONCURRENCY=1 once converged only the first service of each account and region.
    with moto_tables(Settings(lease_seconds=LEASE_SECONDS, concurrency=1)) as world:
        for name in ("a", "b", "c"):
            world.create_service("c1", name, desired=2)
        world.put(
            *[{"kind": "schedule", "service": f"c1/{n}", "mode": "always_off"} for n in "abc"]
        )
        report = run_tick(world.clients(), world.settings, at=WEEK_START, dry_run=False)
        assert [s.key for s in report.services] == ["c1/a", "c1/b", "c1/c"]
        assert all(capacities()[f"c1/{n}"].desired == 0 for n in "abc")
