"""Peak memory of a large tick, measured in a process that runs nothing but the tick.

The emulated AWS must not count: moto holding 3,000 services costs more memory than teiji
does. So three processes take part:

1. ``serve``: moto's server (``ThreadedMotoServer``) holding the world;
2. ``build``: builds the world in it over HTTP and writes teiji's tables and documents;
3. ``tick``: imports teiji (no moto), runs the no-op tick and then the transition tick
   (every service running -> stopped) against the server, and prints its own peak RSS
   (``VmHWM``). ``idle`` does the same imports and makes the
   clients but runs no tick: the floor any Python process with boto3 starts from.

Pacing runs on a ``VirtualClock`` so the 3,000-service transition's minutes of token-bucket
waiting cost no real time; the requests themselves go over HTTP at whatever speed moto answers.

``python -m bench.rss --services 3000`` runs all of it and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Fake credentials only: every process here talks to the local moto server, never to AWS.
_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "ap-northeast-1",
    "AWS_REGION": "ap-northeast-1",
}


# What the Terraform module sets in the Lambda's environment for its memory (infra/main.tf).
LAMBDA_MALLOC = {"MALLOC_ARENA_MAX": "2"}


def _env(endpoint: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TEIJI_"))}
    env.update(_FAKE_AWS)
    env.update(LAMBDA_MALLOC)  # the tick runs as the Lambda runs it
    env["PYTHONPATH"] = str(ROOT)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in its own process; yields its URL and stops it afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.rss", "serve"],
        cwd=ROOT,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # one access-log line per request
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"moto's server did not start: {url!r}")
        yield url
    finally:
        if process.stdin:
            process.stdin.close()  # the server stops when its stdin closes
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_child(
    command: list[str], endpoint: str, module: str = "bench.rss"
) -> dict[str, Any] | None:
    """``python -m <module> <command>`` against ``endpoint``; the JSON of its last line."""
    done = subprocess.run(
        [sys.executable, "-m", module, *command],
        cwd=ROOT,
        env=_env(endpoint),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(services: int) -> dict[str, Any]:
    """Build ``services`` in a moto server, then measure the tick process and an idle one."""
    with moto_server() as endpoint:
        built = run_child(["build", "--services", str(services)], endpoint)
        if built is None:
            return {"peak_rss_mb": None, "idle_rss_mb": None}
        tick = run_child(["tick"], endpoint)
        idle = run_child(["idle"], endpoint)
    return {
        "peak_rss_mb": tick and tick["peak_rss_mb"],
        "idle_rss_mb": idle and idle["peak_rss_mb"],
        "tick": tick,
    }


def measure_peak_rss_mb(services: int) -> float | None:
    """Peak RSS in MB of the process that ran a ``services`` no-op and transition tick."""
    figure = measure(services)["peak_rss_mb"]
    return None if figure is None else float(figure)


# The processes ----------------------------------------------------------------------------


def peak_mb() -> float:
    """This process's peak RSS in MB.

    Linux keeps ``ru_maxrss`` across ``exec``, so a child of a large process would report its
    parent's size; ``VmHWM`` belongs to the process's own memory and starts afresh.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def serve() -> int:
    from moto.server import ThreadedMotoServer

    from bench.world import transactions_copy_each_table_once

    with transactions_copy_each_table_once():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        print(f"http://{host}:{port}", flush=True)
        sys.stdin.read()  # until the parent closes it
        server.stop()
    return 0


def build(services: int) -> int:
    from bench.seams import load_tick
    from bench.world import HOME_REGION, ROLE_NAME, WorldSpec, build_world
    from engine.aws.clients import Clients

    teiji = load_tick()
    if teiji is None:
        print("teiji's tick cannot be imported", file=sys.stderr)
        return 2
    world = build_world(WorldSpec(services))
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    teiji.prepare(world, Clients(region=HOME_REGION, role_name=ROLE_NAME, endpoint_url=endpoint))
    print(json.dumps({"services": len(world.services)}))
    return 0


def bench_clients() -> Any:
    from bench.world import HOME_REGION, ROLE_NAME
    from engine.aws.clients import Clients

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    return Clients(region=HOME_REGION, role_name=ROLE_NAME, endpoint_url=endpoint)


def tick() -> int:
    from bench.world import RUNNING_AT, STOPPED_AT, deployment_access
    from engine.aws.clock import VirtualClock
    from engine.aws.pacing import Pacer
    from engine.config import Settings
    from engine.tick import run_tick

    clock = VirtualClock()
    outcomes = []
    for at in (RUNNING_AT, STOPPED_AT):
        pacer = Pacer(clock=clock, environ={})
        report = run_tick(
            bench_clients(), Settings(access=deployment_access()), at=at, dry_run=False, pacer=pacer
        )
        outcomes.append({"at": at.isoformat(), "api_calls": report.api_calls, **report.counts})
    print(
        json.dumps(
            {
                "peak_rss_mb": round(peak_mb(), 1),
                "ticks": outcomes,
                "moto_loaded": "moto" in sys.modules,
            }
        )
    )
    return 0


def idle() -> int:
    import engine.tick  # noqa: F401 - the same imports as the tick process

    bench_clients().ecs()
    print(json.dumps({"peak_rss_mb": round(peak_mb(), 1), "moto_loaded": "moto" in sys.modules}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", nargs="?", choices=("serve", "build", "tick", "idle"))
    parser.add_argument("--services", type=int, default=3000)
    args = parser.parse_args(argv)
    if args.role == "serve":
        return serve()
    if args.role == "build":
        return build(args.services)
    if args.role == "tick":
        return tick()
    if args.role == "idle":
        return idle()
    print(json.dumps(measure(args.services), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
