"""A world of N running ECS services over accounts, regions and clusters, built in moto.

Every service has an Application Auto Scaling target (the hand-written tool assumes one); every
``load_balanced_every``-th service also sits behind a target group, half of them awsvpc
(Fargate, target type ``ip``: task IP + container port) and half bridge (EC2 container
instances, target type ``instance``: EC2 instance id + dynamic host port). Accounts other than
the deployment's own are reached the way teiji reaches them, through AssumeRole (moto keeps
separate state per account for assumed-role credentials).

moto never runs a service's tasks, never registers them in target groups and ignores
ListTasks' ``serviceName``. ``ecs_like()`` makes ListTasks honour ``serviceName`` and keeps
tasks in the state they are put in; ``settle()`` does what ECS's service scheduler does between
two ticks: it starts or stops each load-balanced service's tasks to its desiredCount and
registers or deregisters their targets (ECS uses its own ELB buckets for that, so ``settle``
goes around the emulator). A target check in the world then finds every target healthy.

``World.schedules()`` gives each service a teiji schedule (Mon-Fri 05:00-22:00 in Tokyo, JP
holidays, teiji's default ``targets: verify``), and the instants below are on either side of it.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from unittest import mock

import boto3
import botocore.loaders
import botocore.session

from engine.config import Access
from schemas.documents import Schedule, TargetsMode, Window
from schemas.keys import service_key

OWN_ACCOUNT = "123456789012"  # moto's default account: the deployment's own
OTHER_ACCOUNTS = ("210987654321", "345678901234")
HOME_REGION = "ap-northeast-1"
REGIONS = (HOME_REGION, "us-east-1")
ROLE_NAME = "teiji-bench"

# Wednesday 2026-12-02 12:00 JST (inside the window), Saturday 2026-12-05 03:00 JST (outside)
# and Monday 2026-12-07 05:15 JST (inside again: the morning start).
RUNNING_AT = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
STOPPED_AT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
STARTED_AT = datetime(2026, 12, 6, 20, 15, tzinfo=UTC)

CONTAINER = "app"
CONTAINER_PORT = 80
AWSVPC_FAMILY = "bench-app"
BRIDGE_FAMILY = "bench-bridge"
CONTAINER_INSTANCES_PER_CLUSTER = 2
FIRST_HOST_PORT = 32768  # Docker's ephemeral range, where bridge mode's dynamic ports come from
Network = Literal["awsvpc", "bridge"]


@dataclass(frozen=True)
class WorldSpec:
    services: int
    accounts: tuple[str, ...] = (OWN_ACCOUNT, *OTHER_ACCOUNTS)
    regions: tuple[str, ...] = REGIONS
    services_per_cluster: int = 100
    load_balanced_every: int = 3
    home_region: str = HOME_REGION

    def __post_init__(self) -> None:
        if self.services < 1 or not self.accounts or not self.regions:
            raise ValueError("a world needs at least one service, account and region")

    @property
    def scopes(self) -> int:
        return len(self.accounts) * len(self.regions)

    @classmethod
    def one_scope(cls, services: int) -> WorldSpec:
        """Every service in the deployment's own account and region."""
        return cls(services, accounts=(OWN_ACCOUNT,), regions=(HOME_REGION,))


@dataclass(frozen=True)
class WorldService:
    account: str
    region: str
    cluster: str
    name: str
    desired: int
    min_capacity: int
    max_capacity: int
    target_groups: tuple[str, ...]
    network: Network = "awsvpc"

    @property
    def resource_id(self) -> str:
        return f"service/{self.cluster}/{self.name}"

    @property
    def ident(self) -> str:
        """Unique across the world (names repeat across accounts and regions)."""
        return f"{self.account}/{self.region}/{self.cluster}/{self.name}"

    @property
    def load_balanced(self) -> bool:
        return bool(self.target_groups)

    def teiji_scope(self, home_region: str) -> tuple[str | None, str | None]:
        """(account, region) as a schedule writes them: None for the deployment's own."""
        account = None if self.account == OWN_ACCOUNT else self.account
        region = None if self.region == home_region else self.region
        return account, region


Scope = tuple[str, str]  # (account, region)
ClusterKey = tuple[str, str, str]  # (account, region, cluster)


