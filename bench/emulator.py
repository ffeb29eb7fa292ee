"""The AWS side of the benchmark: network latency, AWS's request buckets and DynamoDB's
capacity, over moto.

moto answers every request at once and never throttles. ``AwsEmulator`` stands in front of
moto's in-process stub (a botocore ``before-send`` handler) and, for every request:

1. waits the network latency on the benchmark's clock;
2. takes a token from the (account, region, category) bucket AWS keeps for the action: ECS's
   three documented categories, ELB's Describe* and target buckets, Application Auto Scaling
   (no published rate: a conservative, configurable one) and STS. The buckets are the
   emulator's own (``AwsBucket``, ``Limit``), not teiji's pacing classes, so the two cannot
   agree by construction. An empty bucket answers HTTP 400 itself, in the service's own error
   shape (JSON ``ThrottlingException`` for ECS and Application Auto Scaling, XML ``Throttling``
   for ELB and STS), so botocore's retry machinery sees exactly what AWS would send. ``others``
   lets another caller in the account draw a share of a category's bucket;
3. DynamoDB: each table has read and write capacity (units a second, with 300 s of burst);
   a table in debt answers ``ProvisionedThroughputExceededException`` (provisioned) or
   ``ThrottlingException`` (on-demand), in DynamoDB's JSON 1.0 shape;
4. otherwise lets moto answer (one request at a time: moto's backends are not thread-safe).

It also counts what reached AWS, per operation, and the CPU seconds its own thread spent on
each request (moto's work and the emulator's), so a caller's CPU can be told from AWS's in one
process. ``installed()`` puts it in place of moto's stub for every botocore session created
inside the block, and makes botocore's retry back-off sleep on the same clock.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Literal
from unittest import mock

import botocore.endpoint
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.handlers import BUILTIN_HANDLERS

from engine.aws.clock import Clock


@dataclass(frozen=True)
class Limit:
    """An AWS-side token bucket's size: ``rate`` requests a second sustained, ``burst`` at once.

    The emulator's own type: it shares nothing with teiji's pacing (``engine.aws.bucket``), so
    teiji and the emulated AWS cannot agree by construction."""

    rate: float
    burst: float

    def __str__(self) -> str:
        return f"{self.rate:g}/{self.burst:g}"


# Amazon ECS API Reference, "Request throttling for the Amazon ECS API": per account and Region.
AWS_ECS_LIMITS: dict[str, Limit] = {
    "ecs_service_modify": Limit(5, 50),
    "ecs_service_read": Limit(20, 100),
    "ecs_cluster_read": Limit(20, 100),
    # DescribeTaskDefinition (the tick reads a task size once per revision for the savings
    # figures): the page lists the other read actions at 20/s, burst 100.
    "ecs_task_definition_read": Limit(20, 100),
}

# Elastic Load Balancing User Guide, "Request throttling for the Elastic Load Balancing API"
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html):
# per account and Region, ELB API version 2 has its own buckets; the non-mutating Describe*
# actions share a bucket of 40 tokens refilled at 10 a second (the page's own figures). The
# mutating target actions have buckets of their own; the stored copy of the page this was
# written from did not show their sizes, so they take a conservative 5 a second, burst 20
# (configurable: --elb-targets-rate). Services calling ELB on your behalf (ECS registering a
# service's tasks) use their own buckets, so the world's ECS emulation draws on none of these.
AWS_ELB_LIMITS: dict[str, Limit] = {
    "elb_describe": Limit(10, 40),
    "elb_register_targets": Limit(5, 20),
    "elb_deregister_targets": Limit(5, 20),
}

# Application Auto Scaling publishes no request rates (no throttling page, no Service Quotas
# entry for its API), yet throttles in practice. The emulator takes a conservative figure, the
# order of ELB's Describe* bucket: 10 a second, burst 40 (configurable: --aas-rate). Figures
# measured with it say so.
DEFAULT_AAS_LIMIT = Limit(10, 40)
# STS publishes no default bucket sizes either; AssumeRole is called once per account a tick.
DEFAULT_STS_LIMIT = Limit(10, 20)


def aws_limits(
    *, aas: Limit = DEFAULT_AAS_LIMIT, elb_targets: Limit | None = None
) -> dict[str, Limit]:
    """Every request-rate bucket the emulated AWS keeps per (account, region)."""
    limits = {**AWS_ECS_LIMITS, **AWS_ELB_LIMITS, "autoscaling": aas, "sts": DEFAULT_STS_LIMIT}
    if elb_targets is not None:
        limits["elb_register_targets"] = limits["elb_deregister_targets"] = elb_targets
    return limits


AWS_LIMITS: dict[str, Limit] = aws_limits()

# (botocore event service id, operation) -> throttling category, as the pages list them.
ACTION_CATEGORIES: dict[tuple[str, str], str] = {
    ("ecs", "CreateService"): "ecs_service_modify",
    ("ecs", "UpdateService"): "ecs_service_modify",
    ("ecs", "DeleteService"): "ecs_service_modify",
    ("ecs", "DescribeServices"): "ecs_service_read",
    ("ecs", "ListServices"): "ecs_service_read",
    ("ecs", "DescribeTasks"): "ecs_cluster_read",
    ("ecs", "ListTasks"): "ecs_cluster_read",
    ("ecs", "DescribeContainerInstances"): "ecs_cluster_read",
    ("ecs", "DescribeTaskDefinition"): "ecs_task_definition_read",
    ("elastic-load-balancing-v2", "RegisterTargets"): "elb_register_targets",
    # AWS's guide names the Describe* bucket only; a rule's change is paced with registration
    # (the smaller of the mutating buckets teiji knows), as teiji's own pacer assumes.
    ("elastic-load-balancing-v2", "ModifyRule"): "elb_register_targets",
    ("elastic-load-balancing-v2", "DeregisterTargets"): "elb_deregister_targets",
    ("sts", "AssumeRole"): "sts",
    ("sts", "GetCallerIdentity"): "sts",
}
# Kept for callers that name the ECS part only.
ECS_ACTION_CATEGORIES = {k: v for k, v in ACTION_CATEGORIES.items() if k[0] == "ecs"}


def category_of(
    service_id: str, operation: str, categories: Mapping[tuple[str, str], str] = ACTION_CATEGORIES
) -> str | None:
    """The bucket an action draws on: the table, then every Describe* of ELB, every action of
    Application Auto Scaling."""
    found = categories.get((service_id, operation))
    if found is not None or categories is not ACTION_CATEGORIES:
        return found
    if service_id == "elastic-load-balancing-v2" and operation.startswith("Describe"):
        return "elb_describe"
    if service_id == "application-auto-scaling":
        return "autoscaling"
    return None


# DynamoDB ----------------------------------------------------------------------------------
# DynamoDB throttles by capacity, not by request count: per table, read and write units a
# second. A read unit is up to 4 KB read, a write unit up to 1 KB written (transactions cost
# twice). Unused capacity is kept for up to 300 s (burst capacity). A table over its capacity
# answers ProvisionedThroughputExceededException (provisioned mode) or ThrottlingException
# (on-demand mode, over the table's maximum throughput; on-demand tables default to 40,000
# read and 40,000 write request units a second). teiji's tables are on-demand (infra/).
@dataclass(frozen=True)
class TableCapacity:
    read_units: float = 40_000
    write_units: float = 40_000
    mode: Literal["on-demand", "provisioned"] = "on-demand"
    burst_seconds: float = 300

    @property
    def error_code(self) -> str:
        if self.mode == "provisioned":
            return "ProvisionedThroughputExceededException"
        return "ThrottlingException"


DYNAMODB_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})
DYNAMODB_WRITES = frozenset(
    {"PutItem", "DeleteItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems"}
)
READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024


def dynamodb_tables(body: bytes) -> list[str]:
    """The tables a DynamoDB data-plane request touches, from its JSON body."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return []
    if "TableName" in request:
        return [str(request["TableName"])]
    if "RequestItems" in request:
        return sorted(request["RequestItems"])
    tables = set()
    for item in request.get("TransactItems") or []:
        for action in item.values():
            if isinstance(action, Mapping) and "TableName" in action:
                tables.add(str(action["TableName"]))
    return sorted(tables)


