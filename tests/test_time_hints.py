"""A time typed as a number, in a console edit of the config table: the hint names the time."""

from __future__ import annotations

from decimal import Decimal

from tests.world import moto_tables


def test_a_dynamodb_number_900_suggests_0900() -> None:
    with moto_tables() as world:
        world.put_item(
            {
                "pk": "schedule",
                "sk": "c1/web",
                "timezone": "Asia/Tokyo",
                # The console's number type: {"N": "900"}, meant as 09:00.
                "windows": [{"days": "mon-fri", "start": Decimal(900), "end": "18:00"}],
            }
        )
        docs, problems = world.config().load()
    assert "c1/web" not in docs.schedules
    [problem] = problems
    assert problem.path == "windows[0].start"
    assert 'got the number 900; if you meant 09:00, write "09:00" in quotes' in problem.message
    assert '"15:00" (such tools read an unquoted 15:00 as 900, base 60)' in problem.message
