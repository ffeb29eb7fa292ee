"""An edit of a profile (or of a calendar it lists) reaches the services a ``teiji:profile``
tag puts under it, not only those whose document names it: the edits function finds them as
the tick does, in seconds rather than at the next quarter hour."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.streamworld import NIGHT, Stream, deliver, edits_world
from tests.world import World

PROFILE = {
    "kind": "profile",
    "name": "office",
    "timezone": "Asia/Tokyo",
    "windows": [{"days": "mon-fri", "start": "05:00", "end": "22:00"}],
}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("TEIJI_ALLOWED_CLUSTERS", "c1")
    with edits_world(monkeypatch) as w:
        w.create_service("c1", "tagged", desired=2)
        arn = w.ecs.describe_services(cluster="c1", services=["tagged"])["services"][0][
            "serviceArn"
        ]
        w.ecs.tag_resource(resourceArn=arn, tags=[{"key": "teiji:profile", "value": "office"}])
        w.put({**PROFILE, "windows": [{"days": "mon-sun", "start": "00:00", "end": "24:00"}]})
        yield w


def _desired(world: World, name: str) -> int:
    found = world.ecs.describe_services(cluster="c1", services=[name])["services"][0]
    return int(found["desiredCount"])


def test_a_profile_edit_converges_the_services_tagged_with_it(world: World) -> None:
    stream = Stream(world)
    world.put(PROFILE)  # a person narrows the profile: at 23:00 the tagged service should stop
    _, result = deliver(stream, NIGHT)
    assert result == {"batchItemFailures": []}
    assert _desired(world, "tagged") == 0
    assert _desired(world, "web") == 2  # its own document was not edited: left to the tick


def test_a_calendar_edit_reaches_tagged_services_through_their_profile(world: World) -> None:
    world.put({**PROFILE, "holidays": ["company"]})
    world.put({"kind": "calendar", "name": "company", "dates": []})
    stream = Stream(world)
    # 2026-12-02 (Wednesday) becomes a company day off: the tagged service should stop.
    world.put({"kind": "calendar", "name": "company", "dates": ["2026-12-02"]})
    _, result = deliver(stream, "2026-12-02T03:00:00Z")
    assert result == {"batchItemFailures": []}
    assert _desired(world, "tagged") == 0
