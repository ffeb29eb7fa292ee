"""Which services a batch of config-table edits touches, and what to tell the stream (pure).

The config table's DynamoDB stream (view type ``KEYS_ONLY``) hands the edits function
(``engine.stream_handler``) batches of records, one per write: ``eventName`` (INSERT, MODIFY,
REMOVE) and the item's ``Keys``. Only the key is read here; what the document says now is read
from the table when it is acted on, so the newest write wins whatever the stream carried.

- A schedule ``pk="schedule", sk=<service key>`` touches that service; so does an override
  ``pk="override", sk="<service key>#<id>"``.
- A calendar ``pk="calendar", sk=<name>`` touches every service whose schedule lists it in
  ``holidays`` now (its own, or its profile's when it sets none).
- A profile ``pk="profile", sk=<name>`` touches every service whose schedule names it in
  ``profile`` now, and every service its ``teiji:profile`` tag puts under it (the edits
  function discovers those as the tick does, when a profile or calendar was edited).
- A touched service with no schedule now (its schedule was deleted, or an override names a
  service without one) is no longer managed: it is left exactly as it is, as the tick leaves
  it, and its saved baseline is kept.
- Nothing else is touched.

Records that are not edits of a document are skipped, each with its reason, and never retried
(the same record fails the same way every time, and the scheduled tick reads the whole table
within 15 minutes anyway): a record that is not a DynamoDB stream record or has no string
keys (cut, forged), an item of another kind, and a deletion by DynamoDB's TTL (an override that
ended a day before). ``failures`` says which records the event source mapping must deliver
again: those whose services could not be acted on at all (another tick held their lease).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.keys import ServiceKey, split_override_sk
from schemas.validation import service_of_label

KINDS = ("schedule", "calendar", "override", "profile")
EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")
# The identity DynamoDB gives the stream records of the items its TTL deleted.
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
# A key or reason is shown at most this long in logs and results (a sort key may be 1 KB).
SHOWN_LIMIT = 200

EventName = Literal["INSERT", "MODIFY", "REMOVE"]


class BadBatchError(ValueError):
    """The event is not a batch of stream records at all (no ``Records`` list)."""


@dataclass(frozen=True)
class Edit:
    """One write to a document: its kind and sort key, what happened and the record's ids."""

    kind: str
    sk: str
    event: EventName
    sequence: str | None = None
    event_id: str | None = None

    @property
    def label(self) -> str:
        """The document as the table's problems name it (``engine.store``): ``schedule c1/web``."""
        return f"{self.kind} {one_line(self.sk, None)}"

    def service(self) -> str | None:
        """The service a schedule or override names, when its key is one; None otherwise."""
        if self.kind in ("calendar", "profile"):
            return None
        key = self.sk if self.kind == "schedule" else split_override_sk(self.sk)[0]
        return key if valid_key(key) else None


@dataclass(frozen=True)
class Skipped:
    """A record that is not an edit of a document, and why it is left alone."""

    reason: str
    sequence: str | None = None
    event_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "sequence": self.sequence, "reason": self.reason}


@dataclass(frozen=True)
class Batch:
    """A batch's records read: the edits, in stream order, and the records skipped."""

    edits: tuple[Edit, ...] = ()
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class Touched:
    """What a batch touches: the services to converge, the ones no longer managed (no
    schedule now), and for each edit the services it touched."""

    managed: frozenset[str] = frozenset()
    unmanaged: frozenset[str] = frozenset()
    by_edit: Mapping[Edit, frozenset[str]] = field(default_factory=dict)


# Reading records ----------------------------------------------------------------------------
def one_line(text: str, limit: int | None = SHOWN_LIMIT) -> str:
    """``text`` on one line, as ``engine.store`` labels items: control and format characters
    shown as ``?``; longer than ``limit``: cut with ``...``."""
    shown = "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    if limit is not None and len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown


def valid_key(key: str) -> bool:
    """Whether ``key`` is a service key a schedule can have (``cluster/service[@scope]``)."""
    try:
        parsed = ServiceKey.parse(key)
    except ValueError:
        return False
    cluster, _, service = parsed.name.rpartition("/")
    return bool(cluster) and bool(service) and one_line(key, None) == key


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _string_key(keys: Mapping[str, Any], name: str) -> str | None:
    value = keys.get(name)
    return _text(value.get("S")) if isinstance(value, Mapping) else None


