"""Client-side pacing: token bucket arithmetic, clocks, rate settings, hooks on Clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.credentials import RefreshableCredentials
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from engine.aws.bucket import (
    CATEGORIES,
    DEFAULT_RATES,
    RATE_FLOOR_SHARE,
    THROTTLE_CUT,
    PacingConfigError,
    Rate,
    TokenBucket,
    env_var,
    parse_rate,
    resolve_rates,
)
from engine.aws.clients import AfterAttempt, Clients
from engine.aws.clock import RealClock, VirtualClock, participating
from engine.aws.lanes import Lane, Unit, run_lanes
from engine.aws.operations import BY_NAME, Operation
from engine.aws.pacing import BACKOFF_BASE_S, BACKOFF_CAP_S, THROTTLE_ATTEMPTS, Pacer

UPDATE_SERVICE = BY_NAME[("ecs", "UpdateService")]
DESCRIBE_SERVICES = BY_NAME[("ecs", "DescribeServices")]
LIST_TASKS = BY_NAME[("ecs", "ListTasks")]
ASSUME_ROLE = BY_NAME[("sts", "AssumeRole")]


class ManualClock:
    """Time moves only when someone sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# Token bucket ------------------------------------------------------------------------------


def test_bucket_serves_the_burst_at_once_then_the_sustained_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=5, burst=50, clock=clock)
    admitted = []
    for _ in range(60):
        bucket.acquire()
        admitted.append(clock.now)
    assert admitted[:50] == [0.0] * 50
    assert admitted[50:] == pytest.approx([0.2 * k for k in range(1, 11)])


def test_thousand_updates_take_what_the_ecs_bucket_allows() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=5, burst=50, clock=clock)
    for _ in range(1000):
        bucket.acquire()
    assert clock.now == pytest.approx((1000 - 50) / 5)  # 190 s


def test_bucket_refills_while_idle_but_never_above_burst() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=2, burst=4, clock=clock)
    for _ in range(4):
        assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.now += 1.0
    assert bucket.tokens == pytest.approx(2.0)
    clock.now += 100.0
    assert bucket.tokens == pytest.approx(4.0)


def test_try_acquire_never_waits_and_drain_empties() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1, burst=3, clock=clock)
    bucket.drain()
    assert not bucket.try_acquire()
    assert clock.sleeps == []
    waited = bucket.acquire()
    assert waited == pytest.approx(1.0)


def test_bucket_refuses_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, burst=5)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate=1, burst=0.5)
    with pytest.raises(ValueError, match="cannot take 6"):
        TokenBucket(rate=1, burst=5).acquire(6)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=50),
    burst=st.integers(min_value=1, max_value=60),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=120),
)
def test_admissions_never_exceed_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.now += gap
        bucket.acquire()
        admitted.append(clock.now)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= burst + rate * (admitted[j] - start) + 1e-6


def test_threads_sharing_a_bucket_never_exceed_it() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(rate=5, burst=10, clock=clock)
    admitted: list[float] = []
    lock = threading.Lock()
    everyone_joined = threading.Barrier(4)

    def worker() -> None:
        with participating(clock):
            everyone_joined.wait()
            for _ in range(25):
                bucket.acquire()
                with lock:
                    admitted.append(clock.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(admitted) == 100
    admitted.sort()
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= 10 + 5 * (admitted[j] - start) + 1e-6
    # The bucket is the only limit: 100 requests at burst 10 then 5/s end at 18 s exactly.
    assert admitted[-1] == pytest.approx(18.0)
    assert clock.stalls == 0


# Virtual clock -----------------------------------------------------------------------------


def test_virtual_clock_sleeps_cost_no_real_time() -> None:
    clock = VirtualClock()
    for _ in range(1000):
        clock.sleep(60)
    assert clock.monotonic() == pytest.approx(60_000)


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), float("-inf")])
def test_virtual_clock_refuses_a_sleep_that_has_no_end_as_time_sleep_does(seconds: float) -> None:
    clock = VirtualClock()
    with pytest.raises(ValueError, match="cannot sleep"):
        clock.sleep(seconds)
    clock.sleep(1)
    assert clock.monotonic() == 1  # time is still whole


