"""``make bench``: teiji's ticks in worlds of one scope and of six, against their floors.

A world of running services is built in moto: over 3 accounts x 2 regions ("six scopes") or
in the deployment's own account and region ("one scope"); a third of the services behind
target groups, half awsvpc and half bridge; teiji's defaults (``targets: verify``). The
emulated AWS adds a network latency to every request and enforces AWS's buckets for every API
teiji calls: ECS, ELB, Application Auto Scaling, STS, DynamoDB capacity (bench/emulator.py).
Between ticks the world does what ECS does (bench/world.py ``settle``: tasks started or
stopped, their targets registered or deregistered). Time is virtual: it moves only by waiting
(latency, pacing, retry back-off), so the seconds are emulated seconds, the same on any
machine. In each world, one after the other:

- a first no-op (every target check due: none was remembered yet), then a steady no-op;
- a stop of everything, a no-op after it;
- a start of everything, a no-op right after it (the checks are due again), a steady no-op;
- the hand-written tool's stop and start, call for call (bench/seed_tool.py), on the same world;
- in the one-scope world, a stop while another caller uses 10% of ECS's service-modify bucket.

Each figure stands next to its floor (bench/floor.py). CPU seconds are teiji's own: the
process's CPU during the tick less what the emulated AWS (moto) spent on its side, measured
per request on the thread that made it (one warm container runs a world's ticks, as the
Lambda handler keeps its clients and parsed documents; moto's objects are frozen out of the
garbage collector's sight meanwhile, since on Lambda they are not in teiji's heap; moto copies
each table once per transaction, bench/world.py); Lambda seconds convert them at the module's
default memory (bench/lambda_time.py). A 10,000-service transition is projected from the
largest measured world's time ratio and CPU per changed service and the floor of a 10,000-
service layout (building it in moto would take longer than the whole run).

Then the decide/simulate micro-benchmarks (real seconds), the peak RSS of the process that
runs a 10,000-service tick against moto's server in another process (bench/rss.py) and the
cold start. Prints the tables and the bounds, writes bench/results.json, and exits 1 when a
bound does not hold.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from moto import mock_aws  # noqa: E402

from bench import coldstart  # noqa: E402
from bench import stream as stream_bench  # noqa: E402
from bench.emulator import (  # noqa: E402
    AWS_LIMITS,
    DEFAULT_AAS_LIMIT,
    DEFAULT_LATENCY_S,
    AwsEmulator,
    Limit,
    TableCapacity,
    Traffic,
    aws_limits,
)
from bench.floor import (  # noqa: E402
    CHECKS_DUE,
    START,
    STEADY,
    STOP,
    STOPPED,
    TickKind,
    call_floor,
    time_floor,
)
from bench.lambda_time import LambdaConfig  # noqa: E402
from bench.micro import MICRO_FIGURES, measure, micro_bounds  # noqa: E402
from bench.rss import measure as measure_rss  # noqa: E402
from bench.seams import TeijiTick, TickEnv, TickOutcome, load_decide, load_simulate, load_tick  # noqa: E402
from bench.seed_tool import LAMBDA_TIMEOUT_S, run_seed_tool  # noqa: E402
from bench.world import (  # noqa: E402
    HOME_REGION,
    ROLE_NAME,
    RUNNING_AT,
    STARTED_AT,
    STOPPED_AT,
    World,
    WorldSpec,
    build_world,
    desired_counts,
    ecs_like,
    moto_sessions,
    planned_world,
    settle,
)
from engine.aws.clients import Clients  # noqa: E402
from engine.aws.clock import VirtualClock  # noqa: E402
from engine.cli.common import table  # noqa: E402

SIX_SCOPE_SIZES = (100, 1_000)
ONE_SCOPE_SIZES = (1_000,)
SEED_SIZES = (100, 1_000)  # six-scope worlds the hand-written tool also runs in
PROJECTED_SERVICES = 10_000
# The shared-bucket world: a stop in one account and Region while another caller in the account
# uses this share of ECS's service-modify bucket.
SHARED_OTHER_SHARE = 0.10
SHARED_AT = datetime(2026, 12, 11, 18, 0, tzinfo=UTC)  # Saturday 2026-12-12 03:00 JST
# Emulated time moves on by itself only when a worker has been busy outside the clock this long
# (real seconds): generous, so that a loaded machine does not distort the figures. ``stalls``
# in results.json says whether it ever happened.
STALL_TIMEOUT_S = 5.0
RSS_SERVICES = 10_000  # goal 2 of the performance issue: a 10,000-service tick
STARTED = time.monotonic()
QUARTER = timedelta(minutes=15)


class MeteredClock(VirtualClock):
    """The virtual clock, counting the CPU its own coordination costs the threads that sleep on
    it (a thundering herd of condition-variable wake-ups that a real clock does not have), so
    that it is not counted as teiji's."""

    def __init__(self) -> None:
        super().__init__(stall_timeout=STALL_TIMEOUT_S)
        self.cpu_s = 0.0
        self._metering = threading.Lock()

    def sleep(self, seconds: float) -> None:
        started = time.thread_time()
        try:
            super().sleep(seconds)
        finally:
            spent = time.thread_time() - started
            with self._metering:
                self.cpu_s += spent


