"""The hand-written tool's day-of-week mistake (seed summary, fault 1), shown with instants.

The tool meant "running Monday to Friday 05:00-22:00 JST, off otherwise" but wrote four
EventBridge rules in UTC. 05:00 JST Monday is 20:00 UTC *Sunday*, so ``MON-FRI 20:00 UTC``
starts services Tuesday to Saturday. The rules are re-implemented here as what they are:
edge-triggered events (the service stays in the state of the last event that fired), and
compared with teiji's level-triggered decision for the same intent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from croniter import croniter

from engine.decide import Decider
from engine.localtime import localize, to_local, zone
from schemas.documents import Schedule

TOKYO = zone("Asia/Tokyo")
Action = Literal["running", "stopped"]

# (EventBridge expression, the action the Lambda took), exactly as in the tool's Terraform.
EVENTBRIDGE_RULES: list[tuple[str, Action]] = [
    ("cron(0 13 ? * MON-FRI *)", "stopped"),  # weekday stop, meant as 22:00 JST
    ("cron(0 20 ? * MON-FRI *)", "running"),  # weekday start, meant as 05:00 JST
    ("cron(0 15 ? * SAT *)", "stopped"),  # weekend stop, meant as Saturday 00:00 JST
    ("cron(0 20 ? * MON *)", "running"),  # weekend start, meant as Monday 05:00 JST
]

INTENDED = Schedule.model_validate(
    {
        "service": "example-cluster/example-service-stg",
        "timezone": "Asia/Tokyo",
        "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
    }
)


def jst(*args: int) -> datetime:
    return localize(TOKYO, datetime(*args))


def five_fields(eventbridge: str) -> str:
    """``cron(m h dom mon dow year)`` -> a 5-field expression (``?`` means any)."""
    minute, hour, dom, month, dow, _year = eventbridge.removeprefix("cron(").rstrip(")").split()
    return " ".join(f.replace("?", "*") for f in (minute, hour, dom, month, dow))


def fires_utc(eventbridge: str, since: datetime, until: datetime) -> list[datetime]:
    """Fires in (since, until], evaluated in UTC as EventBridge rules are."""
    naive = croniter(five_fields(eventbridge), since.astimezone(UTC).replace(tzinfo=None))
    fires = []
    while (fire := naive.get_next(datetime).replace(tzinfo=UTC)) <= until:
        fires.append(fire)
    return fires


def hand_written_state(at: datetime) -> Action:
    """Edge-triggered: the action of the latest event at or before ``at`` (a week suffices)."""
    events = [
        (fire, action)
        for expression, action in EVENTBRIDGE_RULES
        for fire in fires_utc(expression, at - timedelta(days=8), at)
    ]
    return max(events)[1]


def test_weekday_start_rule_fires_tuesday_to_saturday_in_tokyo() -> None:
    # The week of Monday 2026-06-01.
    fires = fires_utc("cron(0 20 ? * MON-FRI *)", jst(2026, 5, 31, 23), jst(2026, 6, 7, 23))
    assert [to_local(f, TOKYO).strftime("%a %H:%M") for f in fires] == [
        "Tue 05:00",
        "Wed 05:00",
        "Thu 05:00",
        "Fri 05:00",
        "Sat 05:00",
    ]
    assert fires[0] == jst(2026, 6, 2, 5)


@pytest.mark.parametrize(
    ("expression", "first_fire_jst"),
    [
        pytest.param("cron(0 13 ? * MON-FRI *)", "Mon 22:00", id="weekday-stop-is-right"),
        pytest.param("cron(0 15 ? * SAT *)", "Sun 00:00", id="weekend-stop-is-sunday-midnight"),
        pytest.param("cron(0 20 ? * MON *)", "Tue 05:00", id="weekend-start-is-tuesday"),
    ],
)
def test_other_rules_in_tokyo(expression: str, first_fire_jst: str) -> None:
    fires = fires_utc(expression, jst(2026, 6, 1, 0), jst(2026, 6, 8, 0))
    assert to_local(fires[0], TOKYO).strftime("%a %H:%M") == first_fire_jst


@pytest.mark.parametrize(
    ("at", "hand_written", "teiji"),
    [
        pytest.param(jst(2026, 6, 1, 10), "stopped", "running", id="monday-10-jst-fault"),
        pytest.param(jst(2026, 6, 6, 6), "running", "stopped", id="saturday-06-jst-fault"),
        pytest.param(jst(2026, 6, 6, 23, 59), "running", "stopped", id="saturday-23-59-jst-fault"),
        pytest.param(jst(2026, 6, 2, 10), "running", "running", id="tuesday-10-jst-agree"),
        pytest.param(jst(2026, 6, 5, 21, 59), "running", "running", id="friday-21-59-jst-agree"),
        pytest.param(jst(2026, 6, 5, 22), "stopped", "stopped", id="friday-22-jst-agree"),
        pytest.param(jst(2026, 6, 7, 0), "stopped", "stopped", id="sunday-00-jst-agree"),
        pytest.param(jst(2026, 6, 7, 12), "stopped", "stopped", id="sunday-12-jst-agree"),
    ],
)
def test_hand_written_rules_versus_teiji(at: datetime, hand_written: str, teiji: str) -> None:
    assert hand_written_state(at) == hand_written
    assert Decider().decide(INTENDED, at).state == teiji


def test_over_a_week_they_disagree_exactly_on_monday_and_saturday() -> None:
    decider = Decider()
    start = jst(2026, 6, 1, 0)
    wrong_hours = set()
    for quarter in range(7 * 24 * 4):
        at = start + timedelta(minutes=15 * quarter)
        if hand_written_state(at) != decider.decide(INTENDED, at).state:
            wrong_hours.add(to_local(at, TOKYO).strftime("%a %H"))
    monday = {f"Mon {h:02d}" for h in range(5, 22)}
    saturday = {f"Sat {h:02d}" for h in range(5, 24)}
    assert wrong_hours == monday | saturday


def test_teiji_cron_pair_in_tokyo_time_means_what_it_says() -> None:
    # The same intent as a cron pair evaluated in the schedule's zone, not in UTC.
    as_cron = Schedule.model_validate(
        {
            "service": "example-cluster/example-service-stg",
            "timezone": "Asia/Tokyo",
            "cron": [{"start": "0 5 * * mon-fri", "stop": "0 22 * * mon-fri"}],
        }
    )
    decider = Decider()
    start = jst(2026, 6, 1, 0)
    for quarter in range(7 * 24 * 4):
        at = start + timedelta(minutes=15 * quarter)
        assert decider.decide(as_cron, at).state == decider.decide(INTENDED, at).state, at
