"""``teiji simulate`` and profiles, from the world's side: which profile decided each service,
by document or by tag, and the fields the schedule set itself, in the table, the JSON and the
page; a profile that is missing, invalid or deleted mid-way fails exactly its users with one
line each while the others are simulated; hostile profile names stay on one safe line; with
AWS, the services opted in by tag are simulated as ``teiji list`` lists them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli.main import main
from schemas.validation import Problem
from tests.faults import refuse_listing
from tests.world import World, run_cli

WEEK = ["--from", "2026-11-16", "--to", "2026-11-22"]
OFFICE_WINDOWS = [{"days": "mon-fri", "start": "09:00", "end": "18:00"}]
OFFICE = {
    "kind": "profile",
    "name": "office",
    "timezone": "Asia/Tokyo",
    "windows": OFFICE_WINDOWS,
    "holidays": ["JP"],
}
OWN = {
    "kind": "schedule",
    "service": "c1/own",
    "timezone": "Asia/Tokyo",
    "windows": OFFICE_WINDOWS,
}
TAKEN = ["timezone", "windows", "holidays"]  # what the profile gives, in the model's order


def user(service: str, profile: str = "office", **own: Any) -> dict[str, Any]:
    return {"kind": "schedule", "service": service, "profile": profile, **own}


def files(tmp_path: Path, *documents: dict[str, Any]) -> str:
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return str(path)


def simulate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["simulate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


FLEET = (OFFICE, user("c1/a"), user("c1/b", stopped={"desired_count": 1}), OWN)


# Where each schedule came from -----------------------------------------------------------------
def test_the_table_names_the_profile_and_the_fields_each_schedule_set(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = simulate(capsys, "-f", files(tmp_path, *FLEET), *WEEK)
    assert code == 0, err
    lines = out.splitlines()
    start = lines.index("schedules made with a profile:")
    assert lines[start + 1 : start + 3] == [
        "  c1/a  profile office via its document (set by the document: nothing; from the "
        "profile: timezone, windows, holidays)",
        "  c1/b  profile office via its document (set by the document: stopped; from the "
        "profile: timezone, windows, holidays)",
    ]
    assert lines[start + 3] == ""  # c1/own has its own document: not listed
    # The field b set itself is what it does: one task while stopped, so nothing saved.
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert rows["c1/a"][1:3] == rows["c1/own"][1:3] == ["45.00", "123.00"]
    assert rows["c1/b"][6] == "$0.00" and rows["c1/a"][6] != "$0.00"
    # Files hold no tags: simulate says so, since profiles are in use.
    assert "teiji: note: services opted in by their teiji:profile tag are not simulated" in err


def test_the_json_carries_the_schedule_object_of_list_and_explain(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = simulate(capsys, "-f", files(tmp_path, *FLEET), *WEEK, "--json")
    assert code == 0, err
    by_service = {item["service"]: item["schedule"] for item in json.loads(out)}
    assert by_service == {
        "c1/a": {"from": "profile", "profile": "office", "own_fields": [], "profile_fields": TAKEN},
        "c1/b": {
            "from": "profile",
            "profile": "office",
            "own_fields": ["stopped"],
            "profile_fields": TAKEN,
        },
        "c1/own": {"from": "document", "profile": None},
    }
    # The same object as teiji explain gives for the service.
    capsys.readouterr()
    assert main(["explain", "c1/b", "-f", str(tmp_path), "--at", "2026-11-16T10:00", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["schedule"] == by_service["c1/b"]


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", "profile office by its document (set itself: stopped)"),
        ("ja", "プロファイル office（文書で指定、自身の設定: stopped）"),
    ],
)
def test_the_page_says_it_under_each_service_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, words: str
) -> None:
    page = tmp_path / "week.html"
    code, _, err = simulate(
        capsys, "-f", files(tmp_path, *FLEET), *WEEK, "--html", str(page), "--lang", lang
    )
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert html.count('<span class="origin"') == 2  # a and b; not own
    section = html[html.index("<h3>c1/b</h3>") :].split("</summary>", 1)[0]
    assert words in section
    assert "timezone, windows, holidays" in section  # the fields taken, in the tooltip


def test_without_profiles_nothing_is_added(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = simulate(capsys, "-f", files(tmp_path, OWN), *WEEK)
    assert code == 0, err
    assert "profile" not in out and "note" not in err
    code, out, _ = simulate(capsys, "-f", files(tmp_path, OWN), *WEEK, "--json")
    assert json.loads(out)[0]["schedule"] == {"from": "document", "profile": None}


# A profile missing or invalid: exactly its users fail ------------------------------------------
def failures(err: str) -> dict[str, str]:
    found = {}
    for line in err.splitlines():
        if line.startswith("teiji: cannot simulate "):
            key, _, why = line.removeprefix("teiji: cannot simulate ").partition(": ")
            assert key not in found, f"two lines for {key}"
            found[key] = why
    return found


def test_a_missing_profile_fails_only_its_users_with_one_line_each(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = files(tmp_path, OFFICE, user("c1/a"), user("c1/lost", "nowhere"), OWN)
    code, out, err = simulate(capsys, "-f", path, *WEEK)
    assert code == 1
    assert [line.split()[0] for line in out.splitlines()[1:4]] == ["c1/a", "c1/own", "TOTAL"]
    (why,) = failures(err).values()
    assert set(failures(err)) == {"c1/lost"}
    assert "no profile named 'nowhere'" in why and "profiles defined: office" in why
    code, out, err = simulate(capsys, "-f", path, *WEEK, "--json")
    assert code == 1
    assert [item["service"] for item in json.loads(out)] == ["c1/a", "c1/own"]
    assert set(failures(err)) == {"c1/lost"}


def test_an_invalid_profile_fails_only_its_users_and_its_problems_are_listed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = {**OFFICE, "timezone": "Mars/Olympus"}
    path = files(tmp_path, broken, user("c1/a"), user("c1/b", windows=OFFICE_WINDOWS), OWN)
    code, out, err = simulate(capsys, "-f", path, *WEEK, "--json")
    assert code == 1
    assert [item["service"] for item in json.loads(out)] == ["c1/own"]
    found = failures(err)
    assert set(found) == {"c1/a", "c1/b"}
    for why in found.values():
        assert why.startswith("profile: profile 'office' is invalid (fields at fault: timezone")
    assert "problem: " in err and "unknown timezone 'Mars/Olympus'" in err


def test_when_every_service_fails_nothing_is_simulated(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = simulate(capsys, "-f", files(tmp_path, user("c1/a", "nowhere")), *WEEK)
    assert code == 2
    assert out == ""
    assert "no profile named 'nowhere'" in err and "Traceback" not in err


def test_a_service_named_on_the_command_line_fails_with_its_profile(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = files(tmp_path, OFFICE, user("c1/lost", "nowhere"), OWN)
    code, _, err = simulate(capsys, "-f", path, *WEEK, "c1/lost")
    assert code == 2 and "no profile named 'nowhere'" in err
    code, out, err = simulate(capsys, "-f", path, *WEEK, "c1/lost", "c1/own", "--json")
    assert code == 1
    assert [item["service"] for item in json.loads(out)] == ["c1/own"]
    assert set(failures(err)) == {"c1/lost"}
    # A service not named is not reported, whatever is wrong with it.
    code, out, err = simulate(capsys, "-f", path, *WEEK, "c1/own")
    assert code == 0 and failures(err) == {}


@pytest.mark.parametrize(
    "name",
    ["a\nb" + "x" * 500, "off\x00ice", "x" * 300, "\x1b[31mred\x1b[0m", "office\r\nc1/own: fine"],
    ids=["newline and long", "nul", "very long", "escape codes", "forged line"],
)
def test_hostile_profile_names_are_shown_on_one_safe_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    # Named by a schedule, and given by an (invalid) profile document of that name.
    for documents in (
        (OFFICE, user("c1/a", name), OWN),
        ({**OFFICE, "name": name}, user("c1/a", name), OWN),
    ):
        code, out, err = simulate(capsys, "-f", files(tmp_path, *documents), *WEEK, "--json")
        assert code == 1, err
        assert [item["service"] for item in json.loads(out)] == ["c1/own"]
        assert set(failures(err)) == {"c1/a"}
        for line in err.splitlines():
            assert line.isprintable() and len(line) < 600, repr(line)


# With AWS: the services opted in by tag, as teiji list lists them ------------------------------
OFFICE_ITEM = {k: v for k, v in OFFICE.items() if k not in ("kind", "name")} | {
    "pk": "profile",
    "sk": "office",
}


def _tag(world: World, cluster: str, name: str, value: str) -> None:
    arn = world.ecs.describe_services(cluster=cluster, services=[name])["services"][0]["serviceArn"]
    world.ecs.tag_resource(resourceArn=arn, tags=[{"key": "teiji:profile", "value": value}])


@pytest.fixture
def fleet(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> World:
    """c1/web opted in by its tag, c1/api by a document naming the profile (and setting its
    stopped count), c1/own with a document of its own, c1/bad tagged with a profile that does
    not exist, c1/plain neither tagged nor scheduled; the profile in the table."""
    monkeypatch.setenv("TEIJI_ALLOWED_CLUSTERS", "c1")
    world = World(endpoint)
    world.init_tables()
    for name in ("web", "api", "own", "bad", "plain"):
        world.create_service("c1", name, desired=2)
    _tag(world, "c1", "web", "office")
    _tag(world, "c1", "bad", "nowhere")
    world.put_item(OFFICE_ITEM)
    world.put_item(
        {"pk": "schedule", "sk": "c1/api", "profile": "office", "stopped": {"desired_count": 1}}
    )
    world.put(OWN)
    return world


def test_tagged_services_are_simulated_as_list_lists_them(
    capsys: pytest.CaptureFixture[str], endpoint: str, fleet: World
) -> None:
    code, out, err = run_cli(capsys, endpoint, "simulate", *WEEK, "--json")
    assert code == 1  # c1/bad cannot be simulated
    simulated = {item["service"]: item for item in json.loads(out)}
    assert set(simulated) == {"c1/web", "c1/api", "c1/own"}
    assert simulated["c1/web"]["schedule"] == {
        "from": "tag",
        "profile": "office",
        "own_fields": [],
        "profile_fields": TAKEN,
    }
    assert simulated["c1/api"]["schedule"]["own_fields"] == ["stopped"]
    assert simulated["c1/web"]["stopped_hours"] == 123  # the profile's office hours, JP holidays
    assert simulated["c1/web"]["tasks_running"] == 2  # its desiredCount in ECS
    (why,) = failures(err).values()
    assert set(failures(err)) == {"c1/bad"}
    assert why.startswith("teiji:profile: the tag names profile 'nowhere', and there is none")

    code, out, _ = run_cli(capsys, endpoint, "list", "--json")
    listed = {row["service"]: row for row in json.loads(out)}
    assert set(listed) == set(simulated) | {"c1/bad"}
    for key, item in simulated.items():
        assert listed[key]["schedule"] == item["schedule"], key
    assert listed["c1/bad"]["state"] == "invalid"

    code, out, _ = run_cli(capsys, endpoint, "simulate", *WEEK)
    assert "  c1/web  profile office via its teiji:profile tag (from the profile: " in out
    assert "c1/api  profile office via its document (set by the document: stopped;" in out


def test_a_profile_deleted_meanwhile_fails_its_users_and_no_one_else(
    capsys: pytest.CaptureFixture[str], endpoint: str, fleet: World
) -> None:
    assert run_cli(capsys, endpoint, "simulate", *WEEK, "c1/web", "c1/api")[0] == 0
    fleet.dynamodb.delete_item(
        TableName=fleet.settings.config_table,
        Key={"pk": {"S": "profile"}, "sk": {"S": "office"}},
    )
    code, out, err = run_cli(capsys, endpoint, "simulate", *WEEK, "--json")
    assert code == 1
    assert [item["service"] for item in json.loads(out)] == ["c1/own"]
    found = failures(err)
    assert set(found) == {"c1/web", "c1/api", "c1/bad"}
    assert "the tag names profile 'office', and there is none" in found["c1/web"]
    assert "no profile named 'office'" in found["c1/api"]
    assert "profile 'nowhere'" in found["c1/bad"]


def test_without_an_allow_list_no_tag_is_read(
    capsys: pytest.CaptureFixture[str],
    endpoint: str,
    fleet: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As the tick: with no allowed clusters nothing is discovered, so nothing is simulated.
    monkeypatch.delenv("TEIJI_ALLOWED_CLUSTERS")
    code, out, err = run_cli(capsys, endpoint, "simulate", *WEEK, "--json")
    assert code == 0, err
    assert [item["service"] for item in json.loads(out)] == ["c1/api", "c1/own"]


def test_a_cluster_that_cannot_be_listed_is_a_warning_and_the_rest_is_simulated(
    capsys: pytest.CaptureFixture[str],
    endpoint: str,
    fleet: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEIJI_ALLOWED_CLUSTERS", "c1,gone")
    refuse_listing(monkeypatch, "gone")
    code, out, err = run_cli(capsys, endpoint, "simulate", *WEEK, "--json")
    assert code == 1  # c1/bad, as before
    assert {item["service"] for item in json.loads(out)} == {"c1/web", "c1/api", "c1/own"}
    (warning,) = [line for line in err.splitlines() if line.startswith("teiji: warning:")]
    assert warning.startswith("teiji: warning: cannot discover tagged services of cluster gone")
    assert "AccessDeniedException" in warning


# Whom a problem keeps from being simulated (pure) ----------------------------------------------
@pytest.mark.parametrize(
    ("document", "where"),
    [
        ("schedule c1/a", "failed c1/a"),
        ("schedule c1/a@123456789012/us-east-1", "failed c1/a@123456789012/us-east-1"),
        ("override c1/a#late", "failed c1/a"),
        ("override c1/a (document 3)", "failed c1/a"),
        ("profile office", "profile"),
        ("calendar company", "other"),
        ("document 4", "other"),
    ],
)
def test_each_problem_fails_its_service_a_profile_or_everything(document: str, where: str) -> None:
    from engine.cli.simulate_sources import split_problems
    from schemas.validation import DocumentSet

    problem = Problem("f.yaml", document, "-", "wrong")
    sources = split_problems(DocumentSet(), [problem])
    found = [f"failed {key}" for key in sources.failed]
    found += ["profile"] * len(sources.profile_problems) + ["other"] * len(sources.other_problems)
    assert found == [where]
    assert sources.problems == [problem]


# The page's words for a service opted in by tag (pure) -----------------------------------------
@pytest.mark.parametrize(
    ("lang", "words", "tooltip"),
    [
        (
            "en",
            "profile office by its teiji:profile tag",
            "from the profile: timezone, windows, holidays",
        ),
        (
            "ja",
            "プロファイル office（teiji:profile タグで指定）",
            "プロファイルから: timezone, windows, holidays",
        ),
    ],
)
def test_the_page_says_a_tag_opted_the_service_in(lang: str, words: str, tooltip: str) -> None:
    from datetime import date

    from engine.optin import tagged_schedule
    from engine.pricing import price_for
    from engine.simulate import simulate as run
    from engine.timeline_html import origin_fact, render_page
    from schemas.validation import validate_documents

    docs, problems = validate_documents([("f", 1, {**OFFICE, "holidays": []})])
    assert problems == []
    made = tagged_schedule("c1", "web", (None, None), "office", docs, default_timezone="UTC")
    assert not isinstance(made, Problem)
    docs.schedules[made.key] = made
    (sim,) = run(
        docs,
        date(2026, 11, 16),
        date(2026, 11, 17),
        prices={"ap-northeast-1": price_for("ap-northeast-1")},
    )
    assert sim.origin["from"] == "tag"
    assert origin_fact(sim, lang) == f'<span class="origin" title="{tooltip}">{words}</span>'
    assert origin_fact(sim, lang) in render_page([sim], range_label="x", lang=lang)  # type: ignore[arg-type]
