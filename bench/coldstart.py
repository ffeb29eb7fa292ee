"""Cold start: the Lambda's first invocation, run from the unpacked zip in a clean interpreter.

The zip (``infra/build_lambda.py --local``) is unpacked into a directory, as Lambda does into
``/var/task``. A fresh interpreter runs with ``-I -S -B`` (isolated: no repository, no
site-packages, no bytecode written) and a ``sys.path`` of only that directory and one that
holds what the Lambda runtime provides beside the function: boto3, botocore and what they
need, taken from this environment (where, as on Lambda, they are precompiled). It imports
``engine.handler`` and invokes ``lambda_handler`` once, a real tick against moto's server over
HTTP, and reports what it imported, where from, and which modules it had to compile from source.

``tests/test_lambda_isolated.py`` checks what the tick did and what it imported; ``make bench``
(``bench/run.py --only cold-start`` alone) reports the import seconds of that first invocation,
measured with ``-X importtime``: the sum of every module's own import time.

``python -m bench.coldstart`` builds the zip, runs it and prints the figures; ``--zip PATH``
measures a zip built elsewhere (an older commit's), ``--sources-only`` without its bytecode.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGION = "ap-northeast-1"
CONFIG_TABLE = "teiji-config"
STATE_TABLE = "teiji-state"
CLUSTER = "example-cluster"
# Always off: the tick stops it (desiredCount 2 -> 0). Working days in Tokyo with Japan's
# holidays: the tick loads Japan's calendar, and only Japan's.
STOPPED_SERVICE = "web"
HOLIDAY_SERVICE = "api"
UNMANAGED_DOCUMENTS = 200
END = "22:00"
# A warm no-op tick must cost well under a cold one (which imports everything first).
WARM_NOOP_MAX_RATIO = 0.5
# What the Lambda Python runtime puts on sys.path beside the function (with their own needs).
RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")
SDK_IMPORTS = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "urllib3"})

# The first invocation, in the clean interpreter. argv: task dir, SDK dir, event (JSON).
_FIRST_INVOCATION = """
import importlib.machinery, json, sys, time
task, sdk, event, _MARK = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
warm = sys.argv[5] == "warm"
sys.path[:0] = [task, sdk]
compiled = []
_to_code = importlib.machinery.SourceFileLoader.source_to_code
def _recorded(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return _to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = _recorded
print(_MARK, file=sys.stderr, flush=True)
started, started_cpu = time.perf_counter(), time.process_time()
import engine.handler
imported = time.perf_counter()
report = engine.handler.lambda_handler(event, None)
finished, finished_cpu = time.perf_counter(), time.process_time()
files = {n: getattr(m, "__file__", None) or "" for n, m in list(sys.modules.items())}
# The same container again: a warm no-op (nothing changed), then one that has forgotten what
# it kept (what a warm tick costs without reusing documents and the Decider).
def _cpu(run):
    before = time.process_time()
    run()
    return time.process_time() - before
def _forgetting():
    import engine.documents
    engine.documents.forget()
    engine.handler.lambda_handler(event, None)
def _again():
    engine.handler.lambda_handler(event, None)
warm_cpu = min(_cpu(_again) for _ in range(3)) if warm else None
forgotten_cpu = min(_cpu(_forgetting) for _ in range(3)) if warm else None
print(json.dumps({
    "report": report,
    "modules": sorted(files),
    "outside": sorted({n.split(".")[0] for n, f in files.items()
        if ("site-packages" in f or "dist-packages" in f) and not f.startswith((task, sdk))}),
    "compiled_from_source": sorted(compiled),
    "handler_import_s": imported - started,
    "first_invocation_s": finished - started,
    "first_invocation_cpu_s": finished_cpu - started_cpu,
    "warm_noop_cpu_s": warm_cpu,
    "warm_forgotten_cpu_s": forgotten_cpu,
}))
"""
# Printed on stderr just before ``import engine.handler``: what the runner imported itself
# (json, as the Lambda runtime's own bootstrap does) is not counted.
_MARK = "-- import engine.handler --"
_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


@dataclass(frozen=True)
class FirstInvocation:
    report: dict[str, Any]
    modules: list[str]
    outside: list[str]  # top-level packages imported from outside the zip and the SDK
    compiled_from_source: list[str]
    handler_import_s: float
    first_invocation_s: float
    first_invocation_cpu_s: float  # CPU of the whole first invocation, imports included
    warm_noop_cpu_s: float | None  # the next invocation in the same process (best of 3)
    warm_forgotten_cpu_s: float | None  # the same, having forgotten documents and Decider
    import_s: float | None  # -X importtime: every module's own time, summed
    sdk_import_s: float | None  # of which boto3, botocore and what they import

    def from_zip(self, task: Path) -> list[str]:
        return [path for path in self.compiled_from_source if path.startswith(str(task))]


# The zip and the directories ------------------------------------------------------------------
def build_zip(output: Path) -> Path:
    """``infra/build_lambda.py --local`` into ``output`` (this interpreter's Python)."""
    command = [sys.executable, str(ROOT / "infra" / "build_lambda.py"), "--local"]
    subprocess.run([*command, "--output", str(output)], check=True, stdout=subprocess.DEVNULL)
    return output


def unpack(archive: Path, task: Path) -> Path:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(task)
    return task


def runtime_sdk(directory: Path) -> Path:
    """A directory holding links to this environment's boto3, botocore and what they need."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_SDK:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed here; run `make install`")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (directory / source.name).symlink_to(source)
    return directory


# The AWS side ---------------------------------------------------------------------------------
@contextmanager
def moto_endpoint() -> Iterator[str]:
    """moto's server in a thread, with fake credentials in this process while it runs: it
    talks to nothing else."""
    import logging

    from moto.server import ThreadedMotoServer

    saved = dict(os.environ)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update({k: v for k, v in lambda_environment("").items() if k.startswith("AWS_")})
    os.environ.pop("AWS_ENDPOINT_URL")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


def seed(endpoint: str) -> None:
    """A fresh world: teiji's tables, two schedules, two running services of 2 tasks."""
    import boto3

    from engine.aws.clients import Clients
    from engine.config import Settings
    from engine.store import init_tables, item_from_document, to_attribute_map
    from schemas.documents import Schedule

    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset).read()
    init_tables(
        Clients(region=REGION, endpoint_url=endpoint),
        Settings(config_table=CONFIG_TABLE, state_table=STATE_TABLE),
    )
    schedules = [
        Schedule(service=f"{CLUSTER}/{STOPPED_SERVICE}", mode="always_off"),
        Schedule.model_validate(
            {
                "service": f"{CLUSTER}/{HOLIDAY_SERVICE}",
                "timezone": "Asia/Tokyo",
                "windows": [{"days": "mon-sun", "start": "00:00", "end": "24:00"}],
                "holidays": ["JP"],
            }
        ),
    ]
    # Documents teiji reads and decides every tick but leaves alone: what a warm tick can
    # reuse (their parsing) shows in the warm figures.
    schedules += [
        Schedule.model_validate(
            {
                "service": f"{CLUSTER}/left-alone-{n:03d}",
                "mode": "unmanaged",
                "timezone": "Asia/Tokyo",
                "windows": [{"days": "mon-fri", "start": f"0{n % 10}:{n % 60:02d}", "end": END}],
                "holidays": ["JP"],
            }
        )
        for n in range(UNMANAGED_DOCUMENTS)
    ]
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    for schedule in schedules:
        item = to_attribute_map(item_from_document(schedule))
        dynamodb.put_item(TableName=CONFIG_TABLE, Item=item)
    ecs = boto3.client("ecs", endpoint_url=endpoint, region_name=REGION)
    ecs.create_cluster(clusterName=CLUSTER)
    for name in (STOPPED_SERVICE, HOLIDAY_SERVICE):
        ecs.register_task_definition(
            family=name,
            containerDefinitions=[{"name": name, "image": "nginx", "memory": 128, "cpu": 64}],
        )
        ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=name, desiredCount=2)


