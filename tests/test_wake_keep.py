"""The keep-awake rule (pure): requests the load balancer counted extend the wake to keep_for
after the latest of them, never past the cap, never shorter, and never a person's override."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.aws.answers import UnreadableAnswerError
from engine.aws.cloudwatch import MetricQuery, metric_data
from engine.wake_keep import dimensions, latest_request, plan_keep, window
from schemas.documents import Override

T0 = datetime.fromisoformat("2026-12-01T23:00:00+09:00")  # the wake began
KEEP = timedelta(hours=2)
CAP = timedelta(hours=12)
MIN = timedelta(minutes=1)


def wake(
    *,
    start: datetime = T0,
    until: datetime | None = None,
    created_by: str = "wake",
    oid: str = "wake",
) -> Override:
    return Override(
        service="c1/web",
        state="running",
        start=start,
        until=until or start + KEEP,
        reason="woken by a request to stg.example.com/",
        created_by=created_by,
        created_at=start,
        id=oid,
    )


def minutes(*offsets: int, count: float = 3.0) -> dict[datetime, float]:
    """A series with ``count`` requests in each minute ``T0 + offset`` minutes."""
    return {T0 + timedelta(minutes=m): count for m in offsets}


@pytest.mark.parametrize(
    ("series", "now", "expected"),
    [
        # The end of the latest minute with a request.
        ([minutes(10, 42, 30)], T0 + timedelta(minutes=50), T0 + timedelta(minutes=43)),
        # Across series (two target groups of the service): the latest of all.
        ([minutes(10), minutes(55)], T0 + timedelta(hours=1), T0 + timedelta(minutes=56)),
        # Minutes counted zero are no request.
        (
            [minutes(20), minutes(40, count=0.0)],
            T0 + timedelta(hours=1),
            T0 + timedelta(minutes=21),
        ),
        # No request at all.
        ([{}], T0 + timedelta(hours=1), None),
        ([], T0 + timedelta(hours=1), None),
        # Requests before the wake began were not why it runs.
        ([{T0 - timedelta(minutes=5): 9.0}], T0 + timedelta(hours=1), None),
        # The minute the wake began in counts (its end is after the start).
        ([{T0 - timedelta(seconds=30): 1.0}], T0 + timedelta(hours=1), T0 + timedelta(seconds=30)),
        # A minute stamped in our future (CloudWatch's clock ahead): never later than now.
        (
            [minutes(61)],
            T0 + timedelta(minutes=60, seconds=20),
            T0 + timedelta(minutes=60, seconds=20),
        ),
    ],
)
def test_the_latest_request(
    series: list[dict[datetime, float]], now: datetime, expected: datetime | None
) -> None:
    assert latest_request(series, since=T0, now=now) == expected


@pytest.mark.parametrize(
    ("override", "latest", "now", "kind", "until"),
    [
        # keep_for after the latest request.
        (
            wake(),
            T0 + timedelta(minutes=90),
            T0 + timedelta(minutes=95),
            "extend",
            T0 + timedelta(minutes=210),
        ),
        # Adds less than a twentieth of keep_for (6 min): nothing written yet.
        (wake(), T0 + timedelta(minutes=5), T0 + timedelta(minutes=8), "none", None),
        # Never shortened: a person extended the wake to 05:00 with `override extend`.
        (
            wake(until=T0 + timedelta(hours=6)),
            T0 + timedelta(minutes=90),
            T0 + timedelta(minutes=95),
            "none",
            None,
        ),
        # Capped at TEIJI_MAX_OVERRIDE from the wake's start.
        (
            wake(until=T0 + timedelta(hours=11, minutes=50)),
            T0 + timedelta(hours=11),
            T0 + timedelta(hours=11, minutes=1),
            "extend",
            T0 + CAP,
        ),
        # At the cap already: nothing more.
        (
            wake(until=T0 + CAP),
            T0 + timedelta(hours=11, minutes=30),
            T0 + timedelta(hours=11, minutes=31),
            "none",
            None,
        ),
        # No request seen.
        (wake(), None, T0 + timedelta(minutes=30), "no-request", None),
        # A request before the wake began.
        (wake(), T0 - timedelta(minutes=1), T0 + timedelta(minutes=30), "no-request", None),
        # A latest request ahead of our clock is taken as now.
        (
            wake(),
            T0 + timedelta(hours=3),
            T0 + timedelta(minutes=30),
            "extend",
            T0 + timedelta(minutes=150),
        ),
        # A person's override of the service is never touched, whatever its id.
        (
            wake(created_by="suzuki"),
            T0 + timedelta(minutes=90),
            T0 + timedelta(minutes=95),
            "not-ours",
            None,
        ),
        (
            wake(oid="late-work"),
            T0 + timedelta(minutes=90),
            T0 + timedelta(minutes=95),
            "not-ours",
            None,
        ),
        (
            wake(oid="late-work", created_by="wake"),
            T0 + timedelta(minutes=90),
            T0 + timedelta(minutes=95),
            "not-ours",
            None,
        ),
        # An ended wake stays ended (the next tick stops the service).
        (wake(), T0 + timedelta(minutes=119), T0 + timedelta(minutes=121), "not-active", None),
        # One moved to begin later has not begun.
        (
            wake(start=T0 + timedelta(hours=1)),
            T0 + timedelta(minutes=10),
            T0 + timedelta(minutes=20),
            "not-active",
            None,
        ),
    ],
)
def test_the_extension_rule(
    override: Override, latest: datetime | None, now: datetime, kind: str, until: datetime | None
) -> None:
    plan = plan_keep(override, latest, now=now, keep_for=KEEP, cap=CAP)
    assert plan.kind == kind
    if until is None:
        assert plan.override is None
    else:
        assert plan.override is not None
        assert plan.override.until == until
        assert plan.override.until.utcoffset() == override.until.utcoffset()  # same zone
        assert plan.override.model_copy(update={"until": override.until}) == override
        assert plan.capped == (until == T0 + CAP)


def test_a_steady_stream_writes_about_once_a_step_and_the_end_follows_it() -> None:
    """Runs every 5 minutes, a request in every minute: the end stays within a step of
    keep_for after the latest request, and there is one write every few runs, not each."""
    override, writes = wake(), 0
    for run in range(1, 30):
        now = T0 + timedelta(minutes=5 * run, seconds=10)
        latest = latest_request([minutes(*range(5 * run))], since=T0, now=now)
        plan = plan_keep(override, latest, now=now, keep_for=KEEP, cap=CAP)
        if plan.override is not None:
            override, writes = plan.override, writes + 1
        assert latest is not None
        assert latest + KEEP - timedelta(minutes=6) <= override.until <= latest + KEEP
    assert 10 <= writes <= 15


def test_dimensions_are_the_arns_final_portions() -> None:
    head = "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:"
    balancer = head + "loadbalancer/app/stg-web/0123456789abcdef"
    group = head + "targetgroup/web/943f017f100becff"
    assert dimensions(balancer, group) == {
        "LoadBalancer": "app/stg-web/0123456789abcdef",
        "TargetGroup": "targetgroup/web/943f017f100becff",
    }
    cn = "arn:aws-cn:elasticloadbalancing:cn-north-1:111111111111:"
    assert dimensions(cn + "loadbalancer/app/a/1", cn + "targetgroup/b/2") == {
        "LoadBalancer": "app/a/1",
        "TargetGroup": "targetgroup/b/2",
    }
    network = balancer.replace("/app/", "/net/")
    assert dimensions(network, group) is None
    assert dimensions(balancer, "targetgroup/web/943f017f100becff") is None
    assert dimensions(balancer, group + "/extra") is None


def test_the_window_covers_only_minutes_that_could_extend() -> None:
    now = T0 + timedelta(minutes=50, seconds=40)
    young = wake()  # began at T0, ends T0+2h: every minute since T0 could extend it
    old = wake(start=T0 - timedelta(hours=3), until=T0 + timedelta(minutes=30, seconds=15))
    keep = {"c1/web": KEEP}
    assert window([young], now=now, keep_for=keep) == (T0, T0 + timedelta(minutes=51))
    # An older wake ending at T0+30m15s: only requests after T0-1h29m45s could move it.
    assert window([old], now=now, keep_for=keep) == (
        T0 - timedelta(hours=1, minutes=30),
        T0 + timedelta(minutes=51),
    )
    assert window([old], now=now, keep_for={}) is None
    # Extended by a person far ahead: no request now could move it.
    ahead = wake(until=now + KEEP + timedelta(minutes=5))
    assert window([ahead], now=now, keep_for=keep) is None


class _Answers:
    """A CloudWatch client that hands out the given GetMetricData answers in turn."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.asked: list[dict[str, Any]] = []

    def get_metric_data(self, **params: Any) -> dict[str, Any]:
        self.asked.append(params)
        return self.answers.pop(0)


