"""Fan-out: one tick of a large fleet split into one work item per (account, region) (pure).

For fleets past one invocation (``TEIJI_FANOUT_QUEUE_URL`` set; the Terraform variable
``fanout``), the scheduled tick is an orchestrator (``engine.fanout_run.orchestrate``): it reads
the documents once, groups the services by scope (their account and region), records the tick's
expected scopes in the state table and sends one work item per scope to an SQS queue. A worker
function (``engine.handler.fanout_worker_handler``, the same zip) converges one scope per
message with ``run_tick(scope=...)``, under that scope's own lease and with that scope's whole
ECS bucket (pacing share 1.0): this replaces hash shards, which split one account's bucket over
several ticks. Each worker writes its outcome to the state table; the last one to finish (an
atomic counter in the tick's record) or a delayed aggregate message publishes one tick report:
the same metrics and the tick's own events once.

Why SQS and not a Step Functions Distributed Map:
- cost: at 96 ticks a day of 1,000 scopes, a Standard workflow pays a state transition per
  item and per state (about 3,000 transitions a tick, ~290,000 a day, ~$7/day at $0.025 per
  1,000) while SQS pays ~3 requests per item (~$0.12/day at $0.40 per million);
- the concurrency cap is the event source mapping's ``maximum_concurrency``, retries are the
  queue's ``maxReceiveCount`` and the dead-letter queue keeps what failed twice, all plain
  Terraform, with no state-machine definition to keep in step with the code;
- it can be tested in-process (moto emulates SQS; it does not run Distributed Maps);
- what a Distributed Map gives beyond that (a final step after every item) is done here by the
  counter in the state table, which also survives a lost aggregate step.

The rules, all pure here: the tick's id (its quarter hour: two orchestrators of one tick agree
on it, and only the first records it), the work items and their strict parsing (a hostile or cut
body is refused, never retried), the instant a worker decides at, and the report put together
from the per-scope outcomes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from engine.metrics import DIMENSION, NAMESPACE, UNITS
from engine.observe import Scope  # (account, region) as schedules write them; None: own
from schemas.keys import ServiceKey

OWN = "-"  # how a scope id spells "the deployment's own" account or region

# SQS delivers each message at most this many times (the queue's redrive maxReceiveCount,
# infra/fanout.tf): the first try and one retry within the tick; then the dead-letter queue.
MAX_RECEIVES = 2
# SendMessageBatch takes 10 entries a call.
SEND_BATCH = 10
# SQS's largest message, and the largest SendMessageBatch (the sum of its entries' bodies).
MAX_BODY_BYTES = 262_144
# A scope's schedule keys ride in its work item while they take at most this many bytes (about
# 4,000 keys); a scope with more gets none, and its worker reads every schedule in the table.
KEYS_BUDGET_BYTES = 200_000
# A service key is ``cluster/service@account/region``: ECS names are 255 characters at most.
MAX_KEY_CHARS = 600
# SQS's largest DelaySeconds: the aggregate message comes this long after the tick at most.
MAX_DELAY_S = 900
# What the tick's records in the state table are kept for (TTL on ``expires_at``).
RECORD_DAYS = 2

_TICK_ID = re.compile(r"^[0-9]{8}T[0-9]{4}Z$", re.ASCII)
_ACCOUNT = re.compile(r"^[0-9]{12}$", re.ASCII)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$", re.ASCII)

Kind = Literal["scope", "aggregate"]


class BadWorkItemError(ValueError):
    """A message that is not one of the orchestrator's work items; it is dropped, not retried."""


def scope_id(scope: Scope) -> str:
    """``111111111111/ap-northeast-1``; ``-`` for the deployment's own account or region."""
    account, region = scope
    return f"{account or OWN}/{region or OWN}"


def scope_from_id(text: str) -> Scope:
    account, _, region = text.partition("/")
    return (None if account == OWN else account, None if region == OWN else region)


