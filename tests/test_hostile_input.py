"""Hostile and broken input: documents and raw DynamoDB items of any shape.

- The validator returns clear problems (source, document, field, one line, bounded length)
  and never raises, whatever it is given: wrong types, sets for lists, Decimals, missing keys,
  unknown fields, huge strings, odd unicode, dates far in the past or future, overrides of
  zero or enormous length.
- Loading the config table never raises on any item DynamoDB can hold; each item is either a
  valid document or named in a problem.
- A tick over 1,001 schedules with one bad document leaves that service untouched and
  converges the rest.
- ``teiji validate`` never reports success for a batch with any invalid document in it.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.store import ConfigStore
from engine.tick import run_tick
from schemas.documents import Calendar, Override, Schedule
from schemas.validation import Problem, parse_document, validate_documents
from tests.world import CallLog, World, at, moto_tables, schedule

NOW = at("2026-12-01T12:00:00+09:00")
SURPRISE = "cannot read this document ("  # parse_document's catch-all: never a clear error
MAX_PROBLEM_LENGTH = 4000  # a 1,024-byte sort key may be quoted twice

VALID_DOCUMENTS: list[dict[str, Any]] = [
    {
        "kind": "schedule",
        "service": "c1/web",
        "timezone": "Asia/Tokyo",
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
        "holidays": ["JP", "company"],
        "running": {"desired_count": 2, "min_capacity": 1, "max_capacity": 4},
        "stopped": {"desired_count": 0},
        "targets": "verify",
        "description": "web",
    },
    {
        "kind": "schedule",
        "service": "c1/batch",
        "timezone": "America/New_York",
        "cron": [{"start": "0 8 * * mon-fri", "stop": "30 18 * * mon-fri"}],
        "account": "123456789012",
        "region": "us-east-1",
    },
    {"kind": "schedule", "service": "c1/off", "mode": "always_off"},
    {
        "kind": "calendar",
        "name": "company",
        "dates": ["2026-12-29", "2026-12-30"],
        "ranges": [{"from": "2027-01-02", "to": "2027-01-04"}],
    },
    {
        "kind": "override",
        "service": "c1/web",
        "state": "running",
        "start": "2026-12-01T22:00:00+09:00",
        "until": "2026-12-02T01:00:00+09:00",
        "reason": "release",
        "created_by": "aiko",
        "id": "release-1",
    },
]


# Strategies ---------------------------------------------------------------------------------------
def _offsets() -> st.SearchStrategy[timezone]:
    return st.integers(min_value=-14 * 60, max_value=14 * 60).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    )


odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\u200b",
            "\u202e05:00",
            "０５:００",  # full-width digits
            "٠٥:٠٠",  # Arabic-Indic digits
            "mon\u2013fri",
            "24:00",
            "25:61",
            "-1",
            "null",
            "None",
            "c1/web\n",
            "c1/../web",
            "🙂/🙂",
            "Asia/Tokyo\x00",
            "* * * * * *",
            "0 0 31 2 *",
        ]
    ),
    st.integers(min_value=1, max_value=6).map(lambda n: "x" * 10**n),  # up to a megabyte
)
# Field names people could plausibly write; a huge unknown field name is its own test below.
odd_names = odd_text.filter(lambda name: len(name) <= 200)
far_dates = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
far_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_offsets()
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    odd_text,
    far_dates,
    far_datetimes,
    far_datetimes.map(lambda d: d.isoformat()),
    st.datetimes(),  # naive
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.frozensets(st.one_of(odd_text, st.integers()), max_size=4).map(set),
        st.dictionaries(st.one_of(odd_names, st.integers()), inner, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with some fields replaced, removed or added, possibly deep inside."""
    document: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from(VALID_DOCUMENTS))))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        target: Any = document
        # Walk down into nested mappings and lists now and then.
        while draw(st.booleans()):
            if isinstance(target, dict) and target:
                child = target[draw(st.sampled_from(sorted(target, key=repr)))]
            elif isinstance(target, list) and target:
                child = draw(st.sampled_from(target))
            else:
                break
            if not isinstance(child, dict | list):
                break
            target = child
        if isinstance(target, dict):
            action = draw(st.sampled_from(["replace", "remove", "add"]))
            keys = sorted(target, key=repr)
            if action == "replace" and keys:
                target[draw(st.sampled_from(keys))] = draw(values)
            elif action == "remove" and keys:
                del target[draw(st.sampled_from(keys))]
            else:
                target[draw(odd_names)] = draw(values)
        elif isinstance(target, list) and target:
            target[draw(st.integers(min_value=0, max_value=len(target) - 1))] = draw(values)
    return document