def _queries(count: int) -> list[MetricQuery]:
    dims = {"LoadBalancer": "app/stg/0123456789abcdef", "TargetGroup": "targetgroup/web/1"}
    return [
        MetricQuery(f"q{i}", "AWS/ApplicationELB", "RequestCount", dims, "Sum", 60)
        for i in range(count)
    ]


def _result(query: str, *at: datetime, status: str = "Complete") -> dict[str, Any]:
    return {"Id": query, "Timestamps": list(at), "Values": [1.0] * len(at), "StatusCode": status}


def test_a_last_page_that_still_says_partial_data_fails_the_read() -> None:
    """Cut short with no NextToken to carry on: the rest would never come."""
    client = _Answers({"MetricDataResults": [_result("q0", T0, status="PartialData")]})
    with pytest.raises(UnreadableAnswerError, match="PartialData with no NextToken"):
        metric_data(client, _queries(1), T0, T0 + KEEP)  # type: ignore[arg-type]


def test_queries_go_500_a_call_and_every_page_is_read() -> None:
    later = T0 + timedelta(minutes=30)
    client = _Answers(
        {
            "MetricDataResults": [_result(f"q{i}", T0, status="PartialData") for i in range(500)],
            "NextToken": "page-2",
        },
        {"MetricDataResults": [_result("q499", later)]},
        {"MetricDataResults": [_result(f"q{i}", later) for i in range(500, 600)]},
    )
    found = metric_data(client, _queries(600), T0, T0 + KEEP)  # type: ignore[arg-type]
    assert [len(a["MetricDataQueries"]) for a in client.asked] == [500, 500, 100]
    assert client.asked[1]["NextToken"] == "page-2" and "NextToken" not in client.asked[2]
    assert found["q499"] == {T0: 1.0, later: 1.0} and found["q599"] == {later: 1.0}
    assert latest_request([found["q499"]], since=T0, now=T0 + KEEP) == later + MIN