@dataclass(frozen=True)
class Tick:
    name: str
    at: datetime
    kind: TickKind
    settle_after: bool = False  # ECS brings the tasks to the new desiredCount afterwards


SEQUENCE = (
    Tick("first_noop", RUNNING_AT - QUARTER, CHECKS_DUE),
    Tick("steady_noop", RUNNING_AT, STEADY),
    Tick("stop", STOPPED_AT, STOP, settle_after=True),
    Tick("noop_after_stop", STOPPED_AT + QUARTER, STOPPED),
    Tick("start", STARTED_AT, START, settle_after=True),
    Tick("noop_after_start", STARTED_AT + QUARTER, CHECKS_DUE),
    Tick("steady_noop_again", STARTED_AT + 2 * QUARTER, STEADY),
)


def machine() -> dict[str, Any]:
    """What the figures were measured on (the micro-benchmarks, CPU and RSS depend on it)."""
    model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor() or "unknown",
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor() or "unknown"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "cpu": model, "system": platform.platform(), "load": load}


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def _ratio(value: float | None, floor: float) -> float | None:
    return None if value is None or floor <= 0 else round(value / floor, 2)


@dataclass(frozen=True)
class Measured:
    traffic: Traffic
    emulated_s: float
    outcome: TickOutcome
    cpu_s: float  # teiji's own: the process's CPU less the emulated AWS's


@dataclass(frozen=True)
class Setup:
    latency: float
    limits: Mapping[str, Limit]
    table: TableCapacity
    lambda_config: LambdaConfig

    def emulator(
        self, clock: MeteredClock, others: Mapping[str, float] | None = None
    ) -> AwsEmulator:
        return AwsEmulator(
            clock, latency=self.latency, limits=self.limits, others=others, default_table=self.table
        )


def figures(
    world: World,
    measured: Measured | None,
    kind: TickKind,
    setup: Setup,
    limits: Mapping[str, Limit] | None = None,
    *,
    warm: bool = False,
) -> dict[str, Any]:
    floor = call_floor(world, kind=kind, warm=warm)
    floor_s = time_floor(world, kind=kind, latency=setup.latency, limits=limits or setup.limits)
    result: dict[str, Any] = {
        "floor": floor.total,
        "read_floor": floor.reads,
        "floor_s": round(floor_s, 2),
        "floor_detail": floor.as_json(),
    }
    if measured is None:
        return {"calls": None, "emulated_s": None, "throttle_errors": None, **result}
    traffic, outcome = measured.traffic, measured.outcome
    changed = outcome.changed_services
    return {
        "calls": traffic.total,
        "calls_ratio": _ratio(traffic.total, floor.total),
        "emulated_s": round(measured.emulated_s, 2),
        "time_ratio": _ratio(measured.emulated_s, floor_s),
        "throttle_errors": traffic.total_throttled,
        "cpu_s": round(measured.cpu_s, 3),
        "aws_cpu_s": round(traffic.aws_cpu_s, 3),
        "cpu_ms_per_changed_service": round(1000 * measured.cpu_s / changed, 2)
        if changed
        else None,
        "lambda_s": round(
            setup.lambda_config.lambda_seconds(measured.emulated_s, measured.cpu_s), 2
        ),
        "changed_services": changed,
        "failed_services": outcome.failed_services,
        "reported_api_calls": outcome.api_calls,
        "reported_throttle_errors": outcome.throttle_errors,
        "traffic": traffic.as_json(),
        **result,
    }


