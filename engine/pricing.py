"""Fargate prices and task sizes: what one task costs per hour, from a small dated table.

The table (``engine/data/fargate_prices.json``) holds Linux on-demand list prices per vCPU-hour
and per GB-hour for a few regions and both CPU architectures, with the date they were taken
and where from. Prices given on the command line replace the table's, so an unknown region or
a price change never blocks an estimate.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

Architecture = Literal["x86_64", "arm64"]
ARCHITECTURES: tuple[Architecture, ...] = ("x86_64", "arm64")
DEFAULT_REGION = "ap-northeast-1"
DEFAULT_SPOT_DISCOUNT = 0.7
CPU_UNITS_PER_VCPU = 1024
MIB_PER_GB = 1024


class PricingError(ValueError):
    """A price cannot be found or a flag is out of range; the message says what is allowed."""


@dataclass(frozen=True, slots=True)
class TaskSize:
    """The resources one task reserves, which is what Fargate bills (not what it uses)."""

    vcpu: float
    memory_gb: float

    @classmethod
    def from_ecs_units(cls, cpu: int | str, memory: int | str) -> TaskSize:
        """ECS units: cpu in CPU units (1024 = 1 vCPU), memory in MiB (1024 = 1 GB).

        Also accepts the task definition spellings ``"1 vCPU"`` and ``"2 GB"``.
        """
        return cls(
            vcpu=_cpu_units(cpu) / CPU_UNITS_PER_VCPU, memory_gb=_memory_mib(memory) / MIB_PER_GB
        )

    def describe(self) -> str:
        return f"{_trim(self.vcpu)} vCPU / {_trim(self.memory_gb)} GB"


DEFAULT_TASK_SIZE = TaskSize(vcpu=0.25, memory_gb=0.5)


@dataclass(frozen=True, slots=True)
class Prices:
    """Price of one vCPU-hour and one GB-hour for one region and architecture, as used."""

    region: str
    architecture: Architecture
    vcpu_hour: float
    gb_hour: float
    spot: bool
    spot_discount: float
    source: str  # "built-in table" or "--vcpu-price/--gb-price"
    as_of: str | None  # the table's date; None when every price came from flags
    currency: str = "USD"

    def task_hour(self, size: TaskSize) -> float:
        """What one task of ``size`` costs per hour."""
        return size.vcpu * self.vcpu_hour + size.memory_gb * self.gb_hour

    def describe(self) -> str:
        """One line for people: which prices, from where, as of when."""
        kind = (
            f"Fargate Spot ({_trim(self.spot_discount * 100)}% off)" if self.spot else "on-demand"
        )
        dated = f" as of {self.as_of}" if self.as_of else ""
        return (
            f"{self.region} {self.architecture} {kind}: {self.vcpu_hour:g} {self.currency}/vCPU-h, "
            f"{self.gb_hour:g} {self.currency}/GB-h ({self.source}{dated})"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "region": self.region,
            "architecture": self.architecture,
            "vcpu_hour": self.vcpu_hour,
            "gb_hour": self.gb_hour,
            "spot": self.spot,
            "spot_discount": self.spot_discount if self.spot else None,
            "source": self.source,
            "as_of": self.as_of,
            "currency": self.currency,
        }


@dataclass(frozen=True, slots=True)
class PriceTable:
    as_of: str
    currency: str
    source: str
    # region -> architecture -> (vcpu_hour, gb_hour)
    rates: dict[str, dict[str, tuple[float, float]]]

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted(self.rates))


def parse_price_table(data: dict[str, Any]) -> PriceTable:
    rates: dict[str, dict[str, tuple[float, float]]] = {}
    for region, by_arch in data["regions"].items():
        rates[region] = {
            arch: (float(rate["vcpu_hour"]), float(rate["gb_hour"]))
            for arch, rate in by_arch.items()
        }
    return PriceTable(
        as_of=str(data["as_of"]),
        currency=str(data.get("currency", "USD")),
        source=str(data["source"]),
        rates=rates,
    )


@lru_cache(maxsize=1)
def builtin_table() -> PriceTable:
    """The table shipped with teiji (read once)."""
    text = resources.files("engine").joinpath("data/fargate_prices.json").read_text("utf-8")
    return parse_price_table(json.loads(text))


def price_for(
    region: str,
    architecture: Architecture = "x86_64",
    *,
    spot: bool = False,
    spot_discount: float = DEFAULT_SPOT_DISCOUNT,
    vcpu_price: float | None = None,
    gb_price: float | None = None,
    table: PriceTable | None = None,
) -> Prices:
    """The prices to use for one region.

    ``vcpu_price``/``gb_price`` replace the table's on-demand rates; ``spot`` then takes
    ``spot_discount`` (0.7 = 70% off) from whichever rates apply. Raises PricingError for a
    region missing from the table when a rate is not given by flag.
    """
    if architecture not in ARCHITECTURES:
        raise PricingError(
            f"unknown architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}"
        )
    if not 0 <= spot_discount < 1:
        raise PricingError(
            f"spot discount {spot_discount:g} is out of range; give a fraction from 0 to below 1, "
            "for example 0.7 for 70% off"
        )
    for name, value in (("--vcpu-price", vcpu_price), ("--gb-price", gb_price)):
        if value is not None and not math.isfinite(value):
            raise PricingError(
                f"{name} {value:g} is not a price; give a price per hour, such as 0.05"
            )
        if value is not None and value < 0:
            raise PricingError(f"{name} {value:g} is negative; give a price per hour, such as 0.05")
    table = table or builtin_table()
    from_table = table.rates.get(region, {}).get(architecture)
    if from_table is None and (vcpu_price is None or gb_price is None):
        raise PricingError(
            f"no built-in Fargate price for region {region!r} ({architecture}); known regions: "
            f"{', '.join(table.regions)}; or give both --vcpu-price and --gb-price"
        )
    vcpu_hour = vcpu_price if vcpu_price is not None else from_table[0]  # type: ignore[index]
    gb_hour = gb_price if gb_price is not None else from_table[1]  # type: ignore[index]
    all_flags = vcpu_price is not None and gb_price is not None
    some_flags = vcpu_price is not None or gb_price is not None
    if spot:
        vcpu_hour *= 1 - spot_discount
        gb_hour *= 1 - spot_discount
    return Prices(
        region=region,
        architecture=architecture,
        vcpu_hour=vcpu_hour,
        gb_hour=gb_hour,
        spot=spot,
        spot_discount=spot_discount,
        source=(
            "--vcpu-price/--gb-price"
            if all_flags
            else "built-in table and flags"
            if some_flags
            else "built-in table"
        ),
        as_of=None if all_flags else table.as_of,
        currency=table.currency,
    )


_CPU_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*vcpu\s*$", re.IGNORECASE | re.ASCII)
_MEMORY_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*gb\s*$", re.IGNORECASE | re.ASCII)


def _cpu_units(value: int | str) -> float:
    if isinstance(value, int):
        units = float(value)
    else:
        match = _CPU_TEXT.match(value)
        units = float(match.group(1)) * CPU_UNITS_PER_VCPU if match else _number(value, "cpu")
    if not math.isfinite(units) or units <= 0:
        raise PricingError(f"cpu {value!r} must be positive (CPU units, 1024 = 1 vCPU)")
    return units


def _memory_mib(value: int | str) -> float:
    if isinstance(value, int):
        mib = float(value)
    else:
        match = _MEMORY_TEXT.match(value)
        mib = float(match.group(1)) * MIB_PER_GB if match else _number(value, "memory")
    if not math.isfinite(mib) or mib <= 0:
        raise PricingError(f"memory {value!r} must be positive (MiB, 1024 = 1 GB)")
    return mib


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        unit = (
            "CPU units such as 256, or '1 vCPU'" if what == "cpu" else "MiB such as 512, or '2 GB'"
        )
        raise PricingError(f"{what} {text!r} is not a size; write it in {unit}") from None


def _trim(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")
