"""Records teiji keeps for itself in the state table: baselines (the lease: ``engine.lease``).

A *baseline* is the capacity a service had before teiji first stopped it: desiredCount, the
scalable target's MinCapacity/MaxCapacity and SuspendedState, and the identity of the service
(ARN and creation time) so that a baseline is never restored onto a different service that
was later created under the same name.

When a service is deleted and created again under the same name, the earlier service's
baseline still holds the service's slot. Before teiji stops the new service it moves that
baseline aside to an *archived baseline* (see ``BASELINE_ARCHIVE_PK`` and
``Baseline.archive_sort_key``), so the new service's own capacity can be saved. teiji never
deletes archived baselines and never restores them: they stay in the state table for
operators to read (and delete when they no longer need them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)

# The names Application Auto Scaling uses for the three SuspendedState flags.
AWS_SUSPENDED_KEYS = (
    "DynamicScalingInSuspended",
    "DynamicScalingOutSuspended",
    "ScheduledScalingSuspended",
)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SuspendedState(_Record):
    """Application Auto Scaling's SuspendedState with every flag explicit (missing = false)."""

    dynamic_in: bool = False
    dynamic_out: bool = False
    scheduled: bool = False

    @classmethod
    def from_aws(cls, value: Mapping[str, Any] | None) -> SuspendedState:
        """DescribeScalableTargets may omit the whole map or any flag: both mean false."""
        value = value or {}
        return cls(
            dynamic_in=bool(value.get("DynamicScalingInSuspended", False)),
            dynamic_out=bool(value.get("DynamicScalingOutSuspended", False)),
            scheduled=bool(value.get("ScheduledScalingSuspended", False)),
        )

    def to_aws(self) -> dict[str, bool]:
        """All three flags, always: a partial map is not merged everywhere (moto replaces it)."""
        return {
            "DynamicScalingInSuspended": self.dynamic_in,
            "DynamicScalingOutSuspended": self.dynamic_out,
            "ScheduledScalingSuspended": self.scheduled,
        }

    @property
    def all_suspended(self) -> bool:
        return self.dynamic_in and self.dynamic_out and self.scheduled

    @property
    def none_suspended(self) -> bool:
        return not (self.dynamic_in or self.dynamic_out or self.scheduled)


# The largest task size and task definition ARN a TaskSpec holds (see TaskSpec).
TASK_CPU_MAX_UNITS = 192 * 1024
TASK_MEMORY_MAX_MIB = 24 * 1024 * 1024
TASK_DEFINITION_MAX_CHARS = 2048


class TaskSpec(_Record):
    """What one task of the service reserves, read from its task definition when teiji saved
    the baseline: CPU units (1024 = 1 vCPU), memory in MiB and the CPU architecture. Fargate
    bills these, which is what the savings figures price. ``task_definition`` is the revision
    it was read from (an ARN with a revision never changes): when the service runs another
    revision, the tick reads that one instead. The bounds are ECS's own (a task-level size
    of at most 192 vCPU; an ARN of a family of at most 255 characters), with room to spare: a
    size beyond them was never read from a task definition."""

    task_definition: str = Field(min_length=1, max_length=TASK_DEFINITION_MAX_CHARS)
    cpu: int = Field(gt=0, le=TASK_CPU_MAX_UNITS)
    memory: int = Field(gt=0, le=TASK_MEMORY_MAX_MIB)
    architecture: Literal["x86_64", "arm64"] = "x86_64"


# The state table's partition of archived baselines (the baselines themselves are "baseline").
BASELINE_ARCHIVE_PK = "baseline-archive"

ALL_SUSPENDED = SuspendedState(dynamic_in=True, dynamic_out=True, scheduled=True)
NONE_SUSPENDED = SuspendedState()


