"""Paginated reads fail closed: a page that never comes is not read as "nothing more".

boto3's paginators fetch the pages; ``engine.aws.answers.checked_pages`` checks each page's
token. A token handed back a second time (right after itself, which botocore also stops on,
or after others, which it does not), or one of the wrong type, raises UnreadableAnswerError,
and so does a page without the list it must hold. The answers here come from a real client
through botocore's Stubber (the HTTP-level faults are in test_corrupt_answers.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from engine.aws import autoscaling, ecs
from engine.aws.answers import UnreadableAnswerError, checked_pages

REGION = "ap-northeast-1"
RESOURCE = "service/c1/web"


def _target(resource: str = RESOURCE) -> dict[str, Any]:
    return {
        "ServiceNamespace": "ecs",
        "ResourceId": resource,
        "ScalableDimension": "ecs:service:DesiredCount",
        "MinCapacity": 1,
        "MaxCapacity": 4,
        "RoleARN": "arn:aws:iam::123456789012:role/x",
        "CreationTime": "2026-12-01T00:00:00Z",
    }


def _stubbed(service: str, operation: str, pages: list[dict[str, Any]]) -> Any:
    client = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
    stubber = Stubber(client)
    for page in pages:
        stubber.add_response(operation, page)
    stubber.activate()
    return client


TOKEN_CYCLES = {
    "the same token twice in a row": ["A", "A"],
    "a token that came before": ["A", "B", "A"],
}


@pytest.mark.parametrize("tokens", TOKEN_CYCLES.values(), ids=list(TOKEN_CYCLES))
def test_scalable_targets_pages_that_never_end_fail_closed(tokens: list[str]) -> None:
    pages = [{"ScalableTargets": [], "NextToken": token} for token in tokens]
    client = _stubbed("application-autoscaling", "describe_scalable_targets", pages)
    with pytest.raises(UnreadableAnswerError, match="the same NextToken came twice"):
        autoscaling.describe_scalable_targets(client, [RESOURCE])


@pytest.mark.parametrize("tokens", TOKEN_CYCLES.values(), ids=list(TOKEN_CYCLES))
def test_task_listings_that_never_end_fail_closed(tokens: list[str]) -> None:
    pages = [{"taskArns": [], "nextToken": token} for token in tokens]
    client = _stubbed("ecs", "list_tasks", pages)
    with pytest.raises(UnreadableAnswerError, match=r"ListTasks: .*the same nextToken came twice"):
        list(ecs.list_task_arns(client, "c1", "web", "RUNNING"))


def test_every_page_is_read_until_the_last() -> None:
    pages = [
        {"ScalableTargets": [], "NextToken": "A"},
        {"ScalableTargets": [_target()], "NextToken": "B"},
        {"ScalableTargets": [], "NextToken": ""},
    ]
    client = _stubbed("application-autoscaling", "describe_scalable_targets", pages)
    found = autoscaling.describe_scalable_targets(client, [RESOURCE])
    assert found[RESOURCE].max_capacity == 4


def test_a_task_listing_without_its_list_is_not_read_as_no_tasks() -> None:
    client = _stubbed("ecs", "list_tasks", [{}])
    with pytest.raises(UnreadableAnswerError, match=r"ListTasks: .*taskArns is missing"):
        list(ecs.list_task_arns(client, "c1", "web", "RUNNING"))


def _pages(*tokens: object) -> Callable[[], Iterator[dict[str, object]]]:
    return lambda: iter([{"Items": [], "LastEvaluatedKey": token} for token in tokens])


@pytest.mark.parametrize(
    ("pages", "kind", "message"),
    [
        (_pages({"pk": {"S": "a"}}, {"pk": {"S": "a"}}), dict, "the same LastEvaluatedKey"),
        (_pages({"pk": {"S": "a"}}, {"pk": {"S": "b"}}, {"pk": {"S": "a"}}), dict, "the same"),
        (_pages(["not", "a", "key"]), dict, "LastEvaluatedKey is not a key"),
        (_pages(7), str, "LastEvaluatedKey is not text"),
    ],
    ids=["twice in a row", "after another", "a list for a key", "a number for text"],
)
def test_a_page_token_that_cannot_be_one_stops_the_read(
    pages: Callable[[], Iterator[dict[str, object]]], kind: type[Any], message: str
) -> None:
    read: list[dict[str, object]] = []
    with pytest.raises(UnreadableAnswerError, match=message):
        for page in checked_pages(pages(), "Query", "LastEvaluatedKey", kind):
            read.append(page)
    assert read, "the page that holds the token is read before the token is judged"


@pytest.mark.parametrize("last", [None, ""], ids=["no token", "an empty token"])
def test_the_last_page_has_no_token_or_an_empty_one(last: str | None) -> None:
    pages = [{"Items": [1], "NextToken": "a"}, {"Items": [2], "NextToken": last}]
    assert list(checked_pages(pages, "Query", "NextToken", str)) == pages
