"""A request that reached the wake function, and which sleeping service it was for (pure).

An Application Load Balancer hands a Lambda target one JSON event per request
(``requestContext.elb.targetGroupArn``, ``httpMethod``, ``path``, ``headers`` or, with
multi-value headers on, ``multiValueHeaders``, and the query string). ``read_request`` checks
it and keeps only what deciding needs; anything else (a forged or cut event, a header that is
not text, a path with control characters) is a ``BadRequestError``, answered 400 and never acted on.

Which service: the request came through one of the rules teiji pointed at the wake target
group, and each such rule was saved first (``schemas.records.SavedRule``) with its conditions
and priority. The balancer is the one the wake target group serves (a target group serves one
load balancer); among its saved rules, those whose conditions match the request are the
candidates, and on each listener the balancer takes the lowest priority (the listener's default
rule last) -- so does ``services_for``. The listener is the one whose port the load balancer
puts in X-Forwarded-Port (records saved before teiji kept the port match on every listener).

Conditions are matched as ALB documents them: every condition of a rule must match, any value
of a condition may; host names and header values ignore case, paths do not; ``*`` is any run
of characters and ``?`` one (in a query-string condition ``\\*`` and ``\\?`` are the
characters themselves, as ALB documents). A condition of a kind not known here never matches
(a request is never taken for a service it might not be for).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from schemas.records import SavedRule

# ALB's own limits are larger; nothing teiji shows or matches needs more.
MAX_HOST = 253
MAX_PATH = 16384  # ALB: a request line of up to 16 KB
MAX_HEADERS = 200
MAX_HEADER_VALUE = 16384  # ALB: up to 16 KB per header
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$", re.ASCII)
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$", re.ASCII)


class BadRequestError(ValueError):
    """The event is not a request an ALB would send; the reason is for the logs (no input)."""


@dataclass(frozen=True)
class WakeRequest:
    """What deciding needs of one request: never the body, never the other headers' values
    beyond what a rule's conditions may test."""

    target_group: str
    method: str
    host: str  # lower case, without the port
    path: str
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # names lower case
    query: tuple[tuple[str, str], ...] = ()
    source_ip: str | None = None
    multi_value: bool = False  # answer in the form the request came in
    port: int | None = None  # the listener's port, as the load balancer says (X-Forwarded-Port)

    @property
    def shown(self) -> str:
        """``host/path`` as logs and overrides show it: one line, at most 200 characters."""
        text = f"{self.host}{self.path}"
        return text if len(text) <= 200 else text[:197] + "..."

    @property
    def browser(self) -> bool:
        """A person's browser asks for HTML; an API client, a probe or curl does not."""
        accept = ",".join(self.headers.get("accept", ()))
        return self.method in ("GET", "HEAD") and "text/html" in accept.lower()


def read_request(event: object) -> WakeRequest:
    """The request in an ALB Lambda-target event, or ``BadRequestError``."""
    if not isinstance(event, Mapping):
        raise BadRequestError("the event is not a JSON object")
    context = event.get("requestContext")
    elb = context.get("elb") if isinstance(context, Mapping) else None
    group = elb.get("targetGroupArn") if isinstance(elb, Mapping) else None
    if not isinstance(group, str) or not group or len(group) > 2048:
        raise BadRequestError("the event has no requestContext.elb.targetGroupArn")
    method = event.get("httpMethod")
    if not isinstance(method, str) or method not in METHODS:
        raise BadRequestError("httpMethod is missing or not an HTTP method")
    path = event.get("path")
    if not isinstance(path, str) or not path.startswith("/") or len(path) > MAX_PATH:
        raise BadRequestError("path is missing, not absolute or too long")
    if _has_control(path):
        raise BadRequestError("path holds control characters")
    multi = "multiValueHeaders" in event
    headers = _headers(event.get("multiValueHeaders") if multi else event.get("headers"), multi)
    host = _host(headers)
    query = _query(
        event.get("multiValueQueryStringParameters" if multi else "queryStringParameters"), multi
    )
    return WakeRequest(
        target_group=group,
        method=method,
        host=host,
        path=path,
        headers=headers,
        query=query,
        source_ip=_source_ip(headers),
        multi_value=multi,
        port=_port(headers),
    )


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch).startswith("C") for ch in text)


def _headers(raw: object, multi: bool) -> dict[str, tuple[str, ...]]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping) or len(raw) > MAX_HEADERS:
        raise BadRequestError("the headers are not a JSON object of at most 200 entries")
    found: dict[str, tuple[str, ...]] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise BadRequestError("a header name is not an HTTP token")
        values = value if multi else [value]
        if not isinstance(values, list) or not all(
            isinstance(v, str) and len(v) <= MAX_HEADER_VALUE for v in values
        ):
            raise BadRequestError("a header value is not text of at most 16 KB")
        found[name.lower()] = found.get(name.lower(), ()) + tuple(values)
    return found


def _host(headers: Mapping[str, tuple[str, ...]]) -> str:
    values = headers.get("host", ())
    if len(values) != 1 or not _HOST.match(values[0]):
        raise BadRequestError("the Host header is missing, repeated or not a host name")
    return values[0].rpartition(":")[0].lower() if ":" in values[0] else values[0].lower()


