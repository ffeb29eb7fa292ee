"""A saved baseline whose ``task`` (the size the savings figures price) was edited by hand or
written by some other tool: the size is only for the figures, so a wrong one is dropped (the
size is read from the task definition instead) and never blocks the exact restore."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.savings import spec_from_definition
from tests.test_savings import LATER, MORNING, NIGHT, SMALL_TASK_HOUR, fargate_service, tick, world
from tests.world import World, schedule

__all__ = ["world"]

# The size as teiji saved it, of the revision the service runs (filled in by the test).
GOOD = {"task_definition": {"S": "<saved>"}, "cpu": {"N": "256"}, "memory": {"N": "512"}}

HOSTILE: dict[str, Any] = {
    "negative cpu": {"M": {**GOOD, "cpu": {"N": "-1"}}},
    "zero memory": {"M": {**GOOD, "memory": {"N": "0"}}},
    "cpu as text": {"M": {**GOOD, "cpu": {"S": "lots"}}},
    "a 10 KB string": {"S": "x" * 10_000},
    "a number": {"N": "7"},
    "no memory": {"M": {k: v for k, v in GOOD.items() if k != "memory"}},
    "an unknown field": {"M": {**GOOD, "gpu": {"N": "1"}}},
    "an architecture nobody has": {"M": {**GOOD, "architecture": {"S": "sparc"}}},
    "a size no task has": {"M": {**GOOD, "cpu": {"N": "1000000000000"}}},
    "a memory no task has": {"M": {**GOOD, "memory": {"N": "1000000000000"}}},
    "a 10 KB task definition": {"M": {**GOOD, "task_definition": {"S": "a" * 10_000}}},
}


@pytest.mark.parametrize("task", HOSTILE.values(), ids=list(HOSTILE))
def test_a_hand_edited_task_size_never_blocks_the_exact_restore(world: World, task: Any) -> None:
    fargate_service(world, "c1", "web", 3)
    world.put(schedule("c1/web"))
    tick(world, NIGHT)
    table = world.settings.state_table
    key = {"pk": {"S": "baseline"}, "sk": {"S": "c1/web"}}
    item = world.dynamodb.get_item(TableName=table, Key=key)["Item"]
    saved = item["task"]["M"]["task_definition"]
    item["task"] = json.loads(json.dumps(task).replace('"<saved>"', json.dumps(saved["S"])))
    world.dynamodb.put_item(TableName=table, Item=item)

    # While stopped: priced at the task definition's real size, never at the edited one.
    _, line = tick(world, LATER)
    assert line["Failed"] == 0
    assert line["StoppedTaskHours"] == pytest.approx(0.75)
    assert line["EstimatedSavingsUSD"] == pytest.approx(0.75 * SMALL_TASK_HOUR)

    # The morning: restored exactly.
    _, line = tick(world, MORNING)
    assert line["Failed"] == 0
    (svc,) = world.ecs.describe_services(cluster="c1", services=["web"])["services"]
    assert svc["desiredCount"] == 3


def test_a_task_definition_beyond_any_task_is_no_size() -> None:
    arn = "arn:aws:ecs:ap-northeast-1:123456789012:task-definition/x:1"
    assert spec_from_definition(arn, {"cpu": "1000000000", "memory": "512"}) is None
    assert spec_from_definition(arn, {"cpu": "256", "memory": "1000000000000"}) is None
    assert spec_from_definition("a" * 5000, {"cpu": "256", "memory": "512"}) is None
    assert spec_from_definition(arn, {"cpu": "256", "memory": "512"}) is not None


@pytest.mark.parametrize("size", ["NaN", "inf", "1e400", "Infinity"])
def test_a_task_definition_size_that_is_no_number_costs_the_figure_never_the_tick(
    world: World, size: str
) -> None:
    world.create_cluster("c1")
    arn = world.ecs.register_task_definition(
        family="odd",
        containerDefinitions=[{"name": "app", "image": "nginx", "memory": 512}],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu=size,
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    world.ecs.create_service(
        cluster="c1", serviceName="web", taskDefinition=arn, desiredCount=3, launchType="FARGATE"
    )
    world.put(schedule("c1/web"))
    _, line = tick(world, NIGHT)
    assert line["Failed"] == 0
    (svc,) = world.ecs.describe_services(cluster="c1", services=["web"])["services"]
    assert svc["desiredCount"] == 0  # stopped all the same
    assert line["StoppedTaskHours"] == pytest.approx(0.75)
    assert line["EstimatedSavingsUSD"] == 0  # unpriced, not NaN


@pytest.mark.parametrize("size", ["NaN", "nan", "inf", "-inf", "1e400", "Infinity"])
def test_a_size_that_is_no_finite_number_is_no_size(size: str) -> None:
    arn = "arn:aws:ecs:ap-northeast-1:123456789012:task-definition/x:1"
    assert spec_from_definition(arn, {"cpu": size, "memory": "512"}) is None
    assert spec_from_definition(arn, {"cpu": "256", "memory": size}) is None