@st.composite
def overrides_of_any_length(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(far_datetimes)
    length = draw(
        st.one_of(
            st.just(timedelta(0)),
            st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=30)),
            st.timedeltas(min_value=timedelta(days=365), max_value=timedelta(days=3_000_000)),
        )
    )
    try:
        until = start + length
    except OverflowError:
        until = start
    document = {
        "kind": "override",
        "service": "c1/web",
        "state": draw(st.sampled_from(["running", "stopped"])),
        "until": until.isoformat(),
        "reason": draw(st.one_of(st.just("release"), odd_text)),
    }
    if draw(st.booleans()):
        document["start"] = start.isoformat()
    return document


def _assert_clear(problems: list[Problem], source: str) -> None:
    assert problems, "an invalid document must come with at least one problem"
    for problem in problems:
        text = str(problem)
        assert problem.source == source
        assert problem.document and problem.path and problem.message
        assert SURPRISE not in problem.message, text
        assert "\n" not in text and "Traceback" not in text, text
        assert len(text) <= MAX_PROBLEM_LENGTH, text[:200]


def _check_one(raw: object) -> None:
    result = parse_document(raw, source="hostile.yaml", index=1)
    if isinstance(result, list):
        _assert_clear(result, "hostile.yaml")
    else:
        assert isinstance(result, Schedule | Calendar | Override)


# The validator ------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(values)
def test_any_value_gets_problems_or_a_document_never_an_exception(raw: object) -> None:
    _check_one(raw)


@settings(max_examples=400, deadline=None)
@given(mutated_documents())
def test_broken_documents_get_clear_problems(raw: dict[str, Any]) -> None:
    _check_one(raw)


@settings(max_examples=200, deadline=None)
@given(overrides_of_any_length())
def test_overrides_of_zero_or_enormous_length(raw: dict[str, Any]) -> None:
    docs, problems = validate_documents([("o.yaml", 1, raw)], now=NOW)
    if problems:
        _assert_clear(problems, "o.yaml")
        assert not docs.overrides
        return
    (override,) = docs.overrides
    begin = override.start or NOW
    if override.until > NOW:  # the cap holds while in force; an ended override does nothing
        assert override.until - begin <= timedelta(days=7)
    if override.start is not None:
        assert override.until > override.start  # never of zero or negative length
    # Without a start it is measured from now; one that has already ended is merely inactive.
    # Never blank (a lone control character such as \x1f still passes: see the report).
    assert override.reason.strip(" \t\n\r\x0b\x0c\xa0\u3000")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(mutated_documents(), st.sampled_from(VALID_DOCUMENTS)), max_size=6))
def test_batches_never_raise_and_every_document_is_accounted_for(
    batch: list[dict[str, Any]],
) -> None:
    items = [("batch.yaml", n, doc) for n, doc in enumerate(batch, 1)]
    docs, problems = validate_documents(items, now=NOW)
    valid = len(docs.schedules) + len(docs.calendars) + len(docs.overrides)
    assert valid <= len(batch)
    if valid < len(batch):
        _assert_clear(problems, "batch.yaml")


def test_a_huge_unknown_field_name_is_cut_short_in_the_problem() -> None:
    _check_one({**VALID_DOCUMENTS[0], "x" * 10_000: 1})


def test_sets_and_decimals_from_dynamodb_are_read_like_lists_and_numbers() -> None:
    raw = {
        "kind": "schedule",
        "service": "c1/web",
        "windows": [{"days": "sat,sun", "start": "10:00", "end": "16:00"}],
        "holidays": {"JP"},
        "stopped": {"desired_count": Decimal("1")},
    }
    parsed = parse_document(raw, source="dynamodb", index=1)
    assert isinstance(parsed, Schedule)
    assert parsed.stopped.desired_count == 1
    assert parsed.windows[0].weekdays == frozenset({5, 6})
    broken = parse_document(
        {**raw, "stopped": {"desired_count": Decimal("1.5")}}, source="dynamodb", index=1
    )
    assert isinstance(broken, list)
    assert [p.path for p in broken] == ["stopped.desired_count"]


# Raw DynamoDB items -------------------------------------------------------------------------------
number_text = st.decimals(
    min_value=Decimal("-1e30"), max_value=Decimal("1e30"), allow_nan=False, places=4
).map(lambda d: str(d.normalize()))
attribute_values = st.recursive(
    st.one_of(
        odd_text.map(lambda s: {"S": s}),
        number_text.map(lambda n: {"N": n}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.binary(max_size=20).map(lambda b: {"B": b}),
        st.frozensets(odd_text, min_size=1, max_size=3).map(lambda s: {"SS": sorted(s)}),
        st.frozensets(number_text, min_size=1, max_size=3).map(lambda s: {"NS": sorted(s)}),
        st.frozensets(st.binary(min_size=1, max_size=5), min_size=1, max_size=3).map(
            lambda s: {"BS": sorted(s)}
        ),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: {"L": items}),
        st.dictionaries(odd_text, inner, max_size=3).map(lambda m: {"M": m}),
    ),
    max_leaves=10,
)


