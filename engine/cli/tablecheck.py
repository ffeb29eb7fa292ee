"""``teiji validate --table``: the whole config table checked, as the tick reads it and beyond.

Every item is read (a Scan, so items under a mistyped ``pk`` are seen too). The readable
documents are validated exactly as the tick validates them; ``engine.tablecheck`` adds what
no validation sees. With ``TEIJI_ALLOWED_CLUSTERS`` set, the services their ``teiji:profile``
tag opts in are found as the tick finds them (``engine.cli.fleet``): a tag naming a missing or
invalid profile is an error, an allowed cluster that cannot be listed a warning, a protected
service a note, and an override for a tagged service is not an orphan. Exit 0 when nothing is
wrong (notes do not count), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from engine.cli import session as clock  # the module: tests pin ``session.utc_now``
from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    max_override_option,
    plural,
    print_json,
    problem_json,
)
from engine.cli.fleet import protected_lines, tagged_fleet
from engine.cli.session import aws_errors, open_session
from engine.store import KINDS, LoadedConfig, document_from_item, plain
from engine.tablecheck import Finding, OverrideItem, check_table
from engine.wake_check import wake_problems
from schemas.documents import Override
from schemas.validation import Problem, parse_document


def run_table_check(args: argparse.Namespace) -> int:
    session = open_session(args)
    now = clock.utc_now()
    with aws_errors(f"cannot read {session.table}"):
        items = session.config.scan_items()
    loaded = session.config.validate_items(
        [i for i in items if str(i.get("pk", "")) in KINDS],
        now=now,
        max_override=max_override_option(args),
        default_timezone=session.settings.default_timezone,
    )
    with aws_errors("cannot read the services that ask for wake on request"):
        loaded.problems.extend(
            wake_problems(
                session.clients,
                loaded.documents.schedules.values(),
                session.config.source,
                session.clients.region,
            )
        )
    documented = len(loaded.documents.schedules)
    fleet = tagged_fleet(session.clients, session.settings, loaded)
    tagged = len(fleet.documents.schedules) - documented
    plain_items = [dict(plain(item)) for item in items]
    scheduled = {str(i.get("sk", "")) for i in plain_items if i.get("pk") == "schedule"}
    findings = check_table(
        plain_items,
        [_override_item(i) for i in plain_items if i.get("pk") == "override"],
        scheduled=scheduled | set(fleet.services()),
        now=now,
    )
    wrong = len(loaded.problems) + sum(f.severity != "note" for f in findings)
    wrong += len(fleet.warnings)
    if args.json:
        print_json(
            {
                "table": session.table,
                "items": len(items),
                "ok": wrong == 0,
                "problems": [problem_json(p) for p in loaded.problems],
                "findings": [f.as_json() for f in findings],
                "tagged": sorted(k for k in fleet.services() if fleet.kind_of(k) == "tag"),
                "protected": fleet.protected,
                "warnings": fleet.warnings,
            }
        )
    else:
        _print(loaded.problems, findings)
        for warning in fleet.warnings:
            print(f"warning: {warning}")
        for line in protected_lines(fleet.protected):
            print(f"note: {line}")
    return _summary(
        session.table, len(items), findings, wrong, loaded, quiet=args.json, tagged=tagged
    )


def _override_item(item: Mapping[str, Any]) -> OverrideItem:
    try:
        parsed = parse_document(document_from_item(item), source="", index=1)
    except ValueError:
        parsed = []
    return OverrideItem(item, parsed.until if isinstance(parsed, Override) else None)


def _print(problems: Sequence[Problem], findings: Sequence[Finding]) -> None:
    for problem in problems:
        print(f"error: {problem}")
    for finding in findings:
        print(finding)


def _summary(
    table: str,
    count: int,
    findings: Sequence[Finding],
    wrong: int,
    loaded: LoadedConfig,
    *,
    quiet: bool,
    tagged: int = 0,
) -> int:
    if wrong:
        warnings = sum(f.severity == "warning" for f in findings)
        errors = wrong - warnings
        print(
            f"teiji: {plural(errors, 'error')} and {plural(warnings, 'warning')} in "
            f"{plural(count, 'item')} of {table}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if quiet:
        return EXIT_OK
    docs = loaded.documents
    notes = sum(f.severity == "note" for f in findings)
    tail = f"; {plural(notes, 'note')}" if notes else ""
    by_tag = f", {plural(tagged, 'service')} opted in by tag" if tagged else ""
    print(
        f"{plural(count, 'item')} in {table} OK "
        f"({plural(len(docs.schedules) - tagged, 'schedule')}{by_tag}, "
        f"{plural(len(docs.calendars), 'calendar')}, "
        f"{plural(len(docs.overrides), 'override')} in force or to come){tail}"
    )
    return EXIT_OK
