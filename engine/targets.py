"""Load balancer target checks and repair (a service's ``targets: verify | repair | ignore``).

ECS registers a service's tasks in its target groups, and deregisters them, by itself. teiji
never registers tasks after starting a service; it VERIFIES that each target group of a running
service holds exactly the service's RUNNING tasks and, in ``repair`` mode, registers what is
missing and deregisters what stopped tasks left behind.

A target is what ELBv2 knows, never an ECS task id:
- awsvpc (Fargate, or EC2 with awsvpc): the task's private IPv4 address and the container port;
- bridge / host (EC2): the container instance's EC2 instance id and the container's host port.

Pure core: ``classify_tasks``, ``expected_targets`` and ``compare`` are functions of data.
Shell: ``check_targets`` reads ECS and ELBv2 (through ``engine.aws.ecs`` and
``engine.aws.elbv2``), calls ``compare``, and applies the repairs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from engine.aws import ecs, elbv2
from engine.aws.clients import Clients
from engine.aws.errors import AWS_ERRORS

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

TargetMode = Literal["verify", "repair", "ignore"]
FindingKind = Literal["missing", "unhealthy", "foreign", "stale"]
TaskPhase = Literal["starting", "running", "draining", "stopped"]

# ECS task lifecycle (lastStatus). A task is only expected in its target groups once RUNNING;
# before that ECS has not registered it yet, and while draining ECS is deregistering it.
DRAINING_STATUSES = frozenset({"DEACTIVATING", "STOPPING", "DEPROVISIONING"})
STOPPED_STATUSES = frozenset({"STOPPED", "DELETED"})

# ELBv2 TargetHealth.State values. ``initial`` (health checks not passed yet) and ``draining``
# (deregistration in progress) are normal while tasks start and stop, so they are not findings.
UNHEALTHY_STATES = frozenset({"unhealthy", "unhealthy.draining"})
LEAVING_STATES = frozenset({"draining"})

_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
# ECS task ids are 32 hex digits (older ones, and emulators, use UUIDs); ARNs contain ":task/".
_TASK_ID = re.compile(r"^(arn:aws[a-z-]*:ecs:.*:task/.*|[0-9a-f]{32}|[0-9a-f-]{36})$")


# Value types ---------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Target:
    """What a target group should hold or holds."""

    id: str  # awsvpc: private IPv4; bridge/host: EC2 instance id
    port: int

    def __str__(self) -> str:
        return f"{self.id}:{self.port}"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "port": self.port}

    def as_elbv2(self) -> dict[str, Any]:
        """The ``TargetDescription`` that RegisterTargets and DeregisterTargets take."""
        return {"Id": self.id, "Port": self.port}

    @classmethod
    def parse(cls, text: str) -> Target:
        """``"10.0.1.23:8080"`` -> Target("10.0.1.23", 8080); ValueError when it is not one."""
        target_id, colon, port = text.rpartition(":")
        if not colon or not is_valid_target_id(target_id) or not port.isdigit():
            raise ValueError(f"not a target (id:port): {text!r}")
        return cls(target_id, int(port))


@dataclass(frozen=True)
class TargetFinding:
    target_group_arn: str
    target: Target
    kind: FindingKind
    detail: str  # a sentence for people, e.g. "10.0.1.23:8080 (task 1a2b…) is not registered …"

    def as_json(self) -> dict[str, Any]:
        return {
            "target_group_arn": self.target_group_arn,
            "target": self.target.as_json(),
            "kind": self.kind,
            "detail": self.detail,
        }


@dataclass
class TargetReport:
    """What one service's target check found and repaired.

    ``registered`` / ``deregistered`` are the repairs done, or only planned when ``dry_run``.
    ``notes`` are facts worth reading that are not findings (a task whose target cannot be
    worked out, a repair that was refused).
    """

    findings: list[TargetFinding] = field(default_factory=list)
    registered: list[tuple[str, Target]] = field(default_factory=list)
    deregistered: list[tuple[str, Target]] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    # What the service's RUNNING tasks should be registered as, per target group: remembered
    # after an ok check, so that the next re-check only needs to find them healthy.
    expected: dict[str, set[Target]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No error and nothing left wrong.

        Foreign targets never make a report not ok (another service may share the group).
        Missing and stale targets are fine once repaired; a dry run repairs nothing.
        """
        if self.error is not None:
            return False
        repaired = set() if self.dry_run else {*self.registered, *self.deregistered}
        for finding in self.findings:
            if finding.kind == "foreign":
                continue
            if (finding.target_group_arn, finding.target) in repaired:
                continue
            return False
        return True

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "dry_run": self.dry_run,
            "findings": [f.as_json() for f in self.findings],
            "registered": [_pair_json(tg, t) for tg, t in self.registered],
            "deregistered": [_pair_json(tg, t) for tg, t in self.deregistered],
            "notes": list(self.notes),
        }


