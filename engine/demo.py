"""``teiji demo``: a week of real ticks against an emulated AWS account, in memory.

Everything runs inside ``moto.mock_aws``: no AWS account, no credentials, no network. The demo

1. creates teiji's two tables (``init_tables``), a cluster ``example-cluster`` and one ECS
   service per sample schedule, with the capacities a team would really have (staging at
   desired 2 with autoscaling 1..4 and scheduled scaling suspended, dev at 0, a batch worker,
   a reporting job, and the New York team's service in us-east-1, as its schedule says);
2. puts the sample calendars and schedules into the config table (overrides in the files are
   left out) and two overrides of its own, as ``teiji start`` writes them: staging kept up
   until 23:30 on Wednesday for late work, dev woken for two hours on Thursday afternoon;
3. runs the real tick (``engine.tick.run_tick``) every 15 simulated minutes through the week,
   reporting every change as it happens and the moments a holiday or an override keeps a
   service as it is; staging sits behind a load balancer with wake on request, and on Thursday
   at 23:10 someone opens it: the real wake function (``engine.wake_handler``) answers the
   load balancer's event and starts it for two hours (moto runs no tasks, so the demo registers
   a target for a running service as ECS would);
4. simulates the same week (``engine.simulate``) for the savings table.

The default week, Mon 2026-11-23 to Sun 2026-11-29, holds Labor Thanksgiving Day (Japan,
Monday) and Thanksgiving Day (US, Thursday).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from unittest import mock

from engine.config import Access, Settings
from engine.localtime import localize, zone
from engine.logs import silence_logging
from engine.model import Decision, bounds_text
from engine.overrides import build_override
from engine.plan import Action
from engine.report import ServiceReport
from engine.simulate import ServiceSimulation
from schemas.documents import Override, Schedule
from schemas.records import SuspendedState
from schemas.validation import DocumentSet

DEFAULT_WEEK_OF = date(2026, 11, 23)
DEMO_REGION = "ap-northeast-1"
DEMO_ZONE = "Asia/Tokyo"
CLUSTER = "example-cluster"
TICK = timedelta(minutes=15)
MAX_DAYS = 28
# The sample documents: package data once installed; in a checkout ``engine/samples`` is a link
# to the repository's ``sample_schedules/``.
SAMPLES = (Path(__file__).parent / "samples").resolve()

EventKind = Literal["start", "stop", "adjust", "kept", "failed", "wake"]
# A late request to staging, which asks for wake on request: (days after Monday, hour, minute),
# the host and the path someone opens.
LATE_REQUEST = (3, 23, 10)
LATE_HOST = "stg.example.com"
LATE_PATH = "/reports/monthly"
TASK_PORT = 80


class DemoError(RuntimeError):
    """The demo cannot run (its documents are missing or invalid); one line for people."""


@dataclass(frozen=True)
class DemoService:
    """An ECS service as the team left it before teiji took over."""

    name: str
    desired: int
    bounds: tuple[int, int] | None = None
    suspended: SuspendedState | None = None
    region: str = DEMO_REGION

    def describe_scaling(self) -> str:
        if self.bounds is None:
            return "no autoscaling"
        flags = self.suspended or SuspendedState()
        names = [
            name
            for name, on in (
                ("scale-in", flags.dynamic_in),
                ("scale-out", flags.dynamic_out),
                ("scheduled", flags.scheduled),
            )
            if on
        ]
        return f"autoscaling, {' and '.join(names)} suspended" if names else "autoscaling"


# Realistic capacities for the sample schedules' services. A schedule the samples gain later
# gets a service with desired 1 and no autoscaling.
DEMO_SERVICES: tuple[DemoService, ...] = (
    DemoService("example-service-stg", 2, (1, 4), SuspendedState(scheduled=True)),
    DemoService("example-service-dev", 0),
    DemoService("example-batch-worker", 2, (2, 6)),
    DemoService("example-reporting", 1),
    DemoService("example-service-us", 2, (2, 8), region="us-east-1"),
)


@dataclass(frozen=True)
class DemoEvent:
    """One line of the demo: a change the tick made, or a moment a service was kept as is."""

    at: datetime
    key: str
    timezone: str
    kind: EventKind
    state: str  # the decision after this tick: running, stopped or unmanaged
    capacity: str  # what changed, e.g. "desired 2->0, Min/Max 1..4->0..0 suspended"
    why: str


@dataclass
class DemoResult:
    first_day: date
    last_day: date
    ticks: int = 0
    changes: int = 0
    writes: int = 0
    failures: int = 0
    events: list[DemoEvent] = field(default_factory=list)
    services: list[tuple[Schedule, DemoService]] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    simulations: list[ServiceSimulation] = field(default_factory=list)
    calendars: int = 0
    documents: Path = SAMPLES
    seconds: float = 0.0


def week_start(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def local_instant(day: date, hour: int, minute: int = 0) -> datetime:
    naive = datetime(day.year, day.month, day.day, hour, minute)
    return localize(zone(DEMO_ZONE), naive)


# The demo's own overrides -----------------------------------------------------------------------
def demo_overrides(schedules: dict[str, Schedule], monday: date) -> list[Override]:
    """Late work on Wednesday (staging up until 23:30) and dev woken Thursday 14:00-16:00."""
    wanted = (
        (
            "example-service-stg",
            "3fa2c1d0",
            "suzuki",
            monday + timedelta(days=2),
            (21, 0),
            (23, 30),
            "release check after the Wednesday deploy (late work)",
        ),
        (
            "example-service-dev",
            "7be4d9a2",
            "tanaka",
            monday + timedelta(days=3),
            (14, 0),
            (16, 0),
            "debug a failing integration test",
        ),
    )
    overrides: list[Override] = []
    for name, ident, author, day, begin, end, reason in wanted:
        schedule = schedules.get(f"{CLUSTER}/{name}")
        if schedule is None:
            continue
        start = local_instant(day, *begin)
        overrides.append(
            build_override(
                schedule,
                state="running",
                start=start,
                until=local_instant(day, *end),
                reason=reason,
                created_by=author,
                now=start - timedelta(hours=3),
                limit=timedelta(days=7),
                override_id=ident,
            )
        )
    return overrides


# Running ----------------------------------------------------------------------------------------
@contextmanager
def isolated_aws() -> Iterator[None]:
    """moto's in-memory AWS, with the caller's AWS settings out of the way: no profile, no
    endpoint, no config file can send a request anywhere real."""
    from moto import mock_aws

    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(
        {
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": DEMO_REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
        }
    )
    with mock.patch.dict(os.environ, clean, clear=True), mock_aws(), _lean_attribute_values():
        yield


@contextmanager
def _lean_attribute_values() -> Iterator[None]:
    """Serialize each DynamoDB attribute value by the members it has.

    moto writes every response through a generic serializer that looks up each of a
    structure's members under several aliases. A DynamoDB attribute value is a structure of ten
    members (``S``, ``N``, ``M``, ``L``, ...) of which it holds one, so each value costs ten
    lookups: serializing the answers to the three config-table queries of each tick took about
    a quarter of the demo's time (cProfile, ``teiji demo --quiet``).
    Visiting only the members the value holds gives the same JSON (``tests/test_demo.py``
    compares the two). Should moto's serializer change shape, the demo runs at moto's speed.
    """
    try:
        from moto.core.serialize import BaseJSONSerializer
    except ImportError:
        yield
        return
    generic = getattr(BaseJSONSerializer, "_serialize_type_structure", None)
    if generic is None:
        yield
        return

    def lean(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if not (key and isinstance(value, dict) and shape.name == "AttributeValue"):
            generic(self, serialized, value, shape, key)
            return
        wrapper = self.MAP_TYPE()
        for member_key, member_shape in shape.members.items():
            if member_key in value:
                member_shape.parent = shape  # as the generic serializer does
                self._serialize_structure_member(wrapper, value, member_shape, member_key)
        self._default_serialize(serialized, wrapper, shape, key)

    with mock.patch.object(BaseJSONSerializer, "_serialize_type_structure", lean):
        yield


def run_demo(
    *,
    week_of: date = DEFAULT_WEEK_OF,
    days: int = 7,
    first_day: date | None = None,
    documents: Path = SAMPLES,
    on_start: Callable[[DemoResult], None] | None = None,
    on_event: Callable[[DemoEvent], None] | None = None,
    on_tick: Callable[[TickProgress], None] | None = None,
) -> DemoResult:
    """Run the demo over ``days`` days from the Monday of ``week_of`` (or from ``first_day``);
    the overrides go on Wednesday and Thursday of that week. ``on_start`` is called once the
    world is set up, ``on_event`` for every event as it happens, ``on_tick`` after each tick."""
    from engine.files import UnreadableFileError, load_and_validate

    if not 1 <= days <= MAX_DAYS:
        raise DemoError(f"--days {days}: give 1 to {MAX_DAYS} days")
    first = first_day or week_start(week_of)
    monday = week_start(first)
    result = DemoResult(
        first_day=first, last_day=first + timedelta(days=days - 1), documents=documents
    )
    first_tick = local_instant(first, 0)
    try:
        docs, problems = load_and_validate([str(documents)], now=first_tick)
    except UnreadableFileError as exc:
        raise DemoError(f"{exc} (give --documents a directory of documents)") from exc
    if problems:
        raise DemoError(f"the sample documents have problems: {problems[0]}")
    started = time.monotonic()
    with isolated_aws():
        _run(docs, result, monday, _Callbacks(on_start, on_event, on_tick))
    result.seconds = time.monotonic() - started
    return result


@dataclass(frozen=True)
class TickProgress:
    """How far the demo is: ``done`` of ``total`` ticks, the last one at ``at``."""

    done: int
    total: int
    at: datetime
    elapsed: float  # seconds since the first tick


@dataclass(frozen=True)
class _Callbacks:
    on_start: Callable[[DemoResult], None] | None
    on_event: Callable[[DemoEvent], None] | None
    on_tick: Callable[[TickProgress], None] | None


def _run(docs: DocumentSet, result: DemoResult, monday: date, callbacks: _Callbacks) -> None:
    import boto3

    from engine.aws.clients import Clients
    from engine.store import ConfigStore, init_tables
    from engine.tick import run_tick

    session = boto3.session.Session(region_name=DEMO_REGION)
    # A few services need no parallel reads: one worker per group spares each tick the start of
    # threads that would only wait for one another (the tick makes the same calls either way).
    # The demo's deployment allows the regions its sample schedules name (allowed_regions).
    regions = sorted({s.region for s in docs.schedules.values() if s.region})
    settings = Settings(concurrency=1, access=Access(regions=tuple(regions)))
    clients = Clients(region=DEMO_REGION, session=session)
    network = _network(session) if _wakes(docs.schedules.values()) else None
    result.services = _create_services(session, docs.schedules.values(), network)
    if network is not None:
        settings = replace(settings, wake_target_groups=((network.lb, network.wake),))
    init_tables(clients, settings)
    result.overrides = demo_overrides(docs.schedules, monday)
    result.calendars = len(docs.calendars)
    # Overrides are dated: the demo writes its own for the week shown, not any in the files.
    # The profiles go in too: a schedule naming one is read back with it, as the tick reads it.
    ConfigStore(clients, settings.config_table).put(
        [
            *docs.calendars.values(),
            *docs.profiles.values(),
            *docs.schedules.values(),
            *result.overrides,
        ]
    )
    demo_docs = DocumentSet(dict(docs.schedules), dict(docs.calendars), list(result.overrides))
    result.simulations = _simulate(demo_docs, result)
    if callbacks.on_start is not None:
        callbacks.on_start(result)

    # Each tick logs a JSON line per service for CloudWatch; the demo shows its own lines.
    silence_logging()
    timezones = {s.key: s.timezone for s in docs.schedules.values()}
    last: dict[str, Decision] = {}
    at = local_instant(result.first_day, 0)
    end = local_instant(result.last_day + timedelta(days=1), 0)
    total = (end - at) // TICK
    began = time.monotonic()
    late = local_instant(monday + timedelta(days=LATE_REQUEST[0]), *LATE_REQUEST[1:])
    while at < end:
        if network is not None and at - TICK < late <= at:
            woken = _late_request(clients, settings, network, late, timezones)
            if woken is not None:
                result.events.append(woken)
                if callbacks.on_event is not None:
                    callbacks.on_event(woken)
        report = run_tick(clients, settings, at=at, dry_run=False)
        if network is not None:
            _ecs_registers_targets(session, network)
        result.ticks += 1
        for service in report.services:
            event = _event(service, last.get(service.key), at, timezones)
            if service.decision is not None:
                last[service.key] = service.decision
            if service.outcome == "changed":
                result.changes += 1
                result.writes += sum(1 for a in service.actions if _is_aws_write(a))
            if service.failed:
                result.failures += 1
            if event is not None:
                result.events.append(event)
                if callbacks.on_event is not None:
                    callbacks.on_event(event)
        if callbacks.on_tick is not None:
            callbacks.on_tick(TickProgress(result.ticks, total, at, time.monotonic() - began))
        at = (at + TICK).astimezone(zone(DEMO_ZONE))


@dataclass
class _Network:
    """Staging's load balancer: its listener rule, the service's target group and the wake
    function's target group."""

    subnet: str
    security_group: str
    target_group: str
    lb: str
    wake: str
    cluster: str = CLUSTER
    service: str = ""


