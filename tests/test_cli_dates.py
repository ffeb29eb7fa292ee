"""Dates at the ends of the calendar for the commands that take a range: refused as bad input
(exit 2) naming the flag and the dates allowed, never an OverflowError from the date
arithmetic (the day after 9999-12-31, or 0001-01-01 in a zone east of UTC)."""

from __future__ import annotations

import pytest

from engine.cli.main import main

EDGES = ["0001-01-01", "1969-12-31", "3000-01-01", "9999-12-31"]


@pytest.mark.parametrize("day", EDGES)
@pytest.mark.parametrize("command", ["simulate", "savings"])
def test_a_date_out_of_range_is_bad_input_that_names_the_flag(
    capsys: pytest.CaptureFixture[str], command: str, day: str
) -> None:
    code = main([command, "--from", day, "--to", day, "--file", "sample_schedules"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--from" in err and "1970-01-01" in err and "Overflow" not in err
