"""Thin ECS adapter: every ECS call teiji makes.

- DescribeServices (10 services per call) and UpdateService (desiredCount only) for the tick;
- ListTasks (every page), DescribeTasks and DescribeContainerInstances (100 per call) for the
  load balancer target check (``engine.targets``);
- DescribeTaskDefinition (one revision per call) for the task sizes the savings figures price
  (``engine.sizing``).

Real ECS accepts at most 10 services per DescribeServices call (moto accepts more); we always
send chunks of 10 so the call count is the same in tests and in production. No task is
concluded absent from an answer without its list: the target repair would deregister it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from engine.aws.answers import checked_pages, require, unreadable
from engine.aws.batching import chunks

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

DESCRIBE_SERVICES_BATCH = 10
# DescribeTasks, DescribeContainerInstances: at most 100 per call. ListTasks: maxResults <= 100.
DESCRIBE_TASKS_BATCH = 100
LIST_TASKS_PAGE = 100
_DESCRIBE = "DescribeServices"

# A service in these states no longer runs anything and cannot be updated back to life.
GONE_STATUSES = frozenset({"INACTIVE", "DRAINING"})
# Members of a described service that teiji never reads (see _service_entry).
_UNREAD_MEMBERS = frozenset({"events"})


@dataclass
class ServiceLookup:
    """DescribeServices results for one cluster: entries by service name, failures by name."""

    found: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


LIST_SERVICES_PAGE = 100  # ListServices maxResults: at most 100
_LIST = "ListServices"


def list_service_names(client: ECSClient, cluster: str) -> list[str]:
    """The names of every service in ``cluster``, all pages of 100."""
    names: list[str] = []
    params: dict[str, Any] = {"cluster": cluster, "maxResults": LIST_SERVICES_PAGE}
    seen: set[str] = set()
    while True:
        response: Mapping[str, Any] = client.list_services(**params)
        for arn in require(response, _LIST, "serviceArns", list):
            if not isinstance(arn, str):
                raise unreadable(_LIST, f"a service ARN is a {type(arn).__name__}")
            names.append(_name_from_arn(arn))
        token = response.get("nextToken")
        if not token:
            return list(dict.fromkeys(names))
        if not isinstance(token, str) or token in seen:
            raise unreadable(_LIST, "its nextToken is no token or came before")
        seen.add(token)
        params["nextToken"] = token


def describe_services(
    client: ECSClient, cluster: str, names: Sequence[str], *, tags: bool = False
) -> ServiceLookup:
    """Describe every named service of ``cluster`` in calls of 10.

    A name that ECS reports in ``failures`` (reason MISSING) lands in ``missing``. A service
    that exists but is INACTIVE or DRAINING (deleted) is also reported missing: teiji must not
    try to bring it back.
    """
    lookup = ServiceLookup()
    unique = list(dict.fromkeys(names))
    for batch in chunks(unique, DESCRIBE_SERVICES_BATCH):
        extra: dict[str, Any] = {"include": ["TAGS"]} if tags else {}
        response: Mapping[str, Any] = client.describe_services(
            cluster=cluster, services=batch, **extra
        )
        for entry in require(response, _DESCRIBE, "services", list):
            service = _service_entry(entry, batch)
            name = str(service["serviceName"])
            status = str(service["status"])
            if status in GONE_STATUSES:
                lookup.missing[name] = f"the service is {status} (deleted)"
            else:
                lookup.found[name] = service
        failures = response.get("failures", [])
        if not isinstance(failures, list):
            raise unreadable(_DESCRIBE, f"failures is a {type(failures).__name__}, not a list")
        for failure in failures:
            if not isinstance(failure, Mapping):
                raise unreadable(_DESCRIBE, f"a failure is a {type(failure).__name__}")
            name = _name_from_arn(str(failure.get("arn", "")))
            reason = failure.get("reason") or "unknown"
            detail = failure.get("detail")
            lookup.missing[name] = f"{reason}: {detail}" if detail else str(reason)
    for name in unique:
        if name not in lookup.found and name not in lookup.missing:
            # Neither described nor reported missing: the answer is incomplete, and nothing is
            # concluded about this service from it.
            raise unreadable(_DESCRIBE, f"it says nothing about {name} in cluster {cluster}")
    return lookup


def _service_entry(entry: object, asked: Sequence[str]) -> dict[str, Any]:
    """One described service, checked for the fields teiji reads."""
    if not isinstance(entry, Mapping):
        raise unreadable(_DESCRIBE, f"a service entry is a {type(entry).__name__}")
    name, status, desired = entry.get("serviceName"), entry.get("status"), entry.get("desiredCount")
    if not isinstance(name, str) or name not in asked:
        raise unreadable(_DESCRIBE, f"it describes {name!r:.100}, not asked for")
    if not isinstance(status, str) or not isinstance(desired, int) or isinstance(desired, bool):
        raise unreadable(_DESCRIBE, f"the entry for {name} lacks its status or desiredCount")
    # ECS returns a service's last 100 events with it, most of the answer's bytes; teiji reads
    # none of them, and a tick holds every service it observed until it ends.
    return {key: value for key, value in entry.items() if key not in _UNREAD_MEMBERS}


def _name_from_arn(arn: str) -> str:
    # arn:aws:ecs:region:account:service/cluster/name (new format) or .../service/name (old).
    return arn.rsplit("/", 1)[-1]


def update_desired_count(
    client: ECSClient, cluster: str, service: str, desired_count: int
) -> Mapping[str, Any]:
    """UpdateService with only desiredCount: no new deployment, nothing else changes."""
    response = client.update_service(cluster=cluster, service=service, desiredCount=desired_count)
    return response.get("service", {})


def describe_service_tasks(client: ECSClient, cluster: str, service: str) -> list[Any]:
    """The service's tasks that want to run and those recently stopped, each described once."""
    # A task can move from one list to the other between the two calls: keep it once.
    arns = list(
        dict.fromkeys(
            arn
            for desired in ("RUNNING", "STOPPED")
            for arn in list_task_arns(client, cluster, service, desired)
        )
    )
    tasks: list[Any] = []
    for batch in chunks(arns, DESCRIBE_TASKS_BATCH):
        answer: Mapping[str, Any] = client.describe_tasks(cluster=cluster, tasks=batch)
        tasks.extend(require(answer, "DescribeTasks", "tasks", list))
    return tasks


