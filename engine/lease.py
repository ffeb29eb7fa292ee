"""The tick lease: which tick may act on which services, now.

Ticks split the services into shards (``sha256(key) % shards``); a tick holds the slot of every
shard it acts on. All slots live in one item of the state table, with the deployment's shard
count, so that two ticks can never act on one service at once, whatever shard settings each
was started with:

- ``pk="lease"``, ``sk="ticks"``: ``shards`` (the count every tick must use), ``version`` (a
  fresh id on every write) and ``slots``, a map from shard index to ``holder``, ``taken_at``
  and ``expires_at`` (epoch seconds).

Every change is a compare-and-swap: read the item (consistently), compute the new one here
(pure functions: ``take``, ``renew``, ``release``, ``without``) and write it on the condition
that ``version`` is still the one read. A tick asking for another count is refused while the
record names a different one; the record follows a new count only when a tick of the
deployment's own count (``TEIJI_SHARDS``) finds no slot held. A tick given no shard uses the
recorded count. Items under ``pk="lease"`` of earlier versions (``sk="tick"``,
``"tick#<i>/<n>"``) block every tick until they expire.

A lease is short (``TEIJI_LEASE_SECONDS``, two minutes) and renewed while its tick works: by a
heartbeat thread on the real clock, and at every checkpoint of the tick (before each service
is decided or acted on). A tick that dies blocks the others for one lease length at most.
Once a renewal is refused (the lease ran out, or it was broken), the tick writes nothing more.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from engine.aws.errors import AWS_ERRORS, error_code
from engine.config import MAX_SHARDS
from engine.logs import log_event

if TYPE_CHECKING:
    from engine.aws.clients import Clients

LEASE_PK = "lease"
RECORD_SK = "ticks"
LEASE_NAME = "tick"
# Stop acting this long before the lease runs out, so a slow call cannot outlive it.
LEASE_MARGIN_S = 30.0
R = TypeVar("R")
# Compare-and-swap rounds before giving up (many shards starting at the same second contend).
CAS_ATTEMPTS = 40


class LeaseError(RuntimeError):
    """The lease record cannot be read or written; no tick can act until it can."""


# What a call on the lease may raise: AWS's failures and the lease's own.
LEASE_ERRORS: tuple[type[Exception], ...] = (*AWS_ERRORS, LeaseError)


# Shards and their names ---------------------------------------------------------------------------
def shard_of(key: str, count: int) -> int:
    """A service's shard: stable across runs and machines (sha256 of the key)."""
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % count


def lease_name(shard: tuple[int, int] | None) -> str:
    """How a slot is shown: ``tick`` with one shard, ``tick#<i>/<n>`` with several."""
    if shard is None or shard[1] == 1:
        return LEASE_NAME
    index, count = shard
    return f"{LEASE_NAME}#{index}/{count}"


# A fan-out worker's lease: one record per (account, region), apart from the ticks' record,
# so that the scopes of one fleet never wait for each other (engine.fanout).
SCOPE_LEASE_PREFIX = "lease#scope#"


def scope_lease_pk(scope_id: str) -> str:
    """The partition of one scope's lease record (``scope_id``: ``engine.fanout.scope_id``)."""
    return SCOPE_LEASE_PREFIX + scope_id


def check_shard(shard: tuple[int, int] | None) -> None:
    if shard is None:
        return
    index, count = shard
    if not 1 <= count <= MAX_SHARDS or not 0 <= index < count:
        raise ValueError(
            f"shard {index} of {count}: need 1 <= shards <= {MAX_SHARDS} and 0 <= shard < shards"
        )


@dataclass(frozen=True)
class Cover:
    """The shards whose services a tick may act on: ``indices`` of ``count``.

    ``named`` is true when the shards were chosen for the services a tick was given: a named
    service found outside them is then reported, not silently left to another shard.
    """

    indices: tuple[int, ...]
    count: int
    named: bool = False

    def holds(self, key: str) -> bool:
        return self.count == 1 or shard_of(key, self.count) in self.indices

    def lease_names(self) -> list[str]:
        return [lease_name((index, self.count)) for index in sorted(self.indices)]


