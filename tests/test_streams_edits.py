"""Which services a batch of stream records touches (engine.edits): tables and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.edits import (
    BadBatchError,
    Edit,
    Skipped,
    edited_problems,
    failures,
    holidays_listed,
    read_batch,
    read_record,
    touched,
)
from engine.store import _item_label


def record(pk: Any, sk: Any, event: str = "MODIFY", **extra: Any) -> dict[str, Any]:
    return {
        "eventID": "e1",
        "eventName": event,
        "eventSource": "aws:dynamodb",
        "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}, "SequenceNumber": "100"},
        **extra,
    }


TTL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (record("schedule", "c1/web"), Edit("schedule", "c1/web", "MODIFY", "100", "e1")),
        (
            record("override", "c1/web#ab12", "REMOVE"),
            Edit("override", "c1/web#ab12", "REMOVE", "100", "e1"),
        ),
        (
            record("calendar", "company", "INSERT"),
            Edit("calendar", "company", "INSERT", "100", "e1"),
        ),
        # A person's delete carries the person's identity, or none: an edit.
        (
            record(
                "override",
                "c1/web#x",
                "REMOVE",
                userIdentity={"type": "IAMUser", "principalId": "AIDA"},
            ),
            Edit("override", "c1/web#x", "REMOVE", "100", "e1"),
        ),
    ],
)
def test_edits_are_read_from_the_keys(raw: dict[str, Any], expected: Edit) -> None:
    assert read_record(raw) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("garbage", "not a JSON object"),
        (None, "not a JSON object"),
        ({**record("schedule", "c1/web"), "eventSource": "aws:kinesis"}, "not a DynamoDB"),
        (record("schedule", "c1/web", "DROP"), "is not INSERT"),
        (record("override", "c1/web#x", "REMOVE", userIdentity=TTL), "TTL"),
        ({"eventSource": "aws:dynamodb", "eventName": "MODIFY", "dynamodb": {}}, "no Keys"),
        ({"eventSource": "aws:dynamodb", "eventName": "MODIFY"}, "no Keys"),
        (record({"N": "1"}, "c1/web"), "no string pk"),
        (record("schedule", ""), "no string pk"),
        (record("lease", "ticks"), "not a document"),
        (record("baseline", "c1/web"), "not a document"),
    ],
)
def test_records_that_are_no_edit_are_skipped_with_a_reason(raw: Any, why: str) -> None:
    skipped = read_record(raw)
    assert isinstance(skipped, Skipped)
    assert why in skipped.reason


def test_a_batch_keeps_the_edits_in_stream_order_and_needs_records() -> None:
    batch = read_batch({"Records": [record("schedule", "a/b"), "x", record("calendar", "c")]})
    assert [e.sk for e in batch.edits] == ["a/b", "c"]
    assert len(batch.skipped) == 1
    for event in ({}, {"Records": "x"}, [], None, {"shard": 0}):
        with pytest.raises(BadBatchError):
            read_batch(event)


SCHEDULES = {
    "c1/web": frozenset({"company", "JP"}),
    "c1/api": frozenset({"JP"}),
    "c1/db@123456789012": frozenset(),
}


@pytest.mark.parametrize(
    ("edit", "managed", "unmanaged"),
    [
        (Edit("schedule", "c1/web", "MODIFY"), {"c1/web"}, set()),
        (Edit("schedule", "c1/gone", "REMOVE"), set(), {"c1/gone"}),
        (Edit("override", "c1/api#ab12", "INSERT"), {"c1/api"}, set()),
        (Edit("override", "c1/nosched#ab12", "INSERT"), set(), {"c1/nosched"}),
        (Edit("override", "c1/db@123456789012#x", "REMOVE"), {"c1/db@123456789012"}, set()),
        (Edit("calendar", "company", "MODIFY"), {"c1/web"}, set()),
        (Edit("calendar", "unused", "REMOVE"), set(), set()),
        # A hostile or malformed key names no service (its Document Invalid says why).
        (Edit("schedule", "c1/\x1b[31mweb", "INSERT"), set(), set()),
        (Edit("schedule", "noslash", "INSERT"), set(), set()),
        (Edit("schedule", "c1/web@nowhere", "INSERT"), set(), set()),
    ],
)
def test_what_each_kind_of_edit_touches(edit: Edit, managed: set[str], unmanaged: set[str]) -> None:
    found = touched([edit], SCHEDULES)
    assert (set(found.managed), set(found.unmanaged)) == (managed, unmanaged)


def test_holidays_as_stored() -> None:
    assert holidays_listed({"holidays": "company"}) == {"company"}
    assert holidays_listed({"holidays": ["JP", "company", 3]}) == {"JP", "company"}
    assert holidays_listed({"holidays": {"JP"}}) == {"JP"}
    assert holidays_listed({}) == frozenset()


# Properties -------------------------------------------------------------------------------
names = st.sampled_from(["company", "ops", "JP", "x"])
services = st.sampled_from(["c1/web", "c1/api", "c2/db", "c2/q@us-east-1", "bad", "c1/\x07"])
edits = st.one_of(
    st.builds(Edit, st.just("schedule"), services, st.sampled_from(["INSERT", "MODIFY", "REMOVE"])),
    st.builds(
        Edit,
        st.just("override"),
        st.tuples(services, st.text(max_size=4)).map("#".join),
        st.just("INSERT"),
    ),
    st.builds(Edit, st.just("calendar"), names, st.just("MODIFY")),
)
schedule_maps = st.dictionaries(services, st.frozensets(names, max_size=3), max_size=6)


@given(st.lists(edits, max_size=12), schedule_maps, st.randoms())
def test_touched_is_exactly_the_edits_services_whatever_their_order(
    batch: list[Edit], schedules: dict[str, frozenset[str]], random: Any
) -> None:
    found = touched(batch, schedules)
    expected: set[str] = set()
    for edit in batch:
        if edit.kind == "calendar":
            expected |= {key for key, listed in schedules.items() if edit.sk in listed}
        elif edit.service() is not None:
            expected.add(str(edit.service()))
    assert found.managed | found.unmanaged == expected  # nothing else is touched
    assert found.managed <= set(schedules)  # only services with a schedule now converge
    assert not found.managed & found.unmanaged
    shuffled = list(batch)
    random.shuffle(shuffled)
    again = touched(shuffled, schedules)
    assert (again.managed, again.unmanaged) == (found.managed, found.unmanaged)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(json_values)
def test_reading_any_json_never_raises(value: Any) -> None:
    assert isinstance(read_record(value), Edit | Skipped)
    assert isinstance(
        read_record({"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": value}),
        Edit | Skipped,
    )


@given(st.text(max_size=40))
def test_an_edit_names_its_document_as_the_table_problems_do(sk: str) -> None:
    assert Edit("schedule", sk, "MODIFY").label == _item_label("schedule", sk)


@given(
    st.lists(st.tuples(services, st.text("0123456789", min_size=1, max_size=3)), max_size=8),
    st.sets(services),
)
def test_only_the_edits_of_services_not_done_are_delivered_again(
    pairs: list[tuple[str, str]], not_done: set[str]
) -> None:
    batch = [Edit("schedule", key, "MODIFY", seq) for key, seq in pairs]
    found = touched(batch, dict.fromkeys([k for k, _ in pairs], frozenset()))
    again = failures(found.by_edit, not_done)
    assert again == [e.sequence for e in found.by_edit if found.by_edit[e] & not_done]
    assert failures(found.by_edit, set()) == []


def test_only_the_problems_of_edited_documents_and_touched_services_are_told() -> None:
    problems = [
        {"document": "schedule c1/web", "field": "windows[0].start", "message": "bad"},
        {"document": "override c1/web#ab", "field": "until", "message": "bad"},
        {"document": "calendar company (document 3)", "field": "dates[0]", "message": "bad"},
        {"document": "calendar old", "field": "dates[0]", "message": "bad"},
        {"document": "schedule c1/api", "field": "mode", "message": "bad"},
    ]
    batch = [Edit("calendar", "company", "MODIFY"), Edit("override", "c1/web#ab", "INSERT")]
    told = edited_problems(problems, batch, {"c1/web"})
    assert [p["document"] for p in told] == [
        "schedule c1/web",
        "override c1/web#ab",
        "calendar company (document 3)",
    ]


@given(
    kind=st.sampled_from(["schedule", "calendar", "override"]),
    sk=st.tuples(st.text(max_size=20), st.text(max_size=20)).map(" ".join),
)
def test_the_problem_of_an_edited_document_whose_key_holds_a_space_is_told(
    kind: str, sk: str
) -> None:
    # A person writing an item in the console with a space in its key: invalid, and told.
    problem = {"document": _item_label(kind, sk), "field": "sk", "message": "bad"}
    assert edited_problems([problem], [Edit(kind, sk, "INSERT")], set()) == [problem]