def _wakes(schedules: Iterable[Schedule]) -> list[Schedule]:
    return [s for s in schedules if s.wake is not None and s.wake.on_request and s.region is None]


def _network(session: Any) -> _Network:
    """A VPC, an ALB with a listener rule for ``LATE_HOST`` forwarding to the service's
    target group, and the wake function's Lambda target group for that ALB."""
    ec2 = session.client("ec2", region_name=DEMO_REGION)
    elbv2 = session.client("elbv2", region_name=DEMO_REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{DEMO_REGION}{zone_}"
        )["Subnet"]["SubnetId"]
        for i, zone_ in ((1, "a"), (2, "c"))
    ]
    group = ec2.create_security_group(GroupName="stg", Description="tasks", VpcId=vpc)["GroupId"]
    target_group = elbv2.create_target_group(
        Name="stg", Protocol="HTTP", Port=TASK_PORT, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    lb = elbv2.create_load_balancer(Name="stg", Subnets=subnets)["LoadBalancers"][0]
    wake = elbv2.create_target_group(Name="teiji-wake-0", TargetType="lambda")["TargetGroups"][0]
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    elbv2.create_rule(
        ListenerArn=listener,
        Priority=10,
        Conditions=[{"Field": "host-header", "Values": [LATE_HOST]}],
        Actions=[{"Type": "forward", "TargetGroupArn": target_group}],
    )
    return _Network(subnets[0], group, target_group, lb["LoadBalancerArn"], wake["TargetGroupArn"])


def _late_request(
    clients: Any,
    settings: Settings,
    network: _Network,
    when: datetime,
    timezones: dict[str, str],
) -> DemoEvent | None:
    """Someone opens staging late: the wake function answers the load balancer's event."""
    from engine.wake_handler import wake
    from engine.wake_request import read_request

    event = {
        "requestContext": {"elb": {"targetGroupArn": network.wake}},
        "httpMethod": "GET",
        "path": LATE_PATH,
        "headers": {"host": LATE_HOST, "accept": "text/html"},
        "body": "",
        "isBase64Encoded": False,
    }
    ecs = clients.ecs()
    before = _desired(ecs, network)
    outcome = wake(clients, settings, read_request(event), at=when)
    if outcome.answer.service is None:
        return None
    key = outcome.answer.service
    after = _desired(ecs, network)
    capacity = f"desired {before}->{after}" if after != before else ""
    why = f"a request to {LATE_HOST}{LATE_PATH}: {outcome.answer.status}, kept up for 2h"
    return DemoEvent(when, key, timezones.get(key, DEMO_ZONE), "wake", "running", capacity, why)


def _desired(ecs: Any, network: _Network) -> int:
    found = ecs.describe_services(cluster=network.cluster, services=[network.service])
    return int(found["services"][0]["desiredCount"])


def _ecs_registers_targets(session: Any, network: _Network) -> None:
    """What ECS does and moto does not: a running service's task is registered in its
    target group (and healthy), a stopped one's is deregistered."""
    elbv2 = session.client("elbv2", region_name=DEMO_REGION)
    running = _desired(session.client("ecs", region_name=DEMO_REGION), network) > 0
    target = [{"Id": "10.0.1.10", "Port": TASK_PORT}]
    health = elbv2.describe_target_health(TargetGroupArn=network.target_group)
    registered = bool(health["TargetHealthDescriptions"])
    if running and not registered:
        elbv2.register_targets(TargetGroupArn=network.target_group, Targets=target)
    elif registered and not running:
        elbv2.deregister_targets(TargetGroupArn=network.target_group, Targets=target)


def _create_services(
    session: Any, schedules: Iterable[Schedule], network: _Network | None = None
) -> list[tuple[Schedule, DemoService]]:
    """One ECS service per schedule, in the schedule's region, with its demo capacity; the
    one that asks for wake on request behind the load balancer of ``network``."""
    woken = {s.key for s in _wakes(schedules)} if network is not None else set()
    known = {s.name: s for s in DEMO_SERVICES}
    created: list[tuple[Schedule, DemoService]] = []
    definitions: dict[str, str] = {}
    clusters: set[tuple[str, str]] = set()
    for schedule in sorted(schedules, key=lambda s: s.key):
        region = schedule.region or DEMO_REGION
        spec = known.get(schedule.service_name) or DemoService(schedule.service_name, 1)
        spec = DemoService(spec.name, spec.desired, spec.bounds, spec.suspended, region)
        ecs = session.client("ecs", region_name=region)
        if region not in definitions:
            definitions[region] = ecs.register_task_definition(
                family="demo-app",
                cpu="256",
                memory="512",
                containerDefinitions=[
                    {
                        "name": "app",
                        "image": "public.ecr.aws/docker/library/nginx:latest",
                        "cpu": 256,
                        "memory": 512,
                    }
                ],
            )["taskDefinition"]["taskDefinitionArn"]
        if (region, schedule.cluster) not in clusters:
            ecs.create_cluster(clusterName=schedule.cluster)
            clusters.add((region, schedule.cluster))
        params: dict[str, Any] = {
            "cluster": schedule.cluster,
            "serviceName": schedule.service_name,
            "taskDefinition": definitions[region],
            "desiredCount": spec.desired,
        }
        if network is not None and schedule.key in woken:
            params.update(_behind_load_balancer(ecs, network))
            network.service = schedule.service_name
        ecs.create_service(**params)
        if spec.bounds is not None:
            params = {
                "ServiceNamespace": "ecs",
                "ResourceId": f"service/{schedule.cluster}/{schedule.service_name}",
                "ScalableDimension": "ecs:service:DesiredCount",
                "MinCapacity": spec.bounds[0],
                "MaxCapacity": spec.bounds[1],
            }
            if spec.suspended is not None:
                params["SuspendedState"] = spec.suspended.to_aws()
            session.client("application-autoscaling", region_name=region).register_scalable_target(
                **params
            )
        created.append((schedule, spec))
    return created


def _behind_load_balancer(ecs: Any, network: _Network) -> dict[str, Any]:
    """The service parameters of an awsvpc service in the network's target group."""
    definition = ecs.register_task_definition(
        family="demo-web",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "app",
                "image": "public.ecr.aws/docker/library/nginx:latest",
                "portMappings": [{"containerPort": TASK_PORT}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    return {
        "taskDefinition": definition,
        "launchType": "FARGATE",
        "loadBalancers": [
            {
                "targetGroupArn": network.target_group,
                "containerName": "app",
                "containerPort": TASK_PORT,
            }
        ],
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": [network.subnet],
                "securityGroups": [network.security_group],
            }
        },
    }


def _simulate(docs: DocumentSet, result: DemoResult) -> list[ServiceSimulation]:
    from engine.pricing import price_for
    from engine.simulate import region_of, simulate

    regions = {region_of(s, DEMO_REGION) for s in docs.schedules.values()}
    observed = {schedule.key: spec.desired for schedule, spec in result.services if spec.desired}
    return simulate(
        docs,
        result.first_day,
        result.last_day,
        prices={region: price_for(region) for region in regions},
        default_region=DEMO_REGION,
        observed_tasks=observed,
    )


# Events -----------------------------------------------------------------------------------------
def _is_aws_write(action: Action) -> bool:
    return action.kind in ("register_target", "update_service")


def _event(
    service: ServiceReport, previous: Decision | None, at: datetime, timezones: dict[str, str]
) -> DemoEvent | None:
    """What to print for one service after one tick, or None when nothing worth a line."""
    timezone = timezones.get(service.key, DEMO_ZONE)
    decision = service.decision
    state = decision.state if decision else "unknown"
    if service.failed:
        error = service.error or "failed"
        return DemoEvent(at, service.key, timezone, "failed", state, "", error)
    if decision is None:
        return None
    why = why_text(decision)
    if service.outcome == "changed":
        kind: EventKind = "adjust"
        ups = [a for a in service.actions if a.kind == "update_service"]
        if ups:
            kind = "start" if ups[0].desired_count > int(ups[0].before["desired_count"]) else "stop"
        capacity = capacity_text(service.actions)
        return DemoEvent(at, service.key, timezone, kind, state, capacity, why)
    if previous is None or _kept_for_a_reason(previous, decision):
        return DemoEvent(at, service.key, timezone, "kept", state, "", why)
    return None


def _kept_for_a_reason(previous: Decision, decision: Decision) -> bool:
    """A holiday or an override begins (or an override ends) without any change to make."""
    if decision.source in ("holiday", "override") and (
        decision.source != previous.source or decision.override_id != previous.override_id
    ):
        return True
    return previous.source == "override" and decision.source != "override"


def why_text(decision: Decision) -> str:
    """The decision's reason; for a holiday just its name (the rest repeats the window)."""
    if decision.source == "holiday":
        return f"holiday: {decision.reason.split(': ', 1)[0]}"
    return decision.reason


def capacity_text(actions: Sequence[Action]) -> str:
    """``desired 2->0, Min/Max 1..4->0..0, scaling suspended`` from the actions a tick took."""
    parts: list[str] = []
    for action in actions:
        if action.kind == "update_service":
            parts.append(f"desired {action.before.get('desired_count')}->{action.desired_count}")
    for action in actions:
        if action.kind != "register_target":
            continue
        parts.append(
            f"Min/Max {bounds_text(action.before, suspended=False)}"
            f"->{bounds_text(action.after, suspended=False)}"
        )
        before = _flags(action.before)
        after = _flags(action.after)
        if after.all_suspended and not before.all_suspended:
            parts.append("scaling suspended")
        elif before.all_suspended and not after.all_suspended:
            parts.append("scaling restored")
    if not parts and any(a.kind == "save_baseline" for a in actions):
        parts.append("baseline saved")
    return ", ".join(parts)


def _flags(values: Any) -> SuspendedState:
    return SuspendedState.model_validate(values.get("suspended") or {})