def measure_tick(
    teiji: TeijiTick,
    world: World,
    emulator: AwsEmulator,
    clock: MeteredClock,
    at: datetime,
    clients: Clients | None = None,
) -> Measured:
    """One tick; its CPU is the process's less the emulated AWS's (moto, the emulator: their
    thread CPU per request) and less the virtual clock's own (outside the emulator).

    ``clients``: a warm container's, made inside this emulator by an earlier tick (the Lambda
    handler keeps its clients between ticks); None: new ones, as a container's first tick."""
    emulator.refill()  # a quarter hour has passed since anything else ran
    emulator.reset_traffic()
    started, cpu_started, clock_cpu = clock.monotonic(), time.process_time(), clock.cpu_s
    if clients is None:
        clients = Clients(region=HOME_REGION, role_name=ROLE_NAME)  # inside the emulator
    outcome = teiji.run(TickEnv(world, clients, clock, at))
    cpu = time.process_time() - cpu_started
    emulated = clock.monotonic() - started
    traffic = emulator.reset_traffic()
    # The emulator's latency sleeps are counted in both; the clock's share outside it only.
    clock_share = max(0.0, clock.cpu_s - clock_cpu - traffic.clock_cpu_s)
    teiji_cpu = max(0.0, cpu - traffic.aws_cpu_s - clock_share)
    return Measured(traffic, emulated, outcome, teiji_cpu)


def world_name(spec: WorldSpec) -> str:
    return f"{spec.scopes} scope{'s' if spec.scopes > 1 else ''} x {spec.services}"


def run_world(spec: WorldSpec, setup: Setup, *, seed: bool, shared: bool) -> dict[str, Any]:
    """teiji's sequence of ticks in one world, then the hand-written tool, then the shared
    bucket (see the module docstring)."""
    teiji = load_tick()
    name = world_name(spec)
    with mock_aws(), ecs_like():
        log(f"{name}: building the world")
        world = build_world(spec)
        settle(world)
        result: dict[str, Any] = {
            "services": spec.services,
            "scopes": spec.scopes,
            "clusters": len(world.cluster_sizes()),
            "load_balanced": sum(1 for s in world.services if s.load_balanced),
            "bridge": sum(1 for s in world.services if s.load_balanced and s.network == "bridge"),
            "ticks": {},
        }
        if teiji is None:
            log("  teiji's tick is not wired into bench/seams.py yet: floors only")
            for tick in SEQUENCE:
                result["ticks"][tick.name] = figures(world, None, tick.kind, setup)
            return result
        teiji.prepare(world, Clients(region=HOME_REGION, role_name=ROLE_NAME))
        clock = MeteredClock()
        emulator = setup.emulator(clock)
        # One warm container runs the world's ticks, as the Lambda does between cold starts:
        # the handler keeps its clients, and parsed documents while they are unchanged.
        with emulator.installed():
            container = Clients(region=HOME_REGION, role_name=ROLE_NAME)
        # The emulated AWS's state is out of the collector's sight while teiji runs: on Lambda
        # it is not in teiji's heap, and a collection teiji's allocations start would
        # otherwise scan moto's 10,000s of objects on teiji's CPU.
        gc.collect()
        gc.freeze()
        for index, tick in enumerate(SEQUENCE):
            log(f"  {name}: teiji {tick.name.replace('_', ' ')}")
            with emulator.installed():
                measured = measure_tick(teiji, world, emulator, clock, tick.at, container)
            entry = figures(world, measured, tick.kind, setup, warm=index > 0)
            if tick.kind.transition:
                counts = desired_counts(world).values()
                wrong = (
                    (c != 0 for c in counts) if not tick.kind.running else (c == 0 for c in counts)
                )
                entry["services_not_converged"] = sum(wrong)
            result["ticks"][tick.name] = entry
            if tick.settle_after:
                settle(world)
        gc.unfreeze()
        result["stalls"] = clock.stalls
        if seed:
            result["seed"] = run_seed(world, setup)
        if shared:
            result["shared_bucket"] = run_shared(teiji, world, setup)
    return result


def left_by(limits: Mapping[str, Limit], share: float) -> dict[str, Limit]:
    """The buckets as a tick finds them when another caller uses ``share`` of ECS's
    service-modify one: its rate less that share (its burst is drawn on as well)."""
    left = dict(limits)
    modify = left["ecs_service_modify"]
    left["ecs_service_modify"] = Limit(modify.rate * (1 - share), modify.burst)
    return left