def lambda_environment(endpoint: str) -> dict[str, str]:
    """What the function's configuration gives it (fake credentials: moto only)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "TEIJI_CONFIG_TABLE": CONFIG_TABLE,
        "TEIJI_STATE_TABLE": STATE_TABLE,
        "TEIJI_LOG_LEVEL": "WARNING",
    }


# The first invocation -------------------------------------------------------------------------
def first_invocation(
    task: Path,
    sdk: Path,
    environment: Mapping[str, str],
    event: Mapping[str, Any] | None = None,
    *,
    importtime: bool = False,
    warm: bool = False,
) -> FirstInvocation:
    """Import ``engine.handler`` from ``task`` and invoke it once, in a clean interpreter;
    ``warm``: then three times more as a warm no-op, and three times having forgotten what
    the container kept (``engine.documents.forget``)."""
    flags = ["-I", "-S", "-B", *(["-X", "importtime"] if importtime else [])]
    done = subprocess.run(
        [
            sys.executable,
            *flags,
            "-c",
            _FIRST_INVOCATION,
            str(task),
            str(sdk),
            json.dumps(event),
            _MARK,
            "warm" if warm else "cold only",
        ],
        capture_output=True,
        text=True,
        env=dict(environment),
        cwd=task.parent,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the first invocation failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    total, sdk_s = _import_seconds(done.stderr) if importtime else (None, None)
    return FirstInvocation(**result, import_s=total, sdk_import_s=sdk_s)


def _import_seconds(stderr: str) -> tuple[float, float]:
    """The sum of every module's own import time from ``import engine.handler`` on, and the
    time the SDK's imports took with everything they imported first (their cumulative time
    where an SDK module is imported by a module that is not the SDK's)."""
    lines = stderr.splitlines()
    entries = [m for m in map(_IMPORTTIME.match, lines[lines.index(_MARK) + 1 :]) if m]
    total = sum(int(m[1]) for m in entries)
    sdk = 0
    ancestors: list[str] = []
    # -X importtime prints a module after the modules it imported, one level deeper.
    for entry in reversed(entries):
        depth = len(entry[3]) // 2
        ancestors = ancestors[:depth]
        name = entry[4].partition(".")[0]
        parent = ancestors[-1] if ancestors else ""
        if name in SDK_IMPORTS and parent not in SDK_IMPORTS:
            sdk += int(entry[2])
        ancestors.append(name)
    return total / 1e6, sdk / 1e6


