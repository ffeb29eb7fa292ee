"""The hand-written Lambda teiji replaces, re-implemented call for call as the comparison.

From /work/shared/context/seed-summary.md: a hard-coded list of (cluster, service) pairs,
handled one after another.

- stop: read the scalable target's MaxCapacity (DescribeScalableTargets), re-register it with
  MinCapacity=0 and that MaxCapacity, then UpdateService desiredCount=0;
- start: the same with MinCapacity=1, UpdateService desiredCount=1, then right away ListTasks,
  DescribeTasks (when it listed any), DescribeServices (the service's target groups) and
  RegisterTargets with the task *ids* for each of the service's target groups;
- botocore's default (legacy) retry mode; ``ClientError`` and ``ValueError`` are printed and
  swallowed around the whole loop, so the first failing service ends the run for the rest.

The only liberty: the tool ran in one account and region; here each service's calls go to its
own account (assumed role) and region so it can run on the same world as teiji.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from bench.world import SessionFor, WorldService
from engine.aws.clock import Clock

LAMBDA_TIMEOUT_S = 300.0  # the tool's configured Lambda timeout
LEGACY = Config(retries={"mode": "legacy"})  # what boto3 does when nothing is configured
DIMENSION = "ecs:service:DesiredCount"


@dataclass
class SeedRun:
    action: str
    services: int
    wall_s: float = 0.0
    done: list[tuple[str, float]] = field(default_factory=list)  # (ident, emulated s)
    printed: list[str] = field(default_factory=list)

    @property
    def failed_services(self) -> int:
        """Services left as they were: the one that raised, and every one after it."""
        return self.services - len(self.done)

    def done_within(self, seconds: float) -> int:
        return sum(1 for _, at in self.done if at <= seconds)


class _Clients:
    """boto3 clients per (service, account, region), legacy retries, as the tool made them."""

    def __init__(self, session_for: SessionFor) -> None:
        self._session_for = session_for
        self._cache: dict[tuple[str, str, str], Any] = {}

    def get(self, name: str, service: WorldService) -> Any:
        key = (name, service.account, service.region)
        if key not in self._cache:
            session = self._session_for(service.account, service.region)
            self._cache[key] = session.client(
                name,  # type: ignore[call-overload]
                region_name=service.region,
                config=LEGACY,
            )
        return self._cache[key]


def _scale(clients: _Clients, service: WorldService, min_capacity: int) -> None:
    aas = clients.get("application-autoscaling", service)
    current = aas.describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[service.resource_id], ScalableDimension=DIMENSION
    )
    max_capacity = current["ScalableTargets"][0]["MaxCapacity"]
    aas.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=service.resource_id,
        ScalableDimension=DIMENSION,
        MinCapacity=min_capacity,
        MaxCapacity=max_capacity,
    )


def stop_service(clients: _Clients, service: WorldService) -> None:
    _scale(clients, service, 0)
    clients.get("ecs", service).update_service(
        cluster=service.cluster, service=service.name, desiredCount=0
    )


def start_service(clients: _Clients, service: WorldService) -> None:
    _scale(clients, service, 1)
    ecs = clients.get("ecs", service)
    ecs.update_service(cluster=service.cluster, service=service.name, desiredCount=1)
    # Right after UpdateService: ECS has not started the new tasks yet.
    task_arns = ecs.list_tasks(cluster=service.cluster, serviceName=service.name)["taskArns"]
    if task_arns:
        ecs.describe_tasks(cluster=service.cluster, tasks=task_arns)
    described = ecs.describe_services(cluster=service.cluster, services=[service.name])
    groups = [
        lb["targetGroupArn"]
        for entry in described["services"]
        for lb in entry.get("loadBalancers") or []
        if lb.get("targetGroupArn")
    ]
    targets = [{"Id": arn.rsplit("/", 1)[-1]} for arn in task_arns]  # task ids: never valid
    for target_group in groups:
        clients.get("elbv2", service).register_targets(TargetGroupArn=target_group, Targets=targets)


# The calls the tool makes per service, in order (the start's last three depend on the answers).
STOP_CALLS = (
    "application-auto-scaling.DescribeScalableTargets",
    "application-auto-scaling.RegisterScalableTarget",
    "ecs.UpdateService",
)
START_CALLS = (
    *STOP_CALLS,
    "ecs.ListTasks",
    "ecs.DescribeTasks",
    "ecs.DescribeServices",
    "elastic-load-balancing-v2.RegisterTargets",
)


def run_seed_tool(
    action: str,
    services: Sequence[WorldService],
    session_for: SessionFor,
    clock: Clock,
    *,
    log: Callable[[str], None] | None = None,
) -> SeedRun:
    """One invocation of the tool's handler over ``services``; emulated time from ``clock``."""
    run = SeedRun(action, len(services))
    clients = _Clients(session_for)
    handle = stop_service if action == "stop" else start_service  # anything else means start
    started = clock.monotonic()
    try:
        for service in services:
            handle(clients, service)
            run.done.append((service.ident, clock.monotonic() - started))
    except (ClientError, ValueError) as exc:  # printed and swallowed, as the tool does
        run.printed.append(str(exc))
        if log:
            log(str(exc))
    run.wall_s = clock.monotonic() - started
    return run
