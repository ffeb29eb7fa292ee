"""Wake on request needs a load balancer: schedules that ask for it where no request can come
(imperative shell, one DescribeServices per 10 services of a cluster).

``teiji put`` refuses such a schedule and ``teiji validate --table`` reports it: a service
with no target group has no listener rule to point at the wake function, so ``wake`` would
never do anything. A service in another account or region than teiji's own cannot be woken
either (its load balancer cannot forward to the wake function's target group, which must be
in the function's own account and region). A service that does not exist yet (Terraform
creates it later) is not judged: the tick says so when it meets it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from engine.aws import ecs
from engine.targets import target_group_arns
from schemas.validation import Problem

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from schemas.documents import Schedule

FIELD = "wake.on_request"
NO_LOAD_BALANCER = (
    "the service has no load balancer target group, so no request can reach it to wake it; "
    "put it behind an Application Load Balancer, or set on_request: false"
)


def asks_for_wake(schedule: Schedule) -> bool:
    return schedule.wake is not None and schedule.wake.on_request


def wake_problems(
    clients: Clients, schedules: Iterable[Schedule], source: str, own_region: str | None
) -> list[Problem]:
    """One problem per schedule asking for wake on request that cannot have it."""
    problems: list[Problem] = []
    by_cluster: dict[str, list[Schedule]] = {}
    for schedule in sorted(schedules, key=lambda s: s.key):
        if not asks_for_wake(schedule):
            continue
        elsewhere = schedule.account is not None or (
            schedule.region is not None and schedule.region != own_region
        )
        if elsewhere:
            problems.append(
                Problem(
                    source,
                    f"schedule {schedule.key}",
                    FIELD,
                    "wake on request works only for services in teiji's own account and "
                    f"region ({own_region or 'its own'}): a load balancer forwards only to a "
                    "Lambda target group of its own account and region; set on_request: false",
                )
            )
            continue
        by_cluster.setdefault(schedule.cluster, []).append(schedule)
    client = clients.ecs()
    for cluster, found in sorted(by_cluster.items()):
        try:
            lookup = ecs.describe_services(client, cluster, [s.service_name for s in found])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ClusterNotFoundException":
                continue  # not made yet: nothing to judge
            raise
        for schedule in found:
            entry = lookup.found.get(schedule.service_name)
            if entry is not None and not target_group_arns(entry):
                problems.append(
                    Problem(source, f"schedule {schedule.key}", FIELD, NO_LOAD_BALANCER)
                )
    return problems