def test_virtual_clock_wakes_concurrent_sleepers_in_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []
    lock = threading.Lock()
    ready = threading.Barrier(3)

    def sleeper(name: str, seconds: float) -> None:
        with clock.participant():
            ready.wait()
            clock.sleep(seconds)
            with lock:
                woke.append((name, clock.monotonic()))

    threads = [
        threading.Thread(target=sleeper, args=(name, s))
        for name, s in (("a", 3.0), ("b", 1.0), ("c", 2.0))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert woke == [("b", 1.0), ("c", 2.0), ("a", 3.0)]


def test_virtual_clock_moves_on_when_a_participant_blocks_elsewhere() -> None:
    clock = VirtualClock(stall_timeout=0.01)
    joined, release = threading.Event(), threading.Event()

    def blocked() -> None:
        with clock.participant():
            joined.set()
            release.wait(timeout=5)

    thread = threading.Thread(target=blocked)
    thread.start()
    joined.wait(timeout=5)
    try:
        clock.sleep(5)  # the other participant never sleeps: time moves on after the timeout
    finally:
        release.set()
        thread.join()
    assert clock.monotonic() == 5
    assert clock.stalls >= 1


# Rates and settings ------------------------------------------------------------------------


def test_documented_ecs_defaults() -> None:
    assert DEFAULT_RATES["ecs_service_modify"] == Rate(5, 50)
    assert DEFAULT_RATES["ecs_service_read"] == Rate(20, 100)
    assert DEFAULT_RATES["ecs_cluster_read"] == Rate(20, 100)
    assert set(DEFAULT_RATES) == set(CATEGORIES)


def test_elb_reads_and_registrations_are_paced_apart_at_elbs_buckets() -> None:
    # Describe*: 40 tokens refilled at 10 a second (ELB's throttling page); registrations
    # have their own, smaller bucket.
    assert DEFAULT_RATES["elbv2_read"] == Rate(10, 40)
    assert DEFAULT_RATES["elbv2_register"] == Rate(4, 20)
    assert BY_NAME[("elbv2", "DescribeTargetHealth")].category == "elbv2_read"
    assert BY_NAME[("elbv2", "RegisterTargets")].category == "elbv2_register"
    assert BY_NAME[("elbv2", "DeregisterTargets")].category == "elbv2_register"


def test_the_name_elbv2_still_sets_both_elb_buckets_and_a_category_of_its_own_wins() -> None:
    both = resolve_rates(environ={"TEIJI_RATE_ELBV2": "2/8"})
    assert both["elbv2_read"] == both["elbv2_register"] == Rate(2, 8)
    mixed = resolve_rates(environ={"TEIJI_RATE_ELBV2_READ": "6/30", "TEIJI_RATE_ELBV2": "2/8"})
    assert mixed["elbv2_read"] == Rate(6, 30)
    assert mixed["elbv2_register"] == Rate(2, 8)
    assert resolve_rates({"elbv2": "1/4"}, environ={})["elbv2_register"] == Rate(1, 4)


def test_env_overrides_one_category() -> None:
    rates = resolve_rates(environ={"TEIJI_RATE_ECS_SERVICE_MODIFY": "2.5/20", "HOME": "/x"})
    assert rates["ecs_service_modify"] == Rate(2.5, 20)
    assert rates["ecs_service_read"] == DEFAULT_RATES["ecs_service_read"]
    assert env_var("ecs_service_modify") == "TEIJI_RATE_ECS_SERVICE_MODIFY"


def test_explicit_overrides_win_over_env() -> None:
    rates = resolve_rates(
        {"ecs_service_modify": "1/5", "sts": Rate(3, 3)},
        environ={"TEIJI_RATE_ECS_SERVICE_MODIFY": "2/20"},
    )
    assert rates["ecs_service_modify"] == Rate(1, 5)
    assert rates["sts"] == Rate(3, 3)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TEIJI_RATE_ECS_SERVICE_MODIFY", "5", "TEIJI_RATE_ECS_SERVICE_MODIFY: '5' has no '/'"),
        ("TEIJI_RATE_ECS_SERVICE_MODIFY", "five/50", "is not two numbers"),
        ("TEIJI_RATE_ECS_SERVICE_MODIFY", "0/50", "rate '0' must be above 0"),
        ("TEIJI_RATE_ECS_SERVICE_MODIFY", "5/0.5", "burst '0.5' must be 1 or more"),
        ("TEIJI_RATE_ECS_SERVICE_MODIFY", "nan/50", "must be above 0"),
        ("TEIJI_RATE_ECS_MODIFY", "5/50", "unknown category 'ecs_modify'; the categories are"),
    ],
)
def test_env_errors_name_the_variable_and_the_fix(name: str, value: str, message: str) -> None:
    with pytest.raises(PacingConfigError, match=r"write rate/burst|the categories are") as info:
        resolve_rates(environ={name: value})
    assert message in str(info.value)
    assert name in str(info.value)


