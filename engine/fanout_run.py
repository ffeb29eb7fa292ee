"""Fan-out's imperative shell: the orchestrator, the worker and the tick's report
(the rules are ``engine.fanout``'s).

The state table holds, under ``pk="fanout#<tick id>"``:

- ``sk="tick"``: the tick's instant, its expected scopes (scope id -> services), ``done`` (the
  outcomes recorded so far) and, once published, ``reported`` (who published the report);
- ``sk="scope#<scope id>"``: one scope's outcome (``engine.fanout.ScopeOutcome``).

Both expire two days later (TTL on ``expires_at``). An outcome and the counter are written in
one transaction, on the condition that the outcome is not there yet: a duplicate delivery (SQS
is at least once) neither acts twice (the outcome is looked up first and the scope's lease
serialises two deliveries at once) nor counts twice. The worker that brings ``done`` to the
number of scopes publishes the report, on the condition that nobody did yet; the delayed
aggregate message publishes it otherwise (a worker killed twice), counting the missing scopes
failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.exceptions import ClientError

from engine.aws.answers import require, unreadable
from engine.aws.errors import AWS_ERRORS, error_code, error_text
from engine.aws.events import Published, put_events
from engine.config import Settings
from engine.events import entries, events_for
from engine.fanout import (
    MAX_DELAY_S,
    MAX_KEY_CHARS,
    MAX_RECEIVES,
    RECORD_DAYS,
    FanoutReport,
    ScopeOutcome,
    WorkItem,
    aggregate,
    batches,
    decision_instant,
    emf_document,
    scope_id,
    tick_id,
    work_items,
)
from engine.logs import log_event
from engine.metrics import deployment_name, tick_figures
from engine.observe import Scope
from engine.optin import tag_scopes
from engine.report import TickReport
from engine.store import from_attribute_map, plain, to_attribute_map
from schemas.keys import ServiceKey

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from engine.tick import ScopeHooks

TICK_SK = "tick"
SCOPE_SK = "scope#"


def tick_pk(tick: str) -> str:
    return f"fanout#{tick}"


class FanoutError(RuntimeError):
    """The orchestrator could not hand the tick out (tables or queue unreachable)."""


# The state table --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TickRecord:
    tick: str
    at: datetime
    scopes: Mapping[str, int]
    done: int
    reported: str | None
    started: float


class FanoutStore:
    """The tick records and outcomes of the fan-out, in the state table."""

    def __init__(self, clients: Clients, table: str) -> None:
        self.clients = clients
        self.table = table

    def _expires(self, now: float) -> int:
        return int(now + RECORD_DAYS * 86400)

    def begin(self, tick: str, at: datetime, scopes: Mapping[str, int], now: float) -> bool:
        """Record the tick and its expected scopes; False when another orchestrator did."""
        item = {
            "pk": tick_pk(tick),
            "sk": TICK_SK,
            "at": at.isoformat(),
            "scopes": dict(scopes),
            "done": 0,
            "started": now,
            "expires_at": self._expires(now),
        }
        try:
            self.clients.dynamodb().put_item(
                TableName=self.table,
                Item=to_attribute_map(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def read_tick(self, tick: str) -> TickRecord | None:
        """The tick's record (strongly consistent); None when there is none or it is unreadable."""
        found = self.clients.dynamodb().get_item(
            TableName=self.table,
            Key={"pk": {"S": tick_pk(tick)}, "sk": {"S": TICK_SK}},
            ConsistentRead=True,
        )
        return self._tick_from(tick, found.get("Item"))

    def _tick_from(self, tick: str, raw: Mapping[str, Any] | None) -> TickRecord | None:
        if not raw:
            return None
        try:
            item = plain(from_attribute_map(raw))
            scopes = {str(k): int(v) for k, v in dict(item["scopes"]).items()}
            reported = item.get("reported")
            return TickRecord(
                tick,
                datetime.fromisoformat(str(item["at"])),
                scopes,
                int(item["done"]),
                None if reported is None else str(reported),
                float(item["started"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            log_event("the fan-out tick record is unreadable", level=logging.ERROR, error=str(exc))
            return None

    def read_both(self, tick: str, scope: str) -> tuple[TickRecord | None, bool]:
        """The tick's record and whether ``scope``'s outcome is there: one BatchGetItem
        (strongly consistent), the keys it hands back asked for again."""
        keys = [
            {"pk": {"S": tick_pk(tick)}, "sk": {"S": TICK_SK}},
            {"pk": {"S": tick_pk(tick)}, "sk": {"S": SCOPE_SK + scope}},
        ]
        found: dict[str, Mapping[str, Any]] = {}
        for _ in range(5):
            answer = self.clients.dynamodb().batch_get_item(
                RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}}
            )
            # A cut answer is no answer, never "no tick recorded" (that drops the item).
            responses = require(answer, "BatchGetItem", "Responses", dict)
            unprocessed: Mapping[str, Any] = answer.get("UnprocessedKeys") or {}
            if not isinstance(unprocessed, dict):
                raise unreadable("BatchGetItem", "UnprocessedKeys is not a map")
            rows = responses.get(self.table, None if self.table not in unprocessed else [])
            if not isinstance(rows, list):
                raise unreadable("BatchGetItem", f"Responses.{self.table} is not a list")
            for item in rows:
                found[str(item.get("sk", {}).get("S", ""))] = item
            keys = list(unprocessed.get(self.table, {}).get("Keys", []))
            if not keys:
                return self._tick_from(tick, found.get(TICK_SK)), SCOPE_SK + scope in found
            time.sleep(0.05)
        raise FanoutError(f"table {self.table} kept handing the fan-out's keys back")

    def has_outcome(self, tick: str, scope: str) -> bool:
        found = self.clients.dynamodb().get_item(
            TableName=self.table,
            Key={"pk": {"S": tick_pk(tick)}, "sk": {"S": SCOPE_SK + scope}},
            ConsistentRead=True,
            ProjectionExpression="pk",
        )
        return bool(found.get("Item"))

    def record(
        self,
        tick: str,
        outcome: ScopeOutcome,
        now: float,
        *,
        scopes: int | None = None,
        release: dict[str, Any] | None = None,
    ) -> tuple[Recorded, bool]:
        """The outcome and one more ``done``, in one transaction: ``duplicate`` when the
        scope's outcome was already there (nothing written, nothing counted), else ``last``
        when every scope of the tick is done now, else ``recorded``; and whether ``release``
        (the worker's lease given back, an action of the same transaction) was written.

        ``scopes`` (how many the tick has, as read before): the count is then written on the
        condition that this is not the last, so that a worker that is not last learns it
        from the write itself; the last is refused and writes again without the condition.
        Without it, the record is read back to tell. A ``release`` whose condition fails
        (the lease is no longer this worker's) is left out and the write made without it."""
        item = {
            "pk": tick_pk(tick),
            "sk": SCOPE_SK + outcome.scope,
            **outcome.as_item(),
            "expires_at": self._expires(now),
        }
        before_last = scopes - 1 if scopes is not None and scopes > 1 else None
        while True:
            written = self._transact(tick, item, before_last=before_last, release=release)
            if written == "lease":
                release = None  # not this worker's to give back any more
                continue
            if written == "refused":  # the last: again, without the condition
                before_last = None
                continue
            break
        if written == "duplicate":
            return "duplicate", False
        if scopes is not None and scopes > 1:
            last = before_last is None
        else:
            after = self.read_tick(tick)
            last = after is not None and after.done >= len(after.scopes)
        return ("last" if last else "recorded"), release is not None

    def _transact(
        self,
        tick: str,
        item: Mapping[str, Any],
        *,
        before_last: int | None,
        release: dict[str, Any] | None,
    ) -> Literal["recorded", "duplicate", "refused", "lease"]:
        update: Any = {
            "TableName": self.table,
            "Key": {"pk": {"S": tick_pk(tick)}, "sk": {"S": TICK_SK}},
            "UpdateExpression": "ADD done :one",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
        if before_last is not None:
            update["ConditionExpression"] = "attribute_exists(pk) AND done < :last"
            update["ExpressionAttributeValues"][":last"] = {"N": str(before_last)}
        actions: list[Any] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_attribute_map(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": update},
        ]
        if release is not None:
            actions.append(release)
        try:
            self.clients.dynamodb().transact_write_items(TransactItems=actions)
        except ClientError as err:
            if error_code(err) != "TransactionCanceledException":
                raise
            if _refused(err, 0):
                return "duplicate"
            if release is not None and _refused(err, 2):
                return "lease"
            if before_last is not None and _refused(err, 1):
                return "refused"
            raise
        return "recorded"

    def claim_report(self, tick: str, holder: str) -> bool:
        """Become the one that publishes the tick's report; False when another did."""
        try:
            self.clients.dynamodb().transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": tick_pk(tick)}, "sk": {"S": TICK_SK}},
                            "UpdateExpression": "SET reported = :who",
                            "ConditionExpression": "attribute_exists(pk) AND "
                            "attribute_not_exists(reported)",
                            "ExpressionAttributeValues": {":who": {"S": holder[:200]}},
                        }
                    }
                ]
            )
        except ClientError as err:
            if error_code(err) == "TransactionCanceledException":
                return False
            raise
        return True

    def outcomes(self, tick: str) -> list[ScopeOutcome]:
        client = self.clients.dynamodb()
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :scope)",
            "ExpressionAttributeValues": {
                ":pk": {"S": tick_pk(tick)},
                ":scope": {"S": SCOPE_SK},
            },
            "ConsistentRead": True,
        }
        found: list[ScopeOutcome] = []
        while True:
            page = client.query(**params)
            for raw in page.get("Items", []):
                try:
                    item = plain(from_attribute_map(raw))
                except (TypeError, ValueError):
                    item = {"scope": str(raw.get("sk", {}).get("S", "?"))[len(SCOPE_SK) :]}
                found.append(ScopeOutcome.from_item(item))
            start = page.get("LastEvaluatedKey")
            if not start:
                return found
            params["ExclusiveStartKey"] = start


