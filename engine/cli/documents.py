"""``teiji validate``, ``teiji explain`` and ``teiji schema``: working with documents.

``validate`` and ``schema`` read local files only and never call AWS. ``explain`` reads the
files given with ``--file``, or without it the service's documents in the config table (its
schedule, every calendar and its own overrides, validated as the tick validates them) and the
service's tags in ECS; a service without a document is found among those the tags of the
allowed clusters opt in, as the tick finds them (``engine.cli.fleet``).
``explain_service`` works on any ``DocumentSet``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.access import document_checks
from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    add_aws_options,
    add_max_override,
    colour,
    fail_with_problems,
    max_override_option,
    parse_at,
    plural,
    print_json,
    problem_json,
    read_files,
)
from engine.cli.fleet import Found, TagView, files_see_no_tags, find_service, read_tags
from engine.cli.session import load_service_documents, open_session
from engine.cli.tablecheck import run_table_check
from engine.cli.text import local_text
from engine.config import Settings
from engine.decide import LOOKAHEAD, Decider
from engine.localtime import localize, zone
from engine.model import Decision
from engine.optin import PROTECTED_NOTE
from engine.report import for_people
from schemas.documents import Schedule
from schemas.jsonschema import document_json_schema
from schemas.keys import keys_named
from schemas.validation import DocumentSet, validate_documents


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Adds validate, explain and schema."""
    validate = sub.add_parser(
        "validate",
        help="check schedule, calendar and override files",
        description="Check documents in YAML or JSON files (a directory stands for its .yaml, "
        ".yml and .json files; - reads standard input). Prints one line per problem: "
        "FILE: DOCUMENT: FIELD: what is wrong and what is allowed. Exit 0 when every document "
        "is valid, 1 when some are not, 2 when a file cannot be read. With --table, check the "
        "whole config table instead: every document as the tick reads it, items under an "
        "unknown pk, overrides DynamoDB's TTL will not remove as meant, overrides for services "
        "without a schedule, and ended overrides still stored (notes, not errors).",
    )
    validate.add_argument("files", nargs="*", metavar="FILE")
    validate.add_argument(
        "--table",
        action="store_true",
        help="check every item of the config table (TEIJI_CONFIG_TABLE) instead of files",
    )
    add_max_override(validate)
    validate.add_argument("--json", action="store_true", help="print the result as JSON")
    add_aws_options(validate)
    validate.set_defaults(func=run_validate)

    explain = sub.add_parser(
        "explain",
        help="say whether a service runs at an instant, why, and when that changes",
        description="Decide one service at one instant, with the reason and the next change, "
        "from document files (--file) or, without --file, from the config table. SERVICE "
        "(cluster/service) may be left out when there is one schedule.",
    )
    explain.add_argument("service", nargs="?", metavar="SERVICE")
    explain.add_argument(
        "--file",
        "-f",
        dest="files",
        action="append",
        metavar="FILE",
        help="a document file or directory (repeat for several); without it the documents "
        "come from the config table",
    )
    explain.add_argument(
        "--at",
        metavar="TIME",
        help="ISO 8601 instant, e.g. 2026-12-01T22:00+09:00 or 2026-12-01T13:00Z; without an "
        "offset it is read in the schedule's timezone (default: now)",
    )
    explain.add_argument("--json", action="store_true", help="print one JSON object")
    add_max_override(explain)
    add_aws_options(explain)
    explain.set_defaults(func=run_explain)

    schema = sub.add_parser(
        "schema",
        help="print the JSON Schema of the documents (for editors)",
        description="Print a JSON Schema (draft 2020-12) of schedule, calendar and override "
        "documents. Save it and add '# yaml-language-server: $schema=teiji.schema.json' to a "
        "YAML file to get completion and checks in VS Code.",
    )
    schema.set_defaults(func=run_schema)


# --------------------------------------------------------------------------------------------
# validate


