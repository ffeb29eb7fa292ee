"""``make bench``: teiji at 100, 1,000 and 3,000 services against the hand-written tool.

For each size a world of running services is built in moto over 3 accounts x 2 regions. The
emulated AWS adds a network latency to every request and enforces ECS's documented token
buckets (bench/emulator.py). Time is virtual: it moves only by waiting (latency, pacing,
retry back-off), so the figures are emulated seconds, the same on any machine, and a run takes
minutes. Measured on the same world:

- teiji's no-op tick and transition tick (all running -> stopped), through bench/seams.py;
- the hand-written tool's stop, call for call (bench/seed_tool.py);
- against the call floor and the time floor (bench/floor.py).

Then the decide/simulate micro-benchmarks (real seconds) and the peak RSS of the process that
runs a 3,000-service tick against moto's server in another process (bench/rss.py). Prints a
table and the bounds, writes bench/results.json, and exits 1 when a bound does not hold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from moto import mock_aws  # noqa: E402

from bench import coldstart  # noqa: E402
from bench.emulator import AWS_ECS_LIMITS, DEFAULT_LATENCY_S, AwsEmulator, Traffic  # noqa: E402
from bench.floor import call_floor, time_floor  # noqa: E402
from bench.micro import MICRO_FIGURES, measure, micro_bounds  # noqa: E402
from bench.rss import measure as measure_rss  # noqa: E402
from bench.seams import TeijiTick, TickEnv, TickOutcome, load_decide, load_simulate, load_tick  # noqa: E402
from bench.seed_tool import LAMBDA_TIMEOUT_S, run_seed_tool  # noqa: E402
from bench.world import (  # noqa: E402
    HOME_REGION,
    OWN_ACCOUNT,
    ROLE_NAME,
    RUNNING_AT,
    STOPPED_AT,
    World,
    WorldSpec,
    build_world,
    desired_counts,
    moto_sessions,
)
from engine.aws.bucket import Rate  # noqa: E402
from engine.aws.clients import Clients  # noqa: E402
from engine.aws.clock import VirtualClock  # noqa: E402
from engine.cli.common import table  # noqa: E402

SIZES = (100, 1_000, 3_000)
# The shared-bucket world: a stop in one account and Region while another caller in the account
# uses this share of ECS's service-modify bucket.
SHARED_SERVICES = 1_000
SHARED_OTHER_SHARE = 0.10
# Emulated time moves on by itself only when a worker has been busy outside the clock this long
# (real seconds): generous, so that a loaded machine does not distort the figures. ``stalls``
# in results.json says whether it ever happened.
STALL_TIMEOUT_S = 5.0
RSS_SERVICES = 3_000
STARTED = time.monotonic()


def machine() -> dict[str, Any]:
    """What the figures were measured on (the micro-benchmarks and RSS depend on it)."""
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
    return {"cpus": os.cpu_count(), "cpu": model, "system": platform.platform()}


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def _ratio(value: float | None, floor: float) -> float | None:
    return None if value is None or floor <= 0 else round(value / floor, 2)


def _figures(
    world: World,
    measured: tuple[Traffic, float, TickOutcome] | None,
    *,
    transition: bool,
    latency: float,
    limits: Mapping[str, Rate] = AWS_ECS_LIMITS,
) -> dict[str, Any]:
    floor = call_floor(world, transition=transition)
    floor_s = time_floor(world, transition=transition, latency=latency, limits=limits)
    calls = wall_s = throttles = None
    extra: dict[str, Any] = {}
    if measured is not None:
        traffic, wall_s, outcome = measured
        calls, throttles = traffic.total, traffic.total_throttled
        extra = {
            "changed_services": outcome.changed_services,
            "failed_services": outcome.failed_services,
            "reported_api_calls": outcome.api_calls,
            "reported_throttle_errors": outcome.throttle_errors,
            "traffic": traffic.as_json(),
        }
    return {
        "calls": calls,
        "floor": floor.total,
        "calls_ratio": _ratio(calls, floor.total),
        "wall_s": None if wall_s is None else round(wall_s, 2),
        "floor_s": round(floor_s, 2),
        "time_ratio": _ratio(wall_s, floor_s),
        "throttle_errors": throttles,
        "floor_detail": floor.as_json(),
        **extra,
    }


def _measure_tick(
    teiji: TeijiTick, world: World, emulator: AwsEmulator, clock: VirtualClock, at: datetime
) -> tuple[Traffic, float, TickOutcome]:
    emulator.refill()  # a quarter hour has passed since anything else ran
    emulator.reset_traffic()
    clients = Clients(region=HOME_REGION, role_name=ROLE_NAME)  # inside the emulator
    started = clock.monotonic()
    outcome = teiji.run(TickEnv(world, clients, clock, at))
    wall = clock.monotonic() - started
    return emulator.reset_traffic(), wall, outcome


def run_teiji(spec: WorldSpec, latency: float) -> dict[str, Any]:
    teiji = load_tick()
    with mock_aws():
        world = build_world(spec)
        noop = transition = None
        stopped = None
        if teiji is not None:
            teiji.prepare(world, Clients(region=HOME_REGION, role_name=ROLE_NAME))
            clock = VirtualClock(stall_timeout=STALL_TIMEOUT_S)
            emulator = AwsEmulator(clock, latency=latency)
            with emulator.installed():
                log(f"  teiji no-op tick, {spec.services} services")
                noop = _measure_tick(teiji, world, emulator, clock, RUNNING_AT)
                log(f"  teiji transition tick, {spec.services} services")
                transition = _measure_tick(teiji, world, emulator, clock, STOPPED_AT)
            stopped = sum(1 for count in desired_counts(world).values() if count == 0)
        else:
            log("  teiji's tick is not wired into bench/seams.py yet: floors only")
        result: dict[str, Any] = {
            "scopes": len(world.by_scope()),
            "clusters": len(world.cluster_sizes()),
            "noop": _figures(world, noop, transition=False, latency=latency),
            "transition": _figures(world, transition, transition=True, latency=latency),
        }
        if stopped is not None:
            result["transition"]["services_stopped"] = stopped
            result["stalls"] = clock.stalls
    return result


def left_by(share: float) -> dict[str, Rate]:
    """The ECS buckets as a tick finds them when another caller uses ``share`` of the
    service-modify one: its rate less that share (its burst is drawn on as well)."""
    limits = dict(AWS_ECS_LIMITS)
    modify = limits["ecs_service_modify"]
    limits["ecs_service_modify"] = Rate(modify.rate * (1 - share), modify.burst)
    return limits


def run_shared(services: int, share: float, latency: float) -> dict[str, Any]:
    """A stop of ``services`` in one account and Region while another caller in the account
    uses ``share`` of the service-modify bucket (the tick is not told: it must learn it)."""
    teiji = load_tick()
    spec = WorldSpec(services, accounts=(OWN_ACCOUNT,), regions=(HOME_REGION,))
    with mock_aws():
        world = build_world(spec)
        if teiji is None:
            return {}
        teiji.prepare(world, Clients(region=HOME_REGION, role_name=ROLE_NAME))
        clock = VirtualClock(stall_timeout=STALL_TIMEOUT_S)
        others = {"ecs_service_modify": share}
        emulator = AwsEmulator(clock, latency=latency, others=others)
        with emulator.installed():
            log(f"  teiji stop, {services} services, another caller using {share:.0%}")
            transition = _measure_tick(teiji, world, emulator, clock, STOPPED_AT)
        stopped = sum(1 for count in desired_counts(world).values() if count == 0)
        figures = _figures(
            world, transition, transition=True, latency=latency, limits=left_by(share)
        )
    return {
        "services": services,
        "other_caller_share": share,
        "services_stopped": stopped,
        "stalls": clock.stalls,
        **figures,
    }


def run_seed(spec: WorldSpec, latency: float) -> dict[str, Any]:
    with mock_aws():
        world = build_world(spec)
        clock = VirtualClock(stall_timeout=STALL_TIMEOUT_S)
        emulator = AwsEmulator(clock, latency=latency)
        log(f"  hand-written tool, stop, {spec.services} services")
        with emulator.installed():
            run = run_seed_tool("stop", world.services, moto_sessions(), clock)
        traffic = emulator.reset_traffic()
        not_stopped = sum(1 for count in desired_counts(world).values() if count != 0)
        floor = call_floor(world, transition=True)
    return {
        "seed_calls": traffic.total,
        "seed_calls_ratio": _ratio(traffic.total, floor.total),
        "seed_wall_s": round(run.wall_s, 2),
        "seed_throttle_errors": traffic.total_throttled,
        "seed_failed_services": not_stopped,
        "seed_done_within_lambda_timeout": run.done_within(LAMBDA_TIMEOUT_S),
        "seed_errors_printed": run.printed,
        "seed_traffic": traffic.as_json(),
    }


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
        "peak_rss_mb_3k": measured["peak_rss_mb"],
        "rss_mb_idle_process": measured["idle_rss_mb"],
    }


def run_cold_start() -> dict[str, Any]:
    log(f"  cold start: {COLD_START_RUNS} first invocations from the unpacked Lambda zip")
    return coldstart.measure(COLD_START_RUNS)


# Bounds ------------------------------------------------------------------------------------

CALLS_RATIO_MAX = 1.1  # a no-op tick's calls / the call floor
TIME_RATIO_MAX = 1.15  # a transition's emulated seconds / the token-bucket floor
TIME_BOUND_FROM = 1_000  # services: smaller transitions fit in the buckets' bursts
PEAK_RSS_3K_MAX_MB = 200.0
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
    for size, r in results["sizes"].items():
        noop, change = r["noop"], r["transition"]
        found.append(
            Bound(f"{size} no-op calls_ratio", noop["calls_ratio"], CALLS_RATIO_MAX, False)
        )
        for name, figures in (("no-op", noop), ("transition", change)):
            found.append(
                Bound(f"{size} {name} throttle_errors", figures["throttle_errors"], 0, False)
            )
        stopped = change.get("services_stopped")
        left = None if stopped is None else int(size) - stopped
        found.append(Bound(f"{size} transition services left running", left, 0, False))
        if int(size) >= TIME_BOUND_FROM:
            found.append(
                Bound(f"{size} transition time_ratio", change["time_ratio"], TIME_RATIO_MAX, False)
            )
    shared = results.get("shared_bucket") or {}
    if shared:
        name = f"shared bucket {shared['services']}"
        found.append(Bound(f"{name} failed services", shared["failed_services"], 0, False))
        left = shared["services"] - shared["services_stopped"]
        found.append(Bound(f"{name} services left running", left, 0, False))
        found.append(
            Bound(f"{name} time_ratio (bucket left)", shared["time_ratio"], TIME_RATIO_MAX, False)
        )
    for figure, value, limit in micro_bounds(results):
        found.append(Bound(figure, value, limit, True, micro))
    found.append(Bound("peak_rss_mb_3k", results["peak_rss_mb_3k"], PEAK_RSS_3K_MAX_MB, True, rss))
    found.append(cold_start_bound(results, measured=cold_start))
    for figure, value, limit in coldstart.warm_bounds(results):
        found.append(Bound(figure, value, limit, True, cold_start))
    return found


def print_bounds(found: list[Bound]) -> None:
    verdict = {True: "holds", False: "DOES NOT HOLD", None: "skipped"}
    rows = [[b.figure, _cell(b.value), b.as_json()["bound"], verdict[b.holds]] for b in found]
    print()
    print(table(["bound", "value", "must be", "verdict"], rows))


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def print_table(results: dict[str, Any]) -> None:
    rows = []
    for size, r in results["sizes"].items():
        noop, change = r["noop"], r["transition"]
        rows.append(
            [
                size,
                f"{_cell(noop['calls'])}/{noop['floor']}",
                f"{_cell(change['calls'])}/{change['floor']}",
                f"{_cell(change['wall_s'])}/{change['floor_s']}",
                _cell(change["throttle_errors"]),
                r["seed_calls"],
                r["seed_wall_s"],
                r["seed_throttle_errors"],
                r["seed_failed_services"],
                r["seed_done_within_lambda_timeout"],
            ]
        )
    headers = [
        "services",
        "no-op calls/floor",
        "stop calls/floor",
        "stop s/floor s",
        "throttles",
        "tool calls",
        "tool s",
        "tool throttles",
        "tool failed",
        f"tool done in {LAMBDA_TIMEOUT_S:g} s",
    ]
    print(table(headers, rows))
    micro = {k: results[k] for k in MICRO_FIGURES}
    micro.update({k: results[k] for k in ("peak_rss_mb_3k", "rss_mb_idle_process")})
    micro.update({k: results.get(k) for k in COLD_START_FIGURES})
    print()
    print(table(["figure", "value"], [[k, _cell(v)] for k, v in micro.items()]))
    shared = results.get("shared_bucket") or {}
    if shared:
        print(
            f"\nshared bucket: {shared['services']} services stopped in one account and Region "
            f"while another caller uses {shared['other_caller_share']:.0%} of service modify: "
            f"{_cell(shared['wall_s'])} s (floor of the bucket left {shared['floor_s']} s, "
            f"ratio {_cell(shared['time_ratio'])}), {_cell(shared['throttle_errors'])} throttles, "
            f"{_cell(shared.get('failed_services'))} failed"
        )
    print("\nseconds are emulated (virtual clock) except the decide/simulate figures (CPU)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="teiji's scale benchmark")
    parser.add_argument("--quick", action="store_true", help="100 services only, no RSS")
    parser.add_argument("--sizes", help="comma-separated service counts (default 100,1000,3000)")
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_S * 1000)
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
        choices=("cold-start",),
        help="measure this part alone and check its bound (writes a file only with --out)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for botocore's retry jitter")
    parser.add_argument(
        "--out", type=Path, help="where the results go (default bench/results.json)"
    )
    args = parser.parse_args(argv)
    if args.only == "cold-start":
        return only_cold_start(args.out)
    args.out = args.out or ROOT / "bench" / "results.json"

    try:
        sizes: tuple[int, ...] = (100,) if args.quick else SIZES
        if args.sizes:
            sizes = tuple(int(part) for part in args.sizes.split(","))
        if any(size < 1 for size in sizes):
            raise ValueError
    except ValueError:
        print(f"--sizes {args.sizes!r}: write positive counts like 100,1000", file=sys.stderr)
        return 2
    latency = args.latency_ms / 1000
    random.seed(args.seed)

    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "clock": "virtual (emulated seconds)",
        "latency_s": latency,
        "aws_ecs_limits": {k: str(v) for k, v in AWS_ECS_LIMITS.items()},
        "python": platform.python_version(),
        "machine": machine(),
        "sizes": {},
    }
    for size in sizes:
        log(f"{size} services")
        spec = WorldSpec(size)
        results["sizes"][str(size)] = {"services": size, **run_teiji(spec, latency)}
        results["sizes"][str(size)].update(run_seed(spec, latency))
    if not args.no_shared:
        log(f"shared bucket: {SHARED_SERVICES} services")
        results["shared_bucket"] = run_shared(SHARED_SERVICES, SHARED_OTHER_SHARE, latency)
    empty_micro = dict.fromkeys(MICRO_FIGURES)
    results.update(empty_micro if args.no_micro else run_micro())
    measure_memory = not (args.quick or args.no_rss)
    empty_rss = {"peak_rss_mb_3k": None, "rss_mb_idle_process": None}
    results.update(run_rss() if measure_memory else empty_rss)
    results.update({} if args.no_cold_start else run_cold_start())
    results["real_seconds"] = round(time.monotonic() - STARTED, 1)
    found = bounds(
        results, micro=not args.no_micro, rss=measure_memory, cold_start=not args.no_cold_start
    )
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
