"""pydantic models of every document teiji reads and every record it keeps; their JSON Schema."""

from schemas.documents import (
    DEFAULT_TIMEZONE,
    Calendar,
    CronPair,
    DateRange,
    Document,
    Override,
    RunningCapacity,
    Schedule,
    StoppedCapacity,
    Window,
)
from schemas.keys import ServiceKey, service_key

__all__ = [
    "DEFAULT_TIMEZONE",
    "Calendar",
    "CronPair",
    "DateRange",
    "Document",
    "Override",
    "RunningCapacity",
    "Schedule",
    "ServiceKey",
    "StoppedCapacity",
    "Window",
    "service_key",
]
