"""The page's overview (pure): one row per service, one cell per day, the savings, a filter.

A day cell is split by the share of the day in each state (running, stopped, reduced, holiday,
override, unmanaged); a holiday has a mark on top. The small inline script sorts the rows by
savings or by name and hides the rows (and the service's timeline below) that the filter does
not match. It needs nothing from outside the page; without it the page reads the same, unsorted
and unfiltered. The address fragment ``#filter=web&sort=saved`` sets both when the page opens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from html import escape

from engine.simulate import ServiceSimulation, Totals
from engine.timeline_rows import Day
from engine.timeline_text import Lang, day_month, weekday, words

# The order day cells show their shares in; the DST gap and the outside of the range count
# for nothing.
_SHARE_ORDER = ("run", "ovr-run", "unm", "ovr-stop", "red", "hol", "stop")
_LEGEND_KEYS = {
    "run": "lg_run",
    "ovr-run": "lg_ovr-run",
    "unm": "lg_unm",
    "ovr-stop": "lg_ovr-stop",
    "red": "lg_red",
    "hol": "lg_hol",
    "stop": "lg_stop",
}


def day_shares(day: Day) -> list[tuple[str, float]]:
    """(css, share of the day's quarters) in display order, shares adding up to 1."""
    counts: Counter[str] = Counter()
    for run in day.runs:
        if run.css in _LEGEND_KEYS:
            counts[run.css] += run.quarters
    total = sum(counts.values())
    if not total:
        return []
    return [(css, counts[css] / total) for css in _SHARE_ORDER if counts[css]]


def overview(
    simulations: Sequence[ServiceSimulation],
    days_by_service: Sequence[Sequence[Day]],
    summary: Totals,
    *,
    lang: Lang,
    money: Callable[[float, str], str],
    hours: Callable[[float, Lang], str],
    pct: Callable[[float], str],
) -> str:
    said = words(lang)
    cur = summary.currency
    most_days = max((len(d) for d in days_by_service), default=0)
    gap = "1px" if most_days <= 62 else "0"
    head = (
        f"<tr><th>{said['o_service']}</th><th>{said['o_days']}</th>"
        f"<th class='n wide'>{said['o_running']}</th><th class='n wide'>{said['o_stopped']}</th>"
        f"<th class='n narrow-hide'>{said['o_off']}</th>"
        f"<th class='n wide'>{said['o_without']}</th><th class='n wide'>{said['o_with']}</th>"
        f"<th class='n'>{said['o_saved']}</th><th class='n narrow-hide'>{said['o_saved_pct']}</th>"
        "</tr>"
    )
    rows = []
    strips: dict[int, str] = {}  # services of one shape share their rows: one strip each
    for index, (sim, days) in enumerate(zip(simulations, days_by_service, strict=True)):
        cells = strips.get(id(days))
        if cells is None:
            cells = strips[id(days)] = "".join(_day_cell(day, lang) for day in days)
        strip = (
            f'<div class="strip" style="grid-template-columns:repeat({max(len(days), 1)},'
            f'minmax(0,1fr));gap:{gap}">{cells}</div>'
        )
        rows.append(
            f'<tr data-name="{escape(sim.service.casefold())}" data-key="{escape(sim.service)}" '
            f'data-saved="{sim.saved:.6f}" data-index="{index}">'
            f'<td class="svc"><a href="#svc-{index}">{escape(sim.service)}</a>'
            f'<span class="zone">{escape(sim.timezone)} · {escape(sim.region)}</span></td>'
            f'<td class="days">{strip}</td>'
            f"<td class='n wide'>{hours(sim.running_hours, lang)}</td>"
            f"<td class='n wide'>{hours(sim.stopped_hours, lang)}</td>"
            f"<td class='n narrow-hide'>{pct(sim.share_off)}</td>"
            f"<td class='n wide'>{escape(money(sim.cost_without, cur))}</td>"
            f"<td class='n wide'>{escape(money(sim.cost_with, cur))}</td>"
            f"<td class='n strong'>{escape(money(sim.saved, cur))}</td>"
            f"<td class='n narrow-hide'>{pct(sim.saved_share)}</td>"
            "</tr>"
        )
    total = (
        f"<tr class='total'><td>{said['total']}</td><td></td>"
        f"<td class='n wide'>{hours(summary.running_hours, lang)}</td>"
        f"<td class='n wide'>{hours(summary.stopped_hours, lang)}</td>"
        f"<td class='n narrow-hide'>{pct(summary.share_off)}</td>"
        f"<td class='n wide'>{escape(money(summary.cost_without, cur))}</td>"
        f"<td class='n wide'>{escape(money(summary.cost_with, cur))}</td>"
        f"<td class='n strong'>{escape(money(summary.saved, cur))}</td>"
        f"<td class='n narrow-hide'>{pct(summary.saved_share)}</td></tr>"
    )
    tools = (
        '<div class="tools">'
        f'<label>{said["filter_label"]} <input type="search" id="filter" autocomplete="off" '
        f'placeholder="{escape(said["filter_placeholder"])}"></label>'
        f'<span class="sorts">{said["sort"]}'
        f'<button type="button" data-sort="saved" aria-pressed="false">{said["sort_saved"]}'
        "</button>"
        f'<button type="button" data-sort="name" aria-pressed="true">{said["sort_name"]}'
        "</button></span></div>"
    )
    return (
        '<section class="card overview" id="overview">\n'
        f'<div class="ov-head"><h2>{said["overview"]}</h2>{tools}</div>\n'
        '<div class="table-wrap"><table class="savings" id="ov">'
        f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody><tfoot>{total}</tfoot>"
        "</table></div>\n"
        f'<p class="hint" id="none" hidden>{said["no_match"]}</p>\n'
        "</section>"
    )


def _day_cell(day: Day, lang: Lang) -> str:
    said = words(lang)
    shares = day_shares(day)
    parts = ", ".join(f"{said[_LEGEND_KEYS[css]]} {100 * share:.0f}%" for css, share in shares)
    label = f"{weekday(day.day, lang)} {day_month(day.day, lang)}"
    if day.holiday:
        label += f" ({day.holiday})"
    title = said["day_share"].format(day=label, parts=parts)
    inner = "".join(
        f'<i class="{css}" style="width:{100 * share:.2f}%"></i>' for css, share in shares
    )
    css = "d h" if day.holiday else "d"
    return f'<span class="{css}" title="{escape(title)}">{inner}</span>'


def used_classes(days_by_service: Sequence[Sequence[Day]]) -> set[str]:
    """Every state class the page draws (for a legend of those alone)."""
    found: set[str] = set()
    for days in days_by_service:
        for day in days:
            found.update(run.css for run in day.runs)
    return found


# Sorting and filtering. No "http", no url(): the page stays self-contained.
SCRIPT = """
(function () {
  var table = document.getElementById("ov");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var input = document.getElementById("filter");
  var none = document.getElementById("none");
  var list = document.getElementById("details");
  function detail(row) { return document.getElementById("svc-" + row.dataset.index); }
  function filter() {
    var q = input.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var hit = row.dataset.name.indexOf(q) >= 0;
      row.hidden = !hit;
      var d = detail(row);
      if (d) { d.hidden = !hit; }
      if (hit) { shown += 1; }
    });
    none.hidden = shown > 0;
  }
  function sort(by) {
    rows.sort(function (a, b) {
      if (by === "saved") {
        var d = parseFloat(b.dataset.saved) - parseFloat(a.dataset.saved);
        if (d !== 0) { return d; }
      }
      return a.dataset.key < b.dataset.key ? -1 : a.dataset.key > b.dataset.key ? 1 : 0;
    });
    rows.forEach(function (row) {
      body.appendChild(row);
      var d = detail(row);
      if (d && list) { list.appendChild(d); }
    });
    document.querySelectorAll("button[data-sort]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.sort === by ? "true" : "false");
    });
  }
  function openTarget() {
    var id;
    try { id = decodeURIComponent(location.hash.slice(1)); } catch (e) { return; }
    var target = id ? document.getElementById(id) : null;
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }
  input.addEventListener("input", filter);
  document.querySelectorAll("button[data-sort]").forEach(function (b) {
    b.addEventListener("click", function () { sort(b.dataset.sort); });
  });
  table.addEventListener("click", function (e) {
    var a = e.target.closest ? e.target.closest("a[href^='#svc-']") : null;
    var d = a ? document.getElementById(a.getAttribute("href").slice(1)) : null;
    if (d) { d.open = true; }
  });
  window.addEventListener("hashchange", openTarget);
  var params = new URLSearchParams(location.hash.slice(1));
  if (params.get("sort") === "saved" || params.get("sort") === "name") {
    sort(params.get("sort"));
  }
  if (params.has("filter")) { input.value = params.get("filter"); }
  filter();
  openTarget();
})();
"""
