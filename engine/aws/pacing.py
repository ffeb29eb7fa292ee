"""Client-side pacing: stay inside AWS's request token buckets instead of being throttled.

AWS throttles each account and Region with token buckets, one per category of actions (ECS:
service modify, service read, cluster resource read, ...). A tick that fires thousands of
requests as fast as it can empties a bucket in a second and then collects
``ThrottlingException`` for the rest of the run. ``Pacer`` keeps one client-side bucket per
(account, region, category) with the documented sizes, so requests wait their turn here, and
counts every request sent and every throttling error seen so a tick can report them.

Time comes from an injectable ``Clock``: ``RealClock`` in the Lambda, ``ScaledClock`` or
``VirtualClock`` in the benchmark (where minutes of emulated AWS time pass in seconds).
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, get_args

from engine.aws.operations import Category, Operation

if TYPE_CHECKING:
    from engine.aws.clients import Clients

# Clocks ------------------------------------------------------------------------------------


class Clock(Protocol):
    """Where pacing reads time and waits: seconds, monotonic, any origin."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """The process's own clock: what the Lambda uses."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    """Real time running ``speed`` times faster: one real second is ``speed`` clock seconds.

    Everything that takes real CPU time is inflated by ``speed`` too, so prefer
    ``VirtualClock`` when the figures must not depend on how fast the machine is.
    """

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.speed = speed
        self._origin = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)


class _Sleeper:
    __slots__ = ("done", "wake")

    def __init__(self, wake: float) -> None:
        self.wake = wake
        self.done = False


class VirtualClock:
    """Emulated seconds that pass only while every participating thread sleeps.

    Nothing real is waited for: when all participants are inside ``sleep``, the clock jumps to
    the earliest wake-up, so computing costs no emulated time and waiting costs no real time.
    A thread that sleeps without having joined takes part for the length of that sleep, which
    is all single-threaded use needs. Threads that work concurrently must join with
    ``participant()`` so that time does not jump while one of them is still busy. If a
    participant is blocked somewhere else (not in ``sleep``) for ``stall_timeout`` real
    seconds, time moves on anyway and ``stalls`` counts it, instead of the run hanging.
    """

    def __init__(self, start: float = 0.0, *, stall_timeout: float = 0.5) -> None:
        self._now = start
        self._cond = threading.Condition()
        self._sleepers: list[_Sleeper] = []
        self._participants = 0
        self._version = 0  # bumps on every change; a wait that sees none has stalled
        self._joined = threading.local()
        self.stall_timeout = stall_timeout
        self.stalls = 0

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    @contextmanager
    def participant(self) -> Iterator[None]:
        """Hold time still while the calling thread works, until the block ends."""
        with self._cond:
            self._participants += 1
            self._joined.depth = self._depth() + 1
            self._changed()
        try:
            yield
        finally:
            with self._cond:
                self._participants -= 1
                self._joined.depth = self._depth() - 1
                self._changed()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._cond:
            joined = self._depth() > 0
            if not joined:
                self._participants += 1
            me = _Sleeper(self._now + seconds)
            self._sleepers.append(me)
            self._changed()
            try:
                while not me.done:
                    if len(self._sleepers) >= self._participants:
                        self._advance()
                        continue
                    seen = self._version
                    self._cond.wait(self.stall_timeout)
                    if not me.done and self._version == seen:
                        self.stalls += 1
                        self._advance()
            finally:
                if not me.done:  # interrupted
                    self._sleepers.remove(me)
                if not joined:
                    self._participants -= 1
                self._changed()

    def _depth(self) -> int:
        depth: int = getattr(self._joined, "depth", 0)
        return depth

    def _advance(self) -> None:
        # Caller holds the lock. Woken sleepers leave the list at once, so they count as busy
        # until they sleep again or leave, and time cannot run past them meanwhile.
        self._now = max(self._now, min(s.wake for s in self._sleepers))
        still: list[_Sleeper] = []
        for sleeper in self._sleepers:
            if sleeper.wake <= self._now:
                sleeper.done = True
            else:
                still.append(sleeper)
        self._sleepers = still
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._cond.notify_all()


def participating(clock: Clock) -> AbstractContextManager[None]:
    """``clock.participant()`` for a ``VirtualClock``; nothing to do for the other clocks.

    Worker threads wrap each unit of work in it so emulated time stays exact under concurrency.
    """
    if isinstance(clock, VirtualClock):
        return clock.participant()
    return nullcontext()


# Token bucket ------------------------------------------------------------------------------

# Float refills land a hair under a whole token; a request that arrives exactly on time is
# admitted (AWS counts whole tokens; the error is far below anything measurable).
_EPSILON = 1e-9


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` per second; thread-safe.

    ``acquire`` reserves its tokens first (the level may go negative) and then sleeps until the
    refill has paid the debt, so concurrent callers are served in arrival order and the number
    admitted by time t never exceeds ``burst + rate * t``.
    """

    def __init__(self, rate: float, burst: float, clock: Clock | None = None) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number of requests per second, not {rate}")
        if not burst >= 1 or not math.isfinite(burst):
            raise ValueError(f"burst must be at least 1 request, not {burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock: Clock = clock or RealClock()
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = self.clock.monotonic()

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def try_acquire(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if they are there now; never waits (what the AWS side does)."""
        self._check(n)
        with self._lock:
            self._refill()
            if self._tokens + _EPSILON < n:
                return False
            self._tokens -= n
            return True

    def acquire(self, n: float = 1.0) -> float:
        """Take ``n`` tokens, waiting on the clock as long as needed; returns seconds waited."""
        self._check(n)
        with self._lock:
            now = self._refill()
            self._tokens -= n
            ready_at = now if self._tokens >= -_EPSILON else now - self._tokens / self.rate
        delay = ready_at - self.clock.monotonic()
        if delay <= 0:
            return 0.0
        self.clock.sleep(delay)
        return delay

    def drain(self) -> None:
        """Empty the bucket: AWS just said we are over its limit (someone else shares it)."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 0.0)

    def set_rate(self, rate: float) -> None:
        """Refill at ``rate`` from now on (what was refilled until now stays)."""
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number of requests per second, not {rate}")
        with self._lock:
            self._refill()
            self.rate = float(rate)

    def _refill(self) -> float:
        now = self.clock.monotonic()
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._stamp = now
        return now

    def _check(self, n: float) -> None:
        if not 0 < n <= self.burst:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.burst:g}")


# Learning from throttling ------------------------------------------------------------------

# A throttle cuts the rate by this factor; every request admitted afterwards gives back this
# share of the configured rate, never more than it (additive increase, multiplicative decrease).
THROTTLE_CUT = 0.85
RECOVERY_STEP = 0.004
# The requests in flight when AWS says "slow down" are one signal: cut once per this long at
# most, or per the time a few requests take at the current rate when that is shorter.
CUT_COOLDOWN_S = 1.0
CUT_COOLDOWN_REQUESTS = 4
# The rate never falls below this share of the configured one (a stuck bucket would stall).
RATE_FLOOR_SHARE = 0.05
# A throttled request is paced again and retried inside the tick, up to this many attempts in
# all (botocore's own retries stop after a few, and never for ConcurrentUpdateException),
# after a jittered back-off of up to BACKOFF_BASE_S * 2**n, at most BACKOFF_CAP_S.
THROTTLE_ATTEMPTS = 12
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 5.0


class AdaptiveBucket(TokenBucket):
    """A ``TokenBucket`` that learns how much of AWS's bucket is left for it.

    Another caller in the account draws from the same AWS bucket, so the documented rate is
    a ceiling, not a promise. ``throttled`` empties the bucket and cuts the rate (once per
    ``CUT_COOLDOWN_S``); ``admitted`` raises it by a small step back towards the ceiling. The
    rate settles just under what is left, and a throttled request waits its turn again.
    """

    def __init__(self, rate: float, burst: float, clock: Clock | None = None) -> None:
        super().__init__(rate, burst, clock)
        self.ceiling = self.rate
        self.cuts = 0
        self._last_cut = -math.inf
        self._adapt = threading.Lock()

    def throttled(self) -> None:
        with self._adapt:
            now = self.clock.monotonic()
            cooldown = min(CUT_COOLDOWN_S, CUT_COOLDOWN_REQUESTS / self.rate)
            if now - self._last_cut >= cooldown:
                self._last_cut = now
                self.cuts += 1
                self.set_rate(max(self.ceiling * RATE_FLOOR_SHARE, self.rate * THROTTLE_CUT))
        self.drain()

    def admitted(self) -> None:
        if self.rate >= self.ceiling:
            return
        with self._adapt:
            self.set_rate(min(self.ceiling, self.rate + self.ceiling * RECOVERY_STEP))


# Rates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """A token bucket's size: ``rate`` requests per second sustained, ``burst`` at once."""

    rate: float
    burst: float

    def __str__(self) -> str:
        return f"{self.rate:g}/{self.burst:g}"


CATEGORIES: tuple[Category, ...] = get_args(Category)

DEFAULT_RATES: dict[Category, Rate] = {
    # Amazon ECS API Reference, "Request throttling for the Amazon ECS API"
    # (docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html), per account
    # and Region: service modify (Create/Update/DeleteService) 5/s sustained, burst 50;
    # service read (DescribeServices, ListServices) 20/s, burst 100; cluster resource read
    # (DescribeTasks, ListTasks, DescribeContainerInstances) 20/s, burst 100.
    "ecs_service_modify": Rate(5, 50),
    "ecs_service_read": Rate(20, 100),
    "ecs_cluster_read": Rate(20, 100),
    # DescribeTaskDefinition (the CLI only): the same page lists the other read actions at the
    # read categories' 20/s, burst 100.
    "ecs_other": Rate(20, 100),
    # Application Auto Scaling publishes no request rates (there is no throttling page and no
    # Service Quotas entry for its API). Assume the order of ELB's documented non-mutating
    # bucket below, 10/s with a burst of 40; a tick makes at most one Describe per 50 services
    # and one Register per changed service, and a throttle drains the bucket (see Pacer).
    "autoscaling": Rate(10, 40),
    # Elastic Load Balancing User Guide, "Request throttling for the ELB API"
    # (docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html):
    # its worked example gives the non-mutating (Describe*) bucket 40 tokens refilled at 10/s.
    # The category also carries the mutating RegisterTargets/DeregisterTargets, which have
    # their own buckets; teiji does not rely on their size and stays at half the read figures.
    "elbv2": Rate(5, 20),
    # DynamoDB throttles data-plane reads and writes by table capacity (on-demand tables
    # default to 40,000 read and 40,000 write request units a second), not by request count;
    # teiji's few hundred requests a tick are far below that, so this bucket only stops a
    # runaway loop.
    "dynamodb": Rate(100, 200),
    # STS throttles with token buckets too (AWS Security Blog, "How to monitor and query IAM
    # resources at scale, part 2") but publishes no default sizes; AWS advises caching assumed
    # credentials, which Clients does: one AssumeRole per account per hour, so 20/s is plenty.
    "sts": Rate(20, 50),
}

ENV_PREFIX = "TEIJI_RATE_"


class PacingConfigError(ValueError):
    """A rate override that cannot be used; the message names the setting and the fix."""


def env_var(category: Category) -> str:
    """``ecs_service_modify`` -> ``TEIJI_RATE_ECS_SERVICE_MODIFY``."""
    return ENV_PREFIX + category.upper()


def parse_rate(text: str, *, where: str) -> Rate:
    """``"5/50"`` (5 requests per second sustained, bursts of 50) -> Rate(5, 50)."""
    form = "write rate/burst, for example 5/50 (5 requests a second, bursts of 50)"
    rate_text, slash, burst_text = text.strip().partition("/")
    if not slash:
        raise PacingConfigError(f"{where}: {text!r} has no '/'; {form}")
    try:
        rate, burst = float(rate_text), float(burst_text)
    except ValueError:
        raise PacingConfigError(f"{where}: {text!r} is not two numbers; {form}") from None
    if not (math.isfinite(rate) and rate > 0):
        raise PacingConfigError(f"{where}: rate {rate_text.strip()!r} must be above 0; {form}")
    if not (math.isfinite(burst) and burst >= 1):
        raise PacingConfigError(f"{where}: burst {burst_text.strip()!r} must be 1 or more; {form}")
    return Rate(rate, burst)


def _category(name: str, *, where: str) -> Category:
    for category in CATEGORIES:
        if category == name:
            return category
    allowed = ", ".join(CATEGORIES)
    raise PacingConfigError(f"{where}: unknown category {name!r}; the categories are {allowed}")


def rates_from_env(environ: Mapping[str, str]) -> dict[Category, Rate]:
    """Every ``TEIJI_RATE_<CATEGORY>=rate/burst`` in ``environ``; unknown names are errors."""
    found: dict[Category, Rate] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        category = _category(name[len(ENV_PREFIX) :].lower(), where=name)
        found[category] = parse_rate(value, where=name)
    return found


def resolve_rates(
    overrides: Mapping[str, Rate | str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[Category, Rate]:
    """Documented defaults, then the environment, then explicit ``overrides`` (which win)."""
    rates = dict(DEFAULT_RATES)
    rates.update(rates_from_env(os.environ if environ is None else environ))
    for name, value in (overrides or {}).items():
        where = f"rate override {name!r}"
        category = _category(name, where=where)
        rates[category] = value if isinstance(value, Rate) else parse_rate(value, where=where)
    return rates


# Counting ----------------------------------------------------------------------------------

# botocore's own list (botocore.retries.standard); any of these means "slow down".
THROTTLING_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)


def is_throttling_error(code: str | None) -> bool:
    return code in THROTTLING_ERROR_CODES


class CallStats:
    """Requests sent (every attempt, retries included), throttling errors, time spent pacing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.api_calls = 0
        self.throttle_errors = 0
        self.paced_calls = 0
        self.paced_seconds = 0.0
        self.calls_by_category: Counter[str] = Counter()
        self.throttles_by_category: Counter[str] = Counter()

    def record_attempt(self, category: Category, throttled: bool) -> None:
        with self._lock:
            self.api_calls += 1
            self.calls_by_category[category] += 1
            if throttled:
                self.throttle_errors += 1
                self.throttles_by_category[category] += 1

    def record_wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self.paced_calls += 1
            self.paced_seconds += seconds

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "api_calls": self.api_calls,
                "throttle_errors": self.throttle_errors,
                "paced_calls": self.paced_calls,
                "paced_seconds": round(self.paced_seconds, 3),
                "calls_by_category": dict(self.calls_by_category),
                "throttles_by_category": dict(self.throttles_by_category),
            }


# Pacer -------------------------------------------------------------------------------------

BucketKey = tuple[str | None, str, Category]  # (account or None for the own one, region, ...)


class Pacer:
    """One token bucket per (account, region, category), plugged into ``Clients``.

    ``install(clients)`` adds ``before_call`` (waits for a token) and ``after_attempt``
    (counts the request). A throttling answer means someone else in the account uses the same
    AWS bucket: that bucket is emptied, its rate cut, and the request paced and retried; the
    rate creeps back as requests get through (``AdaptiveBucket``).
    """

    def __init__(
        self,
        overrides: Mapping[str, Rate | str] | None = None,
        *,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
        share: float = 1.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """``share`` of every bucket is this pacer's: 1/n for each of n shards ticking at once.

        AWS's buckets belong to the account and Region, not to a Lambda: shards that run at the
        same quarter hour draw from the same ones, so each may only use its share.
        """
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], not {share}")
        self.rates = {
            category: Rate(rate.rate * share, max(1.0, rate.burst * share))
            for category, rate in resolve_rates(overrides, environ).items()
        }
        self.clock: Clock = clock or RealClock()
        self.stats = CallStats()
        self._buckets: dict[BucketKey, AdaptiveBucket] = {}
        self._lock = threading.Lock()
        self._attempt = threading.local()
        self._jitter = jitter

    def bucket(self, account: str | None, region: str, category: Category) -> AdaptiveBucket:
        key: BucketKey = (account, region, category)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                rate = self.rates[category]
                bucket = AdaptiveBucket(rate.rate, rate.burst, self.clock)
                self._buckets[key] = bucket
            return bucket

    def before_call(self, operation: Operation, account: str | None, region: str) -> None:
        """A ``Clients.before_call`` hook (once per call): blocks until the request may go."""
        self._attempt.throttled = 0
        waited = self.bucket(account, region, operation.category).acquire()
        self.stats.record_wait(waited)

    def after_attempt(
        self, operation: Operation, account: str | None, region: str, error_code: str | None
    ) -> float | None:
        """A ``Clients.after_attempt`` hook: runs once per request sent, retries included.

        A throttle teaches the bucket (``AdaptiveBucket.throttled``); the request then backs
        off (jittered, exponential), waits for its turn again and is retried at once (returns
        0 s, so botocore retries even past its own attempts), up to ``THROTTLE_ATTEMPTS``.
        """
        throttled = is_throttling_error(error_code)
        self.stats.record_attempt(operation.category, throttled)
        bucket = self.bucket(account, region, operation.category)
        if not throttled:
            bucket.admitted()
            return None
        bucket.throttled()
        # Calls run on one thread from before_call to their last attempt: count per thread.
        self._attempt.throttled = getattr(self._attempt, "throttled", 0) + 1
        throttles: int = self._attempt.throttled
        if throttles >= THROTTLE_ATTEMPTS:
            return None  # give up: the service fails this tick and the next one tries again
        backoff = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**throttles) * self._jitter()
        self.clock.sleep(backoff)
        self.stats.record_wait(backoff + bucket.acquire())
        return 0.0

    def install(self, clients: Clients) -> None:
        if self.before_call not in clients.before_call:
            clients.before_call.append(self.before_call)
        if self.after_attempt not in clients.after_attempt:
            clients.after_attempt.append(self.after_attempt)

    def uninstall(self, clients: Clients) -> None:
        if self.before_call in clients.before_call:
            clients.before_call.remove(self.before_call)
        if self.after_attempt in clients.after_attempt:
            clients.after_attempt.remove(self.after_attempt)

    @contextmanager
    def installed(self, clients: Clients) -> Iterator[Pacer]:
        """Pace ``clients`` inside the block; leave them as found afterwards.

        A Lambda container keeps its ``Clients`` from one tick to the next, so a tick must not
        leave its hooks behind. If this pacer was already installed, it stays installed.
        """
        already = self.before_call in clients.before_call
        self.install(clients)
        try:
            yield self
        finally:
            if not already:
                self.uninstall(clients)


# Bounded concurrency -----------------------------------------------------------------------

Unit = Callable[[], None]

# However many (account, region) groups there are, a tick never runs more threads than this.
MAX_THREADS = 128


class Lane:
    """One group's units, handed out in order to that group's workers.

    ``units`` may be a generator: it is advanced under the lane's lock, one unit per take, so
    a check made while producing the next unit (the tick's lease deadline) runs in order.
    ``size`` (default: ``len(units)``) says how many units there are at most, so no more
    threads start than there is work for.
    """

    def __init__(self, units: Iterable[Unit], size: int | None = None) -> None:
        if size is None:
            if not isinstance(units, Sized):
                raise TypeError("a lane of a generator needs its size")
            size = len(units)
        self.size = size
        self._units = iter(units)
        self._lock = threading.Lock()

    def take(self) -> Unit | None:
        with self._lock:
            return next(self._units, None)


def run_lanes(
    clock: Clock,
    lanes: Sequence[Lane | Sequence[Unit]],
    *,
    workers: int,
    max_threads: int = MAX_THREADS,
) -> None:
    """Run every lane at once, each with up to ``workers`` threads taking its units in order.

    A lane is one (account, region) group: AWS's buckets are per account and Region, so
    groups do not slow each other down, while ``workers`` bounds what one group has in flight.
    Units should handle their own errors; anything that escapes one (``BaseException``
    included) stops the workers from taking more units and is raised here once all threads
    have ended.

    Each worker joins the clock (``participating``) for its whole life, not unit by unit, and
    the caller holds the clock still until every worker has joined: on a ``VirtualClock`` time
    would otherwise move on while a thread is between units or not started yet. The caller
    itself waits outside the clock, and must not be a participant when it calls this.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    queues = [lane if isinstance(lane, Lane) else Lane(lane) for lane in lanes]
    queues = [queue for queue in queues if queue.size > 0]
    if not queues:
        return
    per_lane = max(1, min(workers, max_threads // len(queues)))
    counts = [min(per_lane, queue.size) for queue in queues]
    if sum(counts) == 1:  # one worker's worth of work: the caller does it, no thread
        with participating(clock):
            while (unit := queues[0].take()) is not None:
                unit()
        return

    failures: list[BaseException] = []
    stop = threading.Event()
    joined = threading.Semaphore(0)
    lock = threading.Lock()

    def work(queue: Lane) -> None:
        with participating(clock):
            joined.release()
            try:
                while not stop.is_set():
                    unit = queue.take()
                    if unit is None:
                        return
                    unit()
            except BaseException as exc:  # re-raised by the caller once every thread has ended
                with lock:
                    failures.append(exc)
                stop.set()

    threads = [
        threading.Thread(target=work, args=(queue,), name=f"teiji-lane{i}-{n}", daemon=True)
        for i, (queue, count) in enumerate(zip(queues, counts, strict=True))
        for n in range(count)
    ]
    with participating(clock):
        for thread in threads:
            thread.start()
        for _ in threads:
            joined.acquire()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
