"""Schedules alike but for their service share their parsed parts, and read exactly as if
each had been parsed alone (schemas.validation._share_parts)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import validation
from schemas.documents import Schedule
from schemas.validation import parse_document

_WINDOW = st.fixed_dictionaries(
    {
        "days": st.sampled_from(["mon-fri", "sat,sun", "mon-sun", "tue"]),
        "start": st.sampled_from(["05:00", "08:30", "09:00"]),
        "end": st.sampled_from(["18:00", "22:00", "23:59"]),
    }
)
_BODY = st.fixed_dictionaries(
    {"kind": st.just("schedule"), "windows": st.lists(_WINDOW, min_size=1, max_size=3)},
    optional={
        "timezone": st.sampled_from(["Asia/Tokyo", "America/New_York", "UTC"]),
        "holidays": st.sampled_from([["JP"], [], ["JP", "company"]]),
        "stopped": st.builds(lambda n: {"desired_count": n}, st.integers(0, 3)),
        "targets": st.sampled_from(["verify", "ignore", "repair"]),
        "mode": st.sampled_from(["scheduled", "always_on", "always_off"]),
    },
)


def _alone(raw: dict[str, Any]) -> Schedule:
    """``raw`` parsed with nothing shared: what every schedule must read as."""
    saved = dict(validation._shared_bodies)
    validation._shared_bodies.clear()
    try:
        parsed = parse_document(raw, source="test", index=0)
    finally:
        validation._shared_bodies.clear()
        validation._shared_bodies.update(saved)
    assert isinstance(parsed, Schedule)
    return parsed


@settings(max_examples=60, deadline=None)
@given(bodies=st.lists(_BODY, min_size=1, max_size=4), order=st.randoms())
def test_schedules_read_as_if_each_was_parsed_alone(
    bodies: list[dict[str, Any]], order: Any
) -> None:
    raws = [
        {**body, "service": f"c1/svc-{b}-{i}"} for b, body in enumerate(bodies) for i in range(3)
    ]
    order.shuffle(raws)
    parsed = [parse_document(raw, source="test", index=i) for i, raw in enumerate(raws)]
    for raw, doc in zip(raws, parsed, strict=True):
        assert isinstance(doc, Schedule)
        assert doc == _alone(raw)
        assert doc.model_dump() == _alone(raw).model_dump()


def test_alike_schedules_share_their_parts_and_others_do_not() -> None:
    body = {"kind": "schedule", "windows": [{"days": "mon-fri", "start": "09:00", "end": "18:00"}]}
    first = parse_document({**body, "service": "c1/a"}, source="t", index=0)
    second = parse_document(
        {**body, "service": "c1/b", "account": "123456789012"}, source="t", index=1
    )
    other = parse_document(
        {**body, "service": "c1/c", "stopped": {"desired_count": 1}}, source="t", index=2
    )
    assert isinstance(first, Schedule) and isinstance(second, Schedule)
    assert isinstance(other, Schedule)
    assert second.windows is first.windows and second.stopped is first.stopped
    assert second.service == "c1/b" and second.account == "123456789012"
    assert other.stopped.desired_count == 1 and first.stopped.desired_count == 0
    assert other.stopped is not first.stopped


def test_a_document_that_does_not_validate_shares_nothing() -> None:
    before = len(validation._shared_bodies)
    problems = parse_document(
        {"kind": "schedule", "service": "c1/x", "windows": [{"days": "someday"}], "x": {1: 2}},
        source="t",
        index=0,
    )
    assert isinstance(problems, list) and problems
    assert len(validation._shared_bodies) == before