def write_units(operation: str, body: bytes) -> float:
    units = max(1, math.ceil(len(body) / WRITE_UNIT_BYTES))
    return 2.0 * units if operation == "TransactWriteItems" else float(units)


def read_units(answer: bytes) -> float:
    return float(max(1, math.ceil(len(answer) / READ_UNIT_BYTES)))


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

    def has_capacity(self) -> bool:
        """DynamoDB's way: a request is admitted while the table is not in debt; what it
        consumed is charged afterwards (``spend``), so one big read can take it below zero."""
        with self._lock:
            self._refill()
            return self._tokens > 0

    def spend(self, units: float) -> None:
        with self._lock:
            self._refill()
            self._tokens -= units

    def _refill(self) -> None:
        now = self.clock.monotonic()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._owed += elapsed * self.other
        taken = min(self._owed, max(0.0, self._tokens))
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
    url: str,
    status: int,
    code: str,
    message: str,
    *,
    request_id: str | None = None,
    content_type: str = "application/x-amz-json-1.1",
) -> AWSResponse:
    """An AWS JSON-protocol error answer (ECS, Application Auto Scaling and DynamoDB all use
    it): botocore parses the code from ``__type`` (the part after ``#`` when there is one)."""
    headers = HTTPHeaders()
    headers["x-amzn-RequestId"] = request_id or str(uuid.uuid4())
    headers["Content-Type"] = content_type
    body = json.dumps({"__type": code, "message": message}).encode()
    return AWSResponse(url, status, headers, ResponseBody(body))


