"""What the commands that read the config table share: the session, AWS errors, the clock,
finding a service's schedule and documents, and running the tick for it after a write.

- ``Session``/``open_session``: settings, clients and the config table of one command.
- ``aws_errors``: an AWS failure as one line and exit 1.
- ``find_schedule``/``match_service``/``near_matches``: the stored schedule a typed name means
  (``schemas.keys`` decides what names what), else the names it may have meant.
- ``load_service_documents``: one service's documents, validated as the tick validates them.
- ``finish``: print a command's result, then with ``--now`` run the tick for that service.

``utc_now`` and ``make_clients`` are looked up here when a command runs, so tests pin the clock
and wrap the clients in this one module.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from engine.aws.clients import Clients
from engine.aws.errors import AWS_ERRORS, error_code, error_text
from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    make_clients,
    override_limit,
    print_json,
)
from engine.cli.tick import check_rate_settings, render_tick, report_json
from engine.config import Settings
from engine.logs import silence_logging
from engine.overrides import StoredOverride
from engine.report import TickReport
from engine.store import (
    ConfigStore,
    document_from_item,
    service_of_problem,
)
from schemas.documents import Override, Schedule
from schemas.keys import ServiceKey, keys_named
from schemas.validation import DocumentSet, Problem, parse_document, validate_documents

# Lists of names are printed in full up to this many; beyond it, only the near matches.
FEW = 10
# How alike two names must be (difflib's ratio, 0 to 1) to be offered as "did you mean".
SIMILAR = 0.6
RUNNER_UP = 0.05


def utc_now() -> datetime:
    """The current instant; tests replace this to pin the clock."""
    return datetime.now(UTC)


def default_zone() -> str:
    """The zone of a schedule that names none (TEIJI_DEFAULT_TIMEZONE, else Asia/Tokyo)."""
    return Settings.from_env().default_timezone


@dataclass
class Session:
    """What a command works with: settings, clients and the config table."""

    settings: Settings
    clients: Clients
    config: ConfigStore

    @property
    def table(self) -> str:
        return self.settings.config_table


def open_session(args: argparse.Namespace) -> Session:
    settings = Settings.from_env()
    if getattr(args, "now", False):
        # --now runs a tick: refuse a rate setting it cannot use before anything is written.
        check_rate_settings()
    clients = make_clients(args, settings)
    return Session(settings, clients, ConfigStore(clients, settings.config_table))


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """AWS failures as one line and exit 1; a missing table says to run ``teiji init``."""
    try:
        yield
    except ClientError as exc:
        missing = error_code(exc) == "ResourceNotFoundException"
        hint = " (run `teiji init` to create the tables)" if missing else ""
        raise CliError(f"{what}: {error_text(exc)}{hint}", EXIT_FAILED) from exc
    except AWS_ERRORS as exc:
        raise CliError(f"{what}: {exc}", EXIT_FAILED) from exc


def max_override(args: argparse.Namespace, settings: Settings) -> timedelta:
    """``--max``, else TEIJI_MAX_OVERRIDE."""
    return override_limit(args.max, "--max", settings)


# Finding a schedule ---------------------------------------------------------------------------
def near_matches(name: str, candidates: Sequence[str], limit: int = 5) -> list[str]:
    """Candidates spelled like ``name`` (difflib's ratio at least ``SIMILAR`` and within
    ``RUNNER_UP`` of the closest), closest first.

    ``cluster/service`` is compared part by part: a shared cluster makes two different
    services look alike as whole strings, so the service names must be alike themselves.
    """
    cluster, wanted = _parts(name)
    scored: list[tuple[float, str]] = []
    for candidate in candidates:
        their_cluster, theirs = _parts(candidate)
        score = _similarity(wanted, theirs)
        if cluster and their_cluster != cluster:
            score = min(score, _similarity(cluster, their_cluster))
        if score >= SIMILAR:
            scored.append((score, candidate))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    # Names that share a long prefix are all alike; offer only the ones nearly as close as
    # the closest (example-service-stgg means -stg, not -dev).
    best = scored[0][0] if scored else 0.0
    return [candidate for score, candidate in scored[:limit] if score >= best - RUNNER_UP]


def _parts(text: str) -> tuple[str, str]:
    """The cluster and service ``text`` names (``ServiceKey``'s, or split by hand when its
    scope does not parse: a typo is compared too)."""
    try:
        key = ServiceKey.parse(text)
    except ValueError:
        cluster, _, service = text.split("@", 1)[0].rpartition("/")
        return cluster, service
    return key.cluster, key.service


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


def match_service(service: str | None, keys: Sequence[str], table_name: str) -> str:
    """The stored schedule key ``service`` names: the key itself, ``cluster/service`` without
    its ``@scope``, or the bare service name, when that is unique. Raises CliError (exit 2)
    listing the schedules when there are few, else the near matches."""
    keys = sorted(keys)
    if service is None:
        if len(keys) == 1:
            return keys[0]
        raise CliError(f"name a service; {_known_services(keys, table_name)}")
    candidates = keys_named(service, keys)
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise CliError(f"{service!r} names {len(candidates)} schedules: {', '.join(candidates)}")
    near = near_matches(service, keys)
    if near:
        hint = f"did you mean {' or '.join(near)}?"
    elif keys:
        hint = f"no stored name is like it; {_known_services(keys, table_name)}"
    else:
        hint = _known_services(keys, table_name)
    raise CliError(f"no schedule for {service!r} in {table_name}; {hint}")


def _known_services(keys: Sequence[str], table_name: str) -> str:
    if not keys:
        return f"{table_name} holds no schedules yet (teiji put FILE adds one)"
    if len(keys) <= FEW:
        return f"schedules: {', '.join(keys)}"
    return f"{len(keys)} schedules are stored; teiji list shows them"


@dataclass(frozen=True)
class StoredDocument:
    """A document as stored: its sort key and the plain document (not yet validated)."""

    sk: str
    raw: dict[str, Any]


def find_schedule(session: Session, service: str | None) -> StoredDocument:
    """The stored schedule ``service`` names (see ``match_service``)."""
    with aws_errors(f"cannot read the schedules in {session.table}"):
        if service:
            raw = session.config.get("schedule", service)
            if raw is not None:
                return StoredDocument(service, raw)
        items = session.config.query_kind("schedule")
    by_key = {str(item.get("sk", "")): item for item in items}
    key = match_service(service, list(by_key), session.table)
    return StoredDocument(key, _document(by_key[key]))


def _document(item: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return document_from_item(item)
    except ValueError as exc:
        raise CliError(f"the stored item {item.get('sk')!r} cannot be read: {exc}") from exc


def parse_schedule(stored: StoredDocument, source: str) -> Schedule:
    parsed = parse_document(stored.raw, source=source, index=1)
    if isinstance(parsed, list) or not isinstance(parsed, Schedule):
        problems = parsed if isinstance(parsed, list) else []
        details = "; ".join(f"{p.path}: {p.message}" for p in problems)
        raise CliError(
            f"the stored schedule of {stored.sk} is invalid ({details}); fix it: "
            f"teiji get {stored.sk} > fix.yaml, edit, teiji put fix.yaml"
        )
    return parsed


def timezones(session: Session) -> dict[str, str]:
    """Every stored schedule's zone, by its key."""
    with aws_errors(f"cannot read the schedules in {session.table}"):
        items = session.config.query_kind("schedule")
    return {str(i.get("sk", "")): str(i.get("timezone") or default_zone()) for i in items}