class Baseline(_Record):
    """A service's capacity from before teiji's first stop; restored exactly on start.

    ``min_capacity``/``max_capacity``/``suspended`` are None when the service had no scalable
    target at the time. What people change while the service is stopped (a hand scale, a
    target registered, re-registered or removed) becomes the new original: the baseline is
    amended (``amended_at``, a new ``version``), never left to restore what they replaced.
    ``version`` is unique per write so a delete can be made conditional on
    the very record that was read (never on a newer one written meanwhile).
    """

    key: str
    desired_count: int = Field(ge=0)
    min_capacity: int | None = Field(default=None, ge=0)
    max_capacity: int | None = Field(default=None, ge=0)
    suspended: SuspendedState | None = None
    saved_at: datetime
    service_arn: str | None = None
    service_created_at: datetime | None = None
    decided_by: str
    version: str
    # When what people set while the service was stopped was folded in (None: never).
    amended_at: datetime | None = None
    # The task's size for the savings figures (None: saved before teiji recorded it, or the
    # task definition gives no task-level size, or the stored one is not a size: see _size).
    task: TaskSpec | None = None

    @field_validator("task", mode="wrap")
    @classmethod
    def _size(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> TaskSpec | None:
        """A ``task`` that is not a size (edited by hand, written by another tool) is read as
        no size: it only prices the savings figures, which then read the task definition, and
        must never make the capacity to restore unreadable."""
        try:
            spec: TaskSpec | None = handler(value)
        except ValidationError:
            return None
        return spec

    @field_validator("saved_at", "service_created_at", "amended_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("must carry a UTC offset")
        return value

    @property
    def has_target(self) -> bool:
        return self.min_capacity is not None and self.max_capacity is not None

    @property
    def archive_sort_key(self) -> str:
        """``<service key>#<saved_at in UTC, ISO 8601>``: where this baseline is archived.

        One baseline always maps to the same archive item, so archiving it twice (after a
        crash half way) finds its own earlier copy instead of writing a second one.
        """
        return f"{self.key}#{self.saved_at.astimezone(UTC).isoformat()}"


# The state table's partition of target-check records (``sk`` is the service key).
TARGET_CHECK_PK = "targets"


class TargetCheck(_Record):
    """A service's last load-balancer target check: what it depended on and how it went.

    ``fingerprint`` digests what the check's answer depends on (the primary deployment, the
    task sets, the running and desired counts, the load balancers); while it is unchanged, the
    last result was ok and the service's check interval has not come round (see
    ``engine.converge.target_check_due``), the tick does not check again.

    ``targets`` are what the last full check found right (per target group ARN, ``id:port``),
    and ``full_at`` when that full check was (epoch seconds; a record without it was written by
    a full check at ``checked_at``). A re-check that only finds those targets healthy in their
    groups (one DescribeTargetHealth per group) renews ``checked_at`` and keeps both.
    """

    key: str
    fingerprint: str = Field(min_length=1)
    checked_at: int = Field(ge=0)
    ok: bool
    targets: dict[str, list[str]] = Field(default_factory=dict)
    full_at: int | None = Field(default=None, ge=0)

    @property
    def last_full(self) -> int:
        return self.checked_at if self.full_at is None else self.full_at


# The state table's partition of saved listener rules (``sk``: see ``SavedRule.sort_key``).
WAKE_RULE_PK = "wake-rule"


class SavedRule(_Record):
    """A listener rule's actions exactly as people left them, saved before teiji pointed the
    rule at the wake target group while the service sleeps; restored exactly on start.

    ``conditions`` (host, path...) are kept so the wake function can tell which service a
    request was for. A person's edit while the service sleeps is folded in (``amended_at``,
    a new ``version``), as for baselines.
    """

    key: str
    rule_arn: str = Field(min_length=1, max_length=2048)
    listener_arn: str = Field(min_length=1, max_length=2048)
    actions: list[dict[str, Any]] = Field(min_length=1)
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    # Which of the rules matching a request the load balancer takes: the lowest number, the
    # listener's default last ("default").
    priority: str | None = Field(default=None, max_length=16)
    # The listener's port: a request says which it came through (X-Forwarded-Port).
    port: int | None = Field(default=None, ge=1, le=65535)
    saved_at: datetime
    version: str
    amended_at: datetime | None = None

    @field_validator("saved_at", "amended_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("must carry a UTC offset")
        return value

    @property
    def sort_key(self) -> str:
        """``<service key>#<rule ARN>``: one record per rule per service."""
        return f"{self.key}#{self.rule_arn}"