def query_error_response(url: str, status: int, code: str, message: str) -> AWSResponse:
    """An AWS query-protocol (XML) error answer, as ELB and STS send them."""
    request_id = str(uuid.uuid4())
    body = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    headers = HTTPHeaders()
    headers["x-amzn-RequestId"] = request_id
    headers["Content-Type"] = "text/xml"
    return AWSResponse(url, status, headers, ResponseBody(body))


def throttling_response(service_id: str, url: str) -> AWSResponse:
    """The answer AWS gives when a request-rate bucket is empty: HTTP 400, ThrottlingException
    (JSON services) or Throttling (ELB and STS, query protocol)."""
    if service_id in _JSON_SERVICES:
        return json_error_response(url, 400, "ThrottlingException", "Rate exceeded")
    return query_error_response(url, 400, "Throttling", "Rate exceeded")


def capacity_response(url: str, capacity: TableCapacity, table: str) -> AWSResponse:
    """DynamoDB's answer when a table is over its capacity (HTTP 400, JSON 1.0)."""
    if capacity.mode == "provisioned":
        code = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
        message = (
            "The level of configured provisioned throughput for the table was exceeded. "
            "Consider increasing your provisioning level with the UpdateTable API."
        )
    else:
        code = "com.amazon.coral.availability#ThrottlingException"
        message = f"Throughput exceeds the current capacity of your table {table}."
    return json_error_response(url, 400, code, message, content_type="application/x-amz-json-1.0")