def shard_count(
    shard: tuple[int, int] | None, snapshot: Snapshot, own_shards: int
) -> tuple[int, bool]:
    """The shard count a tick uses, and whether it may move the record to it.

    A tick given a shard uses its count; only the deployment's own (``own_shards``,
    ``TEIJI_SHARDS``) may replace a recorded other one. A tick given none uses the recorded
    count, else the deployment's.
    """
    if shard is not None:
        return shard[1], shard[1] == own_shards
    if snapshot.record is not None:
        return snapshot.record.shards, False
    return own_shards, False


def cover_for(
    shard: tuple[int, int] | None, shards: int, named_keys: Collection[str] | None
) -> Cover:
    """The shards a tick covers and so the slots it takes.

    An explicit shard (the scheduled Lambda) is that shard. Without one, the tick covers every
    shard holding a service it will act on: all of them for a full tick, the shards of
    ``named_keys`` for a tick given services (at least one, so it always holds a slot).
    """
    if shard is not None:
        return Cover((shard[0],), shard[1])
    if shards == 1 or named_keys is None:
        return Cover(tuple(range(shards)), shards)
    indices = sorted({shard_of(key, shards) for key in named_keys}) or [0]
    return Cover(tuple(indices), shards, named=True)


# The record, and what may be done to it (pure) ----------------------------------------------------
@dataclass(frozen=True)
class Slot:
    """One shard's lease: who holds it, since when and until when (epoch seconds)."""

    holder: str
    taken_at: float
    expires_at: float

    def live(self, now: float) -> bool:
        return now < self.expires_at


@dataclass(frozen=True)
class LeaseRecord:
    """The deployment's shard count and the slots held; ``version`` None: not stored yet."""

    shards: int
    slots: Mapping[int, Slot] = field(default_factory=dict)
    version: str | None = None

    def live(self, now: float) -> dict[int, Slot]:
        return {i: s for i, s in self.slots.items() if s.live(now)}

    def held_by(self, holder: str) -> list[int]:
        return sorted(i for i, s in self.slots.items() if s.holder == holder)


@dataclass(frozen=True)
class Blocked:
    """Another tick holds ``name`` (a slot, or an item of an earlier version)."""

    name: str
    slot: Slot


@dataclass(frozen=True)
class CountRefused:
    """The tick asked for ``asked`` shards; the deployment ticks in ``recorded``."""

    recorded: int
    asked: int

    def __str__(self) -> str:
        return (
            f"the deployment ticks in {self.recorded} shard(s) (the lease record in the state "
            f"table); a tick of {self.asked} shard(s) is refused so that two ticks never act on "
            f"one service at once. Send shards={self.recorded}, or set TEIJI_SHARDS to the new "
            "count so that the record follows it once no tick holds a slot"
        )


@dataclass(frozen=True)
class Snapshot:
    """What the table holds under ``pk="lease"``: the record and items of earlier versions."""

    record: LeaseRecord | None
    legacy: Mapping[str, Slot] = field(default_factory=dict)


def take(
    snapshot: Snapshot,
    cover: Cover,
    holder: str,
    now: float,
    ttl: float,
    *,
    may_switch: bool,
) -> LeaseRecord | Blocked | CountRefused:
    """The record with ``cover``'s slots held by ``holder``, or why not.

    A record of another count is refused, unless ``may_switch`` (the tick's count is the
    deployment's setting) and no slot is live: the record then moves to the new count.
    """
    for name, slot in sorted(snapshot.legacy.items()):
        if slot.live(now):
            return Blocked(name, slot)
    record = snapshot.record
    if record is None:
        record = LeaseRecord(shards=cover.count)
    live = record.live(now)
    if record.shards != cover.count:
        if not may_switch or live:
            return CountRefused(record.shards, cover.count)
        record = LeaseRecord(shards=cover.count, version=record.version)
        live = {}
    for index in sorted(cover.indices):
        held = live.get(index)
        if held is not None and held.holder != holder:
            return Blocked(lease_name((index, record.shards)), held)
    slots = dict(live)
    for index in cover.indices:
        slots[index] = Slot(holder, now, now + ttl)
    return replace(record, slots=slots)


