"""DynamoDB storage: the config table (documents operators edit) and the state table (teiji's own).

Both tables have the key ``pk`` (S, HASH) + ``sk`` (S, RANGE).

Config table — one item per document, its fields as plain attributes:
- schedule  ``pk="schedule"``, ``sk=<service key>`` (``cluster/service``, see ``schemas.keys``);
  ``service``/``account``/``region`` may be left out: the sort key names the service.
- calendar  ``pk="calendar"``, ``sk=<name>``.
- profile   ``pk="profile"``, ``sk=<name>``: a shared schedule body (``schemas.documents``).
- override  ``pk="override"``, ``sk="<service key>#<id>"`` and a numeric ``expires_at`` (epoch
  seconds, one day after ``until``) that DynamoDB's TTL uses to delete it eventually. TTL is
  lazy, so expired overrides are also filtered on ``until`` when loading.

State table:
- baseline  ``pk="baseline"``, ``sk=<service key>``: the capacity from before the first stop.
  Written with ``attribute_not_exists(pk)`` so it is never overwritten by a stop; amended (what
  people set while it was stopped) and deleted only with a condition on the version that was
  read.
- archived baseline  ``pk="baseline-archive"``, ``sk="<service key>#<saved_at, UTC ISO 8601>"``:
  the baseline of an earlier service of the same name, moved aside so that the service now
  under that name can save its own (the baseline fields, plus ``key``, ``archived_at`` and
  ``superseded_by``, the ARN of the service that took the slot). Written with
  ``attribute_not_exists(pk)``. teiji never deletes or restores archived baselines; operators
  read them in the state table (``StateStore.get_archived_baselines``) and remove them when
  they no longer need them.
- target check  ``pk="targets"``, ``sk=<service key>``: the fingerprint, time (epoch seconds)
  and result of the service's last full load-balancer target check (``engine.converge``
  checks again when any of them says so). Overwritten by every check; a missing or unreadable
  record only means "check now".
- lease     ``pk="lease"``, ``sk="ticks"``: the shard count and the slots ticks hold (read and
  written by ``engine.lease``, the only home of the lease protocol).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import ValidationError

from engine.aws.answers import checked_pages, require, unreadable
from engine.aws.batching import chunks
from engine.aws.clock import Clock, RealClock
from engine.aws.errors import AWS_ERRORS, StoreError, error_code, error_text
from engine.aws.lanes import run_lanes
from engine.config import DEFAULT_MAX_OVERRIDE, Settings
from engine.putdiff import HASH_ATTRIBUTE, stamped
from engine.tablecheck import kind_mismatch
from schemas.documents import DEFAULT_TIMEZONE, Calendar, Override, ProfileBase, Schedule
from schemas.keys import ServiceKey, service_key, split_override_sk
from schemas.records import BASELINE_ARCHIVE_PK, TARGET_CHECK_PK, Baseline, TargetCheck
from schemas.validation import (
    DocumentCheck,
    DocumentSet,
    Problem,
    parse_document,
    service_of_label,
    validate_documents,
)

if TYPE_CHECKING:
    from engine.aws.clients import Clients

KINDS = ("schedule", "calendar", "override", "profile")
BASELINE_PK = "baseline"
OVERRIDE_TTL_GRACE = timedelta(days=1)
BATCH_GET_LIMIT = 100  # keys per BatchGetItem call (API limit)
BATCH_WRITE_LIMIT = 25  # requests per BatchWriteItem call (API limit)
UNPROCESSED_ATTEMPTS = 8
TRANSACT_LIMIT = 100  # actions per TransactWriteItems call (API limit)
# Attributes that belong to the item, not to the document (``teiji_hash``: see engine.putdiff).
_ITEM_ONLY = frozenset({"pk", "sk", "expires_at", HASH_ATTRIBUTE})
# Attributes of an archived baseline's item that are not fields of the baseline it holds.
_ARCHIVE_ONLY = frozenset({"pk", "sk", "key", "archived_at", "superseded_by"})

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class WriteConflictError(RuntimeError):
    """Items changed between reading and a conditional write; ``keys`` are their (pk, sk)."""

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__(", ".join(f"{pk} {sk}" for pk, sk in keys))
        self.keys = list(keys)


@dataclass(frozen=True)
class CheckedWrite:
    """An item to write on condition that the stored one is still ``expected`` (as read, with
    ``from_attribute_map``), or that there is none when ``expected`` is None."""

    item: Mapping[str, Any]
    expected: Mapping[str, Any] | None


# Item <-> Python --------------------------------------------------------------------------------
def to_attribute_map(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _attribute(v) for k, v in item.items() if v is not None}


# Integers DynamoDB's numbers hold exactly (38 significant digits): boto3's serializer refuses
# the others, and is asked to here so that its error is the one raised.
_EXACT_INTEGER = 10**38


def _attribute(value: Any) -> dict[str, Any]:
    """``TypeSerializer().serialize`` of the types teiji writes, without its per-value type
    probing (a 10,000-service stop serializes every baseline it saves). Floats become
    ``Decimal(str(value))`` as ``_for_dynamodb`` has them; ``None`` inside a map is left out.
    Anything else is boto3's serializer's to write or refuse."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int and -_EXACT_INTEGER < value < _EXACT_INTEGER:
        return {"N": str(value)}
    if kind is dict:
        return {"M": {k: _attribute(v) for k, v in value.items() if v is not None}}
    if kind is list or kind is tuple:
        return {"L": [_attribute(v) for v in value]}
    return dict(_serializer.serialize(_for_dynamodb(value)))


