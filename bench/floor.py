"""The floors a tick is measured against: the fewest calls, and the least time AWS allows.

Both come from the world's layout alone (``World`` or ``planned_world``), for a tick of a given
kind: what the services are decided to be (running or stopped), how many change, and whether
their load balancer targets are due a full check.

Call floor (every tick reads; a transition also writes):
- per (account, region, cluster): ceil(services / 10) DescribeServices (10 names per call);
- per (account, region): ceil(services / 50) DescribeScalableTargets (50 ResourceIds per call);
- one AssumeRole per account other than the deployment's own;
- opt-in by tag (only with an allow-list of clusters): per (account, region, allowed cluster),
  ceil(services / 100) ListServices (at least one; 100 per page), and ceil(untracked / 10)
  DescribeServices with their tags for the listed services no document names (the tags of the
  documented ones come with the DescribeServices above, ``include=["TAGS"]``); the services a
  tag opts in are then observed as a document's are;
- DynamoDB: the Query pages that hold every document (1 MB a page), the lease read, taken and
  given back, and ceil(records / 100) BatchGetItem for the state records: every service's
  baseline, and, while the services are decided running, each load-balanced service's last
  target check (which says whether a check is due);
- a transition adds, per changed service, one UpdateService and one RegisterScalableTarget (the
  bounds, or autoscaling scales a stopped service back out), and ceil(changed / 100)
  TransactWriteItems for the baselines (saved by a stop, deleted by a start; 100 actions a
  transaction);
- a full target check of a running load-balanced service (``targets: verify``, when one is
  due) needs one ListTasks (its RUNNING tasks), one DescribeTasks per 100 tasks (their IPs,
  ports, instances), one DescribeContainerInstances for bridge tasks (the EC2 instance ids),
  one DescribeTargetHealth per target group, and the record of the check: ceil(checked / 25)
  BatchWriteItem;
- in steady state no full check is due, but every load-balanced service must still be checked
  once per ``TEIJI_TARGET_CHECK_INTERVAL`` (default an hour): on average a tick checks
  tick / interval of them (a quarter), and the least such a re-check needs is one
  DescribeTargetHealth per target group (the targets the last check found must still be there
  and healthy), plus ceil(rechecked / 25) BatchWriteItem for their records.

Time floor: the dependent round trips (read documents, observe, a change, a check's chain
ListTasks -> DescribeTasks -> DescribeContainerInstances) at the network latency, plus the time
the emulated AWS's token buckets need to let the requests through: a full bucket admits
``burst`` at once, then ``rate`` a second, and buckets of different accounts and regions (and
categories) drain in parallel. For 1,000 UpdateService in one account and Region:
(1000 - 50) / 5 = 190 s.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from bench.emulator import AWS_LIMITS, Limit
from bench.world import OWN_ACCOUNT, World
from engine.config import DEFAULT_TARGET_CHECK_INTERVAL

DESCRIBE_SERVICES_BATCH = 10
DESCRIBE_SCALABLE_TARGETS_BATCH = 50
DESCRIBE_TASKS_BATCH = 100
BATCH_GET_ITEM_KEYS = 100
BATCH_WRITE_ITEM_REQUESTS = 25
TRANSACT_WRITE_ITEMS_ACTIONS = 100
TICK_S = 900  # the schedule: every quarter hour
QUERY_PAGE_BYTES = 1024 * 1024
DOCUMENT_BYTES = 600  # a schedule item with one window and a holiday calendar, generously
# The lease record read (it holds the deployment's shard count), taken and given back.
LEASE_CALLS = 3


@dataclass(frozen=True)
class TickKind:
    """What a tick finds: the services decided running or not, how many of them change, and
    whether their target checks are due (the first check, or after a change)."""

    running: bool = True
    transition: bool = False
    checks_due: bool = False
    # The share of load-balanced services whose interval re-check falls in this tick.
    rechecks: float = 0.0


STEADY = TickKind(rechecks=TICK_S / DEFAULT_TARGET_CHECK_INTERVAL)
CHECKS_DUE = TickKind(checks_due=True)
STOPPED = TickKind(running=False)
STOP = TickKind(running=False, transition=True)
START = TickKind(running=True, transition=True)


@dataclass(frozen=True)
class CallFloor:
    describe_services: int
    describe_scalable_targets: int
    assume_role: int
    document_pages: int
    baseline_reads: int  # BatchGetItem: baselines and target-check records, 100 keys a call
    lease: int
    update_service: int = 0
    register_scalable_target: int = 0
    baseline_writes: int = 0
    list_services: int = 0  # opt-in by tag: the allowed clusters' pages of 100 services
    describe_untracked: int = 0  # opt-in by tag: listed services no document names, 10 a call
    list_tasks: int = 0
    describe_tasks: int = 0
    describe_container_instances: int = 0
    describe_target_health: int = 0
    target_check_writes: int = 0
    task_definitions: int = 0  # a stop: each Fargate task definition's size, once (savings)
    fanout: int = 0  # a fan-out worker: the tick's record read, its outcome written

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    @property
    def reads(self) -> int:
        writes = self.update_service + self.register_scalable_target + self.baseline_writes
        return self.total - writes - self.target_check_writes - self.fanout

    def as_json(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


def _kind(transition: bool | None, kind: TickKind | None) -> TickKind:
    if kind is not None:
        return kind
    return START if transition else STEADY


LIST_SERVICES_PAGE = 100


def discovery_floor(
    listed: Mapping[Any, int], untracked: Mapping[Any, int] | None = None
) -> tuple[int, int]:
    """(ListServices, DescribeServices) that discovering tagged services needs: ``listed``
    the services of each allowed (account, region, cluster), ``untracked`` how many of them
    no document names (default: all)."""
    untracked = listed if untracked is None else untracked
    pages = sum(max(1, math.ceil(n / LIST_SERVICES_PAGE)) for n in listed.values())
    described = sum(math.ceil(n / DESCRIBE_SERVICES_BATCH) for n in untracked.values())
    return pages, described


def call_floor(
    world: World,
    *,
    transition: bool | None = None,
    kind: TickKind | None = None,
    allowed_clusters: Collection[str] = (),
    tagged: Mapping[Any, int] | None = None,
    warm: bool = False,
) -> CallFloor:
    """The fewest calls of a tick of ``kind`` (``transition=True``: a start of everything).

    With ``allowed_clusters`` the tick also discovers tagged services there; ``tagged``: how
    many services of each (account, region, cluster) no document names (default none).
    ``warm``: a warm container's tick, whose roles in the other accounts were assumed by an
    earlier tick (the credentials last an hour): no AssumeRole."""
    kind = _kind(transition, kind)
    listed = {k: n for k, n in world.cluster_sizes().items() if k[2] in allowed_clusters}
    untracked = {k: (tagged or {}).get(k, 0) for k in listed}
    list_services, describe_untracked = discovery_floor(listed, untracked)
    scopes = world.by_scope()
    balanced = [s for s in world.services if s.load_balanced]
    changed = len(world.services) if kind.transition else 0
    records = len(world.services) + (len(balanced) if kind.running else 0)
    checked = balanced if kind.checks_due and kind.running else []
    rechecked = _rechecks(balanced, kind)
    return CallFloor(
        describe_services=sum(
            math.ceil(n / DESCRIBE_SERVICES_BATCH) for n in world.cluster_sizes().values()
        ),
        describe_scalable_targets=sum(
            math.ceil(len(members) / DESCRIBE_SCALABLE_TARGETS_BATCH) for members in scopes.values()
        ),
        assume_role=0 if warm else len({a for a, _ in scopes if a != OWN_ACCOUNT}),
        list_services=list_services,
        describe_untracked=describe_untracked,
        document_pages=max(1, math.ceil(len(world.services) * DOCUMENT_BYTES / QUERY_PAGE_BYTES)),
        baseline_reads=math.ceil(records / BATCH_GET_ITEM_KEYS),
        lease=LEASE_CALLS,
        update_service=changed,
        register_scalable_target=changed,
        baseline_writes=math.ceil(changed / TRANSACT_WRITE_ITEMS_ACTIONS),
        list_tasks=len(checked),
        describe_tasks=sum(math.ceil(s.desired / DESCRIBE_TASKS_BATCH) for s in checked),
        describe_container_instances=sum(1 for s in checked if s.network == "bridge"),
        describe_target_health=sum(len(s.target_groups) for s in checked) + rechecked[1],
        target_check_writes=math.ceil((len(checked) + rechecked[0]) / BATCH_WRITE_ITEM_REQUESTS),
    )


def _rechecks(balanced: list[Any], kind: TickKind) -> tuple[int, int]:
    """(services, target groups) the interval's re-checks cover in this tick, on average."""
    if not (kind.running and kind.rechecks and not kind.checks_due):
        return 0, 0
    groups = sum(len(s.target_groups) for s in balanced)
    return math.ceil(len(balanced) * kind.rechecks), math.ceil(groups * kind.rechecks)


