"""The tick at scale: paced requests, bounded concurrency per (account, region), groups in
parallel, the lease checked before each service, sharding, and the settings that steer it.

Worlds are built with the benchmark's builder (``bench.world``) in moto, and the emulated AWS
(``bench.emulator``) adds a network latency and ECS's token buckets on a ``VirtualClock``, so
durations below are emulated seconds: exact, and the same on any machine.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from bench.emulator import AwsEmulator
from bench.floor import drain_seconds
from bench.world import (
    HOME_REGION,
    OWN_ACCOUNT,
    ROLE_NAME,
    RUNNING_AT,
    STOPPED_AT,
    World,
    WorldSpec,
    build_world,
    deployment_access,
    desired_counts,
)
from engine.aws.bucket import Rate
from engine.aws.clients import Clients
from engine.aws.clock import VirtualClock
from engine.aws.operations import Operation
from engine.aws.pacing import Pacer
from engine.config import DEFAULT_CONCURRENCY, ENV_VARS, Settings
from engine.lease import lease_name, record_from_item, shard_of
from engine.report import TickReport
from engine.tick import run_tick
from tests.world import CallLog, Faults, store_schedules

OTHER = "210987654321"
MODIFY = Rate(5, 10)  # a small ECS "service modify" bucket, so pacing shows with few services
LATENCY = 0.020
# Time only moves when every worker waits. A worker that seems stuck elsewhere this long (real
# seconds) lets time move anyway; generous, so a busy machine never cuts a request short.
STALL_TIMEOUT = 10.0


def _world(services: int, accounts: tuple[str, ...] = (OWN_ACCOUNT,), **spec: Any) -> World:
    spec.setdefault("load_balanced_every", 10**6)  # no target groups: the tick ignores them here
    world = build_world(WorldSpec(services, accounts=accounts, regions=(HOME_REGION,), **spec))
    clients = Clients(region=HOME_REGION, role_name=ROLE_NAME)
    store_schedules(clients, world.schedules(targets="ignore"))
    return world


@dataclass
class Run:
    report: TickReport
    emulator: AwsEmulator
    log: CallLog
    seconds: float  # emulated


def _tick(
    world: World,
    *,
    at: Any = STOPPED_AT,
    concurrency: int = DEFAULT_CONCURRENCY,
    pacer_rates: dict[str, Rate | str] | None = None,
    emulated: dict[str, Rate] | None = None,
    hooks: tuple[Any, ...] = (),
    faults: Faults | None = None,
    **kwargs: Any,
) -> Run:
    """One tick inside the emulated AWS: ECS buckets ``emulated``, the pacer at ``pacer_rates``."""
    clock = VirtualClock(stall_timeout=STALL_TIMEOUT)
    limits = emulated or {"ecs_service_modify": MODIFY}
    emulator = AwsEmulator(clock, latency=LATENCY, limits=limits)
    log = CallLog()
    with emulator.installed():
        clients = log.attach(Clients(region=HOME_REGION, role_name=ROLE_NAME))
        if faults is not None:
            faults.attach(clients)
        for hook in hooks:
            clients.before_call.append(hook)
        rates = pacer_rates if pacer_rates is not None else {"ecs_service_modify": MODIFY}
        pacer = Pacer(rates, clock=clock, environ={})
        settings = Settings(concurrency=concurrency, access=deployment_access())
        started = clock.monotonic()
        report = run_tick(clients, settings, at=at, dry_run=False, pacer=pacer, **kwargs)
        seconds = clock.monotonic() - started
    assert clock.stalls == 0, "a worker blocked outside the clock"
    return Run(report, emulator, log, seconds)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


# Pacing ------------------------------------------------------------------------------------


def test_a_transition_is_paced_to_the_bucket_floor_without_a_single_throttle(aws: None) -> None:
    world = _world(40, services_per_cluster=25)
    run = _tick(world)
    assert run.report.counts["changed"] == 40
    assert set(desired_counts(world).values()) == {0}
    traffic = run.emulator.traffic
    assert traffic.total_throttled == 0
    assert run.report.throttle_errors == 0
    assert run.report.api_calls == traffic.total == len(run.log.calls)
    # 40 UpdateService through a 5/s bucket of 10: (40 - 10) / 5 = 6 s, and hardly more.
    floor = 3 * LATENCY + drain_seconds(40, MODIFY)
    assert floor == pytest.approx(6.06)
    assert floor <= run.seconds <= 1.15 * floor


def test_without_pacing_the_same_transition_is_throttled_and_the_report_counts_it(
    aws: None,
) -> None:
    world = _world(30, services_per_cluster=30)
    # The pacer believes in a much larger bucket than AWS has: requests are refused, retried
    # by botocore, and every refusal is counted.
    run = _tick(world, pacer_rates={"ecs_service_modify": "1000/1000"})
    throttled = run.emulator.traffic.total_throttled
    assert throttled > 0
    assert run.report.throttle_errors == throttled
    assert run.report.api_calls == run.emulator.traffic.total
    assert not run.report.failed  # standard retries got every service through


def test_groups_run_in_parallel_and_each_group_is_paced_by_its_own_bucket(aws: None) -> None:
    world = _world(40, accounts=(OWN_ACCOUNT, OTHER), services_per_cluster=20)
    run = _tick(world)
    assert run.report.counts["changed"] == 40
    assert run.emulator.traffic.total_throttled == 0
    # Two accounts, 20 updates each: (20 - 10) / 5 = 2 s if the accounts proceed side by
    # side; one after the other would take 4 s.
    assert 2.0 <= run.seconds <= 1.15 * 2.0 + 0.2


class InFlight:
    """Counts ECS and Application Auto Scaling requests in flight per (account, region)."""

    def __init__(self) -> None:
        self.now: Counter[tuple[str | None, str]] = Counter()
        self.peak: Counter[tuple[str | None, str]] = Counter()
        self.lock = threading.Lock()

    def before(self, operation: Operation, account: str | None, region: str) -> None:
        if operation.service in ("ecs", "application-autoscaling"):
            with self.lock:
                self.now[(account, region)] += 1
                self.peak[(account, region)] = max(
                    self.peak[(account, region)], self.now[(account, region)]
                )

    def after(self, operation: Operation, account: str | None, region: str, _: object) -> None:
        if operation.service in ("ecs", "application-autoscaling"):
            with self.lock:
                self.now[(account, region)] -= 1


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_bounds_the_requests_in_flight_per_account_and_region(
    aws: None, concurrency: int
) -> None:
    _world(24, accounts=(OWN_ACCOUNT, OTHER), services_per_cluster=6)
    flight = InFlight()
    clock_free = {"ecs_service_modify": "1000/1000"}
    clock = VirtualClock(stall_timeout=STALL_TIMEOUT)
    emulator = AwsEmulator(clock, latency=LATENCY, limits={})
    with emulator.installed():
        clients = Clients(region=HOME_REGION, role_name=ROLE_NAME)
        clients.before_call.append(flight.before)
        clients.after_attempt.append(flight.after)
        report = run_tick(
            clients,
            Settings(concurrency=concurrency, access=deployment_access()),
            at=STOPPED_AT,
            dry_run=False,
            pacer=Pacer(clock_free, clock=clock, environ={}),
        )
    assert report.counts["changed"] == 24
    assert set(flight.peak) == {(None, HOME_REGION), (OTHER, HOME_REGION)}
    assert max(flight.peak.values()) == concurrency  # reached, never exceeded
    # 12 services a group, two writes each (the baselines go in one batch), ``concurrency``
    # at a time.
    assert clock.monotonic() >= 2 * LATENCY * math.ceil(12 / concurrency)


def test_the_report_does_not_depend_on_the_concurrency(aws: None) -> None:
    world = _world(20, accounts=(OWN_ACCOUNT, OTHER), services_per_cluster=5)
    one = _tick(world, concurrency=1, at=RUNNING_AT).report
    many = _tick(world, concurrency=8, at=RUNNING_AT).report
    assert [s.as_json() for s in one.services] == [s.as_json() for s in many.services]
    keys = [s.key for s in many.services]
    assert keys == sorted(keys) and len(keys) == 20


# Failures, the lease -----------------------------------------------------------------------


def test_a_failing_service_fails_alone_while_the_others_run_concurrently(aws: None) -> None:
    world = _world(16, services_per_cluster=8)
    victim = world.services[5]
    faults = Faults().fail(
        "UpdateService", code="AccessDeniedException", when=lambda p: p["service"] == victim.name
    )
    run = _tick(world, faults=faults)
    failed = [s.key for s in run.report.services if s.failed]
    assert failed == [world.key(victim)]
    assert run.report.counts["changed"] == 15
    assert desired_counts(world)[victim.ident] == victim.desired


def test_the_lease_is_checked_before_each_service_even_with_many_workers(aws: None) -> None:
    world = _world(20, services_per_cluster=20)
    now = [1_000_000.0]
    acting = threading.Event()
    lock = threading.Lock()

    def wall() -> float:
        with lock:
            if acting.is_set():
                now[0] += 2000  # once acting, every reading is 2,000 s later: the lease
            return now[0]  # runs out before the next renewal can keep it

    def first_change(operation: Any, account: str | None, region: str) -> None:
        if operation.name == "UpdateService":
            acting.set()

    run = _tick(world, concurrency=4, clock=wall, hooks=(first_change,))
    report = run.report
    assert report.lease == "lost"
    assert report.failed
    outcomes = [s.outcome for s in report.services]
    assert outcomes.count("changed") >= 1 and outcomes.count("skipped") >= 1
    assert set(outcomes) <= {"changed", "failed", "skipped"}  # failed: refused at its write
    # Services are handed out in key order, and none is handed out once the lease is lost
    # (those in flight then are refused at their next write: failed, not half-done).
    assert outcomes == sorted(outcomes, key=lambda o: o == "skipped")
    assert outcomes.count("changed") + outcomes.count("failed") <= 4
    updated = {c.params["service"] for c in run.log.named("UpdateService")}
    for service in report.services:
        name = service.key.split("/", 1)[1]
        assert (name in updated) == (service.outcome == "changed")


def test_a_misspelled_rate_setting_is_a_reported_problem_and_nothing_is_done(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = _world(3)
    monkeypatch.setenv("TEIJI_RATE_ECS_MODIFY", "5/50")
    log = CallLog()
    clients = log.attach(Clients(region=HOME_REGION, role_name=ROLE_NAME))
    report = run_tick(clients, Settings(access=deployment_access()), at=STOPPED_AT, dry_run=False)
    assert report.failed
    assert report.lease == "not taken"
    assert report.services == []
    [problem] = report.problems
    assert "TEIJI_RATE_ECS_MODIFY" in problem
    assert "unknown category 'ecs_modify'" in problem
    assert "ecs_service_modify" in problem  # the allowed names are listed
    assert log.calls == []
    assert set(desired_counts(world).values()) != {0}


def test_the_pacer_is_removed_from_long_lived_clients_after_the_tick(aws: None) -> None:
    _world(2)
    clients = Clients(region=HOME_REGION, role_name=ROLE_NAME)
    for _ in range(3):  # a warm Lambda container runs many ticks on the same clients
        run_tick(clients, Settings(access=deployment_access()), at=RUNNING_AT, dry_run=False)
    assert clients.before_call == [] and clients.after_attempt == []


# Settings ----------------------------------------------------------------------------------


def test_concurrency_setting() -> None:
    assert "TEIJI_CONCURRENCY" in ENV_VARS
    assert Settings.from_env({}).concurrency == DEFAULT_CONCURRENCY
    assert Settings.from_env({"TEIJI_CONCURRENCY": " 4 "}).concurrency == 4
    for bad, message in (("four", "is not a whole number"), ("0", "out of range"), ("65", "out")):
        with pytest.raises(ValueError, match="TEIJI_CONCURRENCY") as info:
            Settings.from_env({"TEIJI_CONCURRENCY": bad})
        assert message in str(info.value)
        assert "from 1 to 64" in str(info.value)


# Shards ------------------------------------------------------------------------------------

keys = st.builds(
    lambda cluster, service, account: f"c{cluster}/s{service}" + (f"@{account}" if account else ""),
    st.integers(0, 20),
    st.integers(0, 500),
    st.sampled_from([None, "111111111111", "222222222222"]),
)


@settings(max_examples=200, deadline=None)
@given(services=st.sets(keys, max_size=120), count=st.integers(1, 12))
def test_every_service_is_in_exactly_one_shard(services: set[str], count: int) -> None:
    shards = [{k for k in services if shard_of(k, count) == index} for index in range(count)]
    assert set().union(*shards) == services
    assert sum(len(shard) for shard in shards) == len(services)
    assert all(shard_of(k, count) == shard_of(k, count) for k in services)  # stable


def test_the_shards_of_a_tick_stop_every_service_exactly_once(aws: None) -> None:
    world = _world(24, accounts=(OWN_ACCOUNT, OTHER), services_per_cluster=6)
    changed: Counter[str] = Counter()
    leases = set()
    for index in range(4):
        run = _tick(world, shard=(index, 4))
        assert run.report.lease == "acquired" and not run.report.failed
        changed.update(s.key for s in run.report.services if s.outcome == "changed")
        assert all(shard_of(s.key, 4) == index for s in run.report.services)
        leases |= {
            lease_name((i, 4))
            for c in run.log.named("PutItem")
            if _lease(c)
            for i in record_from_item(c.params["Item"], "state").slots
        }
    assert set(changed) == {world.key(s) for s in world.services}
    assert set(changed.values()) == {1}
    assert leases == {lease_name((i, 4)) for i in range(4)}
    assert set(desired_counts(world).values()) == {0}


def _lease(call: Any) -> bool:
    return bool(call.params["Item"]["pk"]["S"] == "lease")


def test_shards_ticking_at_once_share_the_accounts_buckets(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = _world(30, services_per_cluster=30)
    monkeypatch.setenv("TEIJI_RATE_ECS_SERVICE_MODIFY", f"{MODIFY.rate:g}/{MODIFY.burst:g}")
    clock = VirtualClock(stall_timeout=STALL_TIMEOUT)
    emulator = AwsEmulator(clock, latency=LATENCY, limits={"ecs_service_modify": MODIFY})
    reports: dict[int, TickReport] = {}

    def shard(index: int) -> None:
        clients = Clients(region=HOME_REGION, role_name=ROLE_NAME)
        reports[index] = run_tick(
            clients,
            Settings(access=deployment_access()),
            at=STOPPED_AT,
            dry_run=False,
            shard=(index, 2),
            pacing_clock=clock,
        )

    with emulator.installed():
        threads = [threading.Thread(target=shard, args=(index,)) for index in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    # Each shard paces itself to half of the account's bucket: together they stay inside it.
    assert emulator.traffic.total_throttled == 0
    assert sum(r.counts["changed"] for r in reports.values()) == 30
    assert set(desired_counts(world).values()) == {0}


def test_a_shards_pacer_gets_its_share_of_every_bucket() -> None:
    pacer = Pacer(clock=VirtualClock(), environ={}, share=1 / 4)
    assert pacer.rates["ecs_service_modify"] == Rate(1.25, 12.5)
    assert pacer.rates["sts"].burst >= 1
    with pytest.raises(ValueError, match="share"):
        Pacer(environ={}, share=0)
