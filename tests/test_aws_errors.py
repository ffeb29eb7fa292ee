"""AWS failures: one list catches them all, and each is named in words people can read."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from engine.aws.answers import unreadable
from engine.aws.clients import AccountUnreachableError
from engine.aws.errors import AWS_ERRORS, StoreError, error_code, error_text


def _client_error(code: str, message: str) -> Exception:
    """The error a real client raises when AWS answers with ``code``."""
    client = boto3.client("ecs", region_name="ap-northeast-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("describe_services", code, message, http_status_code=400)
        with pytest.raises(AWS_ERRORS) as caught:
            client.describe_services(cluster="c1", services=["web"])
    return caught.value


def test_an_error_answer_gives_its_code_and_message() -> None:
    exc = _client_error("ClusterNotFoundException", "Cluster not found.")
    assert error_code(exc) == "ClusterNotFoundException"
    assert error_text(exc) == "ClusterNotFoundException: Cluster not found."


def test_an_error_answer_without_a_message_still_names_its_code() -> None:
    exc = _client_error("AccessDeniedException", "")
    assert error_code(exc) == "AccessDeniedException"
    assert error_text(exc).startswith("AccessDeniedException: ")


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (
            AccountUnreachableError("account 111122223333: cannot assume role: denied"),
            "account 111122223333: cannot assume role: denied",
        ),
        (
            StoreError("teiji-state: DynamoDB left items unwritten after retries"),
            "StoreError: teiji-state: DynamoDB left items unwritten after retries",
        ),
        (
            EndpointConnectionError(endpoint_url="https://ecs.example"),
            'EndpointConnectionError: Could not connect to the endpoint URL: "https://ecs.example"',
        ),
        (
            unreadable("DescribeServices", "services is missing, not a list"),
            "UnreadableAnswerError: DescribeServices: the answer cannot be read (services is "
            "missing, not a list); nothing is concluded from it",
        ),
    ],
    ids=["unreachable account", "store", "network", "unreadable answer"],
)
def test_every_other_aws_failure_is_caught_and_named_without_a_code(
    exc: Exception, text: str
) -> None:
    assert isinstance(exc, AWS_ERRORS)
    assert error_code(exc) == ""
    assert error_text(exc) == text


def test_a_programming_error_is_no_aws_failure() -> None:
    # Only AWS's failures are isolated per service; a bug must not be taken for one.
    for exc in (KeyError("x"), ValueError("x"), TypeError("x")):
        assert not isinstance(exc, AWS_ERRORS)
        assert error_code(exc) == ""
    assert error_text(KeyError("desiredCount")) == "KeyError: 'desiredCount'"