@dataclass
class Traffic:
    """What reached the emulated AWS: every request, those it throttled, and the CPU seconds
    the emulated AWS itself spent (moto answering, the emulator's bookkeeping), so that a
    caller's CPU can be told apart from AWS's in one process."""

    requests: Counter[str] = field(default_factory=Counter)  # "ecs.UpdateService" -> n
    throttled: Counter[str] = field(default_factory=Counter)
    aws_cpu_s: float = 0.0
    clock_cpu_s: float = 0.0  # of aws_cpu_s: the latency's sleeps on the (virtual) clock

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def total_throttled(self) -> int:
        return sum(self.throttled.values())

    def count(self, *operations: str) -> int:
        return sum(self.requests[name] for name in operations)

    def as_json(self) -> dict[str, object]:
        return {
            "requests": self.total,
            "throttled": self.total_throttled,
            "aws_cpu_s": round(self.aws_cpu_s, 3),
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
    """Latency, request-rate buckets and DynamoDB capacity in front of moto; see the module
    docstring."""

    def __init__(
        self,
        clock: Clock,
        *,
        latency: float = DEFAULT_LATENCY_S,
        limits: Mapping[str, Limit] = AWS_LIMITS,
        categories: Mapping[tuple[str, str], str] = ACTION_CATEGORIES,
        others: Mapping[str, float] | None = None,
        tables: Mapping[str, TableCapacity] | None = None,
        default_table: TableCapacity | None = TableCapacity(),
    ) -> None:
        """``others``: category -> the share of its bucket's rate another caller uses.
        ``tables``: table name -> its capacity (``default_table`` for the others; None: no
        capacity limit)."""
        from moto.core.models import botocore_stubber  # moto is a benchmark-only dependency

        self.clock = clock
        self.latency = latency
        self.limits = dict(limits)
        self.categories = categories
        self.traffic = Traffic()
        self.others = dict(others or {})
        self.tables = dict(tables or {})
        self.default_table = default_table
        self._moto = botocore_stubber
        self._buckets: dict[tuple[str, str, str], AwsBucket] = {}
        self._accounts: dict[str, str] = {}
        self._lock = threading.Lock()  # buckets, counters
        self._moto_lock = threading.Lock()  # one request inside moto at a time

    # The before-send handler ---------------------------------------------------------------
    def __call__(
        self, event_name: str, request: AWSPreparedRequest, **kwargs: Any
    ) -> AWSResponse | None:
        cpu_started = time.thread_time()  # this thread's CPU: AWS's share, not the caller's
        try:
            return self._answer(event_name, request, **kwargs)
        finally:
            spent = time.thread_time() - cpu_started
            with self._lock:
                self.traffic.aws_cpu_s += spent

    def _answer(
        self, event_name: str, request: AWSPreparedRequest, **kwargs: Any
    ) -> AWSResponse | None:
        _, service_id, operation = event_name.split(".", 2)
        account, region = self._scope(request)
        slept = time.thread_time()
        self.clock.sleep(self.latency)
        slept = time.thread_time() - slept
        with self._lock:
            self.traffic.clock_cpu_s += slept
        name = f"{service_id}.{operation}"
        url = request.url or ""
        category = category_of(service_id, operation, self.categories)
        refused: AWSResponse | None = None
        if not self._admit(account, region, category):
            refused = throttling_response(service_id, url)
        elif service_id == "dynamodb":
            refused = self._over_capacity(account, region, operation, request, url)
        with self._lock:
            self.traffic.requests[name] += 1
            if refused is not None:
                self.traffic.throttled[name] += 1
        if refused is not None:
            return refused
        with self._moto_lock:
            response: AWSResponse | None = self._moto(
                event_name=event_name, request=request, **kwargs
            )
        if service_id == "dynamodb" and operation in DYNAMODB_READS and response is not None:
            self._charge_reads(account, region, request, response)
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

    def table_bucket(self, account: str, region: str, table: str, kind: str) -> AwsBucket | None:
        """The capacity of ``table`` for ``kind`` ("read" or "write"); None: unlimited."""
        capacity = self.tables.get(table, self.default_table)
        if capacity is None:
            return None
        key = (account, region, f"dynamodb:{table}:{kind}")
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                units = capacity.read_units if kind == "read" else capacity.write_units
                bucket = AwsBucket(units, units * capacity.burst_seconds, self.clock)
                self._buckets[key] = bucket
            return bucket

    def _admit(self, account: str, region: str, category: str | None) -> bool:
        if category is None or category not in self.limits:
            return True
        return self.bucket(account, region, category).try_acquire()

    def _over_capacity(
        self, account: str, region: str, operation: str, request: AWSPreparedRequest, url: str
    ) -> AWSResponse | None:
        kind = "read" if operation in DYNAMODB_READS else "write"
        if operation not in DYNAMODB_READS and operation not in DYNAMODB_WRITES:
            return None  # the control plane (CreateTable, DescribeTable...) has no capacity
        body = _body(request)
        tables = dynamodb_tables(body)
        for table in tables:
            bucket = self.table_bucket(account, region, table, kind)
            if bucket is not None and not bucket.has_capacity():
                capacity = self.tables.get(table, self.default_table) or TableCapacity()
                return capacity_response(url, capacity, table)
        if kind == "write":
            units = write_units(operation, body) / max(1, len(tables))
            for table in tables:
                bucket = self.table_bucket(account, region, table, kind)
                if bucket is not None:
                    bucket.spend(units)
        return None

    def _charge_reads(
        self, account: str, region: str, request: AWSPreparedRequest, response: AWSResponse
    ) -> None:
        tables = dynamodb_tables(_body(request))
        units = read_units(response.content) / max(1, len(tables))
        for table in tables:
            bucket = self.table_bucket(account, region, table, "read")
            if bucket is not None:
                bucket.spend(units)

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


def _body(request: AWSPreparedRequest) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    return b""