def _pair_json(target_group_arn: str, target: Target) -> dict[str, Any]:
    return {"target_group_arn": target_group_arn, **target.as_json()}


@dataclass
class TaskTargets:
    """A service's tasks sorted by phase, as the targets each phase stands for."""

    expected: dict[str, set[Target]]  # RUNNING tasks: must be registered
    transitional: dict[str, set[Target]]  # starting or draining: ECS is still at work
    stopped: dict[str, set[Target]]  # STOPPED tasks: registered means left behind
    task_of: dict[Target, str]  # target -> task id, for sentences
    unresolved: list[str]  # running tasks whose target could not be worked out, why


# Pure: which tasks, which targets ------------------------------------------------------------
def target_group_arns(service: Mapping[str, Any]) -> list[str]:
    """The service's target groups (classic load balancers have no target group: skipped)."""
    arns: list[str] = []
    for lb in service.get("loadBalancers") or []:
        arn = lb.get("targetGroupArn")
        if arn and arn not in arns:
            arns.append(arn)
    return arns


def belongs_to_service(service: Mapping[str, Any], task: Mapping[str, Any]) -> bool:
    """ECS starts a service's tasks with group ``service:<name>`` and startedBy = a deployment id.

    ListTasks(serviceName=…) already filters in real ECS; checked again so that nothing else in
    the cluster (another service, a one-off task) is ever taken for this service's.
    """
    service_cluster = service.get("clusterArn")
    task_cluster = task.get("clusterArn")
    if service_cluster and task_cluster and service_cluster != task_cluster:
        return False
    if task.get("group") == f"service:{service.get('serviceName')}":
        return True
    deployment_ids = {d.get("id") for d in service.get("deployments") or []} - {None}
    return task.get("startedBy") in deployment_ids


def task_phase(task: Mapping[str, Any]) -> TaskPhase:
    last = str(task.get("lastStatus") or "").upper()
    desired = str(task.get("desiredStatus") or "RUNNING").upper()
    if last in STOPPED_STATUSES:
        return "stopped"
    if last in DRAINING_STATUSES:
        return "draining"
    if last == "RUNNING":
        # RUNNING but told to stop: ECS is about to deregister it.
        return "running" if desired == "RUNNING" else "draining"
    return "starting"


def task_id(task: Mapping[str, Any]) -> str:
    return str(task.get("taskArn") or "?").rsplit("/", 1)[-1]


def task_private_ip(task: Mapping[str, Any]) -> str | None:
    """The awsvpc task's private IPv4: from its ENI attachment, else its containers'."""
    for attachment in task.get("attachments") or []:
        if attachment.get("type") != "ElasticNetworkInterface":
            continue
        for detail in attachment.get("details") or []:
            if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                return str(detail["value"])
    for container in task.get("containers") or []:
        for interface in container.get("networkInterfaces") or []:
            if interface.get("privateIpv4Address"):
                return str(interface["privateIpv4Address"])
    return None


def host_port(task: Mapping[str, Any], container_name: str, container_port: int) -> int | None:
    """The host port that bridge/host networking bound to ``container_name:container_port``."""
    for container in task.get("containers") or []:
        if container.get("name") != container_name:
            continue
        for binding in container.get("networkBindings") or []:
            if binding.get("containerPort") == container_port and binding.get("hostPort"):
                return int(binding["hostPort"])
    return None


