"""Token buckets and their sizes: how many requests a second each category of AWS actions gets.

``TokenBucket`` is the arithmetic (``burst`` at most, refilled at ``rate``), ``AdaptiveBucket``
learns from throttling how much of AWS's bucket is left. ``DEFAULT_RATES`` are the documented
sizes per category; ``TEIJI_RATE_<CATEGORY>=rate/burst`` in the environment overrides them
(``resolve_rates``), and a setting that cannot be used raises ``PacingConfigError``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args

from engine.aws.clock import Clock, RealClock
from engine.aws.operations import Category

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
    # DescribeTaskDefinition (teiji simulate; the tick once per revision of a service it stops):
    # the same page lists the other read actions at the read categories' 20/s, burst 100.
    "ecs_other": Rate(20, 100),
    # Application Auto Scaling publishes no request rates (there is no throttling page and no
    # Service Quotas entry for its API). Assume the order of ELB's documented non-mutating
    # bucket below, 10/s with a burst of 40; a tick makes at most one Describe per 50 services
    # and one Register per changed service, and a throttle drains the bucket (see Pacer).
    "autoscaling": Rate(10, 40),
    # Elastic Load Balancing User Guide, "Request throttling for the ELB API"
    # (docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html), per
    # account and Region, ELB API version 2 with buckets of its own: the non-mutating
    # (Describe*) bucket holds 40 tokens refilled at 10 a second (the page's worked example).
    # Registration (RegisterTargets, DeregisterTargets) has a separate, smaller bucket; teiji
    # takes the AWS Load Balancer Controller's default for it, 4/s with a burst of 20, which its
    # maintainers set from the ELB team's figures. Calls ECS makes for a service do not count.
    "elbv2_read": Rate(10, 40),
    "elbv2_register": Rate(4, 20),
    # DynamoDB throttles data-plane reads and writes by table capacity (on-demand tables
    # default to 40,000 read and 40,000 write request units a second), not by request count;
    # teiji's few hundred requests a tick are far below that, so this bucket only stops a
    # runaway loop.
    "dynamodb": Rate(100, 200),
    # STS throttles with token buckets too (AWS Security Blog, "How to monitor and query IAM
    # resources at scale, part 2") but publishes no default sizes; AWS advises caching assumed
    # credentials, which Clients does: one AssumeRole per account per hour, so 20/s is plenty.
    "sts": Rate(20, 50),
    # EventBridge's PutEvents quota is per account and Region, thousands of requests a second in
    # most Regions (Service Quotas, "PutEvents throttle limit in transactions per second"); a
    # tick sends one call per 10 events, so this bucket only stops a runaway loop.
    "events": Rate(50, 100),
    # CloudWatch GetMetricData (teiji savings only): Service Quotas lists 50 transactions a
    # second per account and Region by default; a savings report makes a handful of calls.
    "cloudwatch": Rate(10, 20),
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


# Names that stand for several categories: ``elbv2`` was one category before ELB's read and
# registration buckets were paced apart, and a deployment that set it keeps working.
ALIASES: dict[str, tuple[Category, ...]] = {"elbv2": ("elbv2_read", "elbv2_register")}


def _categories(name: str, *, where: str) -> tuple[Category, ...]:
    for category in CATEGORIES:
        if category == name:
            return (category,)
    if name in ALIASES:
        return ALIASES[name]
    allowed = ", ".join(CATEGORIES)
    raise PacingConfigError(f"{where}: unknown category {name!r}; the categories are {allowed}")


def rates_from_env(environ: Mapping[str, str]) -> dict[Category, Rate]:
    """Every ``TEIJI_RATE_<CATEGORY>=rate/burst`` in ``environ``; unknown names are errors.
    A category's own name wins over an alias that covers it."""
    found: dict[Category, Rate] = {}
    own: set[Category] = set()
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        categories = _categories(name[len(ENV_PREFIX) :].lower(), where=name)
        rate = parse_rate(value, where=name)
        for category in categories:
            if len(categories) == 1:
                own.add(category)
                found[category] = rate
            elif category not in own:
                found[category] = rate
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
        rate = value if isinstance(value, Rate) else parse_rate(value, where=where)
        for category in _categories(name, where=where):
            rates[category] = rate
    return rates
