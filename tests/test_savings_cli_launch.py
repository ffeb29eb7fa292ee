"""``teiji savings`` for a fleet with EC2 and Fargate Spot services: the prediction prices each
service as the tick prices it (EC2 tasks counted in hours only, Spot at the table's discount),
so the two columns agree instead of showing EC2 savings that no metric will ever realise.
(moto answers launchType EC2 for a capacity provider strategy, so Spot is checked on the
pricing alone.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.cli.savings import priced_as_the_tick
from engine.pricing import TaskSize, price_for
from engine.savings import Launch, task_hour_price
from schemas.records import TaskSpec
from tests.test_savings_cli import SMALL_TASK_HOUR, run_days, savings
from tests.test_savings_cli import world as base_world
from tests.world import World, at, schedule

__all__ = ["base_world", "world"]


@pytest.fixture
def world(base_world: World) -> Iterator[World]:
    base_world.ecs.create_service(
        cluster="c1",
        serviceName="batch",
        taskDefinition=base_world.task_definition(),
        desiredCount=2,
        launchType="EC2",
    )
    base_world.put(schedule("c1/batch"))
    yield base_world


def test_ec2_and_spot_services_are_predicted_as_the_tick_prices_them(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Tuesday 24 November 2026 in Tokyo: each stopped 7 hours; web 3 tasks, batch 2.
    run_days(world, at("2026-11-24T00:00:00+09:00"), at("2026-11-25T00:00:00+09:00"))
    code, report, err = savings(
        capsys, endpoint, "--from", "2026-11-24", "--to", "2026-11-24", "--json"
    )
    assert code == 0, err
    realised, predicted = report["realised"], report["predicted"]
    assert realised["stopped_task_hours"] == pytest.approx(7 * 5)
    assert predicted["stopped_task_hours"] == pytest.approx(7 * 5)
    # web on Fargate on-demand; batch on EC2 is not priced.
    expected = 7 * 3 * SMALL_TASK_HOUR
    assert realised["estimated_savings_usd"] == pytest.approx(expected, abs=1e-3)
    assert predicted["estimated_savings_usd"] == pytest.approx(
        realised["estimated_savings_usd"], abs=1e-3
    )


def test_a_launch_is_priced_as_the_tick_prices_it() -> None:
    on_demand = price_for("ap-northeast-1")
    spot = price_for("ap-northeast-1", spot=True)
    size = TaskSize(vcpu=0.25, memory_gb=0.5)
    for launch in (Launch(1.0, 0.0), Launch(0.0, 1.0), Launch(0.5, 0.5), Launch(0.0, 0.0)):
        spec = TaskSpec(task_definition="td:1", cpu=256, memory=512)
        tick_price, _ = task_hour_price(spec, launch, "ap-northeast-1")
        predicted = priced_as_the_tick(on_demand, launch).task_hour(size)
        assert predicted == pytest.approx(tick_price or 0.0)
    assert priced_as_the_tick(on_demand, Launch(0.0, 1.0)).task_hour(size) == pytest.approx(
        spot.task_hour(size)
    )
    assert priced_as_the_tick(on_demand, Launch(0.0, 0.0, known=False)).task_hour(size) == 0
