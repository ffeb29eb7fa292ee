"""The READMEs' hand-editing section, taken from the READMEs themselves, applied to a table.

Every JSON item and every ``aws dynamodb`` command of the section is parsed out of README.md and
README.ja.md, sent with boto3's low-level client (what the AWS CLI sends) to moto, and the
table is then read by teiji as the tick reads it. Change an example and this test checks it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from engine.aws.clients import Clients
from engine.config import Settings
from engine.store import ConfigStore, init_tables
from schemas import documents

REPO = Path(__file__).resolve().parent.parent
SECTIONS = {
    "README.md": "### Editing items by hand (console and AWS CLI)",
    "README.ja.md": "### 手で項目を編集する（コンソールと AWS CLI）",
}
REGION = "ap-northeast-1"
TUESDAY_EVENING = datetime.fromisoformat("2026-12-01T21:00:00+09:00")


def section(readme: str) -> str:
    text = (REPO / readme).read_text(encoding="utf-8")
    start = text.index(SECTIONS[readme] + "\n")
    end = re.compile(r"^#{2,3} ", re.MULTILINE).search(text, start + 1)
    assert end is not None
    return text[start : end.start()]


def json_files(text: str) -> dict[str, dict[str, Any]]:
    """``name.json`` -> the item in the fenced block that follows the line naming it."""
    found = re.findall(
        r"^`([\w.-]+\.json)`[^\n]*\n(?:[^\n]*\n)*?```json\n(.*?)\n```", text, re.M | re.S
    )
    return {name: json.loads(body) for name, body in found}


def aws_commands(text: str) -> Iterator[list[str]]:
    for block in re.findall(r"```sh\n(.*?)\n```", text, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            if command.startswith("aws dynamodb "):
                yield shlex.split(command)


def as_call(argv: list[str], files: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """``aws dynamodb update-item --table-name t ...`` -> ("update_item", {"TableName": "t"})."""
    assert argv[:2] == ["aws", "dynamodb"]
    operation = argv[2].replace("-", "_")
    params: dict[str, Any] = {}
    options = argv[3:]
    assert len(options) % 2 == 0, argv
    for option, value in zip(options[::2], options[1::2], strict=True):
        assert option.startswith("--"), option
        name = "".join(word.capitalize() for word in option[2:].split("-"))
        if value.startswith("file://"):
            params[name] = files[value.removeprefix("file://")]
        elif value.startswith("{"):
            params[name] = json.loads(value)
        else:
            params[name] = value
    return operation, params


@pytest.fixture(params=sorted(SECTIONS))
def readme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_section_is_the_same_in_both_languages() -> None:
    english, japanese = section("README.md"), section("README.ja.md")
    assert json_files(english) == json_files(japanese)
    assert list(aws_commands(english)) == list(aws_commands(japanese))


def test_the_readme_items_and_commands_give_what_teiji_reads(readme: str) -> None:
    text = section(readme)
    files = json_files(text)
    assert sorted(files) == ["company.json", "late-work.json", "stg.json"]
    calls = [as_call(argv, files) for argv in aws_commands(text)]
    assert [op for op, _ in calls] == ["put_item"] * 3 + ["update_item"] * 2 + ["query"]

    with mock_aws():
        clients = Clients(region=REGION)
        settings = Settings()
        init_tables(clients, settings)
        client = boto3.client("dynamodb", region_name=REGION)
        answers = [getattr(client, op)(**params) for op, params in calls]
        loaded = ConfigStore(clients, settings.config_table).load_config(now=TUESDAY_EVENING)

    assert loaded.problems == []
    docs = loaded.documents
    stg = docs.schedules["example-cluster/example-service-stg"]
    assert [(w.start, w.end) for w in stg.windows] == [("05:00", "20:00")]  # moved by hand
    assert stg.holidays == ["JP", "company"]
    assert "company" in docs.calendars
    (late,) = docs.overrides
    assert (late.id, late.state, late.reason) == ("3fa2c1d0", "running", "release check")
    assert late.until == datetime.fromisoformat("2026-12-02T00:30:00+09:00")  # extended
    listed = answers[-1]["Items"]
    assert listed == [
        {
            "sk": {"S": "example-cluster/example-service-stg#3fa2c1d0"},
            "state": {"S": "running"},
            "until": {"S": "2026-12-02T00:30:00+09:00"},
        }
    ]


def test_expires_at_is_a_day_after_until_in_the_examples(readme: str) -> None:
    text = section(readme)
    item = json_files(text)["late-work.json"]
    until = datetime.fromisoformat(item["until"]["S"])
    assert int(item["expires_at"]["N"]) == int((until + timedelta(days=1)).timestamp())
    _, extend = as_call(list(aws_commands(text))[4], {})
    values = extend["ExpressionAttributeValues"]
    later = datetime.fromisoformat(values[":until"]["S"])
    assert int(values[":expires"]["N"]) == int((later + timedelta(days=1)).timestamp())


def _field_names() -> set[str]:
    models = [
        documents.Schedule,
        documents.Window,
        documents.CronPair,
        documents.RunningCapacity,
        documents.StoppedCapacity,
        documents.Calendar,
        documents.DateRange,
        documents.Override,
    ]
    return {field.alias or name for model in models for name, field in model.model_fields.items()}


def test_the_readme_names_every_field_that_is_a_reserved_word(readme: str) -> None:
    from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords

    reserved = {word.lower() for word in ReservedKeywords.get_reserved_keywords()}
    expected = {name for name in _field_names() if name.lower() in reserved}
    text = section(readme)
    sentence = next(line for line in text.split("\n\n") if "`mode`" in line and "`until`" in line)
    assert set(re.findall(r"`(\w+)`", sentence)) == expected
    assert len(expected) == 10


def test_a_reserved_word_written_plainly_is_refused() -> None:
    # Why the README's commands name `end` through a placeholder: DynamoDB (and moto) refuse it.
    with mock_aws():
        clients = Clients(region=REGION)
        init_tables(clients, Settings())
        client = boto3.client("dynamodb", region_name=REGION)
        stg = json_files(section("README.md"))["stg.json"]
        client.put_item(TableName="teiji-config", Item=stg)
        with pytest.raises(ClientError, match="reserved keyword; reserved keyword: end"):
            client.update_item(
                TableName="teiji-config",
                Key={"pk": stg["pk"], "sk": stg["sk"]},
                UpdateExpression="SET windows[0].end = :end",
                ExpressionAttributeValues={":end": {"S": "20:00"}},
            )