def task_targets(
    service: Mapping[str, Any],
    task: Mapping[str, Any],
    container_instances: Mapping[str, str],
) -> tuple[list[tuple[str, Target]], list[str]]:
    """The (target group, target) pairs that stand for ``task``, and why any could not be made."""
    pairs: list[tuple[str, Target]] = []
    problems: list[str] = []
    ip = task_private_ip(task)
    for lb in service.get("loadBalancers") or []:
        arn = lb.get("targetGroupArn")
        name = lb.get("containerName")
        port = lb.get("containerPort")
        if not arn or port is None:
            continue
        if ip is not None:
            pairs.append((arn, Target(ip, int(port))))
            continue
        instance_arn = task.get("containerInstanceArn")
        instance = container_instances.get(instance_arn) if instance_arn else None
        bound = host_port(task, str(name), int(port))
        if instance is None or bound is None:
            if not instance_arn:
                lack = "no private IPv4 address (awsvpc) and no container instance"
            elif instance is None:
                lack = f"no known EC2 instance for container instance {instance_arn}"
            else:
                lack = f"no host port bound to container {name} port {port}"
            problems.append(f"task {task_id(task)} has {lack}")
            continue
        pairs.append((arn, Target(instance, bound)))
    return pairs, problems


def classify_tasks(
    service: Mapping[str, Any],
    tasks: Sequence[Mapping[str, Any]],
    container_instances: Mapping[str, str],
) -> TaskTargets:
    groups = target_group_arns(service)
    sorted_targets = TaskTargets(
        expected={arn: set() for arn in groups},
        transitional={arn: set() for arn in groups},
        stopped={arn: set() for arn in groups},
        task_of={},
        unresolved=[],
    )
    for task in tasks:
        if not belongs_to_service(service, task):
            continue
        phase = task_phase(task)
        pairs, problems = task_targets(service, task, container_instances)
        if phase == "running":
            sorted_targets.unresolved.extend(problems)
        bucket = {
            "running": sorted_targets.expected,
            "starting": sorted_targets.transitional,
            "draining": sorted_targets.transitional,
            "stopped": sorted_targets.stopped,
        }[phase]
        for arn, target in pairs:
            if not is_valid_target_id(target.id):
                continue  # never let anything but an IP or an instance id become a target
            bucket.setdefault(arn, set()).add(target)
            # A live task's claim on an address wins over a stopped one that had it before.
            if phase != "stopped" or target not in sorted_targets.task_of:
                sorted_targets.task_of[target] = task_id(task)
    return sorted_targets


def expected_targets(
    service: Mapping[str, Any],
    tasks: Sequence[Mapping[str, Any]],
    container_instances: Mapping[str, str],
) -> dict[str, set[Target]]:
    """Per target group ARN, the targets this service's RUNNING tasks should be registered as.

    ``service`` is a DescribeServices entry, ``tasks`` DescribeTasks entries (other services'
    tasks and tasks in any other phase are ignored), ``container_instances`` maps
    containerInstanceArn -> ec2InstanceId for bridge/host networking. Every target group of
    the service has a key, possibly with an empty set.
    """
    return classify_tasks(service, tasks, container_instances).expected


def is_valid_target_id(value: str) -> bool:
    """An IPv4 address or an EC2 instance id: the only ids a task's target can have."""
    if _INSTANCE_ID.match(value):
        return True
    try:
        return ipaddress.ip_address(value).version == 4
    except ValueError:
        return False


# Pure: compare and plan ----------------------------------------------------------------------
def target_group_name(arn: str) -> str:
    """``arn:…:targetgroup/web/0123abcd`` -> ``web`` (the ARN itself when it has no such part)."""
    parts = arn.split(":targetgroup/", 1)
    return parts[1].split("/", 1)[0] if len(parts) == 2 else arn


