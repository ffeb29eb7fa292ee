"""Client-side pacing: stay inside AWS's request token buckets instead of being throttled.

AWS throttles each account and Region with token buckets, one per category of actions (ECS:
service modify, service read, cluster resource read, ...). A tick that fires thousands of
requests as fast as it can empties a bucket in a second and then collects
``ThrottlingException`` for the rest of the run. ``Pacer`` keeps one client-side bucket per
(account, region, category) with the documented sizes (``engine.aws.bucket``), so requests
wait their turn here, and counts every request sent and every throttling error seen
(``CallStats``) so a tick can report them.

Time comes from an injectable ``Clock`` (``engine.aws.clock``): ``RealClock`` in the Lambda,
``VirtualClock`` in the benchmark (where minutes of emulated AWS time pass in seconds).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from engine.aws.bucket import AdaptiveBucket, Rate, resolve_rates
from engine.aws.clock import Clock, RealClock
from engine.aws.operations import Category, Operation

if TYPE_CHECKING:
    from engine.aws.clients import Clients

# A throttled request is paced again and retried inside the tick, up to this many attempts in
# all (botocore's own retries stop after a few, and never for ConcurrentUpdateException),
# after a jittered back-off of up to BACKOFF_BASE_S * 2**n, at most BACKOFF_CAP_S.
THROTTLE_ATTEMPTS = 12
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 5.0


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
