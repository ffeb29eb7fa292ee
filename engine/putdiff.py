"""What ``teiji put`` replaces, field by field, and whether someone edited it since teiji wrote it.

Every config item teiji writes carries ``teiji_hash``: a hash of the item's other attributes as
they were written. An item whose attributes no longer hash to it was changed by someone else
(the console, the AWS CLI, Terraform) since; ``put`` shows the difference and replaces it only
when told to (``--force``). An item without the attribute was written by hand (the console,
the AWS CLI) or by a teiji from before the stamp: someone's work all the same, so ``put``
treats it as edited outside teiji too, and replaces it only with ``--force``.

Pure functions of plain items (``engine.store.plain`` values, as ``from_attribute_map`` reads
them, or as ``item_from_document`` makes them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

HASH_ATTRIBUTE = "teiji_hash"
# Attributes that are the item's address or its stamp, not its content.
_NOT_CONTENT = frozenset({"pk", "sk", HASH_ATTRIBUTE})
_MISSING = object()

Change = Literal["new", "replaced", "unchanged"]


def content(item: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes that make up the document: all but ``pk``, ``sk`` and the stamp."""
    return {key: value for key, value in item.items() if key not in _NOT_CONTENT}


def content_hash(item: Mapping[str, Any]) -> str:
    """A hash of ``content(item)``, the same whatever order the attributes come in."""
    text = json.dumps(content(item), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stamped(item: Mapping[str, Any]) -> dict[str, Any]:
    """``item`` with its ``teiji_hash``: what teiji writes."""
    return {
        **{k: v for k, v in item.items() if k != HASH_ATTRIBUTE},
        HASH_ATTRIBUTE: content_hash(item),
    }


def edited_outside(item: Mapping[str, Any]) -> bool:
    """True when ``item`` has no stamp, or one that its attributes no longer match."""
    stamp = item.get(HASH_ATTRIBUTE)
    return not isinstance(stamp, str) or stamp != content_hash(item)


def written_by_teiji(item: Mapping[str, Any]) -> bool:
    return isinstance(item.get(HASH_ATTRIBUTE), str)


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: its path (``windows[0].end``), the stored and the new value."""

    path: str
    stored: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.path}: {_shown(self.stored)} -> {_shown(self.new)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "stored": None if self.stored is _MISSING else self.stored,
            "new": None if self.new is _MISSING else self.new,
        }


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    return json.dumps(value, ensure_ascii=False, default=str)


def field_changes(stored: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldChange]:
    """Every leaf that differs between two items' contents, in the new item's field order."""
    changes: list[FieldChange] = []
    _compare(content(stored), content(new), "", changes)
    return changes


def _compare(stored: Any, new: Any, path: str, out: list[FieldChange]) -> None:
    if isinstance(stored, Mapping) and isinstance(new, Mapping):
        keys = list(new) + [k for k in stored if k not in new]
        for key in keys:
            child = f"{path}.{key}" if path else str(key)
            _compare(stored.get(key, _MISSING), new.get(key, _MISSING), child, out)
        return
    if isinstance(stored, list) and isinstance(new, list):
        for index in range(max(len(stored), len(new))):
            _compare(
                stored[index] if index < len(stored) else _MISSING,
                new[index] if index < len(new) else _MISSING,
                f"{path}[{index}]",
                out,
            )
        return
    if stored is _MISSING and new is _MISSING:
        return
    if stored != new or type(stored) is not type(new):
        out.append(FieldChange(path or "-", stored, new))


def change_of(stored: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Change:
    if stored is None:
        return "new"
    return "unchanged" if content(stored) == content(new) else "replaced"


@dataclass(frozen=True)
class PlannedPut:
    """What ``put`` does with one document: write it new, replace the stored item (with the
    fields that change), or leave it as it is; ``edited`` when the stored item was changed
    outside teiji since teiji wrote it, or written outside teiji (``by_hand``: no stamp)."""

    kind: str
    name: str
    change: Change
    fields: list[FieldChange]
    edited: bool
    by_hand: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "new": self.change == "new",
            "change": self.change,
            "edited_outside_teiji": self.edited,
            "fields": [f.as_json() for f in self.fields],
        }


def plan_put(
    kind: str, name: str, new: Mapping[str, Any], stored: Mapping[str, Any] | None
) -> PlannedPut:
    """Compare the item ``put`` would write with the one stored (both plain, as read back)."""
    change = change_of(stored, new)
    if stored is None:
        return PlannedPut(kind, name, change, [], False)
    fields = field_changes(stored, new) if change == "replaced" else []
    edited = change == "replaced" and edited_outside(stored)
    return PlannedPut(kind, name, change, fields, edited, edited and not written_by_teiji(stored))