def compare(
    expected: Mapping[str, set[Target]],
    registered: Mapping[str, Sequence[Mapping[str, Any]]],
    stopped_task_targets: Mapping[str, set[Target]],
    mode: TargetMode,
    *,
    transitional: Mapping[str, set[Target]] | None = None,
    task_of: Mapping[Target, str] | None = None,
) -> TargetReport:
    """Findings per target group, and in ``repair`` mode the repairs to make.

    ``registered`` holds DescribeTargetHealth ``TargetHealthDescriptions`` per group.
    - missing: expected, not registered (repair: register);
    - unhealthy: expected and registered, state unhealthy (``initial``/``draining`` are not
      findings: tasks still starting or draining);
    - stale: registered, belongs to a STOPPED task of this service and to no live one (repair:
      deregister; a target already draining is on its way out and is left alone);
    - foreign: registered, belongs to no task of this service: reported, never deregistered,
      because another service may share the group.
    ``transitional`` are targets of tasks ECS is still starting or draining: neither expected
    nor foreign. ``task_of`` names the task of a target in sentences.
    The report describes the outcome once its repairs are applied.
    """
    report = TargetReport()
    if mode == "ignore":
        return report
    passing = transitional or {}
    owners = task_of or {}
    for arn in sorted(set(expected) | set(registered)):
        present = _registered_states(registered.get(arn, ()))
        want = expected.get(arn, set())
        group = target_group_name(arn)
        for target in sorted(want):
            health = present.get(target)
            if health is None:
                report.findings.append(
                    TargetFinding(
                        arn,
                        target,
                        "missing",
                        f"{target} ({_owner(target, owners)}) is not registered in target "
                        f"group {group}",
                    )
                )
                if mode == "repair":
                    report.registered.append((arn, target))
            elif health[0] in UNHEALTHY_STATES:
                report.findings.append(
                    TargetFinding(
                        arn,
                        target,
                        "unhealthy",
                        f"{target} ({_owner(target, owners)}) is {health[0]} in target group "
                        f"{group}{_because(health[1])}",
                    )
                )
        stopped = stopped_task_targets.get(arn, set())
        live = want | passing.get(arn, set())
        for target, (state, _why) in sorted(present.items()):
            if target in live or state in LEAVING_STATES:
                continue
            if target in stopped:
                report.findings.append(
                    TargetFinding(
                        arn,
                        target,
                        "stale",
                        f"{target} (stopped {_owner(target, owners)}) is still registered in "
                        f"target group {group}",
                    )
                )
                if mode == "repair":
                    report.deregistered.append((arn, target))
            else:
                report.findings.append(
                    TargetFinding(arn, target, "foreign", _foreign_sentence(target, group))
                )
    return report


def _registered_states(
    descriptions: Iterable[Mapping[str, Any]],
) -> dict[Target, tuple[str, str]]:
    """Target -> (state, reason and description) from TargetHealthDescriptions."""
    states: dict[Target, tuple[str, str]] = {}
    for description in descriptions:
        target = description.get("Target") or {}
        if target.get("Id") is None or target.get("Port") is None:
            continue  # Lambda and ALB targets have no port; a task is never one of those
        health = description.get("TargetHealth") or {}
        why = " ".join(str(health[k]) for k in ("Reason", "Description") if health.get(k))
        states[Target(str(target["Id"]), int(target["Port"]))] = (str(health.get("State")), why)
    return states


def _owner(target: Target, owners: Mapping[Target, str]) -> str:
    owner = owners.get(target)
    return f"task {owner}" if owner else "a task of this service"


def _because(why: str) -> str:
    return f": {why}" if why else ""


def _foreign_sentence(target: Target, group: str) -> str:
    sentence = (
        f"{target} is registered in target group {group} but is no task of this service; "
        "left in place (another service may share the group)"
    )
    if _TASK_ID.match(target.id):
        sentence += (
            "; its id looks like an ECS task id, which is never a valid target "
            "(ECS registers the task's IP address or instance itself)"
        )
    return sentence


# Shell: observe, compare, repair -------------------------------------------------------------
def check_targets(
    clients: Clients,
    *,
    account: str | None,
    region: str | None,
    cluster: str,
    service: Mapping[str, Any],
    mode: TargetMode,
    dry_run: bool,
) -> TargetReport:
    """Check one running service's target groups against its tasks; repair in ``repair`` mode.

    ``service`` is the service's DescribeServices entry. AWS errors (including an account whose
    role cannot be assumed) never raise: they come back as ``TargetReport.error``, with
    whatever repairs were already done listed. Only a programming error raises (an operation
    missing from ``engine.aws.operations``; a target id that is neither an IPv4 address nor an
    EC2 instance id, which the pure core never produces).
    """
    if mode == "ignore" or not target_group_arns(service):
        return TargetReport(dry_run=dry_run)
    name = str(service.get("serviceName"))
    where = f"service {name} in cluster {cluster}"
    try:
        ecs_client = clients.ecs(account, region)
        elbv2_client = clients.elbv2(account, region)
        tasks = ecs.describe_service_tasks(ecs_client, cluster, name)
        instances = _container_instances(ecs_client, cluster, service, tasks)
        registered = {
            arn: elbv2.describe_target_health(elbv2_client, arn)
            for arn in target_group_arns(service)
        }
    except AWS_ERRORS as exc:
        return TargetReport(
            error=f"cannot check load balancer targets of {where}: {exc}", dry_run=dry_run
        )
    sorted_tasks = classify_tasks(service, tasks, instances)
    report = compare(
        sorted_tasks.expected,
        registered,
        sorted_tasks.stopped,
        mode,
        transitional=sorted_tasks.transitional,
        task_of=sorted_tasks.task_of,
    )
    report.notes.extend(f"{where}: {problem}" for problem in sorted_tasks.unresolved)
    report.dry_run = dry_run
    report.expected = sorted_tasks.expected
    if mode == "repair" and not dry_run:
        _apply(elbv2_client, report, where)
    return report


