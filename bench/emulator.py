"""The AWS side of the benchmark: network latency and ECS's request token buckets, over moto.

moto answers every request at once and never throttles. ``AwsEmulator`` stands in front of
moto's in-process stub (a botocore ``before-send`` handler) and, for every request:

1. waits the network latency on the benchmark's clock;
2. takes a token from the (account, region, category) bucket AWS keeps for ECS actions (its
   own ``AwsBucket``, not teiji's pacing class, so the two cannot agree by construction), and
   if the bucket is empty answers HTTP 400 ``ThrottlingException`` / ``Rate exceeded`` itself,
   as an ``AWSResponse``, so botocore's retry machinery sees exactly what AWS would send.
   ``others`` lets another caller in the account draw a share of a category's bucket;
3. otherwise lets moto answer (one request at a time: moto's backends are not thread-safe).

It also counts what reached AWS, per operation, so teiji's and the hand-written tool's figures
come from the same place. ``installed()`` puts it in place of moto's stub for every botocore
session created inside the block, and makes botocore's retry back-off sleep on the same clock.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any
from unittest import mock

import botocore.endpoint
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.handlers import BUILTIN_HANDLERS

from engine.aws.bucket import Rate
from engine.aws.clock import Clock

# Amazon ECS API Reference, "Request throttling for the Amazon ECS API": per account and Region.
AWS_ECS_LIMITS: dict[str, Rate] = {
    "ecs_service_modify": Rate(5, 50),
    "ecs_service_read": Rate(20, 100),
    "ecs_cluster_read": Rate(20, 100),
}

# (botocore event service id, operation) -> ECS throttling category, as the same page lists.
ECS_ACTION_CATEGORIES: dict[tuple[str, str], str] = {
    ("ecs", "CreateService"): "ecs_service_modify",
    ("ecs", "UpdateService"): "ecs_service_modify",
    ("ecs", "DeleteService"): "ecs_service_modify",
    ("ecs", "DescribeServices"): "ecs_service_read",
    ("ecs", "ListServices"): "ecs_service_read",
    ("ecs", "DescribeTasks"): "ecs_cluster_read",
    ("ecs", "ListTasks"): "ecs_cluster_read",
    ("ecs", "DescribeContainerInstances"): "ecs_cluster_read",
}

DEFAULT_LATENCY_S = 0.020

# Services whose errors are JSON ({"__type": ...}); the others here speak the query protocol.
_JSON_SERVICES = frozenset({"ecs", "application-auto-scaling", "dynamodb"})
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/")


class AwsBucket:
    """AWS's token bucket: ``burst`` at most, refilled at ``rate`` a second; AWS never queues a
    request, it admits or refuses it. ``other`` requests a second of another caller in the same
    account come first, whenever there is a token for them."""

    def __init__(self, rate: float, burst: float, clock: Clock, *, other: float = 0.0) -> None:
        self.rate, self.burst, self.other, self.clock = rate, burst, other, clock
        self._tokens = burst
        self._owed = 0.0  # the other caller's requests still waiting for a token
        self._stamp = clock.monotonic()
        self._lock = threading.Lock()

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def try_acquire(self) -> bool:
        with self._lock:
            self._refill()
            if self._tokens < 1 - 1e-9:
                return False
            self._tokens -= 1
            return True

    def _refill(self) -> None:
        now = self.clock.monotonic()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._owed += elapsed * self.other
        taken = min(self._owed, self._tokens)
        self._tokens -= taken
        self._owed -= taken


class ResponseBody(BytesIO):
    """What botocore reads an ``AWSResponse``'s raw body through."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


def json_error_response(
    url: str, status: int, code: str, message: str, *, request_id: str | None = None
) -> AWSResponse:
    """An AWS JSON-protocol error answer (ECS, Application Auto Scaling and DynamoDB all use
    it): botocore parses the code from ``__type``."""
    headers = HTTPHeaders()
    headers["x-amzn-RequestId"] = request_id or str(uuid.uuid4())
    headers["Content-Type"] = "application/x-amz-json-1.1"
    body = json.dumps({"__type": code, "message": message}).encode()
    return AWSResponse(url, status, headers, ResponseBody(body))


def throttling_response(service_id: str, url: str) -> AWSResponse:
    """The answer AWS gives when a bucket is empty: HTTP 400, ThrottlingException."""
    if service_id in _JSON_SERVICES:
        return json_error_response(url, 400, "ThrottlingException", "Rate exceeded")
    request_id = str(uuid.uuid4())
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
        f"<Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId>"
        "</ErrorResponse>"
    ).encode()
    headers = HTTPHeaders()
    headers["x-amzn-RequestId"] = request_id
    headers["Content-Type"] = "text/xml"
    return AWSResponse(url, 400, headers, ResponseBody(body))


