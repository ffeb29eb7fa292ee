"""The fleet bench: 500 accounts x 2 regions x 20 services (20,000 services) in fan-out mode.

What is measured, and how (``python bench/fleet.py``; ``make bench`` runs it after bench/run.py):

1. The orchestrator over the whole fleet: 20,000 schedule documents over 1,000 scopes in moto's
   config table, and ``engine.fanout_run.orchestrate`` reading them once, recording the tick and
   sending 1,000 work items (SendMessageBatch, 10 a call) and the aggregate message to an SQS
   queue in moto. Its time is real wall-clock time on this machine, moto's own work included
   (an upper bound on the orchestrator's).
2. The workers on a SAMPLE of scopes of the same shape (20 services, two clusters of 10, every
   third load-balanced), not all 1,000: building 20,000 ECS services in moto takes longer than
   this machine gives the bench. Each sampled scope's worker (``run_tick(scope=...)``, its own
   scope lease, the whole bucket: pacing share 1.0) runs a full stop and a full start through
   the emulator (bench/emulator.py: AWS's published request rates, 20 ms latency, emulated
   clock), and is compared with that scope's floors (bench/floor.py). Scopes are independent
   (each account and region has its own buckets; the state table is on-demand), so the fleet's
   time is the slowest sampled scope times the waves the concurrency cap allows:
   ceil(1,000 / cap) x (slowest scope + its document read).
3. The same fleet in single-invocation mode, as a model from the same measurements: one Lambda
   reads the documents, runs the 1,000 scopes' requests on at most 128 threads (the engine's
   MAX_THREADS) and spends every scope's CPU on its share of a vCPU; the fleet size where that
   passes the Lambda's 900 s is printed.

The documents are schedule documents (one per service). ``PROFILES`` is where shared profiles
and ``teiji:profile=<name>`` tags switch on once the engine reads them: set it and the world's
documents become a handful of profiles plus the tagged services.

Exit code 1 when a bound does not hold (see ``BOUNDS``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from bench.emulator import AWS_LIMITS, DEFAULT_LATENCY_S, AwsEmulator  # noqa: E402
from bench.floor import START, STOP, TickKind, worker_floor, worker_time_floor  # noqa: E402
from bench.lambda_time import LambdaConfig  # noqa: E402
from bench.world import (  # noqa: E402
    HOME_REGION,
    OWN_ACCOUNT,
    REGIONS,
    ROLE_NAME,
    STARTED_AT,
    STOPPED_AT,
    World,
    WorldService,
    WorldSpec,
    build_world,
    desired_counts,
    ecs_like,
    layout,
    moto_sessions,
    settle,
)
from engine.aws.clients import Clients  # noqa: E402
from engine.aws.clock import VirtualClock  # noqa: E402
from engine.aws.lanes import MAX_THREADS  # noqa: E402
from engine.aws.pacing import Pacer  # noqa: E402
from engine.config import Access, Settings  # noqa: E402
from engine.fanout import WorkItem, parse_work_item, scope_id  # noqa: E402
from engine.fanout_run import orchestrate, sqs_sender, work  # noqa: E402
from engine.report import TickReport  # noqa: E402
from engine.store import ConfigStore, init_tables  # noqa: E402
from engine.tick import ScopeHooks, run_tick, wall_clock  # noqa: E402

FLEET_ACCOUNTS = 500
SERVICES_PER_SCOPE = 20
SERVICES_PER_CLUSTER = 10
TICK_S = 900.0
DEFAULT_CAP = 50  # the Terraform variable fanout_max_concurrency's default
WORKER_CONCURRENCY = 32  # the Terraform variable fanout_worker_concurrency's default
SAMPLE_ACCOUNTS = 5  # x 2 regions: 10 sampled scopes
# Shared profiles and tags: every service follows one of three profiles, half of them through a
# schedule document that says `profile: <name>`, the other half through a
# `teiji:profile=<name>` tag and no document at all (found by the workers in the allowed
# clusters). Each profile is stopped at STOPPED_AT (Saturday 03:00 JST) and running at
# STARTED_AT (Monday 05:15 JST).
PROFILES: tuple[str, ...] = ("office", "batch", "dev")
PROFILE_BODIES: dict[str, dict[str, Any]] = {
    "office": {
        "timezone": "Asia/Tokyo",
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
        "holidays": ["JP"],
    },
    "batch": {
        "timezone": "Asia/Tokyo",
        "windows": [{"days": "mon-sat", "start": "05:00", "end": "23:00"}],
    },
    "dev": {
        "timezone": "Asia/Tokyo",
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "20:00"}],
        "holidays": ["JP"],
        "targets": "ignore",
    },
}
BOUNDS_TEXT = {
    "fleet_stop_s": "<= 900 (one tick interval)",
    "fleet_start_s": "<= 900 (one tick interval)",
    "throttle_errors": "== 0",
    "orchestrator_s": "< 10",
    "worker_time_ratio": "<= 1.1 (each sampled scope, its time floor)",
    "worker_calls_ratio": "<= 1.1 (each sampled scope, its call floor)",
}


def fleet_accounts(count: int) -> tuple[str, ...]:
    """The deployment's own account and ``count - 1`` others (12 digits each)."""
    return (OWN_ACCOUNT, *(f"{200000000000 + i:012d}" for i in range(1, count)))