def _refused(err: ClientError, index: int) -> bool:
    """Whether action ``index`` of a cancelled transaction failed its condition."""
    reasons = err.response.get("CancellationReasons") or []
    if not isinstance(reasons, list) or len(reasons) <= index:
        return False
    reason = reasons[index]
    return isinstance(reason, Mapping) and reason.get("Code") == "ConditionalCheckFailed"


# The queue ------------------------------------------------------------------------------------
SendBatch = Callable[[list[dict[str, Any]]], list[str]]


def sqs_sender(clients: Clients, queue_url: str) -> SendBatch:
    """SendMessageBatch on ``queue_url``; returns the entries' ids SQS did not take.

    The client is the orchestrator's own (the tick's clients refuse what their catalogue does
    not list, and only the orchestrator's role may send to the queue)."""
    # A session of its own: boto3's default one may be shared with code outside teiji.
    client = boto3.session.Session(region_name=clients.region).client(
        "sqs", endpoint_url=clients.endpoint_url, config=clients.config
    )

    def send(entries: list[dict[str, Any]]) -> list[str]:
        answer = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        return [str(f.get("Id")) for f in answer.get("Failed", [])]

    return send


def _send_all(send: SendBatch, items: Sequence[WorkItem], *, delay: int = 0) -> int:
    """Send ``items`` 10 a call; entries refused are sent once more; the count not sent."""
    unsent = 0
    for batch in batches(items):
        sent: list[dict[str, Any]] = [
            {**entry, "DelaySeconds": delay} if delay else dict(entry) for entry in batch
        ]
        refused = set(send(sent))
        if refused:
            again = [e for e in sent if e["Id"] in refused]
            unsent += len(send(again))
    return unsent


