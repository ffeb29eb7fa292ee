"""bench.cpu's SDK floor: teiji's requests recorded as botocore receives them and made again
by bare clients, so the tick's CPU can be set beside what botocore alone costs for them."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto import mock_aws

from bench.cpu import recording_requests, sdk_floor

REGION = "ap-northeast-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def test_every_call_and_page_is_recorded_with_its_parameters(aws: None) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for number in range(3):
        ecs.create_cluster(clusterName=f"c{number}")
        dynamodb.create_table(
            TableName=f"table{number}",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    original = BaseClient._make_api_call
    with recording_requests() as recorded:
        ecs.describe_clusters(clusters=["c0", "c1"])
        paginator = dynamodb.get_paginator("list_tables")
        pages = list(paginator.paginate(PaginationConfig={"PageSize": 1}))
        with pytest.raises(ClientError):
            ecs.delete_cluster(cluster="missing")
    assert BaseClient._make_api_call is original  # put back on leaving
    assert recorded[0] == ("ecs", REGION, "DescribeClusters", {"clusters": ["c0", "c1"]})
    listed = [entry for entry in recorded if entry[2] == "ListTables"]
    assert len(listed) == len(pages) >= 3  # one entry per page, each with its own token
    assert listed[1][3]["ExclusiveStartTableName"] == "table0"
    assert [entry[2] for entry in recorded][-1] == "DeleteCluster"


def test_the_recorded_parameters_are_copies_the_caller_cannot_change(aws: None) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    names = ["a"]
    with recording_requests() as recorded:
        ecs.describe_clusters(clusters=names)
    names.append("b")
    assert recorded[0][3] == {"clusters": ["a"]}


def test_the_floor_makes_the_same_requests_again_and_counts_the_refused(aws: None) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    requests = [
        ("ecs", REGION, "CreateCluster", {"clusterName": "replayed"}),
        ("ecs", REGION, "DeleteCluster", {"cluster": "missing"}),
    ]
    floor = sdk_floor(requests)
    assert floor["requests"] == 2
    assert floor["refused"] == ["DeleteCluster"]
    assert floor["cpu_s"] > 0
    assert ecs.describe_clusters(clusters=["replayed"])["clusters"][0]["status"] == "ACTIVE"