@dataclass(frozen=True)
class World:
    spec: WorldSpec
    services: tuple[WorldService, ...]

    def by_scope(self) -> dict[Scope, list[WorldService]]:
        scopes: dict[Scope, list[WorldService]] = {}
        for service in self.services:
            scopes.setdefault((service.account, service.region), []).append(service)
        return scopes

    def cluster_sizes(self) -> Counter[ClusterKey]:
        return Counter((s.account, s.region, s.cluster) for s in self.services)

    def key(self, service: WorldService) -> str:
        account, region = service.teiji_scope(self.spec.home_region)
        return service_key(f"{service.cluster}/{service.name}", account, region)

    def schedules(self, targets: TargetsMode = "verify") -> list[Schedule]:
        """Every service's schedule; ``targets`` is what each says about load balancer targets."""
        window = Window(days="mon-fri", start="05:00", end="22:00")
        result = []
        for service in self.services:
            account, region = service.teiji_scope(self.spec.home_region)
            result.append(
                Schedule(
                    service=f"{service.cluster}/{service.name}",
                    timezone="Asia/Tokyo",
                    windows=[window],
                    holidays=["JP"],
                    account=account,
                    region=region,
                    targets=targets,
                )
            )
        return result


def layout(spec: WorldSpec) -> list[tuple[str, str, str, int]]:
    """(account, region, cluster, index) for each service, spread evenly over the scopes."""
    scopes = [(a, r) for a in spec.accounts for r in spec.regions]
    per_scope = Counter(scopes[i % len(scopes)] for i in range(spec.services))
    placed: list[tuple[str, str, str, int]] = []
    for account, region in scopes:
        count = per_scope[(account, region)]
        clusters = max(1, math.ceil(count / spec.services_per_cluster))
        for index in range(count):
            placed.append((account, region, f"bench-{index % clusters:02d}", index))
    return placed


def shape(spec: WorldSpec, index: int) -> tuple[int, Network | None]:
    """A service's desiredCount and, when it is load balanced, its network mode: every
    ``load_balanced_every``-th service, alternately awsvpc and bridge."""
    desired = 1 + index % 3
    if index % spec.load_balanced_every:
        return desired, None
    bridge = (index // spec.load_balanced_every) % 2 == 1
    return desired, "bridge" if bridge else "awsvpc"


def planned_world(spec: WorldSpec) -> World:
    """The world's layout without building it (the floors of a 10,000-service world)."""
    services = []
    for account, region, cluster, index in layout(spec):
        desired, network = shape(spec, index)
        groups = (f"tg-{cluster}-{index:04d}",) if network else ()
        services.append(
            WorldService(
                account,
                region,
                cluster,
                f"svc-{index:04d}",
                desired,
                1,
                4,
                groups,
                network or "awsvpc",
            )
        )
    return World(spec, tuple(services))


SessionFor = Callable[[str, str], boto3.session.Session]


# Service models are big JSON files that every new session parses again; share one loader.
_LOADER = botocore.loaders.create_loader()


def new_session(region: str, **credentials: str) -> boto3.session.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core, region_name=region, **credentials)


def moto_sessions() -> SessionFor:
    """A session per (account, region): the own account directly, others through AssumeRole.

    Sessions are made on first use, so ones first used inside ``AwsEmulator.installed()``
    go through the emulator.
    """
    cache: dict[tuple[str, str], boto3.session.Session] = {}

    def session_for(account: str, region: str) -> boto3.session.Session:
        if (account, region) not in cache:
            if account == OWN_ACCOUNT:
                cache[(account, region)] = new_session(region)
            else:
                creds = (
                    new_session(region)
                    .client("sts")
                    .assume_role(
                        RoleArn=f"arn:aws:iam::{account}:role/{ROLE_NAME}",
                        RoleSessionName="bench-world",
                    )["Credentials"]
                )
                cache[(account, region)] = new_session(
                    region,
                    aws_access_key_id=creds["AccessKeyId"],
                    aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["SessionToken"],
                )
        return cache[(account, region)]

    return session_for


def build_world(spec: WorldSpec, session_for: SessionFor | None = None) -> World:
    """Create the world in moto (call inside ``mock_aws``); returns what was created."""
    session_for = session_for or moto_sessions()
    services: list[WorldService] = []
    scoped: dict[Scope, list[tuple[str, int]]] = {}
    for account, region, cluster, index in layout(spec):
        scoped.setdefault((account, region), []).append((cluster, index))
    for (account, region), members in scoped.items():
        services.extend(_build_scope(spec, session_for(account, region), account, region, members))
    return World(spec, tuple(services))


