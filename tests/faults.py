"""A fault layer between teiji and the AWS emulation, and crash points inside a tick.

``FaultLayer`` sits on botocore's ``before-send`` event of every client a teiji ``Clients``
hands out, so botocore's own retry machinery and error parsing see each injected failure
exactly as they would see one from AWS:

- ``throttling``: HTTP 400 ``ThrottlingException`` (retried by botocore as a throttle);
- ``http_500`` / ``http_503``: an internal error or "service unavailable" answer;
- ``connection_reset``: ``ConnectionClosedError`` before the request reaches AWS;
- ``read_timeout``: ``ReadTimeoutError`` before the request reaches AWS;
- ``lost_answer``: the request IS carried out, then the answer is lost (``ReadTimeoutError``):
  the case that tests whether a retried write is safe to repeat;
- ``concurrent_update``: Application Auto Scaling's ``ConcurrentUpdateException`` (only on its
  write operations, which is where AWS raises it).

Whether a request fails is drawn from a ``random.Random`` seeded with the layer's seed, the
request itself (operation and body, with random tokens such as the lease holder's id blanked)
and how many times that same request was seen before. The tick works services on several
threads, so requests interleave differently from run to run; the draws do not depend on that
order, and a run is reproducible.

In-process (``moto.mock_aws``) the layer takes the place of moto's own ``before-send`` hook on
the clients it is attached to and forwards every request that is not failed, one at a time
(``serialize``, on by default): each request is then atomic as it is on AWS, which moto alone
is not under threads (a conditional write is a read then a write). Against moto's server the
forwarded requests go over HTTP as usual.

``CrashAfter(k)`` is a ``Clients.before_call`` hook that raises ``Crash`` (a BaseException, so
no ``except Exception`` in the tick can swallow it) at the first call after ``k`` writes: the
process is gone at that point, as after a Lambda timeout or an out-of-memory kill.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from bench.emulator import json_error_response
from engine.aws.clients import Clients
from engine.aws.operations import Operation
from engine.report import TickReport
from engine.tick import run_tick
from schemas.records import SuspendedState
from tests.world import ACCOUNT, DIMENSION, REGION, CallLog, World, on_new_clients

FaultKind = Literal[
    "throttling",
    "http_500",
    "http_503",
    "connection_reset",
    "read_timeout",
    "lost_answer",
    "concurrent_update",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
# Application Auto Scaling raises ConcurrentUpdateException on the calls that change a target.
_CONCURRENT_UPDATE_OPERATIONS = frozenset({"RegisterScalableTarget", "DeregisterScalableTarget"})
_FORWARD_LOCK = threading.Lock()
# Random tokens in request bodies (the lease holder's uuid4 hex): blanked before drawing.
_RANDOM_TOKEN = re.compile(rb"[0-9a-f]{32}")


def zero_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """No sleeping between retries: botocore's standard backoff and teiji's own retry of
    ConcurrentUpdateException both wait zero seconds (the retries themselves still happen)."""
    from botocore.retries import standard

    import engine.aws.autoscaling

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr(engine.aws.autoscaling, "_sleep", lambda seconds: None)


def error_response(url: str, status: int, code: str, message: str) -> AWSResponse:
    """An AWS JSON-protocol error answer, as the benchmark's emulated AWS gives it."""
    return json_error_response(url, status, code, message, request_id="fault-layer")


@dataclass
class FaultStats:
    """What went through the layer: requests by operation, faults by kind and by operation."""

    requests: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    injected_by_operation: Counter[str] = field(default_factory=Counter)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())