def run_shared(teiji: TeijiTick, world: World, setup: Setup) -> dict[str, Any]:
    """A stop of the world's running services while another caller in the account uses a
    share of the service-modify bucket (the tick is not told: it must learn it)."""
    share = SHARED_OTHER_SHARE
    clock = MeteredClock()
    emulator = setup.emulator(clock, others={"ecs_service_modify": share})
    log(f"  {world_name(world.spec)}: teiji stop, another caller using {share:.0%}")
    with emulator.installed():
        measured = measure_tick(teiji, world, emulator, clock, SHARED_AT)
    stopped = sum(1 for count in desired_counts(world).values() if count == 0)
    return {
        "services": len(world.services),
        "other_caller_share": share,
        "services_stopped": stopped,
        "stalls": clock.stalls,
        **figures(world, measured, STOP, setup, limits=left_by(setup.limits, share)),
    }


def run_seed(world: World, setup: Setup) -> dict[str, Any]:
    """The hand-written tool's stop, then (once ECS has settled) its start, on the world."""
    found: dict[str, Any] = {}
    for action, kind in (("stop", STOP), ("start", START)):
        clock = MeteredClock()
        emulator = setup.emulator(clock)
        log(f"  {world_name(world.spec)}: hand-written tool, {action}")
        cpu_started = time.process_time()
        with emulator.installed():
            run = run_seed_tool(action, world.services, moto_sessions(), clock)
        cpu = time.process_time() - cpu_started
        traffic = emulator.reset_traffic()
        clock_share = max(0.0, clock.cpu_s - traffic.clock_cpu_s)
        counts = desired_counts(world).values()
        left = sum(1 for c in counts if (c != 0 if action == "stop" else c == 0))
        floor = call_floor(world, kind=kind)
        found[action] = {
            "calls": traffic.total,
            "floor": floor.total,
            "calls_ratio": _ratio(traffic.total, floor.total),
            "emulated_s": round(run.wall_s, 2),
            "floor_s": round(time_floor(world, kind=kind, latency=setup.latency), 2),
            "throttle_errors": traffic.total_throttled,
            "cpu_s": round(max(0.0, cpu - traffic.aws_cpu_s - clock_share), 3),
            "services_not_converged": left,
            "services_failed": run.failed_services,
            f"done_within_{LAMBDA_TIMEOUT_S:g}_s": run.done_within(LAMBDA_TIMEOUT_S),
            "errors_printed": run.printed[:3],
            "traffic": traffic.as_json(),
        }
        settle(world)
    return found


def projected(results: Mapping[str, Any], setup: Setup) -> dict[str, Any]:
    """A 10,000-service transition in six scopes: the floor of that layout times the largest
    measured six-scope world's time ratio, plus its CPU per changed service at 10,000."""
    six = [w for w in results.values() if w["scopes"] == 6 and "stop" in w["ticks"]]
    if not six:
        return {}
    basis = max(six, key=lambda w: w["services"])
    world = planned_world(WorldSpec(PROJECTED_SERVICES))
    found: dict[str, Any] = {"services": PROJECTED_SERVICES, "from_services": basis["services"]}
    for name, kind in (("stop", STOP), ("start", START)):
        tick = basis["ticks"][name]
        floor_s = time_floor(world, kind=kind, latency=setup.latency, limits=setup.limits)
        ratio = max(1.0, tick.get("time_ratio") or 1.0)
        per_service = (tick.get("cpu_ms_per_changed_service") or 0.0) / 1000
        cpu = per_service * PROJECTED_SERVICES
        emulated = floor_s * ratio
        found[name] = {
            "floor_s": round(floor_s, 1),
            "time_ratio_used": ratio,
            "emulated_s": round(emulated, 1),
            "cpu_s": round(cpu, 1),
            "lambda_cpu_s": round(setup.lambda_config.cpu_seconds(cpu), 1),
            "lambda_s": round(setup.lambda_config.lambda_seconds(emulated, cpu), 1),
        }
    return found


def run_micro() -> dict[str, Any]:
    log("  decide and simulate: the 50-rule mix and a distinct fleet, teiji and naive croniter")
    decide = load_decide()
    simulate = load_simulate()
    if decide is None or simulate is None:
        log("  engine.decide / engine.simulate not wired into bench/seams.py yet")
    return measure(decide, simulate)