def _build_scope(
    spec: WorldSpec,
    session: boto3.session.Session,
    account: str,
    region: str,
    members: list[tuple[str, int]],
) -> Iterator[WorldService]:
    ecs: Any = session.client("ecs", region_name=region)
    aas: Any = session.client("application-autoscaling", region_name=region)
    elbv2: Any = session.client("elbv2", region_name=region)
    ec2: Any = session.client("ec2", region_name=region)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # moto's awsvpc tasks read their ENI's private DNS name, which needs DNS hostnames.
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnet_id = ec2.create_subnet(
        VpcId=vpc_id, CidrBlock="10.0.0.0/17", AvailabilityZone=f"{region}a"
    )["Subnet"]["SubnetId"]
    security_group = ec2.create_security_group(
        GroupName="bench", Description="bench tasks", VpcId=vpc_id
    )["GroupId"]
    _task_definitions(ecs)
    bridge_clusters = {cluster for cluster, index in members if shape(spec, index)[1] == "bridge"}
    for cluster in sorted({c for c, _ in members}):
        ecs.create_cluster(clusterName=cluster)
        if cluster in bridge_clusters:
            for _ in range(CONTAINER_INSTANCES_PER_CLUSTER):
                _container_instance(ec2, ecs, cluster, subnet_id, region)
    for cluster, index in members:
        name = f"svc-{index:04d}"
        desired, network = shape(spec, index)
        target_groups: tuple[str, ...] = ()
        extra: dict[str, Any] = {"taskDefinition": AWSVPC_FAMILY, "launchType": "FARGATE"}
        if network is not None:
            arn = elbv2.create_target_group(
                Name=f"tg-{cluster}-{index:04d}",
                Protocol="HTTP",
                Port=CONTAINER_PORT,
                VpcId=vpc_id,
                TargetType="ip" if network == "awsvpc" else "instance",
            )["TargetGroups"][0]["TargetGroupArn"]
            target_groups = (arn,)
            extra["loadBalancers"] = [
                {"targetGroupArn": arn, "containerName": CONTAINER, "containerPort": CONTAINER_PORT}
            ]
            if network == "awsvpc":
                extra["networkConfiguration"] = _awsvpc(subnet_id, security_group)
            else:
                extra.update(taskDefinition=BRIDGE_FAMILY, launchType="EC2")
        ecs.create_service(cluster=cluster, serviceName=name, desiredCount=desired, **extra)
        aas.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{cluster}/{name}",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=1,
            MaxCapacity=4,
        )
        yield WorldService(
            account, region, cluster, name, desired, 1, 4, target_groups, network or "awsvpc"
        )


def _task_definitions(ecs: Any) -> None:
    # cpu/memory on the container too: moto cannot place a task without them.
    container = {"name": CONTAINER, "image": "public.ecr.aws/nginx/nginx", "cpu": 256}
    container["memory"] = 512
    ecs.register_task_definition(
        family=AWSVPC_FAMILY,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {**container, "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}]}
        ],
    )
    ecs.register_task_definition(
        family=BRIDGE_FAMILY,
        networkMode="bridge",
        containerDefinitions=[
            {
                **container,
                "portMappings": [
                    {"containerPort": CONTAINER_PORT, "hostPort": 0, "protocol": "tcp"}
                ],
            }
        ],
    )


def _awsvpc(subnet_id: str, security_group: str) -> dict[str, Any]:
    return {
        "awsvpcConfiguration": {
            "subnets": [subnet_id],
            "securityGroups": [security_group],
            "assignPublicIp": "DISABLED",
        }
    }


def _container_instance(ec2: Any, ecs: Any, cluster: str, subnet_id: str, region: str) -> None:
    """A running EC2 instance joined to ``cluster`` (bridge tasks are placed on it)."""
    instance_id = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet_id
    )["Instances"][0]["InstanceId"]
    document = json.dumps({"instanceId": instance_id, "region": region})
    ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=document)


# What ECS does between ticks ---------------------------------------------------------------


@contextmanager
def ecs_like() -> Iterator[None]:
    """moto made to answer as ECS would where teiji's figures depend on it: ListTasks honours
    ``serviceName`` (moto returns every task of the cluster) and lists RUNNING tasks when no
    ``desiredStatus`` is given (moto lists them all), and tasks stay in the state
    ``settle`` puts them in (moto moves a task on at each DescribeTasks)."""
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.moto_api import state_manager

    original = EC2ContainerServiceBackend.list_tasks

    def list_tasks(
        self: Any,
        cluster_str: str | None = None,
        container_instance: str | None = None,
        family: str | None = None,
        started_by: str | None = None,
        service_name: str | None = None,
        desiredStatus: str | None = None,  # noqa: N803 (moto's name)
    ) -> list[Any]:
        # ECS lists RUNNING tasks unless told otherwise (moto lists every task).
        tasks: list[Any] = original(
            self,
            cluster_str,
            container_instance,
            family,
            started_by,
            service_name,
            desiredStatus or "RUNNING",
        )
        if not service_name:
            return tasks
        return [task for task in tasks if task.group == f"service:{service_name}"]

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    try:
        with (
            mock.patch.object(EC2ContainerServiceBackend, "list_tasks", list_tasks),
            transactions_copy_each_table_once(),
        ):
            yield
    finally:
        state_manager.unset_transition("ecs::task")


