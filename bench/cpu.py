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

**The SDK's floor.** Every request teiji's ticks make is recorded (operation and parameters,
as botocore receives them) and, after both ticks, made again in the same order by bare boto3
clients (no teiji hooks: no pacing, no answer checks, no threads) against the same server:
the stop's requests, then the start's, so the world goes through the same states. Their CPU is
what botocore and the HTTP stack alone cost for exactly teiji's requests; the tick's CPU above
it (``teiji_ms_per_changed_service``) is what teiji's own code adds.

``python -m bench.cpu --services 1000`` prints the figures; ``--profile out.pstats`` also
writes a cProfile of both ticks (read it with ``python -m pstats out.pstats``).

On Lambda, CPU seconds divide by the function's vCPU share (memory / 1,769 MB): see
"Sizing the Lambda" in the README.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


Recorded = tuple[str, str, str, dict[str, Any]]  # service, region, operation, parameters


@contextmanager
def recording_requests() -> Iterator[list[Recorded]]:
    """Record every API call made inside, as botocore receives it (one entry per page)."""
    from botocore.client import BaseClient

    recorded: list[Recorded] = []
    original = BaseClient._make_api_call

    def make_api_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        meta = self.meta
        entry = (meta.service_model.service_name, meta.region_name, operation_name)
        recorded.append((*entry, copy.deepcopy(api_params)))
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
    try:
        yield recorded
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def sdk_floor(requests: list[Recorded], endpoint: str | None = None) -> dict[str, Any]:
    """Make ``requests`` again with bare boto3 clients, one after another; their CPU.

    The clients are made before the clock starts, as a warm container's are; one attempt
    each, so a refused request costs one answer, as it did in the tick."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session()
    config = Config(retries={"mode": "standard", "max_attempts": 1})
    clients: dict[tuple[str, str], Any] = {}
    for service, region, _, _ in requests:
        if (service, region) not in clients:
            clients[service, region] = session.client(
                service, region_name=region, endpoint_url=endpoint, config=config
            )
    refused: list[str] = []
    before = time.process_time()
    for service, region, operation, params in requests:
        try:
            clients[service, region]._make_api_call(operation, params)
        except (BotoCoreError, ClientError):
            refused.append(operation)  # its answer was read all the same
    cpu = time.process_time() - before
    return {"requests": len(requests), "refused": sorted(refused), "cpu_s": cpu}


def _with_floor(tick: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    changed = tick["changed"]
    sdk_ms = 1000 * floor["cpu_s"] / changed if changed else None
    teiji_ms = tick["cpu_ms_per_changed_service"]
    return {
        **tick,
        "sdk_floor": {
            "requests": floor["requests"],
            "refused": floor["refused"],
            "cpu_s": round(floor["cpu_s"], 2),
            "cpu_ms_per_changed_service": round(sdk_ms, 2) if sdk_ms is not None else None,
        },
        "teiji_ms_per_changed_service": (
            round(teiji_ms - sdk_ms, 2) if sdk_ms is not None and teiji_ms is not None else None
        ),
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
    with recording_requests() as recorded:
        profilers = _profile_threads() if profile else None
        stop = _one_tick(clients, STOPPED_AT)
        stop_requests = list(recorded)
        recorded.clear()
        start = _one_tick(clients, RUNNING_AT)
        start_requests = list(recorded)
        if profile and profilers:
            _dump(profilers, profile)
    peak = peak_mb()  # the tick's own: the replay below holds every request's parameters
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    ticks = {
        "stop": _with_floor(stop, sdk_floor(stop_requests, endpoint)),
        "start": _with_floor(start, sdk_floor(start_requests, endpoint)),
    }
    print(
        json.dumps(
            {
                "ticks": ticks,
                "peak_rss_mb": round(peak, 1),
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
