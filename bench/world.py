"""A world of N running ECS services over accounts, regions and clusters, built in moto.

Every service has an Application Auto Scaling target (the hand-written tool assumes one); every
``load_balanced_every``-th service also sits behind an ALB target group (ip targets). Accounts
other than the deployment's own are reached the way teiji reaches them, through AssumeRole
(moto keeps separate state per account for assumed-role credentials).

``World.schedules()`` gives each service a teiji schedule (Mon-Fri 05:00-22:00 in Tokyo, JP
holidays), and ``RUNNING_AT`` / ``STOPPED_AT`` are instants on either side of it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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

# Wednesday 2026-12-02 12:00 JST (inside the window) and Saturday 2026-12-05 03:00 JST.
RUNNING_AT = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
STOPPED_AT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


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

    @property
    def resource_id(self) -> str:
        return f"service/{self.cluster}/{self.name}"

    @property
    def ident(self) -> str:
        """Unique across the world (names repeat across accounts and regions)."""
        return f"{self.account}/{self.region}/{self.cluster}/{self.name}"

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
    ecs.register_task_definition(
        family="bench-app",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "app", "image": "public.ecr.aws/nginx/nginx", "cpu": 256, "memory": 512}
        ],
    )
    for cluster in sorted({c for c, _ in members}):
        ecs.create_cluster(clusterName=cluster)
    for cluster, index in members:
        name = f"svc-{index:04d}"
        desired = 1 + index % 3
        target_groups: tuple[str, ...] = ()
        load_balancers: list[dict[str, Any]] = []
        if index % spec.load_balanced_every == 0:
            arn = elbv2.create_target_group(
                Name=f"tg-{cluster}-{index:04d}",
                Protocol="HTTP",
                Port=80,
                VpcId=vpc_id,
                TargetType="ip",
            )["TargetGroups"][0]["TargetGroupArn"]
            target_groups = (arn,)
            load_balancers = [{"targetGroupArn": arn, "containerName": "app", "containerPort": 80}]
        ecs.create_service(
            cluster=cluster,
            serviceName=name,
            taskDefinition="bench-app",
            desiredCount=desired,
            launchType="FARGATE",
            loadBalancers=load_balancers,
        )
        aas.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{cluster}/{name}",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=1,
            MaxCapacity=4,
        )
        yield WorldService(account, region, cluster, name, desired, 1, 4, target_groups)


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
