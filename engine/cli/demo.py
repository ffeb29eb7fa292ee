"""``teiji demo``: a simulated week of real ticks on an in-memory AWS (what ``make demo`` runs).

The work is in ``engine.demo``; this module prints it: the world as the team left it, each
change as the tick makes it, then the week's savings table and a one-line summary.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    colour,
    indent,
    parse_date,
    plural,
    table,
    write_file,
)
from engine.cli.text import local_text
from engine.demo import (
    CLUSTER,
    DEFAULT_WEEK_OF,
    DEMO_ZONE,
    MAX_DAYS,
    SAMPLES,
    DemoError,
    DemoEvent,
    DemoResult,
    TickProgress,
    run_demo,
)
from engine.localtime import to_local, zone

_TIME_WIDTH = len("Mon 11-23 00:00")
_ACTION_WIDTH = len("stays stopped")
_CAPACITY_WIDTH = len("desired 2->0, Min/Max 1..4->0..0, scaling suspended")
_ACTION_COLOUR = {
    "start": "running",
    "wake": "running",
    "stop": "stopped",
    "failed": "failed",
    "kept": "unmanaged",
}


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Adds ``demo``."""
    parser = sub.add_parser(
        "demo",
        help="run a week of real ticks on an emulated AWS account (no account needed)",
        description="Create an emulated AWS account in memory (moto): the sample services in "
        "cluster example-cluster with realistic capacities, teiji's tables, the sample "
        "documents and two overrides for late work. Then run the real tick every 15 "
        "simulated minutes through a week holding a Japanese and a US holiday, print every "
        "change as it happens, and end with the week's savings. Nothing leaves the machine.",
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        "--week-of",
        metavar="DATE",
        default=DEFAULT_WEEK_OF.isoformat(),
        help=f"a date in the week to show, YYYY-MM-DD (default {DEFAULT_WEEK_OF}: Labor "
        "Thanksgiving Day in Japan on Monday, Thanksgiving in the US on Thursday)",
    )
    when.add_argument(
        "--from",
        dest="first_day",
        metavar="DATE",
        help="start on this day instead of a Monday (the overrides stay on Wednesday and "
        "Thursday of its week)",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=7,
        metavar="N",
        help=f"how many days to run (1 to {MAX_DAYS}, default 7)",
    )
    parser.add_argument("--html", metavar="FILE", help="also write the week's timeline page")
    parser.add_argument(
        "--quiet", action="store_true", help="print only the savings table and the summary"
    )
    parser.add_argument(
        "--documents",
        metavar="DIR",
        default=str(SAMPLES),
        help=f"the documents to put (default: the samples installed with teiji, {SAMPLES})",
    )
    parser.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    week_of = parse_date("--week-of", args.week_of)
    first_day = parse_date("--from", args.first_day) if args.first_day else None
    printer = _Printer(quiet=args.quiet, live=sys.stderr.isatty())
    try:
        result = run_demo(
            week_of=week_of,
            days=args.days,
            first_day=first_day,
            documents=Path(args.documents),
            on_start=printer.start,
            on_event=printer.event,
            on_tick=printer.progress,
        )
    except DemoError as exc:
        raise CliError(str(exc)) from exc
    finally:
        printer.clear_progress()
    printer.finish(result)
    if args.html:
        _write_html(args.html, result)
    return EXIT_FAILED if result.failures else EXIT_OK


def short_name(key: str) -> str:
    return key.removeprefix(f"{CLUSTER}/")


