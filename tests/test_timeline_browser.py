"""The timeline page in a real headless browser: it renders, at the size asked, in its colours.

Needs Debian's ``chromium`` on PATH (``apt-get install -y chromium``); skipped without it.
The screenshot is decoded here with zlib and struct, so no imaging library is needed.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import pytz

from engine.decide import Decider
from engine.pricing import price_for
from engine.simulate import ServiceSimulation, simulate
from engine.timeline_html import HOLIDAY_COLOUR, RUNNING_COLOUR, STOPPED_COLOUR, render_page
from schemas.documents import Override, Schedule
from schemas.validation import DocumentSet

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1400, 1400  # the first screen of a one-service page, its timeline included
TOKYO = pytz.timezone("Asia/Tokyo")
CHROMIUM = shutil.which("chromium")


def _decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) pixels of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0) and colour_type in (2, 6), header
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line) if channels == 3 else _rgb(line))
        previous = line
    return width, height, rows


def _rgb(rgba: bytearray) -> bytes:
    out = bytearray()
    for i in range(0, len(rgba), 4):
        out += rgba[i : i + 3]
    return bytes(out)


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _count_near(pixels: Counter[tuple[int, int, int]], colour: str, tolerance: int = 3) -> int:
    target = _hex(colour)
    return sum(
        n
        for rgb, n in pixels.items()
        if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True))
    )


def _page() -> str:
    tokyo = Schedule(
        service="shop/web-stg",
        windows=[{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
        holidays=["JP"],
    )
    docs = DocumentSet(schedules={tokyo.key: tokyo})
    sims = simulate(
        docs,
        date(2026, 11, 16),
        date(2026, 11, 29),
        prices={"ap-northeast-1": price_for("ap-northeast-1")},
        decider=Decider(),
    )
    return render_page(sims, range_label="2026-11-16 to 2026-11-29")


def _flags(tmp_path: Path, name: str) -> list[str]:
    """The flags that work on a closed network, with a new empty profile each run."""
    return [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / f'profile-{name}'}",
    ]


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not on PATH (apt-get install -y chromium) to render the page",
)


@needs_chromium
def test_timeline_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "timeline.html"
    page.write_text(_page(), encoding="utf-8")
    shot = tmp_path / "timeline.png"
    subprocess.run(
        [
            *_flags(tmp_path, "shot"),
            f"--screenshot={shot}",
            f"--window-size={WIDTH},{HEIGHT}",
            page.as_uri(),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    width, height, rows = _decode_png(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    pixels: Counter[tuple[int, int, int]] = Counter()
    for row in rows:
        pixels.update(zip(row[0::3], row[1::3], row[2::3], strict=True))
    # Timeline rows are 20 px high and hundreds wide: thousands of pixels of each state.
    assert _count_near(pixels, RUNNING_COLOUR) > 5_000
    assert _count_near(pixels, STOPPED_COLOUR) > 5_000
    assert _count_near(pixels, HOLIDAY_COLOUR) > 1_000  # Labor Thanksgiving Day, 23 November


# A fleet, measured ---------------------------------------------------------------------------
# The page is opened in an iframe of the width asked (a headless window is at least 500 px
# wide, a phone is narrower); the harness reads the page's DOM (file pages share an origin
# with --allow-file-access-from-files), types into the filter box, clicks the sort buttons
# and writes what it measured into its own DOM, which --dump-dom prints.
_HARNESS = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="PAGE" style="width:WIDTHpx;height:900px;border:0"></iframe>
<script>
var frame = document.getElementById("f");
frame.addEventListener("load", function () {
  var doc = frame.contentDocument, root = doc.documentElement, out = {};
  function visible() {
    return Array.prototype.filter.call(doc.querySelectorAll("#ov tbody tr"),
      function (r) { return !r.hidden && r.offsetHeight > 0; }).map(function (r) {
        return r.dataset.key; });
  }
  out.height = root.scrollHeight;
  out.scrollWidth = root.scrollWidth;
  out.clientWidth = root.clientWidth;
  out.lang = root.lang;
  out.firstVisible = visible();
  out.openDetails = doc.querySelectorAll("details[open]").length;
  out.wraps = Array.prototype.map.call(doc.querySelectorAll(".table-wrap"),
    function (w) { return w.scrollWidth - w.clientWidth; });
  out.hnames = Array.prototype.map.call(doc.querySelectorAll(".hname"),
    function (e) { return e.textContent; });
  var input = doc.getElementById("filter");
  input.value = "FILTER";
  input.dispatchEvent(new Event("input"));
  out.filtered = visible();
  out.detailsShown = Array.prototype.filter.call(doc.querySelectorAll("details.service"),
    function (d) { return d.offsetHeight > 0; }).length;
  out.noneShown = !doc.getElementById("none").hidden;
  input.value = "";
  input.dispatchEvent(new Event("input"));
  doc.querySelector("button[data-sort=saved]").click();
  out.bySaved = visible();
  doc.querySelector("button[data-sort=name]").click();
  out.byName = visible();
  document.body.setAttribute("data-out", JSON.stringify(out));
});
</script></body></html>
"""


