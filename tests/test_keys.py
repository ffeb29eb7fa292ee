"""ServiceKey: the one type that parses, prints and matches ``cluster/service@scope``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.keys import Closeness, ServiceKey, closeness, keys_named, keys_wanted

ACCOUNT = "123456789012"
STORED = ["c1/web", "c1/web@us-east-1", "c1/api", "c2/api@123456789012", "c3/batch"]


@pytest.mark.parametrize(
    ("key", "typed", "expected"),
    [
        ("c1/web", "c1/web", Closeness.EXACT),
        ("c1/web@123456789012/us-east-1", "c1/web@us-east-1/123456789012", Closeness.EXACT),
        ("c1/web@us-east-1", "c1/web", Closeness.UNSCOPED),
        ("c1/web@us-east-1", "web", Closeness.BARE),
        ("c1/web", "web", Closeness.BARE),
        ("c1/web@us-east-1", "c1/web@eu-west-1", None),
        ("c1/web", "c1/web@us-east-1", None),
        ("c1/web", "c2/web", None),
        ("c1/web", "we", None),
        ("c1/web", "c1", None),
        ("c1/web", "c1/web@nowhere", None),
        # A stored key that does not parse (an invalid document's) is named by its own text.
        ("c1/web@nowhere", "c1/web@nowhere", Closeness.EXACT),
        ("c1/web@nowhere", "c1/web", Closeness.UNSCOPED),
    ],
)
def test_how_closely_a_typed_name_names_a_key(
    key: str, typed: str, expected: Closeness | None
) -> None:
    assert closeness(key, typed) == expected


def test_keys_named_takes_the_closest_level_only() -> None:
    assert keys_named("c1/web", STORED) == ["c1/web"]
    assert keys_named("c1/web@us-east-1", STORED) == ["c1/web@us-east-1"]
    assert keys_named("api", STORED) == ["c1/api", "c2/api@123456789012"]
    assert keys_named("c2/api", STORED) == ["c2/api@123456789012"]
    assert keys_named("batch", STORED) == ["c3/batch"]
    assert keys_named("batch", STORED, loosest=Closeness.UNSCOPED) == []
    assert keys_named("nothing", STORED) == []


def test_keys_wanted_selects_every_scope_of_cluster_service() -> None:
    assert keys_wanted(STORED, ["c1/web"]) == {"c1/web", "c1/web@us-east-1"}
    assert keys_wanted(STORED, ["c1/web@us-east-1"]) == {"c1/web@us-east-1"}
    assert keys_wanted(STORED, ["api"]) == set()  # a bare name never selects for a tick
    assert keys_wanted(["c1/web@nowhere"], ["c1/web@nowhere"]) == {"c1/web@nowhere"}


def test_canonical_spells_the_deployments_own_scope_as_the_bare_key() -> None:
    key = ServiceKey.parse(f"c1/web@{ACCOUNT}/ap-northeast-1")
    assert str(key.canonical(ACCOUNT, "ap-northeast-1")) == "c1/web"
    assert str(key.canonical(ACCOUNT, "us-east-1")) == "c1/web@ap-northeast-1"
    assert str(key.canonical(None, None)) == f"c1/web@{ACCOUNT}/ap-northeast-1"


_NAME = st.from_regex(r"[a-z][a-z0-9_-]{0,8}/[a-z][a-z0-9_-]{0,8}", fullmatch=True)
_ACCOUNTS = st.none() | st.from_regex(r"[0-9]{12}", fullmatch=True)
_REGIONS = st.none() | st.sampled_from(["us-east-1", "ap-northeast-1", "eu-west-2"])
_KEYS = st.builds(ServiceKey, _NAME, _ACCOUNTS, _REGIONS)


@given(_KEYS)
def test_a_printed_key_parses_back_to_itself(key: ServiceKey) -> None:
    assert ServiceKey.parse(str(key)) == key
    assert closeness(str(key), str(key)) is Closeness.EXACT


@given(st.lists(_KEYS, max_size=8), st.lists(_KEYS | _NAME, max_size=4))
def test_keys_wanted_is_closeness_at_most_unscoped(
    keys: list[ServiceKey], typed: list[ServiceKey | str]
) -> None:
    stored = [str(k) for k in keys]
    names = [str(t) for t in typed]
    expected = {
        k
        for k in stored
        for n in names
        if (level := closeness(k, n)) is not None and level <= Closeness.UNSCOPED
    }
    assert keys_wanted(stored, names) == expected
