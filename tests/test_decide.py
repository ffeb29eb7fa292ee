"""The decision rules, case by case, with explicit instants."""

from __future__ import annotations

import io
import tokenize
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.decide import LOOKAHEAD, Decider, decide
from engine.localtime import localize, zone
from engine.model import Decision
from schemas.documents import Calendar, Override, Schedule

TOKYO = zone("Asia/Tokyo")
NEW_YORK = zone("America/New_York")
SERVICE = "example-cluster/example-service-stg"


def jst(*args: int) -> datetime:
    return localize(TOKYO, datetime(*args))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def schedule(**fields: Any) -> Schedule:
    return Schedule.model_validate({"service": SERVICE, **fields})


def override(state: str, until: datetime, start: datetime | None = None, **fields: Any) -> Override:
    return Override.model_validate(
        {
            "service": SERVICE,
            "state": state,
            "start": start,
            "until": until,
            "reason": fields.pop("reason", "release night"),
            **fields,
        }
    )


COMPANY = Calendar.model_validate(
    {
        "name": "company",
        "dates": ["2026-08-14"],
        "ranges": [{"from": "2026-12-29", "to": "2027-01-03"}],
    }
)

# The hand-written tool's intended schedule: Monday to Friday 05:00-22:00 JST.
OFFICE_HOURS = schedule(windows=[{"days": "mon-fri", "start": "05:00", "end": "22:00"}])
OFFICE_HOURS_JP = schedule(
    windows=[{"days": "mon-fri", "start": "05:00", "end": "22:00"}], holidays=["JP"]
)
OFFICE_HOURS_COMPANY = schedule(
    windows=[{"days": "mon-fri", "start": "05:00", "end": "22:00"}], holidays=["company"]
)
FRIDAY_NIGHT = schedule(windows=[{"days": "fri", "start": "22:00", "end": "06:00"}])
FRI_TO_MON = schedule(windows=[{"days": "fri-mon", "start": "09:00", "end": "17:00"}])
SATURDAY_TO_MIDNIGHT = schedule(windows=[{"days": "sat", "start": "08:00", "end": "24:00"}])
WHOLE_DAYS = schedule(windows=[{"days": "daily", "start": "00:00", "end": "24:00"}])
NIGHTLY_JP = schedule(
    windows=[{"days": "daily", "start": "22:00", "end": "06:00"}], holidays=["JP"]
)
CRON_OFFICE = schedule(cron=[{"start": "0 5 * * mon-fri", "stop": "0 22 * * mon-fri"}])
CRON_OFFICE_JP = schedule(
    cron=[{"start": "0 5 * * mon-fri", "stop": "0 22 * * mon-fri"}], holidays=["JP"]
)
# Starts every morning, stops only on Friday evening.
CRON_DAILY_START_FRIDAY_STOP_JP = schedule(
    cron=[{"start": "0 5 * * *", "stop": "0 22 * * fri"}], holidays=["JP"]
)
CRON_TIE = schedule(cron=[{"start": "0 12 * * *", "stop": "0 12 * * *"}])
CRON_NEW_YEAR_ONLY = schedule(cron=[{"start": "0 0 1 1 *", "stop": "0 0 31 12 *"}])
CRON_APRIL_TO_JUNE = schedule(cron=[{"start": "0 0 1 4 *", "stop": "0 0 1 6 *"}])
CRON_OVERNIGHT = schedule(cron=[{"start": "0 22 * * *", "stop": "0 6 * * *"}])
WINDOW_AND_CRON = schedule(
    windows=[{"days": "mon-fri", "start": "09:00", "end": "17:00"}],
    cron=[{"start": "0 20 * * *", "stop": "0 23 * * *"}],
)

NY_GAP_WINDOW = schedule(
    timezone="America/New_York", windows=[{"days": "daily", "start": "02:30", "end": "04:00"}]
)
NY_INTO_GAP_WINDOW = schedule(
    timezone="America/New_York", windows=[{"days": "daily", "start": "01:00", "end": "02:30"}]
)
NY_OVERLAP_WINDOW = schedule(
    timezone="America/New_York", windows=[{"days": "daily", "start": "01:30", "end": "03:00"}]
)
NY_INSIDE_OVERLAP_WINDOW = schedule(
    timezone="America/New_York", windows=[{"days": "daily", "start": "01:00", "end": "01:30"}]
)
NY_GAP_CRON = schedule(
    timezone="America/New_York", cron=[{"start": "30 2 * * *", "stop": "0 4 * * *"}]
)
NY_OVERLAP_CRON = schedule(
    timezone="America/New_York", cron=[{"start": "30 1 * * *", "stop": "45 1 * * *"}]
)


