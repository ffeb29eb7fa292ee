"""What every command shares: exit codes, errors, AWS options, tables, JSON and colour."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from engine.aws.clients import Clients
from engine.config import Settings

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


def make_clients(args: argparse.Namespace, settings: Settings | None = None) -> Clients:
    settings = settings or Settings.from_env()
    try:
        return Clients(
            region=getattr(args, "region", None) or os.environ.get("AWS_REGION"),
            endpoint_url=getattr(args, "endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL"),
            profile=getattr(args, "profile", None),
            role_name=settings.role_name,
            external_id=settings.external_id,
        )
    except Exception as exc:  # botocore's ProfileNotFound and friends
        raise CliError(f"cannot set up AWS access: {exc}") from exc


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


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))