class _CopyEachTableOnce:
    """moto's ``copy`` module inside its DynamoDB backend, but a table deep-copied during a
    transaction is copied once: moto copies the whole table again for every one of the
    transaction's (up to 100) actions, for the same rollback. Everything else is ``copy``'s."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type
        self._copies = threading.local()

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        copies: dict[int, Any] | None = getattr(self._copies, "tables", None)
        if copies is None or not isinstance(value, self._table_type):
            return copy.deepcopy(value, memo)
        if id(value) not in copies:
            copies[id(value)] = copy.deepcopy(value)
        return copies[id(value)]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._copies.tables = {}
        try:
            yield
        finally:
            self._copies.tables = None

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


@contextmanager
def transactions_copy_each_table_once() -> Iterator[None]:
    """TransactWriteItems in moto with the same rollback for a fraction of the CPU: a 100-
    action transaction on a state table of 10,000 items copied that table 100 times, and
    moto's CPU (its own, not teiji's) was most of a transition's, crowding teiji's threads."""
    from moto.dynamodb import models

    shim = _CopyEachTableOnce(models.Table)
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: Any) -> Any:
        with shim.transaction():
            return original(self, transact_items)

    with (
        mock.patch.object(models, "copy", shim),
        mock.patch.object(models.DynamoDBBackend, "transact_write_items", transact_write_items),
    ):
        yield


@dataclass
class Settled:
    """What one ``settle`` did (started/stopped tasks, registered/deregistered targets)."""

    started: int = 0
    stopped: int = 0
    registered: int = 0
    deregistered: int = 0


def settle(world: World, session_for: SessionFor | None = None) -> Settled:
    """Bring each load-balanced service's tasks to its desiredCount and its targets with them,
    as ECS's service scheduler does: RUNNING tasks are registered (awsvpc: private IP +
    container port; bridge: EC2 instance id + host port), stopped ones deregistered first.
    Call with plain moto clients (outside ``AwsEmulator.installed()``) inside ``ecs_like()``."""
    session_for = session_for or moto_sessions()
    done = Settled()
    by_cluster: dict[ClusterKey, list[WorldService]] = {}
    for service in world.services:
        if service.load_balanced:
            key = (service.account, service.region, service.cluster)
            by_cluster.setdefault(key, []).append(service)
    for (account, region, cluster), members in by_cluster.items():
        session = session_for(account, region)
        ecs: Any = session.client("ecs", region_name=region)
        elbv2: Any = session.client("elbv2", region_name=region)
        described = _describe(ecs, cluster, [s.name for s in members])
        scheduler = _Scheduler(ecs, elbv2, account, region, cluster, done)
        for service in members:
            scheduler.converge(service, described[service.name])
    return done


def _describe(ecs: Any, cluster: str, names: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(names), 10):
        for entry in ecs.describe_services(cluster=cluster, services=names[i : i + 10])["services"]:
            found[entry["serviceName"]] = entry
    return found


class _Scheduler:
    """ECS's service scheduler for the services of one cluster (see ``settle``)."""

    def __init__(
        self, ecs: Any, elbv2: Any, account: str, region: str, cluster: str, done: Settled
    ) -> None:
        from moto.ecs.models import ecs_backends

        self.ecs, self.elbv2, self.cluster, self.done = ecs, elbv2, cluster, done
        self.backend = ecs_backends[account][region]
        self._instances: list[tuple[str, str]] | None = None
        self._next_port = FIRST_HOST_PORT

    def converge(self, service: WorldService, described: Mapping[str, Any]) -> None:
        running = self._running(service)
        desired = int(described["desiredCount"])
        if len(running) < desired:
            deployment = (described.get("deployments") or [{}])[0].get("id", "ecs-svc/bench")
            started = self._start(service, desired - len(running), str(deployment))
            self._targets(service, started, register=True)
            self.done.started += len(started)
        elif len(running) > desired:
            extra = running[desired:]
            self._targets(service, extra, register=False)
            for task in extra:
                self.ecs.stop_task(cluster=self.cluster, task=task.task_arn, reason="scaled in")
            self.done.stopped += len(extra)

    def _running(self, service: WorldService) -> list[Any]:
        tasks = self.backend.tasks.get(self.cluster, {}).values()
        group = f"service:{service.name}"
        return [t for t in tasks if t.group == group and t.desired_status == "RUNNING"]

    def _start(self, service: WorldService, count: int, deployment: str) -> list[Any]:
        group = f"service:{service.name}"
        if service.network == "awsvpc":
            network = service_network(self.backend, self.cluster, service.name)
            answer = self.ecs.run_task(
                cluster=self.cluster,
                taskDefinition=AWSVPC_FAMILY,
                count=count,
                launchType="FARGATE",
                networkConfiguration=network,
                startedBy=deployment,
                group=group,
            )
            arns = [task["taskArn"] for task in answer["tasks"]]
        else:
            instances = self._container_instances()
            answer = self.ecs.start_task(  # one task on each instance named
                cluster=self.cluster,
                taskDefinition=BRIDGE_FAMILY,
                containerInstances=[instances[n % len(instances)][0] for n in range(count)],
                startedBy=deployment,
                group=group,
            )
            arns = [task["taskArn"] for task in answer["tasks"]]
        tasks = [self.backend.tasks[self.cluster][arn] for arn in arns]
        for task in tasks:
            task.last_status = "RUNNING"
            if service.network == "bridge":
                # moto binds no ports: Docker's dynamic host port, as bridge mode would.
                task.containers[0].network_bindings = [
                    {
                        "bindIP": "0.0.0.0",
                        "containerPort": CONTAINER_PORT,
                        "hostPort": self._port(),
                        "protocol": "tcp",
                    }
                ]
        return tasks

    def _port(self) -> int:
        self._next_port += 1
        return self._next_port

    def _container_instances(self) -> list[tuple[str, str]]:
        if self._instances is None:
            found = self.backend.container_instances.get(self.cluster, {}).values()
            self._instances = [(ci.container_instance_arn, ci.ec2_instance_id) for ci in found]
        return self._instances

    def _targets(self, service: WorldService, tasks: list[Any], *, register: bool) -> None:
        if not tasks:
            return
        entries = self.ecs.describe_tasks(cluster=self.cluster, tasks=[t.task_arn for t in tasks])
        targets = [self._target(service, entry) for entry in entries["tasks"]]
        for arn in service.target_groups:
            if register:
                self.elbv2.register_targets(TargetGroupArn=arn, Targets=targets)
                self.done.registered += len(targets)
            else:
                self.elbv2.deregister_targets(TargetGroupArn=arn, Targets=targets)
                self.done.deregistered += len(targets)

    def _target(self, service: WorldService, entry: Mapping[str, Any]) -> dict[str, Any]:
        """The target ECS registers for a task (never its task id), worked out from the task's
        DescribeTasks entry with teiji's own reading of it (``engine.targets``)."""
        from engine.targets import host_port, task_private_ip

        if service.network == "awsvpc":
            ip = task_private_ip(entry)
            assert ip is not None, f"task {entry['taskArn']} has no private IP"
            return {"Id": ip, "Port": CONTAINER_PORT}
        port = host_port(entry, CONTAINER, CONTAINER_PORT)
        instances = dict(self._container_instances())
        assert port is not None, f"task {entry['taskArn']} has no host port"
        return {"Id": instances[entry["containerInstanceArn"]], "Port": port}