def from_attribute_map(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _for_dynamodb(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _for_dynamodb(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_for_dynamodb(v) for v in value]
    return value


class WrongAttributeTypeError(ValueError):
    """An item attribute of a type teiji never writes (binary ``B``/``BS``): refused, not
    guessed at. ``field`` is the attribute's path in the item (``created_by``, ``windows[0]``)."""

    def __init__(self, field: str) -> None:
        field = _one_line(field, 80)
        super().__init__(
            f"{field} is a binary (B) attribute; teiji reads strings, numbers, booleans, lists "
            "and maps: write it as a string"
        )
        self.field = field


class _BinaryValueError(Exception):
    """A binary value somewhere inside; ``plain`` finds where, to name it."""


def plain(value: Any, field: str = "value") -> Any:
    """DynamoDB values as plain Python: whole Decimals -> int, other Decimals -> float,
    sets -> sorted lists; recursively. Binary values raise WrongAttributeTypeError naming
    the attribute: read as text they would slip past every check a string gets."""
    try:
        return _plain_value(value)
    except _BinaryValueError:
        raise WrongAttributeTypeError(_binary_path(value, field)) from None


def _plain_value(value: Any) -> Any:
    # Every attribute of every item on every load: no path is built unless one is needed.
    if isinstance(value, str | bool | int):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary | bytes | bytearray):
        raise _BinaryValueError
    if isinstance(value, set | frozenset):
        items = [_plain_value(v) for v in value]
        return sorted(items, key=lambda v: (str(type(v)), v))
    if isinstance(value, Mapping):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_value(v) for v in value]
    return value


def _binary_path(value: Any, field: str) -> str:
    """The path of the first binary value inside ``value`` (``field`` itself when it is one)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _holds_binary(item):
                return _binary_path(item, f"{field}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if _holds_binary(item):
                return _binary_path(item, f"{field}[{index}]")
    return field


def _holds_binary(value: Any) -> bool:
    if isinstance(value, Binary | bytes | bytearray):
        return True
    if isinstance(value, Mapping):
        return any(_holds_binary(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_binary(v) for v in value)
    return False


def plain_item(item: Mapping[str, Any], skip: Collection[str] = ()) -> dict[str, Any]:
    """An item's attributes (except ``skip``) as plain Python, each named by its own path."""
    return {k: plain(v, k) for k, v in item.items() if k not in skip}


def override_id(doc: Override) -> str:
    """The override's id, or a stable one made from its content when it has none."""
    if doc.id:
        return doc.id
    content = json.dumps(doc.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:12]


ConfigDocument = Schedule | Calendar | Override | ProfileBase


def item_key(doc: ConfigDocument) -> tuple[str, str]:
    """(pk, sk) of the item that holds ``doc``."""
    if isinstance(doc, Schedule):
        return "schedule", doc.key
    if isinstance(doc, Calendar):
        return "calendar", doc.name
    if isinstance(doc, ProfileBase):
        return "profile", doc.name
    return "override", f"{doc.key}#{override_id(doc)}"


def item_from_document(doc: ConfigDocument) -> dict[str, Any]:
    """The config-table item (plain Python, not yet DynamoDB-typed) for a document.

    Fields that the key already says (kind, service, account, region, calendar name) are left
    out so an operator editing the item in the console has one place to change them.
    """
    pk, sk = item_key(doc)
    omit: set[str] = {"kind"}
    if isinstance(doc, Schedule | Override):
        omit |= {"service", "account", "region"}
    if isinstance(doc, Calendar | ProfileBase):
        omit.add("name")
    include: set[str] | None = None
    if isinstance(doc, Schedule) and doc.profile is not None:
        # What the document says, not what it took from its profile (nor the defaults): a field
        # stored in the schedule wins over its profile, so writing the profile's fields (or a
        # default the profile may set later) into it would cut it off from the profile's edits.
        include = set(doc.model_fields_set) - doc.inherited
    body = doc.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude=omit, include=include
    )
    item: dict[str, Any] = {"pk": pk, "sk": sk, **body}
    if isinstance(doc, Override):
        item["id"] = override_id(doc)
        item["expires_at"] = int((doc.until + OVERRIDE_TTL_GRACE).timestamp())
    return item


def stamp_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item with its ``teiji_hash``, hashed as it will read back from DynamoDB."""
    return stamped(plain(from_attribute_map(to_attribute_map(item))))


def document_from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A config-table item (as boto3 deserialises it) as a plain document, ready to validate.

    Raises ValueError when the sort key cannot name the document.
    """
    kind = str(item.get("pk", ""))
    sk = str(item.get("sk", ""))
    doc = plain_item(item, _ITEM_ONLY)
    doc.setdefault("kind", kind)
    if kind == "schedule":
        _fill_service(doc, sk)
    elif kind in ("calendar", "profile"):
        doc.setdefault("name", sk)
    elif kind == "override":
        key, oid = split_override_sk(sk)
        _fill_service(doc, key)
        if oid:
            doc.setdefault("id", oid)
    return doc


def _fill_service(doc: dict[str, Any], key: str) -> None:
    parsed = ServiceKey.parse(key)
    doc.setdefault("service", parsed.name)
    if parsed.account:
        doc.setdefault("account", parsed.account)
    if parsed.region:
        doc.setdefault("region", parsed.region)