class _Printer:
    """Prints as the demo goes: the set-up, then one aligned line per event.

    Progress goes to stderr: on a terminal one line that each tick rewrites (and every event
    line clears first), elsewhere (a pipe, CI) one line per simulated day.
    """

    def __init__(self, *, quiet: bool, live: bool = False) -> None:
        self.quiet = quiet
        self.live = live
        self.showing_progress = False
        self.service_width = len("SERVICE")

    def progress(self, step: TickProgress) -> None:
        local = to_local(step.at, zone(DEMO_ZONE))
        text = (
            f"tick {step.done}/{step.total}: {local:%a %m-%d %H:%M} JST done, {step.elapsed:.0f} s"
        )
        if self.live:
            sys.stderr.write(f"\r\x1b[K{text}")
            sys.stderr.flush()
            self.showing_progress = True
        elif not self.quiet and (step.done % 96 == 0 or step.done == step.total):
            print(text, file=sys.stderr, flush=True)

    def clear_progress(self) -> None:
        if self.showing_progress:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.showing_progress = False

    def start(self, result: DemoResult) -> None:
        names = [short_name(schedule.key) for schedule, _ in result.services]
        self.service_width = max([self.service_width, *map(len, names)])
        if self.quiet:
            return
        print(
            colour("teiji demo", "bold") + ": real ticks on an emulated AWS account (moto, in "
            "memory: no AWS account, no network)"
        )
        print()
        print(f"Cluster {CLUSTER}, as the team left it before teiji:")
        rows = [
            (
                short_name(schedule.key),
                spec.region,
                spec.desired,
                f"{spec.bounds[0]}..{spec.bounds[1]}" if spec.bounds else "-",
                spec.describe_scaling(),
            )
            for schedule, spec in result.services
        ]
        print(indent(table(("SERVICE", "REGION", "DESIRED", "MIN..MAX", "SCALING"), rows)))
        print()
        print(
            f"Config table: {plural(len(result.services), 'schedule')} and "
            f"{plural(result.calendars, 'calendar')} from {result.documents.name}/, and these "
            "overrides, as `teiji start` writes them:"
        )
        for override in result.overrides:
            start = override.start or override.until
            until = to_local(override.until, zone(DEMO_ZONE))
            print(
                f"  {override.id}  {short_name(override.key)} kept {override.state} "
                f"{local_text(start, DEMO_ZONE, short=True)}-{until:%H:%M} JST, "
                f"by {override.created_by}: {override.reason}"
            )
        holidays = sorted(
            {(day, name) for sim in result.simulations for day, name in sim.holidays.items()}
        )
        if holidays:
            listed = ", ".join(f"{day:%a %m-%d} {name}" for day, name in holidays)
            print(f"Holidays in the range: {listed}")
        days = (result.last_day - result.first_day).days + 1
        print(
            f"Ticks: every 15 minutes from {result.first_day:%a %Y-%m-%d} 00:00 to "
            f"{result.last_day:%a %Y-%m-%d} 23:45 JST ({days * 96} ticks)"
        )
        print()
        print(self._line("TIME (JST)", "SERVICE", "ACTION".ljust(_ACTION_WIDTH), "CAPACITY", "WHY"))

    def _line(self, when: str, service: str, action: str, capacity: str, why: str) -> str:
        cells = [
            when.ljust(_TIME_WIDTH),
            service.ljust(self.service_width),
            action,
            capacity.ljust(_CAPACITY_WIDTH),
            why,
        ]
        return "  ".join(cells).rstrip()

    def event(self, event: DemoEvent) -> None:
        if self.quiet:
            return
        self.clear_progress()
        action = event.kind if event.kind != "kept" else f"stays {event.state}"
        if event.kind == "failed":
            action = "FAILED"
        why = event.why
        if event.timezone != DEMO_ZONE:
            local = to_local(event.at, zone(event.timezone))
            why = f"{why} ({local:%a %H:%M} {local.tzname()} there)"
        print(
            self._line(
                local_text(event.at, DEMO_ZONE, short=True),
                short_name(event.key),
                colour(action.ljust(_ACTION_WIDTH), _ACTION_COLOUR.get(event.kind, "")),
                event.capacity,
                why,
            ),
            flush=True,
        )

    def finish(self, result: DemoResult) -> None:
        from engine.cli.simulate import describe_range, render_table

        if not self.quiet:
            print()
            print("The same range as the tick acts on it (teiji simulate):")
        print(render_table(result.simulations))
        schedules = [schedule for schedule, _ in result.services]
        print(describe_range(result.first_day, result.last_day, schedules))
        for line in sorted({s.prices.describe() for s in result.simulations}):
            print(f"prices: {line}")
        failures = f"{result.failures} failures"
        if result.failures:
            failures = colour(failures, "failed")
        print(
            f"{result.ticks} ticks run, {result.changes} changes made "
            f"({result.writes} AWS writes), {failures}; {result.seconds:.1f} s, no AWS account "
            "used."
        )


def _write_html(path: str, result: DemoResult) -> None:
    from engine.cli.simulate import page_label
    from engine.timeline_html import render_page

    schedules = [schedule for schedule, _ in result.services]
    page = render_page(
        result.simulations,
        title="teiji demo: a week of schedules",
        range_label=page_label(result.first_day, result.last_day, schedules),
        price_note="; ".join(sorted({s.prices.describe() for s in result.simulations})),
        generated=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )
    write_file(path, page)
    print(f"wrote {path}", file=sys.stderr)
