"""The invariant teiji keeps, as one assertion for every test to make after it acts.

After any tick, crash, fault or concurrent tick, every managed service has either the capacity
people last gave it (desiredCount, MinCapacity, MaxCapacity and all three SuspendedState flags)
or a baseline holding exactly that. Stated precisely, for each service:

- when a baseline is stored for it (under any key that names it: ``cluster/service``, or the
  same with teiji's own account and/or region spelled out), that baseline restores exactly the
  expected capacity, and there is only one;
- when none is stored, the service's live capacity is exactly the expected capacity.

A baseline that holds bounds derived from teiji's own pin (0..0 suspended), or a second
baseline under another spelling of the key, fails the assertion.

Both read moto's backends directly (no request, so no fault layer and no call log sees them):
they work in-process (``mock_aws``) and against ``ThreadedMotoServer``, which runs in the same
process::

    expected = snapshot("c1/web", "c1/api")          # before the first tick
    ... ticks, faults, people changing things ...
    assert_invariant(world, expected)                 # after every one of them
    expected["c1/web"] = Capacity.of(3, (2, 8))       # what people set becomes the original
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.keys import ServiceKey
from tests.faults import Capacity, baseline_capacity, capacities, stored_items
from tests.world import ACCOUNT, REGION, World

__all__ = ["Capacity", "assert_invariant", "baselines_naming", "snapshot", "violations"]


def snapshot(
    keys: Iterable[str] | None = None, *, account: str = ACCOUNT, region: str = REGION
) -> dict[str, Capacity]:
    """The live capacity of ``keys`` (``cluster/service``; default every service) right now."""
    live = capacities(account, region)
    if keys is None:
        return live
    return {key: live[key] for key in keys}


def baselines_naming(
    service: str,
    items: Mapping[str, Mapping[str, Any]],
    *,
    account: str = ACCOUNT,
    region: str = REGION,
) -> dict[str, Mapping[str, Any]]:
    """The stored baselines (by sort key) whose key names ``service`` in this account and
    region, whichever way the key spells the scope."""
    found: dict[str, Mapping[str, Any]] = {}
    for sk, item in items.items():
        try:
            parsed = ServiceKey.parse(sk)
        except ValueError:
            continue
        if parsed.canonical(account, region) == ServiceKey(service):
            found[sk] = item
    return found


def violations(
    expected: Mapping[str, Capacity],
    *,
    state_table: str,
    account: str = ACCOUNT,
    region: str = REGION,
) -> list[str]:
    """Every way the world breaks the invariant for ``expected``, as sentences (empty: holds)."""
    live = capacities(account, region)
    items = stored_items(state_table, "baseline", account, region)
    problems: list[str] = []
    for service, want in sorted(expected.items()):
        stored = baselines_naming(service, items, account=account, region=region)
        if len(stored) > 1:
            problems.append(f"{service}: {len(stored)} baselines ({', '.join(sorted(stored))})")
        for sk, item in sorted(stored.items()):
            held = baseline_capacity(item)
            if held != want:
                problems.append(f"{service}: baseline {sk} holds {held}, people gave {want}")
        if not stored:
            now = live.get(service)
            if now != want:
                problems.append(f"{service}: no baseline and the service is at {now}, not {want}")
    return problems


def assert_invariant(
    world: World | None,
    expected: Mapping[str, Capacity],
    *,
    state_table: str | None = None,
    account: str = ACCOUNT,
    region: str | None = None,
    context: str = "",
) -> None:
    """Fail with every violation when a service has neither its expected capacity nor a
    baseline holding exactly that. ``world`` gives the state table and region (None: the
    defaults, or the ones passed)."""
    table = state_table or (world.settings.state_table if world else "teiji-state")
    where = region or (world.region if world else REGION)
    found = violations(expected, state_table=table, account=account, region=where)
    assert not found, f"{context + ': ' if context else ''}invariant broken: " + "; ".join(found)