# The orchestrator -------------------------------------------------------------------------------
@dataclass
class Handout:
    """What the orchestrator did with one tick."""

    tick: str
    at: datetime
    dry_run: bool
    status: Literal["sent", "already sent", "planned"] = "sent"
    scopes: dict[str, int] = field(default_factory=dict)
    unsent: int = 0
    invalid_documents: int = 0
    duration_s: float = 0.0

    @property
    def failed(self) -> bool:
        return self.unsent > 0

    def as_json(self) -> dict[str, Any]:
        return {
            "fanout": True,
            "tick": self.tick,
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "status": self.status,
            "scopes": len(self.scopes),
            "services": sum(self.scopes.values()),
            "unsent": self.unsent,
            "invalid_documents": self.invalid_documents,
            "duration_s": round(self.duration_s, 3),
            "failed": self.failed,
        }


def orchestrate(
    clients: Clients,
    settings: Settings,
    send: SendBatch,
    *,
    at: datetime,
    dry_run: bool,
    clock: Callable[[], float] = time.time,
) -> Handout:
    """Hand tick ``at`` out: one work item per scope, and one delayed aggregate message.

    Reads the schedule documents' keys once (the workers read and validate the documents
    under their leases, before they act). A dry run records nothing and sends nothing: it
    says which scopes it would send.
    """
    started = clock()
    tick = tick_id(at, settings.tick_interval)
    handout = Handout(tick, at, dry_run)
    try:
        keys = schedule_keys(clients, settings.config_table)
    except AWS_ERRORS as exc:
        raise FanoutError(
            f"cannot read the documents in table {settings.config_table}: {error_text(exc)}"
        ) from exc
    groups: dict[Scope, list[str]] = {}
    for key in keys:
        try:
            if len(key) > MAX_KEY_CHARS:  # longer than any service key; a worker refuses it
                raise ValueError(key)
            parsed = ServiceKey.parse(key)
        except ValueError:
            # Not a service key: no worker can converge it; `teiji validate` names it.
            handout.invalid_documents += 1
            continue
        groups.setdefault((parsed.account, parsed.region), []).append(key)
    if settings.access.clusters:
        # Opt-in by tag looks for tagged services in every scope the allow-list names (and
        # teiji's own), documents or not, as a single-invocation tick does: their workers
        # must run to find them.
        for scope in tag_scopes(clients, settings.access):
            groups.setdefault(scope, [])
    handout.scopes = {scope_id(s): len(k) for s, k in sorted(groups.items(), key=_order)}
    if dry_run:
        handout.status = "planned"
        handout.duration_s = clock() - started
        return handout
    try:
        first = FanoutStore(clients, settings.state_table).begin(tick, at, handout.scopes, started)
    except AWS_ERRORS as exc:
        raise FanoutError(
            f"cannot record the tick in table {settings.state_table}: {error_text(exc)}"
        ) from exc
    if not first:  # another orchestrator of this tick sent it already
        handout.status = "already sent"
        handout.duration_s = clock() - started
        return handout
    items = work_items(tick, at, groups)
    try:
        handout.unsent = _send_all(send, items)
        _send_all(send, [WorkItem("aggregate", tick, at)], delay=aggregate_delay(settings))
    except AWS_ERRORS as exc:
        raise FanoutError(f"cannot send the work items: {error_text(exc)}") from exc
    handout.duration_s = clock() - started
    log_event(
        "fan-out tick handed out",
        tick=tick,
        scopes=len(items),
        unsent=handout.unsent,
        duration_s=round(handout.duration_s, 3),
    )
    return handout