# A service's documents ------------------------------------------------------------------------
def query_service_overrides(session: Session, key: str) -> list[dict[str, Any]]:
    """The override items of one service (sort keys ``<key>#...``), all pages."""
    return session.config.query_kind("override", prefix=f"{key}#")


def stored_overrides(items: Sequence[Mapping[str, Any]], source: str) -> list[StoredOverride]:
    """Override items with their documents; an item that does not parse has ``override=None``
    (it can still be cancelled by its id)."""
    found: list[StoredOverride] = []
    for index, item in enumerate(items, 1):
        sk = str(item.get("sk", ""))
        try:
            parsed = parse_document(document_from_item(item), source=source, index=index)
        except ValueError:
            parsed = []
        document = parsed if isinstance(parsed, Override) else None
        found.append(StoredOverride(sk, document))
    return found


def refused_by_tick(
    session: Session, items: Sequence[Mapping[str, Any]], now: datetime
) -> dict[str, list[str]]:
    """Why the tick would not apply each override that parses on its own (past the override
    cap, a sort key that does not name it): the tick's own validation of the items."""
    loaded = session.config.validate_items(
        items,
        now=now,
        max_override=session.settings.max_override,
        default_timezone=session.settings.default_timezone,
        keep_ended=True,
    )
    refused: dict[str, list[str]] = {}
    for problem in loaded.problems:
        kind, _, sk = problem.document.partition(" ")
        if kind == "override" and sk:
            refused.setdefault(sk, []).append(
                f"the tick does not apply it: {problem.path}: {problem.message}"
            )
    return refused