def _one_line(text: str, limit: int | None = None) -> str:
    # Printed on one line: control and format characters (a newline, a right-to-left
    # override) become "?"; a name longer than ``limit`` is cut with "...".
    shown = "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    if limit is not None and len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown


def _item_label(kind: str, sk: str) -> str:
    # A valid service key holds no character _one_line replaces.
    return f"{kind} {_one_line(sk)}"


def service_of_problem(problem: Problem) -> str | None:
    """The service key a problem makes unsafe to act on, from its document label."""
    return service_of_label(problem.document)


def conditional_write(write: Callable[..., object], **params: Any) -> bool:
    """Call a conditional DynamoDB write (``put_item``, ``delete_item``) with ``params``;
    True when it wrote, False when its condition did not hold."""
    try:
        write(**params)
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _backoff(attempt: int, *, base: float = 0.05, cap: float = 2.0) -> float:
    return float(min(cap, base * 2**attempt) * random.random())


def query_items(
    clients: Clients, table: str, pk: str, *, prefix: str | None = None
) -> list[dict[str, Any]]:
    """The items under partition ``pk`` (sort key beginning with ``prefix`` when given), all
    pages, strongly consistent."""
    condition = "pk = :pk"
    values: dict[str, Any] = {":pk": {"S": pk}}
    if prefix is not None:
        condition += " AND begins_with(sk, :prefix)"
        values[":prefix"] = {"S": prefix}
    pages = (
        clients.dynamodb()
        .get_paginator("query")
        .paginate(
            TableName=table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        )
    )
    return _page_items(pages, "Query")


def _page_items(pages: Iterable[Mapping[str, Any]], operation: str) -> list[dict[str, Any]]:
    """Every item of every page of a Query or Scan. A page without its ``Items`` list, or a
    ``LastEvaluatedKey`` that is no key or came before, fails the read (nothing is concluded
    from the pages that came)."""
    items: list[dict[str, Any]] = []
    for page in checked_pages(pages, operation, "LastEvaluatedKey", dict):
        items.extend(from_attribute_map(i) for i in require(page, operation, "Items", list))
    return items


# Config table -----------------------------------------------------------------------------------
@dataclass
class LoadedConfig:
    """Documents from the config table, the problems found, and the services they concern."""

    documents: DocumentSet
    problems: list[Problem]
    problem_keys: dict[str, list[Problem]] = field(default_factory=dict)
    items: int = 0
    override_items: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # by sort key
    # DescribeServices answers already read (opt-in by tag), by service key: not read again.
    described: dict[str, Mapping[str, Any]] = field(default_factory=dict)


