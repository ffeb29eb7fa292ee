"""``teiji put``, ``teiji get`` and ``teiji delete``: documents in the config table.

- ``teiji put FILE...`` validates every document (holiday names may name calendars already
  stored) and writes them all, or nothing when any is invalid or was edited outside teiji.
- ``teiji get SERVICE`` / ``teiji get --calendar NAME`` print a stored document as YAML that
  ``teiji put`` takes back.
- ``teiji delete SERVICE`` / ``teiji delete --calendar NAME``.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.access import document_checks
from engine.aws.errors import AWS_ERRORS
from engine.cli import session as clock  # the module: tests pin ``session.utc_now``
from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    add_aws_options,
    add_json,
    add_max,
    fail_with_problems,
    plural,
    print_json,
    read_files,
)
from engine.cli.fleet import find_document, schedule_zones
from engine.cli.put_changes import changes_text, refusal_text
from engine.cli.session import (
    FEW,
    Session,
    StoredDocument,
    aws_errors,
    default_zone,
    find_schedule,
    finish,
    max_override,
    open_session,
    profile_names,
    query_service_overrides,
    stored_profiles_named,
    timezones,
)
from engine.cli.text import local_text, ordered_document, yaml_text
from engine.config import Settings
from engine.putdiff import plan_put
from engine.store import (
    CheckedWrite,
    ConfigDocument,
    StateStore,
    WriteConflictError,
    item_from_document,
    item_key,
    plain,
    stamp_item,
)
from engine.wake_check import wake_problems
from schemas.records import Baseline
from schemas.validation import DocumentSet, Problem, parse_document, validate_documents


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Adds put, get and delete."""
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
    add_max(put)
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
    add_json(delete, "print what was deleted as JSON")
    add_aws_options(delete)
    delete.set_defaults(func=run_delete)


# put ------------------------------------------------------------------------------------------
def run_put(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    limit = max_override(args, settings)
    items, syntax = read_files(args.files)
    now = clock.utc_now()
    # First without AWS: a mistake in the files is shown even where AWS cannot be reached.
    # Holiday names that are not countries may name stored calendars; the second pass knows.
    _, offline = validate_documents(
        items,
        now=now,
        max_override=limit,
        default_timezone=settings.default_timezone,
        check_calendars=False,
        check_profiles=False,
    )
    _refuse_problems(syntax + offline)
    session = open_session(args)
    with aws_errors(f"cannot read the calendars in {session.table}"):
        stored_calendars = [str(i.get("sk", "")) for i in session.config.query_kind("calendar")]
    with aws_errors(f"cannot read the profiles in {session.table}"):
        stored_profiles = stored_profiles_named(items, session)
    docs, invalid = validate_documents(
        [*items, *stored_profiles],
        now=now,
        max_override=limit,
        known_calendars=stored_calendars,
        default_timezone=session.settings.default_timezone,
        checks=document_checks(session.settings.access, session.clients.region, allow_list=False),
    )
    _refuse_problems(invalid)
    with aws_errors("cannot read the services that ask for wake on request"):
        _refuse_problems(
            wake_problems(
                session.clients, docs.schedules.values(), "teiji put", session.clients.region
            )
        )
    # Calendars first, overrides last: an interrupted write never leaves a schedule naming a
    # calendar that is not there yet.
    written_profiles = profile_names(items)
    documents: list[ConfigDocument] = [
        *docs.calendars.values(),
        *(p for name, p in docs.profiles.items() if name in written_profiles),
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
    for key, timezone in schedule_zones(session, timezones(session), now=now).items():
        zones.setdefault(key, timezone)
    warnings: list[str] = []
    for override in docs.overrides:
        name = item_key(override)[1]
        if override.until <= now:
            warnings.append(
                f"override {name} ended at "
                f"{local_text(override.until, zones.get(override.key, default_zone()))}: "
                "it does nothing"
            )
        if override.key not in zones:
            warnings.append(
                f"override {name}: {override.key} has no schedule, so the override does nothing "
                "until one is added"
            )
    return warnings


# get ------------------------------------------------------------------------------------------
def run_get(args: argparse.Namespace) -> int:
    session = open_session(args)
    if (args.service is None) == (args.calendar is None):
        raise CliError("give either SERVICE or --calendar NAME")
    if args.calendar:
        stored = find_calendar(session, args.calendar)
        label = f"calendar {stored.sk}"
    else:
        key = find_document(session, args.service, now=clock.utc_now(), verb="print")
        stored = find_schedule(session, key)
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


# delete ---------------------------------------------------------------------------------------
def run_delete(args: argparse.Namespace) -> int:
    session = open_session(args)
    if (args.service is None) == (args.calendar is None):
        raise CliError("give either SERVICE or --calendar NAME")
    if args.calendar:
        return _delete_calendar(session, args.calendar, as_json=args.json)
    key = find_document(session, args.service, now=clock.utc_now(), verb="delete")
    stored = find_schedule(session, key)
    timezone = str(stored.raw.get("timezone") or default_zone())
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
            f"{local_text(baseline.saved_at, timezone)}) is kept: add a schedule again (for "
            "example with mode: always_on) and the next tick restores it."
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
    except AWS_ERRORS as exc:
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
        # A profile's holidays are its users' too, those opted in by their tag among them.
        profiles = session.config.query_kind("profile")
    named = sorted(str(s.get("sk", "")) for s in schedules if name in _holiday_names(s))
    listing = sorted(f"profile {p.get('sk', '')}" for p in profiles if name in _holiday_names(p))
    users = [*named, *listing]
    if users:
        shown = ", ".join(users[:FEW]) + (" ..." if len(users) > FEW else "")
        counts = [(len(named), "schedule"), (len(listing), "profile")]
        what = " and ".join(plural(n, word) for n, word in counts if n)
        raise CliError(
            f"calendar {stored.sk} is listed in the holidays of {what} "
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