def check(
    decision: Decision,
    state: str,
    source: str,
    next_change: datetime | None,
    holiday: str | None = None,
) -> None:
    assert (decision.state, decision.source) == (state, source), decision.reason
    assert decision.next_change == next_change
    assert decision.holiday == holiday


# 2026-06-01 is a Monday with no Japanese holiday in its week.
# fmt: off
SCHEDULED_CASES = [
    # --- the intended office hours ----------------------------------------------------------
    pytest.param(
        OFFICE_HOURS, jst(2026, 6, 1, 4, 59), "stopped", "default", jst(2026, 6, 1, 5), None,
        id="office-monday-before-05",
    ),
    pytest.param(
        OFFICE_HOURS, jst(2026, 6, 1, 5), "running", "window", jst(2026, 6, 1, 22), None,
        id="office-monday-05-exactly-starts",
    ),
    pytest.param(
        OFFICE_HOURS, jst(2026, 6, 1, 10), "running", "window", jst(2026, 6, 1, 22), None,
        id="office-monday-10",
    ),
    pytest.param(
        OFFICE_HOURS, jst(2026, 6, 5, 21, 59), "running", "window", jst(2026, 6, 5, 22), None,
        id="office-friday-21-59",
    ),
    pytest.param(
        OFFICE_HOURS, jst(2026, 6, 5, 22), "stopped", "default", jst(2026, 6, 8, 5), None,
        id="office-friday-22-end-is-exclusive",
    ),
    pytest.param(
        OFFICE_HOURS, jst(2026, 6, 6, 6), "stopped", "default", jst(2026, 6, 8, 5), None,
        id="office-saturday-06",
    ),
    pytest.param(
        OFFICE_HOURS, jst(2026, 6, 7, 23), "stopped", "default", jst(2026, 6, 8, 5), None,
        id="office-sunday-23",
    ),
    # --- Japanese national holidays -----------------------------------------------------------
    pytest.param(
        OFFICE_HOURS_JP, jst(2026, 5, 1, 10), "running", "window", jst(2026, 5, 1, 22), None,
        id="jp-friday-before-golden-week-runs",
    ),
    pytest.param(
        OFFICE_HOURS_JP, jst(2026, 5, 4, 10), "stopped", "holiday", jst(2026, 5, 7, 5),
        "Greenery Day (JP)", id="jp-greenery-day-next-change-after-golden-week",
    ),
    pytest.param(
        OFFICE_HOURS_JP, jst(2026, 5, 6, 10), "stopped", "holiday", jst(2026, 5, 7, 5),
        "Substitute Holiday (JP)", id="jp-2026-05-06-substitute-holiday",
    ),
    pytest.param(
        OFFICE_HOURS_JP, jst(2026, 5, 6, 4), "stopped", "default", jst(2026, 5, 7, 5), None,
        id="jp-holiday-before-the-window-would-start-is-default",
    ),
    pytest.param(
        OFFICE_HOURS_JP, jst(2025, 2, 24, 10), "stopped", "holiday", jst(2025, 2, 25, 5),
        "Substitute Holiday (JP)", id="jp-2025-02-24-substitute-holiday",
    ),
    pytest.param(
        OFFICE_HOURS_JP, jst(2026, 9, 22, 10), "stopped", "holiday", jst(2026, 9, 24, 5),
        "National Holiday (JP)", id="jp-2026-09-22-citizens-holiday",
    ),
    pytest.param(
        OFFICE_HOURS_JP, jst(2026, 9, 21, 10), "stopped", "holiday", jst(2026, 9, 24, 5),
        "Respect for the Aged Day (JP)", id="jp-respect-for-the-aged-day",
    ),
    pytest.param(
        OFFICE_HOURS, jst(2026, 9, 22, 10), "running", "window", jst(2026, 9, 22, 22), None,
        id="jp-holidays-only-apply-when-listed",
    ),
    # --- company calendars ------------------------------------------------------------------
    pytest.param(
        OFFICE_HOURS_COMPANY, jst(2026, 8, 14, 10), "stopped", "holiday", jst(2026, 8, 17, 5),
        "company calendar 'company'", id="company-single-date",
    ),
    pytest.param(
        OFFICE_HOURS_COMPANY, jst(2026, 12, 28, 10), "running", "window", jst(2026, 12, 28, 22),
        None, id="company-day-before-range-runs",
    ),
    pytest.param(
        OFFICE_HOURS_COMPANY, jst(2026, 12, 29, 10), "stopped", "holiday", jst(2027, 1, 4, 5),
        "company calendar 'company'", id="company-range-first-day",
    ),
    pytest.param(
        OFFICE_HOURS_COMPANY, jst(2027, 1, 1, 10), "stopped", "holiday", jst(2027, 1, 4, 5),
        "company calendar 'company'", id="company-range-new-year",
    ),
    pytest.param(
        OFFICE_HOURS_COMPANY, jst(2027, 1, 4, 10), "running", "window", jst(2027, 1, 4, 22), None,
        id="company-day-after-range-runs",
    ),
    # --- overnight windows and weekends ---------------------------------------------------------
    pytest.param(
        FRIDAY_NIGHT, jst(2026, 6, 5, 21, 59), "stopped", "default", jst(2026, 6, 5, 22), None,
        id="overnight-friday-before-start",
    ),
    pytest.param(
        FRIDAY_NIGHT, jst(2026, 6, 6, 3), "running", "window", jst(2026, 6, 6, 6), None,
        id="overnight-friday-22-06-runs-into-saturday",
    ),
    pytest.param(
        FRIDAY_NIGHT, jst(2026, 6, 6, 6), "stopped", "default", jst(2026, 6, 12, 22), None,
        id="overnight-ends-saturday-06",
    ),
    pytest.param(
        FRIDAY_NIGHT, jst(2026, 6, 5, 3), "stopped", "default", jst(2026, 6, 5, 22), None,
        id="overnight-thursday-night-is-not-friday",
    ),
    pytest.param(
        FRI_TO_MON, jst(2026, 6, 6, 10), "running", "window", jst(2026, 6, 6, 17), None,
        id="wrapped-fri-mon-saturday",
    ),
    pytest.param(
        FRI_TO_MON, jst(2026, 6, 7, 10), "running", "window", jst(2026, 6, 7, 17), None,
        id="wrapped-fri-mon-sunday",
    ),
    pytest.param(
        FRI_TO_MON, jst(2026, 6, 8, 10), "running", "window", jst(2026, 6, 8, 17), None,
        id="wrapped-fri-mon-monday",
    ),
    pytest.param(
        FRI_TO_MON, jst(2026, 6, 9, 10), "stopped", "default", jst(2026, 6, 12, 9), None,
        id="wrapped-fri-mon-tuesday-off",
    ),
    pytest.param(
        SATURDAY_TO_MIDNIGHT, jst(2026, 6, 6, 23, 59), "running", "window", jst(2026, 6, 7), None,
        id="24:00-end-is-next-midnight",
    ),
    pytest.param(
        SATURDAY_TO_MIDNIGHT, jst(2026, 6, 7), "stopped", "default", jst(2026, 6, 13, 8), None,
        id="24:00-end-is-exclusive",
    ),
    pytest.param(
        WHOLE_DAYS, jst(2026, 6, 6, 12), "running", "window", None, None,
        id="00:00-24:00-daily-never-changes",
    ),
    # --- a window that began the evening before a holiday ---------------------------------------
    pytest.param(
        NIGHTLY_JP, jst(2026, 9, 21, 3), "running", "window", jst(2026, 9, 21, 6), None,
        id="night-before-holiday-runs-to-its-end",
    ),
    pytest.param(
        NIGHTLY_JP, jst(2026, 9, 21, 23), "stopped", "holiday", jst(2026, 9, 24, 22),
        "Respect for the Aged Day (JP)", id="night-starting-on-holiday-is-skipped",
    ),
    pytest.param(
        NIGHTLY_JP, jst(2026, 9, 24, 2), "stopped", "holiday", jst(2026, 9, 24, 22),
        "Autumnal Equinox Day (JP)", id="night-that-started-on-holiday-stays-off-after-midnight",
    ),
    pytest.param(
        NIGHTLY_JP, jst(2026, 9, 24, 23), "running", "window", jst(2026, 9, 25, 6), None,
        id="night-after-holidays-runs",
    ),
    # --- cron pairs -----------------------------------------------------------------------------
    pytest.param(
        CRON_OFFICE, jst(2026, 6, 1, 10), "running", "cron", jst(2026, 6, 1, 22), None,
        id="cron-monday-10",
    ),
    pytest.param(
        CRON_OFFICE, jst(2026, 6, 1, 22), "stopped", "default", jst(2026, 6, 2, 5), None,
        id="cron-stop-fire-at-t-stops",
    ),
    pytest.param(
        CRON_OFFICE, jst(2026, 6, 6, 10), "stopped", "default", jst(2026, 6, 8, 5), None,
        id="cron-saturday-after-friday-stop",
    ),
    pytest.param(
        CRON_OFFICE_JP, jst(2026, 5, 6, 10), "stopped", "holiday", jst(2026, 5, 7, 5),
        "Substitute Holiday (JP)", id="cron-holiday-suppresses-start-fire",
    ),
    pytest.param(
        CRON_DAILY_START_FRIDAY_STOP_JP, jst(2026, 5, 4, 10), "running", "cron",
        jst(2026, 5, 8, 22), None, id="cron-latest-unsuppressed-start-counts",
    ),
    pytest.param(
        CRON_TIE, jst(2026, 6, 1, 12), "stopped", "default", None, None,
        id="cron-tie-at-the-fire-is-stopped",
    ),
    pytest.param(
        CRON_TIE, jst(2026, 6, 1, 18), "stopped", "default", None, None,
        id="cron-tie-stays-stopped",
    ),
    pytest.param(
        CRON_NEW_YEAR_ONLY, jst(2026, 6, 1, 10), "running", "cron", None, None,
        id="cron-yearly-start-still-runs-five-months-later",
    ),
    pytest.param(
        CRON_NEW_YEAR_ONLY, jst(2026, 1, 1, 10), "running", "cron", None, None,
        id="cron-start-without-stop-runs",
    ),
    pytest.param(
        CRON_NEW_YEAR_ONLY, jst(2026, 12, 30, 23, 59), "running", "cron", jst(2026, 12, 31), None,
        id="cron-yearly-start-runs-until-its-stop",
    ),
    pytest.param(
        CRON_NEW_YEAR_ONLY, jst(2026, 12, 31, 12), "stopped", "default", jst(2027, 1, 1), None,
        id="cron-yearly-stop-stops-until-the-next-start",
    ),
    pytest.param(
        CRON_APRIL_TO_JUNE, jst(2026, 5, 10), "running", "cron", None, None,
        id="cron-rare-start-40-days-ago-still-runs",
    ),
    pytest.param(
        CRON_APRIL_TO_JUNE, jst(2026, 5, 31, 12), "running", "cron", jst(2026, 6, 1), None,
        id="cron-rare-start-runs-until-its-stop",
    ),
    pytest.param(
        CRON_APRIL_TO_JUNE, jst(2027, 2, 1), "stopped", "default", None, None,
        id="cron-rare-stop-holds-until-the-next-start",
    ),
    pytest.param(
        CRON_APRIL_TO_JUNE, jst(2027, 3, 25), "stopped", "default", jst(2027, 4, 1), None,
        id="cron-rare-pair-next-start-in-look-ahead",
    ),
    pytest.param(
        CRON_OVERNIGHT, jst(2026, 6, 2, 3), "running", "cron", jst(2026, 6, 2, 6), None,
        id="cron-overnight-pair",
    ),
    pytest.param(
        WINDOW_AND_CRON, jst(2026, 6, 1, 21), "running", "cron", jst(2026, 6, 1, 23), None,
        id="window-and-cron-cron-runs-evening",
    ),
    pytest.param(
        WINDOW_AND_CRON, jst(2026, 6, 1, 18), "stopped", "default", jst(2026, 6, 1, 20), None,
        id="window-and-cron-gap-between",
    ),
    # --- DST in America/New_York ---------------------------------------------------------------
    pytest.param(
        NY_GAP_WINDOW, utc(2026, 3, 8, 6, 59), "stopped", "default", utc(2026, 3, 8, 7), None,
        id="ny-gap-window-start-0230-moves-to-0300-edt",
    ),
    pytest.param(
        NY_GAP_WINDOW, utc(2026, 3, 8, 7), "running", "window", utc(2026, 3, 8, 8), None,
        id="ny-gap-window-runs-from-0300-edt-to-0400-edt",
    ),
    pytest.param(
        NY_INTO_GAP_WINDOW, utc(2026, 3, 8, 6, 30), "running", "window", utc(2026, 3, 8, 7), None,
        id="ny-window-ending-in-gap-ends-at-0300-edt",
    ),
    pytest.param(
        NY_OVERLAP_WINDOW, utc(2026, 11, 1, 5, 29), "stopped", "default", utc(2026, 11, 1, 5, 30),
        None, id="ny-overlap-window-starts-at-first-0130-edt",
    ),
    pytest.param(
        NY_OVERLAP_WINDOW, utc(2026, 11, 1, 6, 45), "running", "window", utc(2026, 11, 1, 8), None,
        id="ny-overlap-window-runs-through-second-0145-to-0300-est",
    ),
    pytest.param(
        NY_INSIDE_OVERLAP_WINDOW, utc(2026, 11, 1, 5, 10), "running", "window",
        utc(2026, 11, 1, 5, 30), None, id="ny-window-inside-overlap-runs-once",
    ),
    pytest.param(
        NY_INSIDE_OVERLAP_WINDOW, utc(2026, 11, 1, 6, 15), "stopped", "default",
        utc(2026, 11, 2, 6), None, id="ny-window-inside-overlap-not-repeated",
    ),
    pytest.param(
        NY_GAP_CRON, utc(2026, 3, 8, 6, 59), "stopped", "default", utc(2026, 3, 8, 7), None,
        id="ny-gap-cron-fire-0230-moves-to-0300-edt",
    ),
    pytest.param(
        NY_GAP_CRON, utc(2026, 3, 8, 7), "running", "cron", utc(2026, 3, 8, 8), None,
        id="ny-gap-cron-runs-after-gap",
    ),
    pytest.param(
        NY_OVERLAP_CRON, utc(2026, 11, 1, 5, 40), "running", "cron", utc(2026, 11, 1, 5, 45), None,
        id="ny-overlap-cron-fires-at-first-0130",
    ),
    pytest.param(
        NY_OVERLAP_CRON, utc(2026, 11, 1, 6, 35), "stopped", "default", utc(2026, 11, 2, 6, 30),
        None, id="ny-overlap-cron-does-not-fire-again-at-second-0130",
    ),
]
# fmt: on


