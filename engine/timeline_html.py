"""The simulation as one self-contained HTML page (pure: data in, a string out).

Per service, a week-by-hour timeline: one row per local day of the range, one column per
quarter hour of the local day, coloured by what the tick will do; then the savings table.
Inline CSS only, no scripts, fonts or images from anywhere: the page opens offline, in mail
attachments and in locked-down browsers.

Days with a DST change keep 24 hour columns of local wall-clock time: the skipped hour is
hatched, and the repeated hour shows its first occurrence (its tooltip says so).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

import pytz

from engine.model import Segment
from engine.simulate import ServiceSimulation, Totals, totals

QUARTERS_PER_DAY = 96
_QUARTER = timedelta(minutes=15)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Colours, also read by the browser test: keep them in sync with the CSS below.
RUNNING_COLOUR = "#1f9d6b"
STOPPED_COLOUR = "#d8dee8"
HOLIDAY_COLOUR = "#f2a93b"
OVERRIDE_RUNNING_COLOUR = "#6d5dfc"
OVERRIDE_STOPPED_COLOUR = "#c4bdfd"
UNMANAGED_COLOUR = "#a3adba"

# class name -> legend label; the order is the legend's.
_LEGEND = (
    ("run", "Running"),
    ("stop", "Stopped"),
    ("hol", "Holiday (stopped)"),
    ("ovr-run", "Override: kept running"),
    ("ovr-stop", "Override: kept stopped"),
    ("unm", "Unmanaged (left alone)"),
    ("gap", "Hour skipped by DST"),
)


@dataclass(frozen=True, slots=True)
class _Run:
    """Consecutive quarter cells of one row that look and read the same."""

    css: str
    quarters: int
    first: int  # quarter index in the row where the run starts
    title: str


@dataclass(frozen=True, slots=True)
class _Day:
    day: date
    runs: tuple[_Run, ...]
    holiday: str | None
    hours: int  # 23, 24 or 25 on DST days


def render_page(
    simulations: Sequence[ServiceSimulation],
    *,
    title: str = "Schedule simulation",
    range_label: str = "",
    price_note: str = "",
    generated: str = "",
) -> str:
    """The whole page: headline figures, the savings table, a legend and one timeline per
    service. Day labels name the holidays in ``ServiceSimulation.holidays``."""
    summary = totals(simulations)
    rows_cache: dict[tuple[str, tuple[Segment, ...]], tuple[_Day, ...]] = {}
    sections = []
    for index, sim in enumerate(simulations):
        key = (sim.timezone, sim.segments)
        days = rows_cache.get(key)
        if days is None:
            days = rows_cache[key] = tuple(day_rows(sim.segments, sim.timezone))
        if sim.holidays:
            days = tuple(_Day(d.day, d.runs, sim.holidays.get(d.day), d.hours) for d in days)
        sections.append(_service_section(sim, days, index))
    currency = summary.currency
    body = "\n".join(
        [
            _header(title, range_label, price_note, generated),
            _kpis(summary),
            _savings_table(simulations, summary, currency),
            _legend(),
            *sections,
            _footer(price_note, generated),
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f'<body>\n<main class="page">\n{body}\n</main>\n</body>\n</html>\n'
    )


# Rows ------------------------------------------------------------------------------------------
def day_rows(segments: Sequence[Segment], zone: str) -> list[_Day]:
    """One row per local date touched by the segments, 96 quarter cells each, run-length coded."""
    if not segments:
        return []
    tz = pytz.timezone(zone)
    starts = [s.start for s in segments]
    first_day = segments[0].start.astimezone(tz).date()
    last_day = (segments[-1].end - timedelta(microseconds=1)).astimezone(tz).date()
    range_start, range_end = segments[0].start, segments[-1].end
    rows: list[_Day] = []
    day = first_day
    while day <= last_day:
        cells = _cells(tz, day)
        runs: list[_Run] = []
        for q, (instant, repeated) in enumerate(cells):
            if instant is None:
                css, text = "gap", "this local time does not exist (DST starts)"
            elif not range_start <= instant < range_end:
                css, text = "out", "outside the simulated range"
            else:
                segment = segments[bisect.bisect_right(starts, instant) - 1]
                css, text = _css_for(segment), _describe(segment)
                if repeated:
                    text += " (this hour happens twice today, DST ends; the first is shown)"
            _extend(runs, css, q, text)
        rows.append(
            _Day(
                day=day,
                runs=tuple(_titled(r, day) for r in runs),
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


def _css_for(segment: Segment) -> str:
    if segment.source == "override":
        return "ovr-run" if segment.state == "running" else "ovr-stop"
    if segment.state == "unmanaged":
        return "unm"
    if segment.state == "running":
        return "run"
    return "hol" if segment.source == "holiday" or segment.holiday else "stop"


_STATE_WORDS = {"running": "running", "stopped": "stopped", "unmanaged": "unmanaged"}


def _describe(segment: Segment) -> str:
    words = _STATE_WORDS[segment.state]
    extra = f" — {segment.reason}" if segment.reason else ""
    if segment.holiday and segment.holiday not in segment.reason:
        extra += f" ({segment.holiday})"
    return f"{words}{extra}"


def _extend(runs: list[_Run], css: str, quarter: int, text: str) -> None:
    if runs and runs[-1].css == css and runs[-1].title == text:
        last = runs[-1]
        runs[-1] = _Run(css, last.quarters + 1, last.first, text)
    else:
        runs.append(_Run(css, 1, quarter, text))


def _titled(run: _Run, day: date) -> _Run:
    """Prefix the tooltip with the day and local times the run covers."""
    label = f"{_WEEKDAYS[day.weekday()]} {day.isoformat()} {_hhmm(run.first)}–"
    label += _hhmm(run.first + run.quarters)
    return _Run(run.css, run.quarters, run.first, f"{label}: {run.title}")


def _hhmm(quarter: int) -> str:
    return f"{quarter // 4:02d}:{quarter % 4 * 15:02d}"


# Page parts ------------------------------------------------------------------------------------
def _header(title: str, range_label: str, price_note: str, generated: str) -> str:
    sub = " · ".join(escape(p) for p in (range_label,) if p)
    return (
        '<header class="hero">\n'
        '<div class="brand"><span class="mark">定時</span><span class="name">teiji</span></div>\n'
        f"<h1>{escape(title)}</h1>\n" + (f'<p class="sub">{sub}</p>\n' if sub else "") + "</header>"
    )


def _kpis(summary: Totals) -> str:
    cur = summary.currency
    saved_pct = _pct(summary.saved_share)
    with_width = 100 * summary.cost_with / summary.cost_without if summary.cost_without else 100.0
    cards = [
        ("kpi accent", "Saved with teiji", _money(summary.saved, cur), f"{saved_pct} of the bill"),
        ("kpi", "Cost without teiji", _money(summary.cost_without, cur), "running all the time"),
        ("kpi", "Cost with teiji", _money(summary.cost_with, cur), "as scheduled"),
        (
            "kpi",
            "Time off",
            _pct(summary.share_off),
            f"{_hours(summary.stopped_hours)} of {_hours(summary.total_hours)} stopped",
        ),
        ("kpi", "Services", str(summary.services), "simulated"),
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
        '<section class="compare" aria-label="cost with and without teiji">'
        '<div class="cmp-row"><span class="cmp-label">Without teiji</span>'
        '<span class="cmp-track"><span class="cmp-bar without" style="width:100%"></span></span>'
        f'<span class="cmp-value">{escape(_money(summary.cost_without, cur))}</span></div>'
        '<div class="cmp-row"><span class="cmp-label">With teiji</span>'
        f'<span class="cmp-track"><span class="cmp-bar with" style="width:{with_width:.2f}%">'
        "</span></span>"
        f'<span class="cmp-value">{escape(_money(summary.cost_with, cur))}</span></div>'
        "</section>"
    )
    return "\n".join(html)


def _savings_table(simulations: Sequence[ServiceSimulation], summary: Totals, currency: str) -> str:
    head = (
        "<tr><th>Service</th><th class='n'>Running h</th>"
        "<th class='n'>Stopped h</th><th>Off</th><th class='n'>Cost without</th>"
        "<th class='n'>Cost with</th><th class='n'>Saved</th><th class='n'>Saved %</th></tr>"
    )
    rows = []
    for index, sim in enumerate(simulations):
        rows.append(
            "<tr>"
            f'<td class="svc"><a href="#svc-{index}">{escape(sim.service)}</a>'
            f'<span class="zone">{escape(sim.timezone)} · {escape(sim.region)}</span></td>'
            f"<td class='n'>{_hours(sim.running_hours)}</td>"
            f"<td class='n'>{_hours(sim.stopped_hours)}</td>"
            f"<td>{_share_bar(sim.share_off)}</td>"
            f"<td class='n'>{escape(_money(sim.cost_without, currency))}</td>"
            f"<td class='n'>{escape(_money(sim.cost_with, currency))}</td>"
            f"<td class='n strong'>{escape(_money(sim.saved, currency))}</td>"
            f"<td class='n'>{_pct(sim.saved_share)}</td>"
            "</tr>"
        )
    total = (
        "<tr class='total'><td>Total</td>"
        f"<td class='n'>{_hours(summary.running_hours)}</td>"
        f"<td class='n'>{_hours(summary.stopped_hours)}</td>"
        f"<td>{_share_bar(summary.share_off)}</td>"
        f"<td class='n'>{escape(_money(summary.cost_without, currency))}</td>"
        f"<td class='n'>{escape(_money(summary.cost_with, currency))}</td>"
        f"<td class='n strong'>{escape(_money(summary.saved, currency))}</td>"
        f"<td class='n'>{_pct(summary.saved_share)}</td></tr>"
    )
    return (
        '<section class="card"><h2>Savings</h2>\n<div class="table-wrap"><table class="savings">'
        f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody><tfoot>{total}</tfoot>"
        "</table></div></section>"
    )


def _share_bar(share: float) -> str:
    return (
        f'<span class="share"><span class="share-track"><span class="share-fill" '
        f'style="width:{100 * share:.1f}%"></span></span>{_pct(share)}</span>'
    )


def _legend() -> str:
    items = "".join(
        f'<span class="legend-item"><span class="swatch {css}"></span>{escape(label)}</span>'
        for css, label in _LEGEND
    )
    return f'<nav class="legend" aria-label="legend">{items}</nav>'


def _service_section(sim: ServiceSimulation, days: Sequence[_Day], index: int) -> str:
    cur = sim.prices.currency
    facts = [
        f"{escape(sim.timezone)}",
        f"{escape(sim.region)}",
        f"{sim.tasks_running} task{'s' if sim.tasks_running != 1 else ''} × "
        f"{escape(sim.size.describe())}",
    ]
    if sim.tasks_stopped:
        facts.append(f"{sim.tasks_stopped} while stopped")
    stats = (
        '<div class="stats">'
        f"<div><b>{_hours(sim.running_hours)}</b><span>running</span></div>"
        f"<div><b>{_hours(sim.stopped_hours)}</b><span>stopped</span></div>"
        f"<div><b>{_pct(sim.share_off)}</b><span>off</span></div>"
        f'<div class="good"><b>{escape(_money(sim.saved, cur))}</b>'
        f"<span>saved ({_pct(sim.saved_share)})</span></div>"
        "</div>"
    )
    return (
        f'<section class="card service" id="svc-{index}">\n'
        '<div class="service-head"><div>'
        f"<h2>{escape(sim.service)}</h2>"
        f'<p class="facts">{" · ".join(facts)}</p></div>{stats}</div>\n'
        f'<div class="timeline">{_axis()}{"".join(_day_html(d) for d in days)}</div>\n'
        "</section>"
    )


def _axis() -> str:
    labels = "".join(
        f'<span class="{"major" if hour % 6 == 0 else ""}">{hour:02d}</span>' for hour in range(24)
    )
    return f'<div class="row axis"><div class="label"></div><div class="hours">{labels}</div></div>'


def _day_html(day: _Day) -> str:
    weekday = day.day.weekday()
    classes = ["row"]
    if weekday >= 5:
        classes.append("weekend")
    if weekday == 0:
        classes.append("monday")
    if day.holiday:
        classes.append("holiday")
    dst = ""
    if day.hours != 24:
        dst = f'<span class="dst">{day.hours} h day (DST)</span>'
    holiday = f'<span class="hname">{escape(day.holiday)}</span>' if day.holiday else ""
    label = (
        f'<div class="label"><span class="dname"><b>{_WEEKDAYS[weekday]}</b> '
        f"{day.day.day} {_MONTHS[day.day.month - 1]}</span>{holiday}{dst}</div>"
    )
    runs = "".join(
        f'<span class="c {run.css}" style="grid-column:{run.first + 1} / span {run.quarters}" '
        f'title="{escape(run.title)}"></span>'
        for run in day.runs
    )
    return f'<div class="{" ".join(classes)}">{label}<div class="bar">{runs}</div></div>'


def _footer(price_note: str, generated: str) -> str:
    parts = [
        "Times are local to each service's zone; changes take effect at the next 15-minute tick."
    ]
    if price_note:
        parts.append(f"Prices: {price_note}.")
    parts.append("Cost counts Fargate vCPU and memory only.")
    if generated:
        parts.append(f"Generated {generated} by teiji simulate.")
    return f'<footer class="foot">{" ".join(escape(p) for p in parts)}</footer>'


# Formatting ------------------------------------------------------------------------------------
def _money(value: float, currency: str) -> str:
    sign = "−" if value < -0.004 else ""
    amount = f"{abs(value):,.2f}"
    return f"{sign}${amount}" if currency == "USD" else f"{sign}{amount} {currency}"


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _hours(value: float) -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} h"


_CSS = f"""
:root {{
  --run: {RUNNING_COLOUR}; --stop: {STOPPED_COLOUR}; --hol: {HOLIDAY_COLOUR};
  --ovr-run: {OVERRIDE_RUNNING_COLOUR}; --ovr-stop: {OVERRIDE_STOPPED_COLOUR};
  --unm: {UNMANAGED_COLOUR};
  --ink: #1b2330; --muted: #647084; --line: #e6e9ef; --bg: #f4f6f9; --card: #ffffff;
  --accent: #0f7b55;
}}
* {{ box-sizing: border-box; }}
html {{ background: var(--bg); }}
body {{
  margin: 0; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK JP",
    "Hiragino Sans", "Helvetica Neue", Arial, sans-serif;
  -webkit-font-smoothing: antialiased;
}}
.page {{ max-width: 1320px; margin: 0 auto; padding: 28px 28px 48px; }}
.hero {{ display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 18px;
  margin-bottom: 20px; }}