def _order(item: tuple[Scope, object]) -> tuple[str, str]:
    return (item[0][0] or "", item[0][1] or "")


def schedule_keys(clients: Clients, table: str) -> list[str]:
    """The service keys of every schedule document: their sort keys only, all pages, strongly
    consistent. The orchestrator needs no more to hand the scopes out (it parses nothing: each
    worker reads and validates the documents under its lease)."""
    client = clients.dynamodb()
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "schedule"}},
        "ProjectionExpression": "sk",
        "ConsistentRead": True,
    }
    keys: list[str] = []
    while True:
        page = client.query(**params)
        items = page.get("Items")
        if not isinstance(items, list):
            raise FanoutError(f"a Query page of table {table} holds no Items list")
        keys.extend(str(item.get("sk", {}).get("S", "")) for item in items)
        start = page.get("LastEvaluatedKey")
        if not start:
            return keys
        params["ExclusiveStartKey"] = start


def aggregate_delay(settings: Settings) -> int:
    """The aggregate message comes at the end of the tick's interval (SQS: 900 s at most)."""
    return int(min(MAX_DELAY_S, settings.tick_interval.total_seconds()))


# The worker -------------------------------------------------------------------------------------
Verdict = Literal["done", "duplicate", "dropped", "retry", "dry run"]
Recorded = Literal["recorded", "last", "duplicate"]