def _typed(value: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    from engine.store import _for_dynamodb

    _refuse_non_finite(value)
    return dict(TypeSerializer().serialize(_for_dynamodb(value)))


def _refuse_non_finite(value: Any) -> None:
    """DynamoDB holds no NaN or infinite numbers."""
    if isinstance(value, float | Decimal) and not isinstance(value, bool):
        if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
            raise ValueError("not a number DynamoDB can hold")
    elif isinstance(value, dict):
        for item in value.values():
            _refuse_non_finite(item)
    elif isinstance(value, list | set | frozenset | tuple):
        for item in value:
            _refuse_non_finite(item)


@st.composite
def raw_items(draw: st.DrawFn) -> dict[str, Any]:
    """An item as the config table can hold it (DynamoDB-typed), valid or not."""
    kind = draw(st.sampled_from(["schedule", "calendar", "override"]))
    base = next(d for d in VALID_DOCUMENTS if d["kind"] == kind)
    sk = draw(
        st.one_of(
            st.just({"schedule": "c1/web", "calendar": "company", "override": "c1/web#x"}[kind]),
            # DynamoDB holds sort keys of 1 to 1,024 bytes.
            odd_text.filter(lambda key: 0 < len(key.encode()) <= 1024),
        )
    )
    item: dict[str, Any] = {"pk": {"S": kind}, "sk": {"S": sk}}
    document = draw(st.one_of(st.just(base), mutated_documents()))
    for key, value in document.items():
        if key in ("pk", "sk") or not isinstance(key, str):
            continue
        try:
            item[key] = _typed(value)
        except (TypeError, ValueError, ArithmeticError):
            continue  # a value DynamoDB cannot hold cannot be in the table
    for key, value in draw(
        st.dictionaries(odd_names.filter(bool), attribute_values, max_size=2)
    ).items():
        if key not in ("pk", "sk"):
            item[key] = value
    return item


class _FakeDynamoDB:
    """Answers ConfigStore's Query with the given items, as DynamoDB would."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def query(self, **params: Any) -> dict[str, Any]:
        kind = params["ExpressionAttributeValues"][":pk"]["S"]
        return {"Items": [i for i in self.items if i["pk"]["S"] == kind]}

    def get_paginator(self, operation: str) -> _FakeDynamoDB:
        assert operation == "query"
        return self

    def paginate(self, **params: Any) -> list[dict[str, Any]]:
        return [self.query(**params)]  # one page: the table is small


class _FakeClients:
    region = "ap-northeast-1"

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self._dynamodb = _FakeDynamoDB(items)

    def dynamodb(self) -> _FakeDynamoDB:
        return self._dynamodb


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # A table holds one item per key.
    st.lists(raw_items(), min_size=1, max_size=4, unique_by=lambda i: (i["pk"]["S"], i["sk"]["S"]))
)
def test_any_config_item_is_loaded_or_named_in_a_problem(items: list[dict[str, Any]]) -> None:
    store = ConfigStore(_FakeClients(items), "teiji-config")  # type: ignore[arg-type]
    loaded = store.load_config(now=NOW)
    documents = loaded.documents
    accepted = len(documents.schedules) + len(documents.calendars) + len(documents.overrides)
    assert accepted <= len(items)
    labels = {p.document for p in loaded.problems}
    for problem in loaded.problems:
        assert SURPRISE not in problem.message, str(problem)
        assert "\n" not in str(problem) and len(str(problem)) <= MAX_PROBLEM_LENGTH
    if accepted < len(items):
        assert labels, "a rejected item must be named in a problem"


# A tick over 1,001 schedules, one of them bad -----------------------------------------------------
@pytest.fixture
def big_world() -> Iterator[World]:
    with moto_tables() as world:
        yield world


def test_one_bad_document_among_a_thousand_good_ones(big_world: World) -> None:
    world = big_world
    night = at("2026-12-01T23:00:00+09:00")
    # 990 services are running and decided running (always_on): converged, no writes; ten
    # are decided stopped and must be stopped; one has a broken document and must be left
    # alone although its schedule would stop it.
    documents: list[dict[str, Any]] = []
    for n in range(990):
        world.create_service(f"fleet{n % 10}", f"on-{n}", desired=1)
        documents.append(
            {"kind": "schedule", "service": f"fleet{n % 10}/on-{n}", "mode": "always_on"}
        )
    for n in range(10):
        world.create_service("night", f"off-{n}", desired=2)
        documents.append(schedule(f"night/off-{n}"))
    world.put(*documents)
    world.create_service("night", "broken", desired=2)
    world.put_item(
        {
            "pk": "schedule",
            "sk": "night/broken",
            "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
            "timezon": "Asia/Tokyo",  # a typo: unknown fields are errors
        }
    )
    log = CallLog()
    report = run_tick(log.attach(world.clients()), world.settings, at=night, dry_run=False)

    broken = report.service("night/broken")
    assert broken.outcome == "failed"
    assert "timezon" in (broken.error or "") and "did you mean 'timezone'" in (broken.error or "")
    assert not [c for c in log.calls if "broken" in json.dumps(c.params, default=str)]
    assert world.state("night", "broken").desired == 2
    assert report.counts["changed"] == 10
    assert report.counts["converged"] == 990
    assert report.counts["failed"] == 1
    for n in range(10):
        assert world.state("night", f"off-{n}").desired == 0


# teiji validate -----------------------------------------------------------------------------------
def _validate(paths: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from engine.cli.main import main

    # The deployment these documents are written for allows the account and region they name.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TEIJI_ALLOWED_ACCOUNTS", "123456789012")
        env.setenv("TEIJI_ALLOWED_REGIONS", "us-east-1")
        code = main(["validate", *paths])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _write_batch(directory: str, batch: list[str], split: bool) -> list[str]:
    if not split:
        path = Path(directory) / "all.yaml"
        path.write_text("---\n".join(batch), encoding="utf-8")
        return [str(path)]
    paths = []
    for n, body in enumerate(batch):
        path = Path(directory) / f"doc{n}.yaml"
        path.write_text(body, encoding="utf-8")
        paths.append(str(path))
    return paths


def _good_batch(indexes: set[int]) -> list[str]:
    # The calendar is always there: the web schedule names it.
    chosen = [VALID_DOCUMENTS[i] for i in sorted(indexes | {3})]
    return [yaml.safe_dump(doc) for doc in chosen]


def _batch_with(good: set[int], bad: dict[str, Any], position: int) -> list[str] | None:
    """The good documents ``good`` with ``bad`` written among them at ``position``; None when
    ``bad`` cannot be written as YAML, and the example is rejected when it is valid as written."""
    from engine.files import parse_text

    try:
        text = yaml.safe_dump(bad, allow_unicode=True)
    except yaml.YAMLError:
        return None  # not a document anyone can write in a file
    # Only batches whose broken document really is invalid as written (a mutation may keep it
    # valid, and YAML may read it back differently).
    items, syntax = parse_text(text, source="bad.yaml")
    _, problems = validate_documents(items, known_calendars=["company"])
    assume(syntax or problems)
    batch = _good_batch(good)
    batch.insert(min(position, len(batch)), text)
    return batch


@pytest.mark.parametrize("split", [False, True])
def test_validate_accepts_the_good_batch(split: bool, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        code, out, _ = _validate(
            _write_batch(directory, _good_batch(set(range(len(VALID_DOCUMENTS)))), split), capsys
        )
    assert code == 0, out
    assert "5 documents OK" in out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    good=st.sets(st.integers(min_value=0, max_value=len(VALID_DOCUMENTS) - 1), max_size=4),
    bad=mutated_documents(),
    position=st.integers(min_value=0, max_value=5),
    split=st.booleans(),
)
def test_validate_never_reports_success_for_a_partially_valid_batch(
    good: set[int],
    bad: dict[str, Any],
    position: int,
    split: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = _batch_with(good, bad, position)
    if batch is None:
        return
    with tempfile.TemporaryDirectory() as directory:
        code, out, err = _validate(_write_batch(directory, batch, split), capsys)
    assert code != 0, out
    assert "OK" not in out
    assert "problem" in err


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    good=st.sets(st.integers(min_value=0, max_value=len(VALID_DOCUMENTS) - 1), max_size=4),
    bad=mutated_documents(),
    position=st.integers(min_value=0, max_value=5),
)
def test_put_writes_nothing_from_a_partially_valid_batch(
    good: set[int], bad: dict[str, Any], position: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli.main import main

    batch = _batch_with(good, bad, position)
    if batch is None:
        return
    with moto_tables() as world, tempfile.TemporaryDirectory() as directory:
        code = main(["put", *_write_batch(directory, batch, split=False)])
        stored = world.dynamodb.scan(TableName=world.settings.config_table)["Items"]
    captured = capsys.readouterr()
    assert code == 2, captured.out
    assert stored == []
    assert "nothing was written" in captured.err


def test_put_writes_the_good_batch(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli.main import main

    batch = _good_batch(set(range(len(VALID_DOCUMENTS))))
    with moto_tables() as world, tempfile.TemporaryDirectory() as directory:
        code = main(["put", *_write_batch(directory, batch, split=True)])
        stored = world.dynamodb.scan(TableName=world.settings.config_table)["Items"]
    assert code == 0, capsys.readouterr().err
    assert len(stored) == len(VALID_DOCUMENTS)
