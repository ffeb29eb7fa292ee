"""Target checks against moto: ECS tasks run and registered the way ECS would (tests.taskworld)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from engine.aws.clients import Clients
from engine.aws.operations import Operation
from engine.targets import Target, TargetReport, check_targets
from tests.taskworld import Service, World, build_world, pinned_task_states


class Recorder:
    """Every AWS call the product makes, and the parameters of the ones that matter here."""

    def __init__(self, clients: Clients) -> None:
        self.operations: list[str] = []
        self.params: list[tuple[str, dict[str, Any]]] = []
        clients.before_call.append(self._operation)
        for client in (clients.ecs(), clients.elbv2()):
            client.meta.events.register("before-parameter-build.*.*", self._parameters)

    def _operation(self, operation: Operation, account: str | None, region: str) -> None:
        self.operations.append(operation.name)

    def _parameters(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.params.append((model.name, dict(params)))

    @property
    def writes(self) -> list[str]:
        return [op for op in self.operations if op in ("RegisterTargets", "DeregisterTargets")]

    def sent(self, name: str) -> list[dict[str, Any]]:
        return [params for op, params in self.params if op == name]


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws(), pinned_task_states():
        yield build_world()


@pytest.fixture
def web(world: World) -> tuple[Service, str, list[dict[str, Any]]]:
    """A Fargate service with two RUNNING tasks, registered in its ip target group by ECS."""
    target_group = world.target_group("web", target_type="ip")
    service = world.fargate_service("web", [target_group])
    tasks = world.run_tasks(service, 2)
    world.register_like_ecs(service, tasks)
    return service, target_group, tasks


def check(world: World, service: Service, mode: Any, *, dry_run: bool = False,
          clients: Clients | None = None) -> TargetReport:  # fmt: skip
    return check_targets(
        clients or Clients(),
        account=None,
        region=None,
        cluster=world.cluster,
        service=world.describe_service(service),
        mode=mode,
        dry_run=dry_run,
    )


def kinds(report: TargetReport) -> list[tuple[str, Target]]:
    return sorted((f.kind, f.target) for f in report.findings)


def test_all_registered_and_healthy_is_ok_and_writes_nothing(world: World, web: Any) -> None:
    service, _, _ = web
    clients = Clients()
    recorder = Recorder(clients)
    report = check(world, service, "repair", clients=clients)
    assert report.ok, report.as_json()
    assert report.findings == []
    assert recorder.writes == []
    # The running tasks and the recently stopped ones are listed, for this service only.
    assert [p["desiredStatus"] for p in recorder.sent("ListTasks")] == ["RUNNING", "STOPPED"]
    assert {p["serviceName"] for p in recorder.sent("ListTasks")} == {"web"}


def test_missing_target_is_reported_and_repaired_with_ip_and_container_port(
    world: World, web: Any
) -> None:
    service, target_group, tasks = web
    lost = world.ecs_target(service, tasks[1])
    world.deregister(target_group, lost)

    verified = check(world, service, "verify")
    assert kinds(verified) == [("missing", Target(*lost))]
    assert not verified.ok
    assert lost not in world.registered(target_group)

    clients = Clients()
    recorder = Recorder(clients)
    repaired = check(world, service, "repair", clients=clients)
    assert repaired.ok
    assert repaired.registered == [(target_group, Target(*lost))]
    assert recorder.sent("RegisterTargets") == [
        {"TargetGroupArn": target_group, "Targets": [{"Id": lost[0], "Port": 8080}]}
    ]
    assert world.registered(target_group) == {world.ecs_target(service, t) for t in tasks}


def test_stale_target_of_a_stopped_task_is_deregistered_in_repair(world: World, web: Any) -> None:
    service, target_group, tasks = web
    gone = world.ecs_target(service, tasks[0])
    world.stop_task(tasks[0]["taskArn"])  # ECS failed to deregister it

    verified = check(world, service, "verify")
    assert kinds(verified) == [("stale", Target(*gone))]
    assert tasks[0]["taskArn"].rsplit("/", 1)[-1] in verified.findings[0].detail
    assert gone in world.registered(target_group)

    repaired = check(world, service, "repair")
    assert repaired.deregistered == [(target_group, Target(*gone))]
    assert repaired.ok
    assert world.registered(target_group) == {world.ecs_target(service, tasks[1])}


def test_foreign_targets_are_reported_and_never_touched(world: World, web: Any) -> None:
    service, target_group, _ = web
    # Another service shares the group, and someone registered an address by hand.
    api = world.fargate_service("api", [target_group])
    api_tasks = world.run_tasks(api, 1)
    world.register_like_ecs(api, api_tasks)
    world.register(target_group, ("10.0.200.200", 8080))
    before = world.registered(target_group)

    clients = Clients()
    recorder = Recorder(clients)
    report = check(world, service, "repair", clients=clients)
    foreign = {world.ecs_target(api, api_tasks[0]), ("10.0.200.200", 8080)}
    assert kinds(report) == sorted(("foreign", Target(*t)) for t in foreign)
    assert report.ok  # another service may share the group: not this service's fault
    assert recorder.writes == []
    assert world.registered(target_group) == before


def test_a_task_id_is_never_sent_as_a_target(world: World, web: Any) -> None:
    service, target_group, tasks = web
    # What the hand-written tool did: task ids as targets (moto accepts them, AWS does not).
    task_ids = [t["taskArn"].rsplit("/", 1)[-1] for t in tasks]
    world.register(target_group, *((task_id, 8080) for task_id in task_ids))
    for task in tasks:
        world.deregister(target_group, world.ecs_target(service, task))

    clients = Clients()
    recorder = Recorder(clients)
    report = check(world, service, "repair", clients=clients)

    sent = [
        target["Id"]
        for params in recorder.sent("RegisterTargets") + recorder.sent("DeregisterTargets")
        for target in params["Targets"]
    ]
    assert sorted(sent) == sorted(world.ecs_target(service, t)[0] for t in tasks)
    assert not {t["taskArn"] for t in tasks} & set(sent)
    assert not set(task_ids) & set(sent)
    foreign = [f for f in report.findings if f.kind == "foreign"]
    assert {f.target.id for f in foreign} == set(task_ids)
    assert all("looks like an ECS task id" in f.detail for f in foreign)
    assert {(task_id, 8080) for task_id in task_ids} <= world.registered(target_group)


def test_tasks_still_starting_or_draining_are_not_errors(world: World, web: Any) -> None:
    service, target_group, tasks = web
    starting = world.run_tasks(service, 2)
    world.set_task_status(starting[0]["taskArn"], "PENDING")
    world.set_task_status(starting[1]["taskArn"], "ACTIVATING")
    world.register(target_group, world.ecs_target(service, starting[1]))  # ECS registers now
    world.set_target_health(target_group, world.ecs_target(service, starting[1])[0], "initial")
    world.set_task_status(tasks[0]["taskArn"], "DEACTIVATING", "STOPPED")

    clients = Clients()
    recorder = Recorder(clients)
    report = check(world, service, "repair", clients=clients)
    assert report.ok, report.as_json()
    assert report.findings == []
    assert recorder.writes == []


def test_unhealthy_target_is_reported_and_left_alone(world: World, web: Any) -> None:
    service, target_group, tasks = web
    sick = world.ecs_target(service, tasks[0])
    world.set_target_health(target_group, sick[0], "unhealthy", "Target.Timeout")

    clients = Clients()
    recorder = Recorder(clients)
    report = check(world, service, "repair", clients=clients)
    assert kinds(report) == [("unhealthy", Target(*sick))]
    assert "Target.Timeout" in report.findings[0].detail
    assert not report.ok
    assert recorder.writes == []


def test_bridge_mode_uses_the_instance_id_and_the_host_port(world: World) -> None:
    target_group = world.target_group("legacy", target_type="instance")
    service = world.bridge_service("legacy", [target_group])
    first_arn, first_instance = world.container_instance()
    second_arn, second_instance = world.container_instance()
    registered = world.start_bridge_task(service, first_arn, host_port=32768)
    unregistered = world.start_bridge_task(service, second_arn, host_port=32771)
    world.register_like_ecs(service, [registered])

    clients = Clients()
    recorder = Recorder(clients)
    report = check(world, service, "repair", clients=clients)
    assert kinds(report) == [("missing", Target(second_instance, 32771))]
    assert report.registered == [(target_group, Target(second_instance, 32771))]
    assert world.registered(target_group) == {(first_instance, 32768), (second_instance, 32771)}
    assert recorder.sent("DescribeContainerInstances")
    assert unregistered["taskArn"] not in str(recorder.sent("RegisterTargets"))


def test_fargate_needs_no_container_instances(world: World, web: Any) -> None:
    service, _, _ = web
    clients = Clients()
    recorder = Recorder(clients)
    check(world, service, "verify", clients=clients)
    assert "DescribeContainerInstances" not in recorder.operations


def test_dry_run_plans_repairs_and_writes_nothing(world: World, web: Any) -> None:
    service, target_group, tasks = web
    lost = world.ecs_target(service, tasks[1])
    world.deregister(target_group, lost)
    world.stop_task(tasks[0]["taskArn"])
    before = world.registered(target_group)

    clients = Clients()
    recorder = Recorder(clients)
    report = check(world, service, "repair", dry_run=True, clients=clients)
    assert report.dry_run
    assert report.registered == [(target_group, Target(*lost))]
    assert report.deregistered == [(target_group, Target(*world.ecs_target(service, tasks[0])))]
    assert not report.ok  # planned is not done
    assert recorder.writes == []
    assert world.registered(target_group) == before


def test_verify_mode_writes_nothing(world: World, web: Any) -> None:
    service, target_group, tasks = web
    world.deregister(target_group, world.ecs_target(service, tasks[1]))
    world.stop_task(tasks[0]["taskArn"])

    clients = Clients()
    recorder = Recorder(clients)
    report = check(world, service, "verify", clients=clients)
    assert [f.kind for f in report.findings] == ["missing", "stale"]
    assert report.registered == report.deregistered == []
    assert recorder.writes == []


def test_ignore_mode_calls_nothing(world: World, web: Any) -> None:
    service, _, _ = web
    clients = Clients()
    recorder = Recorder(clients)
    report = check(world, service, "ignore", clients=clients)
    assert report.ok
    assert recorder.operations == []


def test_describe_tasks_asks_for_at_most_100_tasks(world: World, web: Any) -> None:
    service, target_group, _ = web
    more = world.run_tasks(service, 101)
    world.register_like_ecs(service, more)

    clients = Clients()
    recorder = Recorder(clients)
    report = check(world, service, "verify", clients=clients)
    assert report.ok, report.as_json()
    sizes = [len(p["tasks"]) for p in recorder.sent("DescribeTasks")]
    assert sizes == [100, 3]
    assert len(world.registered(target_group)) == 103


def test_an_aws_error_comes_back_as_the_report_error(world: World, web: Any) -> None:
    service, target_group, _ = web
    entry = world.describe_service(service)
    # The group was deleted under the service.
    entry["loadBalancers"][0]["targetGroupArn"] = target_group.replace("/web/", "/gone/")
    report = check_targets(
        Clients(), account=None, region=None, cluster=world.cluster, service=entry,
        mode="repair", dry_run=False,
    )  # fmt: skip
    assert not report.ok
    assert report.error is not None
    assert report.error.startswith("cannot check load balancer targets of service web in cluster")


def test_end_to_end_over_http(endpoint: str) -> None:
    """Against the moto server: real signing and serialisation on every call."""
    with pinned_task_states():
        world = build_world(endpoint)
        target_group = world.target_group("web", target_type="ip")
        service = world.fargate_service("web", [target_group])
        tasks = world.run_tasks(service, 3)
        world.register_like_ecs(service, tasks[:2])
        world.stop_task(tasks[0]["taskArn"])

        report = check(world, service, "repair", clients=Clients(endpoint_url=endpoint))
        assert sorted(f.kind for f in report.findings) == ["missing", "stale"]
        assert report.ok, report.as_json()
        assert world.registered(target_group) == {world.ecs_target(service, t) for t in tasks[1:]}