def _query(raw: object, multi: bool) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or len(raw) > MAX_HEADERS:
        raise BadRequestError("the query string parameters are not a JSON object")
    pairs: list[tuple[str, str]] = []
    for key, value in raw.items():
        values = value if multi else [value]
        if not isinstance(key, str) or not isinstance(values, list):
            raise BadRequestError("a query string parameter is not text")
        for one in values:
            if not isinstance(one, str):
                raise BadRequestError("a query string parameter is not text")
            # ALB passes them URL-encoded as the client sent them; rules match them decoded.
            pairs.append((unquote_plus(key), unquote_plus(one)))
    return tuple(pairs)


def _port(headers: Mapping[str, tuple[str, ...]]) -> int | None:
    """The listener port the load balancer received the request on (it sets the header)."""
    values = headers.get("x-forwarded-port", ())
    text = values[-1].strip() if values else ""
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def _source_ip(headers: Mapping[str, tuple[str, ...]]) -> str | None:
    """The client address the load balancer saw: the last entry it appended to
    X-Forwarded-For (earlier entries are the client's own claims)."""
    chain = ",".join(headers.get("x-forwarded-for", ()))
    last = chain.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last)) if last else None
    except ValueError:
        return None


# Matching ALB rule conditions ---------------------------------------------------------------
@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool, escapes: bool = False) -> re.Pattern[str]:
    """``*`` any run, ``?`` one character; with ``escapes`` (query strings, as ALB documents
    them) a backslash before ``*`` or ``?`` makes it the character itself."""
    parts = re.findall(r"\\[*?]|.", pattern, re.DOTALL) if escapes else list(pattern)
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch[-1]) for ch in parts)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _any_wild(
    patterns: Iterable[object], value: str, ignore_case: bool, escapes: bool = False
) -> bool:
    return any(
        isinstance(p, str) and _wildcard(p, ignore_case, escapes).match(value) is not None
        for p in patterns
    )


def _values(condition: Mapping[str, Any], config: str) -> list[Any]:
    """A condition's values: in its ``<Field>Config`` when given, else the legacy ``Values``."""
    inner = condition.get(config)
    if isinstance(inner, Mapping) and isinstance(inner.get("Values"), list):
        return list(inner["Values"])
    values = condition.get("Values")
    return list(values) if isinstance(values, list) else []


def condition_matches(condition: Mapping[str, Any], request: WakeRequest) -> bool:
    """Whether one ALB rule condition matches the request (unknown kinds never do)."""
    kind = condition.get("Field")
    if kind == "host-header":
        return _any_wild(_values(condition, "HostHeaderConfig"), request.host, True)
    if kind == "path-pattern":
        return _any_wild(_values(condition, "PathPatternConfig"), request.path, False)
    if kind == "http-request-method":
        return request.method in _values(condition, "HttpRequestMethodConfig")
    if kind == "http-header":
        config = condition.get("HttpHeaderConfig")
        if not isinstance(config, Mapping) or not isinstance(config.get("HttpHeaderName"), str):
            return False
        sent = request.headers.get(str(config["HttpHeaderName"]).lower(), ())
        return any(_any_wild(config.get("Values") or [], v, True) for v in sent)
    if kind == "query-string":
        return _query_matches(condition, request)
    if kind == "source-ip":
        return _source_matches(_values(condition, "SourceIpConfig"), request.source_ip)
    return False


def _query_matches(condition: Mapping[str, Any], request: WakeRequest) -> bool:
    config = condition.get("QueryStringConfig")
    pairs = config.get("Values") if isinstance(config, Mapping) else None
    if not isinstance(pairs, list):
        return False
    for pair in pairs:
        if not isinstance(pair, Mapping) or not isinstance(pair.get("Value"), str):
            continue
        key = pair.get("Key")
        for sent_key, sent_value in request.query:
            if key is not None and not _any_wild([key], sent_key, True, escapes=True):
                continue
            if _any_wild([pair["Value"]], sent_value, True, escapes=True):
                return True
    return False


def _source_matches(cidrs: Sequence[object], source: str | None) -> bool:
    if source is None:
        return False
    address = ipaddress.ip_address(source)
    for cidr in cidrs:
        try:
            if isinstance(cidr, str) and address in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def rule_matches(rule: SavedRule, request: WakeRequest) -> bool:
    """Every condition matches (a rule with none, the listener's default, matches all)."""
    return all(isinstance(c, Mapping) and condition_matches(c, request) for c in rule.conditions)


def _rank(rule: SavedRule) -> tuple[int, int]:
    """The order the balancer evaluates rules in: by priority, the default rule last."""
    text = rule.priority or ""
    return (0, int(text)) if text.isdigit() else (1, 0)


def services_for(request: WakeRequest, rules: Iterable[SavedRule], balancer: str) -> list[str]:
    """The keys of the services whose saved rule the balancer would have taken for the
    request: on each listener of ``balancer``, the first matching rule by priority."""
    from engine.wake_plan import balancer_of

    best: dict[str, SavedRule] = {}
    for rule in rules:
        if balancer_of(rule.listener_arn) != balancer or not rule_matches(rule, request):
            continue
        if request.port is not None and rule.port is not None and rule.port != request.port:
            continue  # another listener of the balancer: not the one the request came through
        held = best.get(rule.listener_arn)
        if held is None or _rank(rule) < _rank(held):
            best[rule.listener_arn] = rule
    return sorted({rule.key for rule in best.values()})