class FaultLayer:
    """Fails a seeded share of requests with the chosen kinds of faults.

    ``rate`` is the probability per request (retries are requests too); ``operations`` limits
    the faults to those operation names (None: every operation); ``enabled`` can be switched
    off to let the world heal.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        rate: float = 0.0,
        kinds: Sequence[FaultKind] = FAULT_KINDS,
        operations: Collection[str] | None = None,
        serialize: bool = True,
    ) -> None:
        self.seed = seed
        self.rate = rate
        self.kinds = tuple(kinds)
        self.operations = frozenset(operations) if operations is not None else None
        self.serialize = serialize
        self.enabled = True
        self.stats = FaultStats()
        self._seen: Counter[bytes] = Counter()
        self._lock = threading.Lock()

    def attach(self, clients: Clients) -> Clients:
        def hook(service: str, client: Any) -> None:
            from moto.core.models import botocore_stubber

            # This layer forwards to moto itself, after deciding whether to fail the request.
            client.meta.events.unregister("before-send", botocore_stubber)
            client.meta.events.register_first("before-send.*.*", self._before_send)

        return on_new_clients(clients, hook)

    def _before_send(
        self, request: AWSPreparedRequest, event_name: str, **_: Any
    ) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        kind = self._draw(operation, request.body)
        if kind is None:
            return self._forward(event_name, request)
        url = request.url
        if kind == "throttling":
            return error_response(url, 400, "ThrottlingException", "Rate exceeded")
        if kind == "http_500":
            return error_response(url, 500, "InternalFailure", "injected internal error")
        if kind == "http_503":
            return error_response(url, 503, "ServiceUnavailable", "injected: unavailable")
        if kind == "concurrent_update":
            return error_response(
                url, 400, "ConcurrentUpdateException", "injected: another update is in progress"
            )
        if kind == "connection_reset":
            raise ConnectionClosedError(endpoint_url=url, request=request)
        if kind == "lost_answer":
            self._forward(event_name, request)  # carried out; the answer never arrives
        raise ReadTimeoutError(endpoint_url=url, request=request)

    def _draw(self, operation: str, body: object) -> FaultKind | None:
        raw = body if isinstance(body, bytes) else str(body or "").encode()
        identity = hashlib.sha256(
            operation.encode() + b"|" + _RANDOM_TOKEN.sub(b"-", raw)
        ).hexdigest()
        with self._lock:
            self.stats.requests[operation] += 1
            seen = self._seen[identity.encode()]
            self._seen[identity.encode()] += 1
        if not self.enabled or self.rate <= 0:
            return None
        if self.operations is not None and operation not in self.operations:
            return None
        rng = random.Random(f"{self.seed}|{identity}|{seen}")
        if rng.random() >= self.rate:
            return None
        kinds = [
            k
            for k in self.kinds
            if k != "concurrent_update" or operation in _CONCURRENT_UPDATE_OPERATIONS
        ]
        if not kinds:
            return None
        kind = rng.choice(kinds)
        with self._lock:
            self.stats.injected[kind] += 1
            self.stats.injected_by_operation[operation] += 1
        return kind

    def _forward(self, event_name: str, request: AWSPreparedRequest) -> AWSResponse | None:
        from moto.core.models import botocore_stubber

        if not botocore_stubber.enabled:
            return None  # server mode: botocore sends the request over HTTP
        if not self.serialize:
            response: AWSResponse | None = botocore_stubber(event_name, request)
            return response
        with _FORWARD_LOCK:
            response = botocore_stubber(event_name, request)
        return response


class InstantClock:
    """A pacing clock on which waiting takes no time: ``sleep`` only moves it forward.

    The tick's pacer waits for tokens (and drains its bucket after a throttle); on this clock
    those waits cost nothing, so a simulated week stays fast while pacing still runs.
    """

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._now += seconds


def logged_tick(world: World, when: datetime) -> tuple[CallLog, TickReport]:
    """One tick of ``world`` at ``when`` with every call logged, paced as in production on a
    clock where waiting for tokens takes no time (100 stops inside ECS's 5/s would otherwise
    take seconds of real time)."""
    log = CallLog()
    report = run_tick(
        log.attach(world.clients()),
        world.settings,
        at=when,
        dry_run=False,
        pacing_clock=InstantClock(),
    )
    return log, report


class Crash(BaseException):
    """The process running the tick is gone (Lambda timeout, out of memory)."""


class CrashAfter:
    """``Clients.before_call`` hook: raise ``Crash`` at the first call after ``writes`` writes.

    Once crashed, every later call raises too, so nothing the tick tries afterwards (such as
    releasing its lease in a ``finally``) reaches AWS: the process is gone.
    """

    def __init__(self, writes: int) -> None:
        self.limit = writes
        self.writes = 0
        self.crashed = False
        self.write_log: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, operation: Operation, account: str | None, region: str) -> None:
        with self._lock:
            if self.crashed or self.writes >= self.limit:
                self.crashed = True
                raise Crash(f"crashed after {self.writes} write(s)")
            if operation.write:
                self.writes += 1
                self.write_log.append(operation.name)

    def attach(self, clients: Clients) -> Clients:
        clients.before_call.append(self)
        return clients


class WriteCounter:
    """``Clients.before_call`` hook counting the writes (by operation name) a run makes."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, operation: Operation, account: str | None, region: str) -> None:
        if operation.write:
            with self._lock:
                self.writes.append(operation.name)

    def attach(self, clients: Clients) -> Clients:
        clients.before_call.append(self)
        return clients