def tick_id(at: datetime, interval: timedelta) -> str:
    """The tick's id: the start of its interval in UTC (``20261202T2015Z``). Two orchestrators
    started for one scheduled tick (a retried invocation, a second schedule) agree on it."""
    if at.utcoffset() is None:
        raise ValueError("the tick instant must carry a UTC offset")
    step = int(interval.total_seconds())
    epoch = int(at.timestamp()) // step * step
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%dT%H%MZ")


def decision_instant(sent_at: datetime, now: datetime, interval: timedelta) -> datetime:
    """The instant a worker decides at: the tick's, unless it is older than one interval.

    Within the interval, every scope of the tick decides at the same instant (one tick, one
    decision), even a retry minutes later. Past it, the next tick has decided since: acting on
    the older instant could undo what that tick did (start a service it stopped), so a late
    message decides now, as the scheduled tick never decides on an event's stale ``time``. An
    instant after ``now`` (a clock ahead, a forged record) decides now too.
    """
    return sent_at if timedelta(0) <= now - sent_at <= interval else now


@dataclass(frozen=True)
class WorkItem:
    """One message: converge one scope of tick ``tick`` at ``at`` (kind ``scope``), or put the
    tick's report together (kind ``aggregate``).

    ``keys``: the scope's schedule documents (their sort keys) as the orchestrator found them,
    so that the worker reads those and not the whole table; None when they did not fit
    (``KEYS_BUDGET_BYTES``) or an orchestrator of an earlier version sent the item."""

    kind: Kind
    tick: str
    at: datetime
    scope: Scope = (None, None)
    dry_run: bool = False
    keys: tuple[str, ...] | None = None

    def body(self) -> str:
        account, region = self.scope
        fields: dict[str, Any] = {
            "v": 1,
            "kind": self.kind,
            "tick": self.tick,
            "at": self.at.isoformat(),
            "account": account,
            "region": region,
            "dry_run": self.dry_run,
        }
        if self.keys is not None:
            fields["keys"] = list(self.keys)
        return json.dumps(fields, separators=(",", ":"))


_FIELDS = frozenset({"v", "kind", "tick", "at", "account", "region", "dry_run"})
_OPTIONAL = frozenset({"keys"})


def parse_work_item(body: object) -> WorkItem:
    """The work item ``body`` spells, checked field by field; BadWorkItemError otherwise."""
    if not isinstance(body, str):
        raise BadWorkItemError("the message body is not text")
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise BadWorkItemError(f"the message body is longer than {MAX_BODY_BYTES} bytes")
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):
        raise BadWorkItemError("the message body is not JSON (cut or corrupt)") from None
    if not isinstance(raw, dict):
        raise BadWorkItemError("the message body is not a JSON object")
    if not _FIELDS <= set(raw) <= _FIELDS | _OPTIONAL:
        unknown = sorted(str(k)[:40] for k in set(raw) - _FIELDS - _OPTIONAL)
        missing = sorted(_FIELDS - set(raw))
        raise BadWorkItemError(f"fields: missing {missing}, unknown {unknown}")
    if raw["v"] != 1 or isinstance(raw["v"], bool):
        raise BadWorkItemError("v must be 1")
    kind = raw["kind"]
    if kind not in ("scope", "aggregate"):
        raise BadWorkItemError("kind must be scope or aggregate")
    tick = raw["tick"]
    if not isinstance(tick, str) or not _TICK_ID.match(tick):
        raise BadWorkItemError("tick must be a tick id like 20261202T2015Z")
    at = _instant(raw["at"])
    account, region = raw["account"], raw["region"]
    if account is not None and (not isinstance(account, str) or not _ACCOUNT.match(account)):
        raise BadWorkItemError("account must be a 12-digit account id or null")
    if region is not None and (not isinstance(region, str) or not _REGION.match(region)):
        raise BadWorkItemError("region must be a region name or null")
    if not isinstance(raw["dry_run"], bool):
        raise BadWorkItemError("dry_run must be true or false")
    keys = _keys(raw["keys"], (account, region)) if "keys" in raw else None
    return WorkItem(kind, tick, at, (account, region), raw["dry_run"], keys)


