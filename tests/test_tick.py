"""One tick against moto in-process: lease, load, decide, observe, plan, apply, report."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

import engine.aws.autoscaling as autoscaling
import engine.converge
from engine.config import Settings
from engine.lease import shard_of
from engine.logs import setup_logging
from engine.report import TickReport
from engine.targets import TargetReport
from engine.tick import run_tick
from tests.world import (
    ALL_SUSPENDED,
    CallLog,
    Faults,
    ServiceState,
    World,
    at,
    moto_tables,
    schedule,
)

STOP = at("2026-12-01T23:00:00+09:00")  # Tuesday night
START = at("2026-12-02T06:00:00+09:00")  # Wednesday morning
DAY = at("2026-12-02T12:00:00+09:00")


@dataclass
class Env:
    world: World
    log: CallLog
    faults: Faults

    def tick(self, when: datetime, *, settings: Settings | None = None, **kw: Any) -> TickReport:
        clients = self.faults.attach(self.log.attach(self.world.clients()))
        kw.setdefault("dry_run", False)
        report = run_tick(clients, settings or self.world.settings, at=when, **kw)
        keys = [service.key for service in report.services]
        assert len(keys) == len(set(keys)), f"a service is reported twice: {keys}"
        assert keys == sorted(keys)
        return report


@pytest.fixture
def env() -> Iterator[Env]:
    with moto_tables() as world:
        yield Env(world, CallLog(), Faults())


def test_stop_and_start_restore_capacity_exactly(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6), suspended={"in": True})
    w.put(schedule("c1/web"))

    report = env.tick(STOP)
    assert not report.failed
    web = report.service("c1/web")
    assert web.outcome == "changed"
    assert [a.kind for a in web.actions] == ["save_baseline", "register_target", "update_service"]
    assert w.state("c1", "web") == ServiceState(0, 0, 0, ALL_SUSPENDED)
    saved = w.baseline("c1/web")
    assert saved is not None
    assert (saved["desired_count"], saved["min_capacity"], saved["max_capacity"]) == (3, 2, 6)
    assert saved["suspended"] == {"dynamic_in": True, "dynamic_out": False, "scheduled": False}
    # The real-AWS order: pin the bounds (which clamps desired), then set desired.
    register = env.log.named("RegisterScalableTarget")[0].params
    assert register["MinCapacity"] == register["MaxCapacity"] == 0
    assert register["SuspendedState"] == ALL_SUSPENDED
    assert env.log.named("UpdateService")[0].params["desiredCount"] == 0

    env.log.clear()
    report = env.tick(START)
    assert report.service("c1/web").outcome == "changed"
    assert w.state("c1", "web") == ServiceState(
        3,
        2,
        6,
        {
            "DynamicScalingInSuspended": True,
            "DynamicScalingOutSuspended": False,
            "ScheduledScalingSuspended": False,
        },
    )
    assert w.baseline("c1/web") is None
    kinds = [c.operation for c in env.log.writes(("ecs", "application-autoscaling", "dynamodb"))]
    assert kinds == [
        "PutItem",  # lease
        "RegisterScalableTarget",
        "UpdateService",
        "DeleteItem",  # baseline, after both calls succeeded
        "PutItem",  # lease given back
    ]


def test_converged_services_get_no_write_calls(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=2, target=(1, 4))
    w.create_service("c1", "batch", desired=0, target=(0, 0), suspended=ALL_SUSPENDED)
    w.put(schedule("c1/web"), schedule("c1/batch", mode="always_off"))
    report = env.tick(DAY)
    assert report.counts["converged"] == 2
    assert env.log.writes() == []
    assert not report.failed


def test_dry_run_writes_nothing_not_even_the_lease(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    w.put(schedule("c1/web"))
    report = env.tick(STOP, dry_run=True)
    web = report.service("c1/web")
    assert web.outcome == "planned"
    assert [a.kind for a in web.actions] == ["save_baseline", "register_target", "update_service"]
    assert report.lease == "not taken (dry run)"
    assert env.log.writes(("ecs", "application-autoscaling", "dynamodb")) == []
    assert w.state("c1", "web").desired == 3


def test_lease_held_by_another_tick_means_nothing_is_done(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    w.put(schedule("c1/web"))
    assert w.hold_lease("other")
    report = env.tick(STOP)
    assert report.lease == "held"
    assert report.lease_holder == "other"
    assert report.services == []
    assert not report.failed
    assert w.state("c1", "web").desired == 3


def test_lease_is_released_after_the_tick(env: Env) -> None:
    env.world.put(schedule("c1/web", mode="unmanaged"))
    env.tick(DAY)
    assert env.world.lease_slots() == {}


def test_a_tick_that_outlives_its_lease_stops_acting(env: Env) -> None:
    w = env.world
    for name in ("a", "b"):
        w.create_service("c1", name, desired=2)
    w.put(schedule("c1/a"), schedule("c1/b"))
    now = [1_000_000.0]
    acting: list[bool] = []

    def clock() -> float:
        if acting:
            now[0] += 2000  # once acting, every reading is later than the lease can reach
        return now[0]

    def first_change(operation: Any, account: str | None, region: str) -> None:
        if operation.name == "UpdateService":
            acting.append(True)

    clients = env.log.attach(w.clients())
    clients.before_call.append(first_change)
    one_at_a_time = Settings(lease_seconds=960, concurrency=1)
    report = run_tick(clients, one_at_a_time, at=STOP, dry_run=False, clock=clock)
    assert report.lease == "lost"
    assert report.failed
    assert report.service("c1/a").outcome == "changed"
    skipped = report.service("c1/b")
    assert skipped.outcome == "skipped"
    assert "lease" in (skipped.error or "")
    assert w.state("c1", "b").desired == 2


def test_invalid_document_fails_its_service_and_the_others_go_on(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3)
    w.create_service("c1", "bad", desired=3)
    w.put(schedule("c1/web"))
    w.put_item({"pk": "schedule", "sk": "c1/bad", "windows": [{"days": "mon-fry"}]})
    report = env.tick(STOP)
    bad = report.service("c1/bad")
    assert bad.outcome == "failed"
    assert bad.error is not None
    assert "dynamodb:teiji-config: schedule c1/bad: windows[0].days" in bad.error
    assert w.state("c1", "bad").desired == 3  # left alone
    assert report.service("c1/web").outcome == "changed"
    assert report.failed


def test_invalid_override_leaves_its_service_alone(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3)
    w.put(schedule("c1/web"))
    w.put_item({"pk": "override", "sk": "c1/web#x1", "state": "running", "until": "tomorrow"})
    report = env.tick(STOP)
    assert report.service("c1/web").outcome == "failed"
    assert "override c1/web#x1" in (report.service("c1/web").error or "")
    assert w.state("c1", "web").desired == 3


def test_invalid_calendar_is_a_tick_problem(env: Env) -> None:
    env.world.put_item({"pk": "calendar", "sk": "company", "dates": ["someday"]})
    report = env.tick(DAY)
    assert report.failed
    assert any("calendar company" in p for p in report.problems)


def test_schedule_for_a_missing_service_fails_it_and_the_others_go_on(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3)
    w.create_service("c1", "gone", desired=0)
    w.ecs.delete_service(cluster="c1", service="gone")
    w.put(schedule("c1/web"), schedule("c1/ghost"), schedule("c1/gone"), schedule("c9/api"))
    report = env.tick(STOP)
    assert "does not exist" in (report.service("c1/ghost").error or "")
    assert "INACTIVE" in (report.service("c1/gone").error or "")
    assert "ClusterNotFoundException" in (report.service("c9/api").error or "")
    assert report.service("c1/web").outcome == "changed"
    assert report.counts["failed"] == 3


def test_first_failing_call_stops_that_service_only(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    w.create_service("c1", "api", desired=2, target=(1, 4))
    w.put(schedule("c1/web"), schedule("c1/api"))
    env.faults.fail(
        "RegisterScalableTarget",
        code="AccessDeniedException",
        message="not allowed",
        when=lambda p: p["ResourceId"] == "service/c1/web",
    )
    report = env.tick(STOP)
    web = report.service("c1/web")
    assert web.outcome == "failed"
    assert web.error == "register_target failed: AccessDeniedException: not allowed"
    assert [a.kind for a in web.actions] == ["save_baseline"]  # what was done before the failure
    assert w.state("c1", "web").desired == 3  # UpdateService never sent
    assert w.baseline("c1/web") is not None  # kept: the next tick goes on from here
    assert report.service("c1/api").outcome == "changed"
    assert w.state("c1", "api").desired == 0

    env.faults.faults.clear()
    report = env.tick(STOP)
    assert report.service("c1/web").outcome == "changed"
    assert w.state("c1", "web") == ServiceState(0, 0, 0, ALL_SUSPENDED)
    assert w.baseline("c1/web")["desired_count"] == 3  # type: ignore[index]


def test_concurrent_update_is_retried(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(autoscaling, "_sleep", sleeps.append)
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    w.put(schedule("c1/web"))
    env.faults.fail("RegisterScalableTarget", code="ConcurrentUpdateException", times=2)
    report = env.tick(STOP)
    assert report.service("c1/web").outcome == "changed"
    assert len(env.log.named("RegisterScalableTarget")) == 3
    assert len(sleeps) == 2
    assert w.state("c1", "web").min == 0


def test_concurrent_update_that_persists_fails_the_service(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(autoscaling, "_sleep", lambda _: None)
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    w.put(schedule("c1/web"))
    env.faults.fail("RegisterScalableTarget", code="ConcurrentUpdateException")
    report = env.tick(STOP)
    assert "ConcurrentUpdateException" in (report.service("c1/web").error or "")
    assert len(env.log.named("RegisterScalableTarget")) == autoscaling.CONCURRENT_UPDATE_ATTEMPTS


def test_protected_service_is_refused_and_reported(env: Env) -> None:
    w = env.world
    w.create_service("prod", "web", desired=3, target=(2, 6))
    w.create_service("c1", "web", desired=3)
    w.put(schedule("prod/web"), schedule("c1/web"))
    report = env.tick(STOP, settings=Settings(protected=("prod",)))
    prod = report.service("prod/web")
    assert prod.outcome == "failed"
    assert "protected" in (prod.error or "")
    assert w.state("prod", "web").desired == 3
    assert w.baseline("prod/web") is None
    assert report.service("c1/web").outcome == "changed"


def test_recreated_service_does_not_get_the_old_capacity(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=5, target=(4, 8))
    w.put(schedule("c1/web"))
    env.tick(STOP)
    old = w.baseline("c1/web")
    assert old is not None
    # Deleted and created again under the same name, with a new createdAt.
    w.deregister_target("c1", "web")
    w.recreate_service("c1", "web", desired=0)
    report = env.tick(START)
    web = report.service("c1/web")
    assert any("earlier service of the same name" in n for n in web.notes)
    assert w.state("c1", "web").desired == 1  # started from the document, not from 5
    assert w.baseline("c1/web") == old  # kept for a person to look at


def test_unmanaged_services_are_not_observed(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3)
    w.put(schedule("c1/web", mode="unmanaged"))
    report = env.tick(STOP)
    assert report.service("c1/web").outcome == "unmanaged"
    assert env.log.count("DescribeServices") == 0
    assert w.state("c1", "web").desired == 3


def test_override_keeps_a_service_running_at_night(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=2)
    w.put(
        schedule("c1/web"),
        {
            "kind": "override",
            "service": "c1/web",
            "state": "running",
            "until": "2026-12-02T01:00:00+09:00",
            "reason": "release verification",
            "created_by": "suzuki",
            "id": "rel42",
        },
    )
    report = env.tick(STOP)
    web = report.service("c1/web")
    assert web.outcome == "converged"
    assert web.decision is not None
    assert web.decision.source == "override"
    assert "override rel42" in (web.decided_by or "")
    assert "by suzuki" in (web.decided_by or "")
    report = env.tick(at("2026-12-02T01:15:00+09:00"))
    assert report.service("c1/web").outcome == "changed"
    assert w.state("c1", "web").desired == 0


def test_started_by_hand_at_night_is_stopped_again_with_a_hint(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    w.put(schedule("c1/web"))
    env.tick(STOP)
    w.set_desired("c1", "web", 4)
    report = env.tick(at("2026-12-01T23:45:00+09:00"))
    web = report.service("c1/web")
    assert [a.kind for a in web.actions] == ["amend_baseline", "update_service"]
    assert any("teiji start c1/web --for 2h --reason" in n for n in web.notes)
    assert "baseline amended: desiredCount 3→4 (changed while stopped)" in web.notes
    assert w.baseline("c1/web")["desired_count"] == 4  # type: ignore[index]


def test_services_subset_and_unknown_names(env: Env) -> None:
    w = env.world
    w.create_service("c1", "a", desired=2)
    w.create_service("c1", "b", desired=2)
    w.put(schedule("c1/a"), schedule("c1/b"))
    report = env.tick(STOP, services=["c1/a", "c1/nope"])
    assert [s.key for s in report.services if s.outcome == "changed"] == ["c1/a"]
    assert report.service("c1/nope").outcome == "failed"
    assert w.state("c1", "b").desired == 2


def test_shards_split_services_and_take_their_own_lease(env: Env) -> None:
    w = env.world
    keys = [f"c1/s{i}" for i in range(12)]
    for key in keys:
        w.create_service("c1", key.split("/")[1], desired=1)
    w.put(*(schedule(k) for k in keys))
    seen: list[str] = []
    for index in range(3):
        report = env.tick(STOP, shard=(index, 3), dry_run=True)
        seen.extend(s.key for s in report.services)
        assert all(shard_of(s.key, 3) == index for s in report.services)
    assert sorted(seen) == sorted(keys)
    # A shard's lease does not block another shard.
    assert w.hold_lease("other", (0, 3))
    report = env.tick(STOP, shard=(1, 3))
    assert report.lease == "acquired"
    with pytest.raises(ValueError, match="shard"):
        env.tick(STOP, shard=(3, 3))


def test_a_schedule_without_timezone_is_read_in_the_default_timezone(env: Env) -> None:
    w = env.world
    office = [{"days": "mon-fri", "start": "09:00", "end": "17:00"}]
    w.create_service("c1", "web", desired=2)
    w.create_service("c1", "api", desired=2)
    # Written in the console with no timezone; the other names its own.
    w.put_item({"pk": "schedule", "sk": "c1/web", "windows": office})
    w.put(schedule("c1/api", timezone="Asia/Tokyo", windows=office))
    when = at("2026-12-02T15:00:00+00:00")  # Wed 10:00 in New York, Thu 00:00 in Tokyo

    new_york = Settings(default_timezone="America/New_York")
    report = env.tick(when, settings=new_york, dry_run=True)
    web = report.service("c1/web")
    assert web.decision is not None and web.decision.state == "running"
    assert web.outcome == "converged"
    api = report.service("c1/api")
    assert api.decision is not None and api.decision.state == "stopped"  # its own zone wins

    report = env.tick(when, dry_run=True)  # the default setting: Asia/Tokyo
    web = report.service("c1/web")
    assert web.decision is not None and web.decision.state == "stopped"
    assert web.outcome == "planned"


def test_baselines_that_cannot_be_read_stop_all_acting(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=3)
    w.put(schedule("c1/web"))
    env.faults.fail("BatchGetItem", code="ProvisionedThroughputExceededException")
    report = env.tick(STOP)
    assert "cannot read baselines" in (report.service("c1/web").error or "")
    assert w.state("c1", "web").desired == 3


# Load balancer targets --------------------------------------------------------------------------
@pytest.fixture
def target_checks(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def fake(clients: Any, **kwargs: Any) -> TargetReport:
        calls.append(kwargs)
        if kwargs["service"]["serviceName"] == "boom":
            raise RuntimeError("target id is not an IP address")
        return TargetReport(dry_run=kwargs["dry_run"])

    monkeypatch.setattr(engine.converge, "check_targets", fake)
    return calls


def test_targets_are_checked_only_for_services_already_running(
    env: Env, target_checks: list[dict[str, Any]]
) -> None:
    w = env.world
    w.create_service("c1", "up", desired=2, load_balancer=True)
    w.create_service("c1", "waking", desired=0, load_balancer=True)
    w.create_service("c1", "ignored", desired=2, load_balancer=True)
    w.create_service("c1", "plain", desired=2)
    w.create_service("c1", "night", desired=2, load_balancer=True)
    w.put(
        schedule("c1/up", targets="repair"),
        schedule("c1/waking"),
        schedule("c1/ignored", targets="ignore"),
        schedule("c1/plain"),
        schedule("c1/night", mode="always_off"),
    )
    report = env.tick(DAY)
    assert [c["service"]["serviceName"] for c in target_checks] == ["up"]
    assert target_checks[0]["mode"] == "repair"
    assert target_checks[0]["cluster"] == "c1"
    assert report.service("c1/up").targets is not None
    assert report.service("c1/waking").outcome == "changed"  # started: tasks do not exist yet


def test_a_target_check_that_raises_fails_only_its_service(
    env: Env, target_checks: list[dict[str, Any]]
) -> None:
    w = env.world
    w.create_service("c1", "boom", desired=2, load_balancer=True)
    w.create_service("c1", "fine", desired=2, load_balancer=True)
    w.put(schedule("c1/boom"), schedule("c1/fine"))
    report = env.tick(DAY)
    assert report.service("c1/boom").outcome == "failed"
    assert "target check failed" in (report.service("c1/boom").error or "")
    assert report.service("c1/fine").outcome == "converged"


def test_real_target_check_runs_on_a_load_balanced_service(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=2, load_balancer=True)
    w.put(schedule("c1/web"))
    report = env.tick(DAY)
    web = report.service("c1/web")
    assert web.targets is not None
    assert web.outcome == "converged", web.error


# Logs -------------------------------------------------------------------------------------------
def test_every_change_is_logged_as_one_json_line(env: Env) -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream)
    w = env.world
    w.create_service("c1", "web", desired=3, target=(2, 6))
    w.put(schedule("c1/web"))
    env.tick(STOP)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    service_lines = [line for line in lines if line.get("service") == "c1/web"]
    assert len(service_lines) == 1
    line = service_lines[0]
    assert line["event"] == "service changed"
    assert line["decided_by"].startswith("default") or line["decided_by"].startswith("window")
    update = next(a for a in line["actions"] if a["action"] == "update_service")
    assert update["before"] == {"desired_count": 3}
    assert update["after"] == {"desired_count": 0}
    summary = lines[-1]
    assert summary["event"] == "tick finished"
    assert summary["counts"]["changed"] == 1
    assert "testing" not in stream.getvalue()  # no credentials


def test_unreadable_baseline_fails_its_service(env: Env) -> None:
    w = env.world
    w.create_service("c1", "web", desired=0)
    w.put(schedule("c1/web"))
    w.put_item({"pk": "baseline", "sk": "c1/web", "desired_count": -4}, table="teiji-state")
    report = env.tick(START)
    assert report.service("c1/web").outcome == "failed"
    assert "unreadable" in (report.service("c1/web").error or "")
    assert w.state("c1", "web").desired == 0


def test_a_defect_in_one_service_does_not_stop_the_others(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = engine.converge.plan_service

    def flaky(decision: Any, observation: Any, *args: Any, **kwargs: Any) -> Any:
        if observation.service == "a":
            raise KeyError("surprise")
        return real(decision, observation, *args, **kwargs)

    monkeypatch.setattr(engine.converge, "plan_service", flaky)
    w = env.world
    w.create_service("c1", "a", desired=2)
    w.create_service("c1", "b", desired=2)
    w.put(schedule("c1/a"), schedule("c1/b"))
    report = env.tick(STOP)
    assert report.service("c1/a").outcome == "failed"
    assert "internal error" in (report.service("c1/a").error or "")
    assert report.service("c1/b").outcome == "changed"
