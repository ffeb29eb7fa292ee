"""Answers that cannot be read fail closed: nothing is concluded from them.

botocore reads a JSON-protocol body that does not parse (cut short, garbled) as
``{"message": <the text>}`` and returns it as a successful answer: a DescribeScalableTargets
answer cut in the middle would read as "no scalable target" and a BatchGetItem one as "no
baseline". teiji checks every 2xx answer of a JSON protocol (ECS, Application Auto Scaling,
DynamoDB) once, on botocore's ``before-parse`` event: the body must be JSON of the types the
operation's output shape names. The adapters check that each answer holds what the operation
always returns (``require``). Either way the call raises ``UnreadableAnswerError`` (a
``BotoCoreError``, so every adapter's caller fails exactly the services that call covered),
and absence is concluded only from a complete, parsed answer. A paginated read whose page
token is of the wrong type or comes round again fails the same way (``checked_pages``): the
pages after it would never come.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError

_JSON_PROTOCOLS = frozenset({"json", "rest-json"})
_Page = TypeVar("_Page", bound=Mapping[str, object])


class UnreadableAnswerError(BotoCoreError):
    """An answer with status 2xx whose body cannot be read, or that lacks what it must hold."""

    fmt = "{operation}: the answer cannot be read ({detail}); nothing is concluded from it"


def check_answer(operation_model: Any = None, response_dict: Any = None, **_: Any) -> None:
    """``before-parse`` handler: a 2xx JSON answer must be one JSON object whose members have
    the types the operation's output shape gives them (botocore's parser would otherwise read
    a cut body as an empty answer, and stop with an AttributeError on a mistyped one)."""
    if operation_model is None or not isinstance(response_dict, dict):
        return
    if int(response_dict.get("status_code") or 0) >= 300:
        return  # an error answer: botocore raises it as one
    if operation_model.service_model.resolved_protocol not in _JSON_PROTOCOLS:
        return  # XML answers that do not parse already raise in botocore's parser
    body = response_dict.get("body")
    if not body or not isinstance(body, bytes | bytearray):
        return  # no body holds nothing; ``require`` checks what must be there
    name = operation_model.name
    try:
        value = json.loads(body)
    except ValueError:
        raise UnreadableAnswerError(
            operation=name, detail=f"the body is not JSON ({len(body)} bytes)"
        ) from None
    shape = operation_model.output_shape
    problem = _mistyped(value, shape, "the body") if shape is not None else None
    if problem:
        raise UnreadableAnswerError(operation=name, detail=problem)


_SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "character": (str,),
    "blob": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "short": (int,),
    "byte": (int,),
    "double": (int, float),
    "float": (int, float),
    "bigdecimal": (int, float),
    "biginteger": (int,),
    "timestamp": (int, float, str),
}


def _mistyped(value: Any, shape: Any, path: str) -> str | None:
    """Where ``value`` does not have the JSON type ``shape`` says (None: it does all through).

    Members the model does not know are ignored, as botocore ignores them; ``null`` is
    accepted anywhere (botocore leaves such a member out)."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return f"{path} is a JSON {_json_type(value)}, not an object"
        members = shape.members
        for key, item in value.items():
            member = members.get(key)
            if member is not None:
                problem = _mistyped(item, member, f"{path}.{key}" if path != "the body" else key)
                if problem:
                    return problem
        return None
    if kind == "list":
        if not isinstance(value, list):
            return f"{path} is a JSON {_json_type(value)}, not a list"
        for index, item in enumerate(value):
            problem = _mistyped(item, shape.member, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if kind == "map":
        if not isinstance(value, dict):
            return f"{path} is a JSON {_json_type(value)}, not an object"
        for key, item in value.items():
            problem = _mistyped(item, shape.value, f"{path}.{key}")
            if problem:
                return problem
        return None
    allowed = _SCALARS.get(kind)
    if allowed is None:
        return None
    if isinstance(value, bool) and bool not in allowed:
        return f"{path} is a JSON boolean, not {_article(kind)}"
    if not isinstance(value, allowed):
        return f"{path} is a JSON {_json_type(value)}, not {_article(kind)}"
    return None


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean"}
    return names.get(type(value), "number")


def require(response: Mapping[str, Any], operation: str, key: str, kind: type) -> Any:
    """``response[key]``, which must be there and of ``kind`` (list, dict, str...)."""
    value = response.get(key)
    if not isinstance(value, kind):
        found = "missing" if value is None else f"a {type(value).__name__}"
        raise UnreadableAnswerError(
            operation=operation, detail=f"{key} is {found}, not a {kind.__name__}"
        )
    return value


def unreadable(operation: str, detail: str) -> UnreadableAnswerError:
    return UnreadableAnswerError(operation=operation, detail=detail)


def checked_pages(
    pages: Iterable[_Page], operation: str, token: str, kind: type[str] | type[dict[str, Any]]
) -> Iterator[_Page]:
    """The pages of a paginated read (``client.get_paginator(...).paginate(...)``), each
    checked for its page token ``token`` (``NextToken``, ``LastEvaluatedKey``) of ``kind``.

    A page is read first, then its token: a token of another type, or one that came before,
    raises UnreadableAnswerError before the next page is asked for, as the pages that never
    come would otherwise read as "nothing more". botocore's own paginator only stops on a
    token equal to the one just before it (``PaginationError``); a cycle (A, B, A) would go
    on for ever.
    """
    noun = "text" if kind is str else "a key"
    seen: set[str] = set()
    for page in pages:
        yield page
        value = page.get(token)
        if value is None:
            continue  # the last page
        if not isinstance(value, kind):
            raise unreadable(operation, f"{token} is not {noun}")
        if not value:
            continue  # botocore reads an empty token as the last page too
        mark = json.dumps(value, sort_keys=True, default=str)
        if mark in seen:
            raise unreadable(operation, f"the same {token} came twice; pages are missing")
        seen.add(mark)
