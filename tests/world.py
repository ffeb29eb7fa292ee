"""Build an AWS world in moto for tests: ECS clusters and services (with or without a scalable
target, with or without a load balancer), teiji's two tables, and documents in the config table.

Works the same in-process (inside ``moto.mock_aws``) and against moto's server (pass
``endpoint_url``, e.g. the ``endpoint`` fixture). The world uses plain boto3 clients for set-up
(teiji's own ``Clients`` refuse operations such as CreateService that teiji never calls) and
hands out a teiji ``Clients`` for the code under test::

    with mock_aws():
        world = World()
        world.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
        world.init_tables()
        world.put({"kind": "schedule", "service": "c1/web", "windows": [...]})
        report = run_tick(world.clients(), world.settings, at=..., dry_run=False)
        assert world.state("c1", "web") == ServiceState(0, 0, 0, ALL)

``moto_tables()`` is the usual start (in-process moto, a ``World``, both tables);
``store_schedules`` fills the tables for worlds built another way (``bench.world``);
``run_cli`` runs the ``teiji`` command against an endpoint and returns its exit code and output.

``CallLog`` records every AWS call a teiji ``Clients`` makes (operation and parameters), for
tests that assert exactly which calls were made.

moto's gaps to remember (see the shared AWS notes): RegisterScalableTarget does not clamp
desiredCount into [Min, Max] and stores SuspendedState exactly as sent; ECS never runs tasks;
nothing is registered in target groups.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from engine.aws.clients import Clients
from engine.aws.operations import lookup
from engine.cli.main import main
from engine.config import Settings
from engine.lease import Cover, HeldLease, LeaseTable, acquire, slots_of
from engine.store import ConfigStore, StateStore, init_tables, to_attribute_map
from schemas.documents import Schedule
from schemas.validation import parse_document

REGION = "ap-northeast-1"
ACCOUNT = "123456789012"  # moto's default account
NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"

# Short names for SuspendedState flags in helpers: {"in": True} etc.
_FLAG_NAMES = {
    "in": "DynamicScalingInSuspended",
    "out": "DynamicScalingOutSuspended",
    "scheduled": "ScheduledScalingSuspended",
}
ALL_SUSPENDED = {name: True for name in _FLAG_NAMES.values()}
NONE_SUSPENDED = {name: False for name in _FLAG_NAMES.values()}


def suspended_state(flags: Mapping[str, bool] | None) -> dict[str, bool] | None:
    """``{"in": True}`` or AWS names -> the full AWS SuspendedState map, every flag present
    as real AWS reports it (None stays None: moto then reports no SuspendedState at all)."""
    if flags is None:
        return None
    state = dict(NONE_SUSPENDED)
    state.update({_FLAG_NAMES.get(name, name): bool(value) for name, value in flags.items()})
    return state


_SESSIONS: dict[str, boto3.session.Session] = {}


def shared_session(region: str = REGION) -> boto3.session.Session:
    """One boto3 session per region for the whole test run: it loads each service model once
    (a fresh session spends ~0.1 s per client re-reading them)."""
    if region not in _SESSIONS:
        _SESSIONS[region] = boto3.session.Session(region_name=region)
    return _SESSIONS[region]


@dataclass(frozen=True)
class ServiceState:
    """A service's capacity as AWS reports it. ``suspended`` is the map exactly as stored."""

    desired: int
    min: int | None = None
    max: int | None = None
    suspended: dict[str, bool] | None = None


def at(text: str) -> datetime:
    """An aware instant from ISO 8601 with an offset (tests always spell the zone out)."""
    value = datetime.fromisoformat(text)
    assert value.utcoffset() is not None, f"{text} needs an offset"
    return value


