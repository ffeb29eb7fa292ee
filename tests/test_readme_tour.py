"""The README's five-minute tour runs as it is written, in order, on this machine.

Its shell blocks are taken from README.md (the Japanese README must hold the same code) and
run with ``set -e``: every command of the tour must succeed. Only the port (a free one) and the
HTML file's path (a temporary one) are changed. This is the test that sees what a reader
sees: samples that the tour's own services cannot take fail it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"


TOUR_HEADINGS = {
    "README.md": "### A five-minute tour against a local endpoint",
    "README.ja.md": "### ローカルエンドポイントで 5 分間ツアー",
}


def tour_blocks(name: str) -> list[str]:
    """The shell blocks from the tour's heading to the one that stops the endpoint."""
    text = (ROOT / name).read_text(encoding="utf-8")
    start = text.index(TOUR_HEADINGS[name])
    end = text.index("```", text.index("kill $MOTO_PID", start))
    return re.findall(r"```sh\n(.*?)```", text[start : end + 3], re.S)


def code_of(blocks: list[str]) -> list[str]:
    """The blocks without comments, which each README writes in its own language."""
    lines = []
    for block in blocks:
        for line in block.splitlines():
            code = line.split("  #", 1)[0].rstrip()
            if code:
                lines.append(code)
    return lines


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_both_readmes_give_the_same_tour() -> None:
    english = tour_blocks("README.md")
    japanese = tour_blocks("README.ja.md")
    assert len(english) == 3
    assert code_of(english) == code_of(japanese)


@pytest.mark.skipif(
    not (VENV_BIN / "moto_server").exists() or shutil.which("bash") is None,
    reason="the tour needs .venv (make install) and bash",
)
def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    script = "\n".join(tour_blocks("README.md"))
    script = script.replace("5055", str(free_port()))
    script = script.replace("/tmp/teiji-week.html", str(tmp_path / "week.html"))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "TEIJI_", "MOTO_"))
    }
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=ROOT,
        env={**env, "HOME": str(tmp_path), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "wrote 9 documents to teiji-config" in out
    assert "7 services at Tue 2026-12-01 22:00 JST: 3 converged, 4 changed" in out
    assert "target 0..0 suspended -> 1..4, desired 0->2, delete baseline" in out
    assert (tmp_path / "week.html").stat().st_size > 0