class ConfigStore:
    """The documents in the config table."""

    def __init__(self, clients: Clients, table: str) -> None:
        self.clients = clients
        self.table = table
        self.source = f"dynamodb:{table}"

    # Reading ----------------------------------------------------------------------------------
    def query_kind(self, kind: str, *, prefix: str | None = None) -> list[dict[str, Any]]:
        """Every item of one kind, all pages, strongly consistent (edits show up at once);
        with ``prefix``, only the items whose sort key begins with it."""
        return query_items(self.clients, self.table, kind, prefix=prefix)

    def load(
        self,
        *,
        now: datetime | None = None,
        max_override: timedelta = DEFAULT_MAX_OVERRIDE,
        default_timezone: str = DEFAULT_TIMEZONE,
        keep_ended: bool = False,
    ) -> tuple[DocumentSet, list[Problem]]:
        loaded = self.load_config(
            now=now,
            max_override=max_override,
            default_timezone=default_timezone,
            keep_ended=keep_ended,
        )
        return loaded.documents, loaded.problems

    def load_config(
        self,
        *,
        now: datetime | None = None,
        max_override: timedelta = DEFAULT_MAX_OVERRIDE,
        default_timezone: str = DEFAULT_TIMEZONE,
        checks: Sequence[DocumentCheck] = (),
        keep_ended: bool = False,
        pace: Clock | None = None,
        schedule_keys: Sequence[str] | None = None,
    ) -> LoadedConfig:
        """Load and validate every document; overrides that ended before ``now`` are dropped
        unless ``keep_ended`` (simulating a past range needs them, as files give them).
        ``pace`` and ``schedule_keys``: see ``read_items``.

        A schedule that names no ``timezone`` gets ``default_timezone`` (pass the setting);
        ``checks`` hold the documents against the deployment (see ``validate_documents``).
        """
        items = self.read_items(pace=pace, schedule_keys=schedule_keys)
        return self.validate_items(
            items,
            now=now,
            max_override=max_override,
            default_timezone=default_timezone,
            checks=checks,
            keep_ended=keep_ended,
        )

    def read_items(
        self, *, pace: Clock | None = None, schedule_keys: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """The items of every kind, read at once (one round trip deep: a Query per kind, each
        on its own thread, waiting on ``pace``), in ``KINDS`` order, each kind by sort key.

        ``schedule_keys`` (a fan-out worker: its scope's keys, as the orchestrator read them):
        only those schedules, by BatchGetItem (100 a call, strongly consistent), instead of
        every schedule in the table. A key whose item is gone is simply not there."""
        found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        lock = threading.Lock()

        def read(kind: str, call: Callable[[], list[dict[str, Any]]]) -> None:
            items = call()
            with lock:
                found[kind].extend(items)

        units: list[Callable[[], None]] = []
        for kind in KINDS:
            if kind == "schedule" and schedule_keys is not None:
                for batch in chunks(sorted(set(schedule_keys)), BATCH_GET_LIMIT):
                    pairs = [("schedule", k) for k in batch]
                    units.append(
                        partial(read, kind, partial(batch_get, self.clients, self.table, pairs))
                    )
            else:
                units.append(partial(read, kind, partial(self.query_kind, kind)))
        run_lanes(pace or RealClock(), [units], workers=len(units))
        if schedule_keys is not None:  # batches answer in any order; a Query's are in order
            found["schedule"].sort(key=lambda item: str(item.get("sk", "")))
        return [item for kind in KINDS for item in found[kind]]

    def scan_items(self) -> list[dict[str, Any]]:
        """Every item of the table, whatever its ``pk`` (all pages, strongly consistent): for
        the table check, which must also see items the tick never reads."""
        pages = (
            self.clients.dynamodb()
            .get_paginator("scan")
            .paginate(TableName=self.table, ConsistentRead=True)
        )
        return _page_items(pages, "Scan")

    def validate_items(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        now: datetime | None = None,
        max_override: timedelta = DEFAULT_MAX_OVERRIDE,
        default_timezone: str = DEFAULT_TIMEZONE,
        checks: Sequence[DocumentCheck] = (),
        keep_ended: bool = False,
    ) -> LoadedConfig:
        """``load_config`` for items already read (as ``from_attribute_map`` gives them)."""
        now = now or datetime.now(UTC)
        raws: list[tuple[str, int, object]] = []
        problems: list[Problem] = []
        count = 0
        override_items: dict[str, Mapping[str, Any]] = {}
        for item in items:
            count += 1
            raw, item_problems = self._check_item(item, count, default_timezone)
            problems.extend(item_problems)
            if raw is not None:
                raws.append((self.source, count, raw))
            if item.get("pk") == "override":
                override_items[str(item.get("sk", ""))] = item
        documents, cross = validate_documents(
            raws,
            now=now,
            max_override=max_override,
            default_timezone=default_timezone,
            checks=checks,
            own_region=self.clients.region,
        )
        problems.extend(cross)
        if not keep_ended:
            documents.overrides = [o for o in documents.overrides if o.until > now]
        keys: dict[str, list[Problem]] = {}
        for problem in problems:
            key = service_of_problem(problem)
            if key:
                keys.setdefault(key, []).append(problem)
        return LoadedConfig(documents, problems, keys, count, override_items)

    def _check_item(
        self, item: Mapping[str, Any], index: int, default_timezone: str = DEFAULT_TIMEZONE
    ) -> tuple[dict[str, Any] | None, list[Problem]]:
        kind, sk = str(item.get("pk", "")), str(item.get("sk", ""))
        label = _item_label(kind, sk)
        mismatch = kind_mismatch(item)
        if mismatch:
            # One line that says what is wrong, not the errors of reading it as the other kind.
            return None, [Problem(self.source, label, "kind", mismatch)]
        try:
            raw = document_from_item(item)
        except WrongAttributeTypeError as err:
            return None, [Problem(self.source, label, err.field, str(err))]
        except ValueError as err:
            return None, [Problem(self.source, label, "sk", str(err))]
        if kind == "schedule" and "profile" in raw:
            # Valid only with its profile's body under it: validate_documents checks the two
            # together; here only the sort key is held against the document.
            wrong_key = self._profile_user_key_problems(raw, sk, label)
            return (None if wrong_key else raw), wrong_key
        parsed = parse_document(
            raw, source=self.source, index=index, default_timezone=default_timezone
        )
        if isinstance(parsed, list) and kind in ("calendar", "profile") and "name" in raw:
            # validate_documents reads it again and says so: its own problems, and for each
            # schedule that names it that it is invalid (not that there is none).
            return raw, []
        if isinstance(parsed, list):
            return None, [replace(p, document=label) for p in parsed]
        expected = item_key(parsed)
        if isinstance(parsed, Override):
            # The id may be absent from the document (the sort key gives it); where it is
            # there, it and the sort key's service part must agree with the sort key.
            _, hash_sign, sk_id = sk.partition("#")
            if not hash_sign or not sk_id:
                return None, [
                    Problem(
                        self.source,
                        label,
                        "sk",
                        f"the sort key {sk!r} of an override must be <service>#<id>, the id 1 "
                        "to 64 letters, digits, '-' and '_' (for this one: "
                        f"{parsed.key}#{override_id(parsed)})",
                    )
                ]
            expected = ("override", f"{parsed.key}#{parsed.id or sk_id}")
        if expected != (kind, sk):
            return None, [
                Problem(
                    self.source,
                    label,
                    "sk",
                    f"the sort key {sk!r} does not match the document, which names "
                    f"{expected[1]!r}; make them agree",
                )
            ]
        return raw, []

    def _profile_user_key_problems(
        self, raw: Mapping[str, Any], sk: str, label: str
    ) -> list[Problem]:
        service, account, region = (raw.get(k) for k in ("service", "account", "region"))
        if not isinstance(service, str):
            return []  # validating the schedule says what is wrong with it
        named = service_key(
            service.strip(),
            account if isinstance(account, str) else None,
            region if isinstance(region, str) else None,
        )
        if named == sk:
            return []
        return [
            Problem(
                self.source,
                label,
                "sk",
                f"the sort key {sk!r} does not match the document, which names {named!r}; "
                "make them agree",
            )
        ]

    def get(self, kind: str, sk: str) -> dict[str, Any] | None:
        item = self.get_item(kind, sk)
        return document_from_item(item) if item else None

    def get_item(self, kind: str, sk: str) -> dict[str, Any] | None:
        """The item as stored (plain values), strongly consistent; None when there is none."""
        response = self.clients.dynamodb().get_item(
            TableName=self.table,
            Key={"pk": {"S": kind}, "sk": {"S": sk}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_attribute_map(item) if item else None

    # Writing ----------------------------------------------------------------------------------
    def put(self, documents: Iterable[ConfigDocument]) -> int:
        """Write documents (replacing items with the same key, unconditionally); returns how
        many. Each item carries its ``teiji_hash``."""
        items = [stamp_item(item_from_document(doc)) for doc in documents]
        if len(items) == 1:
            self.clients.dynamodb().put_item(TableName=self.table, Item=to_attribute_map(items[0]))
            return 1
        for batch in chunks(items, BATCH_WRITE_LIMIT):
            requests = [{"PutRequest": {"Item": to_attribute_map(i)}} for i in batch]
            batch_write(self.clients.dynamodb(), self.table, requests)
        return len(items)

    def put_override_item(self, item: Mapping[str, Any], *, replacing: bool) -> bool:
        """Write one stamped override item on condition that an item with its key already
        exists (``replacing``: an extension) or does not yet (a new id); False when that
        condition did not hold (cancelled meanwhile, or the id was taken meanwhile)."""
        condition = "attribute_exists(pk)" if replacing else "attribute_not_exists(pk)"
        return conditional_write(
            self.clients.dynamodb().put_item,
            TableName=self.table,
            Item=to_attribute_map(stamp_item(item)),
            ConditionExpression=condition,
        )

    def write_checked(self, writes: Sequence[CheckedWrite]) -> None:
        """Write stamped items in transactions of up to 100, each on condition that its item
        is still as it was read (every attribute equal) or still absent. Raises WriteConflictError
        naming the items that changed meanwhile; nothing of that transaction is written."""
        client = self.clients.dynamodb()
        for chunk in chunks(writes, TRANSACT_LIMIT):
            actions: list[Any] = [{"Put": self._checked_put(write)} for write in chunk]
            try:
                client.transact_write_items(TransactItems=actions)
            except ClientError as err:
                if error_code(err) != "TransactionCanceledException":
                    raise
                reasons = err.response.get("CancellationReasons") or []
                failed = [
                    (str(w.item["pk"]), str(w.item["sk"]))
                    for w, reason in zip(chunk, reasons, strict=False)
                    if reason.get("Code") == "ConditionalCheckFailed"
                ]
                if not failed:
                    raise
                raise WriteConflictError(failed) from err

    def _checked_put(self, write: CheckedWrite) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": to_attribute_map(stamp_item(write.item)),
        }
        if write.expected is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
            return put
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        terms = ["attribute_exists(pk)"]
        for i, (name, value) in enumerate(sorted(write.expected.items())):
            if name in ("pk", "sk"):
                continue
            names[f"#a{i}"] = name
            values[f":v{i}"] = _serializer.serialize(value)
            terms.append(f"#a{i} = :v{i}")
        put["ConditionExpression"] = " AND ".join(terms)
        if names:
            put["ExpressionAttributeNames"] = names
            put["ExpressionAttributeValues"] = values
        return put

    def delete(self, kind: str, sk: str) -> bool:
        """Delete one document; False when there was none."""
        response = self.clients.dynamodb().delete_item(
            TableName=self.table,
            Key={"pk": {"S": kind}, "sk": {"S": sk}},
            ReturnValues="ALL_OLD",
        )
        return bool(response.get("Attributes"))


def batch_write(
    client: Any,
    table: str,
    requests: list[dict[str, Any]],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """One BatchWriteItem of up to 25 ``requests``, sending what DynamoDB left unprocessed
    again with back-off (waited on ``sleep``); StoreError when some are still left after the
    retries."""
    pending: dict[str, Any] = {table: requests}
    for attempt in range(UNPROCESSED_ATTEMPTS):
        response = client.batch_write_item(RequestItems=pending)
        pending = dict(response.get("UnprocessedItems") or {})
        if not pending:
            return
        sleep(_backoff(attempt))
    raise StoreError(f"{table}: DynamoDB left items unwritten after retries")


def batch_get(
    clients: Clients,
    table: str,
    pairs: Sequence[tuple[str, str]],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """The stored items among ``pairs`` (pk, sk; at most 100): one strongly consistent
    BatchGetItem and its retries of UnprocessedKeys. An answer that cannot be read, or that
    holds an item not asked for, fails the read: an item is absent only when a complete
    answer leaves it out."""
    request: dict[str, Any] = {
        table: {
            "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in pairs],
            "ConsistentRead": True,
        }
    }
    items: list[dict[str, Any]] = []
    asked = set(pairs)
    for attempt in range(UNPROCESSED_ATTEMPTS):
        response: Mapping[str, Any] = clients.dynamodb().batch_get_item(RequestItems=request)
        responses = require(response, "BatchGetItem", "Responses", dict)
        unprocessed = response.get("UnprocessedKeys") or {}
        if not isinstance(unprocessed, dict):
            raise unreadable("BatchGetItem", "UnprocessedKeys is not a map")
        # DynamoDB names the table even when none of its keys has an item, unless it handed
        # every key back.
        answers = responses.get(table, None if table not in unprocessed else [])
        if not isinstance(answers, list):
            raise unreadable("BatchGetItem", f"Responses.{table} is not a list")
        for raw in answers:
            try:
                item = from_attribute_map(raw)
            except (TypeError, ValueError, AttributeError):
                raise unreadable("BatchGetItem", "an item is not a DynamoDB item") from None
            if (item.get("pk"), item.get("sk")) not in asked:
                raise unreadable("BatchGetItem", "it holds an item that was not asked for")
            items.append(item)
        request = dict(unprocessed)
        if not request:
            return items
        # DynamoDB hands keys back when it is throttled: back off before asking again.
        sleep(_backoff(attempt))
    raise StoreError(f"{table}: DynamoDB kept keys unprocessed after retries")


# State table ------------------------------------------------------------------------------------
@dataclass
class StoredBaselines:
    """What the state table holds for some services: their baselines, and the items that
    cannot be read as one (by key, with what is wrong)."""

    found: dict[str, Baseline] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    def update(self, other: StoredBaselines) -> None:
        self.found.update(other.found)
        self.unreadable.update(other.unreadable)


@dataclass
class BatchOutcome:
    """What a batch of conditional baseline writes is known to have done, by service key.

    ``done``: written (saved, deleted). ``refused``: its condition did not hold (a baseline
    was already there; the baseline is not the version read), nothing written. A key in
    neither is unconfirmed (``error`` says why): the caller must not act as if it had been
    written, nor as if it had not.
    """

    done: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    error: str | None = None

    def of(self, key: str) -> Literal["done", "refused"] | None:
        if key in self.done:
            return "done"
        if key in self.refused:
            return "refused"
        return None


def _refused_actions(err: ClientError, count: int) -> set[int] | None:
    """The positions of the actions whose condition failed, from a cancelled transaction's
    ``CancellationReasons``; None when they cannot be read (not one reason per action)."""
    reasons = err.response.get("CancellationReasons")
    if not isinstance(reasons, list) or len(reasons) != count:
        return None
    refused: set[int] = set()
    for i, reason in enumerate(reasons):
        if not isinstance(reason, Mapping):
            return None
        if reason.get("Code") == "ConditionalCheckFailed":
            refused.add(i)
    return refused


class StateStore:
    """Baselines (the lease is ``engine.lease``'s)."""

    def __init__(
        self,
        clients: Clients,
        table: str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clients = clients
        self.table = table
        self._clock = clock
        self._sleep = sleep

    # Baselines --------------------------------------------------------------------------------
    def get_baselines(self, keys: Iterable[str]) -> dict[str, Baseline]:
        """The readable baselines of ``keys`` (see ``read_baselines``)."""
        return self.read_baselines(keys).found

    def read_baselines(self, keys: Iterable[str]) -> StoredBaselines:
        """Baselines for ``keys``: BatchGetItem, 100 keys a call, UnprocessedKeys retried.
        An item that does not parse is not a baseline: it is listed with what is wrong."""
        return self.read_observed(keys, ())[0]

    def read_observed(
        self, baseline_keys: Iterable[str], check_keys: Iterable[str]
    ) -> tuple[StoredBaselines, dict[str, TargetCheck]]:
        """The baselines of ``baseline_keys`` and the target checks of ``check_keys``, read
        together: one BatchGetItem for every 100 records of either kind (a call takes keys of
        any partition), UnprocessedKeys retried. A call that fails fails the whole read."""
        pairs = [(BASELINE_PK, k) for k in dict.fromkeys(baseline_keys)]
        pairs += [(TARGET_CHECK_PK, k) for k in dict.fromkeys(check_keys)]
        baselines = StoredBaselines()
        checks: dict[str, TargetCheck] = {}
        for batch in chunks(pairs, BATCH_GET_LIMIT):
            for item in self._batch_get(batch):
                _file_record(item, baselines, checks)
        return baselines, checks

    def _batch_get(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        return batch_get(self.clients, self.table, pairs, sleep=self._sleep)

    def save_baselines(self, baselines: Sequence[Baseline]) -> BatchOutcome:
        """Save each baseline unless one exists (never overwrite), up to 100 a transaction
        (TransactWriteItems, each Put on ``attribute_not_exists(pk)``), before any of those
        services is changed. See ``BatchOutcome`` for what the caller may conclude."""
        puts = [
            (
                b.key,
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_attribute_map(
                            {"pk": BASELINE_PK, "sk": b.key, **baseline_body(b)}
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            )
            for b in baselines
        ]
        return self._transact(puts, "save")

    def delete_baselines(self, baselines: Sequence[Baseline]) -> BatchOutcome:
        """Delete each baseline only if it is still the one that was read (its version and
        ``saved_at``), up to 100 a transaction. See ``BatchOutcome``."""
        deletes = [
            (
                b.key,
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": BASELINE_PK}, "sk": {"S": b.key}},
                        "ConditionExpression": "version = :v AND saved_at = :s",
                        "ExpressionAttributeValues": {
                            ":v": {"S": b.version},
                            ":s": {"S": baseline_body(b)["saved_at"]},
                        },
                    }
                },
            )
            for b in baselines
        ]
        return self._transact(deletes, "delete")

    def _transact(self, actions: Sequence[tuple[str, dict[str, Any]]], verb: str) -> BatchOutcome:
        """Run conditional actions (key, TransactWriteItems action) 100 a transaction.

        A transaction is all or nothing. When DynamoDB cancels it, ``CancellationReasons``
        holds one reason per action, in order (API reference, CancellationReason): the actions
        whose reason is ``ConditionalCheckFailed`` are refused (nothing written for them), the
        rest would have passed (``None``) or met a passing trouble (``TransactionConflict``,
        throttling) and are sent again without the refused ones. Any other failure (an error
        answer after botocore's retries, an answer cut or unreadable, reasons that cannot be
        read) leaves the rest of that chunk unconfirmed: it may or may not have been written.
        A retried request keeps botocore's ``ClientRequestToken``, so DynamoDB does not apply
        a transaction twice when an answer is lost.
        """
        outcome = BatchOutcome()
        client = self.clients.dynamodb()
        for chunk in chunks(list(actions), TRANSACT_LIMIT):
            if len(chunk) == 1:
                # One action: the single conditional write, at half a transaction's cost.
                self._single(chunk[0], outcome)
                continue
            pending = chunk
            for attempt in range(UNPROCESSED_ATTEMPTS):
                try:
                    client.transact_write_items(TransactItems=[a for _, a in pending])  # type: ignore[misc]
                except ClientError as err:
                    if error_code(err) != "TransactionCanceledException":
                        outcome.error = outcome.error or error_text(err)
                        break
                    refused = _refused_actions(err, len(pending))
                    if refused is None:
                        outcome.error = outcome.error or (
                            f"TransactWriteItems: the cancellation reasons cannot be read "
                            f"({error_text(err)})"
                        )
                        break
                    outcome.refused.update(pending[i][0] for i in refused)
                    pending = [a for i, a in enumerate(pending) if i not in refused]
                    if not pending:
                        break
                    if not refused:  # a conflict or throttling: back off before the retry
                        self._sleep(_backoff(attempt))
                    continue
                except AWS_ERRORS as exc:
                    outcome.error = outcome.error or error_text(exc)
                    break
                outcome.done.update(key for key, _ in pending)
                break
            else:
                outcome.error = outcome.error or (
                    f"DynamoDB cancelled the {verb} of baselines {UNPROCESSED_ATTEMPTS} times"
                )
        return outcome

    def _single(self, action: tuple[str, dict[str, Any]], outcome: BatchOutcome) -> None:
        key, (kind, params) = action[0], next(iter(action[1].items()))
        client = self.clients.dynamodb()
        write = client.put_item if kind == "Put" else client.delete_item
        try:
            wrote = conditional_write(write, **params)
        except AWS_ERRORS as exc:
            outcome.error = outcome.error or error_text(exc)
            return
        (outcome.done if wrote else outcome.refused).add(key)

    def save_baseline(self, baseline: Baseline) -> bool:
        """Save unless one exists (never overwrite); True when this call wrote it."""
        item = {"pk": BASELINE_PK, "sk": baseline.key, **baseline_body(baseline)}
        return conditional_write(
            self.clients.dynamodb().put_item,
            TableName=self.table,
            Item=to_attribute_map(item),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def amend_baseline(self, expected: Baseline, amended: Baseline) -> bool:
        """Replace the baseline with ``amended`` only if it is still ``expected`` (the version
        that was read); True when this call wrote it."""
        item = {"pk": BASELINE_PK, "sk": amended.key, **baseline_body(amended)}
        return conditional_write(
            self.clients.dynamodb().put_item,
            TableName=self.table,
            Item=to_attribute_map(item),
            ConditionExpression="version = :v AND saved_at = :s",
            ExpressionAttributeValues={
                ":v": {"S": expected.version},
                ":s": {"S": baseline_body(expected)["saved_at"]},
            },
        )

    def delete_baseline(self, key: str, expected: Baseline) -> bool:
        """Delete the baseline only if it is still the one that was read; True when deleted."""
        return conditional_write(
            self.clients.dynamodb().delete_item,
            TableName=self.table,
            Key={"pk": {"S": BASELINE_PK}, "sk": {"S": key}},
            ConditionExpression="version = :v AND saved_at = :s",
            ExpressionAttributeValues={
                ":v": {"S": expected.version},
                ":s": {"S": baseline_body(expected)["saved_at"]},
            },
        )

    # Target checks ------------------------------------------------------------------------------
    def read_target_checks(self, keys: Iterable[str]) -> dict[str, TargetCheck]:
        """The readable target-check records of ``keys``: BatchGetItem, 100 keys a call. An
        item that does not parse is left out, which means "check now"."""
        return self.read_observed((), keys)[1]

    def save_target_checks(self, checks: Sequence[TargetCheck]) -> None:
        """Overwrite the target-check records of ``checks`` (the newest check is the one that
        counts): BatchWriteItem, 25 a call; one record per service (the last given wins)."""
        newest = {check.key: check for check in checks}
        items = [
            {"pk": TARGET_CHECK_PK, "sk": c.key, **c.model_dump(exclude={"key"})}
            for c in newest.values()
        ]
        for batch in chunks(items, BATCH_WRITE_LIMIT):
            requests = [{"PutRequest": {"Item": to_attribute_map(item)}} for item in batch]
            batch_write(self.clients.dynamodb(), self.table, requests, self._sleep)

    # Archived baselines -------------------------------------------------------------------------
    def archive_baseline(
        self, baseline: Baseline, *, archived_at: datetime, superseded_by: str | None = None
    ) -> bool:
        """Copy ``baseline`` to its archive item (never overwritten); True when this call wrote it.

        False when an identical copy is already there: an earlier attempt wrote it and then
        stopped (a crash, a lost lease), so the archiving is done. Raises StoreError when the
        archive item holds a different baseline, which is kept as it is. teiji never deletes
        archived baselines.
        """
        item = archive_item(baseline, archived_at=archived_at, superseded_by=superseded_by)
        try:
            self.clients.dynamodb().put_item(
                TableName=self.table,
                Item=to_attribute_map(item),
                ConditionExpression="attribute_not_exists(pk)",
                # The item that is already there, in the same round trip.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if error_code(err) != "ConditionalCheckFailedException":
                raise
            raw: Mapping[str, Any] | None = err.response.get("Item")  # type: ignore[assignment]
            existing = from_attribute_map(raw) if raw else self._archive_item(item["sk"])
            if existing is not None and _archived_copy_of(existing, baseline):
                return False
            raise StoreError(
                f"{self.table}: the archived baseline pk={BASELINE_ARCHIVE_PK} "
                f"sk={item['sk']} already holds a different baseline; both are kept"
            ) from err
        return True

    def _archive_item(self, sk: str) -> dict[str, Any] | None:
        response = self.clients.dynamodb().get_item(
            TableName=self.table,
            Key={"pk": {"S": BASELINE_ARCHIVE_PK}, "sk": {"S": sk}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_attribute_map(item) if item else None

    def get_archived_baselines(self, key: str) -> list[Baseline]:
        """The archived baselines of one service key, oldest first (all pages, consistent).

        Items that do not parse are left out.
        """
        found: list[Baseline] = []
        for item in query_items(self.clients, self.table, BASELINE_ARCHIVE_PK, prefix=f"{key}#"):
            try:
                found.append(baseline_from_archive_item(item))
            except (ValidationError, WrongAttributeTypeError):
                continue
        return sorted(found, key=lambda b: b.saved_at)


def _file_record(
    item: Mapping[str, Any], baselines: StoredBaselines, checks: dict[str, TargetCheck]
) -> None:
    """Put one record read back where it belongs: a baseline that does not parse is listed
    as unreadable; a target check that does not parse is left out ("check now")."""
    key = str(item.get("sk", ""))
    if item.get("pk") == BASELINE_PK:
        try:
            baselines.found[key] = baseline_from_item(item)
        except (ValidationError, WrongAttributeTypeError) as err:
            baselines.unreadable[key] = f"the saved baseline is unreadable: {err}"
        return
    try:
        check = target_check_from_item(item)
    except (ValidationError, WrongAttributeTypeError):
        return
    checks[check.key] = check


def baseline_body(baseline: Baseline) -> dict[str, Any]:
    return baseline.model_dump(mode="json", exclude_none=True, exclude={"key"})


def baseline_from_item(item: Mapping[str, Any]) -> Baseline:
    data = plain_item(item, ("pk", "sk"))
    return Baseline.model_validate({**data, "key": str(item.get("sk", ""))})


def target_check_from_item(item: Mapping[str, Any]) -> TargetCheck:
    data = plain_item(item, ("pk", "sk"))
    return TargetCheck.model_validate({**data, "key": str(item.get("sk", ""))})


def archive_item(
    baseline: Baseline, *, archived_at: datetime, superseded_by: str | None = None
) -> dict[str, Any]:
    """The state-table item (plain Python) that keeps ``baseline`` once it is moved aside."""
    return {
        "pk": BASELINE_ARCHIVE_PK,
        "sk": baseline.archive_sort_key,
        "key": baseline.key,
        **baseline_body(baseline),
        "archived_at": archived_at.astimezone(UTC).isoformat(),
        "superseded_by": superseded_by,
    }


def baseline_from_archive_item(item: Mapping[str, Any]) -> Baseline:
    data = plain_item(item, _ARCHIVE_ONLY)
    return Baseline.model_validate({**data, "key": str(item.get("key", ""))})


def _archived_copy_of(item: Mapping[str, Any], baseline: Baseline) -> bool:
    """True when an archive item holds exactly ``baseline`` (when or why it was archived aside)."""
    try:
        return baseline_from_archive_item(item) == baseline
    except (ValidationError, WrongAttributeTypeError):
        return False


# Tables -----------------------------------------------------------------------------------------
def init_tables(clients: Clients, settings: Settings) -> list[str]:
    """Create both tables (on-demand) if missing and TTL on the config table; what was done."""
    done: list[str] = []
    client = clients.dynamodb()
    for table in (settings.config_table, settings.state_table):
        try:
            client.describe_table(TableName=table)
            done.append(f"table {table} exists")
            continue
        except ClientError as err:
            if error_code(err) != "ResourceNotFoundException":
                raise
        client.create_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(
            TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        done.append(f"table {table} created")
    try:
        client.update_time_to_live(
            TableName=settings.config_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
        done.append(f"TTL on {settings.config_table}.expires_at enabled")
    except ClientError as err:
        # Asking twice is refused ("TimeToLive is already enabled"): that is the state we want.
        if "already enabled" not in str(err):
            raise
    return done