def fleet_spec(accounts: int) -> WorldSpec:
    return WorldSpec(
        services=accounts * len(REGIONS) * SERVICES_PER_SCOPE,
        accounts=fleet_accounts(accounts),
        regions=REGIONS,
        services_per_cluster=SERVICES_PER_CLUSTER,
    )


def settings_for(spec: WorldSpec) -> Settings:
    """The deployment's settings: the fleet's accounts and regions, and its clusters allowed
    (opt-in by tag looks for tagged services there)."""
    clusters = tuple(sorted({cluster for _, _, cluster, _ in layout(spec)}))
    access = Access(accounts=spec.accounts, regions=spec.regions, clusters=clusters)
    # The module's worker function sets TEIJI_CONCURRENCY to fanout_worker_concurrency.
    return Settings(access=access, concurrency=WORKER_CONCURRENCY)


def _index(service: WorldService) -> int:
    return int(service.name.rpartition("-")[2])


def profile_of(service: WorldService) -> str:
    return PROFILES[_index(service) % len(PROFILES)]


def is_tagged(service: WorldService) -> bool:
    """Every other service opts in by tag instead of having a document."""
    return _index(service) % 2 == 1


def fleet_items(world: World) -> list[dict[str, Any]]:
    """The config table's items: the profiles, and a `profile: <name>` schedule for each
    documented service (the tagged ones have none)."""
    items: list[dict[str, Any]] = [
        {"pk": "profile", "sk": name, **body} for name, body in PROFILE_BODIES.items()
    ]
    items.extend(
        {"pk": "schedule", "sk": world.key(service), "profile": profile_of(service)}
        for service in world.services
        if not is_tagged(service)
    )
    return items


def seed(settings: Settings, items: list[dict[str, Any]]) -> None:
    table = boto3.resource("dynamodb", region_name=HOME_REGION).Table(settings.config_table)
    with table.batch_writer() as batch:
        for item in items:
            batch.put_item(Item=item)


def tag_services(world: World) -> int:
    """Tag the world's tagged services in moto; how many."""
    tagged = 0
    sessions = moto_sessions()
    for service in world.services:
        if not is_tagged(service):
            continue
        ecs: Any = sessions(service.account, service.region).client(
            "ecs", region_name=service.region
        )
        arn = ecs.describe_services(cluster=service.cluster, services=[service.name])["services"][
            0
        ]["serviceArn"]
        ecs.tag_resource(
            resourceArn=arn, tags=[{"key": "teiji:profile", "value": profile_of(service)}]
        )
        tagged += 1
    return tagged


# 1. The orchestrator over the whole fleet ------------------------------------------------------
def _on_lambda(latency: float, call: Callable[[Clients], Any]) -> tuple[Any, float, float]:
    """``call`` inside the emulator (latency on an emulated clock, moto's CPU counted apart):
    its answer, its emulated seconds and teiji's own CPU seconds."""
    clock = VirtualClock(stall_timeout=5.0)
    emulator = AwsEmulator(clock, latency=latency, limits=AWS_LIMITS)
    with emulator.installed():
        emulator.reset_traffic()
        clients = Clients(region=HOME_REGION)
        started, cpu = clock.monotonic(), time.process_time()
        answer = call(clients)
        cpu = time.process_time() - cpu
        emulated = clock.monotonic() - started
        traffic = emulator.reset_traffic()
    return answer, emulated, max(0.0, cpu - traffic.aws_cpu_s)


