"""The override a wake writes (pure): one per wake, extended in steps, never past the cap, and
a person's stop override wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.wake_answer import Answer, page, respond
from engine.wake_override import WAKE_ID, extend_step, plan_wake, wake_reason
from schemas.documents import Override

KEY = "c1/web"
NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
TWO_H = timedelta(hours=2)
CAP = timedelta(hours=12)


def wake_override(start: datetime, until: datetime) -> Override:
    return Override(
        service=KEY,
        state="running",
        start=start,
        until=until,
        reason="woken by a request to stg.example.com/",
        created_by="wake",
        created_at=start,
        id=WAKE_ID,
    )


def persons(state: str, start: datetime, until: datetime) -> Override:
    return Override(
        service=KEY, state=state, start=start, until=until, reason="migration", id="ab12cd34"
    )  # type: ignore[arg-type]


def plan(*overrides: Override, now: datetime = NOW, keep: timedelta = TWO_H, cap: timedelta = CAP):  # type: ignore[no-untyped-def]
    return plan_wake(KEY, overrides, now=now, keep_for=keep, cap=cap, shown="stg.example.com/")


def test_the_first_request_creates_the_wake() -> None:
    got = plan()
    assert got.kind == "create" and got.override is not None
    o = got.override
    assert (o.id, o.state, o.created_by, o.start, o.until) == (
        "wake",
        "running",
        "wake",
        NOW,
        NOW + TWO_H,
    )
    assert o.reason == "woken by a request to stg.example.com/"


def test_an_ended_wake_is_replaced_by_a_new_one() -> None:
    got = plan(wake_override(NOW - timedelta(hours=5), NOW - timedelta(hours=3)))
    assert got.kind == "replace" and got.override is not None and got.override.start == NOW


def test_requests_while_starting_write_nothing_and_later_ones_extend() -> None:
    running = wake_override(NOW, NOW + TWO_H)
    assert plan(running, now=NOW + timedelta(minutes=5)).kind == "none"
    later = plan(running, now=NOW + timedelta(minutes=30))
    assert later.kind == "extend" and later.override is not None
    assert later.override.until == NOW + timedelta(minutes=150)
    assert later.override.start == NOW  # the same wake


def test_an_extension_stops_at_the_cap_from_the_wakes_start() -> None:
    running = wake_override(NOW, NOW + timedelta(hours=11))
    got = plan(running, now=NOW + timedelta(hours=10, minutes=30))
    assert got.kind == "extend" and got.capped and got.override is not None
    assert got.override.until == NOW + CAP
    at_cap = wake_override(NOW, NOW + CAP)
    assert plan(at_cap, now=NOW + timedelta(hours=11)).kind == "none"


def test_keep_for_longer_than_the_cap_is_cut_to_it() -> None:
    got = plan(keep=timedelta(days=7), cap=timedelta(hours=3))
    assert (
        got.capped and got.override is not None and got.override.until == NOW + timedelta(hours=3)
    )


def test_a_persons_active_stop_override_wins_and_an_upcoming_one_does_not() -> None:
    stop = persons("stopped", NOW - timedelta(hours=1), NOW + timedelta(hours=3))
    got = plan(stop)
    assert got.kind == "kept-stopped" and got.blocking == stop and got.override is None
    upcoming = persons("stopped", NOW + timedelta(hours=1), NOW + timedelta(hours=3))
    assert plan(upcoming).kind == "create"


def test_the_reason_is_one_printable_line_within_the_limit() -> None:
    assert wake_reason("a\nb\x00c") == "woken by a request to a?b?c"
    assert len(wake_reason("x" * 5000)) == 1024


@given(
    keep_min=st.integers(1, 7 * 24 * 60),
    cap_min=st.integers(1, 7 * 24 * 60),
    steps=st.lists(st.integers(0, 600), min_size=1, max_size=30),
)
def test_a_run_of_requests_never_passes_the_cap_and_writes_few_times(
    keep_min: int, cap_min: int, steps: list[int]
) -> None:
    keep, cap = timedelta(minutes=keep_min), timedelta(minutes=cap_min)
    current: Override | None = None
    now = NOW
    writes = 0
    for gap in steps:
        now += timedelta(minutes=gap)
        got = plan(*([current] if current else []), now=now, keep=keep, cap=cap)
        if got.override is not None:
            writes += 1
            current = got.override
            start = current.start or now
            assert current.until - start <= cap
            assert current.until > now
            assert current.until <= now + keep
        elif current is not None:
            assert current.active_at(now)  # nothing written only while a wake runs
    # Each write either starts a wake or adds at least one step to it.
    assert writes <= len(steps)


def test_extend_step_is_a_twentieth_and_at_least_a_minute() -> None:
    assert extend_step(TWO_H) == timedelta(minutes=6)
    assert extend_step(timedelta(minutes=5)) == timedelta(minutes=1)


# The answer ---------------------------------------------------------------------------------
def test_the_page_escapes_what_it_shows() -> None:
    html = page(Answer("starting", "Starting <b>x</b>", "c1/<script>", 60))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'http-equiv="refresh"' in html and "about 60 s" in html


def test_browsers_get_the_page_and_other_clients_503_with_retry_after() -> None:
    starting = Answer("starting", "Starting c1/web", "c1/web", 60)
    browser = respond(starting, browser=True, multi_value=False)
    assert browser["statusCode"] == 200 and browser["headers"]["Cache-Control"] == "no-store"
    api = respond(starting, browser=False, multi_value=True)
    assert api["statusCode"] == 503 and api["multiValueHeaders"]["Retry-After"] == ["5"]
    assert respond(starting, browser=True, multi_value=False, head=True)["body"] == ""
    refused = respond(Answer("refused", "no"), browser=False, multi_value=False)
    assert refused["statusCode"] == 403 and "Retry-After" not in refused["headers"]
    bad = respond(Answer("bad-request", "no"), browser=True, multi_value=False)
    assert bad["statusCode"] == 400 and bad["statusDescription"] == "400 Bad Request"
