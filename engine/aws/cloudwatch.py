"""Thin CloudWatch adapter: GetMetricData for ``teiji savings``, every page.

One call carries up to 500 queries and returns up to 100,800 data points; an answer cut short
says so with a NextToken (and StatusCode PartialData), and the next page carries on; a last
page (no NextToken) that still says PartialData fails the read. So does a query CloudWatch
could not answer (StatusCode InternalError or Forbidden): a total made of part of the data
would look like a real one. So does a data point that is no finite
number, or a period given twice (it would be counted twice).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.aws.answers import require, unreadable
from engine.aws.batching import chunks

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

QUERIES_PER_CALL = 500
_OPERATION = "GetMetricData"


@dataclass(frozen=True)
class MetricQuery:
    """One metric's statistic per ``period`` seconds: ``id`` names it in the answer."""

    id: str
    namespace: str
    metric: str
    dimensions: Mapping[str, str]
    stat: str
    period: int

    def request(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
                },
                "Period": self.period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


def metric_data(
    client: CloudWatchClient, queries: Sequence[MetricQuery], start: datetime, end: datetime
) -> dict[str, dict[datetime, float]]:
    """query id -> {period start (UTC): value}, every page of every batch of queries."""
    found: dict[str, dict[datetime, float]] = {q.id: {} for q in queries}
    for batch in chunks(list(queries), QUERIES_PER_CALL):
        token: str | None = None
        while True:
            params: dict[str, Any] = {
                "MetricDataQueries": [q.request() for q in batch],
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            }
            if token:
                params["NextToken"] = token
            answer: Mapping[str, Any] = client.get_metric_data(**params)
            results = require(answer, _OPERATION, "MetricDataResults", list)
            for result in results:
                _merge(found, result)
            next_token = answer.get("NextToken")
            if not next_token:
                _complete(results)
                break
            if next_token == token:
                raise unreadable(_OPERATION, "the same NextToken came back twice")
            token = str(next_token)
    return found


def _complete(results: list[Any]) -> None:
    """The last page: no query may still say its data is partial (nothing would follow)."""
    for result in results:
        if result.get("StatusCode") == "PartialData":
            raise unreadable(_OPERATION, f"query {result['Id']}: PartialData with no NextToken")


def _merge(found: dict[str, dict[datetime, float]], result: Any) -> None:
    if not isinstance(result, Mapping) or result.get("Id") not in found:
        raise unreadable(_OPERATION, "a result names no query that was asked")
    status = result.get("StatusCode")
    if status in ("InternalError", "Forbidden"):
        messages = "; ".join(str(m.get("Value", "")) for m in result.get("Messages") or [])
        raise unreadable(_OPERATION, f"query {result['Id']}: {status} {messages}".strip())
    stamps, values = result.get("Timestamps") or [], result.get("Values") or []
    if not isinstance(stamps, list) or not isinstance(values, list) or len(stamps) != len(values):
        raise unreadable(_OPERATION, f"query {result['Id']}: timestamps and values do not pair")
    series = found[str(result["Id"])]
    for stamp, value in zip(stamps, values, strict=True):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not isinstance(stamp, datetime) or not number or not math.isfinite(value):
            raise unreadable(_OPERATION, f"query {result['Id']}: a data point is not a number")
        when = stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        if when in series:  # one value per period: a second one would be counted twice
            raise unreadable(_OPERATION, f"query {result['Id']}: {when.isoformat()} came twice")
        series[when] = float(value)
