"""The shape check of JSON answers (engine.aws.answers): where a mistyped member is, named.

The check runs on every answer; these cases pin what it reports for the shapes teiji reads:
nested structures, lists, maps and scalars, and that members the model does not know, and
nulls, pass as botocore lets them pass.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest

from engine.aws.answers import UnreadableAnswerError, check_answer

_SESSION = botocore.session.get_session()


def _subnets(subnets: list[Any]) -> dict[str, Any]:
    return {"awsvpcConfiguration": {"subnets": subnets}}


def _operation(service: str, name: str) -> Any:
    return _SESSION.get_service_model(service).operation_model(name)


def _check(service: str, operation: str, body: Any) -> str | None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        check_answer(_operation(service, operation), {"status_code": 200, "body": raw})
    except UnreadableAnswerError as err:
        return str(err)
    return None


@pytest.mark.parametrize(
    ("service", "operation", "body", "where"),
    [
        ("ecs", "DescribeServices", {"services": {}}, "services is a JSON object, not a list"),
        (
            "ecs",
            "DescribeServices",
            {"services": [{"serviceName": "a"}, {"desiredCount": "2"}]},
            "services[1].desiredCount is a JSON string, not an integer",
        ),
        (
            "ecs",
            "DescribeServices",
            {"services": [{"deployments": [{"runningCount": True}]}]},
            "services[0].deployments[0].runningCount is a JSON boolean, not an integer",
        ),
        (
            "ecs",
            "DescribeServices",
            {"services": [{"loadBalancers": [{"containerPort": [80]}]}]},
            "services[0].loadBalancers[0].containerPort is a JSON list, not an integer",
        ),
        (
            "dynamodb",
            "BatchGetItem",
            {"Responses": {"teiji-state": [{"pk": {"S": 7}}]}},
            "Responses.teiji-state[0].pk.S is a JSON number, not a string",
        ),
        (
            "application-autoscaling",
            "DescribeScalableTargets",
            {"ScalableTargets": [{"MinCapacity": 1.5}], "NextToken": 3},
            "ScalableTargets[0].MinCapacity is a JSON number, not an integer",
        ),
        ("ecs", "DescribeServices", [], "the body is a JSON list, not an object"),
        (
            "ecs",
            "DescribeServices",
            {"services": [{"deployments": [{"networkConfiguration": _subnets(["a", 7])}]}]},
            "services[0].deployments[0].networkConfiguration.awsvpcConfiguration.subnets[1] is "
            "a JSON number, not a string",
        ),
        (
            "ecs",
            "DescribeServices",
            {"services": [{"deployments": [{"networkConfiguration": _subnets([True])}]}]},
            "subnets[0] is a JSON boolean, not a string",
        ),
    ],
)
def test_a_mistyped_member_is_named_by_its_path(
    service: str, operation: str, body: Any, where: str
) -> None:
    message = _check(service, operation, body)
    assert message is not None and where in message, message


@pytest.mark.parametrize(
    "body",
    [
        {"services": [{"serviceName": "a", "desiredCount": 2, "deployments": []}], "failures": []},
        {"services": [{"serviceName": None, "unknownMember": {"x": [1, "y"]}}]},
        {"services": None},
        {},
    ],
)
def test_answers_of_the_right_types_pass(body: Any) -> None:
    assert _check("ecs", "DescribeServices", body) is None


def test_a_body_that_is_not_json_is_unreadable() -> None:
    message = _check("ecs", "DescribeServices", b'{"services": [{"serviceName": "a"')
    assert message is not None and "not JSON" in message


def test_the_same_shape_is_checked_alike_every_time() -> None:
    # The checkers are cached per shape: a second, differently wrong answer is still caught.
    assert _check("ecs", "DescribeServices", {"services": [{"desiredCount": 1}]}) is None
    second = _check("ecs", "DescribeServices", {"services": [{"desiredCount": "x"}]})
    assert second is not None and "services[0].desiredCount" in second