def run_rss() -> dict[str, Any]:
    log(f"  peak RSS of the tick process, {RSS_SERVICES} services in moto's server")
    measured = measure_rss(RSS_SERVICES)
    return {
        "peak_rss_mb_10k": measured["peak_rss_mb"],
        "rss_mb_idle_process": measured["idle_rss_mb"],
    }


def run_cold_start() -> dict[str, Any]:
    log(f"  cold start: {COLD_START_RUNS} first invocations from the unpacked Lambda zip")
    return coldstart.measure(COLD_START_RUNS)


# Bounds ------------------------------------------------------------------------------------

CALLS_RATIO_MAX = 1.1  # a no-op tick without target checks: calls / the call floor
STEADY_READ_RATIO_MAX = 1.2  # goal 1: a steady no-op with `targets: verify` / the read floor
TIME_RATIO_MAX = 1.15  # a transition's emulated seconds / the token-bucket floor
TIME_BOUND_FROM = 1_000  # services: smaller transitions fit in the buckets' bursts
PEAK_RSS_10K_MAX_MB = 200.0
# teiji's own CPU (the emulated AWS's left out) per service a 1,000-service transition changed.
CPU_MS_PER_CHANGED_MAX = 2.0
# The imports of the Lambda's first invocation (import engine.handler and the first tick's late
# imports, boto3 included), from the unpacked zip with its bytecode: seconds, median of the runs.
COLD_START_IMPORT_MAX_S = 0.5
COLD_START_RUNS = 5
COLD_START_FIGURES = (
    "cold_start_import_s",
    "cold_start_import_sdk_s",
    "cold_start_modules",
    "cold_start_holiday_countries",
    "cold_start_holiday_modules",
    "cold_start_compiled_from_source",
    "load_average",
    "zip_bytes",
    *coldstart.WARM_FIGURES,
)


@dataclass(frozen=True)
class Bound:
    figure: str
    value: float | None
    limit: float
    strict: bool  # value < limit (else value <= limit)
    measured: bool = True  # False: skipped on purpose (--quick, --no-micro, --no-rss)

    @property
    def holds(self) -> bool | None:
        if self.value is None:
            return None if not self.measured else False
        return self.value < self.limit if self.strict else self.value <= self.limit

    def as_json(self) -> dict[str, Any]:
        sign = "<" if self.strict else "<="
        return {
            "figure": self.figure,
            "value": self.value,
            "bound": f"{sign} {self.limit:g}",
            "holds": self.holds,
        }


def cold_start_bound(results: dict[str, Any], *, measured: bool) -> Bound:
    value = results.get("cold_start_import_s")
    return Bound("cold_start_import_s", value, COLD_START_IMPORT_MAX_S, True, measured)


def bounds(results: dict[str, Any], *, micro: bool, rss: bool, cold_start: bool) -> list[Bound]:
    found: list[Bound] = []
    for name, world in results["worlds"].items():
        found.extend(world_bounds(name, world))
    ten_k = results.get("projected_10k") or {}
    timeout = results["lambda"]["timeout_s"]
    memory = results["lambda"]["memory_mb"]
    for action in ("stop", "start"):
        if action in ten_k:
            figure = f"{PROJECTED_SERVICES} {action}: Lambda s at {memory:g} MB (projected)"
            found.append(Bound(figure, ten_k[action]["lambda_s"], timeout, False))
    for figure, value, limit in micro_bounds(results):
        found.append(Bound(figure, value, limit, True, micro))
    found.append(
        Bound("peak_rss_mb_10k", results["peak_rss_mb_10k"], PEAK_RSS_10K_MAX_MB, True, rss)
    )
    found.append(cold_start_bound(results, measured=cold_start))
    for figure, value, limit in coldstart.warm_bounds(results):
        found.append(Bound(figure, value, limit, True, cold_start))
    return found


