"""Thin EventBridge adapter: send PutEvents entries, 10 a call, and count what did not arrive.

Publishing never fails a tick: an error answer, a network failure or entries EventBridge
refused (``FailedEntryCount``) are counted and described, and the caller logs them. Entries
are sent in order; a call also stays under PutEvents' 256 KB request limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.aws.errors import AWS_ERRORS, error_text

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

PUT_EVENTS_BATCH = 10  # entries per PutEvents call (API limit)
# The request's total size limit is 256 KB (AWS counts each entry's Source, DetailType, Detail,
# Resources and Time); stay well under it so that AWS's own accounting never refuses a batch.
PUT_EVENTS_BYTES = 200_000


@dataclass
class Published:
    """How many entries arrived, how many did not, and why (a few distinct reasons)."""

    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def refused(self, count: int, why: str) -> None:
        self.failed += count
        if why not in self.errors and len(self.errors) < 5:
            self.errors.append(why)


def put_events(client: EventBridgeClient, entries: Sequence[Mapping[str, Any]]) -> Published:
    """Send ``entries``; never raises for AWS's answer or the network."""
    published = Published()
    for batch in batches(entries):
        try:
            answer: Mapping[str, Any] = client.put_events(Entries=list(batch))  # type: ignore[arg-type]
        except AWS_ERRORS as exc:
            published.refused(len(batch), error_text(exc))
            continue
        results = answer.get("Entries")
        if not isinstance(results, list) or len(results) != len(batch):
            # An answer that does not say which entries arrived: count none as sent.
            published.refused(len(batch), "PutEvents answered without one result per entry")
            continue
        for result in results:
            code = result.get("ErrorCode") if isinstance(result, Mapping) else "unreadable"
            if code:
                message = result.get("ErrorMessage", "") if isinstance(result, Mapping) else ""
                published.refused(1, f"{code}: {message}".rstrip(": "))
            else:
                published.sent += 1
    return published


def batches(entries: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Consecutive runs of at most ``PUT_EVENTS_BATCH`` entries and ``PUT_EVENTS_BYTES``."""
    found: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = entry_bytes(entry)
        if current and (len(current) == PUT_EVENTS_BATCH or size + entry_size > PUT_EVENTS_BYTES):
            found.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        found.append(current)
    return found


def entry_bytes(entry: Mapping[str, Any]) -> int:
    """An entry's size as PutEvents counts it (UTF-8 of its texts, 14 bytes for Time)."""
    texts = [entry.get("Source", ""), entry.get("DetailType", ""), entry.get("Detail", "")]
    texts.extend(entry.get("Resources") or [])
    return sum(len(str(text).encode()) for text in texts) + (14 if "Time" in entry else 0)
