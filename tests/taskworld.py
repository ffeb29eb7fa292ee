"""A small ECS + ELBv2 world in moto, with what moto does not do done the way ECS would.

moto (5.2) never runs a service's tasks and never registers anything in a target group. These
helpers build a VPC (DNS hostnames on: moto's awsvpc tasks need them), two subnets, an ALB with
target groups, ECS services with ``loadBalancers``, run the services' tasks with the
``startedBy``/``group`` ECS gives them, and register their targets as ECS would (private IP +
container port for awsvpc, EC2 instance id + host port for bridge networking).

Where no API can express a state (a task still starting, a target failing its health checks, a
bridge task's host port), the helpers set it on moto's in-memory backend. That works both
in-process (``mock_aws``) and against the moto server of ``conftest.moto_server``, which runs in
this same process.

Usable with plain boto3 clients only: the product's ``Clients`` refuses the set-up operations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_api import state_manager

REGION = "ap-northeast-1"
ACCOUNT = DEFAULT_ACCOUNT_ID
CONTAINER = "web"
TASK_MODEL = "ecs::task"


@contextmanager
def pinned_task_states() -> Iterator[None]:
    """Keep every task in the state it is put in.

    moto moves a task one lifecycle state on per DescribeTasks ("manual", times 1 by default);
    with ``times: 0`` it would move on at every read. A count never reached pins it.
    """
    state_manager.set_transition(TASK_MODEL, {"progression": "manual", "times": 10**9})
    try:
        yield
    finally:
        state_manager.unset_transition(TASK_MODEL)


@dataclass
class Service:
    """An ECS service of the world and what ECS would know about it."""

    name: str
    arn: str
    deployment_id: str
    target_group_arns: list[str]
    container_port: int
    network_mode: str  # "awsvpc" or "bridge"


@dataclass
class World:
    ec2: Any
    ecs: Any
    elbv2: Any
    cluster: str
    vpc_id: str
    subnet_ids: list[str]
    security_group_id: str
    load_balancer_arn: str
    services: dict[str, Service] = field(default_factory=dict)

    # Load balancing --------------------------------------------------------------------------
    def target_group(self, name: str, *, target_type: str, port: int = 8080) -> str:
        """A target group in the world's VPC, forwarded to by a listener of the ALB."""
        arn: str = self.elbv2.create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=port,
            VpcId=self.vpc_id,
            TargetType=target_type,
            HealthCheckPath="/health",
        )["TargetGroups"][0]["TargetGroupArn"]
        listener_port = 8000 + len(
            self.elbv2.describe_listeners(LoadBalancerArn=self.load_balancer_arn)["Listeners"]
        )
        self.elbv2.create_listener(
            LoadBalancerArn=self.load_balancer_arn,
            Protocol="HTTP",
            Port=listener_port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}],
        )
        return arn

    def registered(self, target_group_arn: str) -> set[tuple[str, int]]:
        """(Id, Port) of every target registered in the group."""
        descriptions = self.elbv2.describe_target_health(TargetGroupArn=target_group_arn)
        return {
            (d["Target"]["Id"], int(d["Target"]["Port"]))
            for d in descriptions["TargetHealthDescriptions"]
        }

    def register(self, target_group_arn: str, *targets: tuple[str, int]) -> None:
        self.elbv2.register_targets(
            TargetGroupArn=target_group_arn,
            Targets=[{"Id": target_id, "Port": port} for target_id, port in targets],
        )

    def deregister(self, target_group_arn: str, *targets: tuple[str, int]) -> None:
        self.elbv2.deregister_targets(
            TargetGroupArn=target_group_arn,
            Targets=[{"Id": target_id, "Port": port} for target_id, port in targets],
        )

    # Services --------------------------------------------------------------------------------
    def fargate_service(
        self, name: str, target_group_arns: list[str], *, container_port: int = 8080
    ) -> Service:
        family = self._task_definition(name, "awsvpc", container_port, host_port=None)
        answer = self.ecs.create_service(
            cluster=self.cluster,
            serviceName=name,
            taskDefinition=family,
            desiredCount=0,
            launchType="FARGATE",
            networkConfiguration=self._awsvpc(),
            loadBalancers=[
                {"targetGroupArn": arn, "containerName": CONTAINER, "containerPort": container_port}
                for arn in target_group_arns
            ],
        )["service"]
        return self._remember(answer, target_group_arns, container_port, "awsvpc")

    def bridge_service(
        self, name: str, target_group_arns: list[str], *, container_port: int = 8080
    ) -> Service:
        family = self._task_definition(name, "bridge", container_port, host_port=0)
        answer = self.ecs.create_service(
            cluster=self.cluster,
            serviceName=name,
            taskDefinition=family,
            desiredCount=0,
            launchType="EC2",
            loadBalancers=[
                {"targetGroupArn": arn, "containerName": CONTAINER, "containerPort": container_port}
                for arn in target_group_arns
            ],
        )["service"]
        return self._remember(answer, target_group_arns, container_port, "bridge")

    def describe_service(self, service: Service) -> dict[str, Any]:
        """The DescribeServices entry, as the tick holds it when it checks targets."""
        entry: dict[str, Any] = self.ecs.describe_services(
            cluster=self.cluster, services=[service.name]
        )["services"][0]
        return entry

    # Tasks -----------------------------------------------------------------------------------
    def run_tasks(self, service: Service, count: int) -> list[dict[str, Any]]:
        """Start ``count`` awsvpc tasks of the service the way its deployment would."""
        tasks: list[dict[str, Any]] = self.ecs.run_task(
            cluster=self.cluster,
            taskDefinition=service.name,
            count=count,
            launchType="FARGATE",
            networkConfiguration=self._awsvpc(),
            startedBy=service.deployment_id,
            group=f"service:{service.name}",
        )["tasks"]
        self._set_desired_count(service)
        return tasks

    def container_instance(self) -> tuple[str, str]:
        """A running EC2 instance joined to the cluster: (containerInstanceArn, instance id)."""
        instance_id: str = self.ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=self.subnet_ids[0]
        )["Instances"][0]["InstanceId"]
        document = json.dumps({"instanceId": instance_id, "region": REGION})
        arn: str = self.ecs.register_container_instance(
            cluster=self.cluster, instanceIdentityDocument=document
        )["containerInstance"]["containerInstanceArn"]
        return arn, instance_id

    def start_bridge_task(
        self, service: Service, container_instance_arn: str, host_port: int
    ) -> dict[str, Any]:
        """A bridge task of the service on one container instance, bound to ``host_port``."""
        task: dict[str, Any] = self.ecs.start_task(
            cluster=self.cluster,
            taskDefinition=service.name,
            containerInstances=[container_instance_arn],
            startedBy=service.deployment_id,
            group=f"service:{service.name}",
        )["tasks"][0]
        # moto gives containers no networkBindings: bind the dynamic host port as Docker would.
        container = self._backend_task(task["taskArn"]).containers[0]
        container.network_bindings = [
            {
                "bindIP": "0.0.0.0",
                "containerPort": service.container_port,
                "hostPort": host_port,
                "protocol": "tcp",
            }
        ]
        self._set_desired_count(service)
        return self.describe_task(task["taskArn"])

    def describe_task(self, task_arn: str) -> dict[str, Any]:
        task: dict[str, Any] = self.ecs.describe_tasks(cluster=self.cluster, tasks=[task_arn])[
            "tasks"
        ][0]
        return task

    def set_task_status(self, task_arn: str, last_status: str, desired_status: str = "") -> None:
        """Put a task in a lifecycle state no moto API can reach (PENDING, DEACTIVATING…)."""
        task = self._backend_task(task_arn)
        task.last_status = last_status
        if desired_status:
            task.desired_status = desired_status

    def stop_task(self, task_arn: str) -> None:
        self.ecs.stop_task(cluster=self.cluster, task=task_arn, reason="scaled in")

    def register_like_ecs(self, service: Service, tasks: list[dict[str, Any]]) -> None:
        """Register each task in each of the service's target groups, as ECS does itself."""
        for task in tasks:
            target = self.ecs_target(service, task)
            for arn in service.target_group_arns:
                self.register(arn, target)

    def ecs_target(self, service: Service, task: dict[str, Any]) -> tuple[str, int]:
        """The target ECS registers for a task: never its task id."""
        if service.network_mode == "awsvpc":
            (eni,) = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"]
            details = {d["name"]: d["value"] for d in eni["details"]}
            return details["privateIPv4Address"], service.container_port
        (binding,) = task["containers"][0]["networkBindings"]
        instance = self.ecs.describe_container_instances(
            cluster=self.cluster, containerInstances=[task["containerInstanceArn"]]
        )["containerInstances"][0]
        return instance["ec2InstanceId"], int(binding["hostPort"])

    # Target health ---------------------------------------------------------------------------
    def set_target_health(
        self, target_group_arn: str, target_id: str, state: str, reason: str = ""
    ) -> None:
        """Make a registered target report ``state`` (moto reports every target healthy)."""
        from moto.elbv2.models import elbv2_backends

        group = elbv2_backends[ACCOUNT][REGION].target_groups[target_group_arn]
        overrides: dict[str, tuple[str, str]] = group.__dict__.setdefault("_health_overrides", {})
        if "health_for" not in group.__dict__:
            original = group.health_for

            def health_for(target: dict[str, Any], ec2_backend: Any) -> Any:
                status = original(target, ec2_backend)
                if target["Id"] in overrides and target["Id"] in group.targets:
                    status.status, status.reason = overrides[target["Id"]]
                    status.description = f"Health checks failed ({status.reason})"
                return status

            group.health_for = health_for  # type: ignore[method-assign]
        overrides[target_id] = (state, reason or "Target.FailedHealthChecks")

    # Internals -------------------------------------------------------------------------------
    def _task_definition(
        self, family: str, network_mode: str, container_port: int, host_port: int | None
    ) -> str:
        mapping: dict[str, Any] = {"containerPort": container_port, "protocol": "tcp"}
        if host_port is not None:
            mapping["hostPort"] = host_port
        params: dict[str, Any] = {
            "family": family,
            "networkMode": network_mode,
            # cpu/memory on the container too: moto fails to place a task without them.
            "containerDefinitions": [
                {
                    "name": CONTAINER,
                    "image": "public.ecr.aws/nginx/nginx:latest",
                    "cpu": 256,
                    "memory": 512,
                    "essential": True,
                    "portMappings": [mapping],
                }
            ],
        }
        if network_mode == "awsvpc":
            params.update(requiresCompatibilities=["FARGATE"], cpu="256", memory="512")
        self.ecs.register_task_definition(**params)
        return family

    def _awsvpc(self) -> dict[str, Any]:
        return {
            "awsvpcConfiguration": {
                "subnets": self.subnet_ids,
                "securityGroups": [self.security_group_id],
                "assignPublicIp": "DISABLED",
            }
        }

    def _remember(
        self,
        answer: dict[str, Any],
        target_group_arns: list[str],
        container_port: int,
        network_mode: str,
    ) -> Service:
        deployments = answer.get("deployments") or []
        # ECS names deployments "ecs-svc/<digits>" and starts the tasks with it as startedBy.
        deployment_id = deployments[0]["id"] if deployments else f"ecs-svc/{len(self.services)}"
        service = Service(
            name=answer["serviceName"],
            arn=answer["serviceArn"],
            deployment_id=deployment_id,
            target_group_arns=list(target_group_arns),
            container_port=container_port,
            network_mode=network_mode,
        )
        self.services[service.name] = service
        return service

    def _set_desired_count(self, service: Service) -> None:
        running = self.ecs.list_tasks(cluster=self.cluster, desiredStatus="RUNNING")["taskArns"]
        mine = (
            [
                t
                for t in self.ecs.describe_tasks(cluster=self.cluster, tasks=running)["tasks"]
                if t.get("group") == f"service:{service.name}"
            ]
            if running
            else []
        )
        self.ecs.update_service(cluster=self.cluster, service=service.name, desiredCount=len(mine))

    def _backend_task(self, task_arn: str) -> Any:
        from moto.ecs.models import ecs_backends

        return ecs_backends[ACCOUNT][REGION].tasks[self.cluster][task_arn]