# ``run_scope(item, at, hooks)`` runs ``run_tick(scope=item.scope, at=at, hooks=hooks, ...)``;
# ``hooks`` is None for a dry run (nothing recorded).
RunScope = Callable[[WorkItem, datetime, "ScopeHooks | None"], TickReport]


@dataclass
class _Protocol:
    """The fan-out's own reads and writes around one worker's tick (``ScopeHooks``): the
    tick's record read beside the documents, the outcome written beside the lease's release,
    so that neither costs the worker a round trip of its own."""

    store: FanoutStore
    item: WorkItem
    scope: str
    now: datetime
    settings: Settings
    receives: int
    clock: Callable[[], float]
    verdict: Verdict | None = None
    scopes: int | None = None
    recorded: Recorded | None = None

    def instant(self) -> datetime | None:
        record, done_before = self.store.read_both(self.item.tick, self.scope)
        if record is None or self.scope not in record.scopes:
            log_event(
                "a work item of no recorded tick or scope; dropped",
                level=logging.WARNING,
                tick=self.item.tick,
                scope=self.scope,
            )
            self.verdict = "dropped"
            return None
        if done_before:
            self.verdict = "duplicate"
            return None
        self.scopes = len(record.scopes)
        # The instant the orchestrator recorded, not the message's: a message is a pointer.
        return decision_instant(record.at, self.now, self.settings.tick_interval)

    def finish(self, report: TickReport, release: dict[str, Any] | None) -> bool:
        if self.verdict is not None or self.scopes is None:
            return False  # nothing was worked: nothing to record
        outcome = _outcome_of(self.scope, report, self.settings, self.receives)
        self.recorded, released = self.store.record(
            self.item.tick, outcome, self.clock(), scopes=self.scopes, release=release
        )
        return released


