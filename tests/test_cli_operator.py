"""``teiji put / get / delete / list`` end to end against moto's server over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import engine.cli.session as operator
from tests.world import Faults, ServiceState, World, schedule
from tests.world import run_cli as run

NIGHT = "2026-12-01T23:00:00+09:00"  # Tuesday, outside Mon-Fri 05:00-22:00
DAY = "2026-12-01T10:00:00+09:00"
SAMPLES = Path(__file__).resolve().parent.parent / "sample_schedules"

STG = """\
kind: schedule
service: c1/web
timezone: Asia/Tokyo
windows:
  - days: mon-fri
    start: "05:00"
    end: "22:00"
holidays: [JP, company]
running:
  desired_count: 2
"""
CALENDAR = """\
kind: calendar
name: company
dates: [2026-12-29]
"""
WORKER = """\
kind: schedule
service: c1/worker
mode: always_on
"""


@pytest.fixture
def world(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr(operator, "utc_now", lambda: datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    w = World(endpoint)
    w.init_tables()
    return w


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def config_items(world: World) -> list[dict[str, Any]]:
    items = world.dynamodb.scan(TableName=world.settings.config_table)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


# put --------------------------------------------------------------------------------------------
def test_put_writes_every_document_and_says_what(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [write(tmp_path, "stg.yaml", STG), write(tmp_path, "cal.yaml", CALENDAR)]
    code, out, _ = run(capsys, endpoint, "put", *files)
    assert code == 0
    assert "wrote 2 documents to teiji-config" in out
    assert "new     calendar  company" in out
    assert "new     schedule  c1/web" in out
    assert world.config().get("schedule", "c1/web") is not None

    code, out, _ = run(capsys, endpoint, "put", files[1])
    assert code == 0
    assert "unchanged  calendar  company" in out
    later = CALENDAR.replace("2026-12-29", "2026-12-30")
    code, out, _ = run(capsys, endpoint, "put", write(tmp_path, "cal.yaml", later))
    assert code == 0
    assert "replaced  calendar  company" in out
    assert '    dates[0]: "2026-12-29" -> "2026-12-30"' in out


def test_put_writes_nothing_when_one_document_is_invalid(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "put", write(tmp_path, "cal.yaml", CALENDAR))
    before = config_items(world)
    broken = WORKER.replace("always_on", "allways_on")
    files = [write(tmp_path, "stg.yaml", STG), write(tmp_path, "worker.yaml", broken)]
    code, out, err = run(capsys, endpoint, "put", *files)
    assert code == 2
    assert out == ""
    assert "worker.yaml: schedule c1/worker: mode: 'allways_on' is not allowed" in err
    assert "(did you mean 'always_on'?)" in err
    assert "teiji: 1 problem in the documents; nothing was written" in err
    assert config_items(world) == before


def test_put_accepts_calendars_already_stored(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stg = write(tmp_path, "stg.yaml", STG)
    code, _, err = run(capsys, endpoint, "put", stg)
    assert code == 2
    assert "holidays[1]: no calendar named 'company'" in err
    assert run(capsys, endpoint, "put", write(tmp_path, "cal.yaml", CALENDAR))[0] == 0
    code, out, _ = run(capsys, endpoint, "put", stg)
    assert code == 0
    assert "new     schedule  c1/web" in out


def test_put_dry_run_validates_and_writes_nothing(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, endpoint, "put", str(SAMPLES), "--dry-run", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["dry_run"] is True
    kinds = sorted({d["kind"] for d in result["documents"]})
    assert kinds == ["calendar", "profile", "schedule"]  # the samples hold no dated override
    assert all(d["new"] for d in result["documents"])
    assert config_items(world) == []


def test_put_warns_about_overrides_that_do_nothing(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = """\
kind: override
service: c1/nobody
state: running
until: 2026-12-01T09:00:00+09:00
reason: late work
"""
    code, _, err = run(capsys, endpoint, "put", write(tmp_path, "o.yaml", text))
    assert code == 0
    assert "c1/nobody has no schedule, so the override does nothing" in err
    assert "ended at Tue 2026-12-01 09:00 JST: it does nothing" in err


def test_put_of_a_missing_file_is_a_usage_error(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, endpoint, "put", "missing.yaml")
    assert code == 2
    assert err.startswith("teiji: cannot read missing.yaml")


def test_put_without_tables_says_to_run_init(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, endpoint, "put", write(tmp_path, "w.yaml", WORKER))
    assert code == 1
    assert "ResourceNotFoundException" in err
    assert "run `teiji init`" in err
    assert "Traceback" not in err


# get --------------------------------------------------------------------------------------------
def test_get_prints_yaml_that_put_takes_back(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "put", write(tmp_path, "cal.yaml", CALENDAR), write(tmp_path, "s", STG))
    stored = config_items(world)
    code, out, _ = run(capsys, endpoint, "get", "c1/web")
    assert code == 0
    assert out.startswith("# schedule c1/web, from dynamodb:teiji-config")
    assert "start: '05:00'" in out  # quoted: YAML 1.1 tools would read 05:00 as 300
    document = yaml.safe_load(out)
    assert document["kind"] == "schedule"
    assert document["timezone"] == "Asia/Tokyo"
    assert document["running"] == {"desired_count": 2}

    again = write(tmp_path, "again.yaml", out)
    assert run(capsys, endpoint, "delete", "c1/web")[0] == 0
    assert run(capsys, endpoint, "put", again)[0] == 0
    assert config_items(world) == stored


def test_get_calendar_and_json(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "put", write(tmp_path, "cal.yaml", CALENDAR))
    code, out, _ = run(capsys, endpoint, "get", "--calendar", "company", "--json")
    assert code == 0
    assert json.loads(out) == {"kind": "calendar", "name": "company", "dates": ["2026-12-29"]}


def test_get_finds_a_service_by_its_short_names(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put(schedule("c1/api", region="us-east-1"))
    for name in ("c1/api@us-east-1", "c1/api", "api"):
        code, out, _ = run(capsys, endpoint, "get", name, "--json")
        assert code == 0
        assert json.loads(out)["region"] == "us-east-1"


def test_get_unknown_suggests_only_the_similar_service(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put(schedule("c1/web"), schedule("c1/api"))
    code, out, err = run(capsys, endpoint, "get", "c1/wbe")
    assert code == 2
    assert out == ""
    assert err == "teiji: no schedule for 'c1/wbe' in teiji-config; did you mean c1/web?\n"


def test_get_unknown_suggests_nothing_unrelated_and_lists_the_few(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The shared cluster name made every service "close" to any name in it.
    keys = ("example-cluster/example-service-dev", "example-cluster/example-service-stg")
    world.put(*(schedule(k) for k in keys))
    code, _, err = run(capsys, endpoint, "get", "example-cluster/nosuch")
    assert code == 2
    assert "did you mean" not in err
    assert err == (
        "teiji: no schedule for 'example-cluster/nosuch' in teiji-config; no stored name is like "
        f"it; schedules: {', '.join(keys)}\n"
    )
    code, _, err = run(capsys, endpoint, "get", "example-cluster/example-service-stgg")
    assert "did you mean example-cluster/example-service-stg?" in err
    assert "-dev" not in err


def test_get_unknown_suggests_near_matches_when_many(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put(*(schedule(f"c1/svc-{i:02d}") for i in range(12)), schedule("c1/payments"))
    code, _, err = run(capsys, endpoint, "get", "c1/paymnets")
    assert code == 2
    assert "did you mean c1/payments?" in err
    assert "svc-03" not in err


def test_get_unknown_calendar(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "put", write(tmp_path, "cal.yaml", CALENDAR))
    code, _, err = run(capsys, endpoint, "get", "--calendar", "compnay")
    assert code == 2
    assert "no calendar 'compnay' in teiji-config (did you mean 'company'?)" in err


def test_get_needs_exactly_one_name(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, endpoint, "get")
    assert code == 2
    assert "give either SERVICE or --calendar NAME" in err


# delete -----------------------------------------------------------------------------------------
def test_delete_leaves_the_service_as_is_and_keeps_the_baseline(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.create_service("c1", "web", desired=3, target=(2, 6))
    world.put(schedule("c1/web"))
    assert run(capsys, endpoint, "tick", "--at", NIGHT)[0] == 0
    assert world.state("c1", "web").desired == 0

    code, out, _ = run(capsys, endpoint, "delete", "c1/web")
    assert code == 0
    assert "deleted the schedule of c1/web." in out
    assert "teiji leaves it exactly as it is now" in out
    assert "Its saved capacity (desired 3, Min/Max 2..6, saved Tue 2026-12-01 23:00" in out
    assert "mode: always_on" in out
    assert world.config().get("schedule", "c1/web") is None

    # Unmanaged: a tick no longer touches it.
    assert run(capsys, endpoint, "tick", "--at", DAY.replace("01T", "02T"))[0] == 0
    assert world.state("c1", "web").desired == 0
    # A schedule again, always_on: the next tick restores exactly what was saved.
    always_on = "kind: schedule\nservice: c1/web\nmode: always_on\n"
    assert run(capsys, endpoint, "put", write(tmp_path, "web.yaml", always_on))[0] == 0
    assert run(capsys, endpoint, "tick", "--at", NIGHT.replace("01T", "02T"))[0] == 0
    assert world.state("c1", "web") == ServiceState(
        3,
        2,
        6,
        {
            "DynamicScalingInSuspended": False,
            "DynamicScalingOutSuspended": False,
            "ScheduledScalingSuspended": False,
        },
    )


def test_delete_without_baseline_says_nothing_about_one(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put(schedule("c1/web"))
    code, out, _ = run(capsys, endpoint, "delete", "web")
    assert code == 0
    assert "saved capacity" not in out


def test_delete_calendar_refused_while_listed(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, endpoint, "put", write(tmp_path, "c.yaml", CALENDAR), write(tmp_path, "s", STG))
    code, _, err = run(capsys, endpoint, "delete", "--calendar", "company")
    assert code == 2
    assert "calendar company is listed in the holidays of 1 schedule (c1/web)" in err
    assert world.config().get("calendar", "company") is not None

    assert run(capsys, endpoint, "delete", "c1/web")[0] == 0
    code, out, _ = run(capsys, endpoint, "delete", "--calendar", "company")
    assert code == 0
    assert out == "deleted calendar company.\n"
    assert world.config().get("calendar", "company") is None


def test_delete_unknown_service(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, endpoint, "delete", "c1/web")
    assert code == 2
    assert "no schedule for 'c1/web' in teiji-config; teiji-config holds no schedules yet" in err


# list -------------------------------------------------------------------------------------------
@pytest.fixture
def listed(world: World) -> World:
    world.create_service("c1", "web", desired=3, target=(2, 6), suspended={"scheduled": True})
    world.create_service("c1", "api", desired=1)
    world.create_service("c1", "batch", desired=0)
    world.put(
        schedule("c1/web"),
        schedule("c1/api"),
        {"kind": "schedule", "service": "c1/batch", "mode": "unmanaged"},
    )
    return world


def test_list_shows_decisions_aws_and_the_next_tick(
    listed: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, endpoint, "list", "--at", NIGHT)
    assert code == 0
    lines = out.splitlines()
    header = lines[0]
    assert header.split() == [
        "SERVICE",
        "NOW",
        "NEXT",
        "CHANGE",
        "DESIRED/RUN",
        "MIN..MAX",
        "SAVED",
        "NEXT",
        "TICK",
        "WHY",
    ]
    rows = {line.split()[0]: line for line in lines[1:4]}
    assert set(rows) == {"c1/api", "c1/batch", "c1/web"}
    web = rows["c1/web"]
    assert "stopped" in web
    assert "running Wed 2026-12-02 05:00 JST" in web
    assert "3/0" in web  # desired/running (moto runs no tasks)
    assert "2..6 suspended:scheduled" in web
    assert "save baseline, target 2..6 suspended:scheduled -> 0..0 suspended, desired 3->0" in web
    assert "outside every window" in web
    assert "unmanaged" in rows["c1/batch"]
    assert "none" in rows["c1/api"]  # no scalable target
    # Columns line up: every row starts its NOW cell where the header does.
    column = header.index("NOW")
    assert all(line[column - 2 : column] == "  " for line in lines[1:4])
    assert lines[4] == "3 services at Tue 2026-12-01 23:00 JST: 2 stopped, 1 unmanaged"


def test_list_json(listed: World, endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, endpoint, "tick", "--at", NIGHT)
    code, out, _ = run(capsys, endpoint, "list", "--at", NIGHT, "--json")
    assert code == 0
    rows = {row["service"]: row for row in json.loads(out)}
    web = rows["c1/web"]
    assert web["state"] == "stopped"
    assert web["source"] == "default"
    assert web["next_change"] == "2026-12-02T05:00:00+09:00"
    assert web["next_state"] == "running"
    assert web["aws"] == {
        "desired_count": 0,
        "running_count": 0,
        "min_capacity": 0,
        "max_capacity": 0,
        "suspended": {"dynamic_in": True, "dynamic_out": True, "scheduled": True},
    }
    assert web["baseline"] is True
    assert web["next_tick"] == []
    assert rows["c1/batch"]["state"] == "unmanaged"


def test_list_when_aws_cannot_be_read_still_lists_decisions(
    listed: World,
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    faults = Faults().fail("DescribeServices", code="AccessDeniedException", message="no")
    make = operator.make_clients
    monkeypatch.setattr(operator, "make_clients", lambda *a, **k: faults.attach(make(*a, **k)))
    code, out, _ = run(capsys, endpoint, "list", "--at", NIGHT)
    assert code == 1
    assert "outside every window" in out
    assert "AWS could not be read: their decisions are listed above" in out
    assert "AccessDeniedException: no" in out
    web = next(line for line in out.splitlines() if line.startswith("c1/web "))
    assert " ? " in web


def test_list_marks_invalid_documents(
    listed: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    listed.put_item({"pk": "schedule", "sk": "c1/api", "windows": [], "mode": "scheduled"})
    code, out, _ = run(capsys, endpoint, "list", "--at", NIGHT)
    assert code == 1
    api = next(line for line in out.splitlines() if line.startswith("c1/api "))
    assert "invalid" in api
    assert "mode scheduled needs at least one entry in windows or cron" in api


def test_list_of_an_empty_table(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, endpoint, "list", "--at", NIGHT)
    assert code == 0
    assert "0 services" in out


def test_list_bad_instant(world: World, endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, endpoint, "list", "--at", "tonight")
    assert code == 2
    assert "--at 'tonight' is not an ISO 8601 instant" in err


# The console script -----------------------------------------------------------------------------
def test_the_teiji_console_script_lists_over_http(listed: World, endpoint: str) -> None:
    script = Path(sys.executable).with_name("teiji")
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "NO_COLOR": "1"}
    done = subprocess.run(
        [str(script), "list", "--at", NIGHT, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {row["service"] for row in json.loads(done.stdout)} == {"c1/api", "c1/batch", "c1/web"}
