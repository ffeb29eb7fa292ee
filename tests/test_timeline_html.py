"""The timeline page: well-formed, self-contained, and saying what the simulation says."""

from __future__ import annotations

import re
from datetime import date, datetime
from html.parser import HTMLParser

import pytest
import pytz

from engine.decide import Decider
from engine.model import Segment
from engine.pricing import price_for
from engine.simulate import ServiceSimulation, simulate
from engine.timeline_html import day_rows, render_page
from schemas.documents import Override, Schedule
from schemas.validation import DocumentSet

TOKYO = pytz.timezone("Asia/Tokyo")
PRICES = {"ap-northeast-1": price_for("ap-northeast-1"), "us-east-1": price_for("us-east-1")}
_VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base"}


class _Checker(HTMLParser):
    """Fails on mis-nested or unclosed elements; collects attributes, text and classes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.classes: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))
            if name == "class":
                self.classes.extend((value or "").split())
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


def _sims() -> list[ServiceSimulation]:
    tokyo = Schedule(
        service="shop/web-stg",
        windows=[{"days": "mon-fri", "start": "05:07", "end": "22:00"}],
        holidays=["JP"],
    )
    new_york = Schedule(
        service="us/batch",
        timezone="America/New_York",
        region="us-east-1",
        windows=[
            {"days": "mon-fri", "start": "08:00", "end": "19:00"},
            {"days": "sun", "start": "00:00", "end": "06:00"},
        ],
    )
    watch = Schedule(service="ops/watch", mode="unmanaged")
    override = Override(
        service="shop/web-stg",
        state="running",
        start=TOKYO.localize(datetime(2026, 11, 4, 21)),
        until=TOKYO.localize(datetime(2026, 11, 4, 23, 30)),
        reason="release <night> & checks",
        id="rel-1",
    )
    docs = DocumentSet(schedules={s.key: s for s in (tokyo, new_york, watch)}, overrides=[override])
    return simulate(docs, date(2026, 10, 26), date(2026, 11, 8), prices=PRICES, decider=Decider())


@pytest.fixture(scope="module")
def page() -> str:
    return render_page(
        _sims(),
        range_label="2026-10-26 to 2026-11-08",
        price_note="ap-northeast-1 x86_64 on-demand",
        generated="2026-10-25 10:00 UTC",
    )


def test_page_is_well_formed_html(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    checker = _parse(page)
    assert {"html", "head", "body", "style", "table"} <= checker.tags


def test_page_is_self_contained(page: str) -> None:
    checker = _parse(page)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & checker.tags
    for tag, name, value in checker.attributes:
        if name in ("href", "src", "action", "srcset", "data"):
            assert value.startswith("#"), (tag, name, value)
    assert "http" not in page
    assert "url(" not in page
    assert "@import" not in page


def test_page_names_every_service_and_the_legend(page: str) -> None:
    text = " ".join(_parse(page).text)
    for service in ("shop/web-stg", "us/batch@us-east-1", "ops/watch"):
        assert service in text
    for label in ("Running", "Stopped", "Holiday", "Override", "Unmanaged"):
        assert label in text
    assert "Total" in text


def test_page_uses_every_colour_it_explains(page: str) -> None:
    classes = set(_parse(page).classes)
    assert {"run", "stop", "hol", "ovr-run", "unm"} <= classes


def test_day_labels_carry_weekday_and_holiday_name(page: str) -> None:
    text = " ".join(_parse(page).text)
    assert "Culture Day (JP)" in text  # Tuesday 3 November 2026
    assert re.search(r"Tue\s+3 Nov", text)
    assert "25 h day" in text  # New York's clocks go back on Sunday 1 November


def test_user_text_is_escaped(page: str) -> None:
    assert "<night>" not in page
    assert "release &lt;night&gt; &amp; checks" in page


def test_savings_table_has_a_row_per_service_and_a_total(page: str) -> None:
    table = page[page.index("<table") : page.index("</table>")]
    assert table.count("<tr") == 1 + 3 + 1  # header, services, total


def _segments(*parts: tuple[str, str, str]) -> list[Segment]:
    out = []
    for start, end, state in parts:
        out.append(
            Segment(
                TOKYO.localize(datetime.fromisoformat(start)),
                TOKYO.localize(datetime.fromisoformat(end)),
                state,  # type: ignore[arg-type]
                "window",
                state,
            )
        )
    return out


def test_rows_place_runs_on_local_quarter_hours() -> None:
    segments = _segments(
        ("2026-11-16T00:00", "2026-11-16T05:15", "stopped"),
        ("2026-11-16T05:15", "2026-11-16T22:00", "running"),
        ("2026-11-16T22:00", "2026-11-18T00:00", "stopped"),
    )
    rows = day_rows(segments, "Asia/Tokyo")
    assert [row.day for row in rows] == [date(2026, 11, 16), date(2026, 11, 17)]
    first = rows[0].runs
    assert [(r.css, r.first, r.quarters) for r in first] == [
        ("stop", 0, 21),
        ("run", 21, 67),  # 05:15 is quarter 21; 05:15-22:00 is 67 quarters
        ("stop", 88, 8),
    ]
    assert first[1].title.startswith("Mon 2026-11-16 05:15–22:00: running")
    assert [(r.css, r.quarters) for r in rows[1].runs] == [("stop", 96)]


def test_rows_hatch_the_hour_skipped_by_dst() -> None:
    zone = pytz.timezone("America/New_York")
    start = zone.localize(datetime(2026, 3, 8))
    end = zone.localize(datetime(2026, 3, 9))
    (row,) = day_rows([Segment(start, end, "stopped", "default", "off")], "America/New_York")
    assert row.hours == 23
    assert [(r.css, r.first, r.quarters) for r in row.runs] == [
        ("stop", 0, 8),
        ("gap", 8, 4),  # 02:00-03:00 does not exist that day
        ("stop", 12, 84),
    ]


def test_empty_simulation_still_renders() -> None:
    page = render_page([])
    _parse(page)
    assert "$0.00" in page


def test_rows_flag_the_hour_repeated_by_dst() -> None:
    zone = pytz.timezone("America/New_York")
    start = zone.localize(datetime(2026, 11, 1))
    end = zone.localize(datetime(2026, 11, 2))
    (row,) = day_rows([Segment(start, end, "stopped", "default", "off")], "America/New_York")
    assert row.hours == 25
    assert [(r.first, r.quarters) for r in row.runs] == [(0, 4), (4, 4), (8, 88)]
    assert "happens twice" in row.runs[1].title
    assert "happens twice" not in row.runs[0].title
