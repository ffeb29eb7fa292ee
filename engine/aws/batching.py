"""Batching: every read goes to AWS in the batch sizes its API accepts.

Real AWS refuses more than a fixed number of items per call (DescribeServices 10,
DescribeScalableTargets 50, DescribeTasks 100...) where moto accepts any number; teiji always
sends batches of the API's size, so the call count is the same in tests and in production.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int) -> Iterator[list[_T]]:
    """``items`` in lists of at most ``size``, in order."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
