"""Answers that arrive whole at the HTTP level but cannot be trusted: cut, garbled, or
missing parts.

``CorruptAnswers`` sits on botocore's ``before-send`` event of every client a teiji
``Clients`` hands out. For a chosen operation it sends the request to moto's server itself
(over HTTP, with botocore's own urllib3 session), takes the real answer and hands botocore
that answer's status and headers with a changed body: cut short, garbled, or rewritten as
JSON that parses but lacks what the operation returns. The request is carried out on the
server as usual; only what comes back is damaged. Against moto's server only (the
``endpoint`` fixture): in-process there is no HTTP answer to damage.

    answers = CorruptAnswers().cut("DescribeScalableTargets", times=1)
    answers.attach(clients)
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.httpsession import URLLib3Session

from engine.aws.clients import Clients
from tests.world import on_new_clients

Mangle = Callable[[bytes], bytes]


def cut(body: bytes) -> bytes:
    """The first half of the body, as when the connection closes part way."""
    return body[: max(1, len(body) // 2)]


def garble(body: bytes) -> bytes:
    """Bytes in the middle overwritten (a faulty proxy, a broken buffer)."""
    middle = len(body) // 2
    return body[:middle] + b"\x00}{\x7f" + body[middle + 4 :]


def as_json(value: Any) -> Mangle:
    """A valid JSON body of the caller's choosing, whatever the real answer was."""
    return lambda body: json.dumps(value).encode()


def edit(change: Callable[[dict[str, Any]], None]) -> Mangle:
    """The real answer, parsed, changed in place by ``change``, and written again."""

    def mangle(body: bytes) -> bytes:
        try:
            value = json.loads(body)
        except ValueError:
            return body
        change(value)
        return json.dumps(value).encode()

    return mangle


@dataclass
class _Rule:
    operation: str
    mangle: Mangle
    when: Callable[[dict[str, Any]], bool]
    times: int | None
    status: int | None = None


class _Body:
    """The ``raw`` of an AWSResponse: what botocore streams the body from."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


class CorruptAnswers:
    """Damage the answers to chosen operations; ``damaged`` counts them by operation."""

    def __init__(self) -> None:
        self.rules: list[_Rule] = []
        self.damaged: Counter[str] = Counter()
        self._http = URLLib3Session()
        self._lock = threading.Lock()

    def answer(
        self,
        operation: str,
        mangle: Mangle,
        *,
        when: Callable[[dict[str, Any]], bool] = lambda _: True,
        times: int | None = 1,
        status: int | None = None,
    ) -> CorruptAnswers:
        """Damage the next ``times`` answers (None: every one) to requests ``when`` accepts
        (it gets the request's JSON body); ``status`` replaces the answer's status code."""
        self.rules.append(_Rule(operation, mangle, when, times, status))
        return self

    def cut(self, operation: str, **kwargs: Any) -> CorruptAnswers:
        return self.answer(operation, cut, **kwargs)

    def attach(self, clients: Clients) -> Clients:
        def hook(service: str, client: Any) -> None:
            client.meta.events.register_first("before-send.*.*", self._before_send)

        return on_new_clients(clients, hook)

    def _rule(self, operation: str, request: AWSPreparedRequest) -> _Rule | None:
        try:
            params = json.loads(request.body or b"{}")
        except (TypeError, ValueError):
            params = {}
        with self._lock:
            for rule in self.rules:
                if rule.operation == operation and rule.times != 0 and rule.when(params):
                    if rule.times is not None:
                        rule.times -= 1
                    self.damaged[operation] += 1
                    return rule
        return None

    def _before_send(
        self, request: AWSPreparedRequest, event_name: str, **_: Any
    ) -> AWSResponse | None:
        rule = self._rule(event_name.rsplit(".", 1)[-1], request)
        if rule is None:
            return None
        real = self._http.send(request)
        body = rule.mangle(real.content)
        # The body's own checksums would give the damage away; a proxy that cuts an answer
        # short sends none, so neither does this one.
        headers = {
            name: value
            for name, value in real.headers.items()
            if name.lower() not in ("content-length", "x-amz-crc32")
        }
        headers["content-length"] = str(len(body))
        status = rule.status if rule.status is not None else real.status_code
        return AWSResponse(request.url, status, headers, _Body(body))