@pytest.mark.parametrize(
    ("rules", "at", "state", "source", "next_change", "holiday"), SCHEDULED_CASES
)
def test_scheduled(
    rules: Schedule,
    at: datetime,
    state: str,
    source: str,
    next_change: datetime | None,
    holiday: str | None,
) -> None:
    decider = Decider({"company": COMPANY})
    check(decider.decide(rules, at), state, source, next_change, holiday)


# --- overrides -----------------------------------------------------------------------------

# fmt: off
OVERRIDE_CASES = [
    pytest.param(
        OFFICE_HOURS, [override("running", jst(2026, 6, 3, 2), start=jst(2026, 6, 2, 21))],
        jst(2026, 6, 2, 23, 30), "running", "override", jst(2026, 6, 3, 2),
        id="keep-it-up-across-midnight",
    ),
    pytest.param(
        OFFICE_HOURS, [override("running", jst(2026, 6, 3, 2), start=jst(2026, 6, 2, 21))],
        jst(2026, 6, 3, 2), "stopped", "default", jst(2026, 6, 3, 5),
        id="after-override-ends-schedule-resumes",
    ),
    pytest.param(
        OFFICE_HOURS, [override("running", jst(2026, 6, 3, 2), start=jst(2026, 6, 2, 21))],
        jst(2026, 6, 2, 12), "running", "window", jst(2026, 6, 3, 2),
        id="override-continuing-the-window-moves-next-change",
    ),
    pytest.param(
        OFFICE_HOURS_JP, [override("running", jst(2026, 5, 6, 18))], jst(2026, 5, 6, 10), "running",
        "override", jst(2026, 5, 6, 18), id="override-on-a-holiday",
    ),
    pytest.param(
        OFFICE_HOURS, [override("stopped", jst(2026, 6, 1, 12))], jst(2026, 6, 1, 10), "stopped",
        "override", jst(2026, 6, 1, 12), id="stopped-override-inside-window-ends-into-running",
    ),
    pytest.param(
        OFFICE_HOURS, [override("running", jst(2026, 6, 1, 12))], jst(2026, 6, 1, 10), "running",
        "override", jst(2026, 6, 1, 22), id="override-ending-with-same-state-is-not-a-change",
    ),
    pytest.param(
        OFFICE_HOURS, [override("stopped", jst(2026, 6, 1, 14), start=jst(2026, 6, 1, 12))],
        jst(2026, 6, 1, 10), "running", "window", jst(2026, 6, 1, 12),
        id="future-override-start-is-the-next-change",
    ),
    pytest.param(
        OFFICE_HOURS, [override("running", jst(2026, 6, 1, 14), start=jst(2026, 6, 1, 12))],
        jst(2026, 6, 1, 10), "running", "window", jst(2026, 6, 1, 22),
        id="future-override-with-same-state-is-not-a-change",
    ),
    pytest.param(
        OFFICE_HOURS, [override("running", jst(2026, 6, 2, 2), start=jst(2026, 6, 1, 23))],
        jst(2026, 6, 1, 23), "running", "override", jst(2026, 6, 2, 2),
        id="override-start-is-inclusive",
    ),
    pytest.param(
        OFFICE_HOURS,
        [
            override("running", jst(2026, 6, 2, 4), id="whole-night"),
            override("stopped", jst(2026, 6, 2, 1), start=jst(2026, 6, 1, 23), id="maintenance"),
            override("running", jst(2026, 6, 1, 23, 30), start=jst(2026, 6, 1, 23, 15), id="fix"),
        ], jst(2026, 6, 1, 23, 20), "running", "override", jst(2026, 6, 1, 23, 30),
        id="several-active-latest-start-wins",
    ),
    pytest.param(
        OFFICE_HOURS,
        [
            override("running", jst(2026, 6, 2, 4), id="whole-night"),
            override("stopped", jst(2026, 6, 2, 1), start=jst(2026, 6, 1, 23), id="maintenance"),
            override("running", jst(2026, 6, 1, 23, 30), start=jst(2026, 6, 1, 23, 15), id="fix"),
        ], jst(2026, 6, 1, 23, 45), "stopped", "override", jst(2026, 6, 2, 1),
        id="several-active-next-latest-start-after-one-ends",
    ),
    pytest.param(
        OFFICE_HOURS,
        [
            override("running", jst(2026, 6, 2, 4), id="whole-night"),
            override("stopped", jst(2026, 6, 2, 1), start=jst(2026, 6, 1, 23), id="maintenance"),
        ], jst(2026, 6, 1, 22, 30), "running", "override", jst(2026, 6, 1, 23),
        id="several-overrides-no-start-counts-as-earliest",
    ),
    pytest.param(
        OFFICE_HOURS, [override("running", jst(2026, 6, 2, 2), service="example-cluster/other")],
        jst(2026, 6, 1, 23), "stopped", "default", jst(2026, 6, 2, 5),
        id="override-for-another-service-is-ignored",
    ),
    pytest.param(
        OFFICE_HOURS, [override("running", jst(2026, 6, 2, 2), region="us-east-1")],
        jst(2026, 6, 1, 23), "stopped", "default", jst(2026, 6, 2, 5),
        id="override-for-same-name-in-another-region-is-ignored",
    ),
    pytest.param(
        OFFICE_HOURS, [override("running", jst(2026, 6, 1, 23))], jst(2026, 6, 1, 23), "stopped",
        "default", jst(2026, 6, 2, 5), id="override-until-is-exclusive",
    ),
    pytest.param(
        schedule(mode="always_on"), [], jst(2026, 6, 1, 23), "running", "mode", None,
        id="always-on",
    ),
    pytest.param(
        schedule(mode="always_off"), [], jst(2026, 6, 1, 23), "stopped", "mode", None,
        id="always-off",
    ),
    pytest.param(
        schedule(mode="always_on"), [override("stopped", jst(2026, 6, 2, 6))], jst(2026, 6, 1, 23),
        "stopped", "override", jst(2026, 6, 2, 6), id="always-on-under-stopped-override",
    ),
    pytest.param(
        schedule(mode="always_off"),
        [override("running", jst(2026, 6, 2, 6), start=jst(2026, 6, 2, 1))], jst(2026, 6, 1, 23),
        "stopped", "mode", jst(2026, 6, 2, 1), id="always-off-with-upcoming-override",
    ),
    pytest.param(
        schedule(mode="unmanaged"), [], jst(2026, 6, 1, 23), "unmanaged", "mode", None,
        id="unmanaged",
    ),
    pytest.param(
        schedule(mode="unmanaged", windows=[{"days": "daily", "start": "05:00", "end": "22:00"}]),
        [override("running", jst(2026, 6, 2, 6))], jst(2026, 6, 1, 23), "unmanaged", "mode", None,
        id="unmanaged-ignores-overrides-and-windows",
    ),
]
# fmt: on