class World:
    """An AWS world in moto: create things, read their state back."""

    def __init__(
        self,
        endpoint_url: str | None = None,
        *,
        region: str = REGION,
        settings: Settings | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.settings = settings or Settings()
        self._session = shared_session(region)
        self.ecs = self._raw("ecs")
        self.autoscaling = self._raw("application-autoscaling")
        self.dynamodb = self._raw("dynamodb")
        self._clusters: set[str] = set()
        self._task_definitions: dict[str, str] = {}
        self._network: dict[str, str] = {}

    def _raw(self, service: str) -> Any:
        return self._session.client(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            endpoint_url=self.endpoint_url,
        )

    def clients(self) -> Clients:
        """A fresh teiji ``Clients`` pointed at this world."""
        return Clients(
            region=self.region,
            endpoint_url=self.endpoint_url,
            session=self._session,
            max_attempts=2,
        )

    # ECS --------------------------------------------------------------------------------------
    def create_cluster(self, name: str) -> None:
        if name not in self._clusters:
            self.ecs.create_cluster(clusterName=name)
            self._clusters.add(name)

    def task_definition(self, family: str = "app", *, awsvpc: bool = False) -> str:
        key = f"{family}:{awsvpc}"
        if key not in self._task_definitions:
            container: dict[str, Any] = {
                "name": "app",
                "image": "public.ecr.aws/docker/library/nginx:latest",
                "cpu": 256,
                "memory": 512,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            }
            params: dict[str, Any] = {
                "family": family,
                "containerDefinitions": [container],
                "cpu": "256",
                "memory": "512",
            }
            if awsvpc:
                params["networkMode"] = "awsvpc"
                params["requiresCompatibilities"] = ["FARGATE"]
            response = self.ecs.register_task_definition(**params)
            self._task_definitions[key] = response["taskDefinition"]["taskDefinitionArn"]
        return self._task_definitions[key]

    def target_group(self) -> str:
        """An ``ip`` target group in a VPC with DNS hostnames enabled (created once)."""
        if "target_group" not in self._network:
            ec2 = self._raw("ec2")
            elbv2 = self._raw("elbv2")
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
            subnet = ec2.create_subnet(
                VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{self.region}a"
            )["Subnet"]["SubnetId"]
            security_group = ec2.create_security_group(
                GroupName="teiji-test", Description="tasks", VpcId=vpc
            )["GroupId"]
            group = elbv2.create_target_group(
                Name="teiji-test", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
            )["TargetGroups"][0]["TargetGroupArn"]
            self._network.update(
                vpc=vpc, subnet=subnet, security_group=security_group, target_group=group
            )
        return self._network["target_group"]

    def create_service(
        self,
        cluster: str,
        name: str,
        *,
        desired: int = 1,
        target: tuple[int, int] | None = None,
        suspended: Mapping[str, bool] | None = None,
        load_balancer: bool = False,
    ) -> dict[str, Any]:
        """An ECS service; with ``target`` also its scalable target (Min, Max, SuspendedState).

        moto needs the service to exist before a scalable target can be registered for it.
        """
        self.create_cluster(cluster)
        params: dict[str, Any] = {
            "cluster": cluster,
            "serviceName": name,
            "taskDefinition": self.task_definition(awsvpc=load_balancer),
            "desiredCount": desired,
        }
        if load_balancer:
            params["loadBalancers"] = [
                {
                    "targetGroupArn": self.target_group(),
                    "containerName": "app",
                    "containerPort": 8080,
                }
            ]
            params["launchType"] = "FARGATE"
            params["networkConfiguration"] = {
                "awsvpcConfiguration": {
                    "subnets": [self._network["subnet"]],
                    "securityGroups": [self._network["security_group"]],
                }
            }
        service: dict[str, Any] = self.ecs.create_service(**params)["service"]
        self.stamp_created_at(cluster, name, datetime.now(UTC))
        if target is not None:
            self.register_target(cluster, name, target[0], target[1], suspended)
        return service

    def stamp_created_at(self, cluster: str, name: str, when: datetime) -> None:
        """Give the service the ``createdAt`` real ECS reports (moto 5.2 omits it).

        Works in-process and against the threaded moto server (same process, same backends).
        """
        import moto.backends

        backend = moto.backends.get_backend("ecs")[ACCOUNT][self.region]
        backend.services[f"{cluster}:{name}"].created_at = when

    def recreate_service(self, cluster: str, name: str, *, desired: int = 0) -> None:
        """Delete a service and create it again under the same name, an hour later."""
        import moto.backends

        self.ecs.update_service(cluster=cluster, service=name, desiredCount=0)
        self.ecs.delete_service(cluster=cluster, service=name)
        backend = moto.backends.get_backend("ecs")[ACCOUNT][self.region]
        old = backend.services.pop(f"{cluster}:{name}")
        self.create_service(cluster, name, desired=desired)
        self.stamp_created_at(cluster, name, old.created_at + timedelta(hours=1))

    def delete_service(self, cluster: str, name: str) -> None:
        self.ecs.update_service(cluster=cluster, service=name, desiredCount=0)
        self.ecs.delete_service(cluster=cluster, service=name)

    def set_desired(self, cluster: str, name: str, desired: int) -> None:
        """What a person does by hand in the console."""
        self.ecs.update_service(cluster=cluster, service=name, desiredCount=desired)

    # Application Auto Scaling -----------------------------------------------------------------
    def register_target(
        self,
        cluster: str,
        name: str,
        min_capacity: int,
        max_capacity: int,
        suspended: Mapping[str, bool] | None = None,
    ) -> None:
        params: dict[str, Any] = {
            "ServiceNamespace": NAMESPACE,
            "ResourceId": f"service/{cluster}/{name}",
            "ScalableDimension": DIMENSION,
            "MinCapacity": min_capacity,
            "MaxCapacity": max_capacity,
        }
        state = suspended_state(suspended)
        if state is not None:
            params["SuspendedState"] = state
        self.autoscaling.register_scalable_target(**params)

    def deregister_target(self, cluster: str, name: str) -> None:
        self.autoscaling.deregister_scalable_target(
            ServiceNamespace=NAMESPACE,
            ResourceId=f"service/{cluster}/{name}",
            ScalableDimension=DIMENSION,
        )

    # Reading back -----------------------------------------------------------------------------
    def state(self, cluster: str, name: str) -> ServiceState:
        service = self.ecs.describe_services(cluster=cluster, services=[name])["services"][0]
        targets = self.autoscaling.describe_scalable_targets(
            ServiceNamespace=NAMESPACE,
            ResourceIds=[f"service/{cluster}/{name}"],
            ScalableDimension=DIMENSION,
        )["ScalableTargets"]
        if not targets:
            return ServiceState(int(service["desiredCount"]))
        target = targets[0]
        suspended = target.get("SuspendedState")
        return ServiceState(
            int(service["desiredCount"]),
            int(target["MinCapacity"]),
            int(target["MaxCapacity"]),
            dict(suspended) if suspended is not None else None,
        )

    # teiji's tables ---------------------------------------------------------------------------
    def init_tables(self) -> None:
        init_tables(self.clients(), self.settings)

    def config(self) -> ConfigStore:
        return ConfigStore(self.clients(), self.settings.config_table)

    def state_store(self) -> StateStore:
        return StateStore(self.clients(), self.settings.state_table)

    def leases(self) -> LeaseTable:
        return LeaseTable(self.clients(), self.settings.state_table)

    def hold_lease(
        self,
        holder: str,
        shard: tuple[int, int] = (0, 1),
        *,
        ttl: float = 960,
        now: float | None = None,
    ) -> bool:
        """Hold one shard's slot as another tick would; False when it is not free."""
        held = acquire(
            self.leases(),
            None,
            Cover((shard[0],), shard[1]),
            holder,
            ttl,
            (lambda: now) if now is not None else time.time,
            may_switch=True,
        )
        return isinstance(held, HeldLease)

    def lease_slots(self) -> dict[str, str]:
        """Every lease held now (run out or not), by name: its holder."""
        return {name: slot.holder for name, slot in slots_of(self.leases().read())}

    def put(self, *documents: Mapping[str, Any]) -> None:
        """Validate plain documents and write them to the config table as teiji would."""
        parsed = []
        for index, raw in enumerate(documents, 1):
            doc = parse_document(dict(raw), source="test", index=index)
            assert not isinstance(doc, list), [str(p) for p in doc]
            parsed.append(doc)
        self.config().put(parsed)

    def put_item(self, item: Mapping[str, Any], *, table: str | None = None) -> None:
        """Write a raw item (plain Python values) as an operator would in the console."""
        self.dynamodb.put_item(
            TableName=table or self.settings.config_table, Item=to_attribute_map(item)
        )

    def baseline(self, key: str) -> dict[str, Any] | None:
        from engine.store import from_attribute_map, plain

        item = self.dynamodb.get_item(
            TableName=self.settings.state_table,
            Key={"pk": {"S": "baseline"}, "sk": {"S": key}},
            ConsistentRead=True,
        ).get("Item")
        return plain(from_attribute_map(item)) if item else None


@contextmanager
def moto_tables(settings: Settings | None = None) -> Iterator[World]:
    """In-process moto holding teiji's two tables: a ``World`` ready for services and documents."""
    with mock_aws():
        world = World(settings=settings)
        world.init_tables()
        yield world


def store_schedules(
    clients: Clients, schedules: Iterable[Schedule], settings: Settings | None = None
) -> None:
    """teiji's tables, as ``teiji init`` makes them, holding ``schedules``."""
    settings = settings or Settings()
    init_tables(clients, settings)
    ConfigStore(clients, settings.config_table).put(schedules)


def run_cli(capsys: pytest.CaptureFixture[str], endpoint: str, *args: str) -> tuple[int, str, str]:
    """``teiji ARGS --endpoint-url ENDPOINT``: exit code, stdout and stderr of that run only."""
    capsys.readouterr()
    code = main([*args, "--endpoint-url", endpoint])
    out, err = capsys.readouterr()
    return code, out, err


def schedule(service: str, **fields: Any) -> dict[str, Any]:
    """A schedule document: Mon-Fri 05:00-22:00 Asia/Tokyo unless told otherwise."""
    doc: dict[str, Any] = {
        "kind": "schedule",
        "service": service,
        "timezone": "Asia/Tokyo",
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
    }
    doc.update(fields)
    return doc


# Recording calls and injecting faults -----------------------------------------------------------
def on_new_clients(clients: Clients, hook: Callable[[str, Any], None]) -> Clients:
    """Run ``hook(service, client)`` once for every boto3 client ``clients`` hands out."""
    original: Callable[[str, str | None, str | None], Any] = clients._client
    hooked: set[int] = set()
    # Threads share clients: none may use a client before its hook is in place.
    lock = threading.Lock()

    def client(service: str, account: str | None, region: str | None) -> Any:
        made = original(service, account, region)
        with lock:
            if id(made) not in hooked:
                hook(service, made)
                hooked.add(id(made))
        return made

    clients._client = client  # type: ignore[method-assign]
    return clients


@dataclass
class Call:
    service: str
    operation: str
    params: dict[str, Any]

    @property
    def write(self) -> bool:
        op = lookup(self.service, self.operation)
        return bool(op and op.write)


@dataclass
class CallLog:
    """Every API call made through the attached ``Clients``, with its parameters."""

    calls: list[Call] = field(default_factory=list)

    def attach(self, clients: Clients) -> Clients:
        def hook(service: str, client: Any) -> None:
            client.meta.events.register("before-parameter-build.*.*", self._recorder(service))

        return on_new_clients(clients, hook)

    def _recorder(self, service: str) -> Callable[..., None]:
        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls.append(Call(service, model.name, dict(params)))

        return record

    def counts(self) -> Counter[str]:
        return Counter(call.operation for call in self.calls)

    def count(self, operation: str) -> int:
        return sum(1 for call in self.calls if call.operation == operation)

    def named(self, operation: str) -> list[Call]:
        return [call for call in self.calls if call.operation == operation]

    def writes(self, services: Iterable[str] = ("ecs", "application-autoscaling")) -> list[Call]:
        wanted = set(services)
        return [call for call in self.calls if call.write and call.service in wanted]

    def clear(self) -> None:
        self.calls.clear()


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Fault:
    operation: str
    code: str
    message: str
    when: Callable[[dict[str, Any]], bool]
    times: int | None


@dataclass
class Faults:
    """Make chosen calls fail with an AWS error answered before anything is sent.

    ``faults.fail("RegisterScalableTarget", code="AccessDeniedException", when=lambda p:
    p["ResourceId"] == "service/c1/web", times=2)``; ``times=None`` fails every matching call.
    botocore raises the usual ``ClientError`` (and does not retry: nothing was sent).
    """

    faults: list[_Fault] = field(default_factory=list)
    injected: int = 0

    def fail(
        self,
        operation: str,
        *,
        code: str,
        message: str = "injected by the test",
        when: Callable[[dict[str, Any]], bool] = lambda _: True,
        times: int | None = None,
    ) -> Faults:
        self.faults.append(_Fault(operation, code, message, when, times))
        return self

    def attach(self, clients: Clients) -> Clients:
        def hook(service: str, client: Any) -> None:
            client.meta.events.register("before-parameter-build.*.*", self._remember)
            client.meta.events.register("before-call.*.*", self._answer)

        return on_new_clients(clients, hook)

    @staticmethod
    def _remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["teiji_test_params"] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        params = context.get("teiji_test_params", {})
        for fault in self.faults:
            if fault.operation != model.name or fault.times == 0 or not fault.when(params):
                continue
            if fault.times is not None:
                fault.times -= 1
            self.injected += 1
            error = {"Error": {"Code": fault.code, "Message": fault.message}}
            return AWSResponse("https://fault.invalid", 400, {}, None), {
                **error,
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
        return None


class Subscriber:
    """An SQS queue behind a rule that matches everything teiji sends."""

    def __init__(self, world: World) -> None:
        self.sqs = world._raw("sqs")
        events = world._raw("events")
        self.url = self.sqs.create_queue(QueueName="teiji-events")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(Name="all-teiji", EventPattern=json.dumps({"source": ["teiji"]}))
        events.put_targets(Rule="all-teiji", Targets=[{"Id": "queue", "Arn": arn}])

    def received(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def types(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for event in self.received():
            found.setdefault(event["detail-type"], []).append(event["detail"])
        return found
