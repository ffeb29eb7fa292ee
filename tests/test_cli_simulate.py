"""``teiji simulate``: offline from files, online from DynamoDB and ECS (moto server over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from freezegun import freeze_time

from engine.aws.clients import Clients
from engine.cli.main import main
from engine.config import Settings
from engine.store import ConfigStore, init_tables
from schemas.documents import Override, Schedule

STG = """\
kind: schedule
service: example-cluster/example-service-stg
timezone: Asia/Tokyo
windows:
  - days: mon-fri
    start: "05:00"
    end: "22:00"
"""
WEEK = ["--from", "2026-11-16", "--to", "2026-11-22"]
WEEKDAYS = [{"days": "mon-fri", "start": "05:00", "end": "22:00"}]


@pytest.fixture
def stg(tmp_path: Path) -> Path:
    path = tmp_path / "stg.yaml"
    path.write_text(STG, encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["simulate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    data: list[dict[str, Any]] = json.loads(out)
    return data


# Offline ---------------------------------------------------------------------------------------
def test_table_with_hand_computed_figures(capsys: pytest.CaptureFixture[str], stg: Path) -> None:
    code, out, err = _run(capsys, "--file", str(stg), *WEEK)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "SERVICE",
        "RUNNING",
        "H",
        "STOPPED",
        "H",
        "OFF",
        "COST",
        "WITHOUT",
        "COST",
        "WITH",
        "SAVED",
        "SAVED",
        "%",
    ]
    # 85 h of 168 at 0.015405 USD per task-hour: 2.59 without, 1.31 with.
    row = lines[1].split()
    assert row == [
        "example-cluster/example-service-stg",
        "85.00",
        "83.00",
        "49.4%",
        "$2.59",
        "$1.31",
        "$1.28",
        "49.4%",
    ]
    assert lines[2].split()[0] == "TOTAL"
    assert len({len(line) for line in lines[:3]}) == 1  # numbers right-aligned in columns
    assert "range 2026-11-16 to 2026-11-22 (7 days, local dates), zone Asia/Tokyo" in out
    assert "ap-northeast-1 x86_64 on-demand" in out
    assert "built-in table as of 2026-06-17" in out


def test_json_is_a_list_of_objects(capsys: pytest.CaptureFixture[str], stg: Path) -> None:
    (item,) = _json(capsys, "--file", str(stg), *WEEK)
    assert item["service"] == "example-cluster/example-service-stg"
    assert (item["running_hours"], item["stopped_hours"], item["share_off"]) == (85, 83, 0.494)
    assert (item["cost_without"], item["cost_with"], item["saved"]) == (2.59, 1.31, 1.28)
    assert item["from"] == "2026-11-16T00:00:00+09:00"
    assert item["to"] == "2026-11-23T00:00:00+09:00"


def test_pricing_flags_change_the_cost(capsys: pytest.CaptureFixture[str], stg: Path) -> None:
    (item,) = _json(
        capsys,
        *("--file", str(stg), *WEEK),
        *("--tasks", "2", "--cpu", "1024", "--memory", "2048", "--arch", "arm64"),
        *("--spot", "--spot-discount", "0.5"),
    )
    # arm64 Tokyo: (1 x 0.04045 + 2 x 0.00442) x 0.5 = 0.024645 per task-hour, 2 tasks.
    assert item["tasks_running"] == 2
    assert (item["vcpu"], item["memory_gb"]) == (1.0, 2.0)
    assert item["cost_without"] == round(0.024645 * 2 * 168, 2)  # 8.28
    assert item["cost_with"] == round(0.024645 * 2 * 85, 2)  # 4.19
    assert item["prices"]["spot"] is True


def test_html_page_is_written(
    capsys: pytest.CaptureFixture[str], stg: Path, tmp_path: Path
) -> None:
    page = tmp_path / "out" / "timeline.html"
    page.parent.mkdir()
    code, out, err = _run(capsys, "--file", str(stg), *WEEK, "--html", str(page))
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert "example-cluster/example-service-stg" in html
    assert "Mon 16 Nov 2026 – Sun 22 Nov 2026 · 7 days · Asia/Tokyo" in html
    assert "TOTAL" in out  # the table still goes to stdout
    assert f"wrote {page}" in err


@freeze_time("2026-11-28T16:30:00Z")  # already Sunday 29 November in Tokyo
def test_default_range_is_four_weeks_from_local_today(
    capsys: pytest.CaptureFixture[str], stg: Path
) -> None:
    (item,) = _json(capsys, "--file", str(stg))
    assert item["from"] == "2026-11-29T00:00:00+09:00"
    assert item["to"] == "2026-12-27T00:00:00+09:00"
    assert item["total_hours"] == 28 * 24


def test_services_are_selected_by_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    other = STG.replace("example-service-stg", "example-service-dev")
    (tmp_path / "a.yaml").write_text(STG + "---\n" + other, encoding="utf-8")
    items = _json(capsys, "--file", str(tmp_path), *WEEK, "example-cluster/example-service-dev")
    assert [i["service"] for i in items] == ["example-cluster/example-service-dev"]


def test_unknown_service_is_a_usage_error(capsys: pytest.CaptureFixture[str], stg: Path) -> None:
    code, out, err = _run(capsys, "--file", str(stg), "nope/nothing")
    assert code == 2
    assert "no schedule for nope/nothing" in err
    assert "example-cluster/example-service-stg" in err
    assert out == ""


def test_invalid_documents_exit_2_with_the_problems(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(STG.replace("mon-fri", "mno-fri"), encoding="utf-8")
    code, out, err = _run(capsys, "--file", str(bad))
    assert code == 2
    assert "bad.yaml" in err
    assert "windows[0].days" in err
    assert "Traceback" not in err
    assert out == ""


def test_unreadable_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "--file", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "missing.yaml" in err


def test_unknown_region_lists_known_ones_unless_priced_by_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "paris.yaml"
    path.write_text(STG + "region: eu-west-3\n", encoding="utf-8")
    code, _, err = _run(capsys, "--file", str(path), *WEEK)
    assert code == 2
    assert "eu-west-3" in err
    assert "ap-northeast-1, us-east-1" in err
    (item,) = _json(capsys, "--file", str(path), *WEEK, "--vcpu-price", "0.1", "--gb-price", "0")
    assert item["cost_without"] == round(0.25 * 0.1 * 168, 2)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--from", "2026-13-01"], "--from '2026-13-01' is not a date"),
        (["--from", "2026-11-20", "--to", "2026-11-19"], "is before --from"),
        (["--from", "2026-01-01", "--to", "2027-06-01"], "at most 366 days"),
        (["--tasks", "-1"], "negative"),
        (["--arch", "mips"], "invalid choice"),
        (["--spot", "--spot-discount", "1.5"], "spot discount"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], stg: Path, argv: list[str], words: str
) -> None:
    code, _, err = _run(capsys, "--file", str(stg), *argv)
    assert code == 2
    assert words in err


# Online: DynamoDB and ECS over HTTP ----------------------------------------------------------
def _online(endpoint: str, monkeypatch: pytest.MonkeyPatch, *schedules: dict[str, Any]) -> None:
    """The config table ``sim-config``, as ``teiji init`` makes it, holding ``schedules``."""
    monkeypatch.setenv("TEIJI_CONFIG_TABLE", "sim-config")
    clients = Clients(region="ap-northeast-1", endpoint_url=endpoint)
    init_tables(clients, Settings(config_table="sim-config"))
    ConfigStore(clients, "sim-config").put([Schedule.model_validate(s) for s in schedules])


def _ecs_service(endpoint: str, name: str, *, desired: int, arm: bool) -> None:
    ecs = boto3.client("ecs", region_name="ap-northeast-1", endpoint_url=endpoint)
    ecs.create_cluster(clusterName="example-cluster")
    definition: dict[str, Any] = {
        "family": name,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "1024",
        "memory": "3072",
        "containerDefinitions": [
            {"name": "app", "image": "nginx", "cpu": 1024, "memory": 3072, "essential": True}
        ],
    }
    if arm:
        definition["runtimePlatform"] = {
            "cpuArchitecture": "ARM64",
            "operatingSystemFamily": "LINUX",
        }
    arn = ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster="example-cluster", serviceName=name, taskDefinition=arn, desiredCount=desired
    )


def test_online_reads_documents_and_task_sizes(
    capsys: pytest.CaptureFixture[str], endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _online(
        endpoint,
        monkeypatch,
        {"service": "example-cluster/web", "windows": WEEKDAYS},
        {"service": "example-cluster/gone", "windows": WEEKDAYS},
    )
    _ecs_service(endpoint, "web", desired=3, arm=True)
    code, out, err = _run(capsys, "--endpoint-url", endpoint, *WEEK, "--json")
    assert code == 0, err
    by_name = {i["service"]: i for i in json.loads(out)}
    web = by_name["example-cluster/web"]
    assert web["tasks_running"] == 3  # observed desiredCount
    assert (web["vcpu"], web["memory_gb"]) == (1.0, 3.0)  # from the task definition
    assert web["prices"]["architecture"] == "arm64"  # from runtimePlatform
    # (1 x 0.04045 + 3 x 0.00442) x 3 tasks x 168 h
    assert web["cost_without"] == round((0.04045 + 3 * 0.00442) * 3 * 168, 2)
    gone = by_name["example-cluster/gone"]
    assert (gone["tasks_running"], gone["vcpu"]) == (1, 0.25)  # the defaults
    assert "warning: example-cluster/gone: not found in ECS (MISSING)" in err


def test_online_warns_about_services_ecs_does_not_know(
    capsys: pytest.CaptureFixture[str], endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _online(endpoint, monkeypatch, {"service": "example-cluster/gone", "mode": "always_off"})
    boto3.client("ecs", region_name="ap-northeast-1", endpoint_url=endpoint).create_cluster(
        clusterName="example-cluster"
    )
    code, out, err = _run(capsys, "--endpoint-url", endpoint, *WEEK)
    assert code == 0, err
    assert "warning: example-cluster/gone: not found in ECS" in err
    assert "100.0%" in out


def test_online_flags_win_over_the_task_definition(
    capsys: pytest.CaptureFixture[str], endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _online(
        endpoint,
        monkeypatch,
        {"service": "example-cluster/web", "windows": WEEKDAYS, "running": {"desired_count": 2}},
    )
    _ecs_service(endpoint, "web", desired=5, arm=True)
    (web,) = _json(capsys, "--endpoint-url", endpoint, *WEEK, "--cpu", "512", "--arch", "x86_64")
    assert web["tasks_running"] == 2  # the schedule's running.desired_count beats ECS
    assert (web["vcpu"], web["memory_gb"]) == (0.5, 3.0)  # --cpu replaces only the cpu
    assert web["prices"]["architecture"] == "x86_64"


def test_online_read_failure_exits_1(
    capsys: pytest.CaptureFixture[str], endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_CONFIG_TABLE", "no-such-table")
    code, out, err = _run(capsys, "--endpoint-url", endpoint, *WEEK)
    assert code == 1
    assert "no-such-table" in err
    assert out == ""


def test_table_and_files_agree_on_a_past_range_with_an_ended_override(
    capsys: pytest.CaptureFixture[str],
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The override kept dev running on Tuesday 10:00-13:30 of a week that is over by the real
    # clock. Simulating that week from the table must count it, as simulating the files does.
    dev = {"service": "example-cluster/dev", "mode": "always_off"}
    override = {
        "kind": "override",
        "service": "example-cluster/dev",
        "state": "running",
        "start": "2026-11-17T10:00:00+09:00",
        "until": "2026-11-17T13:30:00+09:00",
        "reason": "release check",
        "id": "release-check",
    }
    _online(endpoint, monkeypatch, dev)
    _ecs_service(endpoint, "dev", desired=0, arm=False)
    clients = Clients(region="ap-northeast-1", endpoint_url=endpoint)
    ConfigStore(clients, "sim-config").put([Override.model_validate(override)])
    (tmp_path / "dev.json").write_text(
        json.dumps([{"kind": "schedule", **dev}, override]), encoding="utf-8"
    )
    online = _json(capsys, "--endpoint-url", endpoint, *WEEK, "--tasks", "1")
    offline = _json(capsys, "--file", str(tmp_path), *WEEK, "--tasks", "1")
    assert online[0]["running_hours"] == offline[0]["running_hours"] == 3.5
    assert online[0]["segments"] == offline[0]["segments"]


# Monthly projection and language ------------------------------------------------------------
def test_table_ends_with_the_monthly_projection(
    capsys: pytest.CaptureFixture[str], stg: Path
) -> None:
    code, out, err = _run(capsys, "--file", str(stg), "--from", "2026-11-30", "--to", "2026-12-06")
    assert code == 0, err
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("monthly projection"))
    assert "days in the month / days simulated" in lines[start]
    assert lines[start + 1].split()[:3] == ["MONTH", "PROJECTED", "FROM"]
    november, december = (lines[start + 2].split(), lines[start + 3].split())
    # Monday 30 November: 17 h running, 7 h stopped, projected to November's 30 days.
    assert november[:4] == ["2026-11", "1", "of", "30"]
    assert november[5] == "210.00"  # 7 stopped task-hours x 30
    # 1-6 December: Tue-Fri 4 x 7 h + Sat and Sun 2 x 24 h = 76 h stopped, x 31 / 6.
    assert december[:4] == ["2026-12", "6", "of", "31"]
    assert december[5] == f"{76 * 31 / 6:,.2f}"  # 392.67


def test_json_carries_each_services_months(capsys: pytest.CaptureFixture[str], stg: Path) -> None:
    (item,) = _json(capsys, "--file", str(stg), *WEEK)
    (month,) = item["months"]
    assert month["month"] == "2026-11"
    assert (month["projected_from_days"], month["days_in_month"]) == (7, 30)
    assert month["stopped_task_hours"] == 83
    assert month["saved"] == item["saved"]  # the whole range lies in November
    assert month["projected_stopped_task_hours"] == round(83 * 30 / 7, 4)
    assert month["projected_saved"] == round(0.015405 * 83 * 30 / 7, 2)


def test_japanese_page(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "stg.yaml"
    path.write_text(STG + "holidays: [JP]\n", encoding="utf-8")
    page = tmp_path / "ja.html"
    code, out, err = _run(
        capsys,
        "--file",
        str(path),
        "--from",
        "2026-12-28",
        "--to",
        "2027-01-03",
        "--html",
        str(page),
        "--lang",
        "ja",
    )
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert '<html lang="ja">' in html
    assert "元日（JP）" in html
    assert "2026年12月28日(月) – 2027年1月3日(日) · 7 日間 · Asia/Tokyo" in html
    assert "SERVICE" in out  # the text table stays English


def test_unknown_language_is_a_usage_error(capsys: pytest.CaptureFixture[str], stg: Path) -> None:
    code, _, err = _run(capsys, "--file", str(stg), *WEEK, "--html", "x.html", "--lang", "fr")
    assert code == 2
    assert "invalid choice: 'fr'" in err