@pytest.mark.parametrize(
    ("rules", "overrides", "at", "state", "source", "next_change"), OVERRIDE_CASES
)
def test_overrides_and_modes(
    rules: Schedule,
    overrides: Sequence[Override],
    at: datetime,
    state: str,
    source: str,
    next_change: datetime | None,
) -> None:
    check(Decider().decide(rules, at, overrides), state, source, next_change)


def test_override_decision_names_id_author_until_and_reason() -> None:
    decision = Decider().decide(
        OFFICE_HOURS,
        jst(2026, 6, 1, 23),
        [
            override(
                "running",
                jst(2026, 6, 2, 1, 30),
                id="late-release",
                created_by="alice@example.com",
                reason="release 2.4 goes out tonight",
            )
        ],
    )
    assert decision.override_id == "late-release"
    assert decision.override_by == "alice@example.com"
    assert decision.holiday is None
    for part in ("late-release", "alice@example.com", "2026-06-02 01:30 JST", "release 2.4"):
        assert part in decision.reason


def test_holiday_decision_names_the_holiday() -> None:
    decision = Decider().decide(OFFICE_HOURS_JP, jst(2026, 9, 22, 10))
    assert "National Holiday (JP)" in decision.reason
    assert "window mon-fri 05:00-22:00" in decision.reason


