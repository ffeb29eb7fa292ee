"""``python -m bench.wake`` on a small table: the figures it prints are measured, and its
bounds hold (the same bounds ``make bench`` runs at 1,000 schedules)."""

from __future__ import annotations

import copy
import os

from bench.wake import BOUND_REPEAT_CALLS, BOUND_REQUEST_MS, _bounds, measure


def test_the_wake_bench_measures_a_wake_and_its_bounds_hold() -> None:
    before = dict(os.environ)
    result = measure(services=20, aws_ready_s=23, repeats=3)
    assert dict(os.environ) == before, "the bench gives the environment back as it found it"
    assert result["first"]["status"] == 200
    assert result["first"]["calls"] > BOUND_REPEAT_CALLS  # it converged
    assert result["repeat"]["calls"] <= BOUND_REPEAT_CALLS
    assert result["bad"]["calls"] == 0
    # Healthy at 23 s; the reloads come every 5 s and converge every 10 s.
    assert result["served_at_s"] is not None and 23 <= result["served_at_s"] <= 35
    assert _bounds(result, cpu=False) == []
    # CPU time beside the other tests is no measurement (make bench measures it); the bound
    # itself must still fail a run over it.
    slow = copy.deepcopy(result)
    slow["first"]["cpu_ms"] = BOUND_REQUEST_MS + 1
    assert [f for f in _bounds(slow) if f.startswith("CPU per request")] != []
