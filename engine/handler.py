"""The Lambda entry point: one tick per invocation.

Events:
- ``{}`` or an EventBridge / EventBridge Scheduler event: a tick over every service;
- ``{"dry_run": true}``: plan and report, write nothing;
- ``{"services": ["cluster/service", ...]}``: only these services;
- ``{"shard": i, "shards": n}``: the services whose sha256(key) % n == i, under that shard's
  slot of the lease (``engine.lease``). ``n`` must be the deployment's shard count recorded in
  the state table (Terraform sets ``TEIJI_SHARDS`` and the schedules from the same variable);
  any other count is refused, so a stray event can never act beside the scheduled ticks.
  Both must be whole numbers (not booleans, not text), 1 <= n <= 50 and 0 <= i < n.

With ``TEIJI_FANOUT_QUEUE_URL`` set (the Terraform variable ``fanout``), a full tick (no
``services``, no ``shard``) is the fan-out's orchestrator instead (``engine.fanout``): it hands
one work item per (account, region) to the queue, and ``fanout_worker_handler`` converges each.

The tick decides at the CURRENT time, never at the event's ``time``: a late retry of an old
event must not act on a stale instant. The event itself is never logged (only the options read
from it). When any service failed, the report is logged and ``TickFailedError`` is raised, so
the function's Errors metric (and its alarm) fires.

Imports of the engine happen inside the handler: a cold start pays for them once, and importing
this module stays cheap.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeGuard

# teiji uses no pydantic plugins; looking for them reads the metadata of every package in the
# zip when the first model is built, on every cold start.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from engine.report import TickReport
    from engine.tick import ScopeHooks

_clients: dict[tuple[str | None, str | None, str | None, str | None], Clients] = {}

# The edits function (``stream_handler``) names itself so in the lease. A tick (or a fan-out
# worker) that finds it holding a slot (or the scope's lease) waits for it (it converges a batch
# of edits in well under a second of its own) up to this long, instead of leaving that shard (or
# scope) to the next quarter hour; a lease held by any other tick is left alone at once.
EDITS_HOLDER = "edits:"
EDITS_LEASE_WAIT_S = 20.0


class TickFailedError(RuntimeError):
    """At least one service failed; the report was logged before this was raised."""


class BadEventError(ValueError):
    """The event asks for something the handler does not understand."""


def _options(event: Any) -> tuple[bool, list[str] | None, tuple[int, int] | None]:
    if not isinstance(event, Mapping):
        event = {}
    dry_run = event.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadEventError("dry_run must be true or false")
    services = event.get("services")
    if services is not None and (
        not isinstance(services, list) or not all(isinstance(s, str) for s in services)
    ):
        raise BadEventError("services must be a list of 'cluster/service' strings")
    return dry_run, services, _shard(event)


def _shard(event: Mapping[str, Any]) -> tuple[int, int] | None:
    from engine.config import MAX_SHARDS

    if "shard" not in event and "shards" not in event:
        return None
    index, count = event.get("shard"), event.get("shards")
    if not _whole(index) or not _whole(count):
        raise BadEventError("shard and shards must both be whole numbers")
    if not 1 <= count <= MAX_SHARDS or not 0 <= index < count:
        # Never echo a huge number back whole into the logs.
        raise BadEventError(
            f"shard {str(index)[:12]} of {str(count)[:12]}: need 1 <= shards <= {MAX_SHARDS} "
            "and 0 <= shard < shards"
        )
    return index, count


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _get_clients(role_name: str | None, external_id_parameter: str | None) -> Clients:
    from engine.aws.clients import Clients

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    key = (region, endpoint, role_name, external_id_parameter)
    # A warm Lambda container keeps its clients (and their connections) across ticks.
    if key not in _clients:
        _clients[key] = Clients(
            region=region,
            endpoint_url=endpoint,
            role_name=role_name,
            external_id_parameter=external_id_parameter,
        )
    return _clients[key]


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    from engine.config import Settings
    from engine.documents import warm_reuse
    from engine.lease import holder_id
    from engine.logs import bind_request_id, log_event, setup_logging
    from engine.tick import run_tick

    bind_request_id(getattr(context, "aws_request_id", None))  # on every line of this tick
    settings = Settings.from_env()
    setup_logging(settings.log_level)
    try:
        dry_run, services, shard = _options(event)
    except BadEventError as err:
        log_event("the event is not understood", level=40, error=str(err))
        raise
    dry_run = dry_run or settings.dry_run
    now = datetime.now(UTC)
    if settings.fanout_queue_url:
        if services is not None or shard not in (None, (0, 1)):
            # The orchestrator's role converges nothing itself (infra/fanout.tf).
            refused = BadEventError(
                "in fan-out mode the tick only hands scopes out: send {} (or shard 0 of 1); "
                "named services converge through their scope's worker or the edits function"
            )
            log_event("the event is not understood", level=40, error=str(refused))
            raise refused
        return _orchestrate(settings, now, dry_run)
    log_event(
        "tick starting",
        at=now.isoformat(),
        dry_run=dry_run,
        services=len(services) if services is not None else None,
        shard=list(shard) if shard else None,
    )
    clients = _get_clients(settings.role_name, settings.access.external_id_parameter)
    request_id = getattr(context, "aws_request_id", None)
    holder = holder_id(request_id if isinstance(request_id, str) else None)

    def tick(at: datetime) -> TickReport:
        return run_tick(
            clients,
            settings,
            at=at,
            dry_run=dry_run,
            services=services,
            shard=shard,
            holder=holder,
            deadline=_deadline(context),
        )

    # A warm container reuses the documents it parsed and its Decider (engine.documents).
    with warm_reuse():
        # Decided at the time it acts, when it waited for the edits function.
        report = _after_edits(lambda first: tick(now if first else datetime.now(UTC)))
    result = report.as_json()
    if report.failed:
        raise TickFailedError(failure_text(report))
    return result


def _orchestrate(settings: Any, now: datetime, dry_run: bool) -> dict[str, Any]:
    from engine.fanout_run import orchestrate, sqs_sender
    from engine.logs import log_event

    clients = _get_clients(settings.role_name, settings.access.external_id_parameter)
    handout = orchestrate(
        clients, settings, sqs_sender(clients, settings.fanout_queue_url), at=now, dry_run=dry_run
    )
    result = handout.as_json()
    log_event("fan-out tick", **result)
    if handout.failed:
        raise TickFailedError(f"{handout.unsent} work item(s) could not be sent to the queue")
    return result


def fanout_worker_handler(event: Any, context: Any) -> dict[str, Any]:
    """The fan-out worker's entry point: SQS messages, one scope each (``engine.fanout``).

    A body that is not a work item is logged and dropped (delivering it again would fail the
    same way); a scope whose worker failed, or whose lease another worker holds, is reported in
    ``batchItemFailures`` so that SQS delivers it once more (``maxReceiveCount`` 2, then the
    dead-letter queue). A scope whose lease the edits function holds is waited for first, as
    the scheduled tick waits for it (``EDITS_LEASE_WAIT_S``): it converges a few services in
    seconds, and a retry would spend one of the scope's two deliveries. Never raises for one
    message: the others of the batch are kept.
    """
    from engine.config import Settings
    from engine.documents import warm_reuse
    from engine.fanout import BadWorkItemError, WorkItem, parse_work_item
    from engine.fanout_run import work
    from engine.lease import holder_id
    from engine.logs import bind_request_id, log_event, setup_logging
    from engine.tick import run_tick

    request_id = getattr(context, "aws_request_id", None)
    bind_request_id(request_id)
    settings = Settings.from_env()
    setup_logging(settings.log_level)
    clients = _get_clients(settings.role_name, settings.access.external_id_parameter)
    holder = holder_id(request_id if isinstance(request_id, str) else None)
    records = event.get("Records") if isinstance(event, Mapping) else None
    failures: list[dict[str, str]] = []
    if not isinstance(records, list):
        log_event("the event is not an SQS batch; nothing done", level=40)
        return {"batchItemFailures": failures}

    def run_scope(item: WorkItem, at: datetime, hooks: ScopeHooks | None) -> TickReport:
        # The tick's instant even after waiting for the edits function: one tick, one instant
        # (engine.fanout.decision_instant).
        return _after_edits(
            lambda _first: run_tick(
                clients,
                settings,
                at=at,
                dry_run=item.dry_run or settings.dry_run,
                scope=item.scope,
                holder=holder,
                deadline=_deadline(context),
                schedule_keys=item.keys,
                hooks=hooks,
            )
        )

    with warm_reuse():
        for record in records:
            message = record.get("messageId") if isinstance(record, Mapping) else None
            try:
                item = parse_work_item(record.get("body") if isinstance(record, Mapping) else None)
            except BadWorkItemError as err:
                log_event("a message that is not a work item; dropped", level=40, error=str(err))
                continue
            verdict = work(
                clients,
                settings,
                item,
                receives=_receives(record),
                now=datetime.now(UTC),
                run_scope=run_scope,
                holder=holder,
            )
            log_event("fan-out work item", tick=item.tick, kind=item.kind, verdict=verdict)
            if verdict == "retry" and isinstance(message, str):
                failures.append({"itemIdentifier": message})
    return {"batchItemFailures": failures}


def _receives(record: Mapping[str, Any]) -> int:
    """How many times SQS has delivered this message (1 on the first delivery)."""
    attributes = record.get("attributes")
    raw = attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None
    try:
        return max(1, int(str(raw)))
    except ValueError:
        return 1


def _after_edits(tick: Callable[[bool], TickReport]) -> TickReport:
    """``tick(True)``, then while the edits function holds its lease, ``tick(False)`` once a
    second, ``EDITS_LEASE_WAIT_S`` at most: the report of the last try."""
    report = tick(True)
    waited = 0.0
    while _held_by_edits(report) and waited < EDITS_LEASE_WAIT_S:
        _pause(1.0)
        waited += 1.0
        report = tick(False)
    return report


# The wake function (engine.wake_handler) holds the lease as briefly, for one service.
WAKE_HOLDER = "wake:"


def _held_by_edits(report: TickReport) -> bool:
    """Held by the edits function or the wake function: both converge in about a second."""
    holder = report.lease_holder
    return (
        report.lease == "held"
        and holder is not None
        and holder.startswith((EDITS_HOLDER, WAKE_HOLDER))
    )


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def stream_handler(event: Any, context: Any) -> dict[str, Any]:
    """The edits function's entry point: the config table's stream records (see
    ``engine.stream_handler``). It lives here so that the zip, which holds what this module
    reaches, holds it too."""
    from engine.stream_handler import handler

    return handler(event, context)


def wake_handler(event: Any, context: Any) -> dict[str, Any]:
    """The wake function's entry point: a request through a load balancer to a service teiji
    keeps stopped (see ``engine.wake_handler``), or the keep-awake schedule's event, which
    extends wakes while their services get requests (``engine.wake_keep_run``)."""
    from engine.wake_handler import handler

    return handler(event, context)


def _deadline(context: Any) -> float | None:
    """When the Lambda will be stopped (wall epoch seconds), if the context says."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    millis = remaining()
    return time.time() + millis / 1000 if isinstance(millis, int | float) else None


def failure_text(report: TickReport) -> str:
    """Why the tick failed, in one line: the error the Lambda ends with."""
    if report.lease == "not taken":
        # A setting (a TEIJI_RATE_* value) or the lease's shard count stopped the tick.
        return "the tick could not start, nothing was done: " + "; ".join(report.problems)
    failed = [s.key for s in report.services if s.failed]
    parts = []
    if failed:
        more = " ..." if len(failed) > 20 else ""
        parts.append(f"{len(failed)} service(s) failed: {', '.join(failed[:20])}{more}")
    if report.problems:
        parts.append(f"{len(report.problems)} problem(s) in documents")
    if report.lease == "lost":
        parts.append("the lease ran out")
    return "; ".join(parts)
