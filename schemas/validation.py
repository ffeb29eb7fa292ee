"""Validation of documents with errors people can act on.

``parse_document`` reads one raw document (from YAML, JSON or a DynamoDB item) and returns the
model or a list of ``Problem``s; it never raises. ``validate_documents`` also checks what needs
several documents or the clock: that every calendar a schedule names exists, that no service has
two schedules, that overrides are not longer than the limit.

Every problem reads ``source: document: field path: what is wrong and what is allowed``, for
example::

    stg.yaml: schedule example-cluster/example-service-stg: windows[0].days: unknown day 'mno'; ...
"""

from __future__ import annotations

import hashlib
import math
import re
import types
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from schemas.countries import country_codes, is_country, subdivisions
from schemas.documents import (
    DEFAULT_TIMEZONE,
    KINDS,
    PROFILE_BODY_CONTEXT,
    PROFILE_FIELDS,
    Calendar,
    Override,
    Profile,
    ProfileBase,
    RunningCapacity,
    Schedule,
    StoppedCapacity,
    Window,
    describe_value,
    quote,
)
from schemas.documents import CronPair as _CronPair
from schemas.documents import DateRange as _DateRange
from schemas.keys import Closeness, ServiceKey, keys_named, service_key

ParsedDocument = Schedule | Calendar | Override | ProfileBase

_MODELS: dict[str, type[BaseModel]] = {
    "schedule": Schedule,
    "calendar": Calendar,
    "override": Override,
    "profile": Profile,
}
# A profile's body is checked as the body of a schedule for this (never named) service.
_PROFILE_PLACEHOLDER = "profile/body"
_WHOLE_DOCUMENT = "-"
_LABEL_LIMIT = 80
MAX_OVERRIDE_ENV = "TEIJI_MAX_OVERRIDE"
MAX_DESIRED_ENV = "TEIJI_MAX_DESIRED"