def _keys(value: object, scope: Scope) -> tuple[str, ...]:
    """The schedule keys of a work item: each a service key of the item's own scope."""
    if not isinstance(value, list):
        raise BadWorkItemError("keys must be a list of service keys")
    keys: list[str] = []
    for key in value:
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS:
            raise BadWorkItemError(
                f"keys: each must be a service key of 1 to {MAX_KEY_CHARS} characters"
            )
        try:
            parsed = ServiceKey.parse(key)
        except ValueError:
            raise BadWorkItemError(
                "keys: each must be a service key (cluster/service@scope)"
            ) from None
        if (parsed.account, parsed.region) != scope:
            raise BadWorkItemError("keys: a key of another account or region than the item's")
        keys.append(key)
    return tuple(keys)


def _instant(value: object) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise BadWorkItemError("at must be an ISO 8601 instant with an offset")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadWorkItemError("at must be an ISO 8601 instant with an offset") from None
    if at.utcoffset() is None:
        raise BadWorkItemError("at must carry a UTC offset")
    return at


def work_items(
    tick: str, at: datetime, scopes: Iterable[Scope] | Mapping[Scope, Sequence[str]]
) -> list[WorkItem]:
    """One ``scope`` item per scope, in scope order; given each scope's schedule keys, each
    item carries them while they fit (``KEYS_BUDGET_BYTES``)."""
    keyed = scopes if isinstance(scopes, Mapping) else None
    ordered = sorted(set(scopes), key=lambda s: (s[0] or "", s[1] or ""))
    return [
        WorkItem("scope", tick, at, scope, keys=None if keyed is None else _fitting(keyed[scope]))
        for scope in ordered
    ]


def _fitting(keys: Sequence[str]) -> tuple[str, ...] | None:
    size = sum(len(json.dumps(k)) + 1 for k in keys)
    return tuple(sorted(keys)) if size <= KEYS_BUDGET_BYTES else None


def batches(items: Sequence[WorkItem]) -> list[list[dict[str, str]]]:
    """SendMessageBatch entries: 10 a call at most, and at most ``MAX_BODY_BYTES`` of bodies
    in one call (SQS counts the batch's total); each entry's id is its index in its batch."""
    calls: list[list[dict[str, str]]] = []
    size = 0
    for item in items:
        body = item.body()
        length = len(body.encode("utf-8"))
        if not calls or len(calls[-1]) == SEND_BATCH or size + length > MAX_BODY_BYTES:
            calls.append([])
            size = 0
        calls[-1].append({"Id": str(len(calls[-1])), "MessageBody": body})
        size += length
    return calls


# The outcomes and the report ---------------------------------------------------------------
# The figures summed over the scopes; TickSeconds is the tick's own (first send to last word).
_SUMMED = tuple(name for name in UNITS if name != "TickSeconds")