def drain_seconds(requests: int, limit: Limit) -> float:
    """How long a full token bucket takes to admit ``requests``: the burst, then the rate."""
    return max(0.0, requests - limit.burst) / limit.rate


def requests_by_bucket(
    world: World, *, transition: bool | None = None, kind: TickKind | None = None
) -> Counter[tuple[str, str, str]]:
    """(account, region, category) -> requests the call floor sends into that bucket."""
    kind = _kind(transition, kind)
    requests: Counter[tuple[str, str, str]] = Counter()
    for (account, region, _), size in world.cluster_sizes().items():
        requests[(account, region, "ecs_service_read")] += math.ceil(size / DESCRIBE_SERVICES_BATCH)
    for (account, region), members in world.by_scope().items():
        reads = math.ceil(len(members) / DESCRIBE_SCALABLE_TARGETS_BATCH)
        requests[(account, region, "autoscaling")] += reads
        if kind.transition:
            requests[(account, region, "ecs_service_modify")] += len(members)
            requests[(account, region, "autoscaling")] += len(members)
        if kind.checks_due and kind.running:
            for service in members:
                if not service.load_balanced:
                    continue
                tasks = 1 + math.ceil(service.desired / DESCRIBE_TASKS_BATCH)
                tasks += service.network == "bridge"
                requests[(account, region, "ecs_cluster_read")] += tasks
                requests[(account, region, "elb_describe")] += len(service.target_groups)
        balanced = [s for s in members if s.load_balanced]
        requests[(account, region, "elb_describe")] += _rechecks(balanced, kind)[1]
    return requests


