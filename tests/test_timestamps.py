"""Timestamps in answers are read as the same instants botocore reads, in UTC.

teiji's clients replace botocore's timestamp parser (engine.aws.clients.aws_timestamp): the
default makes a new ``tzlocal()`` for each epoch number it reads.
"""

from __future__ import annotations

from datetime import UTC

import boto3
from botocore.utils import parse_timestamp
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from engine.aws.clients import Clients, aws_timestamp


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_an_epoch_number_is_the_instant_botocore_reads(value: float) -> None:
    ours, theirs = aws_timestamp(value), parse_timestamp(value)
    assert ours == theirs
    assert ours.tzinfo is UTC


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_a_whole_epoch_number_too(value: int) -> None:
    assert aws_timestamp(value) == parse_timestamp(value)


def test_text_timestamps_are_read_as_botocore_reads_them() -> None:
    for text in (
        "2026-12-01T09:00:00Z",
        "2026-12-01T18:00:00+09:00",
        "2026-12-01T09:00:00.123456Z",
        "Tue, 01 Dec 2026 09:00:00 GMT",
        "1764579600",
    ):
        assert aws_timestamp(text) == parse_timestamp(text), text


def test_the_clients_read_answers_with_it() -> None:
    with mock_aws():
        raw = boto3.client("ecs", region_name="ap-northeast-1")
        raw.create_cluster(clusterName="c1")
        raw.create_service(cluster="c1", serviceName="web", desiredCount=1)
        ours = Clients(region="ap-northeast-1").ecs()
        described = ours.describe_services(cluster="c1", services=["web"])["services"][0]
        theirs = raw.describe_services(cluster="c1", services=["web"])["services"][0]
    created = described["deployments"][0]["createdAt"]
    assert created.tzinfo is UTC
    assert created == theirs["deployments"][0]["createdAt"]
