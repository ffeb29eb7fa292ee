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
from collections.abc import Callable, Iterable, Iterator, Mapping
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


_Check = Callable[[Any], "list[str] | None"]
# One checker per output shape, built on first use: a shape's members are looked up once,
# not on every answer. botocore keeps one model per client, so the cache stays small.
_checkers: dict[int, tuple[Any, _Check]] = {}


def _mistyped(value: Any, shape: Any, path: str) -> str | None:
    """Where ``value`` does not have the JSON type ``shape`` says (None: it does all through).

    Members the model does not know are ignored, as botocore ignores them; ``null`` is
    accepted anywhere (botocore leaves such a member out)."""
    problem = _checker(shape)(value)
    if problem is None:
        return None
    *steps, what = problem  # the outermost step first
    where = path
    for step in steps:
        if step.startswith("["):
            where = f"{where}{step}"
        else:
            where = step if where == "the body" else f"{where}.{step}"
    return f"{where} {what}"


def _checker(shape: Any) -> _Check:
    """The checker of ``shape``: None when a value fits it, else the steps to the value that
    does not (outermost first) and, last, what is wrong with it."""
    cached = _checkers.get(id(shape))
    if cached is not None and cached[0] is shape:
        return cached[1]
    check = _build(shape)
    _checkers[id(shape)] = (shape, check)
    return check


def _build(shape: Any) -> _Check:
    kind = shape.type_name
    if kind == "structure":
        return _structure_checker(shape)
    if kind == "list":
        return _list_checker(shape)
    if kind == "map":
        return _map_checker(shape)
    return _scalar_checker(kind)


def _structure_checker(shape: Any) -> _Check:
    # Scalar members (most of an answer) are checked in place; only nested shapes recurse.
    scalars: dict[str, tuple[type, ...]] = {}
    nested: dict[str, Any] = {}
    for name, member in shape.members.items():
        kind = member.type_name
        if kind in ("structure", "list", "map"):
            nested[name] = member
        elif kind in _SCALARS:
            scalars[name] = _SCALARS[kind]
    checks: dict[str, _Check] = {}  # the nested members' checkers, as they are first needed

    def check(value: Any) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            return [f"is a JSON {_json_type(value)}, not an object"]
        for key, item in value.items():
            if item is None:
                continue
            allowed = scalars.get(key)
            if allowed is not None:
                if not isinstance(item, allowed) or (
                    isinstance(item, bool) and bool not in allowed
                ):
                    return [key, *(_scalar_checker(shape.members[key].type_name)(item) or [])]
                continue
            member_check = checks.get(key)
            if member_check is None:
                member = nested.get(key)
                if member is None:
                    continue  # a member the model does not know: ignored, as botocore does
                member_check = checks[key] = _checker(member)  # resolved once, on first use
            problem = member_check(item)
            if problem is not None:
                return [key, *problem]
        return None

    return check


def _list_checker(shape: Any) -> _Check:
    member = shape.member
    allowed = _SCALARS.get(member.type_name)

    def check(value: Any) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            return [f"is a JSON {_json_type(value)}, not a list"]
        # A list of scalars (names, ARNs, numbers): one isinstance each, in place.
        if allowed is not None and bool not in allowed and all(_fits(v, allowed) for v in value):
            return None
        item_check = _checker(member)
        for index, item in enumerate(value):
            problem = item_check(item)
            if problem is not None:
                return [f"[{index}]", *problem]
        return None

    return check


def _fits(value: Any, allowed: tuple[type, ...]) -> bool:
    return value is None or (isinstance(value, allowed) and not isinstance(value, bool))


def _map_checker(shape: Any) -> _Check:
    value_shape = shape.value

    def check(value: Any) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            return [f"is a JSON {_json_type(value)}, not an object"]
        item_check = _checker(value_shape)
        for key, item in value.items():
            problem = item_check(item)
            if problem is not None:
                return [str(key), *problem]
        return None

    return check


def _scalar_checker(kind: str) -> _Check:
    allowed = _SCALARS.get(kind)

    def check(value: Any) -> list[str] | None:
        if value is None or allowed is None:
            return None
        if isinstance(value, bool) and bool not in allowed:
            return [f"is a JSON boolean, not {_article(kind)}"]
        if not isinstance(value, allowed):
            return [f"is a JSON {_json_type(value)}, not {_article(kind)}"]
        return None

    return check


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
