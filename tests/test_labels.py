"""Document labels are one printable line: the fast path for plain names reads as the slow one."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from schemas.validation import _LABEL_LIMIT, _printable


def _slow(text: str, limit: int = _LABEL_LIMIT) -> str:
    cleaned = "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


@given(st.text(max_size=300))
def test_a_label_is_the_same_whichever_way_it_is_made(text: str) -> None:
    assert _printable(text) == _slow(text)


def test_control_characters_and_endless_names_are_cut() -> None:
    assert _printable("web\x1b[31m") == "web?[31m"
    assert _printable("a" * 500).endswith("...") and len(_printable("a" * 500)) == _LABEL_LIMIT
    assert _printable("東京/ウェブ") == "東京/ウェブ"
