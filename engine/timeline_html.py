"""The simulation as one self-contained HTML page (pure: data in, a string out).

Top to bottom: headline figures, the monthly projection, the overview (one row per service, one
cell per day, its savings; sortable and filtered by a small inline script), a legend of the
states the page draws, and per service a week-by-hour timeline (one row per local day, one
column per quarter hour, coloured by what the tick will do). For more than a few services the
timelines start collapsed (``<details>``), so a fleet's page opens as its overview.

Inline CSS and one inline script only, no fonts, images or files from anywhere: the page opens
offline, from a file, in mail attachments and in locked-down browsers (without the script it
reads the same, unsorted and unfiltered). Rows: ``engine.timeline_rows``; the overview:
``engine.timeline_overview``; the words in English and Japanese: ``engine.timeline_text``.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from engine.model import Segment
from engine.projection import MonthProjection, monthly_projection
from engine.simulate import ServiceSimulation, Totals, totals
from engine.timeline_css import (
    CSS,
    HOLIDAY_COLOUR,
    OVERRIDE_RUNNING_COLOUR,
    OVERRIDE_STOPPED_COLOUR,
    REDUCED_STRIPE_COLOUR,
    RUNNING_COLOUR,
    STOPPED_COLOUR,
    UNMANAGED_COLOUR,
)
from engine.timeline_overview import SCRIPT, overview, used_classes
from engine.timeline_rows import QUARTERS_PER_DAY, Day, Run, day_rows
from engine.timeline_text import Lang, day_month, localized_holidays, month_name, weekday, words

__all__ = [
    "HOLIDAY_COLOUR",
    "OPEN_UP_TO",
    "OVERRIDE_RUNNING_COLOUR",
    "OVERRIDE_STOPPED_COLOUR",
    "QUARTERS_PER_DAY",
    "REDUCED_STRIPE_COLOUR",
    "RUNNING_COLOUR",
    "STOPPED_COLOUR",
    "UNMANAGED_COLOUR",
    "day_rows",
    "render_page",
]

# Up to this many services, every timeline starts open; above it, all start collapsed.
OPEN_UP_TO = 3

# Legend order; only the classes the page draws are listed.
_LEGEND = ("run", "stop", "red", "hol", "ovr-run", "ovr-stop", "unm", "gap")


def render_page(
    simulations: Sequence[ServiceSimulation],
    *,
    title: str = "",
    range_label: str = "",
    price_note: str = "",
    generated: str = "",
    lang: Lang = "en",
) -> str:
    """The whole page in ``lang`` (``en`` or ``ja``). Day labels name the holidays in
    ``ServiceSimulation.holidays``, national ones in ``lang`` where the library has it."""
    said = words(lang)
    title = title or said["title"]
    summary = totals(simulations)
    rows_cache: dict[tuple[str, tuple[Segment, ...], int], tuple[Day, ...]] = {}
    # Services of one shape share their rows and, with the same calendars, their named days.
    named_cache: dict[tuple[int, int, tuple[str, ...]], tuple[Day, ...]] = {}
    all_days: list[tuple[Day, ...]] = []
    for sim in simulations:
        key = (sim.timezone, sim.segments, sim.tasks_stopped)
        days = rows_cache.get(key)
        if days is None:
            days = rows_cache[key] = tuple(
                day_rows(sim.segments, sim.timezone, lang=lang, reduced=sim.tasks_stopped)
            )
        if sim.holidays:
            named_key = (id(days), id(sim.holidays), sim.calendars)
            plain, days = days, named_cache.get(named_key, ())
            if not days:
                named = localized_holidays(sim.holidays, sim.calendars, lang)
                days = tuple(Day(d.day, d.runs, named.get(d.day), d.hours) for d in plain)
                named_cache[named_key] = days
        all_days.append(days)
    open_all = len(simulations) <= OPEN_UP_TO
    sections = [
        _service_section(sim, days, index, lang, open_all)
        for index, (sim, days) in enumerate(zip(simulations, all_days, strict=True))
    ]
    body = "\n".join(
        [
            _header(title, range_label),
            _kpis(summary, lang),
            _months(monthly_projection(simulations), lang),
            _legend(used_classes(all_days), lang),
            overview(
                simulations, all_days, summary, lang=lang, money=_money, hours=_hours, pct=_pct
            ),
            f'<h2 class="section-title">{said["details"]}</h2>'
            + ("" if open_all else f'<p class="hint">{said["details_hint"]}</p>'),
            '<div id="details">',
            *sections,
            "</div>",
            _footer(price_note, generated, lang),
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f'<body>\n<main class="page">\n{body}\n</main>\n<script>{SCRIPT}</script>\n'
        "</body>\n</html>\n"
    )


# Page parts ------------------------------------------------------------------------------------
def _header(title: str, range_label: str) -> str:
    sub = escape(range_label)
    return (
        '<header class="hero">\n'
        '<div class="brand"><span class="mark">定時</span><span class="name">teiji</span></div>\n'
        f"<h1>{escape(title)}</h1>\n" + (f'<p class="sub">{sub}</p>\n' if sub else "") + "</header>"
    )


def _kpis(summary: Totals, lang: Lang) -> str:
    said = words(lang)
    cur = summary.currency
    with_width = 100 * summary.cost_with / summary.cost_without if summary.cost_without else 100.0
    off_note = said["kpi_off_note"].format(
        stopped=_hours(summary.stopped_hours, lang), total=_hours(summary.total_hours, lang)
    )
    cards = [
        (
            "kpi accent",
            said["kpi_saved"],
            _money(summary.saved, cur),
            said["kpi_saved_note"].format(pct=_pct(summary.saved_share)),
        ),
        ("kpi", said["kpi_without"], _money(summary.cost_without, cur), said["kpi_without_note"]),
        ("kpi", said["kpi_with"], _money(summary.cost_with, cur), said["kpi_with_note"]),
        ("kpi", said["kpi_off"], _pct(summary.share_off), off_note),
        ("kpi", said["kpi_services"], str(summary.services), said["kpi_services_note"]),
    ]
    html = ['<section class="kpis">']
    for css, label, value, note in cards:
        html.append(
            f'<div class="{css}"><div class="kpi-label">{escape(label)}</div>'
            f'<div class="kpi-value">{escape(value)}</div>'
            f'<div class="kpi-note">{escape(note)}</div></div>'
        )
    html.append("</section>")
    html.append(
        f'<section class="compare" aria-label="{escape(said["cmp_aria"])}">'
        f'<div class="cmp-row"><span class="cmp-label">{said["cmp_without"]}</span>'
        '<span class="cmp-track"><span class="cmp-bar without" style="width:100%"></span></span>'
        f'<span class="cmp-value">{escape(_money(summary.cost_without, cur))}</span></div>'
        f'<div class="cmp-row"><span class="cmp-label">{said["cmp_with"]}</span>'
        f'<span class="cmp-track"><span class="cmp-bar with" style="width:{with_width:.2f}%">'
        "</span></span>"
        f'<span class="cmp-value">{escape(_money(summary.cost_with, cur))}</span></div>'
        "</section>"
    )
    return "\n".join(html)


def _months(months: Sequence[MonthProjection], lang: Lang) -> str:
    """The monthly projection: each calendar month scaled from the days simulated in it."""
    said = words(lang)
    if not months:
        return ""
    head = (
        f"<tr><th>{said['m_month']}</th><th>{said['m_from']}</th>"
        f"<th class='n'>{said['m_task_hours']}</th><th class='n wide'>{said['m_without']}</th>"
        f"<th class='n'>{said['m_saved']}</th><th class='n wide'>{said['m_saved_sim']}</th></tr>"
    )
    rows = "".join(
        "<tr>"
        f"<td>{escape(month_name(m.month, lang))}</td>"
        f"<td>{said['m_from_days'].format(n=m.days_simulated, m=m.days_in_month)}</td>"
        f"<td class='n'>{_hours(m.projected_stopped_task_hours, lang)}</td>"
        f"<td class='n wide'>{escape(_money(m.projected_cost_without, m.currency))}</td>"
        f"<td class='n strong'>{escape(_money(m.projected_saved, m.currency))}</td>"
        f"<td class='n wide'>{escape(_money(m.saved, m.currency))}</td>"
        "</tr>"
        for m in months
    )
    return (
        f'<section class="card months" id="months"><h2>{said["months"]}</h2>\n'
        f'<p class="rule">{escape(said["months_rule"])}</p>\n'
        '<div class="table-wrap"><table class="savings">'
        f"<thead>{head}</thead><tbody>{rows}</tbody></table></div></section>"
    )


def _legend(used: set[str], lang: Lang) -> str:
    said = words(lang)
    items = "".join(
        f'<span class="legend-item"><span class="swatch {css}"></span>'
        f"{escape(said['lg_' + css])}</span>"
        for css in _LEGEND
        if css in used
    )
    return f'<nav class="legend" aria-label="{escape(said["legend_aria"])}">{items}</nav>'


def _service_section(
    sim: ServiceSimulation, days: Sequence[Day], index: int, lang: Lang, is_open: bool
) -> str:
    said = words(lang)
    cur = sim.prices.currency
    tasks = said["tasks" if sim.tasks_running == 1 else "tasks_many"].format(
        n=sim.tasks_running, size=sim.size.describe()
    )
    facts = [escape(sim.timezone), escape(sim.region), escape(tasks)]
    if sim.tasks_stopped:
        facts.append(escape(said["while_stopped"].format(n=sim.tasks_stopped)))
    origin = origin_fact(sim, lang)
    if origin:
        facts.append(origin)
    saved = said["st_saved"].format(pct=_pct(sim.saved_share))
    stats = (
        '<div class="stats">'
        f"<div><b>{_hours(sim.running_hours, lang)}</b><span>{said['st_running']}</span></div>"
        f"<div><b>{_hours(sim.stopped_hours, lang)}</b><span>{said['st_stopped']}</span></div>"
        f"<div><b>{_pct(sim.share_off)}</b><span>{said['st_off']}</span></div>"
        f'<div class="good"><b>{escape(_money(sim.saved, cur))}</b>'
        f"<span>{escape(saved)}</span></div>"
        "</div>"
    )
    opened = " open" if is_open else ""
    return (
        f'<details class="card service" id="svc-{index}"{opened}>\n'
        '<summary class="service-head">'
        f"<h3>{escape(sim.service)}</h3>"
        f'<span class="facts">{" · ".join(facts)}</span>{stats}</summary>\n'
        f'<div class="timeline">{_axis()}{"".join(_day_html(d, lang) for d in days)}</div>\n'
        "</details>"
    )


def origin_fact(sim: ServiceSimulation, lang: Lang) -> str:
    """The profile that decided the service, by its document or by its tag, and the fields
    the schedule set itself; the fields taken from the profile in the tooltip. Empty for a
    schedule written out in its own document."""
    profile = sim.origin.get("profile")
    if profile is None:
        return ""
    said = words(lang)

    def names(key: str) -> str:
        found = sim.origin.get(key)
        listed = [str(n) for n in found] if isinstance(found, list) else []
        return ", ".join(listed) or said["nothing"]

    if sim.origin.get("from") == "tag":
        text = said["profile_tag"].format(name=profile)
    else:
        text = said["profile_doc"].format(name=profile, own=names("own_fields"))
    title = said["profile_fields"].format(fields=names("profile_fields"))
    return f'<span class="origin" title="{escape(title)}">{escape(text)}</span>'


def _axis() -> str:
    labels = "".join(
        f'<span class="{"major third" if hour % 6 == 0 else "third" if hour % 3 == 0 else ""}">'
        f"{hour:02d}</span>"
        for hour in range(24)
    )
    return f'<div class="row axis"><div class="label"></div><div class="hours">{labels}</div></div>'


def _day_html(day: Day, lang: Lang) -> str:
    said = words(lang)
    number = day.day.weekday()
    classes = ["row"]
    if number >= 5:
        classes.append("weekend")
    if number == 0:
        classes.append("monday")
    if day.holiday:
        classes.append("holiday")
    dst = ""
    if day.hours != 24:
        dst = f'<span class="dst">{escape(said["dst_day"].format(h=day.hours))}</span>'
    holiday = f'<span class="hname">{escape(day.holiday)}</span>' if day.holiday else ""
    label = (
        f'<div class="label"><span class="dname"><b>{weekday(day.day, lang)}</b> '
        f"{day_month(day.day, lang)}</span>{holiday}{dst}</div>"
    )
    runs = "".join(
        f'<span class="c {run.css}" style="grid-column:{run.first + 1} / span {run.quarters}" '
        f'title="{escape(run.title)}"></span>'
        for run in day.runs
    )
    labels = "".join(_label_html(run) for run in day.runs if run.label)
    return f'<div class="{" ".join(classes)}">{label}<div class="bar">{runs}{labels}</div></div>'


def _label_html(run: Run) -> str:
    """An override's words on the bar, from its start rightwards (or, for one starting in the
    second half of the day, from its end leftwards), over the neighbouring hours when the
    override is shorter than its words; the bar's ends cut it with an ellipsis."""
    if run.first < QUARTERS_PER_DAY // 2:
        left = 100 * run.first / QUARTERS_PER_DAY
        place = f"left:{left:.3f}%;max-width:{100 - left:.3f}%"
    else:
        right = 100 * (QUARTERS_PER_DAY - run.first - run.quarters) / QUARTERS_PER_DAY
        place = f"right:{right:.3f}%;max-width:{100 - right:.3f}%"
    return f'<span class="olabel {run.css}-label" style="{place}">{escape(run.label)}</span>'


def _footer(price_note: str, generated: str, lang: Lang) -> str:
    said = words(lang)
    parts = [said["foot_local"]]
    if price_note:
        parts.append(said["foot_prices"].format(note=price_note))
    parts.append(said["foot_cost"])
    if generated:
        parts.append(said["foot_generated"].format(at=generated))
    return f'<footer class="foot">{" ".join(escape(p) for p in parts)}</footer>'


# Formatting ------------------------------------------------------------------------------------
def _money(value: float, currency: str) -> str:
    sign = "−" if value < -0.004 else ""
    amount = f"{abs(value):,.2f}"
    return f"{sign}${amount}" if currency == "USD" else f"{sign}{amount} {currency}"


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _hours(value: float, lang: Lang = "en") -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return words(lang)["hours"].format(h=text)
