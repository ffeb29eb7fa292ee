"""Observe managed services in as few calls as the APIs allow.

- DescribeServices: 10 services per call, grouped by (account, region, cluster).
- DescribeScalableTargets: 50 resource ids per call, grouped by (account, region).
Baselines are read by the tick from the state table (BatchGetItem, 100 keys per call).

A failing call (an unknown cluster, an account whose role cannot be assumed, access denied)
fails exactly the services that call covered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from engine.aws import autoscaling, ecs
from engine.aws.batching import chunks
from engine.aws.errors import AWS_ERRORS, error_text
from engine.model import Observation, ScalableTarget, resource_id
from schemas.documents import Schedule
from schemas.keys import ServiceKey

if TYPE_CHECKING:
    from engine.aws.clients import Clients


@dataclass
class ObserveResult:
    observations: dict[str, Observation] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def merge(self, other: ObserveResult) -> None:
        self.observations.update(other.observations)
        self.failures.update(other.failures)


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def observation_from(
    schedule: Schedule, entry: Mapping[str, Any], target: ScalableTarget | None
) -> Observation:
    return Observation(
        key=schedule.key,
        cluster=schedule.cluster,
        service=schedule.service_name,
        account=schedule.account,
        region=schedule.region,
        desired_count=int(entry.get("desiredCount", 0)),
        running_count=int(entry.get("runningCount", 0)),
        service_arn=entry.get("serviceArn"),
        created_at=_aware(entry.get("createdAt")),
        target=target,
        raw=entry,
    )


Scope = tuple[str | None, str | None]  # (account, region) as schedules write them; None: own


def by_scope(schedules: Iterable[Schedule]) -> dict[Scope, list[Schedule]]:
    """Schedules grouped by (account, region), groups and members in key order."""
    groups: dict[Scope, list[Schedule]] = {}
    for schedule in sorted(schedules, key=lambda s: s.key):
        groups.setdefault((schedule.account, schedule.region), []).append(schedule)
    return dict(sorted(groups.items(), key=lambda item: (item[0][0] or "", item[0][1] or "")))


class ScopeObserver:
    """The reads of one (account, region), as independent units that may run concurrently.

    Each unit is one call: DescribeServices for up to 10 services of one cluster, or
    DescribeScalableTargets for up to 50 services (their resource ids come from the
    schedules, so these need not wait for DescribeServices). A failing call fails exactly the
    services it covered. ``result()`` puts the answers together once every unit has run.
    """

    def __init__(
        self,
        clients: Clients,
        scope: Scope,
        schedules: Iterable[Schedule],
        *,
        described: Mapping[str, Mapping[str, Any]] | None = None,
        early_targets: EarlyTargets | None = None,
    ) -> None:
        """``described``: DescribeServices answers the tick read already (opt-in by tag
        describes every service of an allowed cluster), by key; ``early_targets``: the
        scalable targets read beside them. What was read already is not asked again."""
        self.clients = clients
        self.account, self.region = scope
        self.schedules = list(schedules)
        self._lock = threading.Lock()
        known = described or {}
        self._entries: dict[str, Mapping[str, Any]] = {
            s.key: known[s.key] for s in self.schedules if s.key in known
        }
        self._targets: dict[str, ScalableTarget] = {}
        self._failures: dict[str, str] = {}
        self._target_failures: dict[str, str] = {}
        self._early_ids: set[str] = set()
        if early_targets is not None and early_targets.error is None:
            self._early_ids = set(early_targets.asked)
            self._targets.update(early_targets.found)

    def units(self) -> list[Callable[[], None]]:
        by_cluster: dict[str, list[Schedule]] = {}
        for schedule in self.schedules:
            if schedule.key not in self._entries:
                by_cluster.setdefault(schedule.cluster, []).append(schedule)
        unread = [
            s
            for s in self.schedules
            if resource_id(s.cluster, s.service_name) not in self._early_ids
        ]
        units: list[Callable[[], None]] = [
            partial(self._read_targets, batch)
            for batch in chunks(unread, autoscaling.DESCRIBE_TARGETS_BATCH)
        ]
        for cluster in sorted(by_cluster):
            units.extend(
                partial(self._describe, cluster, batch)
                for batch in chunks(by_cluster[cluster], ecs.DESCRIBE_SERVICES_BATCH)
            )
        return units

    def _describe(self, cluster: str, batch: Sequence[Schedule]) -> None:
        try:
            client = self.clients.ecs(self.account, self.region)
            # With their tags: teiji:protected=true keeps teiji's hands off (engine.optin).
            names = [s.service_name for s in batch]
            lookup = ecs.describe_services(client, cluster, names, tags=True)
        except AWS_ERRORS as exc:
            message = f"cannot describe the service: {error_text(exc)}"
            with self._lock:
                self._failures.update({schedule.key: message for schedule in batch})
            return
        with self._lock:
            for schedule in batch:
                name = schedule.service_name
                if name in lookup.found:
                    self._entries[schedule.key] = lookup.found[name]
                else:
                    reason = lookup.missing.get(name, "not found")
                    self._failures[schedule.key] = (
                        f"service {name} does not exist in cluster {cluster} ({reason})"
                    )

    def _read_targets(self, batch: Sequence[Schedule]) -> None:
        ids = [resource_id(s.cluster, s.service_name) for s in batch]
        try:
            client = self.clients.autoscaling(self.account, self.region)
            targets = autoscaling.describe_scalable_targets(client, ids)
        except AWS_ERRORS as exc:
            message = f"cannot read the scalable target: {error_text(exc)}"
            with self._lock:
                self._target_failures.update({schedule.key: message for schedule in batch})
            return
        with self._lock:
            self._targets.update(targets)

    def result(self) -> ObserveResult:
        result = ObserveResult()
        for schedule in self.schedules:
            key = schedule.key
            if key in self._failures:
                result.failures[key] = self._failures[key]
            elif key in self._target_failures:
                result.failures[key] = self._target_failures[key]
            elif key in self._entries:
                target = self._targets.get(resource_id(schedule.cluster, schedule.service_name))
                result.observations[key] = observation_from(schedule, self._entries[key], target)
        return result


@dataclass
class EarlyTargets:
    """The scalable targets of some resource ids of one (account, region), read before the
    tick knew which services it manages (beside opt-in by tag's describes): every id in
    ``asked`` without a target in ``found`` has none. ``error``: the read failed, so none of
    it counts and the tick reads them itself."""

    asked: set[str] = field(default_factory=set)
    found: dict[str, ScalableTarget] = field(default_factory=dict)
    error: str | None = None

    def read(self, clients: Clients, scope: Scope, ids: Sequence[str]) -> None:
        """One DescribeScalableTargets call's worth (50 ids); a failure marks the whole."""
        account, region = scope
        try:
            client = clients.autoscaling(account, region)
            targets = autoscaling.describe_scalable_targets(client, ids)
        except AWS_ERRORS as exc:
            self.error = self.error or error_text(exc)
            return
        self.asked.update(ids)
        self.found.update(targets)


def fail_shared_services(result: ObserveResult, keys: Iterable[str] = ()) -> None:
    """Fail every key that names an ECS service another key also names.

    Two documents for one service (``c1/web`` and the same with teiji's own account or region
    spelled out) would flip it between their decisions every tick and leave a baseline under
    the other key; the service is left alone until one document remains. Two keys are one
    service when DescribeServices gives both the same ARN, or when one spells out the account
    and region that the ARNs of the bare keys show are teiji's own (``keys``: every managed
    key, also those that failed before they could be observed).
    """
    groups: dict[str, set[str]] = {}
    for key, observation in result.observations.items():
        if observation.service_arn:
            groups.setdefault(observation.service_arn, set()).add(key)
    own = _own_scope(result)
    if own is not None:
        by_name: dict[str, set[str]] = {}
        for key in {*keys, *result.observations}:
            by_name.setdefault(_canonical(key, *own), set()).add(key)
        for name, members in by_name.items():
            groups.setdefault(f"service {name} in teiji's own account and region", set()).update(
                members
            )
    for what, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        for key in sorted(members):
            if key not in result.observations and key not in result.failures:
                continue  # failed before it was observed, and reported then
            result.observations.pop(key, None)
            result.failures[key] = (
                f"the schedules for {', '.join(sorted(members))} name one ECS service ({what}); "
                "teiji leaves it alone until one document remains"
            )


def _own_scope(result: ObserveResult) -> tuple[str, str] | None:
    """(region, account) of teiji's own services, from the ARN of one it observed."""
    for observation in result.observations.values():
        arn = observation.service_arn or ""
        parts = arn.split(":")
        if observation.account is None and observation.region is None and len(parts) > 5:
            return parts[3], parts[4]
    return None


def _canonical(key: str, region: str, account: str) -> str:
    return str(ServiceKey.parse(key).canonical(account, region))


def observe(clients: Clients, schedules: Iterable[Schedule]) -> ObserveResult:
    """Observe ``schedules`` one call after another (the tick runs the same units in parallel)."""
    result = ObserveResult()
    for scope, members in by_scope(schedules).items():
        observer = ScopeObserver(clients, scope, members)
        for unit in observer.units():
            unit()
        result.merge(observer.result())
    fail_shared_services(result)
    return result
