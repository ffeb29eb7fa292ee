"""Holiday calendars: Japanese national holidays (incl. substitute and citizens'), company ones."""

from __future__ import annotations

from datetime import date

import pytest

from engine.calendars import HolidayCalendars
from schemas.documents import Calendar

COMPANY = Calendar.model_validate(
    {
        "kind": "calendar",
        "name": "company",
        "dates": ["2026-08-14"],
        "ranges": [{"from": "2026-12-29", "to": "2027-01-03"}],
    }
)


@pytest.fixture
def calendars() -> HolidayCalendars:
    return HolidayCalendars({"company": COMPANY})


@pytest.mark.parametrize(
    ("names", "day", "label"),
    [
        pytest.param(["JP"], date(2026, 1, 1), "New Year's Day (JP)", id="jp-new-year"),
        pytest.param(["JP"], date(2026, 5, 5), "Children's Day (JP)", id="jp-childrens-day"),
        pytest.param(
            ["JP"],
            date(2026, 5, 6),
            "Substitute Holiday (JP)",
            id="jp-2026-05-06-substitute-for-constitution-day-on-sunday",
        ),
        pytest.param(
            ["JP"],
            date(2025, 2, 24),
            "Substitute Holiday (JP)",
            id="jp-2025-02-24-substitute-for-emperors-birthday-on-sunday",
        ),
        pytest.param(
            ["JP"], date(2026, 9, 21), "Respect for the Aged Day (JP)", id="jp-respect-for-aged"
        ),
        pytest.param(
            ["JP"],
            date(2026, 9, 22),
            "National Holiday (JP)",
            id="jp-2026-09-22-citizens-holiday-between-two-holidays",
        ),
        pytest.param(
            ["JP"], date(2026, 9, 23), "Autumnal Equinox Day (JP)", id="jp-autumnal-equinox"
        ),
        pytest.param(["JP"], date(2026, 5, 7), None, id="jp-ordinary-thursday"),
        pytest.param(["JP"], date(2026, 9, 24), None, id="jp-day-after-silver-week"),
        pytest.param(["JP"], date(2026, 12, 29), None, id="jp-year-end-is-not-national"),
        pytest.param(["US"], date(2026, 2, 12), None, id="us-federal-no-lincolns-birthday"),
        pytest.param(
            ["US-NY"], date(2026, 2, 12), "Lincoln's Birthday (US-NY)", id="us-ny-subdivision"
        ),
        pytest.param(
            ["company"], date(2026, 8, 14), "company calendar 'company'", id="company-date"
        ),
        pytest.param(["company"], date(2026, 8, 13), None, id="company-day-before-date"),
        pytest.param(["company"], date(2026, 12, 28), None, id="company-day-before-range"),
        pytest.param(
            ["company"],
            date(2026, 12, 29),
            "company calendar 'company'",
            id="company-range-first-day-inclusive",
        ),
        pytest.param(
            ["company"], date(2026, 12, 31), "company calendar 'company'", id="company-range-middle"
        ),
        pytest.param(
            ["company"],
            date(2027, 1, 3),
            "company calendar 'company'",
            id="company-range-last-day-inclusive",
        ),
        pytest.param(["company"], date(2027, 1, 4), None, id="company-day-after-range"),
        pytest.param(
            ["company", "JP"],
            date(2027, 1, 1),
            "company calendar 'company'",
            id="first-listed-calendar-names-the-holiday",
        ),
        pytest.param(
            ["JP", "company"],
            date(2027, 1, 1),
            "New Year's Day (JP)",
            id="first-listed-calendar-names-the-holiday-reversed",
        ),
        pytest.param(
            ["company", "JP"],
            date(2026, 5, 6),
            "Substitute Holiday (JP)",
            id="later-calendar-when-first-has-none",
        ),
        pytest.param([], date(2026, 1, 1), None, id="no-calendars"),
    ],
)
def test_lookup(
    calendars: HolidayCalendars, names: list[str], day: date, label: str | None
) -> None:
    assert calendars.lookup(names, day) == label


@pytest.mark.parametrize(
    ("name", "known", "country"),
    [
        pytest.param("JP", True, True, id="jp"),
        pytest.param("US-NY", True, True, id="country-with-subdivision"),
        pytest.param("US-ZZ", False, False, id="unknown-subdivision"),
        pytest.param("XX", False, False, id="unknown-country"),
        pytest.param("jp", False, False, id="lower-case-is-not-a-country-code"),
        pytest.param("JPN", False, False, id="three-letter-code"),
        pytest.param("company", True, False, id="company-calendar"),
        pytest.param("Company", False, False, id="calendar-names-are-exact"),
    ],
)
def test_known_and_is_country(
    calendars: HolidayCalendars, name: str, known: bool, country: bool
) -> None:
    assert calendars.known(name) is known
    assert HolidayCalendars.is_country(name) is country


def test_unknown_calendar_is_named_in_the_error(calendars: HolidayCalendars) -> None:
    with pytest.raises(ValueError, match="unknown holiday calendar 'compnay'"):
        calendars.lookup(["JP", "compnay"], date(2026, 5, 7))


def test_first_match_wins_before_an_unknown_name_is_reached(calendars: HolidayCalendars) -> None:
    # Names are consulted in order; validation of schedules reports unknown names up front.
    assert calendars.lookup(["JP", "compnay"], date(2026, 1, 1)) == "New Year's Day (JP)"


def test_without_calendar_documents_only_countries_are_known() -> None:
    calendars = HolidayCalendars()
    assert calendars.known("JP")
    assert not calendars.known("company")
    assert calendars.lookup(["JP"], date(2027, 1, 1)) == "New Year's Day (JP)"
