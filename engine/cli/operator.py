"""The operator's day to day: put, get, delete, list, start, stop and override.

- ``teiji put FILE...`` validates every document (holiday names may name calendars already
  stored) and writes them all, or nothing when any is invalid.
- ``teiji get SERVICE`` / ``teiji get --calendar NAME`` print a stored document as YAML that
  ``teiji put`` takes back.
- ``teiji delete SERVICE`` / ``teiji delete --calendar NAME``.
- ``teiji list`` shows every managed service: its decision now, why, the next change, and what
  it looks like in AWS (read only: the tick's observe layer, then baselines).
- ``teiji start|stop SERVICE (--for D | --until T) --reason R`` writes an override;
  ``teiji override list|cancel|extend`` manage them. ``--now`` runs the tick for that one
  service at once.

The pure rules for overrides live in ``engine.overrides``; this module reads and writes the
config table and talks to people.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from engine.access import document_checks
from engine.aws.clients import AccountUnreachableError
from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_aws_options,
    colour,
    fail_with_problems,
    make_clients,
    override_limit,
    parse_at,
    plural,
    print_json,
    read_files,
    table,
)
from engine.cli.put_changes import changes_text, refusal_text
from engine.config import Settings
from engine.localtime import time_text
from engine.logs import silence_logging
from engine.model import Decision, Observation
from engine.observe import error_text
from engine.overrides import (
    OverrideError,
    StoredOverride,
    build_override,
    caller_name,
    extend_override,
    extended_until,
    find_override,
    new_override_id,
    override_status,
    parse_instant,
    parse_length,
)
from engine.putdiff import plan_put
from engine.report import for_people
from engine.store import (
    CheckedWrite,
    ConfigStore,
    LoadedConfig,
    StateStore,
    StoreError,
    WriteConflictError,
    conditional_write,
    document_from_item,
    error_code,
    item_from_document,
    item_key,
    plain,
    service_of_problem,
    stamp_item,
    to_attribute_map,
)
from engine.tablecheck import override_warnings
from schemas.documents import Calendar, Override, Schedule, State
from schemas.keys import closeness, keys_named
from schemas.validation import DocumentSet, Problem, parse_document, validate_documents

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from engine.report import TickReport
    from schemas.records import Baseline

# Lists of names are printed in full up to this many; beyond it, only the near matches.
FEW = 10
# How alike two names must be (difflib's ratio, 0 to 1) to be offered as "did you mean".
SIMILAR = 0.6
RUNNER_UP = 0.05
_NEW_ID_ATTEMPTS = 5
_AWS_ERRORS = (ClientError, BotoCoreError, StoreError, AccountUnreachableError)
_STATE_VERB = {"running": "will run", "stopped": "will be kept stopped"}


def utc_now() -> datetime:
    """The current instant; tests replace this to pin the clock."""
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# The parser


def _default_zone() -> str:
    """The zone of a schedule that names none (TEIJI_DEFAULT_TIMEZONE, else Asia/Tokyo)."""
    return Settings.from_env().default_timezone


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Adds put, get, delete, list, start, stop and override."""
    put = sub.add_parser(
        "put",
        help="validate documents and write them to the config table",
        description="Validate schedule, calendar and override documents (files or directories; "
        "- reads standard input) and write them to the config table, replacing documents with "
        "the same name, and show the fields each replacement changes. Holiday names may name "
        "calendars already stored. Nothing is written when any document is invalid (exit 2), "
        "or when a stored document was edited outside teiji since teiji wrote it (exit 1; "
        "--force replaces it).",
    )
    put.add_argument("files", nargs="+", metavar="FILE")
    put.add_argument(
        "--dry-run", action="store_true", help="validate and show the changes, write nothing"
    )
    put.add_argument(
        "--force",
        action="store_true",
        help="replace documents even when they were edited outside teiji since teiji wrote them",
    )
    put.add_argument("--json", action="store_true", help="print what was written as JSON")
    _add_max(put)
    add_aws_options(put)
    put.set_defaults(func=run_put)

    get = sub.add_parser(
        "get",
        help="print a stored schedule (or calendar) as YAML",
        description="Print the stored schedule of SERVICE (or the calendar NAME) as a YAML "
        "document you can edit and `teiji put` back.",
    )
    get.add_argument("service", nargs="?", metavar="SERVICE", help="cluster/service")
    get.add_argument("--calendar", metavar="NAME", help="print this calendar instead")
    get.add_argument("--json", action="store_true", help="print the document as JSON")
    add_aws_options(get)
    get.set_defaults(func=run_get)

    delete = sub.add_parser(
        "delete",
        help="remove a schedule (the service becomes unmanaged) or a calendar",
        description="Remove the schedule of SERVICE: teiji then leaves the service exactly as "
        "it is. A saved baseline is kept, so adding a schedule again restores it. With "
        "--calendar, remove a calendar that no schedule lists.",
    )
    delete.add_argument("service", nargs="?", metavar="SERVICE", help="cluster/service")
    delete.add_argument("--calendar", metavar="NAME", help="delete this calendar instead")
    _add_json(delete, "print what was deleted as JSON")
    add_aws_options(delete)
    delete.set_defaults(func=run_delete)

    listing = sub.add_parser(
        "list",
        help="every managed service: decision now, why, next change, and its state in AWS",
        description="Every service with a schedule: what teiji decides now and why, the next "
        "change, what the service looks like in AWS (desired/running, Min..Max, saved "
        "baseline) and what the next tick would change. Reads only.",
    )
    listing.add_argument(
        "--at",
        metavar="ISO8601",
        help="decide at this instant, with an offset or Z (default: now)",
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    add_aws_options(listing)
    listing.set_defaults(func=run_list)

    _add_override_command(sub, "start", "running")
    _add_override_command(sub, "stop", "stopped")

    override = sub.add_parser(
        "override",
        help="list, cancel or extend overrides",
        description="Overrides keep a service running (teiji start) or stopped (teiji stop) "
        "until a time. IDs are 8 characters; write SERVICE#ID when an id is not unique.",
    )
    actions = override.add_subparsers(dest="override_action", metavar="ACTION")
    override.set_defaults(func=lambda args: _usage(override))

    olist = actions.add_parser("list", help="active and upcoming overrides")
    olist.add_argument("service", nargs="?", metavar="SERVICE", help="only this service")
    olist.add_argument(
        "--all", action="store_true", help="also expired ones DynamoDB has not deleted yet"
    )
    olist.add_argument("--json", action="store_true", help="print a JSON list")
    add_aws_options(olist)
    olist.set_defaults(func=run_override_list)

    cancel = actions.add_parser("cancel", help="delete an override")
    cancel.add_argument("ref", metavar="ID", help="the override id, or SERVICE#ID")
    _add_now(cancel)
    _add_json(cancel, "print the cancelled override as JSON")
    add_aws_options(cancel)
    cancel.set_defaults(func=run_override_cancel)

    extend = actions.add_parser(
        "extend",
        help="move an override's end",
        description="Move an override's end: --until T, or --for D added to its current end "
        "(to now when it has ended). The length limit is measured from the override's start.",
    )
    extend.add_argument("ref", metavar="ID", help="the override id, or SERVICE#ID")
    _add_end(extend)
    _add_max(extend)
    _add_now(extend)
    _add_json(extend, "print the extended override as JSON")
    add_aws_options(extend)
    extend.set_defaults(func=run_override_extend)


def _add_override_command(sub: argparse._SubParsersAction[Any], verb: str, state: State) -> None:
    held = "running" if state == "running" else "stopped"
    parser = sub.add_parser(
        verb,
        help=f"keep a service {held} for a while (writes an override)",
        description=f"Keep SERVICE {held} from now (or --from) for --for D or until --until T, "
        "whatever its schedule says; then the schedule decides again. --until HH:MM is local "
        "time in the schedule's timezone (today's, or tomorrow's when it has passed).",
    )
    parser.add_argument("service", metavar="SERVICE", help="cluster/service")
    _add_end(parser)
    parser.add_argument("--reason", required=True, help="why (shown in reports and logs)")
    parser.add_argument(
        "--from",
        dest="start",
        metavar="TIME",
        help="begin later: HH:MM (next occurrence) or an ISO timestamp (default: now)",
    )
    parser.add_argument(
        "--by", metavar="NAME", help="who asks (default: your AWS identity, else $USER)"
    )
    _add_max(parser)
    _add_now(parser)
    _add_json(parser, "print the override written as JSON")
    add_aws_options(parser)
    parser.set_defaults(func=run_override_command, state=state)


def _add_end(parser: argparse.ArgumentParser) -> None:
    end = parser.add_mutually_exclusive_group(required=True)
    end.add_argument(
        "--for", dest="length", metavar="DURATION", help="how long, e.g. 2h, 90m, 1d12h"
    )
    end.add_argument(
        "--until",
        metavar="TIME",
        help="HH:MM in the schedule's timezone (next occurrence) or an ISO timestamp such as "
        "2026-12-01T23:30+09:00",
    )


def _add_max(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max",
        metavar="DURATION",
        help="longest override allowed (default: $TEIJI_MAX_OVERRIDE or 7d); the tick checks "
        "its own TEIJI_MAX_OVERRIDE too",
    )


def _add_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        action="store_true",
        help="also run the tick for this service right away and print what it did",
    )


