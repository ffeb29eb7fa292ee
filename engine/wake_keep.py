"""Keeping a wake awake while people use the service (pure): the extension rule.

Once a woken service's targets are healthy, its listener rules forward to it again and the
wake function no longer sees its requests. The keep-awake run (``engine.wake_keep_run``, the
wake function on a schedule) reads what the load balancer counted instead: CloudWatch's
``AWS/ApplicationELB`` ``RequestCount`` per (load balancer, target group), one-minute sums.
This module decides, from those sums, what the wake override's end becomes:

- Only the wake function's own override is touched: id ``wake`` and ``created_by`` ``wake``.
  A person's override of the service (any other id or author) is never changed.
- Only while it is active (begun, not ended): an ended wake stays ended, and the next tick
  stops the service as it would without this run.
- The latest request is the end of the latest minute with a count above zero (the load
  balancer only says in which minute; its end is the side that keeps people's service up),
  never later than now (a clock ahead of ours) and never before the wake began (that minute's
  requests are older than the wake and were not why it runs).
- The end becomes that instant plus ``keep_for``, at most ``cap`` (``TEIJI_MAX_OVERRIDE``)
  after the wake's start, as the tick checks. It is never shortened (a person's ``override
  extend`` of the wake stands), and it is written only when that adds at least
  ``extend_step(keep_for)`` or reaches the cap: a steady stream of requests writes about once
  per step, not on every run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from engine.wake_override import WAKE_CREATOR, WAKE_ID, extend_step
from schemas.documents import Override

NAMESPACE = "AWS/ApplicationELB"
METRIC = "RequestCount"
PERIOD_S = 60
MINUTE = timedelta(seconds=PERIOD_S)

# arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>, and the
# same with targetgroup/<name>/<id>: the metric's dimensions are the part after the account.
_HEAD = r"^arn:[a-z-]+:elasticloadbalancing:[^:]+:\d{12}:"
_BALANCER = re.compile(_HEAD + r"loadbalancer/(app/[^/]+/[^/]+)$")
_GROUP = re.compile(_HEAD + r"(targetgroup/[^/]+/[^/]+)$")

KeepKind = Literal["extend", "none", "not-ours", "not-active", "no-request"]


def is_ours(override: Override) -> bool:
    """The wake function's own override of a service: the only one this run may change."""
    return override.id == WAKE_ID and override.created_by == WAKE_CREATOR


def wake_start(override: Override) -> datetime:
    """Where the wake's length is measured from (as ``engine.overrides.override_start``)."""
    return override.start or override.created_at or override.until


def dimensions(balancer_arn: str, group_arn: str) -> dict[str, str] | None:
    """``{"LoadBalancer": "app/<name>/<id>", "TargetGroup": "targetgroup/<name>/<id>"}`` for
    an Application Load Balancer and a target group, None when either is not such an ARN."""
    balancer, group = _BALANCER.match(balancer_arn), _GROUP.match(group_arn)
    if balancer is None or group is None:
        return None
    return {"LoadBalancer": balancer.group(1), "TargetGroup": group.group(1)}


def latest_request(
    counts: Iterable[Mapping[datetime, float]], *, since: datetime, now: datetime
) -> datetime | None:
    """The instant of the latest request the sums show (see the module): the end of the
    latest minute counted above zero, at most ``now``; None when none is at or after
    ``since`` (the wake's start)."""
    latest: datetime | None = None
    for series in counts:
        for minute, count in series.items():
            if count <= 0:
                continue
            seen = min(minute + MINUTE, now)
            if seen < since:
                continue
            if latest is None or seen > latest:
                latest = seen
    return latest


@dataclass(frozen=True)
class KeepPlan:
    """What the run writes for one wake override: ``override`` the extended one (extend
    only), ``latest`` the request it is measured from."""

    kind: KeepKind
    override: Override | None = None
    latest: datetime | None = None
    capped: bool = False


def plan_keep(
    override: Override,
    latest: datetime | None,
    *,
    now: datetime,
    keep_for: timedelta,
    cap: timedelta,
) -> KeepPlan:
    """The override's new end given the latest request (see the module)."""
    if not is_ours(override):
        return KeepPlan("not-ours")
    if not override.active_at(now):
        return KeepPlan("not-active")
    start = wake_start(override)
    if latest is None:
        return KeepPlan("no-request")
    latest = min(latest, now)
    if latest < start:
        return KeepPlan("no-request")
    wanted, limit = latest + keep_for, start + cap
    until, capped = (limit, True) if wanted >= limit else (wanted, False)
    gained = until - override.until
    if gained <= timedelta(0) or (gained < extend_step(keep_for) and not capped):
        return KeepPlan("none", latest=latest)
    extended = override.model_copy(update={"until": until.astimezone(override.until.tzinfo)})
    return KeepPlan("extend", extended, latest, capped)


def window(
    overrides: Iterable[Override], *, now: datetime, keep_for: Mapping[str, timedelta]
) -> tuple[datetime, datetime] | None:
    """The one time range a GetMetricData call asks for: from the earliest minute whose
    requests could still extend one of ``overrides`` (after its start, and no earlier than
    its end less its ``keep_for``, by service key) to the minute after now, on whole minutes
    (as CloudWatch rounds them); None when no request could extend any of them."""
    starts = [max(wake_start(o), o.until - keep_for[o.key]) for o in overrides if o.key in keep_for]
    if not starts:
        return None
    first = _floor(min(starts))
    end = _floor(now) + MINUTE
    return (first, end) if first < end else None


def _floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)
