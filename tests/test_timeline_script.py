"""The page's inline script against hostile or broken address fragments, run in Node with a
stand-in for the few DOM calls it makes (skipped without ``node`` on PATH): it never throws,
and a filter from the address is only ever a search box's value, never markup."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.timeline_overview import SCRIPT

NODE = shutil.which("node")

STUB = """
const script = require("fs").readFileSync(process.argv[2], "utf8");
const made = [];
function el(tag, extra) {
  return Object.assign({ tagName: tag, hidden: false, open: false, dataset: {},
    addEventListener() {}, setAttribute() {}, appendChild() {} }, extra || {});
}
const row = el("TR", { dataset: { name: "c1/web", key: "c1/web", saved: "1", index: "0" } });
const input = el("INPUT", { value: "" });
const nodes = { ov: el("TABLE", { tBodies: [el("TBODY", { rows: [row] })] }), filter: input,
  none: el("P"), details: el("DIV"), "svc-0": el("DETAILS") };
global.document = { getElementById: (id) => nodes[id] || null, querySelectorAll: () => [],
  createElement: (t) => { made.push(t); return el(t); } };
global.location = { hash: process.argv[3] };
global.window = { addEventListener() {} };
try {
  eval(script);
  console.log(JSON.stringify({ ok: true, filter: input.value, hidden: row.hidden, made }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e) }));
}
"""

FRAGMENTS = [
    "#filter=web",
    "#%E0%A4%A",  # a cut UTF-8 sequence
    "#filter=%",
    "#svc-0%",
    "#filter=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
    "#filter=</script><script>alert(1)</script>&sort=saved",
]


@pytest.mark.skipif(NODE is None, reason="node is not on PATH to run the page's script")
@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_the_script_never_throws_on_an_address_fragment(tmp_path: Path, fragment: str) -> None:
    (tmp_path / "stub.js").write_text(STUB, encoding="utf-8")
    (tmp_path / "page.js").write_text(SCRIPT, encoding="utf-8")
    answer = subprocess.run(
        [str(NODE), str(tmp_path / "stub.js"), str(tmp_path / "page.js"), fragment],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(answer.stdout)
    assert result["ok"], result
    assert result["made"] == []  # nothing is built from the address
