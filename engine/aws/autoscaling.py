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
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from engine.aws.answers import checked_pages, require, unreadable
from engine.aws.batching import chunks
from engine.aws.errors import error_code
from engine.model import ScalableTarget
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
_DESCRIBE = "DescribeScalableTargets"


def target_from_aws(entry: Mapping[str, Any]) -> ScalableTarget:
    """One entry of a DescribeScalableTargets answer; UnreadableAnswerError when it is not
    one (a field missing or of the wrong type)."""
    resource = entry.get("ResourceId")
    low, high = entry.get("MinCapacity"), entry.get("MaxCapacity")
    flags = entry.get("SuspendedState")
    if (
        not isinstance(resource, str)
        or not isinstance(low, int)
        or not isinstance(high, int)
        or not _count(low)
        or not _count(high)
        or not (flags is None or _flags(flags))
    ):
        raise unreadable(
            "DescribeScalableTargets", f"a scalable target entry is malformed: {entry!r:.200}"
        )
    return ScalableTarget(
        resource_id=resource,
        min_capacity=int(low),
        max_capacity=int(high),
        suspended=SuspendedState.from_aws(flags),
    )


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _flags(value: object) -> bool:
    return isinstance(value, Mapping) and all(isinstance(v, bool) for v in value.values())


def describe_scalable_targets(
    client: ApplicationAutoScalingClient, resource_ids: Iterable[str]
) -> dict[str, ScalableTarget]:
    """The DesiredCount targets among ``resource_ids``, 50 ids per call, every page.

    An id missing from the result has no target, which is concluded only from complete,
    parsed answers: an answer without its ``ScalableTargets`` list, an entry that is not a
    target of the ids asked for, or a page that never comes (a token handed back twice)
    raises UnreadableAnswerError instead.
    """
    found: dict[str, ScalableTarget] = {}
    unique = list(dict.fromkeys(resource_ids))
    paginator = client.get_paginator("describe_scalable_targets")
    for batch in chunks(unique, DESCRIBE_TARGETS_BATCH):
        asked = set(batch)
        pages = paginator.paginate(
            ServiceNamespace=NAMESPACE,
            ResourceIds=batch,
            ScalableDimension=DIMENSION,
            PaginationConfig={"PageSize": DESCRIBE_TARGETS_BATCH},
        )
        # One id has at most one DesiredCount target, so a batch fits one page; an endpoint
        # that hands back a token it gave before never gives the rest.
        for response in checked_pages(pages, _DESCRIBE, "NextToken", str):
            for entry in require(response, _DESCRIBE, "ScalableTargets", list):
                if not isinstance(entry, Mapping):
                    raise unreadable(_DESCRIBE, f"an entry is a {type(entry).__name__}")
                if entry.get("ScalableDimension", DIMENSION) != DIMENSION:
                    continue  # not the dimension teiji manages
                target = target_from_aws(entry)
                if target.resource_id not in asked:
                    raise unreadable(_DESCRIBE, f"it names {target.resource_id!r}, not asked for")
                if found.get(target.resource_id, target) != target:
                    raise unreadable(_DESCRIBE, f"two different targets for {target.resource_id}")
                found[target.resource_id] = target
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
            if error_code(err) != "ConcurrentUpdateException" or attempt == attempts:
                raise
            # Full jitter: another writer (a deployment, a scaling activity) is updating the
            # same target; spread the retries so we do not collide again.
            ceiling = min(CONCURRENT_UPDATE_MAX_DELAY, CONCURRENT_UPDATE_BASE_DELAY * 2**attempt)
            (sleep or _sleep)(ceiling * jitter())