def measure_orchestrator(accounts: int, latency: float) -> dict[str, Any]:
    from bench.world import planned_world
    from engine.documents import warm_reuse

    spec = fleet_spec(accounts)
    world = planned_world(spec)
    settings = settings_for(spec)
    lam = LambdaConfig.module_defaults()
    with mock_aws():
        clients = Clients(region=HOME_REGION)
        init_tables(clients, settings)
        started = time.perf_counter()
        seed(settings, fleet_items(world))
        seeded_s = time.perf_counter() - started
        sqs = boto3.client("sqs", region_name=HOME_REGION)
        queue = sqs.create_queue(QueueName="teiji-work")["QueueUrl"]
        wall = time.perf_counter()
        handout, emulated, cpu = _on_lambda(
            latency,
            lambda c: orchestrate(c, settings, sqs_sender(c, queue), at=STOPPED_AT, dry_run=False),
        )
        wall = time.perf_counter() - wall

        # What a worker read before work items carried their scope's keys: every document,
        # cold (a new container) and warm (the parses of the container's last invocation
        # reused, engine.documents.warm_reuse). Shown for comparison; workers read by key now.
        def read(c: Clients) -> None:
            ConfigStore(c, settings.config_table).load_config(
                now=STOPPED_AT, max_override=settings.max_override
            )

        with warm_reuse():
            _, cold_emulated, cold_cpu = _on_lambda(latency, read)
            _, warm_emulated, warm_cpu = _on_lambda(latency, read)
        sent = int(
            sqs.get_queue_attributes(
                QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
    return {
        "services": spec.services,
        "scopes": len(handout.scopes),
        "work_items_sent": sent,
        "unsent": handout.unsent,
        "orchestrator_s": round(lam.lambda_seconds(emulated, cpu), 2),
        "orchestrator_emulated_s": round(emulated, 2),
        "orchestrator_cpu_s": round(cpu, 2),
        "orchestrator_real_s_with_moto": round(wall, 1),
        "document_read_cold_s": round(lam.lambda_seconds(cold_emulated, cold_cpu), 2),
        "document_read_warm_s": round(lam.lambda_seconds(warm_emulated, warm_cpu), 2),
        "seeding_s": round(seeded_s, 1),
        "note": (
            "Lambda seconds: emulated time (20 ms a request) + teiji's own CPU on the module's "
            "vCPU share; moto's CPU is counted apart (orchestrator_real_s_with_moto has it)"
        ),
    }


# 2. Workers on a sample of scopes --------------------------------------------------------------
@dataclass(frozen=True)
class ScopeRun:
    scope: tuple[str, str]
    kind: str
    emulated_s: float
    cpu_s: float
    calls: int
    throttles: int
    changed: int
    failed: int
    floor_calls: int
    floor_s: float
    by_operation: dict[str, int]
    floor_detail: dict[str, int]
    tagged: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": "/".join(self.scope),
            "kind": self.kind,
            "emulated_s": round(self.emulated_s, 2),
            "floor_s": round(self.floor_s, 2),
            "time_ratio": round(self.emulated_s / self.floor_s, 3),
            "calls": self.calls,
            "floor_calls": self.floor_calls,
            "calls_ratio": round(self.calls / self.floor_calls, 3),
            "throttle_errors": self.throttles,
            "changed": self.changed,
            "failed": self.failed,
            "cpu_s": round(self.cpu_s, 3),
            "by_operation": self.by_operation,
            "floor_detail": self.floor_detail,
            "tagged": self.tagged,
        }


def scope_world(world: World, scope: tuple[str, str]) -> World:
    account, region = scope
    members = tuple(s for s in world.services if (s.account, s.region) == scope)
    spec = replace(world.spec, services=len(members), accounts=(account,), regions=(region,))
    return World(spec, members)


def hand_out(clients: Clients, settings: Settings, queue: str, at: datetime) -> list[WorkItem]:
    """The orchestrator's work items for tick ``at``, as the workers receive them."""
    sqs: Any = boto3.client("sqs", region_name=HOME_REGION)
    orchestrate(clients, settings, sqs_sender(clients, queue), at=at, dry_run=False)
    items: list[WorkItem] = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            items.append(parse_work_item(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return [item for item in items if item.kind == "scope"]


def run_worker(
    world: World,
    settings: Settings,
    item: WorkItem,
    kind: TickKind,
    name: str,
    latency: float,
) -> ScopeRun:
    """One worker's whole run on one work item, as the worker function runs it
    (``engine.fanout_run.work`` over ``run_tick(scope=..., schedule_keys=...)``): the fan-out's
    own reads and writes, the lease, the documents by key, discovery, the convergence."""
    scope = _world_scope(world, item.scope)
    clock = VirtualClock(stall_timeout=5.0)
    emulator = AwsEmulator(clock, latency=latency, limits=AWS_LIMITS)
    reports: list[TickReport] = []
    with emulator.installed():
        emulator.refill()
        emulator.reset_traffic()
        clients = Clients(region=HOME_REGION, role_name=ROLE_NAME)

        def run_scope(it: WorkItem, at: datetime, hooks: ScopeHooks | None) -> TickReport:
            report = run_tick(
                clients,
                settings,
                at=at,
                dry_run=False,
                scope=it.scope,
                schedule_keys=it.keys,
                pacer=Pacer(clock=clock, environ={}),
                hooks=hooks,
            )
            reports.append(report)
            return report

        started, cpu = clock.monotonic(), time.process_time()
        verdict = work(
            clients,
            settings,
            item,
            receives=1,
            now=item.at + timedelta(seconds=5),
            run_scope=run_scope,
            holder=f"bench-{name}",
            clock=wall_clock(clock),
        )
        cpu = time.process_time() - cpu
        emulated = clock.monotonic() - started
        traffic = emulator.reset_traffic()
    if verdict != "done" or len(reports) != 1:
        raise SystemExit(f"the worker of {scope_id(item.scope)} said {verdict}")
    report = reports[0]
    own = scope_world(world, scope)
    documented = sum(1 for s in own.services if not is_tagged(s))
    clusters = settings.access.clusters
    floor = worker_floor(own, kind=kind, allowed_clusters=clusters, documented=documented)
    return ScopeRun(
        scope,
        name,
        emulated,
        max(0.0, cpu - traffic.aws_cpu_s),
        traffic.total,
        traffic.total_throttled,
        report.counts["changed"],
        report.counts["failed"] + report.counts["skipped"],
        floor.total,
        worker_time_floor(
            own, kind=kind, latency=latency, discovers=bool(clusters), limits=AWS_LIMITS
        ),
        dict(traffic.requests),
        floor.as_json(),
        tagged=len(own.services) - documented,
    )


def _world_scope(world: World, scope: tuple[str | None, str | None]) -> tuple[str, str]:
    account, region = scope
    return (account or OWN_ACCOUNT, region or world.spec.home_region)


def measure_workers(sample_accounts: int, fleet_accounts_: int, latency: float) -> dict[str, Any]:
    """The sampled scopes' workers, on a config table holding the whole fleet's documents (the
    orchestrator hands every scope out; only the sampled scopes' items are worked)."""
    from bench.world import planned_world

    spec = fleet_spec(sample_accounts)
    settings = settings_for(fleet_spec(fleet_accounts_))
    runs: list[ScopeRun] = []
    with mock_aws(), ecs_like():
        world = build_world(spec)
        settle(world)
        tagged = tag_services(world)
        clients = Clients(region=HOME_REGION, role_name=ROLE_NAME)
        init_tables(clients, settings)
        sampled = set(world.by_scope())
        rest = planned_world(fleet_spec(fleet_accounts_))
        others = World(
            rest.spec,
            tuple(s for s in rest.services if (s.account, s.region) not in sampled),
        )
        seeded = fleet_items(world) + fleet_items(others)[len(PROFILE_BODIES) :]
        seed(settings, seeded)
        queue = boto3.client("sqs", region_name=HOME_REGION).create_queue(QueueName="teiji-work")[
            "QueueUrl"
        ]
        for name, kind, at in (("stop", STOP, STOPPED_AT), ("start", START, STARTED_AT)):
            items = hand_out(clients, settings, queue, at)
            mine = [i for i in items if _world_scope(world, i.scope) in sampled]
            for item in sorted(mine, key=lambda i: scope_id(i.scope)):
                runs.append(run_worker(world, settings, item, kind, name, latency))
            counts = desired_counts(world).values()
            wrong = sum(1 for c in counts if (c != 0 if name == "stop" else c == 0))
            runs_of = [r for r in runs if r.kind == name]
            print(
                f"  workers {name}: {len(runs_of)} of {len(items)} scopes handed out, not "
                f"converged {wrong}, slowest {max(r.emulated_s for r in runs_of):.2f} s emulated",
                file=sys.stderr,
            )
            if wrong:
                raise SystemExit(f"{wrong} services did not converge on the {name}")
            settle(world)
    return {
        "sampled_scopes": len({r.scope for r in runs}),
        "services_per_scope": SERVICES_PER_SCOPE,
        "tagged_services": tagged,
        "schedules_in_table": sum(1 for i in seeded if i["pk"] == "schedule"),
        "runs": [r.as_json() for r in runs],
    }


# 3. The fleet, both modes --------------------------------------------------------------------
def fleet_figures(
    orchestrator: dict[str, Any], workers: dict[str, Any], cap: int, latency: float
) -> dict[str, Any]:
    scopes = orchestrator["scopes"]
    lam = LambdaConfig.module_defaults()
    waves = math.ceil(scopes / cap)
    document_s = orchestrator["document_read_cold_s"]
    result: dict[str, Any] = {"concurrency_cap": cap, "waves": waves}
    for name in ("stop", "start"):
        runs = [r for r in workers["runs"] if r["kind"] == name]
        slowest = max(r["emulated_s"] + r["cpu_s"] / lam.vcpu_share for r in runs)
        # Fan-out: every wave is as slow as the slowest scope, its worker's read of its own
        # documents (by key) included.
        result[f"fleet_{name}_s"] = round(waves * slowest, 1)
        # One invocation: the documents, every scope's requests on MAX_THREADS threads, and
        # every scope's CPU on the Lambda's share of a vCPU.
        call_s = sum(r["calls"] for r in runs) / len(runs) * latency
        cpu_s = sum(r["cpu_s"] for r in runs) / len(runs)
        per_scope_s = call_s / MAX_THREADS + cpu_s / lam.vcpu_share

        single_s = document_s + max(slowest, scopes * per_scope_s)
        result[f"single_{name}_s"] = round(single_s, 1)
        fits = int((TICK_S - document_s) / (per_scope_s + document_s / scopes))
        result[f"single_{name}_fits_scopes"] = fits
        result[f"single_{name}_fits_services"] = fits * SERVICES_PER_SCOPE
    result["single_note"] = (
        "a model from the sampled workers: documents + scopes x (their calls x latency / "
        f"{MAX_THREADS} threads + their CPU / {lam.vcpu_share:.2f} vCPU)"
    )
    return result


def bounds(results: dict[str, Any]) -> list[tuple[str, float, bool]]:
    fleet, runs = results["fleet"], results["workers"]["runs"]
    return [
        ("fleet_stop_s", fleet["fleet_stop_s"], fleet["fleet_stop_s"] <= TICK_S),
        ("fleet_start_s", fleet["fleet_start_s"], fleet["fleet_start_s"] <= TICK_S),
        (
            "throttle_errors",
            sum(r["throttle_errors"] for r in runs),
            all(r["throttle_errors"] == 0 for r in runs),
        ),
        (
            "orchestrator_s",
            results["orchestrator"]["orchestrator_s"],
            results["orchestrator"]["orchestrator_s"] < 10,
        ),
        (
            "worker_time_ratio",
            max(r["time_ratio"] for r in runs),
            all(r["time_ratio"] <= 1.1 for r in runs),
        ),
        (
            "worker_calls_ratio",
            max(r["calls_ratio"] for r in runs),
            all(r["calls_ratio"] <= 1.1 for r in runs),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="teiji's fan-out fleet bench")
    parser.add_argument("--accounts", type=int, default=FLEET_ACCOUNTS)
    parser.add_argument("--sample-accounts", type=int, default=SAMPLE_ACCOUNTS)
    parser.add_argument("--cap", type=int, default=DEFAULT_CAP, help="fanout_max_concurrency")
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_S * 1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "fleet-results.json")
    args = parser.parse_args(argv)
    latency = args.latency_ms / 1000
    print(f"orchestrator over {args.accounts} accounts x {len(REGIONS)} regions", file=sys.stderr)
    orchestrator = measure_orchestrator(args.accounts, latency)
    print(f"  {orchestrator}", file=sys.stderr)
    print(f"workers over {args.sample_accounts * len(REGIONS)} sampled scopes", file=sys.stderr)
    workers = measure_workers(args.sample_accounts, args.accounts, latency)
    results: dict[str, Any] = {
        "fleet": fleet_figures(orchestrator, workers, args.cap, latency),
        "orchestrator": orchestrator,
        "workers": workers,
        "latency_s": latency,
        "profiles": PROFILES,
        "tick_interval_s": TICK_S,
        "clock": "orchestrator: real seconds; workers: emulated seconds",
    }
    found = bounds(results)
    results["bounds"] = [
        {"figure": f, "value": v, "bound": BOUNDS_TEXT[f], "holds": ok} for f, v, ok in found
    ]
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["fleet"], indent=2))
    for figure, value, ok in found:
        print(f"{'ok  ' if ok else 'MISS'} {figure} = {value} ({BOUNDS_TEXT[figure]})")
    return 0 if all(ok for _, _, ok in found) else 1


if __name__ == "__main__":
    sys.exit(main())
