"""The timeline page: well-formed, self-contained, and saying what the simulation says."""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import date, datetime
from html.parser import HTMLParser

import pytest
import pytz
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.decide import Decider
from engine.model import Segment
from engine.pricing import price_for
from engine.simulate import ServiceSimulation, simulate
from engine.timeline_html import OPEN_UP_TO, day_rows, render_page
from engine.timeline_rows import override_label
from engine.timeline_text import localized_holidays
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
        created_by="aiko",
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
    assert not {"link", "img", "iframe", "object", "embed"} & checker.tags
    # One inline script (sorting and the filter), nothing loaded.
    assert page.count("<script") == 1
    assert "<script>" in page
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


def test_overview_has_a_row_per_service_and_a_total(page: str) -> None:
    start = page.index('<table class="savings" id="ov">')
    table = page[start : page.index("</table>", start)]
    assert table.count("<tr") == 1 + 3 + 1  # header, services, total
    # One day cell per simulated day (14) in each service's strip.
    assert table.count('<span class="d') == 3 * 14


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


# Fleet size: overview, details, legend, projection ---------------------------------------------
def test_a_fleet_page_starts_with_its_timelines_collapsed(page: str) -> None:
    assert page.count("<details") == 3 <= OPEN_UP_TO
    assert page.count('<details class="card service" id="svc-0" open>') == 1
    many = [dataclasses.replace(_sims()[0], service=f"shop/web-{n}") for n in range(OPEN_UP_TO + 1)]
    collapsed = render_page(many)
    assert collapsed.count("<details") == OPEN_UP_TO + 1
    assert " open>" not in collapsed
    # The overview's links lead to each timeline.
    for index in range(OPEN_UP_TO + 1):
        assert f'href="#svc-{index}"' in collapsed
        assert f'id="svc-{index}"' in collapsed


def test_overrides_are_labelled_on_the_bar(page: str) -> None:
    checker = _parse(page)
    assert "olabel" in checker.classes
    text = " ".join(checker.text)
    assert "override: release <night> & checks (aiko)" in text  # visible, not only a title
    # 21:00-23:30 starts in the second half of the day: the words end where the override ends
    # (half an hour before midnight, 2 of 96 quarters from the bar's right end) and run left.
    assert 'class="olabel ovr-run-label" style="right:2.083%;max-width:97.917%"' in page


def test_override_labels_are_cut_sensibly() -> None:
    reason = "override rel-1 by aiko keeps it running until Wed 2026-11-04 23:30 JST: " + "x" * 200
    label = override_label(reason)
    assert len(label) <= 60 and label.endswith("…") and label.startswith("override: xxx")
    assert override_label("something else entirely") == "override: something else entirely"
    ja = override_label(
        "override by aiko keeps it stopped until Wed 2026-11-04 23:30 +0530: 棚卸し", "ja"
    )
    assert ja == "オーバーライド: 棚卸し（aiko）"


def test_the_legend_lists_only_what_the_page_draws(page: str) -> None:
    legend = page[page.index('<nav class="legend"') : page.index("</nav>")]
    for drawn in ("swatch run", "swatch stop", "swatch hol", "swatch ovr-run", "swatch unm"):
        assert drawn in legend
    # No override keeps anything stopped, no night size, no clock skips an hour in the range.
    for absent in ("swatch ovr-stop", "swatch red", "swatch gap"):
        assert absent not in legend


def test_a_night_size_is_drawn_reduced_not_stopped() -> None:
    schedule = Schedule(
        service="shop/web-stg",
        windows=[{"days": "mon-fri", "start": "08:00", "end": "20:00"}],
        running={"desired_count": 3},
        stopped={"desired_count": 1},
    )
    docs = DocumentSet(schedules={schedule.key: schedule})
    sims = simulate(docs, date(2026, 11, 16), date(2026, 11, 22), prices=PRICES, decider=Decider())
    page = render_page(sims)
    classes = set(_parse(page).classes)
    assert "red" in classes and "stop" not in classes
    assert "swatch red" in page and "Reduced, not zero" in page
    assert "reduced to 1 — " in page  # the tooltip says how far
    # The pattern is a stripe, not a colour alone: readable in grey print too.
    assert re.search(r"\.red, \.swatch\.red \{\{?\s*background: repeating-linear-gradient", page)


