"""GetMetricData answers that are corrupt in ways a total would hide: a value that is no
number (NaN, infinity, a boolean) or a data point given twice. Each fails the read, so
``teiji savings`` says it cannot read the metrics (exit 1) instead of printing ``$nan`` or a
doubled figure."""

from __future__ import annotations

from typing import Any

import pytest

from engine.aws.answers import UnreadableAnswerError
from engine.aws.cloudwatch import metric_data
from tests.test_savings import QUERY, T0, T1, _Pages, _result

CORRUPT: dict[str, Any] = {
    "NaN": {"MetricDataResults": [_result([float("nan")], [T0])]},
    "infinity": {"MetricDataResults": [_result([float("inf")], [T0])]},
    "a boolean": {"MetricDataResults": [_result([True], [T0])]},  # type: ignore[list-item]
    "one hour twice in a page": {"MetricDataResults": [_result([1.0, 1.0], [T0, T0])]},
}


@pytest.mark.parametrize("answer", CORRUPT.values(), ids=list(CORRUPT))
def test_a_corrupt_data_point_fails_the_read(answer: dict[str, Any]) -> None:
    with pytest.raises(UnreadableAnswerError):
        metric_data(_Pages(answer), [QUERY], T0, T1)  # type: ignore[arg-type]


def test_one_hour_given_again_on_the_next_page_fails_the_read() -> None:
    client = _Pages(
        {"MetricDataResults": [_result([1.5], [T0], StatusCode="PartialData")], "NextToken": "n"},
        {"MetricDataResults": [_result([1.5], [T0], StatusCode="Complete")]},
    )
    with pytest.raises(UnreadableAnswerError):
        metric_data(client, [QUERY], T0, T1)  # type: ignore[arg-type]
