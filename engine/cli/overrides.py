"""``teiji start|stop SERVICE (--for D | --until T) --reason R`` writes an override;
``teiji override list|cancel|extend`` manage them. ``--now`` runs the tick for that one
service at once.

The pure rules for overrides live in ``engine.overrides``; this module reads and writes
overrides through the config store and talks to people.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from engine.cli import session as clock  # the module: tests pin ``session.utc_now``
from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    add_aws_options,
    add_json,
    add_max,
    add_now,
    print_json,
    table,
    usage,
)
from engine.cli.fleet import find_service, refuse_tagged, schedule_zones
from engine.cli.override_text import (
    after_lines,
    now_line,
    override_cells,
    override_json,
    override_sentence,
)
from engine.cli.session import (
    Session,
    aws_errors,
    default_zone,
    find_schedule,
    finish,
    max_override,
    open_session,
    parse_schedule,
    query_service_overrides,
    refused_by_tick,
    stored_overrides,
    timezones,
)
from engine.cli.text import local_text
from engine.overrides import (
    OverrideError,
    StoredOverride,
    after_length,
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
from engine.report import for_people
from engine.store import item_from_document, item_key, plain
from engine.tablecheck import override_warnings
from schemas.documents import Override, State
from schemas.keys import closeness

_NEW_ID_ATTEMPTS = 5


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Adds start, stop and override (list, cancel, extend)."""
    _add_override_command(sub, "start", "running")
    _add_override_command(sub, "stop", "stopped")

    override = sub.add_parser(
        "override",
        help="list, cancel or extend overrides",
        description="Overrides keep a service running (teiji start) or stopped (teiji stop) "
        "until a time. IDs are 8 characters; write SERVICE#ID when an id is not unique.",
    )
    actions = override.add_subparsers(dest="override_action", metavar="ACTION")
    override.set_defaults(func=lambda args: usage(override))

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
    add_now(cancel)
    add_json(cancel, "print the cancelled override as JSON")
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
    add_max(extend)
    add_now(extend)
    add_json(extend, "print the extended override as JSON")
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
    add_max(parser)
    add_now(parser)
    add_json(parser, "print the override written as JSON")
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


# start / stop ---------------------------------------------------------------------------------
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
    now = clock.utc_now()
    session = open_session(args)
    limit = max_override(args, session.settings)
    # A service its teiji:profile tag opts in takes overrides as a documented one does.
    found = find_service(session, args.service, now=now)
    if found.kind == "document":
        schedule = parse_schedule(find_schedule(session, found.key), session.config.source)
    else:
        schedule = refuse_tagged(found, f"teiji {'start' if args.state == 'running' else 'stop'}")
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
            until = after_length(start, parse_length(args.length, flag="--for"), flag="--for")
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
    after = after_lines(session, schedule, override, now, limit)
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
        with aws_errors(f"cannot write the override to {session.table}"):
            written = session.config.put_override_item(
                item_from_document(override), replacing=False
            )
        if written:
            return override
        taken.add(override.id or "")
        override = override.model_copy(update={"id": new_override_id(taken)})
    raise CliError("could not find a free override id; try again", EXIT_FAILED)


# override list / cancel / extend --------------------------------------------------------------
def _override_items(session: Session) -> list[dict[str, Any]]:
    with aws_errors(f"cannot read the overrides in {session.table}"):
        return session.config.query_kind("override")


def _find_override(session: Session, ref: str) -> StoredOverride:
    try:
        return find_override(ref, stored_overrides(_override_items(session), session.config.source))
    except OverrideError as exc:
        raise CliError(str(exc)) from exc


def _zones(session: Session) -> dict[str, str]:
    """Every managed service's zone: stored schedules, and services their tag opts in."""
    return schedule_zones(session, timezones(session), now=clock.utc_now())


def _timezone_of(session: Session, key: str) -> str:
    return _zones(session).get(key, default_zone())


def run_override_list(args: argparse.Namespace) -> int:
    now = clock.utc_now()
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
    zones = _zones(session) if shown else {}
    by_sk = {str(item.get("sk", "")): item for item in items}
    refused = refused_by_tick(session, items, now)
    warnings = {
        s.sk: [
            *refused.get(s.sk, []),
            *override_warnings(plain(by_sk.get(s.sk, {})), s.override.until, set(zones)),
        ]
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
                    [override_cells(s, now, zones.get(s.key, default_zone())) for s in shown],
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


def run_override_cancel(args: argparse.Namespace) -> int:
    now = clock.utc_now()
    session = open_session(args)
    target = _find_override(session, args.ref)
    with aws_errors(f"cannot delete from {session.table}"):
        session.config.delete("override", target.sk)
    override = target.override
    detail = ""
    if override is not None:
        author = f" by {for_people(override.created_by)}" if override.created_by else ""
        until = local_text(override.until, _timezone_of(session, target.key))
        detail = f" (kept it {override.state} until {until}{author}: {for_people(override.reason)})"
    follows = now_line(session, target.key, now, ticking=args.now)
    payload = {
        "table": session.table,
        "cancelled": {"id": target.id, "ref": target.sk, "service": target.key},
        "override": override_json(target, now) if override is not None else None,
        "notes": [follows] if follows else [],
    }
    lines = [f"cancelled override {target.id} of {target.key}{detail}.", follows]
    return finish(args, session, target.key, payload, lines)


def run_override_extend(args: argparse.Namespace) -> int:
    now = clock.utc_now()
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
    with aws_errors(f"cannot write the override to {session.table}"):
        written = session.config.put_override_item(item, replacing=True)
    if not written:
        raise CliError(f"override {target.sk} was cancelled meanwhile; nothing written")
    was = local_text(override.until, timezone)
    lines = [
        f"override {target.id} now ends at {local_text(extended.until, timezone)} (it was {was}).",
        override_sentence(extended, target.key, now, ticking=args.now, timezone=timezone),
    ]
    payload = {
        "table": session.table,
        "override": override_json(StoredOverride(target.sk, extended), now),
        "was_until": override.until.isoformat(),
    }
    return finish(args, session, target.key, payload, lines)
