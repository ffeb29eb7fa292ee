"""A JSON Schema (draft 2020-12) of the documents, for editors.

Save it with ``teiji schema > teiji.schema.json`` and put
``# yaml-language-server: $schema=teiji.schema.json`` at the top of a YAML file: the VS Code YAML
extension then completes field names, shows each field's description and marks mistakes as
you type. ``teiji validate`` stays the authority: it also checks what a schema cannot say
(day names, cron expressions, time zones, calendars named in holidays, override length).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from schemas.documents import KINDS, Document

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_MODEL_NAMES = {
    "schedule": "Schedule",
    "calendar": "Calendar",
    "override": "Override",
    "profile": "Profile",
}


def document_json_schema() -> dict[str, Any]:
    """The schema of a file's content: one document, or a list of documents.

    (A YAML stream of several ``---`` documents is checked document by document by editors.)
    """
    return copy.deepcopy(_build())


@cache
def _build() -> dict[str, Any]:
    generated = TypeAdapter(Document).json_schema(ref_template="#/$defs/{model}")
    defs: dict[str, Any] = generated.pop("$defs")
    for kind in KINDS:
        model = defs[_MODEL_NAMES[kind]]
        # The models default ``kind`` for programmatic use; a written document must say it.
        model["required"] = ["kind", *[f for f in model.get("required", []) if f != "kind"]]
        model["properties"]["kind"].pop("default", None)
    defs["Document"] = {
        "title": "teiji document",
        "description": "A schedule, a calendar, an override or a profile, told apart by kind.",
        # ``kind`` is a const in each branch, so exactly one branch can match. pydantic's
        # "discriminator" is an OpenAPI keyword, not JSON Schema: left out.
        "oneOf": generated["oneOf"],
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "teiji documents",
        "description": "Schedules, calendars, overrides and profiles for teiji: one document or a "
        "list.",
        "anyOf": [
            {"$ref": "#/$defs/Document"},
            {"type": "array", "items": {"$ref": "#/$defs/Document"}},
        ],
        "$defs": defs,
    }
