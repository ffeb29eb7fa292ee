"""The cold-start figure of the bench: how it is read from ``-X importtime`` and its bound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import coldstart, run

# What `python -X importtime` prints (module after the modules it imported, two spaces a
# level), with the runner's own imports before the mark.
IMPORTTIME = f"""\
import time: self [us] | cumulative | imported package
import time:      5000 |       5000 | json
{coldstart._MARK}
import time:       100 |        100 |       jmespath
import time:       300 |        400 |     botocore.utils
import time:      1000 |       1000 |     dataclasses
import time:       200 |       1600 |   boto3
import time:        50 |       1650 | engine.aws.clients
import time:      2000 |       2000 |     pydantic_core
import time:       500 |       2500 |   pydantic
import time:       100 |       2600 | schemas.documents
import time:       700 |        700 | botocore.exceptions
some other line on stderr
"""


def test_import_seconds_sum_every_module_after_the_mark() -> None:
    total, sdk = coldstart._import_seconds(IMPORTTIME)
    # json (the runner's) is not counted; everything after the mark is, once (self times).
    assert total == pytest.approx((100 + 300 + 1000 + 200 + 50 + 2000 + 500 + 100 + 700) / 1e6)
    # The SDK's: boto3 with what it imported first (dataclasses too), and botocore.exceptions.
    assert sdk == pytest.approx((1600 + 700) / 1e6)


def test_the_cold_start_bound_is_checked_and_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = {"cold_start_import_s": 0.61}
    found = [run.cold_start_bound(slow, measured=True)]
    assert found[0].holds is False and found[0].as_json()["bound"] == "< 0.5"
    out = tmp_path / "cold.json"
    assert run.finish(slow, found, out) == 1
    assert "bounds that do not hold: cold_start_import_s" in capsys.readouterr().err
    assert json.loads(out.read_text())["bounds_hold"] is False

    fast = {"cold_start_import_s": 0.42}
    assert run.finish(fast, [run.cold_start_bound(fast, measured=True)], None) == 0
    assert "every bound holds" in capsys.readouterr().out


def test_a_cold_start_that_did_not_run_fails_unless_skipped_on_purpose() -> None:
    assert run.cold_start_bound({}, measured=True).holds is False
    assert run.cold_start_bound({}, measured=False).holds is None