def test_lookahead_bounds_next_change() -> None:
    at = jst(2026, 6, 1, 22)
    assert Decider(lookahead=timedelta(hours=7)).decide(OFFICE_HOURS, at).next_change == jst(
        2026, 6, 2, 5
    )
    assert Decider(lookahead=timedelta(hours=6)).decide(OFFICE_HOURS, at).next_change is None
    assert timedelta(days=14) == LOOKAHEAD


def test_decision_is_expressed_in_the_schedules_timezone() -> None:
    decision = Decider().decide(OFFICE_HOURS, utc(2026, 6, 1, 1))
    assert decision.at == jst(2026, 6, 1, 10)
    assert decision.at.utcoffset() == timedelta(hours=9)
    assert decision.next_change is not None
    assert decision.next_change.utcoffset() == timedelta(hours=9)
    assert decision.next_change.replace(tzinfo=None) == datetime(2026, 6, 1, 22)
    ny = Decider().decide(NY_GAP_WINDOW, utc(2026, 3, 8, 6, 59))
    assert ny.next_change is not None
    assert ny.next_change.replace(tzinfo=None) == datetime(2026, 3, 8, 3)
    assert ny.next_change.utcoffset() == timedelta(hours=-4)


# --- the pytz LMT trap -------------------------------------------------------------------------


