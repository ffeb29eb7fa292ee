"""Reading ALB events and matching saved rules to a request (pure): tables, then properties."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.wake_request import (
    BadRequestError,
    WakeRequest,
    condition_matches,
    read_request,
    services_for,
)
from schemas.records import SavedRule
from tests.wakeworld import alb_event

PREFIX = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
WAKE_TG = PREFIX + "targetgroup/teiji-wake-0/0123456789abcdef"
LB = PREFIX + "loadbalancer/app/stg/0123456789abcdef"
LISTENER = PREFIX + "listener/app/stg/0123456789abcdef/1111111111111111"
LISTENER_443 = PREFIX + "listener/app/stg/0123456789abcdef/2222222222222222"
OTHER_LISTENER = PREFIX + "listener/app/dev/fedcba9876543210/3333333333333333"
AT = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def request(**event: Any) -> WakeRequest:
    return read_request(alb_event(WAKE_TG, **event))


def saved(
    key: str,
    conditions: list[dict[str, Any]],
    priority: str | None = "10",
    listener: str = LISTENER,
    rule: str = "r1",
    port: int | None = None,
) -> SavedRule:
    return SavedRule(
        key=key,
        rule_arn=f"{listener}/{rule}".replace(":listener/", ":listener-rule/"),
        listener_arn=listener,
        actions=[{"Type": "forward", "TargetGroupArn": PREFIX + "targetgroup/svc/1"}],
        conditions=conditions,
        priority=priority,
        port=port,
        saved_at=AT,
        version="v1",
    )


def host(*values: str) -> dict[str, Any]:
    return {"Field": "host-header", "HostHeaderConfig": {"Values": list(values)}}


def path(*values: str) -> dict[str, Any]:
    return {"Field": "path-pattern", "Values": list(values)}


# Reading the event ---------------------------------------------------------------------------
def test_the_request_keeps_what_deciding_needs() -> None:
    got = request(host="STG.Example.com:8443", path="/a/b", browser=True)
    assert (got.host, got.path, got.method, got.target_group) == (
        "stg.example.com",
        "/a/b",
        "GET",
        WAKE_TG,
    )
    assert got.browser and got.source_ip == "203.0.113.7" and not got.multi_value
    assert got.shown == "stg.example.com/a/b"


def test_multi_value_events_are_read_alike() -> None:
    got = request(multi_value=True)
    assert got.multi_value and got.host == "stg.example.com"


def test_an_api_client_and_a_post_are_not_browsers() -> None:
    assert not request(browser=False).browser
    assert not request(method="POST").browser


def test_the_client_address_is_the_last_the_load_balancer_appended() -> None:
    got = request(x_forwarded_for="10.9.9.9, 198.51.100.4")
    assert got.source_ip == "198.51.100.4"


def _with(**changes: Any) -> dict[str, Any]:
    event = alb_event(WAKE_TG)
    event.update(changes)
    return event


def _headers(**changes: Any) -> dict[str, Any]:
    return _with(headers={**alb_event(WAKE_TG)["headers"], **changes})


@pytest.mark.parametrize(
    "event",
    [
        None,
        "GET / HTTP/1.1",
        [],
        {},
        _with(requestContext={}),
        _with(requestContext={"elb": {"targetGroupArn": ""}}),
        _with(httpMethod="BREW"),
        _with(httpMethod=None),
        _with(path="relative"),
        _with(path="/" + "a" * 17000),
        _with(path="/\x00"),
        _with(path="/\u202e"),
        _with(headers=None, multiValueHeaders={"host": "not-a-list"}),
        _with(headers=[("host", "x")]),
        _headers(host="<script>"),
        _headers(host="a b"),
        _headers(host=""),
        _headers(**{"bad header": "x"}),
        _headers(x_big="x" * 17000),
        _with(headers={f"h{i}": "v" for i in range(300)}),
        _with(queryStringParameters={"a": ["list"]}),
        _with(queryStringParameters="a=b"),
    ],
)
def test_anything_an_alb_would_not_send_is_a_bad_request(event: Any) -> None:
    with pytest.raises(BadRequestError):
        read_request(event)


def test_a_missing_host_is_a_bad_request() -> None:
    event = alb_event(WAKE_TG)
    del event["headers"]["host"]
    with pytest.raises(BadRequestError):
        read_request(event)


def test_the_reason_never_holds_the_input() -> None:
    with pytest.raises(BadRequestError) as caught:
        read_request(_headers(host="<script>alert(1)</script>"))
    assert "<script>" not in str(caught.value)


# Conditions -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("condition", "event", "expected"),
    [
        (host("stg.example.com"), {}, True),
        (host("STG.EXAMPLE.COM"), {}, True),
        (host("*.example.com"), {}, True),
        (host("stg.example.co?"), {}, True),
        (host("dev.example.com"), {}, False),
        (host("example.com"), {}, False),
        ({"Field": "host-header", "Values": ["stg.*"]}, {}, True),
        (path("/api/*"), {"path": "/api/users"}, True),
        (path("/API/*"), {"path": "/api/users"}, False),  # paths are case-sensitive
        (path("/api"), {"path": "/api/users"}, False),
        (path("/a?c"), {"path": "/abc"}, True),
        (path("*"), {"path": "/"}, True),
        (
            {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}},
            {},
            False,
        ),
        (
            {
                "Field": "http-header",
                "HttpHeaderConfig": {"HttpHeaderName": "User-Agent", "Values": ["*mozilla*"]},
            },
            {},
            True,
        ),
        (
            {
                "Field": "http-header",
                "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["1"]},
            },
            {},
            False,
        ),
        (
            {
                "Field": "query-string",
                "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}]},
            },
            {"queryStringParameters": {"v": "2"}},
            True,
        ),
        (
            {"Field": "query-string", "QueryStringConfig": {"Values": [{"Value": "beta"}]}},
            {"queryStringParameters": {"channel": "BETA"}},
            True,
        ),
        (
            {
                "Field": "query-string",
                "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}]},
            },
            {},
            False,
        ),
        ({"Field": "source-ip", "SourceIpConfig": {"Values": ["203.0.113.0/24"]}}, {}, True),
        ({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}, {}, False),
        ({"Field": "source-ip", "SourceIpConfig": {"Values": ["not-a-cidr"]}}, {}, False),
        ({"Field": "something-new", "Values": ["*"]}, {}, False),
        ({"Values": ["*"]}, {}, False),
    ],
)
def test_conditions_match_as_alb_documents_them(
    condition: dict[str, Any], event: dict[str, Any], expected: bool
) -> None:
    sent = alb_event(WAKE_TG, path=event.pop("path", "/"))
    sent.update(event)
    assert condition_matches(condition, read_request(sent)) is expected


# Which service ---------------------------------------------------------------------------
def test_the_lowest_priority_on_a_listener_wins_and_the_default_comes_last() -> None:
    rules = [
        saved("c1/catch-all", [], priority="default", rule="d"),
        saved("c1/api", [host("stg.example.com"), path("/api/*")], priority="5", rule="a"),
        saved("c1/web", [host("stg.example.com")], priority="20", rule="w"),
    ]
    assert services_for(request(path="/api/x"), rules, LB) == ["c1/api"]
    assert services_for(request(path="/home"), rules, LB) == ["c1/web"]
    assert services_for(request(host="other.example.com"), rules, LB) == ["c1/catch-all"]


def test_priorities_compare_as_numbers() -> None:
    rules = [
        saved("c1/late", [host("*")], priority="100", rule="x"),
        saved("c1/early", [host("*")], priority="9", rule="y"),
    ]
    assert services_for(request(), rules, LB) == ["c1/early"]


def test_each_listener_of_the_balancer_answers_and_others_never() -> None:
    rules = [
        saved("c1/web", [host("stg.example.com")], listener=LISTENER),
        saved("c1/web-tls", [host("stg.example.com")], listener=LISTENER_443, rule="t"),
        saved("c9/dev", [host("*")], listener=OTHER_LISTENER, rule="o"),
    ]
    assert services_for(request(), rules, LB) == ["c1/web", "c1/web-tls"]


def test_the_listener_is_the_one_the_request_came_through() -> None:
    rules = [
        saved("c1/web", [host("stg.example.com")], listener=LISTENER, port=80),
        saved("c1/web-tls", [host("stg.example.com")], listener=LISTENER_443, rule="t", port=443),
    ]
    assert services_for(request(), rules, LB) == ["c1/web"]  # x-forwarded-port: 80
    assert services_for(request(x_forwarded_port="443"), rules, LB) == ["c1/web-tls"]
    # A record saved without its port (before teiji kept it) still matches on any listener.
    old = [saved("c1/web", [host("stg.example.com")], listener=LISTENER_443, rule="o")]
    assert services_for(request(), old, LB) == ["c1/web"]


def test_no_matching_rule_means_no_service() -> None:
    assert services_for(request(), [saved("c1/web", [host("dev.example.com")])], LB) == []
    assert services_for(request(), [], LB) == []


@given(
    st.lists(
        st.tuples(st.sampled_from(["c1/a", "c1/b", "c1/c"]), st.integers(1, 50_000)),
        min_size=1,
        max_size=8,
        unique_by=lambda t: t[1],
    )
)
def test_of_rules_that_all_match_the_lowest_priority_is_taken(
    entries: list[tuple[str, int]],
) -> None:
    rules = [saved(k, [host("*")], priority=str(p), rule=str(p)) for k, p in entries]
    expected = min(entries, key=lambda entry: entry[1])[0]
    assert services_for(request(), rules, LB) == [expected]


@given(st.text(min_size=1, max_size=40))
def test_a_literal_pattern_matches_only_itself(text: str) -> None:
    literal = text.replace("*", "").replace("?", "") or "x"
    condition = path("/" + literal)
    sent = alb_event(WAKE_TG, path="/" + literal)
    try:
        parsed = read_request(sent)
    except BadRequestError:
        return  # control characters: never read, never matched
    assert condition_matches(condition, parsed)
    other = read_request(alb_event(WAKE_TG, path="/" + literal + "x"))
    assert not condition_matches(condition, other)
