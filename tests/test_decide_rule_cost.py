"""What one rule may cost to decide: dense and rare cron expressions are refused, not decided.

Deciding walks every fire of a cron pair near the instant asked about, and looks back to each
expression's last fire. An expression firing every minute or two costs hundreds of fires a day
(20 such schedules once took 38 s of CPU and a tick's whole lease); one that fires only on
29 February could be forgotten between leap years. Validation refuses both with a message that
says why, the Decider refuses them before doing any work (documents built without validation
reach it too), and a tick reports them per service while it acts on everything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from engine.decide import Decider
from engine.tick import run_tick
from schemas.documents import Schedule
from schemas.validation import MAX_CRON_FIRES_PER_DAY, validate_documents
from tests.world import World, at, moto_tables, schedule

SERVICE = "example-cluster/example-service-dev"


def cron_schedule(start: str, stop: str, service: str = SERVICE) -> dict[str, object]:
    return {"kind": "schedule", "service": service, "cron": [{"start": start, "stop": stop}]}


@pytest.mark.parametrize(
    ("start", "stop", "field", "words"),
    [
        ("*/2 * * * *", "0 17 * * *", "cron[0].start", "fires up to 720 times a day"),
        ("0 9 * * *", "* 17,18 * * *", "cron[0].stop", "fires up to 120 times a day"),
        ("0 0 29 2 *", "0 0 1 3 *", "cron[0].start", "can go 1460 days without firing"),
        ("0 0 1 4 *", "0 0 31 4,6 *", "cron[0].stop", "never fires"),
    ],
)
def test_validation_refuses_costly_and_rare_expressions(
    start: str, stop: str, field: str, words: str
) -> None:
    docs, problems = validate_documents([("dense.yaml", 1, cron_schedule(start, stop))])
    assert not docs.schedules
    assert [p.path for p in problems] == [field]
    assert words in problems[0].message
    assert problems[0].document == f"schedule {SERVICE}"


@pytest.mark.parametrize(
    ("start", "stop"),
    [
        ("*/15 * * * *", "5,20,35,50 * * * *"),  # 96 a day: as often as teiji acts
        ("0 0 1 4 *", "0 0 1 6 *"),  # once a year
        ("0 0 L 2 *", "0 0 1 3 *"),  # the last day of February, every year
        ("0 9 29 2 mon", "0 17 * * *"),  # 29 February or any Monday
    ],
)
def test_validation_accepts_what_fires_at_most_96_times_a_day_and_once_a_year(
    start: str, stop: str
) -> None:
    docs, problems = validate_documents([("ok.yaml", 1, cron_schedule(start, stop))])
    assert not problems
    assert SERVICE in docs.schedules


def test_the_decider_refuses_a_costly_rule_that_skipped_validation() -> None:
    dense = Schedule.model_validate(cron_schedule("*/2 * * * *", "1-59/2 * * * *"))
    with pytest.raises(ValueError, match=rf"cron\[0\]\.start: .*at most {MAX_CRON_FIRES_PER_DAY}"):
        Decider().decide(dense, datetime(2026, 12, 2, tzinfo=UTC))


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables() as w:
        yield w


def test_a_tick_with_twenty_dense_schedules_still_stops_the_canary(world: World) -> None:
    # Someone writes 20 dense cron schedules straight into the table, next to an always_off
    # canary. The tick names each dense one and stops the canary.
    world.create_service("c1", "canary", desired=2, target=(1, 4))
    world.put(schedule("c1/canary", mode="always_off"))
    for n in range(20):
        world.create_service("c1", f"dense-{n:02d}", desired=1)
        world.put(cron_schedule("*/2 * * * *", f"1-59/2 * 1-{n + 2} * *", f"c1/dense-{n:02d}"))
    when = at("2026-12-02T12:00:00+09:00")
    report = run_tick(world.clients(), world.settings, at=when, dry_run=False)
    assert report.service("c1/canary").outcome == "changed"
    assert world.state("c1", "canary").desired == 0
    dense = [s for s in report.services if s.key.startswith("c1/dense-")]
    assert len(dense) == 20
    assert all(s.outcome == "failed" for s in dense), [s.outcome for s in dense]
    assert all("720 times a day" in (s.error or "") for s in dense)
    assert all(world.state("c1", f"dense-{n:02d}").desired == 1 for n in range(20))