def service_network(backend: Any, cluster: str, name: str) -> dict[str, Any]:
    """The service's awsvpc network configuration, which its tasks are started with."""
    service = backend.services[f"{cluster}:{name}"]
    config: dict[str, Any] = service.network_configuration
    return config


def desired_counts(world: World, session_for: SessionFor | None = None) -> dict[str, int]:
    """``WorldService.ident`` -> desiredCount as ECS reports it now (plain moto clients)."""
    session_for = session_for or moto_sessions()
    counts: dict[str, int] = {}
    by_cluster: dict[ClusterKey, list[WorldService]] = {}
    for service in world.services:
        by_cluster.setdefault((service.account, service.region, service.cluster), []).append(
            service
        )
    for (account, region, cluster), members in by_cluster.items():
        ecs: Any = session_for(account, region).client("ecs", region_name=region)
        for i in range(0, len(members), 10):
            names = [s.name for s in members[i : i + 10]]
            for found in ecs.describe_services(cluster=cluster, services=names)["services"]:
                ident = f"{account}/{region}/{cluster}/{found['serviceName']}"
                counts[ident] = found["desiredCount"]
    return counts


def deployment_access() -> Access:
    """What a deployment managing the default world allows: its accounts and regions."""
    return Access(accounts=(OWN_ACCOUNT, *OTHER_ACCOUNTS), regions=REGIONS)
