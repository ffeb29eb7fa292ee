"""``python -m bench.wake_keep`` on a few wakes: the figures it prints are measured, and its
bounds hold (the same bounds ``make bench`` runs at 50 wakes)."""

from __future__ import annotations

import copy
import os

from bench.wake_keep import BOUND_RUN_MS, _bounds, measure


def test_the_keep_awake_bench_measures_a_run_and_its_bounds_hold() -> None:
    before = dict(os.environ)
    result = measure(wakes=5, services=20)
    assert dict(os.environ) == before, "the bench gives the environment back as it found it"
    first, again = result["first"], result["again"]
    assert first["extended"] == 3  # every other service had requests
    assert first["by_operation"]["PutItem"] == 3 and first["by_operation"]["GetMetricData"] == 1
    assert "PutItem" not in again["by_operation"] and again["extended"] == 0
    assert first["cpu_ms"] > 0 and first["calls"] == sum(first["by_operation"].values())
    assert _bounds(result, cpu=False) == []
    # CPU time beside the other tests is no measurement (make bench measures it); the bound
    # itself must still fail a run over it.
    slow = copy.deepcopy(result)
    slow["first"]["cpu_ms"] = BOUND_RUN_MS + 1
    assert _bounds(slow) == [f"first: CPU {BOUND_RUN_MS + 1:.1f} ms > {BOUND_RUN_MS} ms"]
