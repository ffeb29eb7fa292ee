"""Opt-in by tag, from the world's side: services tagged teiji:profile=<name> in moto, ticks.

A tagged service is stopped and started and restored exactly; a protected one is never
touched; a document wins over the tag; a cluster outside the allow-list is never listed; a
profile edited or deleted between ticks; hostile tag values; tags that change between
ListServices and DescribeServices.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pytest

from engine.config import Settings
from engine.report import TickReport
from engine.tick import run_tick
from tests.world import CallLog, World, at, moto_tables, schedule

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night
START = at("2026-12-02T06:00:00+09:00")  # Wednesday morning
OFFICE = {
    "pk": "profile",
    "sk": "office",
    "timezone": "Asia/Tokyo",
    "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
}


@dataclass
class Env:
    world: World
    log: CallLog
    settings: Settings

    def tick(self, when: datetime, **kw: Any) -> TickReport:
        clients = self.log.attach(self.world.clients())
        kw.setdefault("dry_run", False)
        return run_tick(clients, self.settings, at=when, **kw)

    def tag(self, cluster: str, name: str, **tags: str) -> None:
        arn = self.world.ecs.describe_services(cluster=cluster, services=[name])["services"][0][
            "serviceArn"
        ]
        self.world.ecs.tag_resource(
            resourceArn=arn,
            tags=[{"key": k.replace("_", ":"), "value": v} for k, v in tags.items()],
        )


@pytest.fixture
def env() -> Iterator[Env]:
    with moto_tables() as world:
        access = replace(world.settings.access, clusters=("c1",))
        yield Env(world, CallLog(), replace(world.settings, access=access))


def test_a_tagged_service_is_stopped_started_and_restored_exactly(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    env.tag("c1", "web", teiji_profile="office")
    w.put_item(OFFICE)

    report = env.tick(STOP)
    web = report.service("c1/web")
    assert web.outcome == "changed", web
    assert w.state("c1", "web").desired == 0
    saved = w.baseline("c1/web")
    assert saved is not None and saved["desired_count"] == 3

    report = env.tick(START)
    assert report.service("c1/web").outcome == "changed"
    state = w.state("c1", "web")
    assert (state.desired, state.min, state.max) == (3, 2, 6)
    assert w.baseline("c1/web") is None


def test_an_override_works_for_a_tagged_service(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=2, target=(1, 4))
    env.tag("c1", "web", teiji_profile="office")
    w.put_item(OFFICE)
    w.put(
        {
            "kind": "override",
            "service": "c1/web",
            "state": "running",
            "start": "2026-12-01T22:30:00+09:00",
            "until": "2026-12-01T23:30:00+09:00",
            "reason": "release verification",
            "id": "rel",
        }
    )
    report = env.tick(STOP)
    assert report.service("c1/web").outcome in ("unchanged", "converged", "ok"), report.service(
        "c1/web"
    )
    assert w.state("c1", "web").desired == 2


def test_a_protected_service_is_never_touched_even_with_a_document(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    w.create_service("c1", "api", desired=2, target=(1, 4))
    env.tag("c1", "web", teiji_profile="office", teiji_protected="true")
    env.tag("c1", "api", teiji_protected="TRUE")
    w.put_item(OFFICE)
    w.put(schedule("c1/api"))

    report = env.tick(STOP)
    for key in ("c1/web", "c1/api"):
        service = report.service(key)
        assert service.outcome == "skipped" and not service.failed
        assert any("teiji:protected=true" in note for note in service.notes)
    assert w.state("c1", "web").desired == 3 and w.state("c1", "api").desired == 2
    assert env.log.writes() == []


def test_a_document_wins_over_the_tag(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    env.tag("c1", "web", teiji_profile="office")
    w.put_item(OFFICE)
    w.put(schedule("c1/web", mode="always_on"))
    report = env.tick(STOP)
    assert report.service("c1/web").outcome != "changed"
    assert w.state("c1", "web").desired == 3


def test_a_tag_outside_the_allowed_clusters_is_never_listed(env: Env) -> None:
    w = env.world
    w.create_service("c2", "web", desired=3, target=(2, 6))
    env.tag("c2", "web", teiji_profile="office")
    w.put_item(OFFICE)
    report = env.tick(STOP)
    assert [s.key for s in report.services] == []
    assert w.state("c2", "web").desired == 3
    assert {c.params["cluster"] for c in env.log.named("ListServices")} == {"c1"}


def test_nothing_is_listed_without_an_allow_list(env: Env) -> None:
    env.settings = replace(env.settings, access=replace(env.settings.access, clusters=()))
    env.world.create_service("c1", "web", desired=3, target=(2, 6))
    env.tag("c1", "web", teiji_profile="office")
    env.world.put_item(OFFICE)
    env.tick(STOP)
    assert env.log.count("ListServices") == 0
    assert env.world.state("c1", "web").desired == 3


def test_a_profile_edited_between_ticks_is_followed(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    env.tag("c1", "web", teiji_profile="office")
    w.put_item(OFFICE)
    assert env.tick(STOP).service("c1/web").outcome == "changed"
    # Someone makes the profile keep services running.
    w.put_item({**OFFICE, "mode": "always_on"})
    report = env.tick(STOP)
    assert report.service("c1/web").outcome == "changed"
    assert w.state("c1", "web").desired == 3


def test_a_deleted_profile_fails_its_services_closed_with_one_message(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    w.create_service("c1", "api", desired=2, target=(1, 4))
    w.create_service("c1", "own", desired=2, target=(1, 4))
    env.tag("c1", "web", teiji_profile="office")
    w.put_item({"pk": "schedule", "sk": "c1/api", "profile": "office"})
    w.put(schedule("c1/own", mode="always_on"))
    w.put_item(OFFICE)
    assert env.tick(STOP).service("c1/web").outcome == "changed"
    w.dynamodb.delete_item(
        TableName=env.settings.config_table, Key={"pk": {"S": "profile"}, "sk": {"S": "office"}}
    )
    report = env.tick(START)
    for key in ("c1/web", "c1/api"):
        service = report.service(key)
        assert service.outcome == "failed"
        assert service.error is not None and service.error.count("'office'") == 1
        assert "profile" in service.error
    assert report.service("c1/own").outcome != "failed"
    assert w.state("c1", "web").desired == 0  # left as it is: stopped, baseline kept
    assert w.baseline("c1/web") is not None
    assert w.state("c1", "api").desired == 0  # stopped by the first tick, left so


@pytest.mark.parametrize(
    "value",
    ["x" * 256, "office\n", "off\x00ice", "unknown-profile", " "],
    ids=["very long", "newline", "control character", "unknown", "blank"],
)
def test_hostile_tag_values_fail_only_that_service_on_one_line(env: Env, value: str) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    w.create_service("c1", "api", desired=2, target=(1, 4))
    env.tag("c1", "api", teiji_profile="office")
    try:
        env.tag("c1", "web", teiji_profile=value)
    except Exception:  # moto refuses some values, as ECS does (256 characters at most)
        pytest.skip("the tag value is refused by ECS itself")
    w.put_item(OFFICE)
    report = env.tick(STOP)
    assert report.service("c1/api").outcome == "changed"
    if value.strip() == "office":
        return
    web = report.service("c1/web")
    assert web.outcome == "failed" and web.error is not None
    assert "\n" not in web.error and "\x00" not in web.error and len(web.error) < 500
    assert w.state("c1", "web").desired == 3


def test_tags_changed_between_listing_and_describing_are_read_as_described(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    env.tag("c1", "web", teiji_profile="office")
    w.put_item(OFFICE)
    clients = env.world.clients()
    original = clients.ecs

    def ecs_with_a_race(*args: Any, **kw: Any) -> Any:
        client = original(*args, **kw)

        def protect_after_listing(**_: Any) -> None:
            env.tag("c1", "web", teiji_protected="true")

        client.meta.events.register_first(
            "after-call.ecs.ListServices", lambda **k: protect_after_listing(**k)
        )
        return client

    clients.ecs = ecs_with_a_race  # type: ignore[method-assign]
    report = run_tick(clients, env.settings, at=STOP, dry_run=False)
    assert report.service("c1/web").outcome == "skipped"
    assert w.state("c1", "web").desired == 3


class _PagedEcs:
    """ListServices as real ECS answers it: at most maxResults ARNs a page, then a token."""

    def __init__(self, names: list[str], *, repeat_token: bool = False) -> None:
        self.names = names
        self.repeat_token = repeat_token
        self.calls: list[dict[str, Any]] = []

    def list_services(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        start = 0 if self.repeat_token else int(params.get("nextToken", "0"))
        page = self.names[start : start + params["maxResults"]]
        answer: dict[str, Any] = {
            "serviceArns": [f"arn:aws:ecs:ap-northeast-1:123456789012:service/c1/{n}" for n in page]
        }
        if start + params["maxResults"] < len(self.names):
            answer["nextToken"] = str(start + params["maxResults"])
        return answer


def test_listing_reads_every_page_of_100() -> None:
    from engine.aws.ecs import list_service_names

    names = [f"svc-{i:03d}" for i in range(230)]
    client = _PagedEcs(names)
    assert list_service_names(client, "c1") == names  # type: ignore[arg-type]
    assert [c.get("nextToken") for c in client.calls] == [None, "100", "200"]
    assert all(c["maxResults"] == 100 and c["cluster"] == "c1" for c in client.calls)


def test_a_listing_whose_token_comes_back_is_unreadable() -> None:
    from engine.aws.ecs import list_service_names

    with pytest.raises(Exception, match="nextToken"):
        list_service_names(_PagedEcs(["a"] * 150, repeat_token=True), "c1")  # type: ignore[arg-type]


# Call accounting (beside tests/test_api_calls.py, whose module-wide world would be shared)
DAY = at("2026-12-02T12:00:00+09:00")


def test_discovering_tagged_services_costs_the_listing_and_the_untracked_describes() -> None:
    """ListServices 100 a page, every page, in each allowed cluster; DescribeServices with
    tags 10 a call for the listed services no document names; nothing for other clusters."""
    from bench.floor import discovery_floor
    from tests.faults import logged_tick

    with moto_tables() as w:
        w.settings = replace(
            w.settings, access=replace(w.settings.access, clusters=("alpha", "beta"))
        )
        docs = []
        for i in range(101):  # two pages of ListServices
            w.create_service("alpha", f"doc-{i:03d}", desired=2, target=(1, 4))
            docs.append(schedule(f"alpha/doc-{i:03d}"))
        for i in range(12):  # untracked: two DescribeServices
            w.create_service("beta", f"tag-{i:02d}", desired=2, target=(1, 4))
        w.create_service("gamma", "outside", desired=2)  # not an allowed cluster
        w.put(*docs)
        log, report = logged_tick(w, DAY)
    assert not report.failed, [s.error for s in report.services if s.failed][:2]
    listing = log.named("ListServices")
    # moto answers every ListServices in one page, whatever maxResults says; real ECS gives
    # 100 a page (the paging itself: tests/test_tag_optin.py).
    assert {c.params["cluster"] for c in listing} == {"alpha", "beta"}
    assert all(c.params["maxResults"] == 100 for c in listing)
    pages, described = discovery_floor({"alpha": 101, "beta": 12}, {"alpha": 0, "beta": 12})
    assert (pages, described) == (3, 2)
    assert len(listing) <= pages
    describes = log.named("DescribeServices")
    assert all(c.params.get("include") == ["TAGS"] for c in describes)
    assert all(len(c.params["services"]) <= 10 for c in describes)
    # Every listed service once: discovery describes them all, and the tick reuses those
    # answers for the documented ones instead of describing them again.
    assert len(describes) == 11 + described
    assert not [c for c in describes if c.params["cluster"] == "gamma"]


def test_a_tagged_service_is_described_once_a_tick_not_twice(env: Env) -> None:
    w = env.world
    w.put_item(OFFICE)
    for i in range(15):
        w.create_service("c1", f"tag-{i:02d}", desired=2, target=(1, 4))
        env.tag("c1", f"tag-{i:02d}", teiji_profile="office")
    for i in range(7):
        w.create_service("c1", f"doc-{i:02d}", desired=2, target=(1, 4))
    w.put(*[schedule(f"c1/doc-{i:02d}") for i in range(7)])
    report = env.tick(STOP)
    assert report.counts["changed"] == 22, report.counts
    described = [name for c in env.log.named("DescribeServices") for name in c.params["services"]]
    assert sorted(described) == sorted(
        [f"tag-{i:02d}" for i in range(15)] + [f"doc-{i:02d}" for i in range(7)]
    )
    assert len(env.log.named("DescribeServices")) == 3  # 22 services in calls of 10
    # A person edits a service between ticks: the next tick's one answer is what it acts on.
    w.ecs.update_service(cluster="c1", service="tag-03", desiredCount=5)
    report = env.tick(STOP)
    assert report.service("c1/tag-03").outcome == "changed"
    assert w.state("c1", "tag-03").desired == 0
