"""What a warm Lambda keeps from one tick to the next: parsed documents and the Decider.

Each tick reads every document from the table (never skipped, never assumed unchanged). While
``warm_reuse`` is in force (the Lambda handler holds it for the whole tick):

- an item whose content is exactly what an earlier tick parsed gives that tick's model again
  instead of being validated anew (``schemas.validation.ParseMemo``: the content and types of
  each document as read are its key, so any edit, however small, is parsed and checked; a
  document with problems is parsed, and reported, every time);
- the tick's Decider is the one the previous tick used, with its timelines per rule, when the
  calendar documents say the same as those it was made with; a changed, added or removed
  calendar makes a new one. A warm Decider answers exactly as a fresh one
  (``engine.decide``), so this changes the work, never a decision.

Outside ``warm_reuse`` (the CLI, tests) every load parses everything and every tick decides
with a new Decider.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from schemas.validation import ParseMemo, reusing_parses

if TYPE_CHECKING:
    from engine.decide import Decider
    from schemas.documents import Calendar

__all__ = ["decider_for", "forget", "warm_reuse"]

_MEMO = ParseMemo()
_REUSING: ContextVar[bool] = ContextVar("teiji_warm_reuse", default=False)
_kept: list[Decider] = []  # the Decider of the last tick, while reusing


@contextmanager
def warm_reuse() -> Iterator[None]:
    """Reuse what earlier ticks in this process parsed and decided (see the module docs)."""
    with reusing_parses(_MEMO):
        token = _REUSING.set(True)
        try:
            yield
        finally:
            _REUSING.reset(token)


def decider_for(calendars: Mapping[str, Calendar]) -> Decider:
    """The Decider for a tick whose calendar documents are ``calendars``: the last tick's
    when reusing and the calendars are unchanged, else a new one."""
    from engine.decide import Decider  # the decision engine loads holiday data: import late

    if not _REUSING.get():
        return Decider(calendars)
    if _kept and _kept[0].calendars_are(calendars):
        _kept[0].release_schedules()
        return _kept[0]
    decider = Decider(calendars)
    _kept[:] = [decider]
    return decider


def forget() -> None:
    """Drop everything kept (tests: a fresh process)."""
    global _MEMO
    _MEMO = ParseMemo()
    _kept.clear()