def test_parse_rate_accepts_spaces_and_decimals() -> None:
    assert parse_rate(" 0.5/ 10 ", where="x") == Rate(0.5, 10)


def test_unknown_override_key_is_an_error() -> None:
    with pytest.raises(PacingConfigError, match="unknown category 'ecs'"):
        resolve_rates({"ecs": "1/1"}, environ={})


# Pacer -------------------------------------------------------------------------------------


def test_pacer_keeps_one_bucket_per_account_region_and_category() -> None:
    clock = ManualClock()
    pacer = Pacer({"ecs_service_modify": "1/2", "ecs_service_read": "1/3"}, clock=clock, environ={})
    for _ in range(2):
        pacer.before_call(UPDATE_SERVICE, None, "ap-northeast-1")
        pacer.before_call(UPDATE_SERVICE, "111111111111", "ap-northeast-1")
        pacer.before_call(UPDATE_SERVICE, None, "us-east-1")
    for _ in range(3):
        pacer.before_call(DESCRIBE_SERVICES, None, "ap-northeast-1")
    assert clock.now == 0  # each bucket only spent its own burst
    pacer.before_call(UPDATE_SERVICE, None, "ap-northeast-1")
    assert clock.now == pytest.approx(1.0)
    assert pacer.stats.paced_calls == 1


def test_pacer_routes_by_the_operations_category() -> None:
    pacer = Pacer(clock=ManualClock(), environ={})
    pacer.before_call(LIST_TASKS, None, "ap-northeast-1")
    bucket = pacer.bucket(None, "ap-northeast-1", "ecs_cluster_read")
    assert bucket.tokens == pytest.approx(99)
    assert pacer.bucket(None, "ap-northeast-1", "ecs_service_read").tokens == pytest.approx(100)


def test_pacer_counts_attempts_and_throttles_and_backs_off() -> None:
    clock = ManualClock()
    pacer = Pacer(clock=clock, environ={})
    region = "ap-northeast-1"
    pacer.after_attempt(UPDATE_SERVICE, None, region, None)
    pacer.after_attempt(UPDATE_SERVICE, None, region, "ThrottlingException")
    pacer.after_attempt(DESCRIBE_SERVICES, None, region, "ClusterNotFoundException")
    snapshot = pacer.stats.snapshot()
    assert snapshot["api_calls"] == 3
    assert snapshot["throttle_errors"] == 1
    assert snapshot["throttles_by_category"] == {"ecs_service_modify": 1}
    # The throttle drained the modify bucket and cut its rate: the retry waited one refill at
    # the lower rate (no back-off: jitter 0 would be drawn below), and the next one another.
    assert clock.now == pytest.approx(0.0, abs=1.0)
    bucket = pacer.bucket(None, region, "ecs_service_modify")
    assert bucket.rate == pytest.approx(5 * THROTTLE_CUT)
    before = clock.now
    pacer.before_call(UPDATE_SERVICE, None, region)
    assert clock.now - before == pytest.approx(1 / bucket.rate, rel=0.01)


