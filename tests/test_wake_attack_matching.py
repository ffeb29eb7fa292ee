"""Attacking the wake function's reading and matching from the world's side (pure): what an
ALB really sends (a browser's big cookie, long URLs, ports and capitals in the host, chains
of X-Forwarded-For), rule conditions exactly as the ELB documentation states them (a path
pattern never sees the query string and minds case; query-string values escape a literal
``*`` or ``?`` with a backslash; a query-string condition without a key), and what the answer
claims (never cached, Retry-After where a retry helps, the header form the request came in,
nothing of the input unescaped)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.wake_answer import Answer, respond
from engine.wake_request import (
    BadRequestError,
    WakeRequest,
    condition_matches,
    read_request,
    rule_matches,
    services_for,
)
from schemas.records import SavedRule
from tests.wakeworld import alb_event

PREFIX = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
WAKE_TG = PREFIX + "targetgroup/teiji-wake-0/0123456789abcdef"
LB = PREFIX + "loadbalancer/app/stg/0123456789abcdef"
LISTENER = PREFIX + "listener/app/stg/0123456789abcdef/1111111111111111"
AT = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def request(**event: Any) -> WakeRequest:
    return read_request(alb_event(WAKE_TG, **event))


def with_query(event: dict[str, Any], query: dict[str, Any]) -> WakeRequest:
    key = "multiValueQueryStringParameters" if "multiValueHeaders" in event else None
    event[key or "queryStringParameters"] = query
    return read_request(event)


def query(*pairs: tuple[str | None, str]) -> dict[str, Any]:
    values = [{"Value": v} if k is None else {"Key": k, "Value": v} for k, v in pairs]
    return {"Field": "query-string", "QueryStringConfig": {"Values": values}}


def saved(key: str, conditions: list[dict[str, Any]], priority: str = "10") -> SavedRule:
    return SavedRule(
        key=key,
        rule_arn=f"{LISTENER}/{key.replace('/', '-')}".replace(":listener/", ":listener-rule/"),
        listener_arn=LISTENER,
        actions=[{"Type": "forward", "TargetGroupArn": PREFIX + "targetgroup/svc/1"}],
        conditions=conditions,
        priority=priority,
        saved_at=AT,
        version="v1",
    )


# What a real browser sends through an ALB -----------------------------------------------------
# ALB's quotas: a request line and each single header up to 16 KB, all headers 64 KB.


def test_a_browser_with_a_ten_kilobyte_cookie_is_a_request_not_a_bad_one() -> None:
    got = request(cookie="session=" + "a" * 10_000)
    assert got.host == "stg.example.com"
    assert got.browser


def test_a_long_url_within_albs_request_line_is_a_request() -> None:
    long_path = "/app/" + "s" * 8000  # single-page apps keep state in the path
    assert request(path=long_path).path == long_path


def test_more_than_albs_single_header_quota_is_still_refused() -> None:
    with pytest.raises(BadRequestError):
        request(cookie="c" * 17_000)


def test_a_host_with_a_port_and_capitals_matches_its_lower_case_name() -> None:
    got = request(host="STG.Example.COM:8443")
    assert got.host == "stg.example.com"
    rule = saved("c1/web", [{"Field": "host-header", "Values": ["*.example.com"]}])
    assert rule_matches(rule, got)


def test_the_client_address_is_the_last_of_a_spoofed_chain() -> None:
    got = request(x_forwarded_for="10.9.9.9, 192.0.2.1 ,  203.0.113.50")
    assert got.source_ip == "203.0.113.50"
    inside = {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}
    assert not condition_matches(inside, got), "the client's own claim is never its address"
    office = {"Field": "source-ip", "SourceIpConfig": {"Values": ["203.0.113.0/24"]}}
    assert condition_matches(office, got)


def test_a_forwarded_for_that_is_not_an_address_matches_no_source_ip_rule() -> None:
    got = request(x_forwarded_for="unknown")
    anywhere = {"Field": "source-ip", "SourceIpConfig": {"Values": ["0.0.0.0/0", "::/0"]}}
    assert got.source_ip is None and not condition_matches(anywhere, got)


# Conditions as the ELB documentation states them ----------------------------------------------
def test_a_path_pattern_never_sees_the_query_string() -> None:
    event = alb_event(WAKE_TG, path="/search")
    got = with_query(event, {"q": "report"})
    assert condition_matches({"Field": "path-pattern", "Values": ["/search"]}, got)
    assert not condition_matches({"Field": "path-pattern", "Values": ["/search?q=*"]}, got)


def test_a_path_pattern_minds_case_and_a_host_does_not() -> None:
    got = request(path="/API/v1", host="Stg.Example.com")
    assert not condition_matches({"Field": "path-pattern", "Values": ["/api/*"]}, got)
    assert condition_matches({"Field": "path-pattern", "Values": ["/API/*"]}, got)
    assert condition_matches({"Field": "host-header", "Values": ["STG.EXAMPLE.COM"]}, got)


def test_a_question_mark_in_a_path_pattern_is_one_character() -> None:
    got = request(path="/v1/items")
    assert condition_matches({"Field": "path-pattern", "Values": ["/v?/items"]}, got)
    assert not condition_matches({"Field": "path-pattern", "Values": ["/v??/items"]}, got)


def test_an_http_header_with_several_values_matches_any_and_ignores_case() -> None:
    event = alb_event(WAKE_TG, multi_value=True)
    event["multiValueHeaders"]["x-tenant"] = ["blue", "GREEN"]
    got = read_request(event)

    def header(*values: str) -> dict[str, Any]:
        config = {"HttpHeaderName": "X-Tenant", "Values": list(values)}
        return {"Field": "http-header", "HttpHeaderConfig": config}

    assert condition_matches(header("green"), got)
    assert not condition_matches(header("red"), got)


def test_a_query_string_condition_without_a_key_matches_any_keys_value() -> None:
    got = with_query(alb_event(WAKE_TG), {"env": "Staging", "x": "1"})
    assert condition_matches(query((None, "staging")), got)
    assert not condition_matches(query((None, "prod")), got)
    assert condition_matches(query(("ENV", "stag*")), got)


def test_a_multi_value_query_string_matches_any_of_its_values() -> None:
    event = alb_event(WAKE_TG, multi_value=True)
    got = with_query(event, {"tag": ["a", "b%20c"]})
    assert condition_matches(query(("tag", "b c")), got)


@pytest.mark.parametrize(
    ("value", "sent", "matches"),
    [
        ("a\\*b", "a*b", True),  # an escaped star is the character itself
        ("a\\*b", "axxb", False),
        ("why\\?", "why?", True),
        ("why\\?", "whyz", False),
        ("\\*", "*", True),
        ("a*b", "axxb", True),  # an unescaped one is still a wildcard
    ],
)
def test_a_query_string_value_escapes_a_literal_star_or_question_mark(
    value: str, sent: str, matches: bool
) -> None:
    # ELB: "To search for a literal '*' or '?' character in a query string, you must escape
    # these characters in Values using a '\' character."
    got = with_query(alb_event(WAKE_TG), {"q": sent})
    assert condition_matches(query(("q", value)), got) is matches


def test_of_two_services_on_one_listener_the_higher_priority_wins() -> None:
    api = saved("c1/api", [{"Field": "path-pattern", "Values": ["/api/*"]}], priority="5")
    web = saved("c1/web", [{"Field": "host-header", "Values": ["stg.example.com"]}])
    assert services_for(request(path="/api/orders"), [web, api], LB) == ["c1/api"]
    assert services_for(request(path="/login"), [web, api], LB) == ["c1/web"]


def test_regex_conditions_this_reader_does_not_know_never_match() -> None:
    # ALB also matches by regular expression (RegexValues); never taken for a plain value.
    regex = {"Field": "host-header", "HostHeaderConfig": {"RegexValues": ["^stg\\..*$"]}}
    assert not condition_matches(regex, request())


# Hostile events -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [
        {"requestContext": None},
        {"requestContext": {"elb": None}},
        {"path": "/a\u202eb"},  # a bidi override: a format (C) character
        {"path": "/\ud800"},  # a lone surrogate cannot be sent as UTF-8
        {"multiValueHeaders": {"host": "stg.example.com"}},  # not a list
        {"multiValueHeaders": {"host": [7]}},
        {"headers": {"host": "stg.example.com\r\nx-evil: 1"}},
        {"headers": {"host": "stg.example.com", "bad name": "x"}},
        {"queryStringParameters": {"a": ["1", "2"]}},  # a list without multi-value headers
        {"queryStringParameters": {"a": None}},
    ],
)
def test_hostile_events_are_bad_requests(change: dict[str, Any]) -> None:
    event = {**alb_event(WAKE_TG), **change}
    if "multiValueHeaders" in change:
        del event["headers"]
    with pytest.raises(BadRequestError):
        read_request(event)


def test_a_base64_body_and_a_websocket_upgrade_are_read_and_never_kept() -> None:
    event = alb_event(WAKE_TG, upgrade="websocket", connection="Upgrade")
    event.update(body="AAEC/w==", isBase64Encoded=True)
    got = read_request(event)
    assert "AAEC" not in repr(got) and "hunter2" not in repr(got)


@given(st.text(max_size=300))
def test_no_path_ever_raises_anything_but_a_bad_request(text: str) -> None:
    try:
        got = request(path="/" + text)
    except BadRequestError:
        return
    shown = respond(
        Answer("not-asleep", f"Nothing asleep answers {got.shown}"), browser=True, multi_value=False
    )
    shown["body"].encode("utf-8")  # the runtime must be able to send it
    assert "<" not in shown["body"].split("<p>", 2)[1].split("</p>")[0]


# What the answer claims -----------------------------------------------------------------------
@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("browser", [False, True])
@pytest.mark.parametrize(
    "status", ["starting", "kept-stopped", "not-asleep", "refused", "bad-request", "error"]
)
def test_every_answer_is_never_cached_and_in_the_form_the_request_used(
    status: Any, browser: bool, multi: bool
) -> None:
    answer = respond(Answer(status, "m", "c1/web", 60), browser=browser, multi_value=multi)
    headers = answer["multiValueHeaders"] if multi else answer["headers"]
    assert ("headers" in answer) is not multi and ("multiValueHeaders" in answer) is multi
    flat = {k: (v[0] if multi else v) for k, v in headers.items()}
    if multi:
        assert all(isinstance(v, list) and len(v) == 1 for v in headers.values())
    assert flat["Cache-Control"] == "no-store"
    code = answer["statusCode"]
    assert answer["statusDescription"].startswith(str(code))
    if code == 503 and status != "kept-stopped":
        assert flat["Retry-After"] == "5", "a 503 that will pass says when to retry"
    if status in ("refused", "bad-request", "kept-stopped"):
        assert "Retry-After" not in flat, "retrying soon does not help"


def test_a_head_request_gets_the_headers_and_no_body() -> None:
    got = request(method="HEAD")
    answer = respond(
        Answer("starting", "m", "c1/web", 60), browser=got.browser, multi_value=False, head=True
    )
    assert answer["body"] == "" and answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"].startswith("text/html")


def test_the_json_answer_is_json_and_echoes_nothing_unescaped() -> None:
    got = request(path='/"}<script>', browser=False)
    answer = respond(
        Answer("not-asleep", f"Nothing asleep answers {got.shown}"),
        browser=False,
        multi_value=False,
    )
    body = json.loads(answer["body"])
    assert body["status"] == "not-asleep" and body["retry_after_s"] == 5
    page = respond(
        Answer("not-asleep", f"Nothing asleep answers {got.shown}"), browser=True, multi_value=False
    )["body"]
    assert "<script>" not in page and "&lt;script&gt;" in page