def test_the_monthly_projection_says_what_it_is_projected_from(page: str) -> None:
    section = page[page.index('<section class="card months"') :]
    section = section[: section.index("</section>") + len("</section>")]
    text = " ".join(_parse(section).text)
    assert "Monthly projection" in text
    assert "Oct 2026 6 of 31 days" in text  # 26-31 October
    assert "Nov 2026 8 of 30 days" in text  # 1-8 November
    assert "days in the month ÷ days simulated" in text


# Hostile and long names ------------------------------------------------------------------------
HOSTILE = (
    '<script>alert("x")</script>/web',
    "shop/" + "a-very-long-service-name-" * 12,
    "店舗/ウェブ本番-東京",
    'q"uote/&amp;',
)


def test_hostile_names_are_escaped_everywhere() -> None:
    base = _sims()[0]
    sims = [dataclasses.replace(base, service=name) for name in HOSTILE]
    page = render_page(sims, title="<b>t</b>", range_label="<i>r</i>")
    checker = _parse(page)
    assert page.count("<script") == 1  # only the page's own
    assert "<b>t</b>" not in page and "<i>r</i>" not in page
    text = " ".join(checker.text)
    for name in HOSTILE:
        assert text.count(name) >= 2  # the overview row and the timeline's heading
    keys = [value for _, name, value in checker.attributes if name == "data-key"]
    assert keys == list(HOSTILE)  # attribute values come back exactly, quotes included
    names = [value for _, name, value in checker.attributes if name == "data-name"]
    assert names == [name.casefold() for name in HOSTILE]


def test_long_names_may_break_anywhere() -> None:
    """The CSS lets a name without spaces wrap (checked at 420 px in the browser test)."""
    page = render_page(_sims())
    for rule in (
        r"\.savings \.svc \{\{?[^}]*overflow-wrap: anywhere",
        r"h3 \{\{?[^}]*overflow-wrap: anywhere",
    ):
        assert re.search(rule, page), rule


# Japanese --------------------------------------------------------------------------------------
def test_japanese_page_translates_labels_and_holidays() -> None:
    page = render_page(_sims(), lang="ja")
    assert '<html lang="ja">' in page
    text = " ".join(_parse(page).text)
    for label in ("一覧", "月別の見込み", "稼働", "停止", "合計", "絞り込み"):
        assert label in text
    assert "文化の日（JP）" in text  # Tuesday 3 November 2026
    assert "Culture Day" not in text
    for english in ("Overview", "Monthly projection", "Running", "Total", "Saved with teiji"):
        assert english not in text
    assert re.search(r"火\s+11月3日", text)
    assert "オーバーライド: release <night> & checks（aiko）" in text


def test_company_calendars_keep_their_names_in_japanese() -> None:
    labels = {
        date(2027, 1, 1): "New Year's Day (JP)",
        date(2026, 12, 30): "company calendar 'office'",
        date(2026, 7, 4): "Independence Day (US)",
    }
    named = localized_holidays(labels, ("office", "JP", "US"), "ja")
    assert named[date(2027, 1, 1)] == "元日（JP）"
    assert named[date(2026, 12, 30)] == "company calendar 'office'"
    # The library has no Japanese for the United States: the English name stays.
    assert named[date(2026, 7, 4)] == "Independence Day (US)"
    assert localized_holidays(labels, ("office", "JP"), "en") is labels


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=300))
def test_any_service_name_reads_back_exactly(name: str) -> None:
    """Whatever a name holds (markup, quotes, scripts, any script of writing), the page stays
    well-formed, holds one script of its own, and the name comes back as written."""
    sim = dataclasses.replace(_SIM, service=name)
    page = render_page([sim])
    checker = _parse(page)
    assert page.count("<script") == 1
    keys = [value for _, attribute, value in checker.attributes if attribute == "data-key"]
    assert keys == [name]
    headings = page[page.index("<h3>") + 4 : page.index("</h3>")]
    assert html.unescape(headings) == name


_SIM = _sims()[0]
