"""The fleet bench's model (bench/fleet.py): waves of workers under the concurrency cap, and its
bounds failing the run when a figure misses."""

from __future__ import annotations

from typing import Any

from bench.fleet import bounds, fleet_figures


def _run(kind: str, emulated: float, calls: int = 50, **kw: Any) -> dict[str, Any]:
    run = {"kind": kind, "emulated_s": emulated, "cpu_s": 0.0, "calls": calls}
    run.update({"time_ratio": 1.0, "calls_ratio": 1.0, "throttle_errors": 0}, **kw)
    return run


ORCHESTRATOR = {"scopes": 1000, "document_read_cold_s": 10.0, "document_read_warm_s": 5.0}


def test_the_fleet_takes_a_wave_per_cap_of_scopes_at_the_slowest_scope() -> None:
    workers = {"runs": [_run("stop", 1.0), _run("stop", 2.0), _run("start", 1.5)]}
    found = fleet_figures(ORCHESTRATOR, workers, cap=50, latency=0.02)
    assert found["waves"] == 20
    # 20 waves x the slowest scope: a worker's run includes its read of its own documents.
    assert found["fleet_stop_s"] == 20 * 2.0
    assert found["fleet_start_s"] == 20 * 1.5
    assert found["single_stop_fits_services"] > 0


def test_a_missed_figure_fails_the_bench() -> None:
    runs = [_run("stop", 1.0), _run("start", 1.0, throttle_errors=1)]
    results = {
        "fleet": {"fleet_stop_s": 100.0, "fleet_start_s": 901.0},
        "workers": {"runs": runs},
        "orchestrator": {"orchestrator_s": 3.0},
    }
    holds = {figure: ok for figure, _, ok in bounds(results)}
    assert holds == {
        "fleet_stop_s": True,
        "fleet_start_s": False,
        "throttle_errors": False,
        "orchestrator_s": True,
        "worker_time_ratio": True,
        "worker_calls_ratio": True,
    }


def test_the_worker_floors_count_the_fan_out_layout() -> None:
    from bench.floor import START, STOP, worker_floor, worker_round_trips
    from bench.world import WorldSpec, planned_world

    world = planned_world(WorldSpec.one_scope(20))
    stop = worker_floor(world, kind=STOP, allowed_clusters=("bench-00",), documented=10)
    # 10 documents by key (1), the 10 tagged services' keys again (1) + calendars, profiles,
    # overrides (3); the lease taken (given back with the outcome); the tick's record read and
    # the outcome written; one task size for the stop.
    assert (stop.document_pages, stop.lease, stop.fanout, stop.task_definitions) == (5, 1, 2, 1)
    assert stop.list_services == 1 and stop.describe_untracked == 0
    assert stop.update_service == stop.register_scalable_target == 20
    start = worker_floor(world, kind=START, allowed_clusters=("bench-00",), documented=10)
    assert start.task_definitions == 0 and start.total == stop.total - 1
    assert worker_round_trips(world, STOP, discovers=True) == 9
    assert worker_round_trips(world, START, discovers=True) == 8
    assert worker_round_trips(world, START, discovers=False) == 7
