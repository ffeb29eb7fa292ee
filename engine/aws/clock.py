"""Clocks: where pacing and the tick's worker threads read time and wait.

``RealClock`` is the process's own (the Lambda's). ``VirtualClock`` runs emulated seconds
that pass only while every participating thread sleeps, so the benchmark and the scale tests
see minutes of AWS time in seconds of real time, independent of how fast the machine is.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol


class Clock(Protocol):
    """Where pacing reads time and waits: seconds, monotonic, any origin."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """The process's own clock: what the Lambda uses."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class _Sleeper:
    __slots__ = ("done", "ready", "wake")

    def __init__(self, wake: float, lock: threading.RLock) -> None:
        self.wake = wake
        self.done = False
        self.ready = threading.Condition(lock)  # notified when its time has come


class VirtualClock:
    """Emulated seconds that pass only while every participating thread sleeps.

    Nothing real is waited for: when all participants are inside ``sleep``, the clock jumps to
    the earliest wake-up, so computing costs no emulated time and waiting costs no real time.
    A thread that sleeps without having joined takes part for the length of that sleep, which
    is all single-threaded use needs. Threads that work concurrently must join with
    ``participant()`` so that time does not jump while one of them is still busy. If a
    participant is blocked somewhere else (not in ``sleep``) for ``stall_timeout`` real
    seconds, time moves on anyway and ``stalls`` counts it, instead of the run hanging.

    The thread whose change lets time move (the last participant to fall asleep or to leave)
    moves it, and wakes only the sleepers whose time has come: with dozens of worker threads,
    waking every sleeper on every change cost more CPU than the work being measured.
    """

    def __init__(self, start: float = 0.0, *, stall_timeout: float = 0.5) -> None:
        self._now = start
        self._lock = threading.RLock()
        self._sleepers: list[_Sleeper] = []
        self._participants = 0
        self._version = 0  # bumps on every change; a wait that sees none has stalled
        self._joined = threading.local()
        self.stall_timeout = stall_timeout
        self.stalls = 0

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    @contextmanager
    def participant(self) -> Iterator[None]:
        """Hold time still while the calling thread works, until the block ends."""
        with self._lock:
            self._participants += 1
            self._joined.depth = self._depth() + 1
            self._version += 1
        try:
            yield
        finally:
            with self._lock:
                self._participants -= 1
                self._joined.depth = self._depth() - 1
                self._changed()

    def sleep(self, seconds: float) -> None:
        if not math.isfinite(seconds):
            # As time.sleep refuses NaN: a NaN would never wake, an infinity end time itself.
            raise ValueError(f"cannot sleep {seconds!r} seconds")
        if seconds <= 0:
            return
        with self._lock:
            joined = self._depth() > 0
            if not joined:
                self._participants += 1
            me = _Sleeper(self._now + seconds, self._lock)
            self._sleepers.append(me)
            self._changed()
            try:
                while not me.done:
                    seen = self._version
                    me.ready.wait(self.stall_timeout)
                    if not me.done and self._version == seen:
                        self.stalls += 1
                        self._advance()
            finally:
                if not me.done:  # interrupted
                    self._sleepers.remove(me)
                if not joined:
                    self._participants -= 1
                self._changed()

    def _depth(self) -> int:
        depth: int = getattr(self._joined, "depth", 0)
        return depth

    def _changed(self) -> None:
        # Caller holds the lock. Every participant asleep: time moves to the earliest wake-up.
        self._version += 1
        if self._sleepers and len(self._sleepers) >= self._participants:
            self._advance()

    def _advance(self) -> None:
        # Caller holds the lock. Woken sleepers leave the list at once, so they count as busy
        # until they sleep again or leave, and time cannot run past them meanwhile.
        self._now = max(self._now, min(s.wake for s in self._sleepers))
        still: list[_Sleeper] = []
        for sleeper in self._sleepers:
            if sleeper.wake <= self._now:
                sleeper.done = True
                sleeper.ready.notify()
            else:
                still.append(sleeper)
        self._sleepers = still
        self._version += 1


def participating(clock: Clock) -> AbstractContextManager[None]:
    """``clock.participant()`` for a ``VirtualClock``; nothing to do for the other clocks.

    Worker threads wrap each unit of work in it so emulated time stays exact under concurrency.
    """
    if isinstance(clock, VirtualClock):
        return clock.participant()
    return nullcontext()