def test_tokyo_boundaries_are_plus_nine_hours_not_local_mean_time() -> None:
    segments = Decider().segments(OFFICE_HOURS, jst(2026, 6, 1), jst(2026, 6, 2))
    assert [(s.start.utcoffset(), s.end.utcoffset()) for s in segments] == [
        (timedelta(hours=9), timedelta(hours=9))
    ] * 3
    assert segments[1].start == utc(2026, 5, 31, 20)
    assert segments[1].end == utc(2026, 6, 1, 13)
    # A Tokyo time built with tzinfo= is 19 minutes off: 05:00 "JST" (LMT) is 04:41 JST.
    lmt = datetime(2026, 6, 1, 5, 0, tzinfo=TOKYO)
    assert lmt == jst(2026, 6, 1, 4, 41)
    assert Decider().decide(OFFICE_HOURS, lmt).state == "stopped"


def _tzinfo_arguments_with_a_zone(source: str) -> list[int]:
    """Line numbers where code passes ``tzinfo=`` a pytz zone (strings and comments skipped)."""
    tokens = [
        t
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type in (tokenize.NAME, tokenize.OP)
    ]
    found = []
    for i, token in enumerate(tokens[:-3]):
        if token.string == "tzinfo" and tokens[i + 1].string == "=":
            value = [t.string for t in tokens[i + 2 : i + 5]]
            if (
                value[:3] == ["pytz", ".", "timezone"]
                or value[:2] in (["zone", "("],)
                or (value[0] in ("tz", "tokyo", "TOKYO", "local_tz"))
            ):
                found.append(token.start[0])
    return found


