"""Reading document files: YAML or JSON holding one document, a list, or several documents.

YAML is read with the YAML 1.2 core rules for plain scalars, not PyYAML's YAML 1.1 ones: an
unquoted ``05:00`` stays the text "05:00" (YAML 1.1 reads it as 300, base 60), ``NO``, ``on``,
``off`` and ``yes`` stay text (``holidays: [NO]`` is Norway), and ``012`` is twelve. Only
``true`` and ``false`` are booleans. Dates and timestamps are read as YAML reads them; the
models accept both those and text. A key written twice in one mapping is an error, not a
silent "last one wins".
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from schemas.documents import DEFAULT_TIMEZONE
from schemas.validation import DocumentSet, Problem, validate_documents

Item = tuple[str, int, object]  # (source, 1-based index of the document in it, raw document)

DOCUMENT_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
MAX_FILE_BYTES = 5 * 1024 * 1024
# Values in one document, counting each use of a YAML alias again: a document of a few lines
# can otherwise stand for billions of values ("billion laughs").
MAX_VALUES = 50_000


class UnreadableFileError(Exception):
    """A path that cannot be read at all: missing, a directory without documents, no access."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path
        self.reason = reason


class DocumentSyntaxError(Exception):
    """Files that are not valid YAML or JSON; ``problems`` say where (line and column)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


# --------------------------------------------------------------------------------------------
# The YAML loader


_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"

# YAML 1.2 core schema for the plain scalars YAML 1.1 gets wrong.
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


class DocumentLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and numbers and no duplicate keys."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                continue
            marker = (key_node.tag, key_node.value)
            if marker in seen:
                raise ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key_node.value!r} twice",
                    key_node.start_mark,
                )
            seen.add(marker)
        return super().construct_mapping(node, deep=deep)


def _construct_bool(loader: DocumentLoader, node: Node) -> bool:
    value = loader.construct_scalar(node)  # type: ignore[arg-type]
    return str(value).lower() == "true"


def _construct_int(loader: DocumentLoader, node: Node) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # "012" is twelve, as in YAML 1.2 and JSON


def _construct_timestamp(loader: DocumentLoader, node: Node) -> object:
    # "2026-02-30" looks like a date but is none: keep the text, so validation can say which
    # field holds it and what a date looks like.
    try:
        return loader.construct_yaml_timestamp(node)  # type: ignore[arg-type]
    except ValueError:
        return loader.construct_scalar(node)  # type: ignore[arg-type]


DocumentLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
DocumentLoader.add_implicit_resolver(_BOOL, _BOOL_RE, list("tTfF"))
DocumentLoader.add_implicit_resolver(_INT, _INT_RE, list("-+0123456789"))
DocumentLoader.add_implicit_resolver(_FLOAT, _FLOAT_RE, list("-+0123456789."))
DocumentLoader.add_constructor(_BOOL, _construct_bool)
DocumentLoader.add_constructor(_INT, _construct_int)
DocumentLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


# --------------------------------------------------------------------------------------------
# Text to documents


def parse_text(
    text: str, *, source: str, json_format: bool = False
) -> tuple[list[Item], list[Problem]]:
    """The documents in ``text`` and the syntax problems that stopped reading it."""
    items: list[Item] = []
    problems: list[Problem] = []
    try:
        if json_format:
            _extend(items, source, json.loads(text, object_pairs_hook=_json_object))
        else:
            for document in yaml.load_all(text, Loader=DocumentLoader):
                _extend(items, source, document)
    except yaml.MarkedYAMLError as exc:
        problems.append(_problem(source, len(items) + 1, _yaml_message(exc)))
    except json.JSONDecodeError as exc:
        message = f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        problems.append(_problem(source, len(items) + 1, message))
    except yaml.YAMLError as exc:
        problems.append(_problem(source, len(items) + 1, f"YAML error: {exc}"))
    except RecursionError:
        problems.append(_problem(source, len(items) + 1, "nested too deeply to read"))
    except ValueError as exc:  # duplicate JSON keys, numbers too long to convert
        problems.append(_problem(source, len(items) + 1, str(exc)))
    if not items and not problems:
        problems.append(
            _problem(
                source,
                1,
                "the file holds no documents (expected documents with kind: schedule, "
                "calendar or override)",
            )
        )
    kept: list[Item] = []
    for item in items:
        if _exceeds(item[2], MAX_VALUES):
            message = (
                f"more than {MAX_VALUES} values (counting each use of a YAML alias); "
                "split it into smaller documents"
            )
            problems.append(_problem(source, item[1], message))
        else:
            kept.append(item)
    return kept, problems


def _extend(items: list[Item], source: str, document: object) -> None:
    # A document may be one document, a list of them, or empty (a stray '---').
    if document is None:
        return
    for raw in document if isinstance(document, list) else [document]:
        items.append((source, len(items) + 1, raw))


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"JSON error: the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    what = ", ".join(part for part in (exc.context, exc.problem) if part)
    return f"YAML syntax error{where}: {what}"


def _problem(source: str, index: int, message: str) -> Problem:
    return Problem(source, f"document {index}", "-", message)


def _exceeds(value: object, limit: int) -> bool:
    count = 0
    stack = [value]
    while stack:
        current = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return False


# --------------------------------------------------------------------------------------------
# Files


def expand_paths(paths: Sequence[str]) -> list[str]:
    """Files as given; a directory stands for its .yaml, .yml and .json files, sorted."""
    expanded: list[str] = []
    for path in paths:
        if path == STDIN:
            expanded.append(path)
            continue
        candidate = Path(path)
        if candidate.is_dir():
            found = sorted(
                str(child)
                for child in candidate.iterdir()
                if child.suffix.lower() in DOCUMENT_SUFFIXES and child.is_file()
            )
            if not found:
                raise UnreadableFileError(path, "a directory without .yaml, .yml or .json files")
            expanded.extend(found)
        else:
            expanded.append(path)
    return expanded


def _read_text(path: str) -> tuple[str | None, Problem | None]:
    if path == STDIN:
        return sys.stdin.read(), None
    try:
        with Path(path).open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UnreadableFileError(path, "no such file") from None
    except IsADirectoryError:
        raise UnreadableFileError(path, "a directory") from None
    except PermissionError:
        raise UnreadableFileError(path, "permission denied") from None
    except OSError as exc:
        raise UnreadableFileError(path, exc.strerror or type(exc).__name__) from None
    if len(data) > MAX_FILE_BYTES:
        return None, _problem(path, 1, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, _problem(
            path, 1, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        )


def read_documents(paths: Sequence[str]) -> tuple[list[Item], list[Problem]]:
    """Every document in ``paths`` and the syntax problems found.

    Raises UnreadableFileError for a path that cannot be read at all.
    """
    items: list[Item] = []
    problems: list[Problem] = []
    for path in expand_paths(paths):
        text, problem = _read_text(path)
        if problem:
            problems.append(problem)
            continue
        assert text is not None
        source = "<stdin>" if path == STDIN else path
        found, syntax = parse_text(text, source=source, json_format=path.lower().endswith(".json"))
        items.extend(found)
        problems.extend(syntax)
    return items, problems


def load_files(paths: Sequence[str]) -> list[Item]:
    """Every document in ``paths`` as ``(source, index, raw)``.

    Raises UnreadableFileError for a path that cannot be read, DocumentSyntaxError when any
    file is not valid YAML or JSON.
    """
    items, problems = read_documents(paths)
    if problems:
        raise DocumentSyntaxError(problems)
    return items


def load_and_validate(
    paths: Sequence[str],
    *,
    now: datetime | None = None,
    max_override: timedelta = timedelta(days=7),
    known_calendars: Collection[str] = (),
    default_timezone: str = DEFAULT_TIMEZONE,
) -> tuple[DocumentSet, list[Problem]]:
    """Read and validate; syntax problems come first, then validation problems.

    A schedule that names no ``timezone`` gets ``default_timezone``: pass the deployment's
    ``Settings.default_timezone`` so files read here decide as the Lambda will.
    Raises UnreadableFileError for a path that cannot be read at all.
    """
    items, syntax = read_documents(paths)
    docs, problems = validate_documents(
        items,
        now=now,
        max_override=max_override,
        known_calendars=known_calendars,
        default_timezone=default_timezone,
    )
    return docs, syntax + problems
