"""JSON-lines logging: one line per service and one summary line per tick.

In the Lambda every line carries ``request_id``, the invocation's (``bind_request_id``, called
by the handler): a context variable for the invocation's own thread, and for the tick's worker
threads (which start with an empty context) the process's current invocation, since a Lambda
process serves one invocation at a time.

Every change is logged with its before/after values and who decided it (the schedule's window
or cron pair, an override's id and author, a holiday). Event payloads and credentials are never
logged: only the fields named here.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from engine.report import ServiceReport, TickReport

LOGGER_NAME = "teiji"
_FIELDS = "teiji_fields"
# A logged string longer than this is cut: a 100 KB service name in an event must not become a
# 100 KB log line (CloudWatch Logs caps an event at 256 KB, and costs by the byte).
MAX_LOGGED_CHARS = 2048


def capped(value: Any, limit: int = MAX_LOGGED_CHARS) -> Any:
    """``value`` with every string in it (in lists and maps too) cut to ``limit`` characters,
    saying how much was cut."""
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        return f"{value[:limit]}… ({len(value) - limit} more characters cut)"
    if isinstance(value, dict):
        return {capped(str(k), limit): capped(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [capped(v, limit) for v in value]
    return value


_REQUEST_ID: ContextVar[str | None] = ContextVar("teiji_request_id", default=None)
_invocation: list[str | None] = [None]  # the process's current invocation, for other threads


def bind_request_id(request_id: object) -> None:
    """Every line logged from now on carries ``request_id`` (None or a non-string: none),
    until the next invocation binds its own."""
    value = request_id if isinstance(request_id, str) and request_id else None
    _REQUEST_ID.set(value)
    _invocation[0] = value


def current_request_id() -> str | None:
    return _REQUEST_ID.get() or _invocation[0]


class JsonLinesFormatter(logging.Formatter):
    """``{"time", "level", "event", ...fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "event": capped(record.getMessage()),
        }
        request_id = current_request_id()
        if request_id is not None:
            line["request_id"] = capped(request_id, 128)
        line.update(capped(dict(getattr(record, _FIELDS, {}) or {})))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", stream: TextIO | None = None) -> logging.Logger:
    """Send teiji's log lines as JSON to ``stream`` (stdout by default); idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(getattr(logging, level.upper(), logging.INFO))
    target = stream or sys.stdout
    for handler in list(logger.handlers):
        if getattr(handler, "teiji", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(target)
    handler.setFormatter(JsonLinesFormatter())
    handler.teiji = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    # The Lambda runtime puts its own handler on the root logger; do not print twice.
    logger.propagate = False
    return logger


def silence_logging() -> None:
    """Drop teiji's log lines: in a terminal the command's own output is the report, and the
    JSON lines are for the Lambda's log group."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False


def log_event(
    event: str, *, level: int = logging.INFO, exc_info: bool = False, **fields: Any
) -> None:
    logging.getLogger(LOGGER_NAME).log(level, event, exc_info=exc_info, extra={_FIELDS: fields})


def log_service(report: ServiceReport, *, dry_run: bool) -> None:
    fields = report.as_json()
    fields["dry_run"] = dry_run
    level = logging.ERROR if report.failed else logging.INFO
    log_event(f"service {report.outcome}", level=level, **fields)


def log_tick(report: TickReport) -> None:
    summary = report.as_json()
    summary.pop("services")
    level = logging.ERROR if report.failed else logging.INFO
    log_event("tick finished", level=level, **summary)