def list_task_arns(
    client: ECSClient, cluster: str, service: str, desired: Literal["RUNNING", "STOPPED"]
) -> Iterator[str]:
    """The ARNs of the service's tasks with ``desired`` status, every page."""
    pages = client.get_paginator("list_tasks").paginate(
        cluster=cluster,
        serviceName=service,
        desiredStatus=desired,
        PaginationConfig={"PageSize": LIST_TASKS_PAGE},
    )
    for page in checked_pages(pages, "ListTasks", "nextToken", str):
        yield from require(page, "ListTasks", "taskArns", list)


def container_instance_ids(client: ECSClient, cluster: str, arns: Sequence[str]) -> dict[str, str]:
    """containerInstanceArn -> ec2InstanceId for the container instances ``arns`` (an instance
    ECS does not describe is left out)."""
    found: dict[str, str] = {}
    for batch in chunks(list(dict.fromkeys(arns)), DESCRIBE_TASKS_BATCH):
        answer = client.describe_container_instances(cluster=cluster, containerInstances=batch)
        for instance in answer.get("containerInstances", []):
            arn = instance.get("containerInstanceArn")
            ec2_id = instance.get("ec2InstanceId")
            if arn and ec2_id:
                found[arn] = ec2_id
    return found


def describe_task_definition(client: ECSClient, arn: str) -> Mapping[str, Any]:
    """The task definition ``arn`` (a revision), checked for the one map teiji reads."""
    answer: Mapping[str, Any] = client.describe_task_definition(taskDefinition=arn)
    definition: Mapping[str, Any] = require(
        answer, "DescribeTaskDefinition", "taskDefinition", dict
    )
    return definition