def _measure(
    tmp_path: Path, page_html: str, *, width: int, fragment: str = "", typed: str = "web"
) -> dict[str, Any]:
    name = f"w{width}{abs(hash(fragment + typed)) % 10_000}"
    page = tmp_path / f"page-{name}.html"
    page.write_text(page_html, encoding="utf-8")
    harness = tmp_path / f"harness-{name}.html"
    harness.write_text(
        _HARNESS.replace("PAGE", page.name + fragment)
        .replace("WIDTH", str(width))
        .replace("FILTER", typed),
        encoding="utf-8",
    )
    done = subprocess.run(
        [
            *_flags(tmp_path, name),
            "--allow-file-access-from-files",
            "--window-size=1400,900",
            "--dump-dom",
            harness.as_uri(),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'data-out="([^"]*)"', done.stdout)
    assert found, f"the harness wrote nothing; chromium said: {done.stderr[-2000:]}"
    return cast(dict[str, Any], json.loads(html.unescape(found.group(1))))


def fleet(services: int = 50) -> list[ServiceSimulation]:
    """``services`` services of a fleet: several shapes, night sizes, an override, long names."""
    shapes = [
        [{"days": "mon-fri", "start": "08:00", "end": "20:00"}],
        [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
        [{"days": "mon-sat", "start": "07:00", "end": "23:00"}],
        [{"days": "all", "start": "06:00", "end": "18:00"}],
    ]
    schedules = []
    for n in range(services):
        name = f"shop-{n % 5}/web-{n:02d}" if n % 7 else f"platform/{'very-long-name-' * 6}{n}"
        schedules.append(
            Schedule(
                service=name,
                windows=shapes[n % len(shapes)],
                holidays=["JP"],
                stopped={"desired_count": 1 if n % 9 == 0 else 0},
                running={"desired_count": 1 + n % 4},
            )
        )
    override = Override(
        service="shop-1/web-01",
        state="running",
        start=TOKYO.localize(datetime(2026, 11, 18, 22)),
        until=TOKYO.localize(datetime(2026, 11, 19, 2)),
        reason="release verification (OPS-1234)",
        created_by="aiko",
    )
    docs = DocumentSet(schedules={s.key: s for s in schedules}, overrides=[override])
    return simulate(
        docs,
        date(2026, 11, 16),
        date(2026, 12, 13),
        prices={"ap-northeast-1": price_for("ap-northeast-1")},
        decider=Decider(),
    )


# The bound, from what each part measured at 1400 and 420 px: the fixed part (header, figures,
# monthly projection, legend, headings, margins, footer) under 1,400 px (about 900 and 1,280);
# per service with an ordinary name an overview row and a collapsed timeline with its gap under
# 110 px (54 + 52 and 33 + 48); per 99-character name, wrapped to several lines, under 280 px
# (115 + 92 and 155 + 114). The page before the overview was 43,565 px at 1400 px (README).
def height_bound(sims: list[ServiceSimulation]) -> int:
    long_names = sum(len(s.service) > 60 for s in sims)
    return 1_400 + 110 * (len(sims) - long_names) + 280 * long_names


@needs_chromium
@pytest.mark.parametrize("width", [1400, 420])
def test_fleet_page_opens_as_its_overview_filters_and_sorts(tmp_path: Path, width: int) -> None:
    sims = fleet()
    out = _measure(tmp_path, render_page(sims), width=width)
    assert out["lang"] == "en"
    assert out["openDetails"] == 0
    print(f"page height for {len(sims)} services at {width} px: {out['height']} px")  # README
    assert out["height"] <= height_bound(sims) <= 8_500, out["height"]
    # No horizontal page scroll: everything wraps or shrinks to the width.
    assert out["scrollWidth"] <= out["clientWidth"] <= width, out
    # ... and the tables fit their cards: no scrolling inside them either.
    assert out["wraps"] == [0, 0], out["wraps"]
    assert len(out["firstVisible"]) == 50
    # Typing "web" hides the platform/very-long-name-... rows and their timelines.
    expected = [s.service for s in sims if "web" in s.service]
    assert out["filtered"] == expected
    assert out["detailsShown"] == len(expected)
    assert not out["noneShown"]
    biggest = max(sims, key=lambda s: s.saved)
    assert out["bySaved"][0] == biggest.service
    saved = {s.service: s.saved for s in sims}
    assert [saved[k] for k in out["bySaved"]] == sorted(saved.values(), reverse=True)
    assert out["byName"] == sorted(s.service for s in sims)


@needs_chromium
def test_filter_from_the_address_and_nothing_matching(tmp_path: Path) -> None:
    sims = fleet(12)
    out = _measure(
        tmp_path,
        render_page(sims),
        width=1400,
        fragment="#filter=PLATFORM&sort=saved",
        typed="no-such-service",
    )
    # The address asked for sort=saved: the platform rows, the biggest saver first.
    platform = sorted((s for s in sims if "platform" in s.service), key=lambda s: -s.saved)
    assert out["firstVisible"] == [s.service for s in platform]
    assert out["filtered"] == []
    assert out["noneShown"]


@needs_chromium
def test_japanese_page_names_new_year_in_japanese(tmp_path: Path) -> None:
    schedule = Schedule(
        service="shop/web-stg",
        windows=[{"days": "mon-fri", "start": "08:00", "end": "20:00"}],
        holidays=["JP"],
    )
    docs = DocumentSet(schedules={schedule.key: schedule})
    sims = simulate(
        docs,
        date(2026, 12, 28),
        date(2027, 1, 3),
        prices={"ap-northeast-1": price_for("ap-northeast-1")},
        decider=Decider(),
    )
    out = _measure(tmp_path, render_page(sims, lang="ja"), width=420)
    assert out["lang"] == "ja"
    assert "元日（JP）" in out["hnames"]
    assert out["scrollWidth"] <= out["clientWidth"] <= 420