def test_no_code_attaches_a_pytz_zone_with_tzinfo() -> None:
    assert _tzinfo_arguments_with_a_zone("x = datetime(2026, 1, 1, tzinfo=zone('Asia/Tokyo'))")
    assert _tzinfo_arguments_with_a_zone("x = y.replace(tzinfo=pytz.timezone('Asia/Tokyo'))")
    assert not _tzinfo_arguments_with_a_zone("x = datetime(2026, 1, 1, tzinfo=UTC)")
    assert not _tzinfo_arguments_with_a_zone('"""never datetime(..., tzinfo=zone(x))"""')
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in sorted([*root.glob("engine/**/*.py"), *root.glob("schemas/**/*.py")]):
        try:
            lines = _tzinfo_arguments_with_a_zone(path.read_text(encoding="utf-8"))
        except (tokenize.TokenError, SyntaxError):
            continue  # a file being edited; its own tests will say so
        offenders += [f"{path.relative_to(root)}:{line}" for line in lines]
    assert offenders == [], "use engine.localtime.localize instead of tzinfo=<pytz zone>"


# --- segments ------------------------------------------------------------------------------


def test_segments_cover_the_range_and_merge_equal_neighbours() -> None:
    segments = Decider().segments(OFFICE_HOURS, jst(2026, 6, 5, 12), jst(2026, 6, 8, 12))
    assert [(s.start, s.end, s.state, s.source) for s in segments] == [
        (jst(2026, 6, 5, 12), jst(2026, 6, 5, 22), "running", "window"),
        (jst(2026, 6, 5, 22), jst(2026, 6, 8, 5), "stopped", "default"),
        (jst(2026, 6, 8, 5), jst(2026, 6, 8, 12), "running", "window"),
    ]


