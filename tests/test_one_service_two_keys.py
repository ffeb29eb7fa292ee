"""One ECS service under two keys is left alone, and both documents are reported.

``c1/web`` and the same service with teiji's own region and/or account spelled out are one
service. Through the ``teiji`` command against moto's server: the two documents (always_on
against always_off) would flip it every tick and leave a baseline under the other key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.validation import canonical_service_key, validate_documents
from tests.invariant import assert_invariant, snapshot
from tests.world import ACCOUNT, REGION, World, run_cli, schedule

NIGHT = "2026-12-01T22:15:00+09:00"
LATER = "2026-12-01T22:30:00+09:00"
MORNING = "2026-12-02T05:00:00+09:00"
SPELLINGS = {
    "region": {"region": REGION},
    "account": {"account": ACCOUNT},
    "account and region": {"account": ACCOUNT, "region": REGION},
}


@pytest.mark.parametrize("spelling", SPELLINGS, ids=str)
def test_two_documents_for_one_service_are_reported_and_it_is_left_alone(
    spelling: str,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The deployment lists its own account, as Terraform sets it on the function: a document
    # that spells it out then reaches the duplicate check instead of the allow-list's refusal.
    monkeypatch.setenv("TEIJI_ALLOWED_ACCOUNTS", ACCOUNT)
    world = World(endpoint)
    world.create_service("c1", "web", desired=2, target=(1, 4), suspended={"in": True})
    world.create_service("c1", "api", desired=1)
    assert run_cli(capsys, endpoint, "init")[0] == 0
    twin = schedule("c1/web", mode="always_off", **SPELLINGS[spelling])
    world.put(schedule("c1/web", mode="always_on"), twin, schedule("c1/api"))
    expected = snapshot(["c1/web", "c1/api"])
    keys = {"c1/web", f"c1/web@{'/'.join(v for v in SPELLINGS[spelling].values())}"}

    for when in (NIGHT, LATER, MORNING):
        code, out, _ = run_cli(capsys, endpoint, "tick", "--at", when, "--json")
        assert code == 1
        report: dict[str, Any] = json.loads(out)
        services = {s["service"]: s for s in report["services"]}
        assert services["c1/web"]["outcome"] == "failed", when
        error = services["c1/web"]["error"]
        assert "name one ECS service" in error or "names the same ECS service" in error
        assert "teiji leaves" in error and "alone until one document remains" in error
        for key in keys:  # the spelled-out one too (when its account cannot be reached, so)
            assert services[key]["outcome"] == "failed", (when, key)
        assert snapshot(["c1/web"])["c1/web"] == expected["c1/web"]
        assert_invariant(world, {"c1/web": expected["c1/web"]}, context=when)
    # The service next to them is worked as usual.
    assert snapshot(["c1/api"])["c1/api"] == expected["c1/api"]

    # One document removed: the service is scheduled again.
    key = next(k for k in keys if "@" in k)
    world.dynamodb.delete_item(
        TableName=world.settings.config_table,
        Key={"pk": {"S": "schedule"}, "sk": {"S": key}},
    )
    code, out, _ = run_cli(capsys, endpoint, "tick", "--at", LATER, "--json")
    assert code == 0, out
    assert_invariant(world, expected)


def test_the_region_spelled_out_is_caught_before_anything_is_read() -> None:
    docs, problems = validate_documents(
        [
            ("t", 1, schedule("c1/web")),
            ("t", 2, schedule("c1/web", region=REGION)),
            ("t", 3, schedule("c1/web", region="us-east-1")),  # another service
        ],
        own_region=REGION,
    )
    assert sorted(p.document for p in problems) == [
        "schedule c1/web",
        f"schedule c1/web@{REGION}",
    ]
    assert all("names the same ECS service" in p.message for p in problems)
    assert set(docs.schedules) == {"c1/web@us-east-1"}


@pytest.mark.parametrize(
    ("key", "canonical"),
    [
        ("c1/web", "c1/web"),
        (f"c1/web@{REGION}", "c1/web"),
        (f"c1/web@{ACCOUNT}", "c1/web"),
        (f"c1/web@{ACCOUNT}/{REGION}", "c1/web"),
        ("c1/web@us-east-1", "c1/web@us-east-1"),
        (f"c1/web@210987654321/{REGION}", "c1/web@210987654321"),
        ("C1/web", "C1/web"),  # ECS names are case-sensitive: another service
    ],
)
def test_canonical_service_key(key: str, canonical: str) -> None:
    assert canonical_service_key(key, own_region=REGION, own_account=ACCOUNT) == canonical
