"""Cron expressions compiled once, and their fires as naive local wall-clock times.

croniter parses an expression on every construction and walks fires one call at a time, which is
the slow part of deciding schedules with cron pairs. ``compiled`` parses an expression once (with
croniter, so the syntax and the field sets are exactly croniter's) and, for the usual shape
(plain minute, hour, day, month and weekday sets), enumerates fires with arithmetic: for each
local date that matches, every (hour, minute) of the expression. Expressions with croniter's
special day syntax (``L``, ``W``, ``#``) are walked with croniter itself. Both give the same
fires; ``tests/test_cron.py`` holds the compiled walk to croniter's for random expressions.

Days follow croniter: when both day-of-month and weekday are restricted, a date matches either
(the classic cron rule); when one is ``*``, only the other counts.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from croniter import croniter


__all__ = ["CompiledCron", "compiled"]

_DAY: Final = timedelta(days=1)


class CompiledCron:
    """One cron expression, parsed once. Fires are naive local wall-clock times."""

    __slots__ = (
        "_dom_or_dow",
        "_doms",
        "_dows",
        "_months",
        "_times",
        "expression",
        "plain",
    )

    def __init__(self, expression: str) -> None:
        self.expression = expression
        parsed = _croniter()(expression)
        minutes, hours, doms, months, dows = (list(field) for field in parsed.expanded[:5])
        minute_set = list(range(60)) if minutes == ["*"] else sorted(int(m) for m in minutes)
        hour_set = list(range(24)) if hours == ["*"] else sorted(int(h) for h in hours)
        self._times = tuple(time(h, m) for h in hour_set for m in minute_set)
        special = bool(parsed.nth_weekday_of_month) or bool(getattr(parsed, "nearest_weekday", ()))
        special = special or any(isinstance(v, str) and v != "*" for v in (*doms, *dows))
        self.plain = not special
        self._months = _int_set(months)
        self._doms = None if special else _int_set(doms)
        # croniter counts Sunday as 0 (7 is folded into 0); Python's date.weekday() Monday as 0.
        dow_set = None if special else _int_set(dows)
        self._dows = None if dow_set is None else frozenset((d - 1) % 7 for d in dow_set)
        self._dom_or_dow = self._doms is not None and self._dows is not None

    def matches(self, day: date) -> bool:
        """Whether the expression fires on local date ``day`` (plain expressions only)."""
        if self._months is not None and day.month not in self._months:
            return False
        if self._dom_or_dow:
            return day.day in self._doms or day.weekday() in self._dows  # type: ignore[operator]
        if self._doms is not None:
            return day.day in self._doms
        if self._dows is not None:
            return day.weekday() in self._dows
        return True

    def walls(self, first: datetime, last: datetime) -> list[datetime]:
        """Fires in [first, last] (naive wall-clock times), in order."""
        if not self.plain:
            return list(self._croniter_walls(first, last))
        found: list[datetime] = []
        day = first.date()
        while day <= last.date():
            if self.matches(day):
                found.extend(datetime.combine(day, t) for t in self._times)
            day += _DAY
        lo = bisect_left(found, first)
        hi = bisect_left(found, last + timedelta(microseconds=1))
        return found[lo:hi]

    def previous(self, before: datetime, within: timedelta) -> datetime | None:
        """The latest fire earlier than ``before`` and no earlier than ``before - within``."""
        earliest = before - within
        if not self.plain:
            try:
                fire = _croniter()(self.expression, before).get_prev(datetime)
            except Exception:  # croniter gives up when nothing fires for years
                return None
            return fire if fire >= earliest else None
        day = before.date()
        while day >= earliest.date():
            if self.matches(day):
                for t in reversed(self._times):
                    fire = datetime.combine(day, t)
                    if earliest <= fire < before:
                        return fire
            day -= _DAY
        return None

    def _croniter_walls(self, first: datetime, last: datetime) -> Iterator[datetime]:
        walk = _croniter()(self.expression, first - timedelta(microseconds=1))
        while True:
            try:
                fire = walk.get_next(datetime)
            except Exception:  # no fire for years: none in the range either
                return
            if fire > last:
                return
            yield fire


def _int_set(field: Sequence[object]) -> frozenset[int] | None:
    """A croniter field as a set of numbers, or None for ``*`` (any)."""
    return None if field == ["*"] else frozenset(int(str(value)) for value in field)


@lru_cache(maxsize=8192)
def compiled(expression: str) -> CompiledCron:
    """The compiled form of ``expression`` (cached: schedules share expressions)."""
    return CompiledCron(expression)


def _croniter() -> type[croniter]:
    # Late: importing croniter costs a cold start tens of ms, and only cron pairs need it.
    from croniter import croniter

    return croniter
