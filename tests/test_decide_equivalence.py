"""The fast path of deciding a whole fleet gives exactly what a fresh, uncached evaluation gives.

A tick decides thousands of services that share a few rule shapes, all at one instant, with one
``Decider``: it answers services with the same rules from one timeline, reuses the last
decision of a rule shape at the same instant, converts the instant to each time zone once, and
remembers each schedule object's rules. Here random fleets (shapes shared by several services,
some with overrides, names in several accounts and regions) are decided at random tick
instants in that way, and every decision must equal ``engine.decide.decide`` -- a new
``Decider`` for that one service and instant. ``segments`` (what ``simulate`` reads) is held
to the same standard.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.decide import Decider, decide
from schemas.documents import Calendar, Override, Schedule

COMPANY = Calendar.model_validate(
    {
        "name": "company",
        "dates": ["2026-03-09", "2026-11-02", "2026-12-30"],
        "ranges": [{"from": "2026-12-29", "to": "2027-01-03"}],
    }
)
CALENDARS = {"company": COMPANY}

ZONES = ["Asia/Tokyo", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC"]
DAYS = ["mon-fri", "sat,sun", "fri-mon", "daily", "wed"]
TIMES = ["00:00", "02:30", "05:00", "09:15", "17:00", "22:00", "23:59"]
CRON_PAIRS = [
    ("0 5 * * mon-fri", "0 22 * * mon-fri"),
    ("30 2 * * *", "0 4 * * *"),
    ("0 22 * * *", "0 6 * * *"),
    ("0 9 * * 1", "0 17 * * 5"),
    ("0 12 * * *", "0 12 * * *"),
]
HOLIDAYS = [[], ["JP"], ["company"], ["US", "company"]]
# Days around DST changes (Europe, US, Lord Howe), Japanese holidays and the company's dates.
AROUND = [
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 4, 5, tzinfo=UTC),
    datetime(2026, 5, 4, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 12, 31, tzinfo=UTC),
]
SCOPES = [(None, None), ("210987654321", None), (None, "us-east-1")]

EQUIVALENCE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def shapes(draw: st.DrawFn) -> dict[str, object]:
    """The rule part of a schedule (no service): what services of one shape share."""
    mode = draw(st.sampled_from(["scheduled"] * 5 + ["always_on", "always_off", "unmanaged"]))
    windows = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.sampled_from(TIMES))
        end = draw(st.sampled_from([t for t in [*TIMES, "24:00"] if t != start]))
        windows.append({"days": draw(st.sampled_from(DAYS)), "start": start, "end": end})
    pairs = draw(st.lists(st.sampled_from(CRON_PAIRS), min_size=0 if windows else 1, max_size=1))
    return {
        "mode": mode,
        "timezone": draw(st.sampled_from(ZONES)),
        "windows": windows,
        "cron": [{"start": a, "stop": b} for a, b in pairs],
        "holidays": draw(st.sampled_from(HOLIDAYS)),
    }


@st.composite
def fleets(draw: st.DrawFn) -> list[Schedule]:
    """Up to 14 services over 1-4 shapes: most services share their rules with others."""
    pool = draw(st.lists(shapes(), min_size=1, max_size=4))
    fleet = []
    for n in range(draw(st.integers(1, 14))):
        account, region = draw(st.sampled_from(SCOPES))
        fleet.append(
            Schedule.model_validate(
                {
                    **draw(st.sampled_from(pool)),
                    "service": f"cluster-{n % 3}/service-{n}",
                    "account": account,
                    "region": region,
                }
            )
        )
    return fleet


instants = st.builds(
    lambda base, minutes, offset: (base + timedelta(minutes=minutes)).astimezone(
        timezone(timedelta(minutes=offset))
    ),
    st.sampled_from(AROUND),
    st.integers(-2 * 24 * 60, 2 * 24 * 60),
    st.sampled_from([0, 540, -300, 345]),
)


@st.composite
def overrides_for(draw: st.DrawFn, fleet: list[Schedule], around: datetime) -> list[Override]:
    overrides = []
    for n, schedule in enumerate(fleet):
        if not draw(st.booleans()):
            continue
        start = draw(st.none() | st.integers(-20, 20))
        begin = None if start is None else around + timedelta(hours=start)
        until = (begin or around - timedelta(hours=1)) + timedelta(hours=draw(st.integers(1, 30)))
        overrides.append(
            Override.model_validate(
                {
                    "service": schedule.service,
                    "account": schedule.account,
                    "region": schedule.region,
                    "state": draw(st.sampled_from(["running", "stopped"])),
                    "start": begin,
                    "until": until,
                    "reason": "release",
                    "id": f"o{n}",
                }
            )
        )
    return overrides


def _by_key(overrides: list[Override]) -> dict[str, list[Override]]:
    grouped: dict[str, list[Override]] = {}
    for override in overrides:
        grouped.setdefault(override.key, []).append(override)
    return grouped


@EQUIVALENCE
@given(data=st.data(), fleet=fleets(), ticks=st.lists(instants, min_size=1, max_size=3))
def test_a_fleet_decided_tick_after_tick_matches_fresh_evaluation(
    data: st.DataObject, fleet: list[Schedule], ticks: list[datetime]
) -> None:
    overrides = _by_key(data.draw(overrides_for(fleet, ticks[0])))
    decider = Decider(CALENDARS)  # one per tick in production; reused here, which is harder
    for at in ticks:
        for schedule in fleet:
            own = overrides.get(schedule.key, [])
            fast = decider.decide(schedule, at, own)
            fresh = decide(schedule, at, calendars=CALENDARS, overrides=own)
            assert fast == fresh, (schedule.key, at.isoformat())


@EQUIVALENCE
@given(data=st.data(), fleet=fleets(), start=instants, hours=st.integers(1, 72))
def test_a_fleets_segments_match_fresh_evaluation(
    data: st.DataObject, fleet: list[Schedule], start: datetime, hours: int
) -> None:
    overrides = _by_key(data.draw(overrides_for(fleet, start)))
    end = start + timedelta(hours=hours)
    decider = Decider(CALENDARS)
    for schedule in fleet:
        own = overrides.get(schedule.key, [])
        fast = decider.segments(schedule, start, end, own)
        fresh = Decider(CALENDARS).segments(schedule, start, end, own)
        assert fast == fresh, schedule.key
        # And each segment's first instant decides as a fresh evaluation does.
        for segment in fast[:4]:
            state = decide(schedule, segment.start, calendars=CALENDARS, overrides=own).state
            assert state == segment.state, (schedule.key, segment.start.isoformat())