def renew(record: LeaseRecord | None, holder: str, now: float, ttl: float) -> LeaseRecord | None:
    """Every slot of ``holder`` extended to ``now + ttl``; None when it holds none any more or
    one has run out (another tick may have taken over: the lease is lost)."""
    if record is None:
        return None
    mine = record.held_by(holder)
    if not mine or any(not record.slots[i].live(now) for i in mine):
        return None
    slots = dict(record.slots)
    for index in mine:
        slots[index] = replace(slots[index], expires_at=now + ttl)
    return replace(record, slots=slots)


def without(record: LeaseRecord | None, holder: str) -> LeaseRecord | None:
    """The record with ``holder``'s slots removed (released or broken); None: it has none."""
    if record is None or not record.held_by(holder):
        return None
    slots = {i: s for i, s in record.slots.items() if s.holder != holder}
    return replace(record, slots=slots)


def holder_id(request_id: str | None = None) -> str:
    """Who a tick is, as the lease shows it: the Lambda request id, or host and pid; with a
    short random suffix, since two ticks of one process (or a retried request) must differ."""
    who = f"lambda:{request_id}" if request_id else f"{socket.gethostname()}:{os.getpid()}"
    return f"{who}/{uuid.uuid4().hex[:8]}"


def printable(text: str, limit: int = 200) -> str:
    """A holder as people may read it: control characters (a forged item's ANSI escapes)
    shown as ``?``, and no longer than ``limit``."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + ("…" if len(text) > limit else "")


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def describe(name: str, slot: Slot, now: float) -> str:
    """``tick#1/2 held by HOST:PID/ab12cd34 since 14:00:03Z, expires 14:02:03Z (in 117 s)``."""
    left = slot.expires_at - now
    when = f"in {left:.0f} s" if left >= 0 else f"{-left:.0f} s ago"
    return (
        f"{name} held by {printable(slot.holder)} since {utc(slot.taken_at):%Y-%m-%dT%H:%M:%SZ}, "
        f"expires {utc(slot.expires_at):%Y-%m-%dT%H:%M:%SZ} ({when})"
    )


# The item -------------------------------------------------------------------------------------
def _number(value: float) -> dict[str, str]:
    return {"N": str(round(Decimal(repr(value)), 3))}


def record_item(record: LeaseRecord, version: str, pk: str = LEASE_PK) -> dict[str, Any]:
    """The record as a DynamoDB attribute map (under ``pk``: the ticks', or one scope's)."""
    slots = {
        str(index): {
            "M": {
                "holder": {"S": slot.holder},
                "taken_at": _number(slot.taken_at),
                "expires_at": _number(slot.expires_at),
            }
        }
        for index, slot in record.slots.items()
    }
    return {
        "pk": {"S": pk},
        "sk": {"S": RECORD_SK},
        "shards": {"N": str(record.shards)},
        "version": {"S": version},
        "slots": {"M": slots},
    }