# Reading the emulated world without going through any client --------------------------------------
@dataclass(frozen=True)
class Capacity:
    """A service's capacity, SuspendedState normalised (a missing flag is false, as in AWS)."""

    desired: int
    min: int | None = None
    max: int | None = None
    suspended: SuspendedState | None = None

    @classmethod
    def of(
        cls,
        desired: int,
        target: tuple[int, int] | None = None,
        suspended: Mapping[str, bool] | None = None,
    ) -> Capacity:
        """``Capacity.of(3, (2, 6), {"in": True})`` in the helpers' short names."""
        if target is None:
            return cls(desired)
        names = {"in": "dynamic_in", "out": "dynamic_out", "scheduled": "scheduled"}
        flags = SuspendedState(**{names[k]: v for k, v in (suspended or {}).items()})
        return cls(desired, target[0], target[1], flags)

    def in_stopped_shape(self, stopped: int) -> bool:
        """What a teiji stop leaves: desired S and, with a target, Min = Max = S, all suspended."""
        if self.desired != stopped:
            return False
        if self.min is None:
            return True
        return (
            self.min == self.max == stopped
            and self.suspended is not None
            and self.suspended.all_suspended
        )


def capacities(account: str = ACCOUNT, region: str = REGION) -> dict[str, Capacity]:
    """Every ECS service's capacity in moto's in-process backends, by ``cluster/service``.

    Reads moto's state directly: no request, so no fault and no call log entry, and fast
    enough to run after every tick of a simulated week.
    """
    from moto.applicationautoscaling.models import applicationautoscaling_backends
    from moto.ecs.models import ecs_backends

    services: dict[str, Any] = dict(ecs_backends[account][region].services)
    targets: dict[str, Any] = dict(
        applicationautoscaling_backends[account][region].targets.get(DIMENSION, {})
    )
    found: dict[str, Capacity] = {}
    for pair, service in services.items():
        if str(getattr(service, "status", "ACTIVE")) != "ACTIVE":
            continue
        cluster, _, name = pair.partition(":")
        target = targets.get(f"service/{cluster}/{name}")
        if target is None:
            found[f"{cluster}/{name}"] = Capacity(int(service.desired_count))
            continue
        found[f"{cluster}/{name}"] = Capacity(
            int(service.desired_count),
            int(target.min_capacity),
            int(target.max_capacity),
            SuspendedState.from_aws(target.suspended_state),
        )
    return found


def stored_items(
    table: str, pk: str, account: str = ACCOUNT, region: str = REGION
) -> dict[str, dict[str, Any]]:
    """The items of one partition of a table in moto's in-process backend, by sort key, as plain
    Python values (what ``World.baseline`` returns), without a request."""
    from moto.dynamodb.models import dynamodb_backends

    from engine.store import from_attribute_map, plain

    found: dict[str, dict[str, Any]] = {}
    partitions: dict[Any, Any] = dynamodb_backends[account][region].get_table(table).items
    for hash_key, by_range in partitions.items():
        if hash_key.value != pk:
            continue
        for item in by_range.values():
            data = plain(from_attribute_map(item.to_json()["Attributes"]))
            found[str(data["sk"])] = data
    return found


def baseline_capacity(baseline: Mapping[str, Any]) -> Capacity:
    """The capacity a stored baseline item (as ``World.baseline`` returns it) would restore."""
    if baseline.get("min_capacity") is None:
        return Capacity(int(baseline["desired_count"]))
    return Capacity(
        int(baseline["desired_count"]),
        int(baseline["min_capacity"]),
        int(baseline["max_capacity"]),
        SuspendedState.model_validate(baseline.get("suspended") or {}),
    )


@contextmanager
def hooked(clients: Clients, hook: Callable[[Operation, str | None, str], None]) -> Iterator[None]:
    """Run ``hook`` ahead of every call ``clients`` makes inside the block."""
    clients.before_call.append(hook)
    try:
        yield
    finally:
        clients.before_call.remove(hook)


def fast_dynamodb_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answer moto's DynamoDB results with ``json.dumps`` instead of its generic serializer.

    DynamoDB's JSON protocol names every member as the API does, so the body is the same; the
    generic serializer walks every attribute value against the service model, which makes a
    simulated week of ticks several times slower. Results that are not plain JSON (binary
    values, timestamps) still go through moto's serializer.
    """
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        try:
            body = json.dumps(_without_none(self.result))
        except TypeError:
            return original(self, context)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    monkeypatch.setattr(DynamoResult, "execute_result", execute_result)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def refuse_listing(monkeypatch: pytest.MonkeyPatch, cluster: str) -> None:
    """ListServices of ``cluster`` answers AccessDenied (a cluster that does not exist is
    simply empty: an allowed name need not exist in every allowed account and region)."""
    from botocore.exceptions import ClientError

    from engine.aws import ecs

    real = ecs.list_service_names

    def listing(client: Any, name: str) -> list[str]:
        if name == cluster:
            error = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}
            raise ClientError(error, "ListServices")
        return real(client, name)

    monkeypatch.setattr(ecs, "list_service_names", listing)
