"""Holiday calendars: national ones from the ``holidays`` library and company calendar documents.

A schedule's ``holidays`` lists calendar names. A name is either a country code the ``holidays``
library knows (``JP``, ``US``), optionally with a subdivision (``US-NY``), or the name of a
calendar document (``company``). Calendar documents cannot be named like country codes (the
document model refuses it), so the two never clash.

Japan's calendar from the library includes substitute holidays (振替休日) and citizens'
holidays (国民の休日), which is what a Japanese office closes on. Holiday names come in English
where the library has them, so reasons read the same for every operator.

Only the countries the documents name are imported, the first time a date is looked up in one
of them (``schemas.countries``): a tick whose schedules say ``JP`` loads Japan's module alone,
not the library's ~250 countries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from types import MappingProxyType

from schemas.countries import holiday_class
from schemas.countries import is_country as _is_country
from schemas.documents import Calendar

__all__ = ["HolidayCalendars"]

_NO_CALENDARS: Mapping[str, Calendar] = MappingProxyType({})
_LANGUAGE = "en_US"
_MAX_ANSWERS = 65536


class HolidayCalendars:
    """Answers "is this local date a holiday in any of these calendars, and which one?"."""

    def __init__(self, calendars: Mapping[str, Calendar] = _NO_CALENDARS) -> None:
        self._calendars: dict[str, _CompanyCalendar] = {
            name: _CompanyCalendar(name, calendar) for name, calendar in calendars.items()
        }
        self._country_years: dict[tuple[str, int], Mapping[date, str]] = {}
        # Answers by (names, date): a fleet's schedules list the same few calendars, and
        # deciding asks about every date of every window.
        self._answers: dict[tuple[tuple[str, ...], date], str | None] = {}

    def lookup(self, names: Sequence[str], day: date) -> str | None:
        """A label for the first holiday among ``names`` on ``day``, or None if there is none.

        Labels read "New Year's Day (JP)" or "company calendar 'company'". Raises ValueError
        naming any calendar that is neither a known country code nor a calendar document.
        """
        if type(names) is not tuple:
            return self._lookup(names, day)
        key = (names, day)
        try:
            return self._answers[key]
        except KeyError:
            pass
        if len(self._answers) >= _MAX_ANSWERS:
            self._answers.clear()
        found = self._answers[key] = self._lookup(names, day)
        return found

    def _lookup(self, names: Sequence[str], day: date) -> str | None:
        for name in names:
            label = self._lookup_one(name, day)
            if label is not None:
                return label
        return None

    def known(self, name: str) -> bool:
        """True for a country code the holidays library knows, or a calendar document's name."""
        return name in self._calendars or self.is_country(name)

    @staticmethod
    def is_country(name: str) -> bool:
        """True for ``CC`` or ``CC-SUB`` whose country and subdivision the library knows."""
        return _is_country(name)

    def _lookup_one(self, name: str, day: date) -> str | None:
        company = self._calendars.get(name)
        if company is not None:
            return company.label if company.contains(day) else None
        if self.is_country(name):
            holiday = self._country_year(name, day.year).get(day)
            return f"{holiday} ({name})" if holiday else None
        raise ValueError(
            f"unknown holiday calendar {name!r}: it is neither a country code the holidays "
            "library knows (such as JP or US-NY) nor the name of a calendar document"
        )

    def _country_year(self, name: str, year: int) -> Mapping[date, str]:
        cached = self._country_years.get((name, year))
        if cached is None:
            cached = _national_holidays(name, year)
            self._country_years[(name, year)] = cached
        return cached


class _CompanyCalendar:
    """A calendar document prepared for fast date checks."""

    __slots__ = ("_dates", "_ranges", "label")

    def __init__(self, name: str, calendar: Calendar) -> None:
        self.label = f"company calendar '{name}'"
        self._dates = frozenset(calendar.dates)
        self._ranges = tuple((r.from_, r.to) for r in calendar.ranges)

    def contains(self, day: date) -> bool:
        return day in self._dates or any(first <= day <= last for first, last in self._ranges)


def _national_holidays(name: str, year: int) -> Mapping[date, str]:
    country, _, subdivision = name.partition("-")
    # What holidays.country_holidays(country, ...) makes, without its lookup through the
    # package of every country.
    entity = holiday_class(country)
    language = _LANGUAGE if _LANGUAGE in entity.supported_languages else None
    found = entity(subdiv=subdivision or None, years=year, language=language)
    # A plain dict: HolidayBase.get() would compute years on demand, this never does.
    return {day: str(holiday) for day, holiday in found.items()}
