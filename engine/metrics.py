"""The tick's figures as CloudWatch metrics, in the embedded metric format (pure).

One log line per tick carries them (``log_metrics``): CloudWatch Logs extracts the metrics from
it, so they cost no API call. Namespace ``teiji``, one dimension, ``Deployment`` (the function's
name), so a deployment has one series per metric: low cardinality, whatever the fleet's size.

- ServicesRunning, ServicesStopped: managed services whose decision now is running or stopped;
- Changed, Failed, Skipped: services the tick changed, could not converge, or had no time for;
- InvalidDocuments: documents that do not parse or validate;
- ApiCalls, Throttles: AWS requests sent (retries included) and throttling errors among them;
- TickSeconds: how long the tick took;
- EventsFailed: events that did not reach the bus;
- StoppedTaskHours: tasks teiji keeps from running (what people set, less what the tick leaves
  running) times the tick interval, for the interval from this tick to the next;
- EstimatedSavingsUSD: those task-hours at Fargate's list price (``engine.savings``); EC2 and
  external capacity, and tasks of unknown size, count in hours only.

With ``TEIJI_METRICS_PER_SERVICE`` each service with a saving also gets a line of its own with
the last two under the dimensions Deployment and Service (one series per service: custom
metrics are billed per series, so this is off by default).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from engine.logs import log_event
from engine.report import TickReport

NAMESPACE = "teiji"
DIMENSION = "Deployment"
UNITS = {
    "ServicesRunning": "Count",
    "ServicesStopped": "Count",
    "Changed": "Count",
    "Failed": "Count",
    "Skipped": "Count",
    "InvalidDocuments": "Count",
    "ApiCalls": "Count",
    "Throttles": "Count",
    "TickSeconds": "Seconds",
    "EventsFailed": "Count",
    "StoppedTaskHours": "None",
    "EstimatedSavingsUSD": "None",
}
SERVICE_DIMENSION = "Service"
SAVINGS_METRICS = ("StoppedTaskHours", "EstimatedSavingsUSD")
DEFAULT_INTERVAL_H = 0.25


def tick_figures(report: TickReport, interval_h: float = DEFAULT_INTERVAL_H) -> dict[str, float]:
    """The metrics' values for one finished tick; ``interval_h``: hours until the next tick."""
    states = [s.decision.state for s in report.services if s.decision is not None]
    counts = report.counts
    savings = [s.saving for s in report.services if s.saving is not None]
    return {
        "ServicesRunning": states.count("running"),
        "ServicesStopped": states.count("stopped"),
        "Changed": counts["changed"],
        "Failed": sum(1 for s in report.services if s.failed),
        "Skipped": counts["skipped"],
        "InvalidDocuments": len(report.invalid_documents),
        "ApiCalls": report.api_calls,
        "Throttles": report.throttle_errors,
        "TickSeconds": round(report.duration_s, 3),
        "EventsFailed": report.events_failed,
        "StoppedTaskHours": round(sum(x.hours(interval_h) for x in savings), 9),
        "EstimatedSavingsUSD": round(sum(x.usd(interval_h) for x in savings), 9),
    }


def emf_document(
    report: TickReport, deployment: str, interval_h: float = DEFAULT_INTERVAL_H
) -> dict[str, Any]:
    """An embedded-metric-format document: the directive under ``_aws``, the values and the
    dimension at the root, timed at the tick's instant (milliseconds since the epoch)."""
    figures = tick_figures(report, interval_h)
    return _document(report, [DIMENSION], {DIMENSION: deployment}, figures)


def service_documents(
    report: TickReport, deployment: str, interval_h: float = DEFAULT_INTERVAL_H
) -> list[dict[str, Any]]:
    """One document per service with a saving: its two savings figures under the dimensions
    Deployment and Service (the service key)."""
    documents = []
    for service in report.services:
        saving = service.saving
        if saving is None:
            continue
        figures = {
            "StoppedTaskHours": round(saving.hours(interval_h), 9),
            "EstimatedSavingsUSD": round(saving.usd(interval_h), 9),
        }
        dimensions = {DIMENSION: deployment, SERVICE_DIMENSION: service.key}
        documents.append(_document(report, list(dimensions), dimensions, figures))
    return documents


def _document(
    report: TickReport, names: list[str], dimensions: dict[str, str], figures: dict[str, float]
) -> dict[str, Any]:
    return {
        "_aws": {
            "Timestamp": int(report.at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [names],
                    "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in figures],
                }
            ],
        },
        **dimensions,
        **figures,
    }


def deployment_name() -> str:
    """The function's name in the Lambda, ``teiji`` elsewhere (a terminal, the demo)."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "teiji"


def log_metrics(
    report: TickReport, *, interval_h: float = DEFAULT_INTERVAL_H, per_service: bool = False
) -> None:
    """Write the tick's metrics line, and with ``per_service`` one per service with a saving
    (none for a dry run: it changed nothing)."""
    if report.dry_run:
        return
    deployment = deployment_name()
    if per_service:
        for document in service_documents(report, deployment, interval_h):
            log_event("service metrics", level=logging.INFO, **document)
    log_event("tick metrics", level=logging.INFO, **emf_document(report, deployment, interval_h))