def run_validate(args: argparse.Namespace) -> int:
    if args.table == bool(args.files):
        raise CliError("give FILE... or --table (the config table), not both or neither")
    if args.table:
        return run_table_check(args)
    limit = max_override_option(args)
    items, syntax = read_files(args.files)
    settings = Settings.from_env()
    docs, invalid = validate_documents(
        items,
        max_override=limit,
        default_timezone=settings.default_timezone,
        checks=document_checks(settings.access, None),
    )
    problems = syntax + invalid
    count = len(items)
    if args.json:
        print_json(
            {
                "ok": not problems,
                "documents": count,
                "problems": [problem_json(p) for p in problems],
            }
        )
    else:
        for problem in problems:
            print(problem)
    if problems:
        bad = len({(p.source, p.document) for p in problems})
        print(
            f"teiji: {plural(len(problems), 'problem')} in {bad} of "
            f"{plural(max(count, bad), 'document')}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if not args.json:
        print(f"{plural(count, 'document')} OK ({_summary(docs)})")
    return EXIT_OK


def _summary(docs: DocumentSet) -> str:
    return ", ".join(
        [
            plural(len(docs.schedules), "schedule"),
            plural(len(docs.calendars), "calendar"),
            plural(len(docs.overrides), "override"),
        ]
    )


# --------------------------------------------------------------------------------------------
# explain


@dataclass(frozen=True)
class Explanation:
    """A decision with what a person needs to read it: the schedule and the state after it."""

    schedule: Schedule
    decision: Decision
    next_state: str | None
    # What the service's own tags say, when they were read (not from files).
    tags: TagView | None = None

    def as_json(self) -> dict[str, Any]:
        decision = self.decision
        return {
            "service": self.schedule.key,
            "state": decision.state,
            "source": decision.source,
            "reason": decision.reason,
            "at": decision.at.isoformat(),
            "next_change": decision.next_change.isoformat() if decision.next_change else None,
            "schedule": self.schedule.origin_detail(),
            "protected": self.tags.protected if self.tags else None,
            "ignored_tag": self.tags.ignored_tag if self.tags else None,
        }

    def lines(self) -> list[str]:
        """The sentence, then a ``note:`` per thing its tags say (protected, a tag ignored)."""
        notes = self.tags.notes() if self.tags else []
        return [self.sentence(), *(f"note: {note}" for note in notes)]

    def sentence(self) -> str:
        decision = self.decision
        state = colour(decision.state.upper(), decision.state)
        tz = self.schedule.timezone
        text = (
            f"{self.schedule.key} is {state} at {local_text(decision.at, tz)} ({decision.reason})."
        )
        if self.schedule.profile is not None:
            text += f" Schedule: {self.schedule.origin_text()}."
        if decision.next_change is None:
            return f"{text} No change in the next {LOOKAHEAD.days} days."
        return f"{text} Next change: {self.next_state} at {local_text(decision.next_change, tz)}."


@dataclass(frozen=True)
class Protected:
    """A service tagged ``teiji:protected=true`` that no document names: never decided, since
    teiji never changes it."""

    key: str
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.key,
            "state": "protected",
            "source": "tag",
            "reason": PROTECTED_NOTE,
            "at": self.at.isoformat(),
            "next_change": None,
            "schedule": None,
            "protected": True,
            "ignored_tag": None,
        }

    def lines(self) -> list[str]:
        state = colour("PROTECTED", "unmanaged")
        return [f"{self.key} is {state} ({PROTECTED_NOTE})."]


def run_explain(args: argparse.Namespace) -> int:
    at = parse_at(args.at, naive=True) if args.at else None
    limit = max_override_option(args)
    explanation: Explanation | Protected
    if args.files:
        explanation = _explain_from_files(args, at, limit)
    else:
        explanation = _explain_from_store(args, at, limit)
    if args.json:
        print(json.dumps(explanation.as_json(), ensure_ascii=False))
    else:
        for line in explanation.lines():
            print(line)
    return EXIT_OK


def _explain_from_files(
    args: argparse.Namespace, at: datetime | None, limit: timedelta
) -> Explanation:
    """Explain from document files: every document in them is checked first."""
    items, syntax = read_files(args.files)
    # Override lengths are measured from the instant explained when it is known.
    now = at if at is not None and at.utcoffset() is not None else None
    docs, invalid = validate_documents(
        items,
        now=now,
        max_override=limit,
        default_timezone=Settings.from_env().default_timezone,
    )
    problems = syntax + invalid
    if problems:
        fail_with_problems(
            problems,
            f"{plural(len(problems), 'problem')} in the documents; fix them first "
            "(teiji validate shows the same list)",
        )
    if docs.profiles or docs.invalid_profiles:
        print(f"teiji: note: {files_see_no_tags('seen')}", file=sys.stderr)
    return explain(docs, args.service, at)