# Kept under its old name: the ECS part is what it used to count.
ecs_requests_by_bucket = requests_by_bucket


def round_trips(world: World, kind: TickKind) -> int:
    trips = 2 + kind.transition  # documents, observe (, change)
    if kind.checks_due and kind.running and any(s.load_balanced for s in world.services):
        trips += 3 if any(s.network == "bridge" for s in world.services) else 2
    return trips


def time_floor(
    world: World,
    *,
    transition: bool | None = None,
    kind: TickKind | None = None,
    latency: float,
    limits: Mapping[str, Limit] = AWS_LIMITS,
) -> float:
    """``limits``: the buckets as the tick finds them (less when another caller shares them)."""
    kind = _kind(transition, kind)
    buckets = requests_by_bucket(world, kind=kind)
    slowest = max(
        (drain_seconds(n, limits[category]) for (_, _, category), n in buckets.items()),
        default=0.0,
    )
    return round_trips(world, kind) * latency + slowest


# A fan-out worker (engine.fanout_run.work over run_tick(scope=...)) ---------------------------
# What any worker must do besides converging: read the tick's record (the instant it decides at,
# whether the scope is done already) and write its scope's outcome.
FANOUT_PROTOCOL_CALLS = 2
# Its scope's lease: taken with one conditional write (no record to read first), and given back
# as an action of the transaction that writes the outcome (no call of its own).
SCOPE_LEASE_CALLS = 1
# Calendars, profiles and overrides: one Query each (their own partitions of the config table).
OTHER_DOCUMENT_KINDS = 3


def worker_floor(
    world: World,
    *,
    kind: TickKind,
    allowed_clusters: Collection[str] = (),
    documented: int | None = None,
) -> CallFloor:
    """The fewest calls of one fan-out worker over ``world`` (one scope's services).

    As ``call_floor``, with the worker's layout: its schedules read by key (the work item
    carries them: one BatchGetItem per 100; ``documented`` of them, default all), the keys of
    the others again (whether a document was written for a tagged one since the hand-out),
    and one Query per other kind; the scope's lease taken without a read and given back with
    the outcome; every service of an
    allowed cluster described once, its tags with it (discovery's answers serve the tick
    too); a stop reads
    each Fargate task definition's size once; and the fan-out's own record read and outcome
    written."""
    documented = len(world.services) if documented is None else documented
    # With opt-in by tag, whether a person wrote a document for a tagged service since the
    # hand-out: its key asked (one BatchGetItem per 100), beside the describes.
    tagged = len(world.services) - documented if allowed_clusters else 0
    floor = call_floor(world, kind=kind, allowed_clusters=allowed_clusters)
    stop = kind.transition and not kind.running
    sized = stop and any(s.network != "bridge" for s in world.services)
    return replace(
        floor,
        document_pages=math.ceil(documented / BATCH_GET_ITEM_KEYS)
        + math.ceil(tagged / BATCH_GET_ITEM_KEYS)
        + OTHER_DOCUMENT_KINDS,
        lease=SCOPE_LEASE_CALLS,
        describe_untracked=0,
        task_definitions=1 if sized else 0,
        fanout=FANOUT_PROTOCOL_CALLS,
    )


def worker_round_trips(world: World, kind: TickKind, *, discovers: bool) -> int:
    """The dependent round trips of one fan-out worker, each one that cannot start before the
    one before it has answered:

    1. the tick's record read, beside the lease taken (independent of each other);
    2. the documents (every kind at once; the schedules by key);
    3. with opt-in by tag, the allowed clusters listed (a tagged service's name comes only
       from ListServices);
    4. the observation (DescribeServices with tags, DescribeScalableTargets, the state records);
    5. a stop: the task sizes (the task definition comes from DescribeServices), then the
       baselines saved (before anything changes);
    6. a change: the bounds registered, then the desired count (re-registering moves the
       count into the bounds, so a count set first could be clamped);
    7. a start: the baselines deleted once the capacity is back;
    8. the outcome written, the lease given back in the same transaction.
    """
    trips = 1 + 1 + discovers + 1
    if kind.transition:
        trips += 2
        trips += 2 if not kind.running else 1
    if kind.checks_due and kind.running and any(s.load_balanced for s in world.services):
        trips += 3 if any(s.network == "bridge" for s in world.services) else 2
    return trips + 1


def worker_time_floor(
    world: World,
    *,
    kind: TickKind,
    latency: float,
    discovers: bool,
    limits: Mapping[str, Limit] = AWS_LIMITS,
) -> float:
    """``worker_round_trips`` at ``latency``, plus what the scope's buckets need to admit its
    requests (``time_floor``'s drain)."""
    buckets = requests_by_bucket(world, kind=kind)
    slowest = max(
        (drain_seconds(n, limits[category]) for (_, _, category), n in buckets.items()),
        default=0.0,
    )
    return worker_round_trips(world, kind, discovers=discovers) * latency + slowest
