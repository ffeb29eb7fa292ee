"""The fan-out's rules (engine.fanout), over all inputs: the tick's id, the work items and their
parsing, the instant a worker decides at, the batches and the report put together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.fanout import (
    NO_OUTCOME,
    SEND_BATCH,
    ScopeOutcome,
    WorkItem,
    aggregate,
    batches,
    decision_instant,
    parse_work_item,
    scope_from_id,
    scope_id,
    tick_id,
    work_items,
)
from engine.tick import run_tick
from tests.world import at

QUARTER = timedelta(minutes=15)
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
accounts = st.one_of(st.none(), st.from_regex(r"\A[0-9]{12}\Z"))
regions = st.one_of(st.none(), st.sampled_from(["ap-northeast-1", "us-east-1", "eu-west-3"]))


@given(instants, st.integers(min_value=0, max_value=899))
def test_every_instant_of_a_quarter_hour_has_that_quarter_hours_id(
    when: datetime, offset: int
) -> None:
    start = when.replace(minute=when.minute // 15 * 15, second=0, microsecond=0)
    assert tick_id(start + timedelta(seconds=offset), QUARTER) == tick_id(start, QUARTER)
    assert tick_id(start + QUARTER, QUARTER) != tick_id(start, QUARTER)


def test_the_tick_id_is_the_quarter_hour_in_utc_whatever_the_zone() -> None:
    assert tick_id(at("2026-12-02T05:22:10+09:00"), QUARTER) == "20261201T2015Z"
    with pytest.raises(ValueError, match="offset"):
        tick_id(datetime(2026, 12, 2), QUARTER)


@given(st.sampled_from(["scope", "aggregate"]), instants, accounts, regions, st.booleans())
def test_a_work_item_reads_back_as_it_was_sent(
    kind: str, when: datetime, account: str | None, region: str | None, dry_run: bool
) -> None:
    item = WorkItem(kind, tick_id(when, QUARTER), when, (account, region), dry_run)  # type: ignore[arg-type]
    assert parse_work_item(item.body()) == item
    assert scope_from_id(scope_id(item.scope)) == item.scope


@pytest.mark.parametrize(
    ("late", "decides"),
    [
        (timedelta(0), "sent"),
        (timedelta(minutes=6), "sent"),  # a retry within the tick: the tick's instant
        (QUARTER, "sent"),
        (QUARTER + timedelta(seconds=1), "now"),  # the next tick has decided since
        (timedelta(hours=3), "now"),
        (-timedelta(hours=8), "now"),  # an instant after now: never decided ahead
    ],
)
def test_a_worker_decides_at_the_ticks_instant_unless_it_is_stale(
    late: timedelta, decides: str
) -> None:
    sent = at("2026-12-01T23:00:00+09:00")
    now = sent + late
    assert decision_instant(sent, now, QUARTER) == (sent if decides == "sent" else now)


@given(st.integers(min_value=0, max_value=250))
def test_batches_hold_ten_entries_with_ids_unique_in_each(count: int) -> None:
    when = at("2026-12-01T23:00:00+09:00")
    scopes = [(f"{i:012d}", None) for i in range(count)]
    found = batches(work_items("20261201T1400Z", when, scopes))
    assert sum(len(b) for b in found) == count
    assert all(1 <= len(b) <= SEND_BATCH for b in found)
    assert all(len({e["Id"] for e in b}) == len(b) for b in found)


def _done(scope: str, changed: float, **kw: object) -> ScopeOutcome:
    return ScopeOutcome(scope, "done", figures={"Changed": changed, "ApiCalls": 10.0}, **kw)  # type: ignore[arg-type]


def test_the_report_counts_every_expected_scope_once() -> None:
    bad = {"source": "t", "document": "calendar x", "field": "dates", "message": "m"}
    report = aggregate(
        "20261201T1400Z",
        at("2026-12-01T23:00:00+09:00"),
        {"-/-": 20, "a/b": 20, "c/d": 7, "e/f": 3},
        [
            _done("-/-", 20, invalid_documents=(bad,), failed_services=("c1/x",)),
            _done("a/b", 19, invalid_documents=(bad,)),
            ScopeOutcome("c/d", "failed", error="worker died"),
            _done("forged/scope", 1000),  # not expected: counts nothing
        ],
        tick_seconds=42.0,
    )
    assert report.figures["Changed"] == 39 and report.figures["ApiCalls"] == 20
    # The failed scope's and the missing scope's services are all failed, plus the one service.
    assert report.figures["Failed"] == 7 + 3
    assert report.failed_scopes == {"c/d": "worker died", "e/f": NO_OUTCOME}
    assert report.failed_services == ("c1/x",)
    assert report.figures["InvalidDocuments"] == 1  # every worker read the same documents
    assert report.figures["TickSeconds"] == 42.0 and report.failed
    assert report.done == ("-/-", "a/b")


def test_an_unreadable_outcome_counts_its_scope_failed() -> None:
    outcome = ScopeOutcome.from_item({"scope": "a/b", "status": "done", "figures": "x"})
    assert outcome.status == "failed" and outcome.error is not None


def test_a_tick_covers_a_scope_or_a_shard_never_both() -> None:
    with pytest.raises(ValueError, match="scope or a shard"):
        run_tick(
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            at=at("2026-12-01T23:00:00+09:00"),
            dry_run=True,
            shard=(0, 2),
            scope=(None, None),
        )
