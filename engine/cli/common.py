"""What every command shares: exit codes, errors, AWS options and the options of commands that
write (``--max``, ``--now``, ``--json``), settings, ``--at`` and dates, document files, tables,
JSON and colour."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TextIO

from engine.aws.clients import Clients
from engine.config import Settings, parse_max_override
from engine.files import Item, UnreadableFileError, read_documents
from engine.localtime import FIRST_DATE, LAST_DATE, in_range, range_text
from schemas.validation import Problem

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A mistake the user can fix: printed as one line, exits ``code`` (2 unless told)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    """--endpoint-url, --region, --profile; AWS_ENDPOINT_URL, AWS_REGION and profiles also work."""
    group = parser.add_argument_group("AWS")
    group.add_argument("--endpoint-url", help="AWS endpoint (default: $AWS_ENDPOINT_URL)")
    group.add_argument("--region", help="AWS region (default: $AWS_REGION or the profile's)")
    group.add_argument("--profile", help="AWS profile (default: $AWS_PROFILE)")


def add_max(parser: argparse.ArgumentParser) -> None:
    """``--max DURATION``: the longest override a command may write."""
    parser.add_argument(
        "--max",
        metavar="DURATION",
        help="longest override allowed (default: $TEIJI_MAX_OVERRIDE or 7d); the tick checks "
        "its own TEIJI_MAX_OVERRIDE too",
    )


def add_now(parser: argparse.ArgumentParser) -> None:
    """``--now``: run the tick for the service at once after the write."""
    parser.add_argument(
        "--now",
        action="store_true",
        help="also run the tick for this service right away and print what it did",
    )


def add_json(parser: argparse.ArgumentParser, text: str) -> None:
    """``--json`` of a command that writes (with ``--now``, the tick's report too)."""
    parser.add_argument(
        "--json", action="store_true", help=f"{text} (with --now, the tick's report too)"
    )


def usage(parser: argparse.ArgumentParser) -> int:
    """A command group called without its action: its help, exit 2."""
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def add_max_override(parser: argparse.ArgumentParser) -> None:
    """``--max-override DURATION`` of the commands that check documents."""
    parser.add_argument(
        "--max-override",
        metavar="DURATION",
        help="longest override allowed, e.g. 12h or 14d (default: $TEIJI_MAX_OVERRIDE or 7d)",
    )


def max_override_option(args: argparse.Namespace) -> timedelta:
    """``--max-override``, else TEIJI_MAX_OVERRIDE."""
    return override_limit(args.max_override, "--max-override", Settings.from_env())


# A person waits for the CLI: an endpoint that takes the connection but never answers fails
# the command after three attempts of CLI_READ_TIMEOUT_S each (about 30 s), not the tick's
# six of 30 s (3 minutes). AWS answers these APIs in well under a second. (botocore's
# ``max_attempts`` counts the retries after the first attempt.)
CLI_READ_TIMEOUT_S = 10.0
CLI_CONNECT_TIMEOUT_S = 5.0
CLI_RETRIES = 2


def make_clients(args: argparse.Namespace, settings: Settings | None = None) -> Clients:
    settings = settings or Settings.from_env()
    try:
        return Clients(
            region=getattr(args, "region", None) or os.environ.get("AWS_REGION"),
            endpoint_url=getattr(args, "endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL"),
            profile=getattr(args, "profile", None),
            role_name=settings.role_name,
            external_id_parameter=settings.access.external_id_parameter,
            max_attempts=CLI_RETRIES,
            read_timeout=CLI_READ_TIMEOUT_S,
            connect_timeout=CLI_CONNECT_TIMEOUT_S,
        )
    except Exception as exc:  # botocore's ProfileNotFound and friends
        raise CliError(f"cannot set up AWS access: {exc}") from exc


def override_limit(text: str | None, flag: str, settings: Settings) -> timedelta:
    """The longest override allowed: ``flag``'s duration when given, else TEIJI_MAX_OVERRIDE.

    (A TEIJI_* value that cannot be used raises SettingsError, which ``main`` reports.)"""
    if not text:
        return settings.max_override
    try:
        return parse_max_override(text)
    except ValueError as exc:
        raise CliError(f"{flag}: {exc}") from exc


def parse_at(text: str | None, *, naive: bool = False) -> datetime:
    """``--at``: ISO 8601 such as ``2026-12-01T22:00+09:00`` or ``2026-12-01T13:00Z``; None
    is now. An offset (or ``Z``) is required unless ``naive``: then a time without one stays
    naive, for the caller to read in the schedule's timezone."""
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        if naive:
            raise CliError(
                f"--at {text!r} is not a date and time; write it like 2026-12-01T22:00, "
                "2026-12-01T22:00+09:00 or 2026-12-01T13:00Z"
            ) from None
        raise CliError(
            f"--at {text!r} is not an ISO 8601 instant; write it like 2026-12-01T22:00:00+09:00 "
            "or 2026-12-01T13:00:00Z"
        ) from None
    if value.utcoffset() is None and not naive:
        raise CliError(
            f"--at {text!r} has no UTC offset; add one (2026-12-01T22:00:00+09:00) or Z for UTC"
        )
    if not in_range(value):
        raise CliError(f"--at {text!r} is out of range; {range_text()}")
    return value


def parse_date(flag: str, text: str) -> date:
    """A ``YYYY-MM-DD`` option such as ``--from``, from ``FIRST_DATE`` to ``LAST_DATE``."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{flag} {text!r} is not a date; write it as YYYY-MM-DD") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise CliError(
            f"{flag} {day} is out of range; give a date from {FIRST_DATE} to {LAST_DATE}"
        )
    return day


def read_files(paths: Sequence[str]) -> tuple[list[Item], list[Problem]]:
    """``read_documents``; a file that cannot be read is a usage error (exit 2)."""
    try:
        return read_documents(paths)
    except UnreadableFileError as exc:
        raise CliError(str(exc)) from exc


def problem_json(problem: Problem) -> dict[str, str]:
    """A problem as JSON: source, document, path and message."""
    return {
        "source": problem.source,
        "document": problem.document,
        "path": problem.path,
        "message": problem.message,
    }


def fail_with_problems(problems: Sequence[Problem], message: str) -> NoReturn:
    """Print each problem on stderr, then stop with ``message`` (exit 2)."""
    for problem in problems:
        print(problem, file=sys.stderr)
    raise CliError(message, EXIT_USAGE)


def write_file(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8); a file that cannot be written fails (exit 1)."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}", EXIT_FAILED) from exc


def use_colour(stream: TextIO = sys.stdout) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


_COLOURS = {"running": "32", "stopped": "33", "failed": "31", "unmanaged": "90", "bold": "1"}


def colour(text: str, name: str, stream: TextIO = sys.stdout) -> str:
    code = _COLOURS.get(name)
    if not code or not use_colour(stream):
        return text
    return f"\033[{code}m{text}\033[0m"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces; colour codes do not count toward width."""
    text_rows = [[str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], _visible_len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for row in text_rows:
        cells = [cell + " " * (widths[i] - _visible_len(cell)) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _visible_len(text: str) -> int:
    length, i = 0, 0
    while i < len(text):
        if text[i] == "\033":
            end = text.find("m", i)
            i = end + 1 if end >= 0 else len(text)
            continue
        length += 1
        i += 1
    return length


def plural(count: int, word: str) -> str:
    """``1 document``, ``2 documents``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def indent(text: str, prefix: str = "  ") -> str:
    """Every line but the empty ones begins with ``prefix``."""
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def print_json(value: Any) -> None:
    """JSON on stdout; instants and dates in ISO 8601 (``2026-12-01T13:00:00+00:00``)."""
    print(json.dumps(value, ensure_ascii=False, indent=2, default=_json_value))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
