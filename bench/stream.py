"""An edit taking effect: the edits function's own time to converge one edited service.

In-process moto holds teiji's tables (the config table's stream on, ``KEYS_ONLY``) and a fleet
of services with schedules (``--services``, 200 by default, so that reading the documents costs
what a real table's do). Each round a person edits one service's schedule (always_off, then
always_on again, so that every round changes the service: a stop or a restore); the record is
read from the stream with GetRecords and handed to ``engine.stream_handler.handler`` in the
Lambda's event shape, and the handler's wall-clock seconds are measured less the time moto
spent answering its requests in-process (the handler's own time), with its CPU seconds (moto's
included) beside them. The first round runs with empty caches (the bench's own set-up has
imported most of the engine already; bench/coldstart.py measures a real cold start); the
others are a warm container's.

The seconds are real seconds on this machine, without network latency: in AWS each request
adds its round trip (a few milliseconds in a region), and DynamoDB Streams' own delay and
Lambda's polling (README, "Edits that take effect in seconds") come on top.

``python -m bench.stream`` prints the figures; ``bench/run.py --only stream`` checks the bound
(a warm edit under 2 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ROUNDS = 21
SERVICES = 200
BOUND_S = 2.0
FIGURES = (
    "stream_edit_first_s",
    "stream_edit_warm_median_s",
    "stream_edit_warm_max_s",
    "stream_edit_warm_with_moto_median_s",
    "stream_edit_warm_cpu_median_s",
)


class _Context:
    aws_request_id = "bench-edits"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 180_000


def measure(rounds: int = ROUNDS, services: int = SERVICES) -> dict[str, Any]:
    """Run ``rounds`` edits of one service among ``services`` and time the handler."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = "ap-northeast-1"
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("TEIJI_EVENT_BUS", None)
    os.environ["TEIJI_LOG_LEVEL"] = "ERROR"  # the bench measures the work, not the log lines

    from moto import mock_aws

    from tests.streamworld import Stream
    from tests.world import World, schedule

    wall: list[float] = []
    cpu: list[float] = []
    own: list[float] = []
    emulated = _MotoTime()
    with mock_aws(), emulated.installed():
        world = World()
        world.init_tables()
        world.create_service("c1", "edited", desired=2, target=(1, 4))
        docs = [schedule("c1/edited", mode="always_on")]
        for index in range(services - 1):
            name = f"s{index:04d}"
            world.create_service("c2", name, desired=1)
            docs.append(schedule(f"c2/{name}", mode="always_on"))
        world.put(*docs)
        stream = Stream(world)
        import engine.stream_handler as edits

        for index in range(rounds):
            mode = "always_off" if index % 2 == 0 else "always_on"
            world.put_item({"pk": "schedule", "sk": "c1/edited", "mode": mode})
            event = stream.batch()
            emulated.seconds = 0.0
            started, started_cpu = time.perf_counter(), time.process_time()
            result = edits.handler(event, _Context())
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            own.append(wall[-1] - emulated.seconds)
            want = 0 if mode == "always_off" else 2
            if result != {"batchItemFailures": []} or world.state("c1", "edited").desired != want:
                raise RuntimeError(f"round {index}: the edit did not converge ({result})")
    warm, warm_own = wall[1:], own[1:]
    return {
        "stream_edit_first_s": round(own[0], 3),
        "stream_edit_warm_median_s": round(statistics.median(warm_own), 3),
        "stream_edit_warm_max_s": round(max(warm_own), 3),
        "stream_edit_warm_with_moto_median_s": round(statistics.median(warm), 3),
        "stream_edit_warm_cpu_median_s": round(statistics.median(cpu[1:]), 3),
        "stream_edit_rounds": rounds,
        "stream_edit_services": services,
        "stream_edit_note": (
            "real seconds; the handler's own: moto's in-process answers subtracted, no network "
            "latency added; cpu includes moto's"
        ),
    }


class _MotoTime:
    """Wall seconds spent inside moto answering requests (its serialising of 200-item Query
    pages dominates otherwise); the handler's own time is the rest."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[None]:
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.process_request
        meter = self

        def timed(stubber: Any, request: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(stubber, request)
            finally:
                with meter._lock:
                    meter.seconds += time.perf_counter() - started

        BotocoreStubber.process_request = timed  # type: ignore[method-assign]
        try:
            yield
        finally:
            BotocoreStubber.process_request = original  # type: ignore[method-assign]


def bounds(results: dict[str, Any]) -> list[tuple[str, float | None, float]]:
    """(figure, value, limit): a warm edit converges its service in under 2 s."""
    return [("stream_edit_warm_max_s", results.get("stream_edit_warm_max_s"), BOUND_S)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the edits function's time for one edit")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--services", type=int, default=SERVICES)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.rounds, args.services), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
