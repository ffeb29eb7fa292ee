"""The timeline's rows (pure): one per local day, 96 quarter-hour cells, run-length coded.

Days with a DST change keep 24 hour columns of local wall-clock time: the skipped hour is
hatched, and the repeated hour shows its first occurrence (its tooltip says so).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytz

from engine.model import Segment
from engine.timeline_text import Lang, weekday, words

QUARTERS_PER_DAY = 96
_QUARTER = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive quarter cells of one row that look and read the same."""

    css: str
    quarters: int
    first: int  # quarter index in the row where the run starts
    title: str
    label: str = ""  # shown on the bar itself (overrides: their reason and author)


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    runs: tuple[Run, ...]
    holiday: str | None
    hours: int  # 23, 24 or 25 on DST days


def day_rows(
    segments: Sequence[Segment], zone: str, *, lang: Lang = "en", reduced: int = 0
) -> list[Day]:
    """One row per local date touched by the segments, 96 quarter cells each, run-length coded.

    ``reduced`` is the service's task count while stopped: above 0, stopped time is drawn as
    reduced (``red``), not as stopped, because the service still runs that many tasks.
    """
    if not segments:
        return []
    tz = pytz.timezone(zone)
    starts = [s.start for s in segments]
    first_day = segments[0].start.astimezone(tz).date()
    last_day = (segments[-1].end - timedelta(microseconds=1)).astimezone(tz).date()
    range_start, range_end = segments[0].start, segments[-1].end
    said = words(lang)
    rows: list[Day] = []
    day = first_day
    while day <= last_day:
        cells = _cells(tz, day)
        runs: list[Run] = []
        for q, (instant, repeated) in enumerate(cells):
            label = ""
            if instant is None:
                css, text = "gap", said["gap"]
            elif not range_start <= instant < range_end:
                css, text = "out", said["out"]
            else:
                segment = segments[bisect.bisect_right(starts, instant) - 1]
                css, text = _css_for(segment, reduced), _describe(segment, said, reduced)
                if segment.source == "override":
                    label = override_label(segment.reason, lang)
                if repeated:
                    text += said["twice"]
            _extend(runs, css, q, text, label)
        rows.append(
            Day(
                day=day,
                runs=tuple(_titled(r, day, lang) for r in runs),
                holiday=None,  # named by render_page from ServiceSimulation.holidays
                hours=_day_hours(tz, day),
            )
        )
        day += timedelta(days=1)
    return rows


def _cells(tz: pytz.BaseTzInfo, day: date) -> list[tuple[datetime | None, bool]]:
    """The instant of each local quarter of ``day`` and whether it occurs twice."""
    midnight = tz.localize(datetime(day.year, day.month, day.day), is_dst=False)
    nxt = day + timedelta(days=1)
    following = tz.localize(datetime(nxt.year, nxt.month, nxt.day), is_dst=False)
    if following - midnight == timedelta(days=1) and midnight.utcoffset() == following.utcoffset():
        # No clock change that day (the usual case): quarters are evenly spaced instants.
        return [(midnight + q * _QUARTER, False) for q in range(QUARTERS_PER_DAY)]
    return [_cell(tz, day, q) for q in range(QUARTERS_PER_DAY)]


def _cell(tz: pytz.BaseTzInfo, day: date, quarter: int) -> tuple[datetime | None, bool]:
    """The instant of a local quarter (None in a DST gap) and whether it occurs twice."""
    naive = datetime(day.year, day.month, day.day) + quarter * _QUARTER
    try:
        return tz.localize(naive, is_dst=None), False
    except pytz.NonExistentTimeError:
        return None, False
    except pytz.AmbiguousTimeError:
        return tz.localize(naive, is_dst=True), True


def _day_hours(tz: pytz.BaseTzInfo, day: date) -> int:
    start = tz.localize(datetime(day.year, day.month, day.day), is_dst=False)
    nxt = day + timedelta(days=1)
    end = tz.localize(datetime(nxt.year, nxt.month, nxt.day), is_dst=False)
    return round((end - start).total_seconds() / 3600)


def _css_for(segment: Segment, reduced: int = 0) -> str:
    if segment.source == "override":
        return "ovr-run" if segment.state == "running" else "ovr-stop"
    if segment.state == "unmanaged":
        return "unm"
    if segment.state == "running":
        return "run"
    if segment.source == "holiday" or segment.holiday:
        return "hol"
    return "red" if reduced > 0 else "stop"


def _describe(segment: Segment, said: Mapping[str, str], reduced: int) -> str:
    state = said[segment.state]
    if segment.state == "stopped" and reduced > 0:
        state = said["reduced"].format(n=reduced)
    extra = f" — {segment.reason}" if segment.reason else ""
    if segment.holiday and segment.holiday not in segment.reason:
        extra += f" ({segment.holiday})"
    return f"{state}{extra}"


# What engine.decide says of an override: "override ID by WHO keeps it STATE until WHEN: WHY".
_OVERRIDE = re.compile(
    r"^override(?: [A-Za-z0-9_-]{1,64})?(?: by (?P<by>.*?))? keeps it \w+ until "
    r"\w+ \d{4}-\d\d-\d\d \d\d:\d\d [^ :]+: (?P<why>.*)$"
)
LABEL_CHARS = 60


def override_label(reason: str, lang: Lang = "en") -> str:
    """``override: <why> (<who>)`` for the bar, at most ``LABEL_CHARS`` characters."""
    match = _OVERRIDE.match(reason)
    why, by = (match.group("why"), match.group("by")) if match else (reason, None)
    text = f"{words(lang)['override']}: {why}"
    if by:
        text += f" ({by})" if lang == "en" else f"（{by}）"
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1].rstrip() + "…"


def _extend(runs: list[Run], css: str, quarter: int, text: str, label: str) -> None:
    if runs and runs[-1].css == css and runs[-1].title == text:
        last = runs[-1]
        runs[-1] = Run(css, last.quarters + 1, last.first, text, label)
    else:
        runs.append(Run(css, 1, quarter, text, label))


def _titled(run: Run, day: date, lang: Lang) -> Run:
    """Prefix the tooltip with the day and local times the run covers."""
    label = f"{weekday(day, lang)} {day.isoformat()} {_hhmm(run.first)}–"
    label += _hhmm(run.first + run.quarters)
    return Run(run.css, run.quarters, run.first, f"{label}: {run.title}", run.label)


def _hhmm(quarter: int) -> str:
    return f"{quarter // 4:02d}:{quarter % 4 * 15:02d}"