def read_record(record: object) -> Edit | Skipped:
    """One stream record as an ``Edit``, or why it is skipped."""
    if not isinstance(record, Mapping):
        return Skipped("not a stream record (not a JSON object)")
    event_id = _text(record.get("eventID"))
    body = record.get("dynamodb")
    sequence = _text(body.get("SequenceNumber")) if isinstance(body, Mapping) else None
    shown_id = one_line(event_id) if event_id else None

    def skip(reason: str) -> Skipped:
        return Skipped(reason, sequence, shown_id)

    if record.get("eventSource") != "aws:dynamodb":
        return skip("not a DynamoDB stream record (eventSource is not aws:dynamodb)")
    event = record.get("eventName")
    if event not in EVENT_NAMES:
        return skip(f"eventName {one_line(str(event), 40)!r} is not INSERT, MODIFY or REMOVE")
    identity = record.get("userIdentity")
    if isinstance(identity, Mapping) and all(identity.get(k) == v for k, v in TTL_IDENTITY.items()):
        return skip("deleted by DynamoDB's TTL (an override that ended a day ago): nothing to do")
    keys = body.get("Keys") if isinstance(body, Mapping) else None
    if not isinstance(keys, Mapping):
        return skip("the record has no Keys (cut or forged); the next tick reads the table")
    pk, sk = _string_key(keys, "pk"), _string_key(keys, "sk")
    if pk is None or sk is None:
        return skip("the record's Keys hold no string pk and sk; the next tick reads the table")
    if pk not in KINDS:
        return skip(f"pk {one_line(pk, 40)!r} is not a document ({', '.join(KINDS)})")
    return Edit(pk, sk, event, sequence, shown_id)


def read_batch(event: object) -> Batch:
    """Every record of a Lambda event from a DynamoDB stream event source mapping."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise BadBatchError("the event has no Records list: it is not from a DynamoDB stream")
    edits: list[Edit] = []
    skipped: list[Skipped] = []
    for record in records:
        read = read_record(record)
        (edits if isinstance(read, Edit) else skipped).append(read)  # type: ignore[arg-type]
    return Batch(tuple(edits), tuple(skipped))


# What the edits touch -----------------------------------------------------------------------
def holidays_listed(item: Mapping[str, Any]) -> frozenset[str]:
    """The names a schedule item lists in ``holidays`` (one name or a list), as stored."""
    value = item.get("holidays")
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list | set | frozenset | tuple):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


PROFILE_PREFIX = "profile:"  # marks a profile's name among the names a schedule uses


def names_used(
    item: Mapping[str, Any], profiles: Mapping[str, Mapping[str, Any]]
) -> frozenset[str]:
    """The calendars a schedule item lists in ``holidays`` and, marked with ``PROFILE_PREFIX``,
    the profile it names; a schedule that sets no holidays of its own uses its profile's.
    ``profiles`` are the stored profile items by name."""
    names = holidays_listed(item)
    profile = item.get("profile")
    if not isinstance(profile, str):
        return names
    used = {PROFILE_PREFIX + profile.strip()}
    if "holidays" not in item and profile.strip() in profiles:
        used |= holidays_listed(profiles[profile.strip()])
    return names | used


def touched(edits: Iterable[Edit], schedules: Mapping[str, Collection[str]]) -> Touched:
    """The services ``edits`` touch, given the schedules stored now (key -> the names it uses,
    ``names_used``): managed when a schedule names them now, unmanaged otherwise."""
    by_edit: dict[Edit, frozenset[str]] = {}
    for edit in edits:
        if edit.kind in ("calendar", "profile"):
            name = edit.sk if edit.kind == "calendar" else PROFILE_PREFIX + edit.sk
            users = {key for key, names in schedules.items() if name in names}
            by_edit[edit] = frozenset(users)
        else:
            service = edit.service()
            by_edit[edit] = frozenset({service} if service else ())
    every = frozenset().union(*by_edit.values()) if by_edit else frozenset()
    managed = frozenset(key for key in every if key in schedules)
    return Touched(managed, every - managed, by_edit)


def edited_problems(
    problems: Sequence[Mapping[str, Any]], edits: Iterable[Edit], services: Collection[str]
) -> list[Mapping[str, Any]]:
    """The document problems (``TickReport.invalid_documents``) an edit answers for: those of
    an edited document, and those of the touched services' schedules and overrides."""
    labels = {edit.label for edit in edits}
    found: list[Mapping[str, Any]] = []
    for problem in problems:
        document = str(problem.get("document", ""))
        # A label may go on with " (document 3)"; a key written by hand may hold a space.
        edited = document in labels or document.rpartition(" (")[0] in labels
        service = service_of_label(document)
        if edited or (service is not None and service in services):
            found.append(problem)
    return found


def failures(touched_by: Mapping[Edit, frozenset[str]], not_done: Collection[str]) -> list[str]:
    """The sequence numbers of the edits to deliver again: those that touched a service in
    ``not_done`` (its lease was held, or the run could not reach it), in stream order.

    The event source mapping goes on from the lowest sequence number reported; an edit with
    no sequence number cannot be reported and is left to the next tick."""
    return [
        edit.sequence
        for edit, services in touched_by.items()
        if edit.sequence is not None and services & set(not_done)
    ]