.brand {{ display: flex; align-items: baseline; gap: 8px; }}
.mark {{ font-size: 22px; font-weight: 700; color: var(--accent); letter-spacing: .04em; }}
.name {{ font-size: 13px; font-weight: 600; color: var(--muted); text-transform: uppercase;
  letter-spacing: .14em; }}
h1 {{ font-size: 22px; margin: 0; font-weight: 650; letter-spacing: -.01em; }}
.sub {{ flex-basis: 100%; margin: 0; color: var(--muted); }}
h2 {{ font-size: 16px; margin: 0 0 4px; font-weight: 650; }}
.kpis {{ display: grid; grid-template-columns: 1.4fr repeat(4, 1fr); gap: 14px;
  margin-bottom: 14px; }}
.kpi {{ background: var(--card); border: 1px solid var(--line); border-radius: 14px;
  padding: 14px 16px; box-shadow: 0 1px 2px rgba(16, 24, 40, .04); }}
.kpi-label {{ font-size: 12px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .06em; }}
.kpi-value {{ font-size: 26px; font-weight: 700; margin-top: 4px;
  font-variant-numeric: tabular-nums; }}
.kpi-note {{ font-size: 12px; color: var(--muted); }}
.kpi.accent {{ background: linear-gradient(135deg, #11845b, #1fa874); border: 0; color: #fff; }}
.kpi.accent .kpi-label, .kpi.accent .kpi-note {{ color: rgba(255, 255, 255, .85); }}
.kpi.accent .kpi-value {{ font-size: 32px; }}
.compare {{ background: var(--card); border: 1px solid var(--line); border-radius: 14px;
  padding: 12px 16px; margin-bottom: 14px; display: grid; gap: 8px; }}
.cmp-row {{ display: grid; grid-template-columns: 120px 1fr 110px; align-items: center;
  gap: 12px; }}
.cmp-label {{ color: var(--muted); font-size: 13px; }}
.cmp-track {{ height: 14px; background: #eef1f5; border-radius: 7px; overflow: hidden; }}
.cmp-bar {{ display: block; height: 100%; border-radius: 7px; }}
.cmp-bar.without {{ background: #aab4c3; }}
.cmp-bar.with {{ background: var(--run); }}
.cmp-value {{ text-align: right; font-weight: 600; font-variant-numeric: tabular-nums; }}
.card {{ background: var(--card); border: 1px solid var(--line); border-radius: 14px;
  padding: 16px 18px; margin-bottom: 14px; box-shadow: 0 1px 2px rgba(16, 24, 40, .04); }}
.table-wrap {{ overflow-x: auto; }}
table.savings {{ width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }}
.savings th {{ text-align: left; font-size: 12px; color: var(--muted); font-weight: 600;
  text-transform: uppercase; letter-spacing: .05em; padding: 8px 10px; white-space: nowrap;
  border-bottom: 1px solid var(--line); }}
.savings td {{ padding: 8px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }}
.savings .n {{ text-align: right; }}
.savings .strong {{ color: var(--accent); font-weight: 650; }}
.savings tfoot td {{ font-weight: 700; border-bottom: 0; border-top: 2px solid var(--ink); }}
.savings a {{ color: var(--ink); text-decoration: none; font-weight: 600; }}
.savings a:hover {{ text-decoration: underline; }}
.savings .svc {{ white-space: normal; overflow-wrap: anywhere; }}
.savings .zone {{ display: block; font-size: 11.5px; color: var(--muted); }}
.share {{ display: inline-flex; align-items: center; gap: 8px; }}
.share-track {{ width: 90px; height: 8px; background: var(--run); border-radius: 4px;
  overflow: hidden; display: inline-block; }}
.share-fill {{ display: block; height: 100%; background: var(--stop); }}
.legend {{ position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 8px 18px;
  padding: 10px 16px; margin-bottom: 14px; background: rgba(255, 255, 255, .94);
  border: 1px solid var(--line); border-radius: 12px; font-size: 13px; color: var(--ink);
  backdrop-filter: blur(6px); }}
.legend-item {{ display: inline-flex; align-items: center; gap: 7px; }}
.swatch {{ width: 22px; height: 12px; border-radius: 3px; display: inline-block; }}
.service-head {{ display: flex; justify-content: space-between; align-items: flex-start; gap: 16px;
  margin-bottom: 12px; flex-wrap: wrap; }}
.facts {{ margin: 0; color: var(--muted); font-size: 13px; }}
.stats {{ display: flex; gap: 22px; }}
.stats div {{ display: flex; flex-direction: column; align-items: flex-end; }}
.stats b {{ font-size: 18px; font-variant-numeric: tabular-nums; }}
.stats span {{ font-size: 12px; color: var(--muted); }}
.stats .good b {{ color: var(--accent); }}
.timeline {{ display: grid; gap: 3px; }}
.row {{ display: grid; grid-template-columns: 280px 1fr; align-items: center; gap: 10px; }}
.row.monday:not(:nth-child(2)) {{ margin-top: 8px; }}
.label {{ font-size: 12.5px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  display: flex; align-items: baseline; gap: 6px; }}
.dname b {{ font-weight: 650; display: inline-block; width: 30px; }}
.weekend .dname {{ color: var(--muted); }}
.hname {{ color: #b06d05; font-size: 11px; font-weight: 600; overflow: hidden;
  text-overflow: ellipsis; }}
.dst {{ color: #7a5af8; font-size: 11px; font-weight: 600; }}
.bar {{ position: relative; display: grid; grid-template-columns: repeat(96, 1fr); height: 20px;
  border-radius: 5px; overflow: hidden; background: #f7f8fa; }}
.bar::after {{ content: ""; position: absolute; inset: 0; pointer-events: none;
  background-image:
    linear-gradient(to right, rgba(255, 255, 255, .9) 1.5px, transparent 1.5px),
    linear-gradient(to right, rgba(255, 255, 255, .45) 1px, transparent 1px);
  background-size: calc(100% / 4) 100%, calc(100% / 24) 100%; }}
.c {{ display: block; height: 100%; }}
.run, .swatch.run {{ background: var(--run); }}
.stop, .swatch.stop {{ background: var(--stop); }}
.hol, .swatch.hol {{ background: var(--hol); }}
.ovr-run, .swatch.ovr-run {{ background: var(--ovr-run); }}
.ovr-stop, .swatch.ovr-stop {{ background: var(--ovr-stop); }}
.unm, .swatch.unm {{
  background: repeating-linear-gradient(135deg, var(--unm) 0 3px, #c9d0d9 3px 8px); }}
.gap, .swatch.gap {{
  background: repeating-linear-gradient(135deg, #ffffff 0 3px, #e3e6eb 3px 6px); }}
.out {{ background: transparent; }}
.axis .hours {{ display: grid; grid-template-columns: repeat(24, 1fr); font-size: 11px;
  color: var(--muted); font-variant-numeric: tabular-nums; }}
.axis .hours span {{ padding-left: 2px; border-left: 1px solid var(--line); }}
.axis .hours span.major {{ color: var(--ink); font-weight: 600; border-left-color: #c5ccd6; }}
.foot {{ color: var(--muted); font-size: 12px; margin-top: 18px; }}
@media (max-width: 900px) {{
  .kpis {{ grid-template-columns: 1fr 1fr; }}
  .row {{ grid-template-columns: 110px 1fr; }}
  .stats {{ gap: 12px; }}
}}
@media print {{
  html {{ background: #fff; }}
  .legend {{ position: static; }}
  .card, .kpi, .compare {{ box-shadow: none; break-inside: avoid; }}
  * {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
}}
"""
