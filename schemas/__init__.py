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
    parse_service_key,
    service_key,
)

__all__ = [
    "DEFAULT_TIMEZONE",
    "Calendar",
    "CronPair",
    "DateRange",
    "Document",
    "Override",
    "RunningCapacity",
    "Schedule",
    "StoppedCapacity",
    "Window",
    "parse_service_key",
    "service_key",
]