# A check of one valid schedule or override against the deployment: (field, message) pairs.
DocumentCheck = Callable[[Schedule | Override], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one document, in words the operator can act on.

    ``path`` is the field, like ``windows[0].days``, or ``-`` when the whole document is meant.
    ``document`` names the document: ``schedule example-cluster/example-service-stg``,
    ``calendar company``, ``override example-cluster/svc#abc``, or ``document 3``.
    """

    source: str
    document: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.document}: {self.path}: {self.message}"


@dataclass
class DocumentSet:
    """Valid documents: schedules by ``Schedule.key``, calendars by name, and overrides."""

    schedules: dict[str, Schedule] = field(default_factory=dict)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    overrides: list[Override] = field(default_factory=list)
    profiles: dict[str, ProfileBase] = field(default_factory=dict)
    # The raw bodies of the valid profiles (what a schedule naming one merges under its own).
    profile_bodies: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    # Profiles present but invalid: name -> the fields at fault (for the services using them).
    invalid_profiles: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def overrides_for(self, key: str) -> list[Override]:
        return [o for o in self.overrides if o.key == key]

    def find_schedule(self, service: str) -> Schedule | None:
        """By key (``cluster/service[@scope]``), or by ``cluster/service`` when that is unique."""
        matches = keys_named(service, self.schedules, loosest=Closeness.UNSCOPED)
        return self.schedules[matches[0]] if len(matches) == 1 else None


# --------------------------------------------------------------------------------------------
# One document


def parse_document(
    raw: object, *, source: str, index: int, default_timezone: str = DEFAULT_TIMEZONE
) -> ParsedDocument | list[Problem]:
    """The model for ``raw``, or the problems with it. Never raises.

    ``index`` is the document's 1-based position in ``source``; it names the document in
    problems when nothing better (a service or calendar name) can. A schedule that names no
    ``timezone`` gets ``default_timezone`` (the deployment's ``TEIJI_DEFAULT_TIMEZONE``).
    """
    memo = _ACTIVE_MEMO.get()
    key = None if memo is None else _content_key(raw, default_timezone)
    if memo is not None and key is not None:
        known = memo.get(key)
        if known is not None:
            # A copy: callers tell documents apart by identity (two items, one content).
            return known.model_copy()
    try:
        parsed = _parse(raw, source=source, index=index, default_timezone=default_timezone)
    except Exception as exc:  # the promise is "never raises": any surprise becomes a problem
        return [
            Problem(
                source,
                f"document {index}",
                _WHOLE_DOCUMENT,
                f"cannot read this document ({type(exc).__name__})",
            )
        ]
    if memo is not None and key is not None and not isinstance(parsed, list):
        memo.put(key, parsed)
    return parsed


class ParseMemo:
    """Documents parsed before, by the content they were parsed from (``parse_document``
    consults one while ``reusing_parses`` is in force): a warm Lambda reads every item each
    tick, and an item whose content is unchanged need not be validated again.

    Only successful parses are kept (a document with problems is parsed, and reported, every
    time), and only for content made of the plain values a document is read as, keyed by
    its exact text with types (``Decimal('1')``, ``1`` and ``'1'`` differ). Two generations:
    what a load did not ask for again is dropped at the end of the next one.
    """

    def __init__(self) -> None:
        self._current: dict[bytes, ParsedDocument] = {}
        self._previous: dict[bytes, ParsedDocument] = {}

    def rotate(self) -> None:
        """A new load begins: what the last one used is kept one more load."""
        self._previous, self._current = self._current, {}

    def get(self, key: bytes) -> ParsedDocument | None:
        found = self._current.get(key)
        if found is None:
            found = self._previous.pop(key, None)
            if found is not None:
                self._current[key] = found
        return found

    def put(self, key: bytes, document: ParsedDocument) -> None:
        self._current[key] = document

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)


_ACTIVE_MEMO: ContextVar[ParseMemo | None] = ContextVar("teiji_parse_memo", default=None)


@contextmanager
def reusing_parses(memo: ParseMemo) -> Iterator[ParseMemo]:
    """``parse_document`` reuses what ``memo`` holds while this is in force (one load, or one
    tick): unchanged content gives the model parsed before, anything else is parsed."""
    memo.rotate()
    token = _ACTIVE_MEMO.set(memo)
    try:
        yield memo
    finally:
        _ACTIVE_MEMO.reset(token)


_PLAIN_SCALARS = (str, int, float, bool, Decimal, bytes, type(None))


def _content_key(raw: object, default_timezone: str) -> bytes | None:
    """A digest of ``raw``'s content and types, or None when it holds anything but the plain
    values documents are read as (whose repr could hide what they hold)."""
    if not _plain(raw):
        return None
    text = f"{default_timezone}\n{raw!r}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _plain(value: object, depth: int = 0) -> bool:
    if isinstance(value, _PLAIN_SCALARS):
        return True
    if depth > 32:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return all(_plain(v, depth + 1) for v in value)
    return False


def _parse(
    raw: object, *, source: str, index: int, default_timezone: str
) -> ParsedDocument | list[Problem]:
    if not isinstance(raw, Mapping):
        return [
            Problem(
                source,
                f"document {index}",
                _WHOLE_DOCUMENT,
                f"expected a mapping with a kind ({', '.join(KINDS)}), got {describe_value(raw)}",
            )
        ]
    label = document_label(raw, index)
    kind = raw.get("kind")
    if kind is None:
        return [Problem(source, label, "kind", f"required; use one of: {', '.join(KINDS)}")]
    if not isinstance(kind, str) or kind not in _MODELS:
        return [Problem(source, label, "kind", _not_allowed(kind, KINDS))]
    model = _MODELS[kind]
    fields = dict(raw)
    if model is Schedule and "timezone" not in fields:
        fields["timezone"] = default_timezone
    if model is Profile:
        return _parse_profile(fields, source=source, label=label)
    try:
        parsed = model.model_validate(fields)
    except ValidationError as exc:
        return _problems(exc, model, source=source, label=label)
    assert isinstance(parsed, Schedule | Calendar | Override)
    return _share_parts(parsed, fields) if isinstance(parsed, Schedule) else parsed


def _parse_profile(
    fields: Mapping[str, Any], *, source: str, label: str
) -> ProfileBase | list[Problem]:
    """A profile: its own fields (name, unknown ones) checked by the profile model, its body
    by the schedule's rules, both reported at once."""
    try:
        parsed = Profile.model_validate(fields)
    except ValidationError as exc:
        own = [
            p
            for p in _problems(exc, Profile, source=source, label=label)
            if _top_field(p.path) not in PROFILE_FIELDS
        ]
        body = _check_profile_body(None, fields, source=source, label=label)
        return own + (body if isinstance(body, list) else [])
    checked = _check_profile_body(parsed, fields, source=source, label=label)
    return parsed if checked is None else checked


def _check_profile_body(
    profile: ProfileBase | None, fields: Mapping[str, Any], *, source: str, label: str
) -> ProfileBase | list[Problem] | None:
    """``profile`` when its body holds values a schedule accepts, else the problems with it
    (the model of a profile gives the shape; the schedule's own rules give the values)."""
    body = {name: fields[name] for name in PROFILE_FIELDS if name in fields}
    try:
        Schedule.model_validate(
            {**body, "service": _PROFILE_PLACEHOLDER}, context={PROFILE_BODY_CONTEXT: True}
        )
    except ValidationError as exc:
        return _problems(exc, Schedule, source=source, label=label)
    return profile


# A fleet's schedules mostly differ only in the service they name. Schedules whose fields but
# those are the same share one copy of their parsed parts (windows, cron pairs, capacities...):
# half a schedule's memory, and a tick holds every schedule until it ends. The models are
# frozen, so a shared part is never changed through one of them.
_IDENTITY_FIELDS = frozenset({"service", "account", "region", "description"})
_SHARED_FIELDS = ("kind", "mode", "timezone", "windows", "cron", "holidays", "running", "stopped")
_SHARED_BODIES_MAX = 4096
_shared_bodies: dict[str, dict[str, Any]] = {}


def _share_parts(parsed: Schedule, fields: Mapping[str, Any]) -> Schedule:
    """``parsed``, its parts replaced by those of an earlier schedule with the same body."""
    # Only a document that validated gets here: its keys are the model's field names.
    body = repr([(name, fields[name]) for name in sorted(fields) if name not in _IDENTITY_FIELDS])
    parts = _shared_bodies.get(body)
    if parts is None:
        if len(_shared_bodies) >= _SHARED_BODIES_MAX:
            _shared_bodies.clear()
        _shared_bodies[body] = {name: parsed.__dict__[name] for name in _SHARED_FIELDS}
    else:
        parsed.__dict__.update(parts)
    return parsed


# What document_label adds after an override's key when the override has no id.
_DOCUMENT_INDEX = re.compile(r" \(document \d+\)$")


def service_of_label(document: str) -> str | None:
    """The service key a document label names (``schedule KEY``, ``override KEY#ID``,
    ``override KEY (document 3)``), or None for a calendar, a profile or a bare document.

    A key written by hand in the table may hold a space: everything up to the label's own
    suffix is the key, not only its first word."""
    kind, _, name = document.partition(" ")
    name = _DOCUMENT_INDEX.sub("", name)
    if kind == "schedule" and name:
        return name
    if kind == "override" and name:
        return name.split("#", 1)[0]
    return None


def document_label(raw: Mapping[Any, Any], index: int) -> str:
    """``schedule cluster/service``, ``calendar name``, ``override cluster/service#id``."""
    kind = raw.get("kind")
    service = raw.get("service")
    if kind in ("schedule", "override") and isinstance(service, str) and service.strip():
        account, region = raw.get("account"), raw.get("region")
        key = service_key(
            service.strip(),
            account if isinstance(account, str) else None,
            region if isinstance(region, str) else None,
        )
        if kind == "schedule":
            return f"schedule {_printable(key)}"
        ident = raw.get("id")
        if isinstance(ident, str) and ident:
            return f"override {_printable(key)}#{_printable(ident)}"
        return f"override {_printable(key)} (document {index})"
    name = raw.get("name")
    if kind in ("calendar", "profile") and isinstance(name, str) and name.strip():
        return f"{kind} {_printable(name.strip())}"
    return f"document {index}"


def _printable(text: str, limit: int = _LABEL_LIMIT) -> str:
    # Labels go on one line of a terminal: no control characters, no endless names. Every
    # document gets a label on every load; nearly all of them are plain printable text.
    if text.isprintable() and len(text) <= limit:
        return text
    cleaned = "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _problems(
    exc: ValidationError, model: type[BaseModel], *, source: str, label: str
) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "invalid_key":
            loc = loc[:-1]  # the key itself is the problem, not a field under it
        where = _locate(model, loc)
        problem = Problem(source, label, where.path, _sentence(error, where))
        if problem not in problems:
            problems.append(problem)
    return problems


# --------------------------------------------------------------------------------------------
# Where an error is: the path people read, and the model and field it belongs to


@dataclass(frozen=True)
class _Where:
    path: str
    model: type[BaseModel] | None  # the model whose field (or unknown key) the error is about
    field: str | None  # that field's python name; None for an unknown key
    item: bool  # True when the error is about one item of a list field
    key: object = None  # the last key as written (the unknown field's name)


def _locate(model: type[BaseModel], loc: tuple[int | str, ...]) -> _Where:
    """Walk the models along pydantic's ``loc``, dropping union member tags it inserts."""
    current: Any = model
    parts: list[int | str] = []
    owner: type[BaseModel] | None = None
    name: str | None = None
    item = False
    key: object = None
    for part in loc:
        inner_model, list_item = _shape(current)
        if isinstance(part, int):
            parts.append(part)
            item = True
            current = list_item
            continue
        if inner_model is not None:
            parts.append(part)
            owner, name, item, key = inner_model, _field_name(inner_model, part), False, part
            current = inner_model.model_fields[name].annotation if name else None
            continue
        # Anything else is a tag such as 'list[constrained-str]': not part of the document.
    return _Where(_format_path(parts), owner, name, item, key)


def _shape(annotation: Any) -> tuple[type[BaseModel] | None, Any]:
    """(the model in an annotation, the item type of the list in it), either may be None."""
    candidates = [annotation]
    if get_origin(annotation) is Union or isinstance(annotation, types.UnionType):
        candidates = list(get_args(annotation))
    found_model: type[BaseModel] | None = None
    found_item: Any = None
    for candidate in candidates:
        base = _strip_annotated(candidate)
        if isinstance(base, type) and issubclass(base, BaseModel):
            found_model = found_model or base
        elif get_origin(base) in (list, set, frozenset, tuple):
            args = get_args(base)
            found_item = found_item or (_strip_annotated(args[0]) if args else None)
    return found_model, found_item


def _strip_annotated(annotation: Any) -> Any:
    while hasattr(annotation, "__metadata__") and get_args(annotation):
        annotation = get_args(annotation)[0]
    return annotation


def _field_name(model: type[BaseModel], key: str) -> str | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return name
    return None


def _allowed_fields(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


_LONGEST_NAME = 40  # a longer field name is cut short so a problem stays one readable line


def _format_path(parts: list[int | str]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier() and part.isascii() and len(part) <= _LONGEST_NAME:
            text += f".{part}" if text else part
        else:
            text += f"[{quote(part, _LONGEST_NAME)}]"
    return text or _WHOLE_DOCUMENT


# --------------------------------------------------------------------------------------------
# What is wrong, in a sentence


# What a field expects, as a phrase after "expected": (the field, one item of a list field).
_EXPECTED: dict[tuple[type[BaseModel], str], tuple[str, str | None]] = {
    (Schedule, "service"): (
        "'<cluster>/<service>' as text, for example example-cluster/example-service-stg",
        None,
    ),
    (Override, "service"): (
        "'<cluster>/<service>' as text, for example example-cluster/example-service-stg",
        None,
    ),
    (Schedule, "timezone"): ("an IANA time zone name such as Asia/Tokyo", None),
    (Schedule, "windows"): (
        "a list of windows, each with days, start and end",
        "a window with days, start and end",
    ),
    (Schedule, "cron"): (
        "a list of cron pairs, each with start and stop",
        "a cron pair with start and stop",
    ),
    (Schedule, "holidays"): (
        "a list of country codes such as JP or calendar document names",
        "a country code such as JP or a calendar document name",
    ),
    (Schedule, "running"): ("a mapping with desired_count, min_capacity and max_capacity", None),
    (Schedule, "stopped"): ("a mapping with desired_count", None),
    (Schedule, "description"): ("text", None),
    (Schedule, "account"): ("a 12-digit AWS account id as quoted text", None),
    (Schedule, "region"): ("an AWS region name such as ap-northeast-1", None),
    (Calendar, "dates"): ("a list of dates such as 2026-12-29", "a date such as 2026-12-29"),
    (Calendar, "ranges"): (
        "a list of date ranges, each with from and to",
        "a date range with from and to",
    ),
    (Calendar, "description"): ("text", None),
    (_DateRange, "from_"): ("a date such as 2026-12-29", None),
    (_DateRange, "to"): ("a date such as 2026-12-29", None),
    (Override, "start"): ("a timestamp with a UTC offset such as 2026-12-01T22:00:00+09:00", None),
    (Override, "until"): ("a timestamp with a UTC offset such as 2026-12-01T23:30:00+09:00", None),
    (Override, "created_at"): ("a timestamp with a UTC offset", None),
    (Override, "reason"): ("text saying why", None),
    (Override, "created_by"): ("text naming who asked", None),
    (Override, "id"): ("1 to 64 letters, digits, '-' and '_'", None),
    (Override, "account"): ("a 12-digit AWS account id as quoted text", None),
    (Override, "region"): ("an AWS region name such as ap-northeast-1", None),
    (Window, "days"): ("day names such as mon-fri or a list of them", None),
    (Window, "start"): ('a time as quoted text "HH:MM", for example "05:00"', None),
    (Window, "end"): ('a time as quoted text "HH:MM", for example "22:00"', None),
    (_CronPair, "start"): ("a cron expression such as '0 5 * * mon-fri'", None),
    (_CronPair, "stop"): ("a cron expression such as '0 22 * * mon-fri'", None),
}
for _model in (RunningCapacity, StoppedCapacity):
    for _name in ("desired_count", "min_capacity", "max_capacity"):
        _EXPECTED[(_model, _name)] = ("a whole number from 0 to 100000", None)

# What an error type expects when the field has no phrase of its own.
_EXPECTED_BY_TYPE = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "finite_number": "a whole number",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "date_type": "a date such as 2026-12-29",
    "datetime_type": "a timestamp with a UTC offset",
}


def _expected(where: _Where, error_type: str) -> str:
    phrases = _EXPECTED.get((where.model, where.field or "")) if where.model else None
    if phrases:
        whole, one = phrases
        if where.item and one:
            return one
        if not where.item:
            return whole
    return _EXPECTED_BY_TYPE.get(error_type, "another value")


def _sentence(error: Mapping[str, Any], where: _Where) -> str:
    kind: str = error["type"]
    value = error.get("input")
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_field(where)
    if kind == "invalid_key":
        return f"field names must be text, got {describe_value(value)}"
    if kind == "missing":
        phrase = _EXPECTED.get((where.model, where.field or "")) if where.model else None
        return f"required; write {phrase[0]}" if phrase else "required"
    if kind == "literal_error":
        return _not_allowed(value, _literal_choices(str(ctx.get("expected", ""))))
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error") or error.get("msg", "")).removeprefix("Value error, ")
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        length = len(value) if isinstance(value, str) else "more"
        return f"too long: at most {limit} characters, got {length}"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else "too short"
    if kind == "string_pattern_mismatch":
        return f"{describe_value(value)} is not allowed; use {_expected(where, kind)}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}, got {describe_value(value)}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}, got {describe_value(value)}"
    return f"expected {_expected(where, kind)}, got {describe_value(value)}"


def _unknown_field(where: _Where) -> str:
    name = where.key
    shown = quote(name) if isinstance(name, str) else describe_value(name)
    allowed = _allowed_fields(where.model) if where.model else []
    hint = ""
    if isinstance(name, str):
        import difflib  # late: only a mistake needs a did-you-mean

        close = difflib.get_close_matches(name.lower(), allowed, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {close[0]!r}? "
    return f"unknown field {shown} ({hint}allowed: {', '.join(allowed)})"


def _literal_choices(expected: str) -> list[str]:
    # pydantic phrases it "'a', 'b' or 'c'"; the quoted words are the choices.
    choices: list[str] = []
    for piece in expected.split("'")[1::2]:
        choices.append(piece)
    return choices


def _not_allowed(value: object, choices: Iterable[str]) -> str:
    options = list(choices)
    shown = quote(value) if isinstance(value, str) else describe_value(value)
    message = f"{shown} is not allowed; use one of: {', '.join(options)}"
    if isinstance(value, str):
        import difflib  # late: only a mistake needs a did-you-mean

        close = difflib.get_close_matches(value.lower(), options, n=1, cutoff=0.6)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


# --------------------------------------------------------------------------------------------
# Many documents


def validate_documents(
    items: Iterable[tuple[str, int, object]],
    *,
    now: datetime | None = None,
    max_override: timedelta = timedelta(days=7),
    known_calendars: Collection[str] = (),
    default_timezone: str = DEFAULT_TIMEZONE,
    checks: Sequence[DocumentCheck] = (),
    check_calendars: bool = True,
    own_region: str | None = None,
    own_account: str | None = None,
    check_profiles: bool = True,
) -> tuple[DocumentSet, list[Problem]]:
    """Parse each ``(source, index, raw)`` and check the rules that span documents.

    ``checks`` hold each valid schedule and override against the deployment (the growth cap,
    the allow-list): a document any of them finds fault with is left out, like an invalid one.

    ``known_calendars`` are calendars defined elsewhere (for example already stored) that
    schedules here may name; ``check_calendars=False`` takes every name that is not a country
    for a calendar defined elsewhere (a first pass before the table can be read). ``now``
    (aware; default the current time) measures overrides without a ``start``.
    ``default_timezone`` is the zone of a schedule that names none.
    Invalid documents are left out of the set; the first of two duplicates is kept. An override
    that has already ended is valid: it is simply inactive, and the length cap does not apply
    to it. A schedule that names a ``profile`` is validated with the profile's body under its
    own fields (``merge_profile``); ``check_profiles=False`` leaves out, unreported, a schedule
    whose profile is not among ``items`` (a first pass before the table can be read). With
    ``own_region`` (and ``own_account``) given, two schedules naming one ECS
    service under two spellings of its key are both reported (see ``duplicate_services``).
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.utcoffset() is None:
        raise ValueError("now must carry a UTC offset")
    docs = DocumentSet()
    problems: list[Problem] = []
    labels: dict[int, tuple[str, str]] = {}  # id(document) -> (source, label)
    schedule_origin: dict[str, tuple[str, int]] = {}
    calendar_origin: dict[str, tuple[str, int]] = {}
    override_origin: dict[tuple[str, str], tuple[str, int]] = {}
    invalid_calendars: dict[str, tuple[str, str]] = {}  # name -> (source, label)
    items = list(items)
    # Profiles first: a schedule may come before the profile it names.
    profile_users: dict[str, list[str]] = {}  # invalid profile -> the schedules it stops
    invalid_profile_labels: dict[str, tuple[str, str]] = {}
    problems.extend(_read_profiles(items, docs, invalid_profile_labels, default_timezone))
    for source, index, raw in items:
        if _kind_of(raw) == "profile":
            continue
        inherited: frozenset[str] = frozenset()
        if _kind_of(raw) == "schedule" and isinstance(raw, Mapping) and "profile" in raw:
            if not check_profiles and _names_absent_profile(raw, docs):
                continue
            merged = merge_profile(raw, docs, source=source, index=index)
            if isinstance(merged, list):
                problems.extend(merged)
                name = raw.get("profile")
                if isinstance(name, str) and name.strip() in docs.invalid_profiles:
                    profile_users.setdefault(name.strip(), []).append(document_label(raw, index))
                continue
            raw, inherited = merged
        parsed = parse_document(raw, source=source, index=index, default_timezone=default_timezone)
        if inherited and isinstance(parsed, list) and isinstance(raw, Mapping):
            problems.extend(_name_the_profile(parsed, raw, inherited))
            continue
        if isinstance(parsed, Schedule) and isinstance(raw, Mapping) and "profile" in raw:
            parsed.from_profile(inherited)
        if isinstance(parsed, list):
            problems.extend(parsed)
            name = _calendar_name(raw)
            if name is not None and parsed:
                invalid_calendars.setdefault(name, (source, parsed[0].document))
            continue
        label = document_label(raw, index) if isinstance(raw, Mapping) else f"document {index}"
        labels[id(parsed)] = (source, label)
        refused = _deployment_problems(parsed, checks, source, label)
        if refused:
            problems.extend(refused)
            continue
        if isinstance(parsed, Schedule):
            first = schedule_origin.get(parsed.key)
            if first:
                problems.append(
                    Problem(source, label, "service", _duplicate("schedule", parsed.key, first))
                )
                continue
            schedule_origin[parsed.key] = (source, index)
            docs.schedules[parsed.key] = parsed
        elif isinstance(parsed, Calendar):
            first = calendar_origin.get(parsed.name)
            if first:
                problems.append(
                    Problem(source, label, "name", _duplicate("calendar", parsed.name, first))
                )
                continue
            calendar_origin[parsed.name] = (source, index)
            docs.calendars[parsed.name] = parsed
        elif isinstance(parsed, Override):
            if parsed.id is not None:
                # Unique per service, as the item's key (<service key>#<id>) is: every
                # service's wake override has the id "wake".
                first = override_origin.get((parsed.key, parsed.id))
                if first:
                    problems.append(
                        Problem(source, label, "id", _duplicate("override", parsed.id, first))
                    )
                    continue
                override_origin[parsed.key, parsed.id] = (source, index)
            # The cap is for overrides still in force: one that has ended limits nothing.
            too_long = _override_too_long(parsed, now, max_override) if parsed.until > now else None
            if too_long:
                problems.append(Problem(source, label, "until", too_long))
                continue
            docs.overrides.append(parsed)
    for name, users in sorted(profile_users.items()):
        source, label = invalid_profile_labels[name]
        problems.append(
            Problem(
                source,
                label,
                _WHOLE_DOCUMENT,
                f"this profile is invalid, so {_count(len(users), 'schedule')} that "
                f"use{'s' if len(users) == 1 else ''} it cannot be decided until it is fixed: "
                f"{', '.join(sorted(u.partition(' ')[2] for u in users))}",
            )
        )
    problems.extend(
        _check_holiday_names(
            docs, labels, invalid_calendars, known_calendars, check_calendars=check_calendars
        )
    )
    if own_region is not None or own_account is not None:
        twins = duplicate_services(
            docs.schedules, labels, own_region=own_region, own_account=own_account
        )
        problems.extend(twins)
        for problem in twins:
            docs.schedules.pop(problem.document.partition(" ")[2], None)
    return docs, problems


def _kind_of(raw: object) -> object:
    return raw.get("kind") if isinstance(raw, Mapping) else None


def _read_profiles(
    items: Sequence[tuple[str, int, object]],
    docs: DocumentSet,
    invalid_labels: dict[str, tuple[str, str]],
    default_timezone: str,
) -> list[Problem]:
    """Parse the profiles among ``items`` into ``docs`` (valid ones with their raw bodies,
    invalid ones with the fields at fault); the problems with them."""
    problems: list[Problem] = []
    origin: dict[str, tuple[str, int]] = {}
    for source, index, raw in items:
        if _kind_of(raw) != "profile":
            continue
        parsed = parse_document(raw, source=source, index=index, default_timezone=default_timezone)
        if isinstance(parsed, list):
            problems.extend(parsed)
            name = _profile_name(raw)
            if name is not None and parsed and name not in docs.profiles:
                fields = sorted({_top_field(p.path) for p in parsed})
                docs.invalid_profiles.setdefault(name, tuple(fields))
                invalid_labels.setdefault(name, (source, parsed[0].document))
            continue
        assert isinstance(parsed, ProfileBase) and isinstance(raw, Mapping)
        label = document_label(raw, index)
        first = origin.get(parsed.name)
        if first:
            problems.append(
                Problem(source, label, "name", _duplicate("profile", parsed.name, first))
            )
            continue
        origin[parsed.name] = (source, index)
        docs.profiles[parsed.name] = parsed
        docs.profile_bodies[parsed.name] = {
            name: raw[name] for name in PROFILE_FIELDS if name in raw
        }
    return problems


def _names_absent_profile(raw: Mapping[str, Any], docs: DocumentSet) -> bool:
    name = raw.get("profile")
    if not isinstance(name, str):
        return False
    return name.strip() not in docs.profile_bodies and name.strip() not in docs.invalid_profiles


def _profile_name(raw: object) -> str | None:
    """The name an invalid profile document gives itself, if it gives one."""
    if not isinstance(raw, Mapping):
        return None
    name = raw.get("name")
    return name.strip() if isinstance(name, str) and name.strip() else None


def _top_field(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


# Fields that each say when a service runs: a schedule takes them from its profile or writes
# its own, never one from each (the two would be merged into a timing neither document shows).
_TIMING_FIELDS = ("windows", "cron")


def merge_profile(
    raw: Mapping[str, Any], docs: DocumentSet, *, source: str, index: int
) -> tuple[dict[str, Any], frozenset[str]] | list[Problem]:
    """The schedule ``raw`` with the body of the profile it names under its own fields, and
    the fields it took from the profile; or one problem naming the profile (missing, invalid)
    or both documents (a combination that cannot be meant)."""
    label = document_label(raw, index)
    name = raw.get("profile")
    if not isinstance(name, str) or not name.strip():
        return [
            Problem(
                source,
                label,
                "profile",
                f"expected a profile name such as office-hours, got {describe_value(name)}",
            )
        ]
    name = name.strip()
    if name in docs.invalid_profiles:
        fields = ", ".join(docs.invalid_profiles[name]) or _WHOLE_DOCUMENT
        return [
            Problem(
                source,
                label,
                "profile",
                f"profile {quote(name)} is invalid (fields at fault: {fields}; its problems are "
                f"listed under profile {_printable(name)}); this schedule is not acted on until "
                "it is fixed",
            )
        ]
    body = docs.profile_bodies.get(name)
    if body is None:
        return [Problem(source, label, "profile", _unknown_profile(name, docs.profiles))]
    own = {key for key in raw if key in PROFILE_FIELDS}
    inherited = frozenset(key for key in body if key not in own)
    for mine in _TIMING_FIELDS:
        for theirs in _TIMING_FIELDS:
            clash = mine != theirs and mine in own and theirs in inherited
            if clash and raw.get(mine) and body.get(theirs):
                return [
                    Problem(
                        source,
                        label,
                        mine,
                        f"this schedule sets {mine} and its profile {quote(name)} sets "
                        f"{theirs}; one schedule runs by windows or by cron pairs taken "
                        f"from one document: write {theirs}: [] here to use only this "
                        f"schedule's {mine}, or leave {mine} out to use the profile's "
                        f"{theirs}",
                    )
                ]
    return {**body, **raw, "profile": name}, inherited


def _name_the_profile(
    problems: Iterable[Problem], merged: Mapping[str, Any], inherited: frozenset[str]
) -> list[Problem]:
    """Problems of a merged schedule, each naming the profile when its value (or, for the
    whole schedule, some of it) came from there."""
    name = merged.get("profile")
    named: list[Problem] = []
    for problem in problems:
        top = _top_field(problem.path)
        if top in inherited:
            note = f" (this value comes from profile {quote(str(name))})"
        elif problem.path == _WHOLE_DOCUMENT or top == "":
            taken = ", ".join(sorted(inherited)) or "nothing"
            note = f" (with profile {quote(str(name))}, which gives: {taken})"
        else:
            note = ""
        named.append(replace(problem, message=problem.message + note))
    return named


def _unknown_profile(name: str, profiles: Collection[str]) -> str:
    known = sorted(profiles)
    hint = ""
    import difflib  # late: only a mistake needs a did-you-mean

    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        hint = f" (did you mean {close[0]!r}?)"
    defined = ", ".join(_printable(k) for k in known) if known else "none"
    return (
        f"no profile named {quote(name)}{hint}; profiles defined: {defined}; this schedule is "
        "not acted on until the profile exists or the schedule names another"
    )


def _check_holiday_names(
    docs: DocumentSet,
    labels: Mapping[int, tuple[str, str]],
    invalid_calendars: Mapping[str, tuple[str, str]],
    known_calendars: Collection[str],
    *,
    check_calendars: bool,
) -> list[Problem]:
    """Every schedule's holiday names must be countries or calendars; a schedule that names
    one that is not is left out of ``docs``.

    A calendar that is present but invalid is named as such: its own problems say why (once),
    one more line on it names the schedules it stops, and each of those says which calendar.
    """
    problems: list[Problem] = []
    calendar_names = set(docs.calendars) | set(known_calendars)
    affected: dict[str, list[str]] = {}
    for schedule in list(docs.schedules.values()):
        source, label = labels[id(schedule)]
        costly = [Problem(source, label, path, text) for path, text in cron_rule_problems(schedule)]
        if costly:
            problems.extend(costly)
            del docs.schedules[schedule.key]
            continue
        unknown: list[Problem] = []
        for i, name in enumerate(schedule.holidays):
            if is_country(name) or name in calendar_names:
                continue
            if name in invalid_calendars:
                where = invalid_calendars[name][1]
                message = (
                    f"calendar {name!r} is invalid (its problems are listed under {where}); "
                    "this schedule is not acted on until it is fixed"
                )
                affected.setdefault(name, []).append(schedule.key)
            elif check_calendars or Schedule.is_country_code(name):
                message = _unknown_calendar(name, calendar_names)
            else:
                continue
            unknown.append(Problem(source, label, f"holidays[{i}]", message))
        if unknown:
            problems.extend(unknown)
            del docs.schedules[schedule.key]
    for name, keys in sorted(affected.items()):
        source, label = invalid_calendars[name]
        problems.append(
            Problem(
                source,
                label,
                _WHOLE_DOCUMENT,
                f"this calendar is invalid, so {_count(len(keys), 'schedule')} that "
                f"list{'s' if len(keys) == 1 else ''} it cannot be decided until it is fixed: "
                f"{', '.join(sorted(keys))}",
            )
        )
    return problems


def _count(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _calendar_name(raw: object) -> str | None:
    """The name an invalid calendar document gives itself, if it gives one."""
    if not isinstance(raw, Mapping) or raw.get("kind") != "calendar":
        return None
    name = raw.get("name")
    return name.strip() if isinstance(name, str) and name.strip() else None


def _deployment_problems(
    parsed: ParsedDocument, checks: Sequence[DocumentCheck], source: str, label: str
) -> list[Problem]:
    if isinstance(parsed, Calendar | ProfileBase):
        return []
    return [
        Problem(source, label, path, message) for check in checks for path, message in check(parsed)
    ]


def growth_cap(cap: int) -> DocumentCheck:
    """No schedule may ask for a desired count, MinCapacity or MaxCapacity above ``cap`` (the
    deployment's ``TEIJI_MAX_DESIRED``). Overrides carry no capacity of their own."""

    def check(document: Schedule | Override) -> list[tuple[str, str]]:
        if not isinstance(document, Schedule):
            return []
        counts: dict[str, int | None] = {"stopped.desired_count": document.stopped.desired_count}
        if document.running is not None:
            counts["running.desired_count"] = document.running.desired_count
            counts["running.min_capacity"] = document.running.min_capacity
            counts["running.max_capacity"] = document.running.max_capacity
        return [
            (
                path,
                f"{value} is above the growth cap of {cap}; use at most {cap}, or raise "
                f"{MAX_DESIRED_ENV} (Terraform variable max_desired)",
            )
            for path, value in counts.items()
            if value is not None and value > cap
        ]

    return check


def canonical_service_key(
    key: str, *, own_region: str | None, own_account: str | None = None
) -> str:
    """One key per ECS service: teiji's own account and region spelled out are the bare key
    (``c1/web@ap-northeast-1`` is ``c1/web`` when teiji runs in ap-northeast-1)."""
    return str(ServiceKey.parse(key).canonical(own_account, own_region))


def duplicate_services(
    schedules: Mapping[str, Schedule],
    labels: Mapping[int, tuple[str, str]],
    *,
    own_region: str | None,
    own_account: str | None = None,
) -> list[Problem]:
    """A problem for every schedule that names the same ECS service as another one.

    Both are reported, so that the service is left alone: acting on either would let the two
    documents flip it every tick and leave a baseline under the other key.
    """
    groups: dict[str, list[Schedule]] = {}
    for schedule in schedules.values():
        canonical = canonical_service_key(
            schedule.key, own_region=own_region, own_account=own_account
        )
        groups.setdefault(canonical, []).append(schedule)
    problems: list[Problem] = []
    for canonical, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        keys = sorted(m.key for m in members)
        for member in members:
            source, _ = labels[id(member)]
            others = ", ".join(k for k in keys if k != member.key)
            problems.append(
                Problem(
                    source,
                    f"schedule {member.key}",
                    "service",
                    f"names the same ECS service as the schedule for {others} ({canonical} in "
                    "teiji's own account and region); teiji leaves the service alone until "
                    "one document remains",
                )
            )
    return problems


def _duplicate(kind: str, name: str, first: tuple[str, int]) -> str:
    source, index = first
    return (
        f"a second {kind} for {name}; the first is document {index} of {source}; keep one of them"
    )


def _unknown_calendar(name: str, calendars: Collection[str]) -> str:
    known = sorted(calendars)
    if Schedule.is_country_code(name):
        code, _, subdivision = name.partition("-")
        if code in country_codes() and subdivision:
            subs = ", ".join(sorted(subdivisions(code))) or "none"
            return f"{code} has no subdivision {subdivision!r}; its subdivisions: {subs}"
        return (
            f"{name!r} is not a country code the holidays library knows; use an ISO 3166 code "
            "such as JP, US or GB, or the name of a calendar document"
        )
    hint = ""
    if is_country(name.upper()):
        hint = f" (did you mean the country {name.upper()!r}?)"
    else:
        import difflib  # late: only a mistake needs a did-you-mean

        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    defined = ", ".join(known) if known else "none"
    return (
        f"no calendar named {name!r}{hint}; calendars defined: {defined}; "
        "or use a country code such as JP or US"
    )


def _override_too_long(override: Override, now: datetime, limit: timedelta) -> str | None:
    begin = override.start or now
    length = override.until - begin
    if length <= limit:
        return None
    measured = "from its start" if override.start else "from now (it has no start)"
    days = max(1, math.ceil(length / timedelta(days=1)))
    return (
        f"the override lasts {duration_text(length)} {measured}, longer than the limit of "
        f"{duration_text(limit)}; end it sooner, or raise the limit with {MAX_OVERRIDE_ENV} "
        f"(for example {MAX_OVERRIDE_ENV}={days}d)"
    )


def duration_text(span: timedelta) -> str:
    """``7 days``, ``9 days 2 hours``, ``90 minutes`` → for people, to the minute."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    for amount, unit in ((days, "day"), (hours, "hour"), (minutes, "minute")):
        if amount:
            parts.append(f"{amount} {unit}{'s' if amount != 1 else ''}")
    return " ".join(parts) or "less than a minute"


# --------------------------------------------------------------------------------------------
# What a cron pair may cost to decide, and how rarely it may fire

# Deciding enumerates every fire of a pair's expressions near the instant asked about, so one
# expression that fires every minute costs 1,440 fires a day and a few such schedules cost
# a tick's whole deadline. teiji acts every 15 minutes: more fires than that do nothing.
MAX_CRON_FIRES_PER_DAY = 96
# Deciding looks back to a pair's last start and stop fire; every expression must fire at least
# once in this span (a year), or its last fire could be forgotten.
MAX_CRON_SILENCE = timedelta(days=366)


def cron_rule_problems(schedule: Schedule) -> list[tuple[str, str]]:
    """(field, message) for each cron expression that is too costly or fires too rarely."""
    found: list[tuple[str, str]] = []
    for i, pair in enumerate(schedule.cron):
        for end, expression in (("start", pair.start), ("stop", pair.stop)):
            message = cron_cost_problem(expression) or cron_silence_problem(expression)
            if message:
                found.append((f"cron[{i}].{end}", message))
    return found


@cache
def cron_fires_per_day(expression: str) -> int:
    """The most fires ``expression`` can have on one local date (minutes x hours)."""
    from croniter import croniter

    minutes, hours = croniter(expression).expanded[:2]
    return (60 if minutes == ["*"] else len(minutes)) * (24 if hours == ["*"] else len(hours))


def cron_cost_problem(expression: str) -> str | None:
    fires = cron_fires_per_day(expression)
    if fires <= MAX_CRON_FIRES_PER_DAY:
        return None
    return (
        f"{expression!r} fires up to {fires} times a day; a start or stop may fire at most "
        f"{MAX_CRON_FIRES_PER_DAY} times a day (every 15 minutes, as often as teiji acts), "
        "because deciding walks every fire: name the hours and minutes it should act at, "
        "for example '0 9 * * mon-fri'"
    )


@cache
def cron_silence_problem(expression: str) -> str | None:
    """Why ``expression`` can go longer than ``MAX_CRON_SILENCE`` without firing, or None."""
    from croniter import croniter

    parsed = croniter(expression)
    _, _, doms, months, dows = parsed.expanded[:5]
    special = parsed.nth_weekday_of_month or getattr(parsed, "nearest_weekday", None)
    special = special or any(isinstance(v, str) and v != "*" for v in (*doms, *dows))
    if not special:
        if dows != ["*"] or doms == ["*"]:
            return None  # every month has every weekday and every day up to the 28th
        month_set = range(1, 13) if months == ["*"] else [int(m) for m in months]
        # A common year's month lengths: 29 February is the only date not in every year.
        lengths = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
        if any(int(d) <= lengths[m - 1] for m in month_set for d in doms):
            return None
        return _silence_message(expression, _longest_silence(expression))
    silence = _longest_silence(expression)
    return (
        None
        if silence is not None and silence <= MAX_CRON_SILENCE
        else _silence_message(expression, silence)
    )


def _longest_silence(expression: str) -> timedelta | None:
    """The longest stretch between fire dates over 2024-2052 (a whole 28-year weekday cycle),
    or None when it never fires."""
    from croniter import croniter

    walk_from, end = datetime(2024, 1, 1), datetime(2052, 1, 1)
    longest, previous = timedelta(0), walk_from
    while previous < end:
        try:
            fire = croniter(expression, previous).get_next(datetime)
        except Exception:  # croniter gives up after years without a fire
            return None
        longest = max(longest, fire - previous)
        # The next date: one call per firing date, however many fires a date has.
        previous = datetime.combine(fire.date(), datetime.min.time()) + timedelta(days=1)
        previous = max(previous, fire)
    return longest


def _silence_message(expression: str, silence: timedelta | None) -> str:
    how = "never fires" if silence is None else f"can go {silence.days} days without firing"
    return (
        f"{expression!r} {how}; deciding looks back at most a year for a pair's last start "
        "and stop, so each expression must fire at least once a year (29 February, for "
        "example, comes only in leap years)"
    )