def work(
    clients: Clients,
    settings: Settings,
    item: WorkItem,
    *,
    receives: int,
    now: datetime,
    run_scope: RunScope,
    holder: str,
    clock: Callable[[], float] = time.time,
) -> Verdict:
    """One message: converge its scope (``run_scope``, which runs ``run_tick(scope=...)``),
    record the outcome, and publish the report when it was the last.

    The tick's record is read once the scope's lease is held, beside the documents: an item
    of no recorded tick is dropped and one whose scope is done already is a duplicate, and
    neither acts. ``retry``: SQS delivers it again (the worker failed, or another worker holds
    the scope's lease). On its last delivery a failure is recorded as the scope's outcome
    instead, so the tick's report need not wait for the aggregate message.
    """
    store = FanoutStore(clients, settings.state_table)
    if item.kind == "aggregate":
        publish_report(clients, settings, store, item.tick, holder, clock)
        return "done"
    scope = scope_id(item.scope)
    if item.dry_run or settings.dry_run:
        report = run_scope(item, decision_instant(item.at, now, settings.tick_interval), None)
        log_event("fan-out dry run of a scope", scope=scope, counts=report.counts)
        return "dry run"
    protocol = _Protocol(store, item, scope, now, settings, receives, clock)
    last = receives >= MAX_RECEIVES
    try:
        report = run_scope(item, decision_instant(item.at, now, settings.tick_interval), protocol)
    except Exception as exc:  # the worker's own failure: a retry, or the scope's outcome
        log_event("the scope's worker failed", level=logging.ERROR, scope=scope, exc_info=True)
        if protocol.verdict is not None:
            return protocol.verdict
        if not last:
            return "retry"
        failed = ScopeOutcome(scope, "failed", attempts=receives, error=error_text(exc)[:500])
        protocol.recorded = store.record(item.tick, failed, clock())[0]
    else:
        if protocol.verdict is not None:
            return protocol.verdict
        if report.lease == "held":
            # Another delivery of this item (or the next tick) works the scope now.
            return "duplicate" if store.has_outcome(item.tick, scope) else "retry"
        if protocol.recorded is None:  # the tick never reached its documents (not taken)
            outcome = _outcome_of(scope, report, settings, receives)
            protocol.recorded = store.record(item.tick, outcome, clock())[0]
    if protocol.recorded == "duplicate":
        return "duplicate"
    if protocol.recorded == "last":
        publish_report(clients, settings, store, item.tick, holder, clock)
    return "done"


def _outcome_of(scope: str, report: TickReport, settings: Settings, receives: int) -> ScopeOutcome:
    interval_h = settings.tick_interval.total_seconds() / 3600
    problems = list(report.problems)
    if report.lease == "not taken":
        return ScopeOutcome(scope, "failed", attempts=receives, error="; ".join(problems)[:500])
    if report.lease == "lost":
        problems.append(f"scope {scope}: the worker's lease ran out")
    return ScopeOutcome(
        scope,
        "done",
        figures=tick_figures(report, interval_h),
        failed_services=tuple(s.key for s in report.services if s.failed),
        problems=tuple(problems),
        invalid_documents=tuple(report.invalid_documents),
        attempts=receives,
    )


# The report -------------------------------------------------------------------------------------
def publish_report(
    clients: Clients,
    settings: Settings,
    store: FanoutStore,
    tick: str,
    holder: str,
    clock: Callable[[], float] = time.time,
) -> FanoutReport | None:
    """Put the tick's report together and publish it once: the metrics line, the documents'
    events and Tick Failed. None when the tick has no record or another published it."""
    record = store.read_tick(tick)
    if record is None or record.reported is not None:
        return None
    if not store.claim_report(tick, holder):
        return None
    report = aggregate(
        tick, record.at, record.scopes, store.outcomes(tick), clock() - record.started
    )
    log_event("fan-out tick report", **report.as_json())
    log_event("tick metrics", level=logging.INFO, **emf_document(report, deployment_name()))
    _publish_tick_events(clients, settings.event_bus, report)
    return report


def _publish_tick_events(clients: Clients, bus: str | None, report: FanoutReport) -> None:
    """Document Invalid (once per document, not per scope) and Tick Failed, as a single
    tick publishes them; the services' own events went out from their workers."""
    if bus is None:
        return
    tick = TickReport(at=report.at, dry_run=False, lease="acquired")
    tick.invalid_documents = [dict(d) for d in report.invalid_documents]
    tick.problems = list(report.problems) + [
        f"scope {scope}: {why}" for scope, why in sorted(report.failed_scopes.items())
    ]
    found = events_for(tick)
    if not found:
        return
    try:
        published = put_events(clients.events(), entries(found, bus, tick))
    except Exception as exc:  # publishing never fails the report
        published = Published()
        published.refused(len(found), error_text(exc))
    if published.failed:
        log_event("some events were not published", level=logging.WARNING, failed=published.failed)