def _read_slot(raw: Mapping[str, Any], where: str) -> Slot:
    try:
        holder = raw["holder"]["S"]
        taken_at = float(raw["taken_at"]["N"])
        expires_at = float(raw["expires_at"]["N"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LeaseError(f"{where}: needs holder (S), taken_at (N) and expires_at (N)") from exc
    if not holder:
        raise LeaseError(f"{where}: holder is empty")
    return Slot(holder, taken_at, expires_at)


def record_from_item(item: Mapping[str, Any], table: str) -> LeaseRecord:
    """Parse the record; anything unexpected is a LeaseError (no tick acts on a guess)."""
    pk = item.get("pk", {}).get("S") if isinstance(item.get("pk"), Mapping) else None
    # A scope's record is under its own pk: name the one read, not the ticks'.
    where = f"the lease record pk={pk or LEASE_PK} sk={RECORD_SK} in table {table}"
    try:
        shards = int(item["shards"]["N"])
        version = str(item["version"]["S"])
        raw_slots = item.get("slots", {"M": {}})["M"]
    except (KeyError, TypeError, ValueError) as exc:
        raise LeaseError(
            f"{where} is unreadable: it needs shards (N), version (S) and slots (M)"
        ) from exc
    if not 1 <= shards <= MAX_SHARDS:
        raise LeaseError(f"{where} is unreadable: shards {shards} is not 1 to {MAX_SHARDS}")
    slots: dict[int, Slot] = {}
    for key, raw in raw_slots.items():
        if not key.isdigit() or not 0 <= int(key) < shards:
            raise LeaseError(f"{where} is unreadable: slot {key!r} is not a shard of {shards}")
        slots[int(key)] = _read_slot(raw.get("M", {}), f"{where}, slot {key}")
    return LeaseRecord(shards, slots, version)


def _legacy_slot(item: Mapping[str, Any], where: str) -> Slot:
    try:
        holder = item["holder"]["S"]
        expires_at = float(item["expires_at"]["N"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LeaseError(f"{where} is unreadable") from exc
    taken = item.get("acquired_at", {}).get("S")
    taken_at = datetime.fromisoformat(taken).timestamp() if taken else expires_at
    return Slot(holder, taken_at, expires_at)


# The adapter ----------------------------------------------------------------------------------
# What ``LeaseTable.write`` answers when it deleted the record instead of writing it.
DELETED = ""


class LeaseTable:
    """Reads and compare-and-swaps the lease record in the state table.

    ``pk`` is the record's partition: ``lease`` for the ticks' (and their shards), or a
    scope's own (``scope_lease_pk``) for the fan-out workers (``engine.fanout``).
    """

    def __init__(
        self,
        clients: Clients,
        table: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        pk: str = LEASE_PK,
    ) -> None:
        self.clients = clients
        self.table = table
        self.pk = pk
        self._sleep = sleep
        self.last: Snapshot | None = None  # the record as this table last wrote it
        # A scope's record holds one slot and no shard count: once no slot is held it is
        # deleted, so that the next worker takes it with one conditional write, no read.
        self.deletes_empty = pk != LEASE_PK

    def read(self) -> Snapshot:
        """Everything under ``pk="lease"``, strongly consistent, all pages."""
        client = self.clients.dynamodb()
        record: LeaseRecord | None = None
        legacy: dict[str, Slot] = {}
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": self.pk}},
            "ConsistentRead": True,
        }
        while True:
            response = client.query(**params)
            for item in response.get("Items", []):
                sk = item.get("sk", {}).get("S", "")
                if sk == RECORD_SK:
                    record = record_from_item(item, self.table)
                else:
                    legacy[sk] = _legacy_slot(item, f"the lease item sk={sk} in {self.table}")
            start = response.get("LastEvaluatedKey")
            if not start:
                return Snapshot(record, legacy)
            params["ExclusiveStartKey"] = start

    def write(self, new: LeaseRecord, expected: str | None) -> str | None:
        """Store ``new`` if the record is still version ``expected`` (None: absent); the
        version written, or None when another write came first."""
        if self.deletes_empty and not new.slots:
            return self._delete(expected)
        version = uuid.uuid4().hex
        item = record_item(new, version, self.pk)
        params: dict[str, Any] = {"TableName": self.table, "Item": item}
        if expected is None:
            params["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            params["ConditionExpression"] = "version = :v"
            params["ExpressionAttributeValues"] = {":v": {"S": expected}}
        try:
            self.clients.dynamodb().put_item(**params)
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return None
            raise
        return version

    def _delete(self, expected: str | None) -> str | None:
        """Remove the record if it is still version ``expected``; ``DELETED`` when it is gone,
        None when another write came first."""
        if expected is None:
            return DELETED
        try:
            self.clients.dynamodb().delete_item(
                TableName=self.table,
                Key={"pk": {"S": self.pk}, "sk": {"S": RECORD_SK}},
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": {"S": expected}},
            )
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return None
            raise
        return DELETED

    def update(
        self,
        step: Callable[[Snapshot], tuple[LeaseRecord | None, R]],
        *,
        first: Snapshot | None = None,
    ) -> R:
        """Read, let ``step`` say what to write (None: nothing) and its answer, and write on the
        version read; again, from a fresh read, when another tick wrote in between.

        ``first`` (default: what this table last wrote) saves the first read: when nobody
        wrote since, one conditional write is the whole round trip.
        """
        guess = first if first is not None else self.last
        for attempt in range(CAS_ATTEMPTS):
            snapshot = guess if attempt == 0 and guess is not None else self.read()
            new, answer = step(snapshot)
            if new is None:
                return answer
            expected = snapshot.record.version if snapshot.record else None
            version = self.write(new, expected)
            if version is not None:
                stored = None if version == DELETED else replace(new, version=version)
                self.last = Snapshot(stored, snapshot.legacy)
                return answer
            if attempt > 0:
                self._sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))
        raise LeaseError(
            f"the lease record in table {self.table} changed under every one of "
            f"{CAS_ATTEMPTS} attempts to write it"
        )

    def delete_legacy(self, name: str, holder: str) -> bool:
        """Remove an item of an earlier version if ``holder`` still holds it."""
        try:
            self.clients.dynamodb().delete_item(
                TableName=self.table,
                Key={"pk": {"S": self.pk}, "sk": {"S": name}},
                ConditionExpression="holder = :h",
                ExpressionAttributeValues={":h": {"S": holder}},
            )
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return False
            raise
        return True


# The lease a tick holds -----------------------------------------------------------------------
@dataclass
class HeldLease:
    """This tick's slots: kept alive while it works, and the one judge of whether it may write.

    ``wall`` is the wall clock of the lease (epoch seconds). ``expires_at`` is what the record
    says after the last renewal this tick made; the tick stops acting ``margin`` before it.
    """

    table: LeaseTable
    cover: Cover
    holder: str
    taken_at: float
    expires_at: float
    ttl: float
    wall: Callable[[], float]
    lost: bool = False
    renewed_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.renewed_at = self.taken_at

    @property
    def names(self) -> list[str]:
        return self.cover.lease_names()

    @property
    def margin(self) -> float:
        return min(LEASE_MARGIN_S, self.ttl / 10)

    @property
    def interval(self) -> float:
        """How often the lease is renewed: four times per lease length."""
        return self.ttl / 4

    def alive(self) -> bool:
        """Whether this tick may start acting on one more service (no call made)."""
        return not self.lost and self.wall() < self.expires_at - self.margin

    def still_held(self) -> bool:
        """Asked before every write: before the margin, yes; after it, only if a renewal now
        succeeds (once another tick may have taken a slot over, this one must stop)."""
        if self.alive():
            return True
        return self.renew()

    def keep(self) -> None:
        """A checkpoint: renew when a renewal is due (between services, between decisions)."""
        if not self.lost and self.wall() - self.renewed_at >= self.interval:
            self.renew(due_only=True)

    def renew(self, *, due_only: bool = False) -> bool:
        """Extend every slot; False when refused (the lease is lost) or DynamoDB failed.
        ``due_only``: unless another thread renewed within the interval meanwhile."""
        with self._lock:
            if self.lost:
                return False
            now = self.wall()
            if due_only and now - self.renewed_at < self.interval:
                return True
            try:
                renewed = self.table.update(lambda snap: _renewal(snap, self.holder, now, self.ttl))
            except LEASE_ERRORS as exc:
                log_event("could not renew the lease", level=logging.WARNING, error=str(exc)[:300])
                return False
            if not renewed:
                self.lost = True
                log_event("the lease was lost; no more writes", level=logging.WARNING)
                return False
            self.expires_at = now + self.ttl
            self.renewed_at = now
            return True

    def release_action(self) -> dict[str, Any] | None:
        """The release as one action of a caller's DynamoDB transaction, so that it lands with
        the caller's own write or not at all: the Delete of a scope's record that holds this
        holder's slot only, on the version this lease last wrote. None when the release
        cannot be one (the ticks' record, other slots, nothing written yet): ``release()``."""
        snapshot = self.table.last
        record = snapshot.record if snapshot is not None else None
        if not self.table.deletes_empty or record is None or record.version is None:
            return None
        if {slot.holder for slot in record.slots.values()} != {self.holder}:
            return None
        return {
            "Delete": {
                "TableName": self.table.table,
                "Key": {"pk": {"S": self.table.pk}, "sk": {"S": RECORD_SK}},
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"S": record.version}},
            }
        }

    def released_with(self) -> None:
        """The caller's transaction held ``release_action``: the record is gone."""
        with self._lock:
            self.lost = True  # no more writes under it
            legacy = self.table.last.legacy if self.table.last is not None else {}
            self.table.last = Snapshot(None, legacy)

    def release(self) -> None:
        try:
            self.table.update(lambda snap: (without(snap.record, self.holder), None))
        except LEASE_ERRORS as exc:
            # It runs out by itself; the next tick can take it then.
            log_event("could not release the lease", level=logging.WARNING, error=str(exc)[:300])

    @contextmanager
    def heartbeat(self, enabled: bool = True) -> Iterator[None]:
        """Renew from a thread every ``interval`` real seconds while the block runs."""
        if not enabled:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.interval):
                if not self.renew() and self.lost:
                    return

        thread = threading.Thread(target=beat, name="teiji-lease-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _renewal(
    snapshot: Snapshot, holder: str, now: float, ttl: float
) -> tuple[LeaseRecord | None, bool]:
    new = renew(snapshot.record, holder, now, ttl)
    return new, new is not None