# Learning from throttling (a virtual clock: no real time passes) ---------------------------------


class SharedAwsBucket:
    """AWS's side for these tests: a bucket of ``rate``/``burst`` another caller in the account
    also draws ``other`` requests a second from; AWS never waits, it refuses."""

    def __init__(self, clock: ManualClock, rate: float, burst: float, other: float) -> None:
        self.clock, self.rate, self.burst, self.other = clock, rate, burst, other
        self.tokens, self.stamp, self.owed = burst, 0.0, 0.0

    def admit(self) -> bool:
        elapsed, self.stamp = self.clock.now - self.stamp, self.clock.now
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.owed += elapsed * self.other  # the other caller takes its share first
        taken = min(self.owed, self.tokens)
        self.tokens -= taken
        self.owed -= taken
        if self.tokens >= 1 - 1e-9:
            self.tokens -= 1
            return True
        return False


def _send(pacer: Pacer, aws: SharedAwsBucket, region: str) -> int:
    """One UpdateService through the pacer as botocore would send it; attempts made."""
    pacer.before_call(UPDATE_SERVICE, None, region)
    attempts = 0
    while True:
        attempts += 1
        code = None if aws.admit() else "ThrottlingException"
        if pacer.after_attempt(UPDATE_SERVICE, None, region, code) is None:
            assert code is None, f"gave up after {attempts} attempts"
            return attempts


@pytest.mark.parametrize("other_share", [0.1, 0.3])
def test_the_pacer_learns_the_bucket_another_caller_leaves_and_every_request_gets_through(
    other_share: float,
) -> None:
    clock = ManualClock()
    pacer = Pacer(clock=clock, environ={}, jitter=lambda: 0.5)
    aws = SharedAwsBucket(clock, 5, 50, other=5 * other_share)
    region = "ap-northeast-1"
    attempts = [_send(pacer, aws, region) for _ in range(1000)]
    left = 5 * (1 - other_share)
    floor = (1000 - 50) / left  # the bucket that is left: its burst at once, then its rate
    assert floor <= clock.now <= 1.15 * floor
    assert max(attempts) < THROTTLE_ATTEMPTS  # nobody gave up
    throttles = pacer.stats.throttle_errors
    assert 0 < throttles < 100  # it learned: a handful of cuts, not one refusal per request
    bucket = pacer.bucket(None, region, "ecs_service_modify")
    assert bucket.cuts > 0


def test_without_anyone_else_the_pacer_is_never_throttled_and_keeps_its_rate() -> None:
    clock = ManualClock()
    pacer = Pacer(clock=clock, environ={}, jitter=lambda: 0.5)
    aws = SharedAwsBucket(clock, 5, 50, other=0)
    for _ in range(300):
        _send(pacer, aws, "ap-northeast-1")
    assert pacer.stats.throttle_errors == 0
    assert clock.now == pytest.approx((300 - 50) / 5)
    assert pacer.bucket(None, "ap-northeast-1", "ecs_service_modify").rate == 5


def test_a_request_refused_every_time_is_given_up_after_its_attempts() -> None:
    clock = ManualClock()
    pacer = Pacer(clock=clock, environ={}, jitter=lambda: 1.0)
    region = "ap-northeast-1"
    pacer.before_call(UPDATE_SERVICE, None, region)
    delays = [
        pacer.after_attempt(UPDATE_SERVICE, None, region, "ThrottlingException")
        for _ in range(THROTTLE_ATTEMPTS)
    ]
    assert delays[:-1] == [0.0] * (THROTTLE_ATTEMPTS - 1) and delays[-1] is None
    # It backed off: exponential, capped.
    assert clock.now >= sum(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**n) for n in range(1, 11))
    bucket = pacer.bucket(None, region, "ecs_service_modify")
    assert bucket.rate >= 5 * RATE_FLOOR_SHARE  # never below its floor


