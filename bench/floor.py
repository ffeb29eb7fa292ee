"""The floors a tick is measured against: the fewest calls, and the least time AWS allows.

Call floor (a no-op tick reads; a transition also writes):
- per (account, region, cluster): ceil(services / 10) DescribeServices (10 names per call);
- per (account, region): ceil(services / 50) DescribeScalableTargets (50 ResourceIds per call);
- one AssumeRole per account other than the deployment's own;
- DynamoDB: the Query pages that hold every document (1 MB a page), ceil(services / 100)
  BatchGetItem for the baselines (100 keys a call), and the lease read, taken and given back;
- a transition adds, per changed service, one UpdateService, one RegisterScalableTarget (the
  bounds, or autoscaling scales a stopped service back out) and one baseline write.

Time floor: the dependent round trips (read documents, observe, and for a transition change)
at the network latency, plus the time AWS's ECS token buckets need to let the requests through:
a full bucket admits ``burst`` at once, then ``rate`` a second, and buckets of different
accounts and regions drain in parallel. For 1,000 UpdateService in one account and Region:
(1000 - 50) / 5 = 190 s.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from bench.emulator import AWS_ECS_LIMITS
from bench.world import OWN_ACCOUNT, World
from engine.aws.bucket import Rate

DESCRIBE_SERVICES_BATCH = 10
DESCRIBE_SCALABLE_TARGETS_BATCH = 50
BATCH_GET_ITEM_KEYS = 100
QUERY_PAGE_BYTES = 1024 * 1024
DOCUMENT_BYTES = 600  # a schedule item with one window and a holiday calendar, generously
# The lease record read (it holds the deployment's shard count), taken and given back.
LEASE_CALLS = 3


@dataclass(frozen=True)
class CallFloor:
    describe_services: int
    describe_scalable_targets: int
    assume_role: int
    document_pages: int
    baseline_reads: int
    lease: int
    update_service: int = 0
    register_scalable_target: int = 0
    baseline_writes: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    def as_json(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


def call_floor(world: World, *, transition: bool) -> CallFloor:
    scopes = world.by_scope()
    changed = len(world.services) if transition else 0
    return CallFloor(
        describe_services=sum(
            math.ceil(n / DESCRIBE_SERVICES_BATCH) for n in world.cluster_sizes().values()
        ),
        describe_scalable_targets=sum(
            math.ceil(len(members) / DESCRIBE_SCALABLE_TARGETS_BATCH) for members in scopes.values()
        ),
        assume_role=len({account for account, _ in scopes if account != OWN_ACCOUNT}),
        document_pages=max(1, math.ceil(len(world.services) * DOCUMENT_BYTES / QUERY_PAGE_BYTES)),
        baseline_reads=math.ceil(len(world.services) / BATCH_GET_ITEM_KEYS),
        lease=LEASE_CALLS,
        update_service=changed,
        register_scalable_target=changed,
        baseline_writes=changed,
    )


def drain_seconds(requests: int, limit: Rate) -> float:
    """How long a full token bucket takes to admit ``requests``: the burst, then the rate."""
    return max(0.0, requests - limit.burst) / limit.rate


def ecs_requests_by_bucket(world: World, *, transition: bool) -> Counter[tuple[str, str, str]]:
    """(account, region, ECS category) -> requests the call floor sends into that bucket."""
    requests: Counter[tuple[str, str, str]] = Counter()
    for (account, region, _), size in world.cluster_sizes().items():
        requests[(account, region, "ecs_service_read")] += math.ceil(size / DESCRIBE_SERVICES_BATCH)
        if transition:
            requests[(account, region, "ecs_service_modify")] += size
    return requests


def time_floor(
    world: World,
    *,
    transition: bool,
    latency: float,
    limits: Mapping[str, Rate] = AWS_ECS_LIMITS,
) -> float:
    """``limits``: the buckets as the tick finds them (less when another caller shares them)."""
    round_trips = 3 if transition else 2
    buckets = ecs_requests_by_bucket(world, transition=transition)
    slowest = max(
        (drain_seconds(n, limits[category]) for (_, _, category), n in buckets.items()),
        default=0.0,
    )
    return round_trips * latency + slowest