# The figures ------------------------------------------------------------------------------------
def measure(
    runs: int = 5, *, archive: Path | None = None, sources_only: bool = False
) -> dict[str, Any]:
    """``runs`` first invocations (a fresh world each) from the zip ``archive``, or one built
    now; median figures. ``sources_only`` removes the zip's bytecode after unpacking: a zip
    built for another Python."""
    with tempfile.TemporaryDirectory(prefix="teiji-coldstart-") as tmp:
        archive = archive or build_zip(Path(tmp) / "teiji-lambda.zip")
        task = unpack(archive, Path(tmp) / "task")
        if sources_only:
            for cache in sorted(task.rglob("__pycache__")):
                shutil.rmtree(cache)
        sdk = runtime_sdk(Path(tmp) / "runtime")
        results = []
        with moto_endpoint() as endpoint:
            for _ in range(runs):
                seed(endpoint)
                environment = lambda_environment(endpoint)
                results.append(
                    first_invocation(task, sdk, environment, {}, importtime=True, warm=True)
                )
        size = archive.stat().st_size
        compiled = len(results[-1].from_zip(task))
    last = results[-1]
    countries = [m for m in last.modules if m.startswith("holidays.countries.")]
    return {
        "cold_start_import_s": _median(r.import_s for r in results),
        "cold_start_import_sdk_s": _median(r.sdk_import_s for r in results),
        "cold_start_handler_import_s": _median(r.handler_import_s for r in results),
        "cold_start_first_invocation_s": _median(r.first_invocation_s for r in results),
        "cold_start_first_invocation_cpu_s": _median(r.first_invocation_cpu_s for r in results),
        "warm_noop_cpu_s": _median(r.warm_noop_cpu_s for r in results),
        "warm_forgotten_cpu_s": _median(r.warm_forgotten_cpu_s for r in results),
        "warm_noop_cold_ratio": _median(
            r.warm_noop_cpu_s / r.first_invocation_cpu_s
            for r in results
            if r.warm_noop_cpu_s is not None
        ),
        "cold_start_modules": len(last.modules),
        "cold_start_holiday_countries": countries,
        "cold_start_holiday_modules": len([m for m in last.modules if m.startswith("holidays")]),
        "cold_start_compiled_from_source": compiled,
        "cold_start_runs": runs,
        "load_average": round(os.getloadavg()[0], 1),
        "zip_bytes": size,
    }


WARM_FIGURES = (
    "cold_start_first_invocation_cpu_s",
    "warm_noop_cpu_s",
    "warm_forgotten_cpu_s",
    "warm_noop_cold_ratio",
)


def warm_bounds(results: Mapping[str, Any]) -> list[tuple[str, float | None, float]]:
    """(figure, value, limit): a warm no-op's CPU is under half the first invocation's."""
    return [("warm_noop_cold_ratio", results.get("warm_noop_cold_ratio"), WARM_NOOP_MAX_RATIO)]


def _median(values: Iterator[float | None] | Any) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--zip", type=Path, help="measure this zip instead of building one")
    parser.add_argument(
        "--sources-only", action="store_true", help="remove the zip's bytecode after unpacking"
    )
    args = parser.parse_args(argv)
    figures = measure(args.runs, archive=args.zip, sources_only=args.sources_only)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
