"""The timeline page's style sheet (inline in the page: no fonts, images or files from anywhere).

The colours are read by the browser test too; patterns (stripes) tell the states apart
without colour: reduced time is striped one way, unmanaged time the other, the DST gap finely.
"""

from __future__ import annotations

# Colours, also read by the browser test: keep them in sync with the CSS below.
RUNNING_COLOUR = "#1f9d6b"
STOPPED_COLOUR = "#d8dee8"
HOLIDAY_COLOUR = "#f2a93b"
OVERRIDE_RUNNING_COLOUR = "#6d5dfc"
OVERRIDE_STOPPED_COLOUR = "#c4bdfd"
UNMANAGED_COLOUR = "#a3adba"

REDUCED_STRIPE_COLOUR = "#8fd3b6"

CSS = f"""
:root {{
  --run: {RUNNING_COLOUR}; --stop: {STOPPED_COLOUR}; --hol: {HOLIDAY_COLOUR};
  --ovr-run: {OVERRIDE_RUNNING_COLOUR}; --ovr-stop: {OVERRIDE_STOPPED_COLOUR};
  --unm: {UNMANAGED_COLOUR}; --red-stripe: {REDUCED_STRIPE_COLOUR};
  --ink: #1b2330; --muted: #647084; --line: #e6e9ef; --bg: #f4f6f9; --card: #ffffff;
  --accent: #0f7b55;
}}
* {{ box-sizing: border-box; }}
[hidden] {{ display: none !important; }}
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
.kpis {{ display: grid; grid-template-columns: minmax(0, 1.4fr) repeat(4, minmax(0, 1fr));
  gap: 14px; margin-bottom: 14px; }}
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
.cmp-row {{ display: grid; grid-template-columns: 120px minmax(0, 1fr) 110px; align-items: center;
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
.savings .svc {{ white-space: normal; overflow-wrap: anywhere; min-width: 15em; max-width: 24em; }}
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
details.service {{ padding: 10px 18px; margin-bottom: 8px; }}
details.service > summary {{ cursor: pointer; list-style: none; }}
details.service > summary::-webkit-details-marker {{ display: none; }}
details.service > summary h3::before {{ content: "▸"; display: inline-block; width: 1.1em;
  color: var(--muted); }}
details.service[open] > summary h3::before {{ content: "▾"; }}
details.service[open] > summary {{ margin-bottom: 12px; }}
.service-head {{ display: flex; flex-wrap: wrap; align-items: baseline; gap: 2px 14px; }}
.service-head h3 {{ flex: 0 1 auto; min-width: 0; }}
.service-head .facts {{ flex: 1 1 12em; min-width: 0; }}
h3 {{ font-size: 15px; margin: 0; font-weight: 650; overflow-wrap: anywhere; }}
.section-title {{ margin: 22px 0 8px; }}
.hint {{ margin: 0 0 10px; color: var(--muted); font-size: 13px; }}
.facts {{ margin: 0; color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }}
.stats {{ display: flex; flex-wrap: wrap; gap: 2px 16px; margin-left: auto; }}
.stats div {{ display: flex; align-items: baseline; gap: 4px; white-space: nowrap; }}
.stats b {{ font-size: 14px; font-variant-numeric: tabular-nums; }}
.stats span {{ font-size: 12px; color: var(--muted); }}
.stats .good b {{ color: var(--accent); }}
.timeline {{ display: grid; gap: 3px; }}
.row {{ display: grid; grid-template-columns: 280px minmax(0, 1fr); align-items: center;
  gap: 10px; }}
.row.monday:not(:nth-child(2)) {{ margin-top: 8px; }}
.label {{ font-size: 12.5px; overflow: hidden; display: flex; flex-wrap: wrap;
  align-items: baseline; gap: 0 6px; min-width: 0; }}
.dname {{ white-space: nowrap; }}
.dname b {{ font-weight: 650; display: inline-block; width: 30px; }}
.weekend .dname {{ color: var(--muted); }}
.hname {{ color: #b06d05; font-size: 11px; font-weight: 600; overflow-wrap: anywhere; }}
.dst {{ color: #7a5af8; font-size: 11px; font-weight: 600; }}
.bar {{ position: relative; display: grid; grid-template-columns: repeat(96, 1fr); height: 20px;
  border-radius: 5px; overflow: hidden; background: #f7f8fa; }}
.bar::after {{ content: ""; position: absolute; inset: 0; pointer-events: none;
  background-image:
    linear-gradient(to right, rgba(255, 255, 255, .9) 1.5px, transparent 1.5px),
    linear-gradient(to right, rgba(255, 255, 255, .45) 1px, transparent 1px);
  background-size: calc(100% / 4) 100%, calc(100% / 24) 100%; }}
.c {{ display: block; height: 100%; min-width: 0; overflow: hidden; }}
.olabel {{ position: absolute; top: 3px; z-index: 1; padding: 0 5px; font-size: 10px;
  line-height: 12px; font-weight: 600; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; color: #2b2170; background: rgba(255, 255, 255, .85);
  border: 1px solid var(--ovr-run); border-radius: 4px; pointer-events: none; }}
.olabel.ovr-stop-label {{ border-style: dashed; }}
.run, .swatch.run {{ background: var(--run); }}
.stop, .swatch.stop {{ background: var(--stop); }}
.hol, .swatch.hol {{ background: var(--hol); }}
.ovr-run, .swatch.ovr-run {{ background: var(--ovr-run); }}
.ovr-stop, .swatch.ovr-stop {{ background: var(--ovr-stop); }}
.red, .swatch.red {{
  background: repeating-linear-gradient(45deg, var(--red-stripe) 0 3px, var(--stop) 3px 7px); }}
.unm, .swatch.unm {{
  background: repeating-linear-gradient(135deg, var(--unm) 0 3px, #c9d0d9 3px 8px); }}
.gap, .swatch.gap {{
  background: repeating-linear-gradient(135deg, #ffffff 0 3px, #e3e6eb 3px 6px); }}
.out {{ background: transparent; }}
.axis .hours {{ display: grid; grid-template-columns: repeat(24, minmax(0, 1fr)); font-size: 11px;
  color: var(--muted); font-variant-numeric: tabular-nums; }}
.axis .hours span {{ padding-left: 2px; border-left: 1px solid var(--line); overflow: hidden;
  min-width: 0; }}
.axis .hours span.major {{ color: var(--ink); font-weight: 600; border-left-color: #c5ccd6; }}
.foot {{ color: var(--muted); font-size: 12px; margin-top: 18px; }}
.ov-head {{ display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center;
  gap: 8px 16px; margin-bottom: 8px; }}
.tools {{ display: flex; flex-wrap: wrap; align-items: center; gap: 8px 14px; font-size: 13px; }}
.tools input {{ font: inherit; padding: 5px 9px; border: 1px solid #c5ccd6; border-radius: 8px;
  width: 16em; max-width: 100%; }}
.tools button {{ font: inherit; font-size: 12.5px; padding: 4px 10px; border: 1px solid #c5ccd6;
  border-radius: 999px; background: #fff; cursor: pointer; margin-left: 4px; }}
.tools button[aria-pressed="true"] {{ background: var(--ink); color: #fff;
  border-color: var(--ink); }}
.strip {{ display: grid; height: 16px; width: clamp(110px, 20vw, 300px); }}
.strip .d {{ display: flex; min-width: 0; overflow: hidden; background: #f7f8fa; }}
.strip .d i {{ display: block; height: 100%; }}
.strip .d.h {{ box-shadow: inset 0 3px 0 var(--hol); }}
.savings td.days {{ padding-top: 4px; padding-bottom: 4px; }}
.savings .svc a {{ overflow-wrap: anywhere; }}
.months .rule {{ margin: 0 0 8px; color: var(--muted); font-size: 13px; }}
@media (max-width: 900px) {{
  .kpis {{ grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); }}
  .row {{ grid-template-columns: 110px minmax(0, 1fr); }}
  .stats {{ gap: 4px 12px; }}
  .savings .wide {{ display: none; }}
}}
@media (max-width: 600px) {{
  .page {{ padding: 14px 10px 32px; }}
  .kpi-value {{ font-size: 20px; }}
  .kpi.accent .kpi-value {{ font-size: 24px; }}
  .cmp-row {{ grid-template-columns: 84px minmax(0, 1fr) 84px; gap: 8px; }}
  .card {{ padding: 12px 10px; }}
  details.service {{ padding: 8px 10px; }}
  .row {{ grid-template-columns: 86px minmax(0, 1fr); gap: 6px; }}
  .label {{ font-size: 11.5px; }}
  .dname b {{ width: 27px; }}
  .savings th, .savings td {{ padding: 6px 5px; }}
  .savings .narrow-hide {{ display: none; }}
  .savings th {{ white-space: normal; }}
  .tools input {{ width: 100%; }}
  .legend {{ position: static; }}
  .savings .svc {{ min-width: 9em; }}
  .savings .zone {{ display: none; }}
  .axis .hours {{ font-size: 9px; }}
  .axis .hours span {{ padding-left: 1px; }}
  .axis .hours span:not(.third) {{ color: transparent; }}
  details.service:not([open]) .facts,
  details.service:not([open]) .stats div:not(.good) {{ display: none; }}
}}
@media print {{
  html {{ background: #fff; }}
  .legend {{ position: static; }}
  .card, .kpi, .compare {{ box-shadow: none; break-inside: avoid; }}
  * {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
}}
"""