def load_service_documents(
    session: Session, key: str, *, now: datetime, limit: timedelta
) -> tuple[DocumentSet, list[Problem]]:
    """One service's schedule with every calendar and its own overrides, validated as the
    tick validates them. Problems that do not concern this service are left out."""
    source = session.config.source
    with aws_errors(f"cannot read the documents in {session.table}"):
        schedule = session.config.get("schedule", key)
        calendars = session.config.query_kind("calendar")
        overrides = query_service_overrides(session, key)
        named = schedule.get("profile") if schedule is not None else None
        profile = session.config.get("profile", named) if isinstance(named, str) else None
    raws: list[tuple[str, int, object]] = []
    if schedule is not None:
        raws.append((source, 1, schedule))
    if profile is not None:
        raws.append((source, 2, profile))
    for item in [*calendars, *overrides]:
        try:
            raws.append((source, len(raws) + 1, document_from_item(item)))
        except ValueError:
            continue  # an unreadable key: the tick reports it; it says nothing about this service
    docs, problems = validate_documents(
        raws, now=now, max_override=limit, default_timezone=session.settings.default_timezone
    )
    # The tick holds back only the schedules that list an invalid calendar: another
    # calendar's problems say nothing about this service.
    listed = {f"calendar {name}" for name in _holidays_named(schedule, profile)}
    return docs, [
        p
        for p in problems
        if service_of_problem(p) == key
        or (service_of_problem(p) is None and (p.document in listed or not _a_calendar(p)))
    ]


def _holidays_named(*raws: Mapping[str, Any] | None) -> set[str]:
    """The holiday names a stored schedule and its profile list (whatever their other fields)."""
    names: set[str] = set()
    for raw in raws:
        holidays = raw.get("holidays") if raw is not None else None
        if isinstance(holidays, list):
            names.update(name.strip() for name in holidays if isinstance(name, str))
    return names


def _a_calendar(problem: Problem) -> bool:
    return problem.document.startswith("calendar ")


# After a write: --json and --now --------------------------------------------------------------
def finish(
    args: argparse.Namespace, session: Session, key: str, payload: dict[str, Any], lines: list[str]
) -> int:
    """Print ``lines`` (or, with --json, ``payload``), then with --now run the tick for
    ``key``: its table follows the lines, or its report goes into the payload as ``tick``."""
    if not getattr(args, "json", False):
        for line in lines:
            print(line)
        return tick_now(session, key, utc_now()) if getattr(args, "now", False) else EXIT_OK
    code = EXIT_OK
    if getattr(args, "now", False):
        report = _run_tick_for(session, key, utc_now())
        payload["tick"] = report_json(report)
        code = EXIT_FAILED if report.failed else EXIT_OK
    print_json(payload)
    return code


def tick_now(session: Session, key: str, at: datetime) -> int:
    """Run the tick for one service at once and print what it did."""
    report = _run_tick_for(session, key, at)
    print(f"tick for {key} now:")
    print(render_tick(report))
    return EXIT_FAILED if report.failed else EXIT_OK


def _run_tick_for(session: Session, key: str, at: datetime) -> TickReport:
    # Start-up: engine.tick adds about 45 ms to every command (-X importtime); only --now runs it.
    from engine.tick import TickError, run_tick

    silence_logging()
    try:
        return run_tick(
            session.clients,
            session.settings,
            at=at,
            dry_run=session.settings.dry_run,
            services=[key],
        )
    except TickError as err:
        raise CliError(f"the tick could not run: {err}", EXIT_FAILED) from err


def profile_names(items: Sequence[tuple[str, int, object]]) -> set[object]:
    return {
        raw.get("name")
        for _, _, raw in items
        if isinstance(raw, Mapping) and raw.get("kind") == "profile"
    }


def stored_profiles_named(
    items: Sequence[tuple[str, int, object]], session: Session
) -> list[tuple[str, int, object]]:
    """The stored profiles that schedules in the files name and the files do not give, as
    items to validate with the files' (one that is invalid refuses just those schedules)."""
    given = profile_names(items)
    named = {
        raw.get("profile")
        for _, _, raw in items
        if isinstance(raw, Mapping) and raw.get("kind") == "schedule"
    }
    wanted = {name for name in named if isinstance(name, str) and name not in given}
    if not wanted:
        return []
    stored = session.config.query_kind("profile")
    return [
        (session.config.source, index, document_from_item(item))
        for index, item in enumerate(stored, start=1)
        if str(item.get("sk", "")) in wanted
    ]
