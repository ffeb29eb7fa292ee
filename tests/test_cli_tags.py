"""Every operator command sees the services their ``teiji:profile`` tag opts in exactly as the
tick does (``engine.cli.fleet``), from the world's side, in moto (in-process; the last test
over HTTP against moto's server).

The fleet: c1/web opted in by its tag; c1/api with a document of its own and a tag that the
document wins over; c1/vault tagged with a profile and teiji:protected=true (no document);
c1/safe with a document and teiji:protected=true; c1/bad tagged with a profile that does not
exist; c2/far tagged too, in a cluster outside the allow-list; c1/plain neither.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytz
import yaml

import engine.cli.session as operator
import engine.cli.tick as tick_cli
from engine.cli.main import main
from tests.faults import refuse_listing
from tests.world import CallLog, World, moto_tables, run_cli, schedule

NIGHT = "2026-12-01T23:00+09:00"  # a Tuesday, outside Mon-Fri 05:00-22:00
DAY = "2026-12-02T10:00+09:00"
OFFICE = {
    "pk": "profile",
    "sk": "office",
    "timezone": "Asia/Tokyo",
    "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
}
LATE = {**OFFICE, "sk": "late", "windows": [{"days": "mon-sun", "start": "00:00", "end": "23:30"}]}
FROM_TAG = {
    "from": "tag",
    "profile": "office",
    "own_fields": [],
    "profile_fields": ["timezone", "windows"],
}
WEEK = ["--from", "2026-11-16", "--to", "2026-11-22"]


def tag(world: World, cluster: str, name: str, **tags: str) -> None:
    arn = world.ecs.describe_services(cluster=cluster, services=[name])["services"][0]["serviceArn"]
    world.ecs.tag_resource(
        resourceArn=arn, tags=[{"key": f"teiji:{k}", "value": v} for k, v in tags.items()]
    )


def build_fleet(world: World) -> None:
    for name in ("web", "api", "vault", "safe", "bad", "plain"):
        world.create_service("c1", name, desired=2)
    world.create_service("c2", "far", desired=2)
    tag(world, "c1", "web", profile="office")
    tag(world, "c1", "api", profile="office")
    tag(world, "c1", "vault", profile="office", protected="true")
    tag(world, "c1", "safe", protected="true")
    tag(world, "c1", "bad", profile="nowhere")
    tag(world, "c2", "far", profile="office")
    world.put_item(OFFICE)
    world.put_item(LATE)
    world.put(schedule("c1/api"), schedule("c1/safe"))


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("TEIJI_ALLOWED_CLUSTERS", "c1")
    monkeypatch.setattr(operator, "utc_now", lambda: datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
    with moto_tables() as w:
        build_fleet(w)
        yield w


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def explain_json(capsys: pytest.CaptureFixture[str], service: str) -> dict[str, Any]:
    code, out, err = cli(capsys, "explain", service, "--at", NIGHT, "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def listed(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    _, out, _ = cli(capsys, "list", "--at", NIGHT, "--json")
    return {row["service"]: row for row in json.loads(out)}


# explain --------------------------------------------------------------------------------------
def test_explain_decides_a_tagged_service_with_its_profile_as_the_tick_does(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "explain", "c1/web", "--at", NIGHT)
    assert code == 0, err
    assert out.startswith("c1/web is STOPPED at Tue 2026-12-01 23:00 JST")
    assert (
        "Schedule: profile office via its teiji:profile tag (from the profile: timezone, "
        "windows)." in out
    )
    result = explain_json(capsys, "web")  # a bare name finds it too
    assert result["service"] == "c1/web"
    assert (result["state"], result["schedule"]) == ("stopped", FROM_TAG)
    assert (result["protected"], result["ignored_tag"]) == (False, None)
    # The same object as list gives it.
    assert listed(capsys)["c1/web"]["schedule"] == FROM_TAG


def test_a_document_wins_over_the_tag_and_explain_says_the_tag_is_ignored(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    result = explain_json(capsys, "c1/api")
    assert result["schedule"] == {"from": "document", "profile": None}
    assert (result["protected"], result["ignored_tag"]) == (False, "teiji:profile=office")
    code, out, _ = cli(capsys, "explain", "c1/api", "--at", NIGHT)
    assert code == 0
    assert out.splitlines()[1] == (
        "note: its tag teiji:profile=office is ignored: a schedule document wins over a tag"
    )
    row = listed(capsys)["c1/api"]
    assert (row["schedule"]["from"], row["ignored_tag"]) == ("document", "teiji:profile=office")


def test_protected_services_show_as_protected_document_or_not(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = explain_json(capsys, "c1/vault")
    assert (vault["state"], vault["protected"], vault["schedule"]) == ("protected", True, None)
    code, out, _ = cli(capsys, "explain", "c1/vault", "--at", NIGHT)
    assert out.startswith("c1/vault is PROTECTED (protected: the service is tagged teiji:protected")
    safe = explain_json(capsys, "c1/safe")
    assert (safe["state"], safe["protected"]) == ("stopped", True)  # what its schedule says
    code, out, _ = cli(capsys, "explain", "c1/safe", "--at", NIGHT)
    assert "note: protected: the service is tagged teiji:protected=true" in out

    rows = listed(capsys)
    assert (rows["c1/vault"]["state"], rows["c1/vault"]["protected"]) == ("protected", True)
    assert rows["c1/safe"]["protected"] is True
    assert rows["c1/safe"]["next_tick"] == []  # the tick skips it: nothing would change
    code, out, _ = cli(capsys, "list", "--at", NIGHT)
    assert code == 1  # c1/bad
    vault_line = next(line for line in out.splitlines() if line.startswith("c1/vault"))
    assert "protected" in vault_line.split()[1]
    assert "protected" in out.splitlines()[-1]  # counted in the summary


def test_a_tag_naming_a_missing_profile_fails_that_service_only_on_one_line(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "explain", "c1/bad", "--at", NIGHT)
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith("teiji: cannot explain c1/bad: teiji:profile: the tag names profile")
    assert "'nowhere'" in line and "profiles defined: late, office" in line
    # The others are explained as before.
    assert explain_json(capsys, "c1/web")["state"] == "stopped"
    assert listed(capsys)["c1/bad"]["state"] == "invalid"


def test_a_cluster_outside_the_allow_list_is_never_discovered(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "explain", "c2/far", "--at", NIGHT)
    assert code == 2
    assert "no schedule for 'c2/far'" in err
    assert "c2/far" not in listed(capsys)
    code, out, _ = cli(capsys, "simulate", *WEEK, "--json")
    assert "c2/far" not in {item["service"] for item in json.loads(out)}


def test_without_an_allow_list_no_tag_is_read(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEIJI_ALLOWED_CLUSTERS")
    code, _, err = cli(capsys, "explain", "c1/web", "--at", NIGHT)
    assert code == 2 and "no schedule for 'c1/web'" in err
    assert set(listed(capsys)) == {"c1/api", "c1/safe"}


def test_a_tag_changed_between_list_and_explain_is_read_again(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert listed(capsys)["c1/web"]["state"] == "stopped"
    tag(world, "c1", "web", profile="late")  # someone retags it meanwhile
    result = explain_json(capsys, "c1/web")
    assert (result["state"], result["schedule"]["profile"]) == ("running", "late")
    tag(world, "c1", "web", profile="gone")
    code, _, err = cli(capsys, "explain", "c1/web", "--at", NIGHT)
    assert code == 2 and "the tag names profile 'gone', and there is none" in err
    # Untagged: no longer managed, and explain says there is no schedule for it.
    arn = world.ecs.describe_services(cluster="c1", services=["web"])["services"][0]["serviceArn"]
    world.ecs.untag_resource(resourceArn=arn, tagKeys=["teiji:profile"])
    code, _, err = cli(capsys, "explain", "c1/web", "--at", NIGHT)
    assert code == 2 and "no schedule for 'c1/web'" in err


@pytest.mark.parametrize(
    "value",
    ["x" * 256, "オフィス", "../../etc/passwd", "office/../late", " office"],
    ids=["very long", "unicode", "dot dot", "path in a name", "leading space"],
)
def test_hostile_tag_values_fail_that_service_on_one_safe_line(
    world: World, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    tag(world, "c1", "web", profile=value)
    tag(world, "c1", "api", profile=value)  # ignored: its document wins
    code, out, err = cli(capsys, "explain", "c1/web", "--at", NIGHT)
    if value.strip() == "office":  # the tick strips the value too: it names office
        assert code == 0, err
        return
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.isprintable() and len(line) < 400, line
    assert "teiji:profile" in line
    code, out, err = cli(capsys, "explain", "c1/api", "--at", NIGHT)
    assert code == 0, err
    note = out.splitlines()[1]
    assert note.isprintable() and len(note) < 200 and "is ignored" in note
    code, out, err = cli(capsys, "simulate", *WEEK, "--json")
    assert code == 1
    assert "c1/web" not in {item["service"] for item in json.loads(out)}
    assert sum("cannot simulate c1/web" in line for line in err.splitlines()) == 1


# simulate and savings -------------------------------------------------------------------------
def test_simulate_says_which_tag_a_document_overrode_and_which_services_are_protected(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "simulate", *WEEK)
    assert code == 1  # c1/bad
    lines = out.splitlines()
    assert any(
        line.startswith("  c1/api  its own document; its tag teiji:profile=office is ignored")
        for line in lines
    ), out
    assert any(
        line.startswith("  c1/web  profile office via its teiji:profile tag") for line in lines
    )
    assert (
        "protected, not simulated (tagged teiji:protected=true: teiji never changes them): "
        "c1/safe, c1/vault" in lines
    )
    code, out, err = cli(capsys, "simulate", *WEEK, "--json")
    assert {item["service"] for item in json.loads(out)} == {"c1/web", "c1/api"}
    assert "teiji: note: protected, not simulated" in err


def test_savings_predicts_the_tagged_services_and_leaves_out_the_protected(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One tick's metrics, so the realised side exists; the prediction is what is looked at.
    # The span is in local dates (Asia/Tokyo): a UTC date is yesterday there for 9 hours a day.
    today = datetime.now(UTC).astimezone(pytz.timezone("Asia/Tokyo")).date()
    world._raw("cloudwatch").put_metric_data(
        Namespace="teiji",
        MetricData=[
            {
                "MetricName": "StoppedTaskHours",
                "Dimensions": [{"Name": "Deployment", "Value": "teiji-tick"}],
                "Timestamp": datetime.now(UTC) - timedelta(hours=3),
                "Value": 0.5,
            }
        ],
    )
    span = ["--from", str(today - timedelta(days=1)), "--to", str(today)]
    code, out, err = cli(capsys, "savings", *span, "--json")
    assert out, err
    predicted = json.loads(out)["predicted"]
    assert predicted is not None, err
    assert predicted["services"] == 2  # c1/web by its tag and c1/api; not vault, safe, bad
    assert code == 1  # c1/bad cannot be predicted, and says why on one line
    (line,) = [line for line in err.splitlines() if "cannot predict" in line]
    assert line.startswith("teiji: cannot predict c1/bad: teiji:profile: the tag names profile")
    assert "protected, not simulated" in err

    # Without the tagged services (no allow-list), one service fewer is predicted.
    monkeypatch.delenv("TEIJI_ALLOWED_CLUSTERS")
    code, out, err = cli(capsys, "savings", *span, "--json")
    assert (code, json.loads(out)["predicted"]["services"]) == (0, 1), err


def test_with_files_tags_cannot_be_read_and_each_command_says_so_once(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "fleet.yaml"
    documents = [
        {"kind": "profile", "name": "office", **{k: OFFICE[k] for k in ("timezone", "windows")}},
        {"kind": "schedule", "service": "c1/api", "profile": "office"},
    ]
    path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    for argv in (
        ["explain", "c1/api", "-f", str(path), "--at", NIGHT],
        ["simulate", "-f", str(path), *WEEK],
    ):
        code, _, err = cli(capsys, *argv)
        assert code == 0, err
        notes = [line for line in err.splitlines() if "teiji:profile tag are not" in line]
        assert len(notes) == 1, err
    code, _, err = cli(capsys, "explain", "c1/web", "-f", str(path), "--at", NIGHT)
    assert code == 2  # only the files are read: the tagged service is not there


# Commands that check the service exists -------------------------------------------------------
def test_start_writes_an_override_for_a_tagged_service_and_refuses_a_protected_one(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "start", "c1/web", "--for", "2h", "--reason", "demo", "--json")
    assert code == 0, err
    written = json.loads(out)["override"]
    assert (written["service"], written["state"]) == ("c1/web", "running")
    # Explain at that instant sees the override on the tagged service.
    result = explain_json(capsys, "c1/web")
    assert result["source"] == "override"
    # override list knows its zone and does not call it an orphan.
    code, out, err = cli(capsys, "override", "list")
    assert code == 0 and "c1/web" in out
    assert "has no schedule" not in err, err
    code, out, err = cli(capsys, "override", "cancel", written["ref"])
    assert code == 0, err
    assert "c1/web now follows its schedule: stopped" in out

    code, _, err = cli(capsys, "stop", "c1/vault", "--for", "2h", "--reason", "x")
    assert code == 2 and "c1/vault is tagged teiji:protected=true" in err
    code, _, err = cli(capsys, "start", "c1/bad", "--for", "2h", "--reason", "x")
    assert code == 2 and "'nowhere'" in err and "teiji:profile" in err
    assert len(err.splitlines()) == 1


def test_get_and_delete_say_a_tagged_service_has_no_document(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "get", "c1/web")
    assert (code, out) == (2, "")
    assert (
        "c1/web has no schedule document to print: it is opted in by its tag "
        "teiji:profile=office; change or remove the tag in ECS, or `teiji put` a schedule" in err
    )
    code, _, err = cli(capsys, "delete", "c1/vault")
    assert code == 2 and "is tagged teiji:protected=true" in err
    assert world.config().get("schedule", "c1/api") is not None


def test_validate_table_checks_the_tags_as_the_tick_reads_them(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "validate", "--table")
    assert code == 1  # c1/bad's tag names no profile
    assert any(
        line.startswith("error: tag: schedule c1/bad: teiji:profile:") for line in out.splitlines()
    ), out
    assert "note: c1/vault: protected:" in out
    tag(world, "c1", "bad", profile="office")
    cli(capsys, "start", "c1/web", "--for", "2h", "--reason", "demo")
    code, out, err = cli(capsys, "validate", "--table", "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["tagged"] == ["c1/bad", "c1/web"] and result["protected"] == ["c1/vault"]
    assert result["findings"] == []  # the override of c1/web is not an orphan
    code, out, _ = cli(capsys, "validate", "--table")
    assert "2 services opted in by tag" in out.splitlines()[-1]


def test_an_allowed_cluster_that_cannot_be_listed_is_a_warning_in_list_and_validate(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_ALLOWED_CLUSTERS", "c1,gone")
    refuse_listing(monkeypatch, "gone")
    code, out, err = cli(capsys, "list", "--at", NIGHT, "--json")
    assert code == 1
    assert "c1/web" in {row["service"] for row in json.loads(out)}
    assert "teiji: warning: cannot discover tagged services of cluster gone" in err


# plan -----------------------------------------------------------------------------------------
def test_plan_sees_tagged_services_says_where_each_schedule_came_from_and_writes_nothing(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = CallLog()
    make = tick_cli.make_clients
    monkeypatch.setattr(tick_cli, "make_clients", lambda *a: log.attach(make(*a)))
    before = world.dynamodb.scan(TableName=world.settings.config_table)["Items"]
    code, out, err = cli(capsys, "plan", "--at", NIGHT, "--json")
    assert code == 1, err  # c1/bad fails; nothing else does
    report = json.loads(out)
    services = {s["service"]: s for s in report["services"]}
    assert services["c1/web"]["schedule"] == FROM_TAG
    assert services["c1/web"]["actions"], services["c1/web"]  # it would be stopped
    assert services["c1/api"]["schedule"] == {"from": "document", "profile": None}
    assert services["c1/vault"]["outcome"] == "skipped"
    assert "teiji:protected=true" in services["c1/vault"]["notes"][0]
    assert services["c1/bad"]["outcome"] == "failed"
    assert "c2/far" not in services
    assert log.calls, "the calls were not recorded"
    writes = log.writes(("ecs", "application-autoscaling", "dynamodb", "events", "cloudwatch"))
    assert [c.operation for c in writes] == []
    assert world.dynamodb.scan(TableName=world.settings.state_table)["Items"] == []
    assert world.dynamodb.scan(TableName=world.settings.config_table)["Items"] == before
    assert world.state("c1", "web").desired == 2
    _, out, _ = cli(capsys, "plan", "--at", NIGHT)
    assert "  c1/web  profile office via its teiji:profile tag" in out


# End to end over HTTP -------------------------------------------------------------------------
def test_end_to_end_the_tick_list_and_explain_agree_on_a_tagged_service(
    endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEIJI_ALLOWED_CLUSTERS", "c1")
    world = World(endpoint)
    world.init_tables()
    build_fleet(world)
    code, out, err = run_cli(capsys, endpoint, "tick", "--at", NIGHT, "--json")
    assert code == 1, err  # c1/bad fails; the others are done
    outcomes = {s["service"]: s["outcome"] for s in json.loads(out)["services"]}
    assert (outcomes["c1/web"], outcomes["c1/vault"]) == ("changed", "skipped")
    assert world.state("c1", "web").desired == 0
    assert world.state("c1", "vault").desired == 2  # protected: never changed

    code, out, err = run_cli(capsys, endpoint, "explain", "c1/web", "--at", DAY, "--json")
    assert code == 0, err
    explained = json.loads(out)
    assert (explained["state"], explained["schedule"]) == ("running", FROM_TAG)
    code, out, _ = run_cli(capsys, endpoint, "list", "--at", DAY, "--json")
    row = {r["service"]: r for r in json.loads(out)}["c1/web"]
    assert (row["state"], row["schedule"], row["baseline"]) == ("running", FROM_TAG, True)
    assert row["aws"]["desired_count"] == 0 and row["next_tick"]  # the next tick restores it


def test_a_calendar_a_tagged_services_profile_lists_is_not_deleted(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put({"kind": "calendar", "name": "company", "dates": ["2026-12-29"]})
    world.put_item({**OFFICE, "holidays": ["company"]})  # c1/web takes it through its tag
    code, _, err = cli(capsys, "delete", "--calendar", "company")
    assert code == 2
    assert "calendar company is listed in the holidays of 1 profile (profile office)" in err
    assert world.config().get("calendar", "company") is not None
    assert explain_json(capsys, "c1/web")["state"] == "stopped"  # still valid