# A remembered target that no longer parses is a difference like any other.
_LIGHT_CHECK_ERRORS: tuple[type[Exception], ...] = (*AWS_ERRORS, ValueError)


def remembered_targets_healthy(
    clients: Clients,
    *,
    account: str | None,
    region: str | None,
    service: Mapping[str, Any],
    remembered: Mapping[str, Sequence[str]],
) -> bool:
    """True when each of the service's target groups still holds every target the last full
    check found right, each ``healthy``: one DescribeTargetHealth per group, no ECS call.

    While the service's deployment and counts are unchanged (the caller's fingerprint), its
    tasks are those targets: a task replaced, deregistered or failing shows here as a target
    missing or not healthy. False on any difference, on anything that cannot be read or
    parsed, and when the groups are not the remembered ones: then the caller checks fully.
    Extra targets are not looked at (another service may share the group; a new task of this
    one changes the running count, hence the fingerprint).
    """
    groups = target_group_arns(service)
    if not groups or set(groups) != set(remembered):
        return False
    try:
        client = clients.elbv2(account, region)
        for arn in groups:
            states = _registered_states(elbv2.describe_target_health(client, arn))
            for text in remembered[arn]:
                state = states.get(Target.parse(text))
                if state is None or state[0] != "healthy":
                    return False
    except _LIGHT_CHECK_ERRORS:
        return False
    return True


def _container_instances(
    ecs_client: ECSClient,
    cluster: str,
    service: Mapping[str, Any],
    tasks: Sequence[Mapping[str, Any]],
) -> dict[str, str]:
    """containerInstanceArn -> ec2InstanceId, only for this service's tasks without an ENI
    (bridge/host networking on EC2): Fargate and awsvpc tasks need no such call."""
    wanted: list[str] = []
    for task in tasks:
        arn = task.get("containerInstanceArn")
        needs_instance = task_private_ip(task) is None and belongs_to_service(service, task)
        if arn and arn not in wanted and needs_instance:
            wanted.append(arn)
    return ecs.container_instance_ids(ecs_client, cluster, wanted)


def _apply(client: ElasticLoadBalancingv2Client, report: TargetReport, where: str) -> None:
    """Register missing targets, then deregister stale ones, one call per target group.

    A failed call leaves its targets out of the report's done lists and sets ``error``; the
    other groups are still repaired.
    """
    errors: list[str] = []
    done_registered: list[tuple[str, Target]] = []
    done_deregistered: list[tuple[str, Target]] = []
    for arn, targets in _by_group(report.registered):
        try:
            elbv2.register_targets(client, arn, _descriptions(targets))
        except AWS_ERRORS as exc:
            errors.append(f"cannot register {_listing(targets)} in {target_group_name(arn)}: {exc}")
        else:
            done_registered.extend((arn, t) for t in targets)
    for arn, targets in _by_group(report.deregistered):
        try:
            elbv2.deregister_targets(client, arn, _descriptions(targets))
        except AWS_ERRORS as exc:
            errors.append(
                f"cannot deregister {_listing(targets)} from {target_group_name(arn)}: {exc}"
            )
        else:
            done_deregistered.extend((arn, t) for t in targets)
    report.registered = done_registered
    report.deregistered = done_deregistered
    if errors:
        report.error = f"load balancer target repair of {where} failed: " + "; ".join(errors)


def _descriptions(targets: Sequence[Target]) -> list[Any]:
    for target in targets:
        # The last guard before AWS: a task id (or anything else) is never sent as a target.
        if not is_valid_target_id(target.id):
            raise ValueError(f"refusing to send {target.id!r} as a load balancer target id")
    return [target.as_elbv2() for target in targets]


def _by_group(pairs: Sequence[tuple[str, Target]]) -> list[tuple[str, list[Target]]]:
    groups: dict[str, list[Target]] = {}
    for arn, target in pairs:
        groups.setdefault(arn, []).append(target)
    return list(groups.items())


def _listing(targets: Sequence[Target]) -> str:
    return ", ".join(str(t) for t in targets)
