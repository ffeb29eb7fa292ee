"""Fargate prices from the built-in table, flags, Spot, and task sizes in ECS units."""

from __future__ import annotations

import json
from datetime import date
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.pricing import (
    DEFAULT_TASK_SIZE,
    PricingError,
    TaskSize,
    builtin_table,
    parse_price_table,
    price_for,
)


def test_builtin_table_is_dated_sourced_and_covers_the_required_regions() -> None:
    raw = json.loads(
        resources.files("engine").joinpath("data/fargate_prices.json").read_text("utf-8")
    )
    date.fromisoformat(raw["as_of"])  # a real date, not free text
    assert "aws.amazon.com/fargate/pricing" in raw["source"]
    table = builtin_table()
    for region in ("ap-northeast-1", "us-east-1"):
        for arch in ("x86_64", "arm64"):
            vcpu, gb = table.rates[region][arch]
            assert 0 < gb < vcpu < 1
        # Graviton is cheaper than x86 in every region.
        assert table.rates[region]["arm64"] < table.rates[region]["x86_64"]


def test_tokyo_x86_list_prices() -> None:
    prices = price_for("ap-northeast-1")
    assert (prices.vcpu_hour, prices.gb_hour) == (0.05056, 0.00553)
    assert prices.source == "built-in table"
    assert prices.as_of == builtin_table().as_of
    # 0.25 vCPU / 0.5 GB: 0.25 * 0.05056 + 0.5 * 0.00553 = 0.015405 USD per task-hour.
    assert prices.task_hour(DEFAULT_TASK_SIZE) == pytest.approx(0.015405, abs=1e-12)


def test_us_east_arm_prices() -> None:
    prices = price_for("us-east-1", "arm64")
    assert (prices.vcpu_hour, prices.gb_hour) == (0.03238, 0.00356)


def test_spot_takes_the_discount_off_both_rates() -> None:
    prices = price_for("us-east-1", spot=True, spot_discount=0.7)
    assert prices.vcpu_hour == pytest.approx(0.04048 * 0.3)
    assert prices.gb_hour == pytest.approx(0.004445 * 0.3)
    assert "Spot (70% off)" in prices.describe()


def test_unknown_region_lists_the_known_ones() -> None:
    with pytest.raises(PricingError) as err:
        price_for("eu-west-3")
    message = str(err.value)
    assert "eu-west-3" in message
    assert "ap-northeast-1, us-east-1" in message
    assert "--vcpu-price" in message


def test_unknown_region_is_fine_when_both_prices_are_given() -> None:
    prices = price_for("eu-west-3", vcpu_price=0.05, gb_price=0.006)
    assert (prices.vcpu_hour, prices.gb_hour) == (0.05, 0.006)
    assert prices.source == "--vcpu-price/--gb-price"
    assert prices.as_of is None


def test_one_flag_replaces_one_rate_of_a_known_region() -> None:
    prices = price_for("ap-northeast-1", vcpu_price=0.06)
    assert (prices.vcpu_hour, prices.gb_hour) == (0.06, 0.00553)
    assert prices.source == "built-in table and flags"


def test_one_flag_is_not_enough_for_an_unknown_region() -> None:
    with pytest.raises(PricingError):
        price_for("eu-west-3", vcpu_price=0.06)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"spot_discount": 1.0}, "spot discount"),
        ({"spot_discount": -0.1}, "spot discount"),
        ({"vcpu_price": -1.0}, "--vcpu-price"),
        ({"architecture": "mips"}, "x86_64, arm64"),
    ],
)
def test_bad_flags_are_named(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(PricingError, match=words):
        price_for("ap-northeast-1", **kwargs)  # type: ignore[arg-type]


def test_a_table_can_be_supplied() -> None:
    table = parse_price_table(
        {
            "as_of": "2030-01-01",
            "source": "test",
            "regions": {"xx-test-1": {"x86_64": {"vcpu_hour": 1, "gb_hour": 0.5}}},
        }
    )
    prices = price_for("xx-test-1", table=table)
    assert prices.task_hour(TaskSize(2, 4)) == 4.0
    assert prices.as_of == "2030-01-01"


@pytest.mark.parametrize(
    ("cpu", "memory", "vcpu", "gb"),
    [
        (256, 512, 0.25, 0.5),
        ("256", "512", 0.25, 0.5),
        ("1024", "3072", 1.0, 3.0),
        ("1 vCPU", "2 GB", 1.0, 2.0),
        ("0.5 vcpu", "1gb", 0.5, 1.0),
    ],
)
def test_task_size_from_ecs_units(
    cpu: int | str, memory: int | str, vcpu: float, gb: float
) -> None:
    assert TaskSize.from_ecs_units(cpu, memory) == TaskSize(vcpu, gb)


@pytest.mark.parametrize(("cpu", "memory"), [("lots", "512"), ("256", "-1"), (0, 512)])
def test_bad_task_sizes_are_refused(cpu: int | str, memory: int | str) -> None:
    with pytest.raises(PricingError):
        TaskSize.from_ecs_units(cpu, memory)


@given(
    vcpu=st.floats(min_value=0.0, max_value=1.0),
    gb=st.floats(min_value=0.0, max_value=1.0),
    discount=st.floats(min_value=0.0, max_value=0.99),
)
def test_spot_is_never_dearer_than_on_demand(vcpu: float, gb: float, discount: float) -> None:
    size = TaskSize(4, 16)
    on_demand = price_for("eu-x", vcpu_price=vcpu, gb_price=gb)
    spot = price_for("eu-x", vcpu_price=vcpu, gb_price=gb, spot=True, spot_discount=discount)
    assert spot.task_hour(size) <= on_demand.task_hour(size)
