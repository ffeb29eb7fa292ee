"""What one tick saves: the tasks teiji keeps from running until the next tick, and their price
(pure; ``engine.metrics`` turns them into StoppedTaskHours and EstimatedSavingsUSD).

A service teiji keeps stopped (or reduced) has ``baseline.desired_count`` tasks when people
run it (what they set) and ``desired_after`` now (what the tick leaves it at): the difference
is the tasks not running. The tick counts them for the interval from itself to the next tick,
the way ``teiji simulate`` counts a stopped quarter hour from its start, so the two agree over
any range of whole ticks.

The price of one task-hour is Fargate's list price for the task's size (``TaskSpec``, from its
task definition) in its region and architecture (``engine.pricing``'s dated table), split by how
the service places its tasks (``launch_of``): Fargate on-demand, Fargate Spot (the table's
on-demand price less ``DEFAULT_SPOT_DISCOUNT``: Spot prices move, the figure is an estimate),
or EC2 / external capacity, which teiji counts in hours but does not price (the instances are
paid whether tasks run on them or not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from engine.pricing import CPU_UNITS_PER_VCPU, MIB_PER_GB, PricingError, TaskSize, price_for
from schemas.records import Baseline, TaskSpec

if TYPE_CHECKING:
    from engine.plan import Action

FARGATE_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})


@dataclass(frozen=True, slots=True)
class Launch:
    """The shares of a service's tasks on Fargate on-demand and on Fargate Spot; the rest run
    on EC2 or external capacity. ``known`` is False when DescribeServices says neither a launch
    type nor a capacity provider strategy (nothing is priced then)."""

    fargate: float
    spot: float
    known: bool = True

    @property
    def priced(self) -> bool:
        return self.known and self.fargate + self.spot > 0


def launch_of(raw: Mapping[str, Any]) -> Launch:
    """From DescribeServices' answer: ``launchType``, else the capacity provider strategy by
    weight (its ``base`` is left out: an estimate)."""
    launch_type = raw.get("launchType")
    if launch_type == "FARGATE":
        return Launch(1.0, 0.0)
    if isinstance(launch_type, str) and launch_type:
        return Launch(0.0, 0.0)  # EC2, EXTERNAL
    strategy = raw.get("capacityProviderStrategy") or []
    weights: dict[str, float] = {}
    if isinstance(strategy, list):
        for item in strategy:
            if isinstance(item, Mapping):
                name = str(item.get("capacityProvider", ""))
                weight = item.get("weight", 0)
                if isinstance(weight, int | float) and not isinstance(weight, bool):
                    weights[name] = weights.get(name, 0.0) + max(float(weight), 0.0)
    total = sum(weights.values())
    if not weights:
        return Launch(0.0, 0.0, known=False)
    if total <= 0:  # all weights 0: ECS places by base only; read the providers as equals
        weights = dict.fromkeys(weights, 1.0)
        total = float(len(weights))
    return Launch(weights.get("FARGATE", 0.0) / total, weights.get("FARGATE_SPOT", 0.0) / total)


def spec_from_definition(arn: str, definition: Mapping[str, Any]) -> TaskSpec | None:
    """The task's size from DescribeTaskDefinition; None without a task-level cpu and memory
    (an EC2 task definition may size only its containers; Fargate requires both)."""
    cpu, memory = definition.get("cpu"), definition.get("memory")
    if not cpu or not memory:
        return None
    try:
        size = TaskSize.from_ecs_units(str(cpu), str(memory))
    except PricingError:
        return None
    platform = definition.get("runtimePlatform") or {}
    architecture = str(platform.get("cpuArchitecture", "")) if isinstance(platform, dict) else ""
    try:
        return TaskSpec(
            task_definition=arn,
            cpu=round(size.vcpu * CPU_UNITS_PER_VCPU),
            memory=round(size.memory_gb * MIB_PER_GB),
            architecture="arm64" if architecture.upper() == "ARM64" else "x86_64",
        )
    except ValidationError:  # beyond any task ECS runs (schemas.records.TaskSpec)
        return None


def spec_for(
    baseline: Baseline | None, raw: Mapping[str, Any], read: TaskSpec | None
) -> TaskSpec | None:
    """The size to price: the baseline's when it is of the revision the service runs, else
    the one read this tick, else the baseline's (an older revision's size beats none)."""
    recorded = baseline.task if baseline is not None else None
    if recorded is not None and recorded.task_definition == raw.get("taskDefinition"):
        return recorded
    return read or recorded


def task_definition_to_read(
    state: str, raw: Mapping[str, Any], baseline: Baseline | None, desired: int
) -> str | None:
    """The task definition the tick must read for this service's figures, or None: only for a
    service decided stopped, priced on Fargate, whose usable baseline does not record the size
    of the revision it runs (a stop saves one now, so it must be read before the save)."""
    arn = raw.get("taskDefinition")
    if state != "stopped" or not isinstance(arn, str) or not arn:
        return None
    if not launch_of(raw).priced:
        return None
    if baseline is None and desired == 0:
        return None  # nothing runs and nothing will be saved
    if baseline is not None and baseline.task is not None and baseline.task.task_definition == arn:
        return None
    return arn


@dataclass(frozen=True, slots=True)
class Saving:
    """One service over one tick interval: ``tasks`` not running, and what one of them costs
    an hour (None: not priced, ``unpriced`` says why)."""

    tasks: int
    task_hour: float | None
    unpriced: str | None = None

    def hours(self, interval_h: float) -> float:
        return self.tasks * interval_h

    def usd(self, interval_h: float) -> float:
        return self.tasks * interval_h * (self.task_hour or 0.0)


def task_hour_price(
    spec: TaskSpec | None, launch: Launch, region: str
) -> tuple[float | None, str | None]:
    """USD per task-hour at list price for ``launch``'s Fargate share, or None and why."""
    if not launch.known:
        return None, "the service names no launch type or capacity provider"
    if not launch.priced:
        return None, "EC2 or external capacity: teiji counts the hours, not a price"
    if spec is None:
        return None, "task size unknown (no task-level cpu and memory read)"
    size = TaskSize(vcpu=spec.cpu / CPU_UNITS_PER_VCPU, memory_gb=spec.memory / MIB_PER_GB)
    try:
        price = 0.0
        if launch.fargate:
            price += launch.fargate * price_for(region, spec.architecture).task_hour(size)
        if launch.spot:
            price += launch.spot * price_for(region, spec.architecture, spot=True).task_hour(size)
    except PricingError as exc:
        return None, str(exc)
    return price, None


def saving_of(
    *,
    state: str,
    baseline: Baseline | None,
    desired_after: int,
    spec: TaskSpec | None,
    launch: Launch,
    region: str,
) -> Saving | None:
    """What keeping the service at ``desired_after`` saves until the next tick (None: nothing,
    it is not kept below what people set)."""
    if state != "stopped" or baseline is None:
        return None
    tasks = baseline.desired_count - desired_after
    if tasks <= 0:
        return None
    price, why = task_hour_price(spec, launch, region)
    return Saving(tasks=tasks, task_hour=price, unpriced=why)


def baseline_after(actions: Sequence[Action], before: Baseline | None) -> Baseline | None:
    """The baseline once ``actions`` are done: the one saved or amended, else ``before``."""
    for action in reversed(actions):
        if action.kind in ("save_baseline", "amend_baseline") and action.baseline is not None:
            return action.baseline
    return before


def desired_after(actions: Sequence[Action], observed: int) -> int:
    """The desired count once ``actions`` are done."""
    for action in reversed(actions):
        if action.kind == "update_service":
            return action.desired_count
    return observed
