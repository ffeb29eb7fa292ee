"""A problem's document label names its service exactly, even a key written by hand with a
space in it (the tick then holds back that key, not a shorter one that may be real)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.validation import document_label, service_of_label


@pytest.mark.parametrize(
    ("label", "service"),
    [
        ("schedule c1/web", "c1/web"),
        ("schedule c1 with space/web", "c1 with space/web"),
        ("schedule c1/web@123456789012/us-east-1", "c1/web@123456789012/us-east-1"),
        ("override c1/web#late0001", "c1/web"),
        ("override c1 with space/web#late 0001", "c1 with space/web"),
        ("override c1/web (document 3)", "c1/web"),
        ("override c1 x/web (document 12)", "c1 x/web"),
        ("calendar company", None),
        ("profile office hours", None),
        ("document 3", None),
        ("schedule ", None),
        ("", None),
    ],
)
def test_the_service_a_label_names(label: str, service: str | None) -> None:
    assert service_of_label(label) == service


_KEY_TEXT = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters=" -_/"),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s and "#" not in s)


@given(service=_KEY_TEXT, ident=st.one_of(st.none(), _KEY_TEXT), index=st.integers(0, 999))
def test_a_label_names_the_service_it_was_made_for(
    service: str, ident: str | None, index: int
) -> None:
    schedule = {"kind": "schedule", "service": service}
    assert service_of_label(document_label(schedule, index)) == service
    override = {"kind": "override", "service": service, "id": ident}
    assert service_of_label(document_label(override, index)) == service