def world_bounds(name: str, world: Mapping[str, Any]) -> list[Bound]:
    ticks = world["ticks"]
    found: list[Bound] = []
    if not ticks or ticks.get("stop", {}).get("calls") is None:
        return found
    for tick in ("steady_noop", "steady_noop_again"):
        ratio = _ratio(ticks[tick]["calls"], ticks[tick]["read_floor"])
        label = f"{name} {tick} calls / read floor"
        found.append(Bound(label, ratio, STEADY_READ_RATIO_MAX, False))
    # The no-op bound as it always was (no target check due), and the no-op of a stopped
    # world against a floor that reads no target-check record at all.
    steady = ticks["steady_noop"]["calls_ratio"]
    found.append(Bound(f"{name} steady_noop calls_ratio", steady, CALLS_RATIO_MAX, False))
    after_stop = ticks["noop_after_stop"]["calls_ratio"]
    label = f"{name} noop_after_stop calls_ratio"
    found.append(Bound(label, after_stop, STEADY_READ_RATIO_MAX, False))
    for tick, figures in ticks.items():
        found.append(Bound(f"{name} {tick} throttle_errors", figures["throttle_errors"], 0, False))
        found.append(Bound(f"{name} {tick} failed services", figures["failed_services"], 0, False))
    for tick in ("stop", "start"):
        left = ticks[tick].get("services_not_converged")
        found.append(Bound(f"{name} {tick}: services not converged", left, 0, False))
        if world["services"] >= TIME_BOUND_FROM:
            ratio = ticks[tick]["time_ratio"]
            found.append(Bound(f"{name} {tick} time_ratio", ratio, TIME_RATIO_MAX, False))
            cpu = ticks[tick].get("cpu_ms_per_changed_service")
            label = f"{name} {tick} CPU ms per changed service"
            found.append(Bound(label, cpu, CPU_MS_PER_CHANGED_MAX, False))
    shared = world.get("shared_bucket") or {}
    if shared:
        label = f"{name} shared bucket"
        found.append(Bound(f"{label} failed services", shared["failed_services"], 0, False))
        left = shared["services"] - shared["services_stopped"]
        found.append(Bound(f"{label} services left running", left, 0, False))
        found.append(
            Bound(f"{label} time_ratio (bucket left)", shared["time_ratio"], TIME_RATIO_MAX, False)
        )
    return found


def print_bounds(found: list[Bound]) -> None:
    verdict = {True: "holds", False: "DOES NOT HOLD", None: "skipped"}
    rows = [[b.figure, _cell(b.value), b.as_json()["bound"], verdict[b.holds]] for b in found]
    print()
    print(table(["bound", "value", "must be", "verdict"], rows))


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _pair(value: object, floor: object, ratio: object = None) -> str:
    text = f"{_cell(value)} / {_cell(floor)}"
    return f"{text} ({ratio}x)" if ratio is not None else text


def print_table(results: dict[str, Any]) -> None:
    memory = results["lambda"]["memory_mb"]
    rows = []
    for name, world in results["worlds"].items():
        for tick, f in world["ticks"].items():
            read_ratio = _ratio(f["calls"], f["read_floor"]) if "noop" in tick else None
            rows.append(
                [
                    name,
                    tick,
                    _pair(f["calls"], f["floor"], f.get("calls_ratio")),
                    "-" if read_ratio is None else f"{read_ratio}x",
                    _pair(f["emulated_s"], f["floor_s"], f.get("time_ratio")),
                    _cell(f["throttle_errors"]),
                    _cell(f.get("cpu_s")),
                    _cell(f.get("cpu_ms_per_changed_service")),
                    _cell(f.get("lambda_s")),
                ]
            )
        for action, f in (world.get("seed") or {}).items():
            rows.append(
                [
                    name,
                    f"hand-written tool {action}",
                    _pair(f["calls"], f["floor"], f["calls_ratio"]),
                    "-",
                    _pair(f["emulated_s"], f["floor_s"]),
                    f["throttle_errors"],
                    f["cpu_s"],
                    "-",
                    f"{f['services_not_converged']} not converged",
                ]
            )
        shared = world.get("shared_bucket") or {}
        if shared:
            rows.append(
                [
                    name,
                    f"stop, other caller {shared['other_caller_share']:.0%} of modify",
                    _pair(shared["calls"], shared["floor"], shared["calls_ratio"]),
                    "-",
                    _pair(shared["emulated_s"], shared["floor_s"], shared["time_ratio"]),
                    shared["throttle_errors"],
                    shared["cpu_s"],
                    _cell(shared.get("cpu_ms_per_changed_service")),
                    shared["lambda_s"],
                ]
            )
    headers = [
        "world",
        "tick",
        "calls / floor",
        "calls / read floor",
        "emulated s / floor s",
        "throttles",
        "teiji CPU s",
        "CPU ms / changed",
        f"Lambda s at {memory:g} MB",
    ]
    print(table(headers, rows))
    ten_k = results.get("projected_10k") or {}
    if ten_k:
        print(
            f"\nprojected, not run: {ten_k['services']:,} services in six scopes (from the "
            f"{ten_k['from_services']:,}-service world's time ratio and CPU per changed service)"
        )
        rows = [
            [a, f["floor_s"], f["emulated_s"], f["cpu_s"], f["lambda_cpu_s"], f["lambda_s"]]
            for a, f in ten_k.items()
            if isinstance(f, dict)
        ]
        print(
            table(
                ["tick", "floor s", "emulated s", "CPU s here", "CPU s on Lambda", "Lambda s"], rows
            )
        )
    micro = {k: results.get(k) for k in MICRO_FIGURES}
    micro.update({k: results.get(k) for k in ("peak_rss_mb_10k", "rss_mb_idle_process")})
    micro.update({k: results.get(k) for k in COLD_START_FIGURES})
    print()
    print(table(["figure", "value"], [[k, _cell(v)] for k, v in micro.items()]))
    print(
        "\nseconds are emulated (virtual clock) except the decide/simulate figures (CPU); CPU s "
        "is teiji's (the process's less the emulated AWS's); Lambda s = emulated s + CPU s / "
        f"{results['lambda']['vcpu_share']:.3f} (the vCPU share at {memory:g} MB)"
    )


