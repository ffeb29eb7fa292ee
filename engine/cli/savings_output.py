"""``teiji savings``' figures and what it prints: the realised figures (the metrics, hour by
hour) and the predicted ones, as a table for people or one JSON object (``--json``); the gaps
named in the range's zone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from engine.cli.common import plural, table
from engine.localtime import to_local
from engine.localtime import zone as tz
from engine.report import for_people

HOUR = timedelta(hours=1)


@dataclass
class Realised:
    """The metrics over the range, per UTC hour: task-hours, USD and ticks that wrote them."""

    hours: dict[datetime, float] = field(default_factory=dict)
    usd: dict[datetime, float] = field(default_factory=dict)
    ticks: dict[datetime, float] = field(default_factory=dict)

    @property
    def task_hours(self) -> float:
        return sum(self.hours.values())

    @property
    def savings(self) -> float:
        return sum(self.usd.values())

    def gaps(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The spans of whole hours in [start, end) in which no tick wrote its metrics."""
        spans: list[tuple[datetime, datetime]] = []
        hour = start
        while hour < end:
            if not self.ticks.get(hour):
                if spans and spans[-1][1] == hour:
                    spans[-1] = (spans[-1][0], hour + HOUR)
                else:
                    spans.append((hour, hour + HOUR))
            hour += HOUR
        return spans


@dataclass(frozen=True)
class Predicted:
    task_hours: float
    savings: float
    services: int
    prices: tuple[str, ...]


def render(
    deployment: str,
    first: date,
    last: date,
    zone: str,
    realised: Realised,
    gaps: Sequence[tuple[datetime, datetime]],
    predicted: Predicted | None,
    through: datetime | None = None,
) -> str:
    """The two columns for people; ``through``: the range is not over, metrics exist up to it."""
    rows = [
        [
            "stopped task-hours",
            f"{realised.task_hours:,.2f}",
            f"{predicted.task_hours:,.2f}" if predicted else "-",
        ],
        [
            "estimated savings (USD)",
            f"${realised.savings:,.2f}",
            f"${predicted.savings:,.2f}" if predicted else "-",
        ],
    ]
    headers = ["", "REALISED (metrics)", "PREDICTED (simulate)"]
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(3)]
    aligned = [[r[0], r[1].rjust(widths[1]), r[2].rjust(widths[2])] for r in rows]
    lines = [
        f"deployment {for_people(deployment, 200)}, {first} to {last} "
        f"({plural((last - first).days + 1, 'day')}, local dates in {zone})",
        table([headers[0], headers[1].rjust(widths[1]), headers[2].rjust(widths[2])], aligned),
    ]
    if through is not None:
        lines.append(
            f"the range is not over: realised up to {to_local(through, tz(zone)):%Y-%m-%d %H:%M}"
            f" ({zone}), predicted for the whole range"
        )
    missing = sum(int((b - a) / HOUR) for a, b in gaps)
    if missing:
        shown = ", ".join(_span(a, b, zone) for a, b in gaps[:5])
        more = f" and {len(gaps) - 5} more" if len(gaps) > 5 else ""
        lines.append(
            f"{plural(missing, 'hour')} without metrics (the function did not run, or its "
            f"metrics did not arrive): {shown}{more}"
        )
    if predicted:
        lines.append(f"predicted for {plural(predicted.services, 'service')}")
        lines.extend(f"prices: {line}" for line in predicted.prices)
    lines.append(
        "estimates at Fargate list prices (on-demand; Spot at the table's discount); EC2 tasks "
        "count in hours only; Savings Plans and reserved capacity are not taken into account"
    )
    return "\n".join(lines)


def _span(a: datetime, b: datetime, zone: str) -> str:
    local_a, local_b = to_local(a, tz(zone)), to_local(b, tz(zone))
    return f"{local_a:%Y-%m-%d %H:%M}–{local_b:%Y-%m-%d %H:%M}"


def report_json(
    deployment: str,
    first: date,
    last: date,
    zone: str,
    realised: Realised,
    gaps: Sequence[tuple[datetime, datetime]],
    predicted: Predicted | None,
    warning: str | None,
    through: datetime | None = None,
) -> dict[str, object]:
    return {
        "deployment": deployment,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "timezone": zone,
        # The range is not over: the metrics exist up to this instant (None: it is over).
        "realised_through": through.isoformat() if through is not None else None,
        "realised": {
            "stopped_task_hours": round(realised.task_hours, 4),
            "estimated_savings_usd": round(realised.savings, 4),
            "ticks": int(sum(realised.ticks.values())),
            "days": _days(realised, zone),
        },
        "predicted": None
        if predicted is None
        else {
            "stopped_task_hours": round(predicted.task_hours, 4),
            "estimated_savings_usd": round(predicted.savings, 4),
            "services": predicted.services,
            "prices": list(predicted.prices),
        },
        "hours_without_metrics": [{"from": a.isoformat(), "to": b.isoformat()} for a, b in gaps],
        "warning": warning,
    }


def _days(realised: Realised, zone: str) -> list[dict[str, object]]:
    by_day: dict[date, list[float]] = {}
    for hour, value in realised.hours.items():
        by_day.setdefault(to_local(hour, tz(zone)).date(), [0.0, 0.0])[0] += value
    for hour, value in realised.usd.items():
        by_day.setdefault(to_local(hour, tz(zone)).date(), [0.0, 0.0])[1] += value
    return [
        {
            "date": day.isoformat(),
            "stopped_task_hours": round(h, 4),
            "estimated_savings_usd": round(u, 4),
        }
        for day, (h, u) in sorted(by_day.items())
    ]
