"""Bounded concurrency: the tick's units of work, one lane per (account, region) group.

``run_lanes`` runs every lane at once, each with a bounded number of worker threads taking
its units (``Unit``) in order, and keeps a ``VirtualClock`` exact while they work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence, Sized

from engine.aws.clock import Clock, participating

Unit = Callable[[], None]

# However many (account, region) groups there are, a tick never runs more threads than this.
MAX_THREADS = 128


class Lane:
    """One group's units, handed out in order to that group's workers.

    ``units`` may be a generator: it is advanced under the lane's lock, one unit per take, so
    a check made while producing the next unit (the tick's lease deadline) runs in order.
    ``size`` (default: ``len(units)``) says how many units there are at most, so no more
    threads start than there is work for.
    """

    def __init__(self, units: Iterable[Unit], size: int | None = None) -> None:
        if size is None:
            if not isinstance(units, Sized):
                raise TypeError("a lane of a generator needs its size")
            size = len(units)
        self.size = size
        self._units = iter(units)
        self._lock = threading.Lock()

    def take(self) -> Unit | None:
        with self._lock:
            return next(self._units, None)


def run_lanes(
    clock: Clock,
    lanes: Sequence[Lane | Sequence[Unit]],
    *,
    workers: int,
    max_threads: int = MAX_THREADS,
) -> None:
    """Run every lane at once, each with up to ``workers`` threads taking its units in order.

    A lane is one (account, region) group: AWS's buckets are per account and Region, so
    groups do not slow each other down, while ``workers`` bounds what one group has in flight.
    Units should handle their own errors; anything that escapes one (``BaseException``
    included) stops the workers from taking more units and is raised here once all threads
    have ended.

    Each worker joins the clock (``participating``) for its whole life, not unit by unit, and
    the caller holds the clock still until every worker has joined: on a ``VirtualClock`` time
    would otherwise move on while a thread is between units or not started yet. The caller
    itself waits outside the clock, and must not be a participant when it calls this.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    queues = [lane if isinstance(lane, Lane) else Lane(lane) for lane in lanes]
    queues = [queue for queue in queues if queue.size > 0]
    if not queues:
        return
    per_lane = max(1, min(workers, max_threads // len(queues)))
    counts = [min(per_lane, queue.size) for queue in queues]
    if sum(counts) == 1:  # one worker's worth of work: the caller does it, no thread
        with participating(clock):
            while (unit := queues[0].take()) is not None:
                unit()
        return

    failures: list[BaseException] = []
    stop = threading.Event()
    joined = threading.Semaphore(0)
    lock = threading.Lock()

    def work(queue: Lane) -> None:
        with participating(clock):
            joined.release()
            try:
                while not stop.is_set():
                    unit = queue.take()
                    if unit is None:
                        return
                    unit()
            except BaseException as exc:  # re-raised by the caller once every thread has ended
                with lock:
                    failures.append(exc)
                stop.set()

    threads = [
        threading.Thread(target=work, args=(queue,), name=f"teiji-lane{i}-{n}", daemon=True)
        for i, (queue, count) in enumerate(zip(queues, counts, strict=True))
        for n in range(count)
    ]
    with participating(clock):
        for thread in threads:
            thread.start()
        for _ in threads:
            joined.acquire()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
