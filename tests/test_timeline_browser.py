"""The timeline page in a real headless browser: it renders, at the size asked, in its colours.

Needs Debian's ``chromium`` on PATH (``apt-get install -y chromium``); skipped without it.
The screenshot is decoded here with zlib and struct, so no imaging library is needed.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from engine.decide import Decider
from engine.pricing import price_for
from engine.simulate import simulate
from engine.timeline_html import HOLIDAY_COLOUR, RUNNING_COLOUR, STOPPED_COLOUR, render_page
from schemas.documents import Schedule
from schemas.validation import DocumentSet

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1400, 1000
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


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not on PATH (apt-get install -y chromium) to render the page",
)
def test_timeline_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "timeline.html"
    page.write_text(_page(), encoding="utf-8")
    shot = tmp_path / "timeline.png"
    subprocess.run(
        [
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
            f"--user-data-dir={tmp_path / 'profile'}",
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
