"""Checks of the config table as a whole: what the tick never reads or silently keeps.

The tick reads the items under ``pk`` schedule, calendar, override and profile and validates
them. That leaves things it cannot see or does not complain about:

- items under any other ``pk`` (a mistyped ``Schedule``): never read at all;
- an item whose ``kind`` says another kind than its ``pk``;
- overrides without a numeric ``expires_at`` (DynamoDB's TTL never deletes them) or with one
  before their ``until`` (TTL may delete them while they should still hold);
- overrides for a service that has no schedule: they show up and do nothing;
- overrides that have ended but are still stored.

Pure functions of plain items (``engine.store.plain`` values); ``teiji validate --table`` is the
command, and ``teiji list`` / ``teiji override list`` show the override warnings.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from schemas.documents import KINDS, quote
from schemas.keys import split_override_sk

Severity = Literal["error", "warning", "note"]
# teiji writes expires_at one day after until (engine.store.OVERRIDE_TTL_GRACE).
TTL_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class Finding:
    """One thing about one item: ``error`` (teiji cannot use it as meant), ``warning`` (it is
    used, or kept, in a way nobody likely meant) or ``note`` (worth knowing, nothing wrong)."""

    severity: Severity
    pk: str
    sk: str
    message: str

    @property
    def item(self) -> str:
        return f"pk={_shown(self.pk)} sk={_shown(self.sk)}"

    def __str__(self) -> str:
        return f"{self.severity}: {self.item}: {self.message}"

    def as_json(self) -> dict[str, str]:
        return {"severity": self.severity, "pk": self.pk, "sk": self.sk, "message": self.message}


def _shown(text: str) -> str:
    cleaned = "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return repr(cleaned if len(cleaned) <= 80 else cleaned[:77] + "...")


# --------------------------------------------------------------------------------------------
# One item


def unknown_key(item: Mapping[str, Any]) -> Finding | None:
    """An item under a ``pk`` teiji never reads."""
    pk, sk = str(item.get("pk", "")), str(item.get("sk", ""))
    if pk in KINDS:
        return None
    close = difflib.get_close_matches(pk.lower(), KINDS, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return Finding(
        "error",
        pk,
        sk,
        f"teiji reads only the partitions pk={', '.join(KINDS)}, so this item is never read"
        f"{hint}; move it under the right pk or delete it",
    )


def kind_mismatch(item: Mapping[str, Any]) -> str | None:
    """The one-line reason an item's ``kind`` attribute contradicts its ``pk``, if it does."""
    pk = str(item.get("pk", ""))
    kind = item.get("kind")
    if kind is None or kind == pk or pk not in KINDS:
        return None
    shown = quote(kind) if isinstance(kind, str) else f"a {type(kind).__name__}"
    if isinstance(kind, str) and kind in KINDS:
        return (
            f"stored under pk={pk!r} but its kind is {shown}: {_a(kind)} belongs under "
            f"pk={kind!r} with sk={_SK_SHAPE[kind]}; move it there, or drop the kind attribute "
            f"if it is {_a(pk)}"
        )
    return (
        f"stored under pk={pk!r} but its kind is {shown}; the kind attribute may be left out "
        f"(the pk says it) or must be {pk!r}"
    )


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


_SK_SHAPE = {
    "schedule": "'<cluster>/<service>'",
    "calendar": "'<calendar name>'",
    "profile": "'<profile name>'",
    "override": "'<cluster>/<service>#<id>'",
}


def override_warnings(
    item: Mapping[str, Any], until: datetime | None, scheduled: Collection[str]
) -> list[str]:
    """What is off about a stored override that teiji otherwise accepts: its ``expires_at``
    (missing, not a number, before ``until``) and a service with no schedule.

    ``until`` is the override's end when it parsed (None when it did not); ``scheduled`` are
    the keys of the stored schedules."""
    messages: list[str] = []
    expires = item.get("expires_at")
    suggestion = f"{int((until + TTL_GRACE).timestamp())}" if until else "<epoch seconds>"
    fix = f'set expires_at to the number {suggestion} ({{"N": "{suggestion}"}})'
    if expires is None:
        messages.append(
            f"has no expires_at, so DynamoDB's TTL never deletes it; {fix}, a day after until"
        )
    elif isinstance(expires, bool) or not isinstance(expires, int | float):
        messages.append(
            f"expires_at is {_value(expires)}, not a number of epoch seconds, so DynamoDB's "
            f"TTL never deletes it; {fix}"
        )
    elif until is not None and expires < until.timestamp():
        when = datetime.fromtimestamp(expires, UTC).isoformat()
        messages.append(
            f"expires_at ({when}) is before until ({until.isoformat()}): DynamoDB's TTL may "
            f"delete the override while it should still hold; {fix}"
        )
    key = split_override_sk(str(item.get("sk", "")))[0]
    if key and key not in scheduled:
        messages.append(
            f"{key} has no schedule, so this override does nothing (teiji only acts on "
            "services with a schedule); add the schedule or cancel the override"
        )
    return messages


def _value(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------------------------
# The whole table


@dataclass(frozen=True)
class OverrideItem:
    """A stored override item with its end when it parsed."""

    item: Mapping[str, Any]
    until: datetime | None


def check_table(
    items: Iterable[Mapping[str, Any]],
    overrides: Iterable[OverrideItem],
    *,
    scheduled: Collection[str],
    now: datetime,
) -> list[Finding]:
    """Findings about the items no validation sees: unknown partitions, override expiry and
    overrides that do nothing or have ended. (Document problems, kind/pk mismatches among them,
    come from validating the items as the tick does; this adds to them.)"""
    findings = [found for found in map(unknown_key, items) if found is not None]
    for stored in overrides:
        pk, sk = str(stored.item.get("pk", "")), str(stored.item.get("sk", ""))
        for message in override_warnings(stored.item, stored.until, scheduled):
            findings.append(Finding("warning", pk, sk, message))
        if stored.until is not None and stored.until <= now:
            findings.append(Finding("note", pk, sk, _ended(stored, now)))
    return findings


def _ended(stored: OverrideItem, now: datetime) -> str:
    assert stored.until is not None
    ago = now - stored.until
    expires = stored.item.get("expires_at")
    tail = "`teiji override cancel` removes it now"
    if isinstance(expires, int | float) and not isinstance(expires, bool):
        when = datetime.fromtimestamp(expires, UTC)
        removal = "DynamoDB's TTL deletes it after " + when.isoformat()
        if when <= now:
            removal = f"its expires_at passed at {when.isoformat()}; TTL deletes it within days"
        tail = f"{removal}, or {tail}"
    return f"ended {_ago(ago)} ago ({stored.until.isoformat()}) and does nothing any more; {tail}"


def _ago(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    if hours >= 48:
        return f"{hours // 24} days"
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{max(1, int(span.total_seconds() // 60))} minutes"
