"""Text the commands print: instants in local time, and documents as YAML.

``local_text`` is the one way a command prints an instant (the demo's short form included);
``yaml_text`` and ``ordered_document`` print a stored document so that ``teiji put`` takes it
back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import yaml
from pydantic import BaseModel

from engine.localtime import time_text, to_local, zone
from schemas.documents import Calendar, Override, ProfileBase, Schedule


def local_text(at: datetime, timezone: str | None = None, *, short: bool = False) -> str:
    """``Tue 2026-12-01 22:00 JST``: local time in ``timezone`` (the schedule's), else UTC (see
    ``engine.localtime.time_text``). ``short`` is ``Tue 12-01 22:00``, for a listing whose
    zone is said once (the demo's)."""
    if not short:
        return time_text(at, timezone)
    local = to_local(at, zone(timezone or "UTC"))
    return f"{local:%a %m-%d %H:%M}"


def ordered_document(document: Schedule | Calendar | Override | ProfileBase) -> dict[str, Any]:
    """The document as plain data in the models' field order, without defaulted fields, so it
    reads like what someone would write (``kind`` first; a schedule always shows its zone)."""
    body = _dump(document)
    if isinstance(document, Schedule):
        body = {
            "service": body.pop("service"),
            **({"mode": body.pop("mode")} if "mode" in body else {}),
            "timezone": document.timezone,
            **body,
        }
    return {"kind": document.kind, **{k: v for k, v in body.items() if k != "kind"}}


def _dump(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude_defaults=True
    )
    return dumped


class _Dumper(yaml.SafeDumper):
    """Quotes every ``HH:MM``: YAML 1.1 tools read an unquoted 05:00 as the number 300."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "'" if _CLOCK_TEXT.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CLOCK_TEXT = re.compile(r"^\d{1,2}:\d{2}$", re.ASCII)
_Dumper.add_representer(str, _represent_text)


def yaml_text(document: Mapping[str, Any], header: str) -> str:
    """``document`` as YAML after a ``# header`` comment line."""
    body = yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return f"# {header}\n{body}"
