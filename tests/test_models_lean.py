"""botocore's models loaded lean (engine.aws.models): the same models, less memory."""

from __future__ import annotations

import gzip
import json
from collections import OrderedDict
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from engine.aws.clients import Clients
from engine.aws.models import LeanJSONFileLoader

MODEL = {
    "documentation": "<p>A service.</p>",
    "shapes": {
        "Thing": {
            "type": "structure",
            "documentation": "<p>A thing.</p>",
            # A member named like the documentation key: a shape, not text, so it stays.
            "members": {"documentation": {"shape": "Text", "documentation": "<p>Its text.</p>"}},
        },
        "Text": {"type": "string"},
    },
}


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_documentation_text_goes_and_a_member_named_documentation_stays(
    tmp_path: Path, suffix: str
) -> None:
    payload = json.dumps(MODEL).encode()
    path = tmp_path / f"service-2{suffix}"
    path.write_bytes(gzip.compress(payload) if suffix.endswith(".gz") else payload)
    loaded = LeanJSONFileLoader().load_file(str(tmp_path / "service-2"))
    assert loaded["documentation"] == ""
    thing = loaded["shapes"]["Thing"]
    assert thing["documentation"] == ""
    assert thing["members"]["documentation"] == {"shape": "Text", "documentation": ""}
    assert type(loaded) is dict and type(thing) is dict  # not OrderedDict: half the size


def test_a_missing_file_is_none_as_botocore_has_it(tmp_path: Path) -> None:
    assert LeanJSONFileLoader().load_file(str(tmp_path / "absent")) is None


def test_clients_read_the_same_model_as_botocore_less_its_documentation() -> None:
    lean = Clients(region="ap-northeast-1", session=boto3.session.Session())._client(
        "ecs", None, None
    )
    plain = boto3.session.Session().client("ecs", region_name="ap-northeast-1")
    for name in ("UpdateService", "DescribeServices"):
        ours = lean.meta.service_model.operation_model(name)
        theirs = plain.meta.service_model.operation_model(name)
        assert ours.documentation == "" and theirs.documentation != ""
        assert list(ours.output_shape.members) == list(theirs.output_shape.members)
        assert list(ours.input_shape.members) == list(theirs.input_shape.members)
    assert not isinstance(lean.meta.service_model._service_description, OrderedDict)


@mock_aws
def test_a_lean_client_still_talks_to_aws() -> None:
    clients = Clients(region="ap-northeast-1")
    boto3.client("ecs", region_name="ap-northeast-1").create_cluster(clusterName="lean")
    ecs = clients._client("ecs", None, None)
    described = ecs.describe_services(cluster="lean", services=["absent"])
    assert [f["reason"] for f in described["failures"]] == ["MISSING"]