def build_world(endpoint_url: str | None = None, *, cluster: str = "main") -> World:
    """A VPC with two subnets, an ALB and an ECS cluster, in moto (in-process or server)."""
    session = boto3.session.Session(region_name=REGION)
    ec2 = session.client("ec2", endpoint_url=endpoint_url)
    ecs = session.client("ecs", endpoint_url=endpoint_url)
    elbv2 = session.client("elbv2", endpoint_url=endpoint_url)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # moto's awsvpc tasks read their ENI's private DNS name, which needs DNS hostnames.
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for cidr, zone in (("10.0.1.0/24", f"{REGION}a"), ("10.0.2.0/24", f"{REGION}c"))
    ]
    security_group_id = ec2.create_security_group(
        GroupName="web", Description="web tasks", VpcId=vpc_id
    )["GroupId"]
    load_balancer_arn = elbv2.create_load_balancer(
        Name="web", Subnets=subnet_ids, SecurityGroups=[security_group_id], Type="application"
    )["LoadBalancers"][0]["LoadBalancerArn"]
    ecs.create_cluster(clusterName=cluster)
    return World(
        ec2=ec2,
        ecs=ecs,
        elbv2=elbv2,
        cluster=cluster,
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        security_group_id=security_group_id,
        load_balancer_arn=load_balancer_arn,
    )
