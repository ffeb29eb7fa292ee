"""The handler runs from the unpacked zip alone, as on Lambda.

A ``--local`` build is unpacked into a directory (Lambda's ``/var/task``); a fresh interpreter
with ``-I -S -B`` and a ``sys.path`` of only that directory and one holding the runtime's
boto3/botocore (bench/coldstart.py) invokes ``engine.handler.lambda_handler`` against moto's
server over HTTP. Not the repository, not the virtualenv's other packages: a module the zip
lacks fails the import, a module imported from elsewhere is reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
import pytz

from bench import coldstart
from bench.coldstart import CLUSTER, HOLIDAY_SERVICE, REGION, STOPPED_SERVICE, FirstInvocation
from engine.calendars import HolidayCalendars


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("lambda")
    archive = coldstart.build_zip(root / "teiji-lambda.zip")
    yield coldstart.unpack(archive, root / "task"), coldstart.runtime_sdk(root / "runtime")


def _invoke(
    unpacked: tuple[Path, Path], endpoint: str, event: dict[str, object]
) -> FirstInvocation:
    coldstart.seed(endpoint)
    task, sdk = unpacked
    return coldstart.first_invocation(task, sdk, coldstart.lambda_environment(endpoint), event)


def _desired(endpoint: str, service: str) -> int:
    ecs = boto3.client("ecs", endpoint_url=endpoint, region_name=REGION)
    [described] = ecs.describe_services(cluster=CLUSTER, services=[service])["services"]
    return int(described["desiredCount"])


def test_a_real_tick_from_the_zip_converges_and_imports_only_the_runtime(
    unpacked: tuple[Path, Path], endpoint: str
) -> None:
    tokyo = pytz.timezone("Asia/Tokyo")
    before = datetime.now(UTC).astimezone(tokyo).date()
    run = _invoke(unpacked, endpoint, {})
    after = datetime.now(UTC).astimezone(tokyo).date()

    report = run.report
    assert report["dry_run"] is False and report["failed"] is False
    services = {s["service"]: s for s in report["services"]}
    stopped = services[f"{CLUSTER}/{STOPPED_SERVICE}"]
    assert stopped["decision"] == "stopped" and stopped["outcome"] == "changed"
    assert _desired(endpoint, STOPPED_SERVICE) == 0, "the always_off service was stopped"
    # Running all day except on Japan's holidays: the tick read Japan's calendar.
    api = services[f"{CLUSTER}/{HOLIDAY_SERVICE}"]
    expected = []  # the tick's own date, whichever side of midnight in Tokyo it fell on
    for day in (before, after):
        holiday = HolidayCalendars().lookup(["JP"], day)
        expected.append(("stopped" if holiday else "running", holiday))
    assert (api["decision"], api["holiday"]) in expected, api

    assert run.outside == [], "modules were imported from outside the zip and the SDK"
    assert "yaml" not in run.modules
    assert not [m for m in run.modules if m == "engine.cli" or m.startswith("engine.cli.")]
    assert not [m for m in run.modules if m.startswith(("moto", "engine.demo", "engine.files"))]
    countries = [m for m in run.modules if m.startswith("holidays.countries.")]
    assert countries == ["holidays.countries.japan"]
    # The shipped bytecode was used: the first invocation compiled nothing from the zip.
    task, _ = unpacked
    assert run.from_zip(task) == []


def test_a_dry_run_from_the_zip_changes_nothing(unpacked: tuple[Path, Path], endpoint: str) -> None:
    run = _invoke(unpacked, endpoint, {"dry_run": True})
    assert run.report["dry_run"] is True and run.report["failed"] is False
    decisions = {s["service"]: s["decision"] for s in run.report["services"]}
    assert decisions[f"{CLUSTER}/{STOPPED_SERVICE}"] == "stopped"
    assert _desired(endpoint, STOPPED_SERVICE) == 2, "a dry run changes nothing"
    assert _desired(endpoint, HOLIDAY_SERVICE) == 2


def test_a_bad_event_fails_the_invocation_from_the_zip(
    unpacked: tuple[Path, Path], endpoint: str
) -> None:
    # Hostile input reaches the zip's handler as it would on Lambda: refused, nothing done.
    with pytest.raises(RuntimeError, match="BadEventError: shard and shards must both be whole"):
        _invoke(unpacked, endpoint, {"shard": "0", "shards": 1})
    assert _desired(endpoint, STOPPED_SERVICE) == 2