def _explain_from_store(
    args: argparse.Namespace, at: datetime | None, limit: timedelta
) -> Explanation | Protected:
    """Explain from the config table: a service with a schedule document is read and checked
    alone, then its tags in ECS; one without is found among the services the tags of the
    allowed clusters opt in, as the tick finds them."""
    session = open_session(args)
    # Override lengths are measured from the instant explained when it is known.
    now = at if at is not None and at.utcoffset() is not None else datetime.now(UTC)
    found = find_service(session, args.service, now=now)
    if found.kind != "document":
        return _explain_tagged(found, at, now, where=session.config.source)
    key = found.key
    docs, problems = load_service_documents(session, key, now=now, limit=limit)
    if problems:
        fail_with_problems(
            problems,
            f"{plural(len(problems), 'problem')} in the documents of {key} in "
            f"{session.table}; the tick does not act on it until they are fixed",
        )
    explanation = explain(docs, key, at, where=session.config.source)
    tags = read_tags(session.clients, explanation.schedule)
    if isinstance(tags, str):
        print(
            f"teiji: warning: cannot read the tags of {key} in ECS ({for_people(tags, 300)}); "
            "whether teiji:protected=true keeps teiji off it is not known",
            file=sys.stderr,
        )
        return explanation
    return replace(explanation, tags=tags)


def _explain_tagged(
    found: Found, at: datetime | None, now: datetime, *, where: str
) -> Explanation | Protected:
    """A service its ``teiji:profile`` tag opts in (or a protected one): decided with the
    profile, as the tick decides it; a tag naming a missing or invalid profile is one line
    naming both (exit 2)."""
    if found.kind == "protected":
        return Protected(found.key, at if at is not None and at.utcoffset() is not None else now)
    problems = found.problems()
    if problems:
        why = "; ".join(f"{p.path}: {p.message}" for p in problems)
        raise CliError(for_people(f"cannot explain {found.key}: {why}"))
    assert found.fleet is not None
    explanation = explain(found.fleet.documents, found.key, at, where=where)
    return replace(explanation, tags=TagView())


def explain_service(docs: DocumentSet, service: str | None, at: datetime | None) -> dict[str, Any]:
    """The JSON form of ``explain``: service, state, source, reason, at, next_change."""
    return explain(docs, service, at).as_json()


def explain(
    docs: DocumentSet, service: str | None, at: datetime | None, *, where: str = "these files"
) -> Explanation:
    """Decide ``service`` (None when ``docs`` holds one schedule) at ``at`` (None: now).

    A naive ``at`` is read in the schedule's timezone. Raises CliError (exit 2) when the
    service cannot be chosen; ``where`` names the documents' origin in that message.
    """
    schedule = select_schedule(docs, service, where=where)
    instant = _instant(at, schedule)
    decider = Decider(docs.calendars)
    overrides = docs.overrides_for(schedule.key)
    try:
        decision = decider.decide(schedule, instant, overrides)
        next_state = None
        if decision.next_change is not None:
            next_state = decider.decide(schedule, decision.next_change, overrides).state
    except ValueError as exc:  # e.g. a calendar these documents do not define
        raise CliError(str(exc)) from exc
    return Explanation(schedule, decision, next_state)


def select_schedule(
    docs: DocumentSet, service: str | None, *, where: str = "these files"
) -> Schedule:
    """The schedule for ``service``: a key, ``cluster/service``, or a service name if unique."""
    names = sorted(docs.schedules)
    if not names:
        raise CliError(f"no schedule documents in {where}")
    if service is None:
        if len(names) == 1:
            return docs.schedules[names[0]]
        raise CliError(f"{where} hold {len(names)} schedules; name one: {', '.join(names)}")
    found = keys_named(service, names)
    if len(found) > 1:
        raise CliError(f"{service!r} names {len(found)} schedules: {', '.join(found)}")
    if not found:
        raise CliError(f"no schedule for {service!r}; schedules here: {', '.join(names)}")
    return docs.schedules[found[0]]


def _instant(at: datetime | None, schedule: Schedule) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.utcoffset() is None:
        return localize(zone(schedule.timezone), at.replace(tzinfo=None))
    return at


# --------------------------------------------------------------------------------------------
# schema


def run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(document_json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK
