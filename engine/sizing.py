"""Task sizes for the savings figures: DescribeTaskDefinition once per revision, and only where
no baseline records the size already.

Which services need one is ``engine.savings.task_definition_to_read``: a service the tick keeps
stopped on Fargate whose baseline does not hold the size of the revision it runs (a stop about
to save its baseline, a baseline saved before teiji recorded sizes, a revision deployed while
it was stopped). In steady state, night after night, the baselines hold the sizes and the tick
makes no call here.

A task definition revision never changes, so what was read is kept for the life of the process
(a warm Lambda container reads each revision once). The calls are paced like every other (the
``ecs_other`` bucket), one lane per (account, region). A call that fails costs only the figure:
the service is counted in hours, unpriced, and its stop goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from engine.aws import ecs
from engine.aws.clock import Clock
from engine.aws.errors import error_text
from engine.aws.lanes import Unit, run_lanes
from engine.logs import log_event
from engine.model import Decision
from engine.savings import spec_from_definition, task_definition_to_read
from schemas.records import TaskSpec

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from engine.phases import Observed

# (account, region, task definition ARN) -> its size (None: it gives no task-level size).
_Key = tuple[str | None, str | None, str]
_READ: dict[_Key, TaskSpec | None] = {}
_READ_LIMIT = 4096
_LOCK = threading.Lock()


def forget_read_sizes() -> None:
    """Empty the process's memory of task definitions (tests)."""
    with _LOCK:
        _READ.clear()


def with_task_sizes(
    clients: Clients,
    pace: Clock,
    observed: Observed,
    decisions: Mapping[str, Decision],
    *,
    workers: int,
) -> Observed:
    """``observed`` with each observation that needs a size carrying it (``Observation.task``)."""
    wanted: dict[str, _Key] = {}
    for key, observation in observed.observations.items():
        decision = decisions.get(key)
        if decision is None:
            continue
        arn = task_definition_to_read(
            decision.state,
            observation.raw,
            observed.baselines.found.get(key),
            observation.desired_count,
        )
        if arn is not None:
            wanted[key] = (observation.account, observation.region, arn)
    if not wanted:
        return observed
    with _LOCK:
        missing = sorted({k for k in wanted.values() if k not in _READ}, key=str)
    failures: list[str] = []

    def read(key: _Key) -> None:
        account, region, arn = key
        try:
            definition = ecs.describe_task_definition(clients.ecs(account, region), arn)
            spec = spec_from_definition(arn, definition)
        except Exception as exc:  # the figure only: never the service's stop
            with _LOCK:
                failures.append(error_text(exc))
            return
        with _LOCK:
            if len(_READ) >= _READ_LIMIT:
                _READ.clear()
            _READ[key] = spec

    lanes: dict[tuple[str | None, str | None], list[Unit]] = {}
    for where in missing:
        lanes.setdefault((where[0], where[1]), []).append(partial(read, where))
    run_lanes(pace, list(lanes.values()), workers=workers)
    if failures:
        log_event(
            "cannot read some task definitions; those services are counted in hours, unpriced",
            level=logging.WARNING,
            task_definitions=len(failures),
            error=failures[0],
        )
    with _LOCK:
        sizes = {key: _READ.get(source) for key, source in wanted.items()}
    observations = dict(observed.observations)
    for key, spec in sizes.items():
        if spec is not None:
            observations[key] = replace(observations[key], task=spec)
    return replace(observed, observations=observations)