def _sizes(text: str | None, default: tuple[int, ...], flag: str) -> tuple[int, ...]:
    if text is None:
        return default
    if text.strip() in ("", "0", "none"):
        return ()
    sizes = tuple(int(part) for part in text.split(","))
    if any(size < 1 for size in sizes):
        raise ValueError(flag)
    return sizes


def _limit(text: str | None, default: Limit, flag: str) -> Limit:
    if text is None:
        return default
    rate, _, burst = text.partition("/")
    try:
        limit = Limit(float(rate), float(burst))
    except ValueError:
        raise ValueError(flag) from None
    if not (limit.rate > 0 and limit.burst >= 1):
        raise ValueError(flag)
    return limit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="teiji's scale benchmark")
    parser.add_argument(
        "--quick", action="store_true", help="100 services in each world, no RSS, no shared"
    )
    parser.add_argument("--sizes", help="six-scope worlds, e.g. 100,1000 (default 100,1000)")
    parser.add_argument("--one-scope", help="one-scope worlds, e.g. 1000 (default 1000; 0: none)")
    parser.add_argument("--seed-sizes", help="six-scope worlds the hand-written tool runs in")
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_S * 1000)
    parser.add_argument(
        "--aas-rate",
        help=f"Application Auto Scaling's emulated bucket, rate/burst (default {DEFAULT_AAS_LIMIT};"
        " AWS publishes none)",
    )
    parser.add_argument(
        "--elb-targets-rate", help="ELB Register/DeregisterTargets' emulated bucket, rate/burst"
    )
    parser.add_argument(
        "--dynamodb-capacity",
        help="read/write units a second per table (default 40000/40000, on-demand's default)",
    )
    parser.add_argument("--no-micro", action="store_true", help="skip decide/simulate timing")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak RSS child")
    parser.add_argument(
        "--no-shared",
        action="store_true",
        help="skip the stop in a bucket shared with another caller",
    )
    parser.add_argument(
        "--no-cold-start", action="store_true", help="skip the Lambda zip's first invocation"
    )
    parser.add_argument(
        "--only",
        choices=("cold-start", "stream"),
        help="measure this part alone and check its bound (writes a file only with --out)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for botocore's retry jitter")
    parser.add_argument(
        "--out", type=Path, help="where the results go (default bench/results.json)"
    )
    args = parser.parse_args(argv)
    if args.only == "cold-start":
        return only_cold_start(args.out)
    if args.only == "stream":
        return only_stream(args.out)
    args.out = args.out or ROOT / "bench" / "results.json"

    try:
        six = _sizes(args.sizes, (100,) if args.quick else SIX_SCOPE_SIZES, "--sizes")
        one = _sizes(args.one_scope, (100,) if args.quick else ONE_SCOPE_SIZES, "--one-scope")
        seed = _sizes(args.seed_sizes, (100,) if args.quick else SEED_SIZES, "--seed-sizes")
        aas = _limit(args.aas_rate, DEFAULT_AAS_LIMIT, "--aas-rate")
        elb_targets = _limit(args.elb_targets_rate, AWS_LIMITS["elb_register_targets"], "--elb")
        read, _, write = (args.dynamodb_capacity or "40000/40000").partition("/")
        capacity = TableCapacity(read_units=float(read), write_units=float(write))
    except ValueError as exc:
        print(f"{exc}: write counts like 100,1000 and rates like 10/40", file=sys.stderr)
        return 2
    latency = args.latency_ms / 1000
    random.seed(args.seed)
    setup = Setup(
        latency,
        aws_limits(aas=aas, elb_targets=elb_targets),
        capacity,
        LambdaConfig.module_defaults(),
    )
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "clock": "virtual (emulated seconds)",
        "latency_s": latency,
        "aws_limits": {k: str(v) for k, v in setup.limits.items()},
        "aas_limit_note": "AWS publishes no Application Auto Scaling request rate: assumed",
        "dynamodb_capacity": {
            "read_units": capacity.read_units,
            "write_units": capacity.write_units,
        },
        "lambda": {
            "memory_mb": setup.lambda_config.memory_mb,
            "timeout_s": setup.lambda_config.timeout_s,
            "vcpu_share": round(setup.lambda_config.vcpu_share, 4),
            "source": "infra/variables.tf defaults",
        },
        "python": platform.python_version(),
        "machine": machine(),
        "worlds": {},
    }
    shared = not (args.quick or args.no_shared)
    specs = [WorldSpec(size) for size in six] + [WorldSpec.one_scope(size) for size in one]
    for spec in specs:
        results["worlds"][world_name(spec)] = run_world(
            spec,
            setup,
            seed=spec.scopes > 1 and spec.services in seed,
            shared=shared and spec.scopes == 1 and spec.services == max(one),
        )
    results["projected_10k"] = projected(results["worlds"], setup)
    empty_micro = dict.fromkeys(MICRO_FIGURES)
    results.update(empty_micro if args.no_micro else run_micro())
    measure_memory = not (args.quick or args.no_rss)
    empty_rss = {"peak_rss_mb_10k": None, "rss_mb_idle_process": None}
    results.update(run_rss() if measure_memory else empty_rss)
    results.update({} if args.no_cold_start else run_cold_start())
    results.update(stream_bench.measure())
    results["real_seconds"] = round(time.monotonic() - STARTED, 1)
    found = bounds(
        results, micro=not args.no_micro, rss=measure_memory, cold_start=not args.no_cold_start
    )
    found += [Bound(f, v, limit, True) for f, v, limit in stream_bench.bounds(results)]
    print_table(results)
    return finish(results, found, args.out)