def test_segments_of_whole_days_merge_into_one() -> None:
    segments = Decider().segments(WHOLE_DAYS, jst(2026, 6, 1), jst(2026, 6, 30))
    assert [(s.start, s.end, s.state) for s in segments] == [
        (jst(2026, 6, 1), jst(2026, 6, 30), "running")
    ]


def test_segments_with_overrides_and_holidays() -> None:
    late = override("running", jst(2026, 5, 7, 1), start=jst(2026, 5, 6, 20), id="late")
    segments = Decider().segments(OFFICE_HOURS_JP, jst(2026, 5, 5, 12), jst(2026, 5, 7, 12), [late])
    assert [(s.start, s.end, s.state, s.source, s.override_id, s.holiday) for s in segments] == [
        (jst(2026, 5, 5, 12), jst(2026, 5, 5, 22), "stopped", "holiday", None,
         "Children's Day (JP)"),
        (jst(2026, 5, 5, 22), jst(2026, 5, 6, 5), "stopped", "default", None, None),
        (jst(2026, 5, 6, 5), jst(2026, 5, 6, 20), "stopped", "holiday", None,
         "Substitute Holiday (JP)"),
        (jst(2026, 5, 6, 20), jst(2026, 5, 7, 1), "running", "override", "late", None),
        (jst(2026, 5, 7, 1), jst(2026, 5, 7, 5), "stopped", "default", None, None),
        (jst(2026, 5, 7, 5), jst(2026, 5, 7, 12), "running", "window", None, None),
    ]  # fmt: skip


def test_segments_edge_cases() -> None:
    decider = Decider()
    assert decider.segments(OFFICE_HOURS, jst(2026, 6, 1), jst(2026, 6, 1)) == []
    with pytest.raises(ValueError, match="before start"):
        decider.segments(OFFICE_HOURS, jst(2026, 6, 2), jst(2026, 6, 1))
    unmanaged = decider.segments(schedule(mode="unmanaged"), jst(2026, 6, 1), jst(2026, 6, 2))
    assert [(s.state, s.source) for s in unmanaged] == [("unmanaged", "mode")]


# --- errors and the convenience wrapper -----------------------------------------------------


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="has no UTC offset"):
        Decider().decide(OFFICE_HOURS, datetime(2026, 6, 1, 10))
    with pytest.raises(ValueError, match="has no UTC offset"):
        Decider().segments(OFFICE_HOURS, datetime(2026, 6, 1), jst(2026, 6, 2))


def test_unknown_calendar_is_named() -> None:
    typo = schedule(
        windows=[{"days": "mon-fri", "start": "05:00", "end": "22:00"}], holidays=["compnay"]
    )
    with pytest.raises(ValueError, match=r"example-service-stg.*unknown calendar 'compnay'"):
        Decider({"company": COMPANY}).decide(typo, jst(2026, 6, 1, 10))
    # Asked again (nothing cached for a failed build), it fails the same way.
    decider = Decider()
    for _ in range(2):
        with pytest.raises(ValueError, match="'compnay'"):
            decider.decide(typo, jst(2026, 6, 1, 10))


def test_decide_wrapper_accepts_calendars_and_overrides() -> None:
    decision = decide(
        OFFICE_HOURS_COMPANY,
        jst(2026, 12, 29, 10),
        calendars={"company": COMPANY},
        overrides=[override("running", jst(2026, 12, 29, 12))],
    )
    check(decision, "running", "override", jst(2026, 12, 29, 12))
    assert decide(OFFICE_HOURS, jst(2026, 6, 1, 10)).state == "running"


def test_services_sharing_rules_get_their_own_overrides() -> None:
    decider = Decider()
    other = schedule(
        service="example-cluster/example-service-dev",
        windows=[{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
    )
    keep = override("running", jst(2026, 6, 2, 2))
    at = jst(2026, 6, 1, 23)
    assert decider.decide(OFFICE_HOURS, at, [keep]).state == "running"
    assert decider.decide(other, at, [keep]).state == "stopped"
    assert decider.decide(OFFICE_HOURS, at).state == "stopped"
