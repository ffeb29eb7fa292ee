"""The tick's figures as CloudWatch metrics, in the embedded metric format (pure).

One log line per tick carries them (``log_metrics``): CloudWatch Logs extracts the metrics from
it, so they cost no API call. Namespace ``teiji``, one dimension, ``Deployment`` (the function's
name), so a deployment has one series per metric: low cardinality, whatever the fleet's size.

- ServicesRunning, ServicesStopped: managed services whose decision now is running or stopped;
- Changed, Failed, Skipped: services the tick changed, could not converge, or had no time for;
- InvalidDocuments: documents that do not parse or validate;
- ApiCalls, Throttles: AWS requests sent (retries included) and throttling errors among them;
- TickSeconds: how long the tick took;
- EventsFailed: events that did not reach the bus.
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
}


def tick_figures(report: TickReport) -> dict[str, float]:
    """The metrics' values for one finished tick."""
    states = [s.decision.state for s in report.services if s.decision is not None]
    counts = report.counts
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
    }


def emf_document(report: TickReport, deployment: str) -> dict[str, Any]:
    """An embedded-metric-format document: the directive under ``_aws``, the values and the
    dimension at the root, timed at the tick's instant (milliseconds since the epoch)."""
    figures = tick_figures(report)
    return {
        "_aws": {
            "Timestamp": int(report.at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in figures],
                }
            ],
        },
        DIMENSION: deployment,
        **figures,
    }


def deployment_name() -> str:
    """The function's name in the Lambda, ``teiji`` elsewhere (a terminal, the demo)."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "teiji"


def log_metrics(report: TickReport) -> None:
    """Write the tick's metrics line (none for a dry run: it changed nothing)."""
    if report.dry_run:
        return
    log_event("tick metrics", level=logging.INFO, **emf_document(report, deployment_name()))
