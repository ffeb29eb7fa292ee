"""``teiji savings`` for a range that is not over (this week, asked on its first day): the
realised column stops at now while the prediction covers the whole range, and the report says
so instead of leaving a person to read the difference as lost savings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import pytz

from tests.test_savings_cli import extracted, put, real_tick, savings
from tests.test_savings_cli import world as base_world
from tests.world import World

__all__ = ["base_world"]


def test_a_range_not_over_says_how_far_the_metrics_go(
    base_world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    quarter = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
    put(base_world, extracted(real_tick(base_world, quarter)))
    today = now.astimezone(pytz.timezone("Asia/Tokyo")).date()
    week = ["--from", str(today), "--to", str(today + timedelta(days=6))]
    code, report, err = savings(capsys, endpoint, *week, "--json")
    assert code == 0, err
    through = datetime.fromisoformat(report["realised_through"])
    assert quarter <= through <= datetime.now(UTC)
    code, text, _ = savings(capsys, endpoint, *week)
    assert code == 0 and "the range is not over: realised up to" in text