@dataclass(frozen=True)
class ScopeOutcome:
    """What one worker did with one scope, as the state table keeps it."""

    scope: str
    status: Literal["done", "failed"]
    figures: Mapping[str, float] = field(default_factory=dict)
    failed_services: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    invalid_documents: tuple[Mapping[str, str], ...] = ()
    attempts: int = 1
    error: str | None = None

    def as_item(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "status": self.status,
            "figures": dict(self.figures),
            "failed_services": list(self.failed_services),
            "problems": list(self.problems),
            "invalid_documents": [dict(d) for d in self.invalid_documents],
            "attempts": self.attempts,
            "error": self.error,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ScopeOutcome:
        """An outcome read back; one that cannot be read counts as a failed scope."""
        scope = str(item.get("scope", "?"))
        try:
            status = item["status"]
            if status not in ("done", "failed"):
                raise ValueError(status)
            return cls(
                scope=scope,
                status=status,
                figures={str(k): float(v) for k, v in dict(item.get("figures") or {}).items()},
                failed_services=tuple(str(s) for s in item.get("failed_services") or ()),
                problems=tuple(str(p) for p in item.get("problems") or ()),
                invalid_documents=tuple(
                    {str(k): str(v) for k, v in dict(d).items()}
                    for d in item.get("invalid_documents") or ()
                ),
                attempts=int(item.get("attempts") or 1),
                error=None if item.get("error") is None else str(item["error"]),
            )
        except (KeyError, TypeError, ValueError):
            return cls(scope=scope, status="failed", error="its outcome record is unreadable")


@dataclass(frozen=True)
class FanoutReport:
    """One tick's report over its scopes: the metrics' figures and what failed."""

    tick: str
    at: datetime
    expected: tuple[str, ...]
    figures: Mapping[str, float]
    done: tuple[str, ...]
    failed_scopes: Mapping[str, str]
    failed_services: tuple[str, ...]
    problems: tuple[str, ...]
    invalid_documents: tuple[Mapping[str, str], ...]

    @property
    def failed(self) -> bool:
        return bool(self.failed_scopes or self.failed_services or self.problems)

    def as_json(self) -> dict[str, Any]:
        return {
            "tick": self.tick,
            "at": self.at.isoformat(),
            "scopes": len(self.expected),
            "scopes_done": len(self.done),
            "failed": self.failed,
            "failed_scopes": dict(self.failed_scopes),
            "failed_services": list(self.failed_services[:100]),
            "figures": dict(self.figures),
            "problems": list(self.problems),
            "invalid_documents": [dict(d) for d in self.invalid_documents],
        }


NO_OUTCOME = (
    "no outcome by the time of the report: its worker failed twice (the dead-letter queue "
    "holds its message) or ran out of time; the next tick converges it"
)


def aggregate(
    tick: str,
    at: datetime,
    expected: Mapping[str, int],
    outcomes: Iterable[ScopeOutcome],
    tick_seconds: float,
) -> FanoutReport:
    """The tick's report: every expected scope's outcome (``expected``: scope id -> its
    services), a missing or failed one counted failed with all its services.

    Outcomes of scopes the tick did not expect are left out (a forged record counts nothing);
    problems and invalid documents, which every worker reads alike, are counted once.
    """
    wanted = set(expected)
    found = {o.scope: o for o in outcomes if o.scope in wanted}
    figures: dict[str, float] = dict.fromkeys(_SUMMED, 0.0)
    failed_scopes: dict[str, str] = {}
    failed_services: list[str] = []
    problems: dict[str, None] = {}
    invalid: dict[str, Mapping[str, str]] = {}
    for scope in sorted(wanted):
        outcome = found.get(scope)
        if outcome is None or outcome.status == "failed":
            failed_scopes[scope] = NO_OUTCOME if outcome is None else outcome.error or "failed"
            figures["Failed"] += expected[scope]
            continue
        for name in _SUMMED:
            figures[name] += float(outcome.figures.get(name, 0.0))
        failed_services.extend(outcome.failed_services)
        problems.update(dict.fromkeys(outcome.problems))
        for document in outcome.invalid_documents:
            invalid.setdefault(json.dumps(dict(document), sort_keys=True), document)
    # InvalidDocuments: every worker saw the same documents; counted once, not per scope.
    figures["InvalidDocuments"] = float(len(invalid))
    figures["TickSeconds"] = round(tick_seconds, 3)
    return FanoutReport(
        tick=tick,
        at=at,
        expected=tuple(sorted(wanted)),
        figures={k: round(v, 9) for k, v in figures.items()},
        done=tuple(sorted(s for s in found if s not in failed_scopes)),
        failed_scopes=failed_scopes,
        failed_services=tuple(sorted(failed_services)),
        problems=tuple(problems),
        invalid_documents=tuple(invalid.values()),
    )


def emf_document(report: FanoutReport, deployment: str) -> dict[str, Any]:
    """The tick's metrics line, as ``engine.metrics`` writes a single tick's."""
    return {
        "_aws": {
            "Timestamp": int(report.at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in UNITS],
                }
            ],
        },
        DIMENSION: deployment,
        **{name: report.figures.get(name, 0.0) for name in UNITS},
    }
