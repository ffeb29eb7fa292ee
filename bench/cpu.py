"""CPU per changed service of a full stop and a full start, in a process that runs only the tick.

Like ``bench.rss``, three processes take part: moto's server holding the world, a builder
that fills it over HTTP, and the measured ``tick`` process, which imports teiji (no moto),
makes one ``Clients`` (a warm Lambda container keeps its clients across ticks) and runs, with
teiji's default settings:

1. the stop tick at ``STOPPED_AT``: every service running -> stopped (baselines saved);
2. the start tick at ``RUNNING_AT``: every service stopped -> running (baselines deleted).

For each tick it reports the process's CPU seconds (``time.process_time``: every thread of
the process, user + system), CPU ms and requests per changed service, and at the end the
process's peak RSS (``VmHWM``). moto's CPU is not counted: it runs in its own process.
Pacing runs on a ``VirtualClock`` so token-bucket waits cost no real time.

``python -m bench.cpu --services 1000`` prints the figures; ``--profile out.pstats`` also
writes a cProfile of both ticks (read it with ``python -m pstats out.pstats``).

On Lambda, CPU seconds divide by the function's vCPU share (memory / 1,769 MB): see
"Sizing the Lambda" in the README.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bench.rss import moto_server, peak_mb, run_child

LAMBDA_MB_PER_VCPU = 1769  # a Lambda function gets one full vCPU at 1,769 MB


def measure(services: int, profile: str | None = None) -> dict[str, Any]:
    """Build ``services`` in a moto server, then measure the stop and start ticks."""
    with moto_server() as endpoint:
        built = run_child(["build", "--services", str(services)], endpoint)
        if built is None:
            return {"error": "the world could not be built"}
        command = ["tick"] + (["--profile", profile] if profile else [])
        measured = run_child(command, endpoint, module="bench.cpu")
    if measured is None:
        return {"error": "the tick process failed"}
    return {"services": built["services"], **measured}


def _one_tick(clients: Any, at: Any) -> dict[str, Any]:
    from bench.world import deployment_access
    from engine.aws.clock import VirtualClock
    from engine.aws.pacing import Pacer
    from engine.config import Settings
    from engine.tick import run_tick

    pacer = Pacer(clock=VirtualClock(), environ={})
    settings = Settings(access=deployment_access())
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    report = run_tick(clients, settings, at=at, dry_run=False, pacer=pacer)
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    changed = report.counts["changed"]
    return {
        "at": at.isoformat(),
        **report.counts,
        "api_calls": report.api_calls,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "cpu_ms_per_changed_service": round(1000 * cpu / changed, 2) if changed else None,
        "requests_per_changed_service": round(report.api_calls / changed, 2) if changed else None,
    }


def _profile_threads() -> list[Any]:
    """cProfile the main thread and every thread started from now on (the tick's workers):
    cProfile alone sees only the thread that enabled it. Each counts its own thread's CPU
    time (``time.thread_time``), so waiting on locks, sockets and the clock costs nothing."""
    import cProfile
    import threading

    main = cProfile.Profile(time.thread_time)
    profilers = [main]
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        own = cProfile.Profile(time.thread_time)
        profilers.append(own)
        own.enable()
        try:
            original(self)
        finally:
            own.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    main.enable()
    return profilers


def _dump(profilers: list[Any], path: str) -> None:
    import pstats

    profilers[0].disable()
    stats = pstats.Stats(profilers[0])
    for other in profilers[1:]:
        try:
            stats.add(other)
        except TypeError:  # a thread that never ran under the profile
            continue
    stats.dump_stats(path)


def tick(profile: str | None = None) -> int:
    from bench.rss import bench_clients
    from bench.world import RUNNING_AT, STOPPED_AT

    clients = bench_clients()
    profilers = _profile_threads() if profile else None
    ticks = {
        "stop": _one_tick(clients, STOPPED_AT),
        "start": _one_tick(clients, RUNNING_AT),
    }
    if profile and profilers:
        _dump(profilers, profile)
    print(
        json.dumps(
            {
                "ticks": ticks,
                "peak_rss_mb": round(peak_mb(), 1),
                "moto_loaded": "moto" in sys.modules,
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", nargs="?", choices=("tick",))
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--profile", help="write a cProfile of both ticks to this file")
    args = parser.parse_args(argv)
    if args.role == "tick":
        return tick(args.profile)
    print(json.dumps(measure(args.services, args.profile), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
