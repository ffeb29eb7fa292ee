"""Peak memory of a large tick, measured in a child process.

``python -m bench.rss --services 3000 [--tick]`` builds the world in moto (in-process, so its
state counts too) and, with ``--tick``, runs teiji's no-op and transition ticks on it. The
parent reads the child's peak RSS from ``getrusage(RUSAGE_CHILDREN)``; measuring the world
alone as well lets a reader subtract what the emulated AWS itself holds.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure_peak_rss_mb(services: int, *, tick: bool) -> float | None:
    """Peak RSS in MB of a child that builds ``services`` (and ticks); None if it failed."""
    command = [sys.executable, "-m", "bench.rss", "--services", str(services)]
    if tick:
        command.append("--tick")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-2000:])
        return None
    # Linux reports kilobytes; the maximum over every child waited for, and each child here
    # does at least what the previous one did, so the last reading is this child's.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=3000)
    parser.add_argument("--tick", action="store_true")
    args = parser.parse_args(argv)

    from moto import mock_aws

    from bench.emulator import AwsEmulator
    from bench.seams import TickEnv, load_tick
    from bench.world import HOME_REGION, ROLE_NAME, RUNNING_AT, STOPPED_AT, WorldSpec, build_world
    from engine.aws.clients import Clients
    from engine.aws.pacing import VirtualClock

    teiji = load_tick() if args.tick else None
    if args.tick and teiji is None:
        print("teiji's tick is not wired into bench/seams.py yet", file=sys.stderr)
        return 2
    with mock_aws():
        world = build_world(WorldSpec(args.services))
        if teiji is not None:
            teiji.prepare(world, Clients(region=HOME_REGION, role_name=ROLE_NAME))
            clock = VirtualClock()
            with AwsEmulator(clock).installed():
                for at in (RUNNING_AT, STOPPED_AT):
                    clients = Clients(region=HOME_REGION, role_name=ROLE_NAME)
                    teiji.run(TickEnv(world, clients, clock, at))
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"services": args.services, "tick": args.tick, "peak_rss_mb": usage}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
