"""DynamoDB storage against moto in-process: documents, baselines, the lease."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from engine.aws.errors import StoreError
from engine.config import Settings
from engine.store import (
    ConfigStore,
    StateStore,
    document_from_item,
    init_tables,
    item_from_document,
    service_of_problem,
)
from schemas.documents import Calendar, Override, Schedule
from schemas.records import Baseline, SuspendedState
from schemas.validation import Problem
from tests.world import CallLog, World, moto_tables, schedule

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables() as w:
        yield w


def make_baseline(key: str, desired: int = 3, version: str = "v1") -> Baseline:
    return Baseline(
        key=key,
        desired_count=desired,
        min_capacity=2,
        max_capacity=6,
        suspended=SuspendedState(dynamic_in=True),
        saved_at=NOW,
        service_arn=f"arn:aws:ecs:ap-northeast-1:123456789012:service/{key}",
        service_created_at=NOW - timedelta(days=30),
        decided_by="window: stopped outside mon-fri 05:00-22:00",
        version=version,
    )


# Config table -----------------------------------------------------------------------------------
def test_documents_round_trip_through_items(world: World) -> None:
    world.put(
        schedule("c1/web", holidays=["JP", "company"], running={"desired_count": 2}),
        {"kind": "calendar", "name": "company", "dates": ["2026-12-29"]},
        {
            "kind": "override",
            "service": "c1/web",
            "state": "running",
            "until": "2026-12-01T23:30:00+09:00",
            "reason": "release verification",
            "created_by": "suzuki",
            "id": "late1",
        },
    )
    docs, problems = world.config().load(now=NOW)
    assert problems == []
    assert set(docs.schedules) == {"c1/web"}
    assert docs.schedules["c1/web"].holidays == ["JP", "company"]
    assert docs.schedules["c1/web"].running is not None
    assert docs.schedules["c1/web"].running.desired_count == 2
    assert set(docs.calendars) == {"company"}
    assert [o.id for o in docs.overrides] == ["late1"]


def test_items_hold_plain_attributes_keyed_by_kind_and_service() -> None:
    sched = Schedule.model_validate(schedule("c1/web", account="111122223333"))
    item = item_from_document(sched)
    assert (item["pk"], item["sk"]) == ("schedule", "c1/web@111122223333")
    assert "service" not in item
    assert "kind" not in item
    assert item["windows"] == [{"days": "mon-fri", "start": "05:00", "end": "22:00"}]
    back = document_from_item(item)
    assert Schedule.model_validate(back) == sched

    override = Override.model_validate(
        {
            "service": "c1/web",
            "state": "running",
            "until": "2026-12-01T23:30:00+09:00",
            "reason": "late work",
        }
    )
    item = item_from_document(override)
    assert item["pk"] == "override"
    assert item["sk"].startswith("c1/web#")
    # TTL one day after until, as epoch seconds.
    until = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    assert item["expires_at"] == int((until + timedelta(days=1)).timestamp())
    assert Override.model_validate(document_from_item(item)).until == override.until

    calendar = Calendar.model_validate({"name": "company", "dates": ["2026-12-29"]})
    item = item_from_document(calendar)
    assert (item["pk"], item["sk"]) == ("calendar", "company")
    assert Calendar.model_validate(document_from_item(item)) == calendar


def test_console_items_with_decimals_and_sets_are_accepted(world: World) -> None:
    # What an operator types in the DynamoDB console: numbers are N, holidays and dates may be
    # string sets (days is one text: see test_validation).
    world.put_item(
        {
            "pk": "schedule",
            "sk": "c1/api",
            "windows": [{"days": "mon-wed", "start": "08:00", "end": "20:00"}],
            "holidays": {"JP"},
            "running": {"desired_count": Decimal(3), "max_capacity": Decimal("6")},
            "stopped": {"desired_count": Decimal(0)},
        }
    )
    world.put_item({"pk": "calendar", "sk": "company", "dates": {"2026-12-30", "2026-12-29"}})
    docs, problems = world.config().load(now=NOW)
    assert problems == []
    api = docs.schedules["c1/api"]
    assert api.service == "c1/api"
    assert api.running is not None
    assert (api.running.desired_count, api.running.max_capacity) == (3, 6)
    assert api.windows[0].weekdays == frozenset({0, 1, 2})
    assert [str(d) for d in docs.calendars["company"].dates] == ["2026-12-29", "2026-12-30"]


def test_invalid_item_is_a_problem_naming_the_table_and_the_item(world: World) -> None:
    world.put_item({"pk": "schedule", "sk": "c1/bad", "timezon": "Asia/Tokyo", "mode": "always_on"})
    world.put(schedule("c1/good"))
    loaded = world.config().load_config(now=NOW)
    assert set(loaded.documents.schedules) == {"c1/good"}
    assert len(loaded.problems) == 1
    problem = loaded.problems[0]
    assert problem.source == "dynamodb:teiji-config"
    assert problem.document == "schedule c1/bad"
    assert problem.path == "timezon"
    assert "timezone" in problem.message
    assert str(problem).startswith("dynamodb:teiji-config: schedule c1/bad: timezon: ")
    assert set(loaded.problem_keys) == {"c1/bad"}


def test_sort_key_must_agree_with_the_document(world: World) -> None:
    world.put_item({"pk": "schedule", "sk": "c1/one", "service": "c1/two", "mode": "always_on"})
    loaded = world.config().load_config(now=NOW)
    assert loaded.documents.schedules == {}
    assert loaded.problems[0].path == "sk"
    assert "c1/two" in loaded.problems[0].message
    assert set(loaded.problem_keys) == {"c1/one"}


OVERRIDE_ITEM = {
    "pk": "override",
    "state": "running",
    "until": "2026-12-01T23:00:00+09:00",
    "reason": "late work",
    "expires_at": 1_900_000_000,
}


@pytest.mark.parametrize(
    ("sk", "fields", "said"),
    [
        # the id attribute names another override than the sort key
        ("c1/web#mism0001", {"id": "other001"}, "names 'c1/web#other001'"),
        ("c1/web#", {}, "must be <service>#<id>"),  # no id at all
        ("c1/web", {}, "must be <service>#<id>"),  # no '#': nothing could cancel it
        ("c1/web#", {"id": "given001"}, "must be <service>#<id>"),
    ],
)
def test_an_override_whose_sort_key_does_not_name_it_fails_its_service(
    world: World, sk: str, fields: dict[str, str], said: str
) -> None:
    """Items made by hand in the console: the sort key is how teiji finds, lists and cancels
    an override, so one that cannot be found by it is reported and keeps nothing running."""
    world.put(schedule("c1/web"), schedule("c1/api"))
    world.put_item({**OVERRIDE_ITEM, "sk": sk, **fields})
    loaded = world.config().load_config(now=NOW)
    assert loaded.documents.overrides == []
    assert [(p.path, said in p.message) for p in loaded.problems] == [("sk", True)]
    assert set(loaded.problem_keys) == {"c1/web"}  # that service fails; c1/api is untouched


def test_an_override_whose_id_agrees_with_its_sort_key_is_read(world: World) -> None:
    world.put(schedule("c1/web"))
    world.put_item({**OVERRIDE_ITEM, "sk": "c1/web#same0001", "id": "same0001"})
    world.put_item({**OVERRIDE_ITEM, "sk": "c1/web#noid0001"})  # the sort key gives the id
    loaded = world.config().load_config(now=NOW)
    assert loaded.problems == []
    assert sorted(o.id or "" for o in loaded.documents.overrides) == ["noid0001", "same0001"]


def test_a_stored_calendar_or_profile_that_is_invalid_is_named_as_invalid_not_missing(
    world: World,
) -> None:
    world.put(
        {"kind": "calendar", "name": "company", "dates": ["2026-12-29"]},
        schedule("c1/web", holidays=["JP", "broken"]),
        schedule("c1/api"),
    )
    world.put_item({"pk": "calendar", "sk": "broken", "dates": ["2026-13-45"]})
    world.put_item({"pk": "profile", "sk": "office", "windows": "all day"})
    world.put_item({"pk": "schedule", "sk": "c1/admin", "profile": "office"})
    loaded = world.config().load_config(now=NOW)
    said = "\n".join(str(p) for p in loaded.problems)
    assert "no calendar named" not in said and "no profile named" not in said
    assert "calendar 'broken' is invalid" in said
    assert "dates[0]" in said  # the calendar's own problem, once
    assert said.count("dates[0]") == 1
    assert "profile 'office'" in said or "profile office" in said
    assert set(loaded.problem_keys) == {"c1/web", "c1/admin"}
    assert set(loaded.documents.schedules) == {"c1/api"}
    assert set(loaded.documents.calendars) == {"company"}


def test_expired_overrides_are_ignored_even_before_ttl_deletes_them(world: World) -> None:
    base = {"kind": "override", "service": "c1/web", "state": "running", "reason": "late work"}
    world.put(
        schedule("c1/web"),
        {**base, "id": "old", "until": "2026-12-01T11:00:00+09:00"},
        {**base, "id": "live", "until": "2026-12-01T23:00:00+09:00"},
    )
    docs, problems = world.config().load(now=NOW)  # 12:00 in Tokyo
    assert problems == []
    assert [o.id for o in docs.overrides] == ["live"]


def test_query_reads_every_page(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.dynamodb.models.table as table

    monkeypatch.setattr(table, "RESULT_SIZE_LIMIT", 4000)  # a few items per page
    world.put(*(schedule(f"c1/svc-{i:03d}") for i in range(120)))
    store = world.config()
    log = CallLog()
    log.attach(store.clients)
    docs, problems = store.load(now=NOW)
    assert problems == []
    assert len(docs.schedules) == 120
    queries = log.named("Query")
    assert len(queries) > 3  # several pages of schedules, plus calendars and overrides
    assert any("ExclusiveStartKey" in q.params for q in queries)


def test_get_and_delete_documents(world: World) -> None:
    store = world.config()
    world.put(schedule("c1/web"))
    got = store.get("schedule", "c1/web")
    assert got is not None
    assert got["service"] == "c1/web"
    assert store.delete("schedule", "c1/web") is True
    assert store.get("schedule", "c1/web") is None
    assert store.delete("schedule", "c1/web") is False


def test_service_of_problem_reads_labels() -> None:
    def p(document: str) -> Problem:
        return Problem("s", document, "-", "m")

    assert service_of_problem(p("schedule c1/web")) == "c1/web"
    assert service_of_problem(p("override c1/web#x1")) == "c1/web"
    assert service_of_problem(p("override c1/web (document 3)")) == "c1/web"
    assert service_of_problem(p("calendar company")) is None
    assert service_of_problem(p("document 4")) is None


def test_init_tables_is_idempotent_and_enables_ttl(world: World) -> None:
    again = init_tables(world.clients(), world.settings)
    assert "table teiji-config exists" in again
    ttl = world.dynamodb.describe_time_to_live(TableName="teiji-config")
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    table = world.dynamodb.describe_table(TableName="teiji-state")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]


# Baselines --------------------------------------------------------------------------------------
def test_baseline_is_never_overwritten(world: World) -> None:
    store = world.state_store()
    first = make_baseline("c1/web", desired=3, version="first")
    assert store.save_baseline(first) is True
    assert store.save_baseline(make_baseline("c1/web", desired=0, version="second")) is False
    assert store.get_baselines(["c1/web"]) == {"c1/web": first}


def test_baseline_delete_is_conditional_on_what_was_read(world: World) -> None:
    store = world.state_store()
    saved = make_baseline("c1/web", version="first")
    store.save_baseline(saved)
    assert store.delete_baseline("c1/web", make_baseline("c1/web", version="other")) is False
    assert "c1/web" in store.get_baselines(["c1/web"])
    assert store.delete_baseline("c1/web", saved) is True
    assert store.get_baselines(["c1/web"]) == {}


def test_archived_baseline_is_written_once_and_read_back(world: World) -> None:
    store = world.state_store()
    old = make_baseline("c1/web", version="old")
    new_arn = "arn:aws:ecs:ap-northeast-1:123456789012:service/c1/web"

    assert store.archive_baseline(old, archived_at=NOW, superseded_by=new_arn) is True

    item = world.dynamodb.get_item(
        TableName="teiji-state",
        Key={"pk": {"S": "baseline-archive"}, "sk": {"S": "c1/web#2026-12-01T03:00:00+00:00"}},
    )["Item"]
    assert item["key"] == {"S": "c1/web"}
    assert item["archived_at"] == {"S": NOW.isoformat()}
    assert item["superseded_by"] == {"S": new_arn}
    assert item["desired_count"] == {"N": "3"}
    assert store.get_archived_baselines("c1/web") == [old]
    # The slot itself is untouched: archiving copies, the plan deletes separately.
    assert store.get_baselines(["c1/web"]) == {}


def test_an_identical_archived_copy_counts_as_done(world: World) -> None:
    # A tick that archived and then died: the next one finds its own copy and goes on.
    store = world.state_store()
    old = make_baseline("c1/web", version="old")
    store.archive_baseline(old, archived_at=NOW)
    log = CallLog()
    log.attach(store.clients)

    later = NOW + timedelta(minutes=15)
    assert store.archive_baseline(old, archived_at=later, superseded_by="arn:x") is False

    assert [c.operation for c in log.calls] == ["PutItem"]  # the old item came back with it
    assert log.calls[0].params["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert store.get_archived_baselines("c1/web") == [old]


def test_a_different_archived_baseline_is_never_overwritten(world: World) -> None:
    store = world.state_store()
    first = make_baseline("c1/web", desired=3, version="first")
    store.archive_baseline(first, archived_at=NOW)
    with pytest.raises(StoreError, match="already holds a different baseline"):
        store.archive_baseline(make_baseline("c1/web", desired=5, version="x"), archived_at=NOW)
    assert store.get_archived_baselines("c1/web") == [first]


def test_archived_baselines_are_listed_per_service_oldest_first(world: World) -> None:
    store = world.state_store()
    older = make_baseline("c1/web", version="a").model_copy(
        update={"saved_at": NOW - timedelta(days=40)}
    )
    newer = make_baseline("c1/web", version="b")
    for baseline in (newer, older, make_baseline("c1/web2"), make_baseline("c1/web@1/r")):
        store.archive_baseline(baseline, archived_at=NOW)
    assert store.get_archived_baselines("c1/web") == [older, newer]
    assert [b.key for b in store.get_archived_baselines("c1/web2")] == ["c1/web2"]
    # Archived baselines are not baselines: nothing restores them.
    assert store.get_baselines(["c1/web", "c1/web2"]) == {}


def test_baselines_are_read_100_keys_per_call(world: World) -> None:
    store = world.state_store()
    keys = [f"c{i % 3}/svc-{i:03d}" for i in range(220)]
    for key in keys[:200]:
        store.save_baseline(make_baseline(key))
    log = CallLog()
    log.attach(store.clients)
    found = store.get_baselines([*keys, *keys[:5]])  # duplicates are asked once
    assert set(found) == set(keys[:200])
    calls = log.named("BatchGetItem")
    assert [len(c.params["RequestItems"]["teiji-state"]["Keys"]) for c in calls] == [100, 100, 20]
    assert all(c.params["RequestItems"]["teiji-state"]["ConsistentRead"] for c in calls)


def test_unprocessed_keys_are_retried_with_backoff(world: World) -> None:
    sleeps: list[float] = []
    store = StateStore(world.clients(), "teiji-state", sleep=sleeps.append)
    saved = [make_baseline(f"c1/s{i}") for i in range(3)]
    items = []
    for b in saved:
        item = {"pk": {"S": "baseline"}, "sk": {"S": b.key}}
        item.update(
            {
                "desired_count": {"N": "3"},
                "min_capacity": {"N": "2"},
                "max_capacity": {"N": "6"},
                "suspended": {
                    "M": {
                        "dynamic_in": {"BOOL": True},
                        "dynamic_out": {"BOOL": False},
                        "scheduled": {"BOOL": False},
                    }
                },
                "saved_at": {"S": b.saved_at.isoformat()},
                "decided_by": {"S": b.decided_by},
                "version": {"S": b.version},
            }
        )
        items.append(item)

    def keys(*names: str) -> dict[str, Any]:
        return {
            "teiji-state": {
                "Keys": [{"pk": {"S": "baseline"}, "sk": {"S": n}} for n in names],
                "ConsistentRead": True,
            }
        }

    client = store.clients.dynamodb()
    with Stubber(client) as stub:
        stub.add_response(
            "batch_get_item",
            {"Responses": {"teiji-state": items[:1]}, "UnprocessedKeys": keys("c1/s1", "c1/s2")},
            {"RequestItems": keys("c1/s0", "c1/s1", "c1/s2")},
        )
        stub.add_response(
            "batch_get_item",
            {"Responses": {"teiji-state": items[1:2]}, "UnprocessedKeys": keys("c1/s2")},
            {"RequestItems": keys("c1/s1", "c1/s2")},
        )
        stub.add_response(
            "batch_get_item",
            {"Responses": {"teiji-state": items[2:]}, "UnprocessedKeys": {}},
            {"RequestItems": keys("c1/s2")},
        )
        found = store.get_baselines(["c1/s0", "c1/s1", "c1/s2"])
        stub.assert_no_pending_responses()
    assert set(found) == {"c1/s0", "c1/s1", "c1/s2"}
    assert found["c1/s2"].suspended == SuspendedState(dynamic_in=True)
    assert len(sleeps) == 2


def test_keys_that_stay_unprocessed_end_in_an_error(world: World) -> None:
    store = StateStore(world.clients(), "teiji-state", sleep=lambda _: None)
    stuck = {
        "teiji-state": {
            "Keys": [{"pk": {"S": "baseline"}, "sk": {"S": "c1/s0"}}],
            "ConsistentRead": True,
        }
    }
    with Stubber(store.clients.dynamodb()) as stub:
        for _ in range(8):
            stub.add_response("batch_get_item", {"Responses": {}, "UnprocessedKeys": stuck})
        with pytest.raises(StoreError, match="unprocessed"):
            store.get_baselines(["c1/s0"])


def test_unreadable_baseline_is_listed_not_returned(world: World) -> None:
    world.put_item({"pk": "baseline", "sk": "c1/odd", "desired_count": "lots"}, table="teiji-state")
    store = world.state_store()
    assert store.get_baselines(["c1/odd"]) == {}
    assert "c1/odd" in store.read_baselines(["c1/odd"]).unreadable


def test_settings_table_names_are_used() -> None:
    with moto_tables(Settings(config_table="cfg", state_table="st")) as world:
        names = world.dynamodb.list_tables()["TableNames"]
        assert sorted(names) == ["cfg", "st"]
        world.put(schedule("c1/web"))
        docs, _ = ConfigStore(world.clients(), "cfg").load(now=NOW)
        assert set(docs.schedules) == {"c1/web"}


# to_attribute_map writes exactly what boto3's own serializer writes ----------------------------
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.frozensets(st.text(min_size=1, max_size=5), min_size=1, max_size=3).map(set),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _boto3_attribute_map(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    from engine.store import _for_dynamodb

    serializer = TypeSerializer()
    return {k: serializer.serialize(_for_dynamodb(v)) for k, v in item.items() if v is not None}


@given(item=st.dictionaries(st.text(max_size=8), _VALUES, max_size=5))
def test_items_are_written_as_boto3_writes_them_or_refused_as_it_refuses_them(
    item: dict[str, Any],
) -> None:
    from engine.store import to_attribute_map

    try:
        expected: dict[str, Any] | Exception = _boto3_attribute_map(item)
    except Exception as exc:  # boto3 refuses numbers it cannot hold exactly
        expected = exc
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)):
            to_attribute_map(item)
    else:
        assert to_attribute_map(item) == expected