@dataclass
class Traffic:
    """What reached the emulated AWS: every request, and those it throttled."""

    requests: Counter[str] = field(default_factory=Counter)  # "ecs.UpdateService" -> n
    throttled: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def total_throttled(self) -> int:
        return sum(self.throttled.values())

    def as_json(self) -> dict[str, object]:
        return {
            "requests": self.total,
            "throttled": self.total_throttled,
            "by_operation": dict(sorted(self.requests.items())),
            "throttled_by_operation": dict(sorted(self.throttled.items())),
        }


class _TimeOnClock:
    """The ``time`` module as botocore's endpoint sees it, with ``sleep`` on our clock."""

    def __init__(self, clock: Clock) -> None:
        self.sleep = clock.sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class AwsEmulator:
    """Latency and ECS throttling in front of moto; see the module docstring."""

    def __init__(
        self,
        clock: Clock,
        *,
        latency: float = DEFAULT_LATENCY_S,
        limits: Mapping[str, Rate] = AWS_ECS_LIMITS,
        categories: Mapping[tuple[str, str], str] = ECS_ACTION_CATEGORIES,
        others: Mapping[str, float] | None = None,
    ) -> None:
        """``others``: category -> the share of its bucket's rate another caller uses."""
        from moto.core.models import botocore_stubber  # moto is a benchmark-only dependency

        self.clock = clock
        self.latency = latency
        self.limits = dict(limits)
        self.categories = dict(categories)
        self.traffic = Traffic()
        self.others = dict(others or {})
        self._moto = botocore_stubber
        self._buckets: dict[tuple[str, str, str], AwsBucket] = {}
        self._accounts: dict[str, str] = {}
        self._lock = threading.Lock()  # buckets, counters
        self._moto_lock = threading.Lock()  # one request inside moto at a time

    # The before-send handler ---------------------------------------------------------------
    def __call__(
        self, event_name: str, request: AWSPreparedRequest, **kwargs: Any
    ) -> AWSResponse | None:
        _, service_id, operation = event_name.split(".", 2)
        account, region = self._scope(request)
        self.clock.sleep(self.latency)
        name = f"{service_id}.{operation}"
        throttled = not self._admit(account, region, self.categories.get((service_id, operation)))
        with self._lock:
            self.traffic.requests[name] += 1
            if throttled:
                self.traffic.throttled[name] += 1
        if throttled:
            return throttling_response(service_id, request.url or "")
        with self._moto_lock:
            response: AWSResponse | None = self._moto(
                event_name=event_name, request=request, **kwargs
            )
        return response

    def reset_traffic(self) -> Traffic:
        """Start counting afresh; returns what was counted so far."""
        with self._lock:
            seen, self.traffic = self.traffic, Traffic()
        return seen

    def refill(self) -> None:
        """Every bucket full again, as after a quiet quarter hour between ticks."""
        with self._lock:
            self._buckets.clear()

    def bucket(self, account: str, region: str, category: str) -> AwsBucket:
        key = (account, region, category)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                limit = self.limits[category]
                other = limit.rate * self.others.get(category, 0.0)
                bucket = AwsBucket(limit.rate, limit.burst, self.clock, other=other)
                self._buckets[key] = bucket
            return bucket

    def _admit(self, account: str, region: str, category: str | None) -> bool:
        if category is None or category not in self.limits:
            return True
        return self.bucket(account, region, category).try_acquire()

    def _scope(self, request: AWSPreparedRequest) -> tuple[str, str]:
        """(account, region) of a signed request, as AWS knows them from the credential."""
        header = request.headers.get("Authorization") or ""
        if isinstance(header, bytes):
            header = header.decode()
        match = _CREDENTIAL.search(header)
        if not match:
            return "unknown", "unknown"
        access_key, region = match.group(1), match.group(2)
        account = self._accounts.get(access_key)
        if account is None:
            from moto.iam.models import get_account_id_from

            with self._moto_lock:
                account = get_account_id_from(access_key)
            self._accounts[access_key] = account
        return account, region

    # Installation --------------------------------------------------------------------------
    @contextmanager
    def installed(self) -> Iterator[AwsEmulator]:
        """Replace moto's stub for sessions created inside the block; retries sleep on our clock.

        Needs an active ``moto.mock_aws``. Clients made before the block keep plain moto.
        """
        index = next((i for i, spec in enumerate(BUILTIN_HANDLERS) if spec[1] is self._moto), None)
        if index is None:
            raise RuntimeError("moto's before-send stub is not registered; import moto first")
        original = BUILTIN_HANDLERS[index]
        BUILTIN_HANDLERS[index] = ("before-send", self)
        try:
            with mock.patch.object(botocore.endpoint, "time", _TimeOnClock(self.clock)):
                yield self
        finally:
            BUILTIN_HANDLERS[index] = original