def only_cold_start(out: Path | None) -> int:
    """``--only cold-start``: the Lambda zip's first invocation and its bound, nothing else."""
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": machine(),
        **run_cold_start(),
    }
    print(table(["figure", "value"], [[k, _cell(results.get(k))] for k in COLD_START_FIGURES]))
    warm = [Bound(f, v, limit, True) for f, v, limit in coldstart.warm_bounds(results)]
    return finish(results, [cold_start_bound(results, measured=True), *warm], out)


def only_stream(out: Path | None) -> int:
    """``--only stream``: one edited service converged by the edits function, and its bound."""
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": machine(),
        **stream_bench.measure(),
    }
    rows = [[k, _cell(results.get(k))] for k in stream_bench.FIGURES]
    print(table(["figure", "value"], rows))
    found = [Bound(f, v, limit, True) for f, v, limit in stream_bench.bounds(results)]
    return finish(results, found, out)


def finish(results: dict[str, Any], found: list[Bound], out: Path | None) -> int:
    """Print the bounds, write the results, exit 1 when a bound does not hold."""
    results["bounds"] = [b.as_json() for b in found]
    results["bounds_hold"] = all(b.holds is not False for b in found)
    print_bounds(found)
    if out is not None:
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    if not results["bounds_hold"]:
        failing = ", ".join(b.figure for b in found if b.holds is False)
        print(f"bounds that do not hold: {failing}", file=sys.stderr)
        return 1
    print("every bound holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
