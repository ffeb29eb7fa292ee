"""Only the countries the documents name are imported, and they answer as the library does.

Each check runs in a fresh interpreter: this test process may have imported every country
already (any test that calls ``holidays.list_supported_countries()`` does).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _fresh(code: str) -> Any:
    """Run ``code`` in a new interpreter; it prints one JSON value last."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_deciding_a_jp_schedule_imports_japan_alone() -> None:
    found = _fresh(
        """
        import json, sys
        from datetime import datetime, timezone
        from engine.decide import decide
        from schemas.documents import Schedule
        from schemas.validation import validate_documents

        raw = {"kind": "schedule", "service": "c/web", "timezone": "Asia/Tokyo",
               "holidays": ["JP"], "windows": [{"days": "mon-fri", "start": "09:00",
               "end": "18:00"}]}
        docs, problems = validate_documents([("schedules.yaml", 0, raw)])
        schedule = Schedule.model_validate(raw)
        # 2026-05-06 is a substitute holiday in Japan (a Wednesday): stopped all day.
        decision = decide(schedule, datetime(2026, 5, 6, 3, 0, tzinfo=timezone.utc))
        print(json.dumps({
            "problems": [str(p) for p in problems],
            "state": decision.state,
            "holiday": decision.holiday,
            "countries": sorted(m for m in sys.modules if m.startswith("holidays.countries.")),
        }))
        """
    )
    assert found["problems"] == []
    assert found["state"] == "stopped"
    assert found["holiday"] == "Substitute Holiday (JP)"
    assert found["countries"] == ["holidays.countries.japan"]
    assert "holidays.countries.united_states" not in found["countries"]


def test_country_names_are_checked_without_importing_any_country() -> None:
    found = _fresh(
        """
        import json, sys
        from engine.calendars import HolidayCalendars
        from schemas.validation import validate_documents

        raw = {"kind": "schedule", "service": "c/web", "mode": "always_off",
               "holidays": ["XX", "JP", "GB"]}
        docs, problems = validate_documents([("a.yaml", 0, raw)])
        print(json.dumps({
            "problems": [str(p) for p in problems],
            "known": [HolidayCalendars.is_country(n) for n in ("JP", "US", "ZZ", "jp")],
            "countries": sorted(m for m in sys.modules if m.startswith("holidays.countries.")),
        }))
        """
    )
    assert len(found["problems"]) == 1 and "'XX' is not a country code" in found["problems"][0]
    assert found["known"] == [True, True, False, False]
    assert found["countries"] == []


def test_every_country_answers_as_the_library_does() -> None:
    # Codes and subdivisions from the registry and one module at a time, against the library's
    # own list (which it builds through its lazy loaders) in the same fresh process.
    found = _fresh(
        """
        import json
        import holidays
        from schemas import countries

        ours = {c: sorted(countries.subdivisions(c)) for c in sorted(countries.country_codes())}
        theirs = {c: sorted(s) for c, s in holidays.list_supported_countries().items()}
        print(json.dumps({"same": ours == theirs, "codes": len(ours),
                          "missing": sorted(set(theirs) - set(ours)),
                          "extra": sorted(set(ours) - set(theirs))}))
        """
    )
    assert found["missing"] == [] and found["extra"] == []
    assert found["same"] is True and found["codes"] > 200


def test_holidays_are_the_librarys_and_the_library_still_works_afterwards() -> None:
    # Japan first (the package's __init__ deferred), then territories that import their parent
    # country, a subdivision, an alias; then the library used the usual ways.
    found = _fresh(
        """
        import json, sys
        import holidays
        from engine.calendars import _national_holidays

        names = ["JP", "AS", "US-NY", "UK", "GU", "DE-BY", "FR", "PR"]
        ours = {n: {str(d): h for d, h in _national_holidays(n, y).items()}
                for n in names for y in (2025, 2026)}
        loaded_before = sorted(m for m in sys.modules if m.startswith("holidays.countries."))
        from holidays.countries import Germany, UnitedStates   # the package's __init__ now runs
        theirs = {}
        for n in names:
            code, _, sub = n.partition("-")
            for y in (2025, 2026):
                lang = "en_US" if "en_US" in getattr(holidays, code).supported_languages else None
                found = holidays.country_holidays(code, subdiv=sub or None, years=y, language=lang)
                theirs.setdefault(n, {}).update({str(d): h for d, h in found.items()})
        ours_merged = {}
        for n in names:
            for y in (2025, 2026):
                ours_merged.setdefault(n, {}).update(
                    {str(d): h for d, h in _national_holidays(n, y).items()})
        print(json.dumps({
            "same": ours_merged == theirs,
            "loaded_before": loaded_before,
            "all_loaded_after": len([m for m in sys.modules
                                     if m.startswith("holidays.countries.")]),
            "germany": Germany.__name__, "us": UnitedStates.__name__,
            "jp_via_library": str(holidays.JP(years=2026).get("2026-05-06")),
        }))
        """
    )
    assert found["same"] is True
    assert "holidays.countries.united_states" in found["loaded_before"]  # AS, GU, PR need it
    assert "holidays.countries.brazil" not in found["loaded_before"]
    assert len(found["loaded_before"]) <= 9
    assert found["all_loaded_after"] > 200
    assert (found["germany"], found["us"]) == ("Germany", "UnitedStates")
    assert found["jp_via_library"] == "Substitute Holiday"


def test_threads_loading_countries_at_once_all_get_them() -> None:
    # The tick decides in threads: several first lookups of different countries at the same
    # moment each get their country, once.
    found = _fresh(
        """
        import json
        from concurrent.futures import ThreadPoolExecutor
        from schemas import countries

        codes = ["JP", "US", "GB", "DE", "FR", "AS", "GU", "CA"] * 4
        with ThreadPoolExecutor(16) as pool:
            classes = list(pool.map(countries.holiday_class, codes))
        print(json.dumps({"names": sorted({c.__name__ for c in classes}),
                          "one_each": len({id(c) for c in classes}) == 8}))
        """
    )
    assert found["one_each"] is True
    assert found["names"] == ["AS", "CA", "DE", "FR", "GB", "GU", "JP", "US"]
