"""What anyone can write into the config table never reaches a terminal raw, and logs stay
small whatever a string holds."""

from __future__ import annotations

import io
import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.logs import MAX_LOGGED_CHARS, log_event, setup_logging
from engine.report import _ANSI, for_people
from tests.world import World, run_cli, schedule

HOSTILE = "\x1b[2J\x1b[31mmallory\x1b[0m\x1b]0;pwned\x07\u202e\r\n\x07"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b]0;window title\x07after", "after"),
        ("a\nb\tc\rd", "a?b?c?d"),
        ("\u202etxt.exe", "?txt.exe"),
        ("\x1bcreset", "reset"),
        ("鈴木 (suzuki)", "鈴木 (suzuki)"),
    ],
)
def test_for_people_removes_escapes_and_shows_controls_as_question_marks(
    text: str, shown: str
) -> None:
    assert for_people(text) == shown


def test_override_list_shows_no_escape_sequence_from_the_table(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(endpoint)
    world.create_service("c1", "web", desired=1)
    assert run_cli(capsys, endpoint, "init")[0] == 0
    world.put(schedule("c1/web"))
    world.put_item(
        {
            "pk": "override",
            "sk": "c1/web#ansi",
            "state": "running",
            "start": "2026-12-01T20:00:00+09:00",
            "until": "2099-12-02T02:00:00+09:00",
            "reason": "release check",
            "created_by": HOSTILE,
        }
    )
    code, out, err = run_cli(capsys, endpoint, "override", "list", "--all")
    assert code == 0, err
    assert "\x1b" not in out + err and "\x07" not in out + err and "\r" not in out
    assert "mallory" in out or "mallory" in err


def test_a_huge_string_is_cut_in_the_logs(teiji_logging_restored: None) -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream)
    log_event("tick starting", services=["c1/" + "x" * 100_000], note="y" * 100_000)
    line = stream.getvalue().strip()
    assert len(line) < 3 * MAX_LOGGED_CHARS + 500
    fields = json.loads(line)
    assert fields["services"][0].endswith("characters cut)")
    assert fields["note"].startswith("y" * 100)


@given(st.text(alphabet=st.characters(max_codepoint=0x20FF)), st.none() | st.integers(0, 40))
def test_for_people_is_the_same_on_its_ascii_shortcut_as_char_by_char(
    text: str, limit: int | None
) -> None:
    """Plain ASCII text skips the per-character pass; the result must not change."""
    shown = _ANSI.sub("", text)
    shown = "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in shown)
    if limit is not None and len(shown) > limit:
        shown = shown[: max(0, limit - 1)] + "…"
    assert for_people(text, limit) == shown
