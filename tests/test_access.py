"""Who may touch what: the allow-list and the growth cap, from settings to the tick and the CLI.

Settings parse fail-closed (a malformed list exits 2 naming the variable); ``teiji validate``
reports documents outside the allow-list or above the cap, naming document and field; the tick
through the real CLI against moto's server mode never acts on them, and never grows a service
above the cap, whatever a document, a person or a forged baseline asks for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.access import outside_allow_list, refuse_growth
from engine.cli.main import main
from engine.config import DEFAULT_MAX_DESIRED, Access, Settings, SettingsError
from engine.plan import Action, ServicePlan
from schemas.documents import Schedule
from schemas.records import Baseline
from tests.world import ServiceState, World, schedule
from tests.world import run_cli as run

STOP = "2026-12-01T23:00:00+09:00"  # Tuesday night: stopped
START = "2026-12-02T06:00:00+09:00"  # Wednesday morning: running
OTHER = "210987654321"


# Settings ---------------------------------------------------------------------------------------
def test_by_default_only_the_own_account_and_region_and_a_cap_of_100() -> None:
    access = Settings.from_env({}).access
    assert access == Access()
    assert (access.accounts, access.regions, access.clusters) == ((), (), ())
    assert access.max_desired == DEFAULT_MAX_DESIRED == 100
    assert access.external_id_parameter is None


def test_the_lists_are_read() -> None:
    access = Settings.from_env(
        {
            "TEIJI_ALLOWED_ACCOUNTS": "123456789012, 210987654321",
            "TEIJI_ALLOWED_REGIONS": "ap-northeast-1,us-east-1",
            "TEIJI_ALLOWED_CLUSTERS": "web,batch_1",
            "TEIJI_MAX_DESIRED": " 250 ",
            "TEIJI_EXTERNAL_ID_PARAMETER": "/teiji/external-id",
        }
    ).access
    assert access.accounts == ("123456789012", "210987654321")
    assert access.regions == ("ap-northeast-1", "us-east-1")
    assert access.clusters == ("web", "batch_1")
    assert access.max_desired == 250
    assert access.external_id_parameter == "/teiji/external-id"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TEIJI_ALLOWED_ACCOUNTS", "12345678901", "'12345678901' is not a 12-digit AWS account"),
        ("TEIJI_ALLOWED_ACCOUNTS", "123456789012;210987654321", "is not a 12-digit"),
        ("TEIJI_ALLOWED_ACCOUNTS", "123456789012,,210987654321", "an empty entry is not"),
        ("TEIJI_ALLOWED_ACCOUNTS", "*", "'\\*' is not a 12-digit"),
        ("TEIJI_ALLOWED_REGIONS", "us-east-1 us-west-2", "'us-east-1 us-west-2' is not an AWS"),
        ("TEIJI_ALLOWED_REGIONS", "Tokyo", "'Tokyo' is not an AWS region name"),
        ("TEIJI_ALLOWED_CLUSTERS", "web,prod/*", "'prod/\\*' is not an ECS cluster name"),
        ("TEIJI_MAX_DESIRED", "lots", "'lots' is not a whole number"),
        ("TEIJI_MAX_DESIRED", "0", "0 is out of range; write a whole number from 1 to 100,000"),
        ("TEIJI_MAX_DESIRED", "1e3", "is not a whole number"),
        ("TEIJI_EXTERNAL_ID_PARAMETER", "teiji/external-id", "is not an SSM parameter path"),
        ("TEIJI_EXTERNAL_ID_PARAMETER", "/teiji/", "is not an SSM parameter path"),
        ("TEIJI_EXTERNAL_ID", "plain-text", "no longer read from the environment"),
    ],
)
def test_a_malformed_setting_stops_everything_naming_the_variable(
    name: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError, match=f"^{name}: .*{expected}"):
        Settings.from_env({name: value})


def test_the_cli_exits_2_on_a_malformed_list(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("TEIJI_ALLOWED_ACCOUNTS", "123456789012;210987654321")
    path = tmp_path / "a.yaml"
    path.write_text("kind: schedule\nservice: c1/web\nmode: always_on\n", encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "TEIJI_ALLOWED_ACCOUNTS" in err and "Traceback" not in err


# The allow-list rule ----------------------------------------------------------------------------
def _schedule(**fields: Any) -> Schedule:
    return Schedule.model_validate(schedule(fields.pop("service", "c1/web"), **fields))


@pytest.mark.parametrize(
    ("fields", "access", "own_region", "refused"),
    [
        ({}, Access(), "ap-northeast-1", []),
        ({"account": OTHER}, Access(), "ap-northeast-1", ["account"]),
        ({"account": OTHER}, Access(accounts=(OTHER,)), "ap-northeast-1", []),
        ({"region": "ap-northeast-1"}, Access(), "ap-northeast-1", []),  # its own, spelled out
        ({"region": "us-east-1"}, Access(), "ap-northeast-1", ["region"]),
        ({"region": "us-east-1"}, Access(regions=("us-east-1",)), "ap-northeast-1", []),
        # The own region unknown: a named region must be listed (fail closed).
        ({"region": "ap-northeast-1"}, Access(), None, ["region"]),
        ({"service": "batch/job"}, Access(clusters=("web",)), "ap-northeast-1", ["service"]),
        (
            {"service": "batch/job", "account": OTHER, "region": "us-east-1"},
            Access(clusters=("web",)),
            "ap-northeast-1",
            ["account", "region", "service"],
        ),
    ],
)
def test_the_allow_list_names_every_field_outside_it(
    fields: dict[str, Any], access: Access, own_region: str | None, refused: list[str]
) -> None:
    found = outside_allow_list(_schedule(**fields), access, own_region)
    assert [path for path, _ in found] == refused
    variables = ("allowed_accounts", "allowed_regions", "clusters")
    for _, message in found:
        assert "is not one teiji may manage; allowed" in message
        assert "(TEIJI_ALLOWED_" in message
        assert any(f"Terraform variable {v})" in message for v in variables), message


# The growth cap: pure ---------------------------------------------------------------------------
counts = st.integers(min_value=0, max_value=400)


@given(
    cap=st.integers(min_value=1, max_value=300),
    desired=st.tuples(counts, counts),
    bounds=st.tuples(counts, counts, counts, counts),
)
def test_no_refused_plan_grows_and_no_kept_plan_grows_above_the_cap(
    cap: int, desired: tuple[int, int], bounds: tuple[int, int, int, int]
) -> None:
    before_min, before_max, after_min, after_max = bounds
    actions = (
        Action(
            "register_target",
            {"min_capacity": before_min, "max_capacity": before_max},
            {"min_capacity": after_min, "max_capacity": after_max},
        ),
        Action("update_service", {"desired_count": desired[0]}, {"desired_count": desired[1]}),
    )
    plan = refuse_growth(ServicePlan("c1/web", "start", actions), cap)
    grows_above = (
        (desired[1] > cap and desired[1] > desired[0])
        or (after_min > cap and after_min > before_min)
        or (after_max > cap and after_max > before_max)
    )
    if grows_above:
        assert plan.actions == () and plan.error and f"growth cap of {cap}" in plan.error
    else:
        assert plan.actions == actions and plan.error is None


def test_a_stop_whose_capacity_could_not_be_restored_is_refused() -> None:
    saved = Baseline(
        key="c1/web",
        desired_count=150,
        saved_at=datetime(2026, 12, 1, tzinfo=UTC),
        decided_by="window",
        version="1",
    )
    stop = ServicePlan(
        "c1/web",
        "stop",
        (
            Action("save_baseline", {}, {}, saved),
            Action("update_service", {"desired_count": 150}, {"desired_count": 0}),
        ),
    )
    refused = refuse_growth(stop, 100)
    assert refused.actions == ()
    assert refused.error and "could not start it again" in refused.error
    assert "TEIJI_MAX_DESIRED" in refused.error
    assert refuse_growth(stop, 150) == stop


# Through the CLI against moto's server mode ---------------------------------------------------
@pytest.fixture
def world(endpoint: str) -> World:
    w = World(endpoint)
    w.init_tables()
    return w


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


BIG = """\
kind: schedule
service: c1/web
timezone: Asia/Tokyo
windows: [{days: mon-fri, start: "05:00", end: "22:00"}]
running: {desired_count: 4, min_capacity: 2, max_capacity: 500}
---
kind: schedule
service: c1/batch
account: "210987654321"
mode: always_on
---
kind: schedule
service: c1/us
region: us-east-1
mode: always_on
"""


def test_validate_names_document_field_and_what_is_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "big.yaml", BIG)
    assert main(["validate", path]) == 1
    out = capsys.readouterr().out
    assert (
        f"{path}: schedule c1/web: running.max_capacity: 500 is above the growth cap of 100; "
        "use at most 100, or raise TEIJI_MAX_DESIRED (Terraform variable max_desired)"
    ) in out
    assert (
        f"{path}: schedule c1/batch@{OTHER}: account: account {OTHER} is not one teiji may manage; "
        "allowed accounts: its own account (TEIJI_ALLOWED_ACCOUNTS"
    ) in out
    assert (
        f"{path}: schedule c1/us@us-east-1: region: region us-east-1 is not one teiji may manage"
        in out
    )


def test_validate_accepts_them_once_the_deployment_allows_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_MAX_DESIRED", "500")
    monkeypatch.setenv("TEIJI_ALLOWED_ACCOUNTS", OTHER)
    monkeypatch.setenv("TEIJI_ALLOWED_REGIONS", "ap-northeast-1,us-east-1")
    assert main(["validate", _write(tmp_path, "big.yaml", BIG)]) == 0, capsys.readouterr().out


def test_put_refuses_a_document_above_the_cap_and_writes_nothing(
    world: World, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "web.yaml", BIG.split("---")[0])
    code, out, err = run(capsys, endpoint, "put", path)
    assert code == 2
    assert "running.max_capacity: 500 is above the growth cap of 100" in out + err
    assert world.dynamodb.scan(TableName=world.settings.config_table)["Items"] == []


def test_plan_and_tick_never_act_outside_the_allow_list(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.create_service("c1", "web", desired=2, target=(1, 4))
    world.create_service("c2", "other", desired=2)
    # Written straight into the table, as anyone with write access could.
    world.put_item({"pk": "schedule", "sk": "c1/web", "service": "c1/web", "mode": "always_off"})
    world.put_item(
        {"pk": "schedule", "sk": "c2/other", "service": "c2/other", "mode": "always_off"}
    )
    world.put_item(
        {
            "pk": "schedule",
            "sk": f"c1/web@{OTHER}",
            "service": "c1/web",
            "account": OTHER,
            "mode": "always_off",
        }
    )
    cluster_list = pytest.MonkeyPatch()
    cluster_list.setenv("TEIJI_ALLOWED_CLUSTERS", "c1")
    try:
        code, out, _ = run(capsys, endpoint, "plan", "--at", STOP, "--json")
        assert code == 1
        plan = {s["service"]: s for s in json.loads(out)["services"]}
        assert plan["c1/web"]["outcome"] == "planned"
        assert plan["c2/other"]["outcome"] == "failed"
        assert "cluster c2 is not one teiji may manage" in plan["c2/other"]["error"]
        assert plan[f"c1/web@{OTHER}"]["outcome"] == "failed"
        assert f"account: account {OTHER} is not one" in plan[f"c1/web@{OTHER}"]["error"]

        code, out, _ = run(capsys, endpoint, "tick", "--at", STOP, "--json")
        assert code == 1
    finally:
        cluster_list.undo()
    assert world.state("c1", "web").desired == 0
    assert world.state("c2", "other") == ServiceState(2)
    assert world.baseline("c2/other") is None


def test_a_forged_baseline_is_never_restored_above_the_cap(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone with write access to the state table raises a stopped service's baseline."""
    world.create_service("c1", "web", desired=3, target=(2, 6))
    world.put(schedule("c1/web"))
    code, _, _ = run(capsys, endpoint, "tick", "--at", STOP)
    assert code == 0
    assert world.state("c1", "web").desired == 0
    forged = world.baseline("c1/web")
    assert forged is not None
    forged.update(desired_count=500, max_capacity=500)
    world.put_item(forged, table=world.settings.state_table)

    code, out, _ = run(capsys, endpoint, "tick", "--at", START, "--json")
    assert code == 1
    [report] = json.loads(out)["services"]
    assert report["outcome"] == "failed"
    assert "above the growth cap of 100; nothing was changed" in report["error"]
    # Nothing grew, and the baseline is still there for people to correct.
    assert world.state("c1", "web").desired == 0
    assert world.state("c1", "web").max == 0
    assert world.baseline("c1/web") is not None


def test_a_service_people_grew_above_the_cap_is_not_stopped_where_it_could_not_restart(
    world: World, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.create_service("c1", "web", desired=3, target=(2, 6))
    world.put(schedule("c1/web"))
    # Someone scales it out by hand, above the deployment's cap, during the day.
    world.register_target("c1", "web", 2, 200)
    world.set_desired("c1", "web", 150)

    code, out, _ = run(capsys, endpoint, "tick", "--at", STOP, "--json")
    assert code == 1
    [report] = json.loads(out)["services"]
    assert "could not start it again after this stop; it is left running" in report["error"]
    assert world.state("c1", "web").desired == 150
    assert world.baseline("c1/web") is None
