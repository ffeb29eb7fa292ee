"""Where teiji's own code plugs into the benchmark.

``load_tick()`` adapts ``engine.tick.run_tick``; ``load_decide()`` and ``load_simulate()``
adapt ``engine.decide`` and ``engine.simulate`` to a ``Workload``. If a module cannot be
imported its figures are null.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bench.micro import DecideRunner, SimulateRunner, Workload
from bench.world import World, deployment_access
from engine.aws.clients import Clients
from engine.aws.clock import Clock
from schemas.documents import Override


@dataclass(frozen=True)
class TickEnv:
    """What one measured tick gets.

    ``clients`` were made inside the emulator (their requests pay latency and meet AWS's
    buckets); the tick installs its own ``Pacer`` on them with ``clock``. ``clock`` is emulated
    time: pacing, deadlines and worker threads (through ``engine.aws.clock.participating``)
    must all use it, so the figures mean emulated seconds.
    """

    world: World
    clients: Clients
    clock: Clock
    at: datetime


@dataclass(frozen=True)
class TickOutcome:
    """What the tick says it did; the benchmark checks it against the emulator's counts."""

    changed_services: int
    failed_services: int
    api_calls: int | None = None
    throttle_errors: int | None = None


@dataclass(frozen=True)
class TeijiTick:
    # Writes the world's documents (and creates tables) with plain clients, before measuring.
    prepare: Callable[[World, Clients], None]
    run: Callable[[TickEnv], TickOutcome]


def load_tick() -> TeijiTick | None:
    """teiji's tick: ``engine.tick.run_tick`` with the documented rates on the emulated clock."""
    try:
        from engine.aws.pacing import Pacer
        from engine.config import Settings
        from engine.documents import warm_reuse
        from engine.store import ConfigStore, init_tables
        from engine.tick import run_tick
    except ImportError:
        return None

    settings = Settings(access=deployment_access())

    def prepare(world: World, clients: Clients) -> None:
        init_tables(clients, settings)
        # teiji's defaults: every schedule says nothing of targets, so it means `verify`.
        ConfigStore(clients, settings.config_table).put(world.schedules())

    def run(env: TickEnv) -> TickOutcome:
        # environ={}: the documented rates, whatever TEIJI_RATE_* the shell running it has.
        pacer = Pacer(clock=env.clock, environ={})
        # As the Lambda handler runs it: a warm container reuses what it parsed while the
        # stored documents are unchanged (engine.documents).
        with warm_reuse():
            report = run_tick(env.clients, settings, at=env.at, dry_run=False, pacer=pacer)
        counts = report.counts
        return TickOutcome(
            changed_services=counts["changed"],
            failed_services=counts["failed"] + counts["skipped"],
            api_calls=report.api_calls,
            throttle_errors=report.throttle_errors,
        )

    return TeijiTick(prepare, run)


def load_decide() -> DecideRunner | None:
    """One tick's deciding: a fresh ``Decider``, overrides grouped by service, every service."""
    try:
        from engine.decide import Decider
    except ImportError:
        return None

    def decide_all(workload: Workload) -> object:
        decider = Decider({calendar.name: calendar for calendar in workload.calendars})
        overrides: dict[str, list[Override]] = {}
        for override in workload.overrides:
            overrides.setdefault(override.key, []).append(override)
        return [
            decider.decide(schedule, workload.at, overrides.get(schedule.key, ()))
            for schedule in workload.schedules
        ]

    return decide_all


def load_simulate() -> SimulateRunner | None:
    """``engine.simulate.simulate`` over the workload's documents, local dates start..end."""
    try:
        from engine.pricing import DEFAULT_REGION, price_for
        from engine.simulate import region_of, simulate
        from schemas.validation import DocumentSet
    except ImportError:
        return None

    def simulate_all(workload: Workload, start: datetime, end: datetime) -> object:
        docs = DocumentSet(
            schedules={schedule.key: schedule for schedule in workload.schedules},
            calendars={calendar.name: calendar for calendar in workload.calendars},
            overrides=list(workload.overrides),
        )
        regions = {region_of(schedule, DEFAULT_REGION) for schedule in workload.schedules}
        prices = {region: price_for(region) for region in regions}
        return simulate(docs, start.date(), end.date() - timedelta(days=1), prices=prices)

    return simulate_all