def acquire(
    table: LeaseTable,
    first: Snapshot | None,
    cover: Cover,
    holder: str,
    ttl: float,
    wall: Callable[[], float],
    *,
    may_switch: bool,
) -> HeldLease | Blocked | CountRefused:
    """Take ``cover``'s slots (``first``: what the table was just read to hold, if known)."""
    now = wall()  # read before asking: no slot taken here can end before now + ttl

    def step(snapshot: Snapshot) -> tuple[LeaseRecord | None, LeaseRecord | Blocked | CountRefused]:
        outcome = take(snapshot, cover, holder, now, ttl, may_switch=may_switch)
        return (outcome if isinstance(outcome, LeaseRecord) else None), outcome

    outcome = table.update(step, first=first)
    if not isinstance(outcome, LeaseRecord):
        return outcome
    return HeldLease(table, cover, holder, now, now + ttl, ttl, wall)


def slots_of(snapshot: Snapshot) -> list[tuple[str, Slot]]:
    """Every lease the table holds, by name: the record's slots, then earlier items."""
    found: list[tuple[str, Slot]] = []
    if snapshot.record is not None:
        count = snapshot.record.shards
        found.extend(
            (lease_name((i, count)), slot) for i, slot in sorted(snapshot.record.slots.items())
        )
    found.extend(sorted(snapshot.legacy.items()))
    return found


def break_holder(table: LeaseTable, holder: str) -> list[str]:
    """Remove every slot ``holder`` holds (a stale lease); the names removed, none when it
    holds nothing (it ended, or another tick holds them now)."""

    def step(snapshot: Snapshot) -> tuple[LeaseRecord | None, list[str]]:
        names = [name for name, slot in slots_of(snapshot) if slot.holder == holder]
        if snapshot.record is None:
            return None, []
        return without(snapshot.record, holder), [n for n in names if n not in snapshot.legacy]

    broken = table.update(step)
    for name, slot in table.read().legacy.items():
        if slot.holder == holder and table.delete_legacy(name, holder):
            broken.append(name)
    return broken