# Clients hooks -----------------------------------------------------------------------------

Recorded = list[tuple[str, str | None, str, str | None]]


def _cluster(name: str, credentials: RefreshableCredentials | None = None) -> None:
    """CreateCluster is not teiji's to call: set the world up with a plain client."""
    frozen = credentials.get_frozen_credentials() if credentials else None
    boto3.client(
        "ecs",
        region_name="ap-northeast-1",
        aws_access_key_id=frozen.access_key if frozen else None,
        aws_secret_access_key=frozen.secret_key if frozen else None,
        aws_session_token=frozen.token if frozen else None,
    ).create_cluster(clusterName=name)


def _recorder(calls: Recorded) -> AfterAttempt:
    def hook(operation: Operation, account: str | None, region: str, code: str | None) -> None:
        calls.append((operation.name, account, region, code))

    return hook


def test_clients_report_every_attempt_with_its_error_code() -> None:
    with mock_aws():
        _cluster("default")
        clients = Clients(region="ap-northeast-1")
        attempts: Recorded = []
        clients.after_attempt.append(_recorder(attempts))
        ecs = clients.ecs()
        ecs.describe_services(cluster="default", services=["web"])
        with pytest.raises(ecs.exceptions.ClientError):
            ecs.update_service(cluster="nope", service="web", desiredCount=0)
    assert attempts[0] == ("DescribeServices", None, "ap-northeast-1", None)
    assert attempts[1][0] == "UpdateService"
    assert attempts[1][3] is not None  # the error code of the failed attempt


def test_pacer_installs_on_clients_and_counts_real_requests() -> None:
    with mock_aws():
        _cluster("default")
        clients = Clients(region="ap-northeast-1")
        pacer = Pacer(clock=ManualClock(), environ={})
        pacer.install(clients)
        pacer.install(clients)  # idempotent
        clients.ecs().describe_services(cluster="default", services=["web"])
        assert pacer.stats.api_calls == 1
        assert pacer.bucket(None, "ap-northeast-1", "ecs_service_read").tokens == 99


def test_assumed_role_credentials_refresh_before_they_expire() -> None:
    with mock_aws():
        clients = Clients(region="ap-northeast-1", role_name="teiji-target")
        calls: list[str] = []
        clients.before_call.append(lambda op, account, region: calls.append(op.name))
        ecs = clients.ecs("111111111111")
        session = clients._sessions["111111111111"]
        credentials = session._session._credentials  # type: ignore[attr-defined]
        assert isinstance(credentials, RefreshableCredentials)
        _cluster("default", credentials)
        ecs.list_tasks(cluster="default")
        assert calls.count("AssumeRole") == 1
        ecs.list_tasks(cluster="default")
        assert calls.count("AssumeRole") == 1  # an hour left: no refresh
        # Ten minutes before expiry botocore must refresh before it signs the next request.
        credentials._expiry_time = datetime.now(UTC) + timedelta(minutes=5)  # type: ignore[attr-defined]
        ecs.list_tasks(cluster="default")
        assert calls.count("AssumeRole") == 2
        identity = boto3.client(
            "sts",
            region_name="ap-northeast-1",
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.token,
        ).get_caller_identity()
        assert identity["Account"] == "111111111111"


def test_installed_leaves_the_clients_as_it_found_them() -> None:
    clients = Clients(region="ap-northeast-1")
    pacer = Pacer(clock=ManualClock(), environ={})
    with pacer.installed(clients):
        assert clients.before_call == [pacer.before_call]
        assert clients.after_attempt == [pacer.after_attempt]
    assert clients.before_call == [] and clients.after_attempt == []
    pacer.install(clients)
    with pacer.installed(clients):  # installed by someone else: stays installed
        pass
    assert clients.before_call == [pacer.before_call]


