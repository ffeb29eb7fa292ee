"""The savings figures of a tick: StoppedTaskHours and EstimatedSavingsUSD in its metrics line,
from the baseline's desired count, what the tick leaves running, the task size (recorded in the
baseline when teiji stops a service, read from the task definition once otherwise) and the
dated Fargate price table."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.aws.answers import UnreadableAnswerError
from engine.aws.cloudwatch import MetricQuery, metric_data
from engine.config import Settings
from engine.logs import setup_logging
from engine.pricing import TaskSize, price_for
from engine.savings import Launch, launch_of, saving_of, spec_from_definition, task_hour_price
from engine.sizing import forget_read_sizes
from engine.tick import run_tick
from schemas.records import Baseline, TaskSpec
from tests.faults import InstantClock, logged_tick
from tests.world import CallLog, Faults, World, at, moto_tables, schedule

NIGHT = at("2026-12-02T23:00:00+09:00")
LATER = at("2026-12-02T23:15:00+09:00")
MORNING = at("2026-12-03T08:00:00+09:00")
# ap-northeast-1 x86_64 on-demand, from engine/data/fargate_prices.json (as of 2026-06-17):
# 0.25 vCPU x 0.05056 + 0.5 GB x 0.00553 = 0.015405 USD per task-hour.
SMALL_TASK_HOUR = 0.015405


@pytest.fixture
def world() -> Iterator[World]:
    forget_read_sizes()
    with moto_tables() as w:
        yield w
    forget_read_sizes()


def fargate_service(world: World, cluster: str, name: str, desired: int, **extra: Any) -> None:
    world.create_cluster(cluster)
    params: dict[str, Any] = {"launchType": "FARGATE", **extra}
    if "capacityProviderStrategy" in extra:
        params.pop("launchType")
    world.ecs.create_service(
        cluster=cluster,
        serviceName=name,
        taskDefinition=world.task_definition(awsvpc=True),
        desiredCount=desired,
        **params,
    )
    world.stamp_created_at(cluster, name, datetime.now(UTC))


def metrics(stream: io.StringIO, event: str = "tick metrics") -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == event]


def tick(
    world: World, when: datetime, settings: Settings | None = None
) -> tuple[CallLog, dict[str, Any]]:
    stream = io.StringIO()
    setup_logging("INFO", stream)
    log = CallLog()
    run_tick(
        log.attach(world.clients()),
        settings or world.settings,
        at=when,
        dry_run=False,
        pacing_clock=InstantClock(),
    )
    (line,) = metrics(stream)
    return log, line


def test_a_stop_counts_the_quarter_hour_it_saves_and_records_the_task_size(world: World) -> None:
    fargate_service(world, "c1", "web", 3)
    world.put(schedule("c1/web"))
    log, line = tick(world, NIGHT)
    assert log.count("DescribeTaskDefinition") == 1
    assert line["StoppedTaskHours"] == pytest.approx(0.75)  # 3 tasks x 15 minutes
    assert line["EstimatedSavingsUSD"] == pytest.approx(0.75 * SMALL_TASK_HOUR)
    stored = world.baseline("c1/web")
    assert stored is not None and stored["task"]["cpu"] == 256 and stored["task"]["memory"] == 512
    assert stored["task"]["architecture"] == "x86_64"

    # Night after night the baseline holds the size: no more reads of the task definition.
    forget_read_sizes()  # a cold container too
    log, line = tick(world, LATER)
    assert log.count("DescribeTaskDefinition") == 0
    assert line["StoppedTaskHours"] == pytest.approx(0.75)
    assert line["EstimatedSavingsUSD"] == pytest.approx(0.75 * SMALL_TASK_HOUR)

    # The start: it runs again, nothing is saved from here on.
    _, line = tick(world, MORNING)
    assert line["StoppedTaskHours"] == 0 and line["EstimatedSavingsUSD"] == 0


def test_a_baseline_saved_before_sizes_were_recorded_reads_the_task_definition_once(
    world: World,
) -> None:
    fargate_service(world, "c1", "web", 2)
    world.put(schedule("c1/web"))
    tick(world, NIGHT)
    item = world.dynamodb.get_item(
        TableName=world.settings.state_table, Key={"pk": {"S": "baseline"}, "sk": {"S": "c1/web"}}
    )["Item"]
    item.pop("task")  # as an older teiji saved it
    world.dynamodb.put_item(TableName=world.settings.state_table, Item=item)
    forget_read_sizes()
    log, line = tick(world, LATER)
    assert log.count("DescribeTaskDefinition") == 1
    assert line["EstimatedSavingsUSD"] == pytest.approx(0.5 * SMALL_TASK_HOUR)
    # A warm container remembers the revision: the next tick reads nothing.
    log, _ = tick(world, at("2026-12-02T23:30:00+09:00"))
    assert log.count("DescribeTaskDefinition") == 0


def test_ec2_tasks_count_in_hours_without_a_price(world: World) -> None:
    world.create_service("c1", "batch", desired=4)  # moto's default launch type is EC2
    world.put(schedule("c1/batch"))
    log, line = tick(world, NIGHT)
    assert log.count("DescribeTaskDefinition") == 0  # no price to find
    assert line["StoppedTaskHours"] == pytest.approx(1.0)
    assert line["EstimatedSavingsUSD"] == 0


def test_a_reduced_service_saves_what_it_does_not_run(world: World) -> None:
    fargate_service(world, "c1", "web", 5)
    world.put(schedule("c1/web", stopped={"desired_count": 1}))
    _, line = tick(world, NIGHT)
    assert line["StoppedTaskHours"] == pytest.approx(1.0)  # 4 of 5 tasks x 15 minutes


def test_a_task_definition_that_cannot_be_read_costs_the_price_never_the_stop(
    world: World,
) -> None:
    fargate_service(world, "c1", "web", 2)
    world.put(schedule("c1/web"))
    stream = io.StringIO()
    setup_logging("INFO", stream)
    clients = (
        Faults()
        .fail("DescribeTaskDefinition", code="AccessDeniedException")
        .attach(world.clients())
    )
    report = run_tick(clients, world.settings, at=NIGHT, dry_run=False, pacing_clock=InstantClock())
    assert report.service("c1/web").outcome == "changed"
    assert world.state("c1", "web").desired == 0
    (line,) = metrics(stream)
    assert line["StoppedTaskHours"] == pytest.approx(0.5)
    assert line["EstimatedSavingsUSD"] == 0
    assert any(
        "cannot read some task definitions" in line for line in stream.getvalue().splitlines()
    )


def test_per_service_lines_only_when_asked(world: World) -> None:
    fargate_service(world, "c1", "web", 2)
    fargate_service(world, "c1", "api", 1)
    world.put(schedule("c1/web"), schedule("c1/api"))
    stream = io.StringIO()
    setup_logging("INFO", stream)
    settings = Settings.from_env(
        {
            "TEIJI_CONFIG_TABLE": world.settings.config_table,
            "TEIJI_STATE_TABLE": world.settings.state_table,
            "TEIJI_METRICS_PER_SERVICE": "true",
            "TEIJI_TICK_INTERVAL": "30m",
        }
    )
    run_tick(world.clients(), settings, at=NIGHT, dry_run=False, pacing_clock=InstantClock())
    lines = {line["Service"]: line for line in metrics(stream, "service metrics")}
    assert set(lines) == {"c1/web", "c1/api"}
    web = lines["c1/web"]
    assert web["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Deployment", "Service"]]
    assert web["StoppedTaskHours"] == pytest.approx(1.0)  # 2 tasks x 30 minutes
    (total,) = metrics(stream)
    assert total["StoppedTaskHours"] == pytest.approx(1.5)
    assert total["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Deployment"]]

    stream2 = io.StringIO()
    setup_logging("INFO", stream2)
    logged_tick(world, LATER)
    assert metrics(stream2, "service metrics") == []  # off by default


def test_fargate_spot_and_mixed_strategies() -> None:
    spot = launch_of(
        {"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]}
    )
    assert spot == Launch(0.0, 1.0)
    mixed = launch_of(
        {
            "capacityProviderStrategy": [
                {"capacityProvider": "FARGATE", "weight": 1},
                {"capacityProvider": "FARGATE_SPOT", "weight": 3},
            ]
        }
    )
    assert mixed == Launch(0.25, 0.75)
    assert not launch_of({}).known
    assert not launch_of({"launchType": "EC2"}).priced
    spec = TaskSpec(task_definition="arn:td:1", cpu=1024, memory=2048)
    size = TaskSize(1.0, 2.0)
    on_demand = price_for("ap-northeast-1").task_hour(size)
    price, _ = task_hour_price(spec, mixed, "ap-northeast-1")
    assert price == pytest.approx(0.25 * on_demand + 0.75 * on_demand * 0.3)
    price, why = task_hour_price(spec, Launch(1.0, 0.0), "mars-north-1")
    assert price is None and why is not None and "mars-north-1" in why


def test_task_sizes_from_task_definitions() -> None:
    arm = spec_from_definition(
        "arn:td:2",
        {"cpu": "1 vCPU", "memory": "2 GB", "runtimePlatform": {"cpuArchitecture": "ARM64"}},
    )
    assert arm == TaskSpec(task_definition="arn:td:2", cpu=1024, memory=2048, architecture="arm64")
    assert spec_from_definition("arn:td:3", {"containerDefinitions": []}) is None  # EC2-sized
    assert spec_from_definition("arn:td:4", {"cpu": "lots", "memory": "512"}) is None


def _baseline(desired: int) -> Baseline:
    return Baseline(
        key="c1/web",
        desired_count=desired,
        saved_at=datetime(2026, 12, 2, tzinfo=UTC),
        decided_by="test",
        version="v1",
    )


@given(desired=st.integers(0, 500), after=st.integers(0, 500))
def test_never_a_negative_or_running_saving(desired: int, after: int) -> None:
    saving = saving_of(
        state="stopped",
        baseline=_baseline(desired),
        desired_after=after,
        spec=None,
        launch=Launch(1.0, 0.0),
        region="ap-northeast-1",
    )
    if desired <= after:
        assert saving is None
    else:
        assert saving is not None and saving.tasks == desired - after and saving.usd(0.25) == 0
    running = saving_of(
        state="running",
        baseline=_baseline(desired),
        desired_after=after,
        spec=None,
        launch=Launch(1.0, 0.0),
        region="ap-northeast-1",
    )
    assert running is None


class _Pages:
    """A CloudWatch client that answers GetMetricData with the given pages, in order."""

    def __init__(self, *pages: dict[str, Any]) -> None:
        self.pages = list(pages)
        self.asked: list[dict[str, Any]] = []

    def get_metric_data(self, **params: Any) -> dict[str, Any]:
        self.asked.append(params)
        return self.pages.pop(0)


def _result(values: list[float], stamps: list[datetime], **extra: Any) -> dict[str, Any]:
    return {"Id": "hours", "Timestamps": stamps, "Values": values, **extra}


QUERY = MetricQuery("hours", "teiji", "StoppedTaskHours", {"Deployment": "d"}, "Sum", 3600)
T0, T1 = datetime(2026, 11, 1, 15, tzinfo=UTC), datetime(2026, 11, 1, 16, tzinfo=UTC)


def test_metric_data_reads_every_page() -> None:
    client = _Pages(
        {"MetricDataResults": [_result([1.5], [T0], StatusCode="PartialData")], "NextToken": "n1"},
        {"MetricDataResults": [_result([2.0], [T1], StatusCode="Complete")]},
    )
    found = metric_data(client, [QUERY], T0, T1)  # type: ignore[arg-type]
    assert found == {"hours": {T0: 1.5, T1: 2.0}}
    assert client.asked[1]["NextToken"] == "n1"


@pytest.mark.parametrize(
    "answer",
    [
        {"MetricDataResults": [_result([1.0, 2.0], [T0])]},  # cut: two values, one timestamp
        {"MetricDataResults": [_result([1.0], [T0], StatusCode="Forbidden")]},
        {"MetricDataResults": [{"Id": "other", "Timestamps": [], "Values": []}]},
        {"MetricDataResults": [_result(["1.0"], [T0])]},  # type: ignore[list-item]
        {},
    ],
)
def test_metric_data_that_cannot_be_read_fails_closed(answer: dict[str, Any]) -> None:
    with pytest.raises(UnreadableAnswerError):
        metric_data(_Pages(answer), [QUERY], T0, T1)  # type: ignore[arg-type]


def test_the_same_next_token_twice_is_refused() -> None:
    page = {"MetricDataResults": [_result([], [])], "NextToken": "again"}
    with pytest.raises(UnreadableAnswerError):
        metric_data(_Pages(page, dict(page)), [QUERY], T0, T1)  # type: ignore[arg-type]


def test_a_revision_deployed_while_stopped_is_read_and_priced(world: World) -> None:
    fargate_service(world, "c1", "web", 2)
    world.put(schedule("c1/web"))
    tick(world, NIGHT)
    # Someone deploys a bigger revision while the service is stopped (desired stays 0).
    bigger = world.ecs.register_task_definition(
        family="app",
        containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 1024, "memory": 2048}],
        cpu="1024",
        memory="2048",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
    )["taskDefinition"]["taskDefinitionArn"]
    world.ecs.update_service(cluster="c1", service="web", taskDefinition=bigger)
    log, line = tick(world, LATER)
    assert [c.params["taskDefinition"] for c in log.named("DescribeTaskDefinition")] == [bigger]
    per_hour = price_for("ap-northeast-1").task_hour(TaskSize(1.0, 2.0))
    assert line["EstimatedSavingsUSD"] == pytest.approx(2 * 0.25 * per_hour)
