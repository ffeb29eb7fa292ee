"""Thin Application Auto Scaling adapter for ECS services' DesiredCount dimension.

Facts this relies on (AWS API reference, RegisterScalableTarget):
- registering an existing target updates it in place; omitted fields stay unchanged;
- registering moves the service's current desiredCount into [MinCapacity, MaxCapacity];
- SuspendedState has three flags; teiji always sends all three.
ConcurrentUpdateException is not retried by botocore's retry modes, so it is retried here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from engine.aws.ecs import chunks
from schemas.records import SuspendedState

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient

NAMESPACE: Final = "ecs"
DIMENSION: Final = "ecs:service:DesiredCount"
DESCRIBE_TARGETS_BATCH = 50  # ResourceIds per DescribeScalableTargets call (API limit)
CONCURRENT_UPDATE_ATTEMPTS = 5
CONCURRENT_UPDATE_BASE_DELAY = 0.5
CONCURRENT_UPDATE_MAX_DELAY = 8.0
_sleep = time.sleep  # replaced in tests


def resource_id(cluster: str, service: str) -> str:
    return f"service/{cluster}/{service}"


@dataclass(frozen=True, slots=True)
class ScalableTarget:
    """A service's registered scalable target, SuspendedState normalised (missing = false)."""

    resource_id: str
    min_capacity: int
    max_capacity: int
    suspended: SuspendedState

    def holds(self, desired: int) -> bool:
        return self.min_capacity <= desired <= self.max_capacity

    def clamp(self, desired: int) -> int:
        """Where RegisterScalableTarget with these bounds moves ``desired`` on real AWS."""
        return max(self.min_capacity, min(self.max_capacity, desired))

    def as_json(self) -> dict[str, Any]:
        return {
            "min_capacity": self.min_capacity,
            "max_capacity": self.max_capacity,
            "suspended": self.suspended.model_dump(),
        }


def target_from_aws(entry: dict[str, Any]) -> ScalableTarget:
    return ScalableTarget(
        resource_id=str(entry["ResourceId"]),
        min_capacity=int(entry["MinCapacity"]),
        max_capacity=int(entry["MaxCapacity"]),
        suspended=SuspendedState.from_aws(entry.get("SuspendedState")),
    )


def describe_scalable_targets(
    client: ApplicationAutoScalingClient, resource_ids: Iterable[str]
) -> dict[str, ScalableTarget]:
    """The DesiredCount targets among ``resource_ids``, 50 ids per call, every page."""
    found: dict[str, ScalableTarget] = {}
    unique = list(dict.fromkeys(resource_ids))
    for batch in chunks(unique, DESCRIBE_TARGETS_BATCH):
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            params: dict[str, Any] = {
                "ServiceNamespace": NAMESPACE,
                "ResourceIds": batch,
                "ScalableDimension": DIMENSION,
                "MaxResults": DESCRIBE_TARGETS_BATCH,
            }
            if token:
                params["NextToken"] = token
            response = client.describe_scalable_targets(**params)
            for entry in response.get("ScalableTargets", []):
                target = target_from_aws(dict(entry))
                found[target.resource_id] = target
            token = response.get("NextToken")
            # One id has at most one DesiredCount target, so a batch fits one page; the guard
            # stops an endpoint that hands back the same token forever.
            if not token or token in seen_tokens:
                break
            seen_tokens.add(token)
    return found


def register_scalable_target(
    client: ApplicationAutoScalingClient,
    resource: str,
    *,
    min_capacity: int,
    max_capacity: int,
    suspended: SuspendedState,
    attempts: int = CONCURRENT_UPDATE_ATTEMPTS,
    sleep: Callable[[float], None] | None = None,
    jitter: Callable[[], float] = random.random,
) -> None:
    """Register (or update in place) with explicit bounds and all three suspension flags."""
    for attempt in range(1, attempts + 1):
        try:
            client.register_scalable_target(
                ServiceNamespace=NAMESPACE,
                ResourceId=resource,
                ScalableDimension=DIMENSION,
                MinCapacity=min_capacity,
                MaxCapacity=max_capacity,
                SuspendedState={
                    "DynamicScalingInSuspended": suspended.dynamic_in,
                    "DynamicScalingOutSuspended": suspended.dynamic_out,
                    "ScheduledScalingSuspended": suspended.scheduled,
                },
            )
            return
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code != "ConcurrentUpdateException" or attempt == attempts:
                raise
            # Full jitter: another writer (a deployment, a scaling activity) is updating the
            # same target; spread the retries so we do not collide again.
            ceiling = min(CONCURRENT_UPDATE_MAX_DELAY, CONCURRENT_UPDATE_BASE_DELAY * 2**attempt)
            (sleep or _sleep)(ceiling * jitter())