def _add_json(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "--json", action="store_true", help=f"{text} (with --now, the tick's report too)"
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


# --------------------------------------------------------------------------------------------
# Shared: settings, clients, AWS errors, finding documents


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
        from engine.cli.tick import check_rate_settings

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
    except _AWS_ERRORS as exc:
        raise CliError(f"{what}: {exc}", EXIT_FAILED) from exc


def max_override(args: argparse.Namespace, settings: Settings) -> timedelta:
    return override_limit(args.max, "--max", settings)


def near_matches(name: str, candidates: Sequence[str], limit: int = 5) -> list[str]:
    """Candidates spelled like ``name`` (difflib's ratio at least ``SIMILAR`` and within
    ``RUNNER_UP`` of the closest), closest first.

    ``cluster/service`` is compared part by part: a shared cluster makes two different
    services look alike as whole strings, so the service names must be alike themselves.
    """
    cluster, _, wanted = name.split("@", 1)[0].rpartition("/")
    scored: list[tuple[float, str]] = []
    for candidate in candidates:
        their_cluster, _, theirs = candidate.split("@", 1)[0].rpartition("/")
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
    raws: list[tuple[str, int, object]] = []
    if schedule is not None:
        raws.append((source, 1, schedule))
    for item in [*calendars, *overrides]:
        try:
            raws.append((source, len(raws) + 1, document_from_item(item)))
        except ValueError:
            continue  # an unreadable key: the tick reports it; it says nothing about this service
    docs, problems = validate_documents(
        raws, now=now, max_override=limit, default_timezone=session.settings.default_timezone
    )
    return docs, [p for p in problems if service_of_problem(p) in (key, None)]


def ordered_document(document: Schedule | Calendar | Override) -> dict[str, Any]:
    """The document as plain data in the models' field order, without defaulted fields, so it
    reads like what someone would write (``kind`` first; a schedule always shows its zone)."""
    body = _dump(document)
    if isinstance(document, Schedule):
        body = {
            "service": body.pop("service"),
            **({"mode": body.pop("mode")} if "mode" in body else {}),
            "timezone": document.timezone,
            **body,
        }
    return {"kind": document.kind, **{k: v for k, v in body.items() if k != "kind"}}


def _dump(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude_defaults=True
    )
    return dumped


class _Dumper(yaml.SafeDumper):
    """Quotes every ``HH:MM``: YAML 1.1 tools read an unquoted 05:00 as the number 300."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "'" if _CLOCK_TEXT.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CLOCK_TEXT = re.compile(r"^\d{1,2}:\d{2}$", re.ASCII)
_Dumper.add_representer(str, _represent_text)


def yaml_text(document: Mapping[str, Any], header: str) -> str:
    body = yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return f"# {header}\n{body}"


def tick_now(session: Session, key: str, at: datetime) -> int:
    """Run the tick for one service at once and print what it did."""
    from engine.cli.tick import render_tick

    report = _run_tick_for(session, key, at)
    print(f"tick for {key} now:")
    print(render_tick(report))
    return EXIT_FAILED if report.failed else EXIT_OK


def _run_tick_for(session: Session, key: str, at: datetime) -> TickReport:
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
        payload["tick"] = report.as_json()
        code = EXIT_FAILED if report.failed else EXIT_OK
    print_json(payload)
    return code


def _local(at: datetime, timezone: str | None = None) -> str:
    """``Tue 2026-12-01 22:00 JST``: local time in ``timezone`` (the schedule's), else UTC."""
    return time_text(at, timezone)


# --------------------------------------------------------------------------------------------
# put


def run_put(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    limit = max_override(args, settings)
    items, syntax = read_files(args.files)
    now = utc_now()
    # First without AWS: a mistake in the files is shown even where AWS cannot be reached.
    # Holiday names that are not countries may name stored calendars; the second pass knows.
    _, offline = validate_documents(
        items,
        now=now,
        max_override=limit,
        default_timezone=settings.default_timezone,
        check_calendars=False,
    )
    _refuse_problems(syntax + offline)
    session = open_session(args)
    with aws_errors(f"cannot read the calendars in {session.table}"):
        stored_calendars = [str(i.get("sk", "")) for i in session.config.query_kind("calendar")]
    docs, invalid = validate_documents(
        items,
        now=now,
        max_override=limit,
        known_calendars=stored_calendars,
        default_timezone=session.settings.default_timezone,
        checks=document_checks(session.settings.access, session.clients.region, allow_list=False),
    )
    _refuse_problems(invalid)
    # Calendars first, overrides last: an interrupted write never leaves a schedule naming a
    # calendar that is not there yet.
    documents: list[Schedule | Calendar | Override] = [
        *docs.calendars.values(),
        *docs.schedules.values(),
        *docs.overrides,
    ]
    # One write per item: an override without an id written twice is one document.
    by_key = {item_key(d): d for d in documents}
    if not by_key:
        raise CliError("no documents in the files given")
    with aws_errors(f"cannot read {session.table}"):
        stored = {
            (kind, str(item.get("sk", ""))): item
            for kind in sorted({kind for kind, _ in by_key})
            for item in session.config.query_kind(kind)
        }
    new_items = {key: item_from_document(doc) for key, doc in by_key.items()}
    plans = [
        plan_put(kind, sk, stamp_item(new_items[kind, sk]), _plain_or_none(stored.get((kind, sk))))
        for kind, sk in by_key
    ]
    refused = [p for p in plans if p.edited and not args.force]
    warnings = _put_warnings(session, docs, now)
    writes = [
        CheckedWrite(new_items[p.kind, p.name], stored.get((p.kind, p.name)))
        for p in plans
        if p.change != "unchanged"
    ]
    if not args.dry_run and not refused:
        _write_checked(session, writes)
    if args.json:
        print_json(
            {
                "table": session.table,
                "dry_run": args.dry_run,
                "written": not args.dry_run and not refused,
                "documents": [p.as_json() for p in plans],
                "refused": [{"kind": p.kind, "name": p.name} for p in refused],
            }
        )
    else:
        verb = "would write" if args.dry_run or refused else "wrote"
        print(f"{verb} {plural(len(writes), 'document')} to {session.table}:")
        print(changes_text(plans, force=args.force))
        if args.dry_run:
            print("dry run: nothing was written")
    for warning in warnings:
        print(f"teiji: warning: {warning}", file=sys.stderr)
    if refused:
        print(f"teiji: {refusal_text(refused, session.table)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _plain_or_none(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if item is None else dict(plain(item))


def _write_checked(session: Session, writes: Sequence[CheckedWrite]) -> None:
    """Write on condition that nothing changed since it was read; say so when it did."""
    try:
        with aws_errors(f"cannot write to {session.table}"):
            session.config.write_checked(writes)
    except WriteConflictError as exc:
        names = ", ".join(f"{pk} {sk}" for pk, sk in exc.keys)
        raise CliError(
            f"{names} changed in {session.table} while put was writing, so put wrote nothing "
            "more; run it again to see the differences",
            EXIT_FAILED,
        ) from exc


def _refuse_problems(problems: Sequence[Problem]) -> None:
    if problems:
        fail_with_problems(
            problems, f"{plural(len(problems), 'problem')} in the documents; nothing was written"
        )


def _put_warnings(session: Session, docs: DocumentSet, now: datetime) -> list[str]:
    """Overrides that will do nothing: they have ended, or their service has no schedule."""
    if not docs.overrides:
        return []
    zones = {key: schedule.timezone for key, schedule in docs.schedules.items()}
    for key, timezone in _timezones(session).items():
        zones.setdefault(key, timezone)
    warnings: list[str] = []
    for override in docs.overrides:
        name = item_key(override)[1]
        if override.until <= now:
            warnings.append(
                f"override {name} ended at "
                f"{_local(override.until, zones.get(override.key, _default_zone()))}: "
                "it does nothing"
            )
        if override.key not in zones:
            warnings.append(
                f"override {name}: {override.key} has no schedule, so the override does nothing "
                "until one is added"
            )
    return warnings


# --------------------------------------------------------------------------------------------
# get


def run_get(args: argparse.Namespace) -> int:
    session = open_session(args)
    if (args.service is None) == (args.calendar is None):
        raise CliError("give either SERVICE or --calendar NAME")
    if args.calendar:
        stored = find_calendar(session, args.calendar)
        label = f"calendar {stored.sk}"
    else:
        stored = find_schedule(session, args.service)
        label = f"schedule {stored.sk}"
    parsed = parse_document(stored.raw, source=session.config.source, index=1)
    if isinstance(parsed, list):
        # Show it as stored, so it can be fixed and put back; say what is wrong.
        for problem in parsed:
            print(f"teiji: warning: {problem}", file=sys.stderr)
        document: dict[str, Any] = stored.raw
    else:
        document = ordered_document(parsed)
    if args.json:
        print_json(document)
    else:
        header = f"{label}, from {session.config.source}; edit and `teiji put` this file"
        print(yaml_text(document, header), end="")
    return EXIT_OK


def find_calendar(session: Session, name: str) -> StoredDocument:
    with aws_errors(f"cannot read the calendars in {session.table}"):
        raw = session.config.get("calendar", name)
        if raw is not None:
            return StoredDocument(name, raw)
        names = sorted(str(i.get("sk", "")) for i in session.config.query_kind("calendar"))
    known = ", ".join(names) if names else "none"
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise CliError(f"no calendar {name!r} in {session.table}{hint}; calendars: {known}")


# --------------------------------------------------------------------------------------------
# delete


def run_delete(args: argparse.Namespace) -> int:
    session = open_session(args)
    if (args.service is None) == (args.calendar is None):
        raise CliError("give either SERVICE or --calendar NAME")
    if args.calendar:
        return _delete_calendar(session, args.calendar, as_json=args.json)
    stored = find_schedule(session, args.service)
    key = stored.sk
    timezone = str(stored.raw.get("timezone") or _default_zone())
    with aws_errors(f"cannot delete from {session.table}"):
        session.config.delete("schedule", key)
    lines = [
        f"deleted the schedule of {key}.",
        "The service is now unmanaged: teiji leaves it exactly as it is now and no longer "
        "starts or stops it.",
    ]
    baseline = _read_baseline(session, key)
    if baseline is not None:
        lines.append(
            f"Its saved capacity ({baseline_text(baseline)}, saved "
            f"{_local(baseline.saved_at, timezone)}) is kept: add a schedule again (for example "
            "with mode: always_on) and the next tick restores it."
        )
    with aws_errors(f"cannot read the overrides in {session.table}"):
        remaining = query_service_overrides(session, key)
    if remaining:
        lines.append(
            f"{plural(len(remaining), 'override')} for it remain until they end; "
            f"`teiji override list {key}` shows them and `teiji override cancel` removes them."
        )
    payload = {
        "table": session.table,
        "deleted": {"kind": "schedule", "name": key},
        "baseline_kept": None if baseline is None else baseline.model_dump(mode="json"),
        "overrides_remaining": [str(item.get("sk", "")) for item in remaining],
    }
    return finish(args, session, key, payload, lines)


def _read_baseline(session: Session, key: str) -> Baseline | None:
    state = StateStore(session.clients, session.settings.state_table)
    try:
        return state.get_baselines([key]).get(key)
    except _AWS_ERRORS as exc:
        print(f"teiji: warning: cannot read the saved baseline: {exc}", file=sys.stderr)
        return None


def baseline_text(baseline: Baseline) -> str:
    text = f"desired {baseline.desired_count}"
    if baseline.has_target:
        text += f", Min/Max {baseline.min_capacity}..{baseline.max_capacity}"
    return text


def _delete_calendar(session: Session, name: str, *, as_json: bool = False) -> int:
    stored = find_calendar(session, name)
    with aws_errors(f"cannot read the schedules in {session.table}"):
        schedules = session.config.query_kind("schedule")
    users = sorted(str(s.get("sk", "")) for s in schedules if name in _holiday_names(s))
    if users:
        shown = ", ".join(users[:FEW]) + (" ..." if len(users) > FEW else "")
        raise CliError(
            f"calendar {stored.sk} is listed in the holidays of {plural(len(users), 'schedule')} "
            f"({shown}); remove it from them first (teiji get, edit, teiji put)"
        )
    with aws_errors(f"cannot delete from {session.table}"):
        session.config.delete("calendar", stored.sk)
    if as_json:
        print_json({"table": session.table, "deleted": {"kind": "calendar", "name": stored.sk}})
    else:
        print(f"deleted calendar {stored.sk}.")
    return EXIT_OK


def _holiday_names(item: Mapping[str, Any]) -> set[str]:
    value = item.get("holidays")
    if isinstance(value, str):
        return {value}
    if isinstance(value, list | set | frozenset | tuple):
        return {str(v) for v in value}
    return set()


# --------------------------------------------------------------------------------------------
# list


@dataclass
class ServiceRow:
    """One line of ``teiji list``: the decision and, when AWS could be read, the service."""

    key: str
    timezone: str
    decision: Decision | None = None
    next_state: str | None = None
    observation: Observation | None = None
    aws_error: str | None = None
    baseline: bool | None = None
    pending: list[str] | None = None
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        decision = self.decision
        observed = self.observation
        target = observed.target if observed else None
        return {
            "service": self.key,
            "state": decision.state if decision else "invalid",
            "source": decision.source if decision else None,
            "reason": decision.reason if decision else None,
            "next_change": (
                decision.next_change.isoformat() if decision and decision.next_change else None
            ),
            "next_state": self.next_state,
            "override_id": decision.override_id if decision else None,
            "override_by": decision.override_by if decision else None,
            "holiday": decision.holiday if decision else None,
            "aws": None
            if observed is None
            else {
                "desired_count": observed.desired_count,
                "running_count": observed.running_count,
                "min_capacity": target.min_capacity if target else None,
                "max_capacity": target.max_capacity if target else None,
                "suspended": target.suspended.model_dump() if target else None,
            },
            "aws_error": self.aws_error,
            "baseline": self.baseline,
            "next_tick": self.pending,
            "problems": list(self.problems),
        }


def run_list(args: argparse.Namespace) -> int:
    at = parse_at(args.at)
    session = open_session(args)
    with aws_errors(f"cannot read the documents in {session.table}"):
        loaded = session.config.load_config(
            now=at,
            max_override=session.settings.max_override,
            default_timezone=session.settings.default_timezone,
        )
    docs = loaded.documents
    rows = decide_rows(docs, loaded.problem_keys, at)
    schedules = [docs.schedules[r.key] for r in rows if r.key in docs.schedules]
    read_aws(session, rows, schedules)
    other_problems = [str(p) for p in loaded.problems if service_of_problem(p) is None]
    unreachable = [r for r in rows if r.aws_error]
    if args.json:
        print_json([row.as_json() for row in rows])
    else:
        print(render_list(rows, at))
        for problem in other_problems:
            print(f"problem: {problem}")
        for warning in _override_warnings(loaded, scheduled=loaded_schedule_keys(loaded)):
            print(f"warning: {warning}")
        for line in aws_error_lines(unreachable, total=len(schedules)):
            print(line)
    failed = unreachable or other_problems or any(r.problems for r in rows)
    return EXIT_FAILED if failed else EXIT_OK


def loaded_schedule_keys(loaded: LoadedConfig) -> set[str]:
    """Every stored schedule, valid or not (an override for an invalid one is not orphaned)."""
    return set(loaded.documents.schedules) | {
        key
        for key, problems in loaded.problem_keys.items()
        if any(p.document.startswith("schedule ") for p in problems)
    }


def _override_warnings(loaded: LoadedConfig, *, scheduled: set[str]) -> list[str]:
    """``override SK: ...`` for each override in force or to come that TTL will not remove as
    meant, or whose service has no schedule (see engine.tablecheck)."""
    lines: list[str] = []
    for override in loaded.documents.overrides:
        sk = item_key(override)[1]
        item = loaded.override_items.get(sk)
        if item is None:
            continue
        for message in override_warnings(plain(item), override.until, scheduled):
            lines.append(f"override {sk}: {message}")
    return lines


def aws_error_lines(rows: Sequence[ServiceRow], *, total: int) -> list[str]:
    """The services AWS could not tell about, grouped by what went wrong."""
    if not rows:
        return []
    by_message: dict[str, list[str]] = {}
    for row in rows:
        by_message.setdefault(row.aws_error or "", []).append(row.key)
    everything = len(rows) == total
    lines = [
        "AWS could not be read"
        + ("" if everything else f" for {plural(len(rows), 'service')}")
        + ": their decisions are listed above, their capacity is not (?)"
    ]
    for message, keys in sorted(by_message.items()):
        shown = ", ".join(keys[:FEW]) + (f" and {len(keys) - FEW} more" if len(keys) > FEW else "")
        lines.append(f"  {shown}: {message}")
    return lines


def decide_rows(
    docs: DocumentSet, problem_keys: Mapping[str, Sequence[Problem]], at: datetime
) -> list[ServiceRow]:
    """A row per schedule (and per service whose documents are invalid), decided at ``at``."""
    from engine.decide import Decider

    decider = Decider(docs.calendars)
    rows: list[ServiceRow] = []
    for key in sorted(set(docs.schedules) | set(problem_keys)):
        schedule = docs.schedules.get(key)
        row = ServiceRow(key, schedule.timezone if schedule else _default_zone())
        row.problems = [
            p.message if p.path == "-" else f"{p.path}: {p.message}"
            for p in problem_keys.get(key, ())
        ]
        if schedule is not None:
            overrides = docs.overrides_for(key)
            try:
                row.decision = decider.decide(schedule, at, overrides)
                if row.decision.next_change is not None:
                    row.next_state = decider.decide(
                        schedule, row.decision.next_change, overrides
                    ).state
            except ValueError as exc:
                row.problems.append(f"cannot decide: {exc}")
        rows.append(row)
    return rows


def read_aws(session: Session, rows: Sequence[ServiceRow], schedules: Sequence[Schedule]) -> None:
    """Fill in each row's service as AWS reports it (read only), its baseline, and what the
    next tick would change. Failures are recorded per row, never raised."""
    from engine.observe import observe
    from engine.plan import plan_service

    by_key = {row.key: row for row in rows}
    try:
        observed = observe(session.clients, schedules)
    except Exception as exc:  # the listing must survive anything AWS does
        for schedule in schedules:
            by_key[schedule.key].aws_error = error_text(exc)
        return
    for key, message in observed.failures.items():
        by_key[key].aws_error = message
    baselines: dict[str, Baseline] | None
    state = StateStore(session.clients, session.settings.state_table)
    try:
        baselines = state.get_baselines(observed.observations)
    except Exception as exc:  # shown as unknown; the decisions still stand
        baselines = None
        print(f"teiji: warning: cannot read the saved baselines: {exc}", file=sys.stderr)
    for schedule in schedules:
        row = by_key[schedule.key]
        observation = observed.observations.get(schedule.key)
        row.observation = observation
        if baselines is None or observation is None:
            continue
        row.baseline = schedule.key in baselines
        if row.decision is None or row.problems:
            continue
        try:
            plan = plan_service(
                row.decision,
                observation,
                baselines.get(schedule.key),
                schedule,
                protected=session.settings.protected,
            )
        except ValueError:
            continue
        if plan.error:
            row.pending = [f"refused: {plan.error}"]
        else:
            row.pending = [a.summary() for a in plan.actions if a.kind != "delete_baseline"]


def render_list(rows: Sequence[ServiceRow], at: datetime) -> str:
    headers = (
        "SERVICE",
        "NOW",
        "NEXT CHANGE",
        "DESIRED/RUN",
        "MIN..MAX",
        "SAVED",
        "NEXT TICK",
        "WHY",
    )
    lines = [table(headers, [_list_cells(row) for row in rows])]
    counts: dict[str, int] = {}
    for row in rows:
        state = row.decision.state if row.decision and not row.problems else "invalid"
        counts[state] = counts.get(state, 0) + 1
    zones = sorted({row.timezone for row in rows})
    when = _local(at, zones[0] if len(zones) == 1 else _default_zone())
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    lines.append(f"{plural(len(rows), 'service')} at {when}: {summary or 'none'}")
    return "\n".join(lines)


def _list_cells(row: ServiceRow) -> list[str]:
    decision = row.decision
    if decision is None or row.problems:
        now = colour("invalid", "failed")
        why = "; ".join(row.problems) or "-"
    else:
        now = colour(decision.state, decision.state)
        why = decision.reason
    next_change = "-"
    if decision is not None and decision.next_change is not None:
        next_change = f"{row.next_state} {_local(decision.next_change, row.timezone)}"
    observed = row.observation
    if observed is None:
        capacity = bounds = "?" if row.aws_error else "-"
    else:
        capacity = f"{observed.desired_count}/{observed.running_count}"
        bounds = observed.bounds_text()
    saved = {None: "?", True: "yes", False: "no"}[row.baseline]
    if row.pending is None:
        pending = "?" if observed is None or row.problems else "-"
    else:
        pending = ", ".join(row.pending) or "nothing"
    return [row.key, now, next_change, capacity, bounds, saved, pending, why]


# --------------------------------------------------------------------------------------------
# start / stop


def created_by(session: Session, given: str | None) -> str | None:
    """``--by``, else the caller's AWS identity (the ARN's last part), else $USER."""
    if given and given.strip():
        return given.strip()
    try:
        arn = session.clients.sts().get_caller_identity().get("Arn")
        name = caller_name(arn)
        if name:
            return name
    except Exception:  # no identity: fall back to the login name
        pass
    return os.environ.get("USER") or os.environ.get("USERNAME") or None


def run_override_command(args: argparse.Namespace) -> int:
    """``teiji start`` and ``teiji stop``."""
    now = utc_now()
    session = open_session(args)
    limit = max_override(args, session.settings)
    schedule = parse_schedule(find_schedule(session, args.service), session.config.source)
    if schedule.mode == "unmanaged":
        raise CliError(
            f"{schedule.key} has mode: unmanaged, so teiji leaves it alone and an override would "
            "do nothing; give it another mode first (teiji get, edit, teiji put)"
        )
    state: State = args.state
    try:
        start = now
        if args.start:
            start = parse_instant(args.start, schedule.timezone, after=now, flag="--from")
        if args.until:
            until = parse_instant(
                args.until, schedule.timezone, after=max(start, now), flag="--until"
            )
        else:
            until = start + parse_length(args.length, flag="--for")
        with aws_errors(f"cannot read the overrides in {session.table}"):
            taken = {
                s.id for s in stored_overrides(query_service_overrides(session, schedule.key), "")
            }
        author = created_by(session, args.by)
        override = build_override(
            schedule,
            state=state,
            start=start,
            until=until,
            reason=args.reason,
            created_by=author,
            now=now,
            limit=limit,
            override_id=new_override_id(taken),
        )
    except OverrideError as exc:
        raise CliError(str(exc)) from exc
    override = write_new_override(session, override, taken)
    sentence = override_sentence(
        override, schedule.key, now, ticking=args.now, timezone=schedule.timezone
    )
    after = _after_lines(session, schedule, override, now, limit)
    payload = {
        "table": session.table,
        "override": override_json(StoredOverride(item_key(override)[1], override), now),
        "notes": after,
    }
    return finish(args, session, schedule.key, payload, [sentence, *after])


def write_new_override(session: Session, override: Override, taken: set[str]) -> Override:
    """Write with a condition that no override has this id yet; pick another id if one does
    (two people writing at the same instant)."""
    for _ in range(_NEW_ID_ATTEMPTS):
        if _put_if_absent(session, override):
            return override
        taken.add(override.id or "")
        override = override.model_copy(update={"id": new_override_id(taken)})
    raise CliError("could not find a free override id; try again", EXIT_FAILED)


def _put_if_absent(session: Session, override: Override) -> bool:
    return _put_override(session, item_from_document(override), "attribute_not_exists(pk)")


def _put_override(session: Session, item: Mapping[str, Any], condition: str) -> bool:
    """Write an override item when ``condition`` holds; False when it does not."""
    with aws_errors(f"cannot write the override to {session.table}"):
        return conditional_write(
            session.clients.dynamodb().put_item,
            TableName=session.table,
            Item=to_attribute_map(stamp_item(item)),
            ConditionExpression=condition,
        )


def override_sentence(
    override: Override, key: str, now: datetime, *, ticking: bool, timezone: str | None = None
) -> str:
    """``<key> will run until Tue 2026-12-01 23:30 JST (override 3fa2c1d0 by suzuki: why).``"""
    verb = _STATE_VERB[override.state]
    span = f"until {_local(override.until, timezone)}"
    if override.start is not None and override.start > now:
        span = f"from {_local(override.start, timezone)} {span}"
    author = f" by {override.created_by}" if override.created_by else ""
    text = f"{key} {verb} {span} (override {override.id}{author}: {override.reason})."
    if override.start is not None and override.start > now:
        return f"{text} The first tick from its start acts on it."
    if ticking:
        return text
    return f"{text} Next tick within 15 minutes, or use --now."


def _after_lines(
    session: Session, schedule: Schedule, override: Override, now: datetime, limit: timedelta
) -> list[str]:
    """What happens when the override ends, and a note when it changes nothing."""
    from engine.decide import Decider

    docs, _ = load_service_documents(session, schedule.key, now=now, limit=limit)
    decider = Decider(docs.calendars)
    overrides = [o for o in docs.overrides_for(schedule.key) if o.id != override.id]
    lines: list[str] = []
    try:
        start = override.start or now
        base = decider.segments(schedule, max(start, now), override.until, overrides)
        if base and all(s.state == override.state for s in base):
            others = sorted({s.override_id or "" for s in base if s.source == "override"})
            mixed = any(s.source != "override" for s in base)
            why = "its schedule"
            if others:
                why = f"override {', '.join(others)}" + (" and its schedule" if mixed else "")
            lines.append(
                f"note: {why} already keep{'s' if why == 'its schedule' or not mixed else ''} "
                f"it {override.state} for all of that time; this override changes nothing "
                "unless that changes"
            )
        after = decider.decide(schedule, override.until, [*overrides, override])
    except ValueError:
        return lines
    lines.append(
        f"At {_local(override.until, schedule.timezone)} its schedule decides again: "
        f"{after.state} ({after.reason})."
    )
    return lines


# --------------------------------------------------------------------------------------------
# override list / cancel / extend


def _all_overrides(session: Session) -> list[StoredOverride]:
    return stored_overrides(_override_items(session), session.config.source)


def _override_items(session: Session) -> list[dict[str, Any]]:
    with aws_errors(f"cannot read the overrides in {session.table}"):
        return session.config.query_kind("override")


def _find_override(session: Session, ref: str) -> StoredOverride:
    try:
        return find_override(ref, _all_overrides(session))
    except OverrideError as exc:
        raise CliError(str(exc)) from exc


def _timezone_of(session: Session, key: str) -> str:
    return _timezones(session).get(key, _default_zone())


def _timezones(session: Session) -> dict[str, str]:
    with aws_errors(f"cannot read the schedules in {session.table}"):
        items = session.config.query_kind("schedule")
    return {str(i.get("sk", "")): str(i.get("timezone") or _default_zone()) for i in items}


def run_override_list(args: argparse.Namespace) -> int:
    now = utc_now()
    session = open_session(args)
    items = _override_items(session)
    stored = stored_overrides(items, session.config.source)
    invalid = [s for s in stored if s.override is None]
    shown = [s for s in stored if s.override is not None]
    if args.service:
        shown = [s for s in shown if closeness(s.key, args.service) is not None]
    if not args.all:
        shown = [s for s in shown if s.override and override_status(s.override, now) != "expired"]
    shown.sort(key=lambda s: (s.override.until if s.override else now, s.sk))
    zones = _timezones(session) if shown else {}
    by_sk = {str(item.get("sk", "")): item for item in items}
    warnings = {
        s.sk: override_warnings(plain(by_sk.get(s.sk, {})), s.override.until, set(zones))
        for s in shown
        if s.override is not None
    }
    if args.json:
        print_json([{**override_json(s, now), "warnings": warnings.get(s.sk, [])} for s in shown])
    else:
        if shown:
            print(
                table(
                    ("ID", "SERVICE", "HOLDS", "FROM", "UNTIL", "STATUS", "BY", "REASON"),
                    [_override_cells(s, now, zones.get(s.key, _default_zone())) for s in shown],
                )
            )
        else:
            which = "overrides" if args.all else "active or upcoming overrides"
            scope = f" for {args.service}" if args.service else ""
            print(f"no {which}{scope}")
    for item in invalid:
        print(
            f"teiji: warning: override {item.sk} is invalid; "
            f"`teiji override cancel {item.sk}` removes it",
            file=sys.stderr,
        )
    for sk, messages in warnings.items():
        for message in messages:
            print(f"teiji: warning: override {sk}: {message}", file=sys.stderr)
    return EXIT_OK


def override_json(stored: StoredOverride, now: datetime) -> dict[str, Any]:
    override = stored.override
    assert override is not None
    status = override_status(override, now)
    return {
        "id": stored.id,
        "ref": stored.sk,
        "service": stored.key,
        "state": override.state,
        "start": override.start.isoformat() if override.start else None,
        "until": override.until.isoformat(),
        "reason": override.reason,
        "created_by": override.created_by,
        "created_at": override.created_at.isoformat() if override.created_at else None,
        "status": status,
        "active": status == "active",
    }


def _override_cells(stored: StoredOverride, now: datetime, timezone: str) -> list[str]:
    override = stored.override
    assert override is not None
    status = override_status(override, now)
    start = _local(override.start, timezone) if override.start else "-"
    return [
        stored.id,
        stored.key,
        colour(override.state, override.state),
        start,
        _local(override.until, timezone),
        colour(status, "bold") if status == "active" else status,
        for_people(override.created_by or "-"),
        for_people(override.reason),
    ]


def run_override_cancel(args: argparse.Namespace) -> int:
    now = utc_now()
    session = open_session(args)
    target = _find_override(session, args.ref)
    with aws_errors(f"cannot delete from {session.table}"):
        session.config.delete("override", target.sk)
    override = target.override
    detail = ""
    if override is not None:
        author = f" by {for_people(override.created_by)}" if override.created_by else ""
        timezone = _timezone_of(session, target.key)
        until = _local(override.until, timezone)
        detail = f" (kept it {override.state} until {until}{author}: {for_people(override.reason)})"
    follows = _now_line(session, target.key, now, ticking=args.now)
    payload = {
        "table": session.table,
        "cancelled": {"id": target.id, "ref": target.sk, "service": target.key},
        "override": override_json(target, now) if override is not None else None,
        "notes": [follows] if follows else [],
    }
    lines = [f"cancelled override {target.id} of {target.key}{detail}.", follows]
    return finish(args, session, target.key, payload, lines)


def _now_line(session: Session, key: str, now: datetime, *, ticking: bool) -> str:
    from engine.cli.documents import explain

    docs, problems = load_service_documents(
        session, key, now=now, limit=session.settings.max_override
    )
    if key not in docs.schedules or problems:
        return f"{key} has no valid schedule: teiji leaves it as it is."
    try:
        decision = explain(docs, key, now).decision
    except CliError:
        return ""
    tail = "" if ticking else " Next tick within 15 minutes, or use --now."
    return f"{key} now follows its schedule: {decision.state} ({decision.reason}).{tail}"


def run_override_extend(args: argparse.Namespace) -> int:
    now = utc_now()
    session = open_session(args)
    limit = max_override(args, session.settings)
    target = _find_override(session, args.ref)
    override = target.override
    if override is None:
        raise CliError(
            f"override {target.sk} is invalid and cannot be extended; cancel it and write a new "
            "one with teiji start or teiji stop"
        )
    timezone = _timezone_of(session, target.key)
    try:
        until = None
        if args.until:
            until = parse_instant(args.until, timezone, after=now, flag="--until")
        length = parse_length(args.length, flag="--for") if args.length else None
        new_until = extended_until(override, until=until, length=length, now=now)
        extended = extend_override(override, until=new_until, now=now, limit=limit)
    except OverrideError as exc:
        raise CliError(str(exc)) from exc
    item = {**item_from_document(extended), "sk": target.sk}
    if not _put_override(session, item, "attribute_exists(pk)"):
        raise CliError(f"override {target.sk} was cancelled meanwhile; nothing written")
    was = _local(override.until, timezone)
    lines = [
        f"override {target.id} now ends at {_local(extended.until, timezone)} (it was {was}).",
        override_sentence(extended, target.key, now, ticking=args.now, timezone=timezone),
    ]
    payload = {
        "table": session.table,
        "override": override_json(StoredOverride(target.sk, extended), now),
        "was_until": override.until.isoformat(),
    }
    return finish(args, session, target.key, payload, lines)