def test_concurrent_threads_assume_each_role_once() -> None:
    with mock_aws():
        clients = Clients(region="ap-northeast-1", role_name="teiji-target")
        assumed: list[str | None] = []
        clients.before_call.append(
            lambda op, account, region: assumed.append(account) if op.name == "AssumeRole" else None
        )
        start = threading.Barrier(8)

        def use(account: str, region: str) -> None:
            start.wait()
            clients.ecs(account, region)

        accounts, regions = ("111111111111", "222222222222"), ("ap-northeast-1", "us-east-1")
        threads = [
            threading.Thread(target=use, args=(account, region))
            for account in accounts
            for region in regions
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert len(assumed) == 2
        ecs_clients = {key for key in clients._cache if key[0] == "ecs"}
        assert ecs_clients == {("ecs", a, r) for a in accounts for r in regions}


# Lanes: bounded concurrency on the clock ---------------------------------------------------


class Tally:
    """How many units of each lane run at once, at most."""

    def __init__(self, clock: VirtualClock, seconds: float = 1.0) -> None:
        self.clock = clock
        self.seconds = seconds
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.order: list[str] = []

    def unit(self, lane: str, name: str) -> Unit:
        def run() -> None:
            with self.lock:
                self.order.append(name)
                self.now[lane] = self.now.get(lane, 0) + 1
                self.peak[lane] = max(self.peak.get(lane, 0), self.now[lane])
            self.clock.sleep(self.seconds)
            with self.lock:
                self.now[lane] -= 1

        return run


def test_lanes_run_side_by_side_each_with_bounded_workers() -> None:
    clock = VirtualClock(stall_timeout=10)
    tally = Tally(clock)
    lanes = [[tally.unit(lane, f"{lane}{n}") for n in range(10)] for lane in "ab"]
    run_lanes(clock, lanes, workers=3)
    assert tally.peak == {"a": 3, "b": 3}
    # 10 one-second units, 3 at a time: 4 s; the lanes overlap instead of adding up.
    assert clock.monotonic() == pytest.approx(4.0)
    assert clock.stalls == 0


def test_one_worker_takes_a_lanes_units_in_order() -> None:
    clock = VirtualClock(stall_timeout=10)
    tally = Tally(clock)
    run_lanes(clock, [[tally.unit("a", f"a{n}") for n in range(5)]], workers=1)
    assert tally.order == [f"a{n}" for n in range(5)]
    assert clock.monotonic() == pytest.approx(5.0)


def test_a_lane_of_a_generator_produces_units_in_order_as_workers_ask() -> None:
    clock = VirtualClock(stall_timeout=10)
    tally = Tally(clock)
    produced: list[int] = []

    def units() -> Iterator[Unit]:
        for n in range(12):
            produced.append(n)  # runs under the lane's lock: never two at once
            yield tally.unit("a", f"a{n}")

    run_lanes(clock, [Lane(units(), size=12)], workers=4)
    assert produced == list(range(12))
    assert sorted(tally.order) == sorted(f"a{n}" for n in range(12))
    assert tally.peak == {"a": 4}


def test_an_escaping_error_stops_the_workers_and_is_raised_once_all_have_ended() -> None:
    class Gone(BaseException):
        pass

    clock = VirtualClock(stall_timeout=10)
    ran: list[int] = []

    def unit(n: int) -> Unit:
        def run() -> None:
            clock.sleep(1)
            ran.append(n)
            if n == 1:
                raise Gone("the process is gone")

        return run

    with pytest.raises(Gone):
        run_lanes(clock, [[unit(n) for n in range(20)]], workers=2)
    assert len(ran) < 20  # no new units were taken after the failure
    assert not [t for t in threading.enumerate() if t.name.startswith("teiji-lane")]


def test_a_single_unit_runs_in_the_calling_thread() -> None:
    seen: list[threading.Thread] = []
    run_lanes(RealClock(), [[], [lambda: seen.append(threading.current_thread())]], workers=8)
    assert seen == [threading.current_thread()]
    with pytest.raises(ValueError, match="workers"):
        run_lanes(RealClock(), [[]], workers=0)
