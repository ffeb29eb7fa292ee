"""Target checks only when something changed: the record of each service's last full check.

A tick checks a service's load-balancer targets fully when it has no record of the last
check, when what the check depends on changed (the fingerprint), when the last check was not
ok, or when the record is older than ``TEIJI_TARGET_CHECK_INTERVAL``. Tasks run and are
registered the way ECS would (tests.taskworld) inside the tables' moto (tests.world).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from engine.config import Settings, SettingsError
from engine.converge import (
    FULL_CHECK_EVERY_S,
    check_offsets,
    check_slot,
    target_check_due,
    target_fingerprint,
)
from engine.report import TickReport
from engine.store import StateStore, from_attribute_map
from engine.tick import run_tick
from schemas.records import TargetCheck
from tests.faults import logged_tick
from tests.taskworld import Service, build_world, pinned_task_states
from tests.taskworld import World as TaskWorld
from tests.world import CallLog, World, at, moto_tables, schedule

DAY = at("2026-12-02T12:00:00+09:00")  # a Wednesday, inside the working window
KEY = "main/web"
CHECK_CALLS = ("ListTasks", "DescribeTasks", "DescribeTargetHealth")
FULL_CHECK_CALLS = ("ListTasks", "DescribeTasks")
HOUR = 3600


@dataclass
class Env:
    tables: World
    tasks: TaskWorld
    web: Service
    target_group: str

    def tick(
        self, when: datetime, *, dry_run: bool = False, settings: Settings | None = None
    ) -> tuple[CallLog, TickReport]:
        log = CallLog()
        report = run_tick(
            log.attach(self.tables.clients()),
            settings or self.tables.settings,
            at=when,
            dry_run=dry_run,
        )
        assert not report.failed, report.services
        return log, report

    def record(self) -> dict[str, Any] | None:
        item = self.tables.dynamodb.get_item(
            TableName=self.tables.settings.state_table,
            Key={"pk": {"S": "targets"}, "sk": {"S": KEY}},
            ConsistentRead=True,
        ).get("Item")
        return from_attribute_map(item) if item else None


@pytest.fixture
def env() -> Iterator[Env]:
    with moto_tables() as tables, pinned_task_states():
        tasks = build_world()
        target_group = tasks.target_group("web", target_type="ip")
        web = tasks.fargate_service("web", [target_group])
        tasks.register_like_ecs(web, tasks.run_tasks(web, 2))
        tables.put(schedule(KEY))
        yield Env(tables, tasks, web, target_group)


def checked(log: CallLog) -> bool:
    return any(log.count(name) for name in CHECK_CALLS)


def fully_checked(log: CallLog) -> bool:
    return any(log.count(name) for name in FULL_CHECK_CALLS)


def quarters(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(minutes=15 * n) for n in range(1, count + 1)]


def test_steady_state_ticks_read_no_tasks_after_the_first_check(env: Env) -> None:
    log, report = env.tick(DAY)
    assert fully_checked(log)
    assert report.service(KEY).targets is not None
    record = env.record()
    assert record is not None and record["ok"] is True
    assert record["checked_at"] == int(DAY.timestamp())
    assert record["full_at"] == int(DAY.timestamp())
    ((group, targets),) = record["targets"].items()
    assert group == env.target_group
    assert sorted(targets) == sorted(f"{ip}:{port}" for ip, port in env.tasks.registered(group))
    light = 0
    for when in quarters(DAY, 4):  # one hour: one re-check, of the target group only
        log, report = env.tick(when)
        assert not fully_checked(log), log.counts()
        assert report.service(KEY).outcome == "converged"
        assert report.service(KEY).targets is None
        light += log.count("DescribeTargetHealth")
    assert light == 1


def test_a_task_replaced_with_the_same_counts_is_found_by_the_re_check(env: Env) -> None:
    env.tick(DAY)
    # ECS replaced a task: the counts and the deployment are as before, one target is new.
    arns = env.tasks.ecs.list_tasks(cluster=env.tasks.cluster, desiredStatus="RUNNING")
    gone = arns["taskArns"][0]
    old_target = env.tasks.ecs_target(env.web, env.tasks.describe_task(gone))
    env.tasks.stop_task(gone)
    env.tasks.deregister(env.target_group, old_target)
    env.tasks.register_like_ecs(env.web, env.tasks.run_tasks(env.web, 1))
    first = env.record()
    for when in quarters(DAY, 4):
        log, _ = env.tick(when)
        if log.count("DescribeTargetHealth"):
            break
    record = env.record()
    assert first is not None and record is not None
    assert record["checked_at"] > first["checked_at"]
    now_registered = {f"{ip}:{port}" for ip, port in env.tasks.registered(env.target_group)}
    (remembered,) = record["targets"].values()
    assert set(remembered) == now_registered
    assert "{}:{}".format(*old_target) not in remembered
    assert record["full_at"] == record["checked_at"]  # the light check saw the difference


def test_a_new_task_changes_the_fingerprint_and_checks_again(env: Env) -> None:
    env.tick(DAY)
    env.tasks.register_like_ecs(env.web, env.tasks.run_tasks(env.web, 1))  # desiredCount 3
    log, _ = env.tick(DAY + timedelta(minutes=15))
    assert checked(log)
    log, _ = env.tick(DAY + timedelta(minutes=30))
    assert not checked(log)


def test_a_new_deployment_checks_again(env: Env) -> None:
    env.tick(DAY)
    env.tasks.ecs.update_service(
        cluster=env.tasks.cluster, service="web", taskDefinition="web", forceNewDeployment=True
    )
    log, _ = env.tick(DAY + timedelta(minutes=15))
    assert checked(log)


def test_no_two_checks_of_an_unchanged_service_are_more_than_an_interval_apart(env: Env) -> None:
    env.tick(DAY)
    checks = [DAY]
    for when in quarters(DAY, 12):  # three hours
        log, _ = env.tick(when)
        if checked(log):
            checks.append(when)
    gaps = [later - earlier for earlier, later in pairwise(checks)]
    assert len(checks) >= 4 and all(gap <= timedelta(hours=1) for gap in gaps), checks
    short = replace(env.tables.settings, target_check_interval=600)
    log, _ = env.tick(DAY + timedelta(hours=3, minutes=15), settings=short)
    assert checked(log)


def test_a_day_after_the_last_full_check_the_re_check_is_full_again(env: Env) -> None:
    env.tick(DAY)
    later = DAY + timedelta(seconds=FULL_CHECK_EVERY_S)
    log, _ = env.tick(later)
    assert fully_checked(log)
    record = env.record()
    assert record is not None and record["full_at"] == int(later.timestamp())


def test_a_target_a_person_deregisters_is_reported_within_one_interval(env: Env) -> None:
    env.tick(DAY)
    registered = sorted(env.tasks.registered(env.target_group))
    env.tasks.elbv2.deregister_targets(
        TargetGroupArn=env.target_group,
        Targets=[{"Id": registered[0][0], "Port": registered[0][1]}],
    )
    last = DAY
    for quarter in range(1, 5):  # one hour of ticks
        last = DAY + timedelta(minutes=15 * quarter)
        _, report = env.tick(last)
        if report.service(KEY).targets is not None:
            break
    targets = report.service(KEY).targets
    assert targets is not None and targets["ok"] is False
    assert [f["kind"] for f in targets["findings"]] == ["missing"]
    assert last - DAY <= timedelta(hours=1)
    # Not ok: every tick checks again until it is.
    log, report = env.tick(last + timedelta(minutes=15))
    assert checked(log)
    assert report.service(KEY).targets is not None


def test_a_target_that_fails_its_health_checks_is_reported_within_one_interval(env: Env) -> None:
    env.tick(DAY)
    sick = sorted(env.tasks.registered(env.target_group))[0]
    env.tasks.set_target_health(env.target_group, sick[0], "unhealthy")
    found = None
    for when in quarters(DAY, 4):
        _, report = env.tick(when)
        found = report.service(KEY).targets or found
    assert found is not None and found["ok"] is False
    assert [f["kind"] for f in found["findings"]] == ["unhealthy"]


@pytest.mark.parametrize(
    "targets",
    [
        {"L": [{"S": "x"}]},  # not a map of lists
        {"M": {"arn:other": {"L": [{"S": "10.0.0.9:80"}]}}},  # another group than the service's
        {"M": {}},  # nothing remembered
    ],
)
def test_remembered_targets_a_person_edited_mean_a_full_check(
    env: Env, targets: dict[str, Any]
) -> None:
    env.tick(DAY)
    env.tables.dynamodb.update_item(
        TableName=env.tables.settings.state_table,
        Key={"pk": {"S": "targets"}, "sk": {"S": KEY}},
        UpdateExpression="SET targets = :t",
        ExpressionAttributeValues={":t": targets},
    )
    log, report = env.tick(DAY + timedelta(hours=1))
    assert fully_checked(log)
    assert report.service(KEY).targets is not None and report.service(KEY).targets["ok"]


def test_a_remembered_target_that_is_not_a_target_means_a_full_check(env: Env) -> None:
    env.tick(DAY)
    env.tables.dynamodb.update_item(
        TableName=env.tables.settings.state_table,
        Key={"pk": {"S": "targets"}, "sk": {"S": KEY}},
        UpdateExpression="SET targets = :t",
        ExpressionAttributeValues={
            ":t": {"M": {env.target_group: {"L": [{"S": "<script>"}, {"S": "10.0.0.1:x"}]}}}
        },
    )
    log, report = env.tick(DAY + timedelta(hours=1))
    assert fully_checked(log)
    assert report.service(KEY).outcome == "converged"


def test_a_corrupt_record_means_check_now(env: Env) -> None:
    env.tick(DAY)
    record = env.record()
    assert record is not None
    # The same fingerprint and result, only the time unreadable: nothing else says "check".
    env.tables.put_item({**record, "checked_at": "soon"}, table=env.tables.settings.state_table)
    later = DAY + timedelta(minutes=15)
    log, _ = env.tick(later)
    assert checked(log)
    record = env.record()
    assert record is not None and record["checked_at"] == int(later.timestamp())


def test_records_that_cannot_be_read_act_on_nothing_then_check(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Target checks are read in the same BatchGetItem as the baselines: when it fails, the
    # tick knows no baseline either, so it acts on nothing; the next tick checks.
    env.tick(DAY)

    def refuse(self: StateStore, *keys: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "x"}}, "BatchGetItem"
        )

    monkeypatch.setattr(StateStore, "read_observed", refuse)
    log = CallLog()
    report = run_tick(
        log.attach(env.tables.clients()),
        env.tables.settings,
        at=DAY + timedelta(minutes=15),
        dry_run=False,
    )
    assert not checked(log)
    assert report.service(KEY).outcome == "failed"
    assert "cannot read baselines" in str(report.service(KEY).error)
    monkeypatch.undo()
    log, report = env.tick(DAY + timedelta(minutes=30))
    assert report.service(KEY).outcome in ("converged", "unchanged")


def test_a_record_that_cannot_be_written_fails_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: StateStore, checks: Sequence[TargetCheck]) -> None:
        error = {"Error": {"Code": "InternalServerError", "Message": "x"}}
        raise ClientError(error, "BatchWriteItem")

    monkeypatch.setattr(StateStore, "save_target_checks", refuse)
    log, report = env.tick(DAY)
    assert checked(log)
    assert report.service(KEY).outcome == "converged"
    monkeypatch.undo()
    log, _ = env.tick(DAY + timedelta(minutes=15))
    assert checked(log)  # nothing was remembered: checked again


def test_a_dry_run_checks_and_writes_no_record(env: Env) -> None:
    for quarter in range(2):
        log, _ = env.tick(DAY + timedelta(minutes=15 * quarter), dry_run=True)
        assert checked(log)
        assert env.record() is None
        assert log.named("PutItem") == []  # a dry run takes no lease and writes nothing
        assert log.named("BatchWriteItem") == []


def test_the_tick_that_starts_a_service_does_not_check(env: Env) -> None:
    env.tasks.ecs.update_service(cluster=env.tasks.cluster, service="web", desiredCount=0)
    log, report = env.tick(DAY)
    assert report.service(KEY).outcome == "changed"
    assert not checked(log)
    assert env.record() is None


# What a tick costs --------------------------------------------------------------------------
LOAD_BALANCED = 120
TARGET_CHECK_CALLS = ("ListTasks", "DescribeTasks", "DescribeTargetHealth")
FULL_CHECK_CALLS = ("ListTasks", "DescribeTasks")
HOUR = 3600


def test_cost_no_op_ticks_check_targets_once_then_only_read_their_records() -> None:
    with moto_tables() as w:
        for i in range(LOAD_BALANCED):
            w.create_service("lb", f"svc-{i:03d}", desired=2, load_balancer=True)
        w.put(*(schedule(f"lb/svc-{i:03d}") for i in range(LOAD_BALANCED)))
        first, report = logged_tick(w, DAY)
        print(f"first tick: {first.counts().total()} calls {dict(sorted(first.counts().items()))}")
        assert report.counts["converged"] == LOAD_BALANCED
        assert first.count("DescribeTargetHealth") >= LOAD_BALANCED
        # Each check is remembered, 25 records a call.
        assert _record_writes(first) == LOAD_BALANCED
        assert first.count("BatchWriteItem") == math.ceil(LOAD_BALANCED / 25)
        later, report = logged_tick(w, DAY + timedelta(minutes=15))
        print(f"no-op tick: {later.counts().total()} calls {dict(sorted(later.counts().items()))}")
        assert report.counts["converged"] == LOAD_BALANCED
        # Only the services whose own interval turned over re-check, each its target group
        # alone: the services are spread evenly, a quarter of them in a quarter hour.
        due = LOAD_BALANCED // 4
        assert [later.count(name) for name in TARGET_CHECK_CALLS] == [0, 0, due]
        # The baselines and the records of the last checks, read together: 100 keys a call.
        assert later.count("BatchGetItem") == math.ceil(2 * LOAD_BALANCED / 100)
        assert _record_writes(later) == due
        for call in later.named("BatchGetItem"):
            (keys,) = [request["Keys"] for request in call.params["RequestItems"].values()]
            assert len(keys) <= 100


def _record_writes(log: CallLog) -> int:
    """Target-check records written: every put of an item under pk=targets."""
    puts = [c.params["Item"] for c in log.named("PutItem")]
    for call in log.named("BatchWriteItem"):
        for requests in call.params["RequestItems"].values():
            puts.extend(r["PutRequest"]["Item"] for r in requests if "PutRequest" in r)
    return sum(1 for item in puts if item["pk"] == {"S": "targets"})


# The rule itself, for all inputs -------------------------------------------------------------
RAW: dict[str, Any] = {
    "deployments": [
        {"id": "ecs-svc/1", "status": "PRIMARY", "updatedAt": DAY, "taskDefinition": "td:2"},
        {"id": "ecs-svc/0", "status": "ACTIVE", "updatedAt": DAY, "taskDefinition": "td:1"},
    ],
    "runningCount": 2,
    "desiredCount": 2,
    "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 80}],
}


@pytest.mark.parametrize(
    "change",
    [
        {"runningCount": 1},
        {"desiredCount": 3},
        {"loadBalancers": []},
        {"taskSets": [{"id": "ecs-svc/ts"}]},
        {"deployments": [{**RAW["deployments"][0], "id": "ecs-svc/2"}]},
        {"deployments": [{**RAW["deployments"][0], "taskDefinition": "td:3"}]},
        {"deployments": [{**RAW["deployments"][0], "updatedAt": DAY + timedelta(seconds=1)}]},
    ],
)
def test_the_fingerprint_changes_with_what_the_check_depends_on(change: dict[str, Any]) -> None:
    assert target_fingerprint({**RAW, **change}) != target_fingerprint(RAW)


def test_the_fingerprint_ignores_what_the_check_does_not_depend_on() -> None:
    other = {**RAW, "events": [{"message": "steady"}], "pendingCount": 0}
    other["deployments"] = [RAW["deployments"][0], {**RAW["deployments"][1], "id": "old"}]
    assert target_fingerprint(other) == target_fingerprint(RAW)


@given(
    ok=st.booleans(),
    same=st.booleans(),
    age=st.integers(min_value=-(10**6), max_value=10**6),
    interval=st.integers(min_value=60, max_value=7 * 24 * 3600),
    key=st.text(min_size=1, max_size=40),
    remembered=st.booleans(),
    offset=st.none() | st.integers(min_value=0, max_value=10**7),
)
def test_a_check_is_skipped_only_when_same_ok_and_within_the_services_interval(
    ok: bool, same: bool, age: int, interval: int, key: str, remembered: bool, offset: int | None
) -> None:
    now = 2_000_000_000
    targets = {"arn:tg": ["10.0.0.1:80"]} if remembered else {}
    last = TargetCheck(key=key, fingerprint="a", checked_at=now - age, ok=ok, targets=targets)
    due = target_check_due(last, "a" if same else "b", now, interval, offset)
    same_slot = check_slot(key, now, interval, offset) == check_slot(
        key, now - age, interval, offset
    )
    if not (ok and same) or age < 0:
        assert due == "full"
    elif same_slot:
        assert due is None
        assert age < interval  # never more than one interval without a check
    else:
        light = remembered and age < FULL_CHECK_EVERY_S
        assert due == ("light" if light else "full")
    assert target_check_due(None, "a", now, interval) == "full"


@given(
    key=st.text(min_size=1, max_size=40),
    start=st.integers(min_value=0, max_value=2_000_000_000),
    interval=st.integers(min_value=60, max_value=7 * 24 * 3600),
)
def test_each_interval_of_a_service_holds_exactly_one_turn_of_its_slot(
    key: str, start: int, interval: int
) -> None:
    slots = [check_slot(key, start + step, interval) for step in (0, interval - 1, interval)]
    assert slots[1] - slots[0] in (0, 1)
    assert slots[2] - slots[0] == 1


@given(
    count=st.integers(min_value=1, max_value=400),
    start=st.integers(min_value=0, max_value=2_000_000_000),
    interval=st.sampled_from([900, 1800, 3600, 7200, 86_400]),
)
def test_a_fleet_of_any_size_comes_due_again_in_equal_shares_each_quarter_hour(
    count: int, start: int, interval: int
) -> None:
    keys = [f"cluster-{i % 3}/service-{i:04d}" for i in range(count)]
    offsets = check_offsets(keys, interval, tick=900)
    per_quarter = [
        sum(
            check_slot(k, start + 900 * q, interval, offsets[k])
            != check_slot(k, start + 900 * (q - 1), interval, offsets[k])
            for k in keys
        )
        for q in range(1, interval // 900 + 1)
    ]
    assert sum(per_quarter) == count  # each exactly once in one interval
    share = count * 900 / interval
    assert all(math.floor(share) <= n <= math.ceil(share) for n in per_quarter), per_quarter


def test_offsets_do_not_depend_on_the_order_services_are_listed_in() -> None:
    keys = [f"c/s-{i}" for i in range(50)]
    assert check_offsets(keys, HOUR, tick=900) == check_offsets(reversed(keys), HOUR, tick=900)
    offsets = sorted(check_offsets(keys, HOUR, tick=900).values())
    assert offsets == [i * HOUR // 50 // 900 * 900 for i in range(50)]


@given(
    count=st.integers(min_value=1, max_value=300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    interval=st.sampled_from([900, 1800, 3600, 7200]),
)
def test_ticks_that_start_seconds_late_still_check_each_service_within_its_interval(
    count: int, seed: int, interval: int
) -> None:
    """EventBridge starts a tick a few seconds after its quarter hour, by a different amount
    each time; the tick's instant is when it started. No check may wait one more tick."""
    jitter = random.Random(seed)
    keys = [f"cluster/service-{i:04d}" for i in range(count)]
    offsets = check_offsets(keys, interval, tick=900)
    first = 1_800_000_000 // 900 * 900
    ticks = [first + 900 * q + jitter.randint(0, 20) for q in range(2 * interval // 900 + 8)]
    for key in keys:
        checked = ticks[0]
        for instant in ticks[1:]:
            if check_slot(key, instant, interval, offsets[key]) != check_slot(
                key, checked, interval, offsets[key]
            ):
                assert instant - checked <= interval + 20, (key, instant - checked)
                checked = instant
        assert ticks[-1] - checked < interval + 20


def test_a_fleet_checked_at_once_comes_due_again_spread_over_the_interval() -> None:
    start = int(DAY.timestamp())
    keys = [f"cluster-{i % 7}/service-{i:04d}" for i in range(2000)]
    per_quarter = [
        sum(
            check_slot(k, start + 900 * q, HOUR) != check_slot(k, start + 900 * (q - 1), HOUR)
            for k in keys
        )
        for q in range(1, 5)
    ]
    assert sum(per_quarter) == len(keys)
    assert all(400 < n < 600 for n in per_quarter), per_quarter


@pytest.mark.parametrize("text", ["soon", "59", "-1", "3600.5", "604801"])
def test_a_bad_interval_stops_the_run_with_a_readable_message(text: str) -> None:
    with pytest.raises(SettingsError, match=r"TEIJI_TARGET_CHECK_INTERVAL: .*whole seconds"):
        Settings.from_env({"TEIJI_TARGET_CHECK_INTERVAL": text})


def test_the_interval_is_read_and_defaults_to_an_hour() -> None:
    assert Settings.from_env({}).target_check_interval == 3600
    assert Settings.from_env({"TEIJI_TARGET_CHECK_INTERVAL": " 900 "}).target_check_interval == 900
