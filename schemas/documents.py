"""The documents operators write: schedules, calendars and overrides.

Every document carries ``kind``. Unknown fields are errors, so a typo such as ``timezon`` can
never fall back to a default silently. Values may arrive from YAML files or from DynamoDB items
(Decimals, sets): the models accept both and normalise them.

Only shape and single-document rules live here. Rules that need other documents (does the
calendar named in ``holidays`` exist?) or the clock (is an override too long?) live in
``schemas.validation``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal

import pytz
from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

DEFAULT_TIMEZONE = "Asia/Tokyo"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {
    "monday": "mon",
    "tuesday": "tue",
    "tues": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "thur": "thu",
    "thurs": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ECS_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}"
SERVICE_PATTERN = re.compile(rf"^(?P<cluster>{_ECS_NAME})/(?P<service>{_ECS_NAME})$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_COUNTRY = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")

Kind = Literal["schedule", "calendar", "override"]
Mode = Literal["scheduled", "always_on", "always_off", "unmanaged"]
TargetsMode = Literal["verify", "repair", "ignore"]
State = Literal["running", "stopped"]


class _Document(BaseModel):
    """Common settings: forbid unknown fields, keep documents immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _as_int(value: Any) -> Any:
    # DynamoDB returns every number as Decimal; accept whole ones as int.
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def parse_days(
    spec: str | list[str] | tuple[str, ...] | set[str] | frozenset[str],
) -> frozenset[int]:
    """Parse ``mon-fri``, ``sat,sun``, ``fri-mon`` (wraps) or a list of those into weekdays.

    Monday is 0, as in ``datetime.weekday()``. Raises ValueError naming the bad part.
    """
    parts: list[str] = []
    if isinstance(spec, str):
        parts = spec.split(",")
    else:
        for item in sorted(spec) if isinstance(spec, set | frozenset) else spec:
            if not isinstance(item, str):
                raise ValueError(f"day {item!r} is not a day name")
            parts.extend(item.split(","))
    days: set[int] = set()
    for raw in parts:
        part = raw.strip().lower()
        if not part:
            raise ValueError("empty day name; write names like mon-fri or sat,sun")
        if part in ("daily", "all", "everyday", "*"):
            days.update(range(7))
            continue
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = _day_index(first), _day_index(last)
            i = a
            days.add(i)
            while i != b:
                i = (i + 1) % 7
                days.add(i)
        else:
            days.add(_day_index(part))
    return frozenset(days)


def _day_index(name: str) -> int:
    key = _DAY_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in DAY_NAMES:
        raise ValueError(
            f"unknown day {name!r}; use mon, tue, wed, thu, fri, sat, sun, ranges such as "
            "mon-fri or fri-mon, lists such as sat,sun, or daily"
        )
    return DAY_NAMES.index(key)


def parse_hhmm(value: str, *, allow_24: bool) -> int:
    """Minutes after local midnight for ``HH:MM``; ``24:00`` only where allowed."""
    if allow_24 and value == "24:00":
        return 24 * 60
    match = _HHMM.match(value)
    if not match:
        allowed = "00:00 to 24:00" if allow_24 else "00:00 to 23:59"
        raise ValueError(f"{value!r} is not a time HH:MM ({allowed})")
    return int(match.group(1)) * 60 + int(match.group(2))


class Window(_Document):
    """A running window: on each local date whose weekday is in ``days``, from start to end.

    ``end`` is exclusive; ``24:00`` is allowed; an end at or before start runs past midnight.
    """

    days: str | list[str]
    start: str
    end: str

    @field_validator("days", mode="before")
    @classmethod
    def _days_from_set(cls, value: Any) -> Any:
        if isinstance(value, set | frozenset | tuple):
            return sorted(str(v) for v in value)
        return value

    @field_validator("days")
    @classmethod
    def _check_days(cls, value: str | list[str]) -> str | list[str]:
        parse_days(value)
        return value

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        parse_hhmm(value, allow_24=False)
        return value

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: str) -> str:
        parse_hhmm(value, allow_24=True)
        return value

    @model_validator(mode="after")
    def _check_span(self) -> Window:
        if self.start_minute == self.end_minute:
            raise ValueError(
                f"start and end are both {self.start}: a window must have a length "
                "(00:00 to 24:00 is a whole day)"
            )
        return self

    @cached_property
    def weekdays(self) -> frozenset[int]:
        return parse_days(self.days)

    @cached_property
    def start_minute(self) -> int:
        return parse_hhmm(self.start, allow_24=False)

    @cached_property
    def end_minute(self) -> int:
        return parse_hhmm(self.end, allow_24=True)

    @property
    def overnight(self) -> bool:
        """True when the occurrence ends on the next local date."""
        return self.end_minute <= self.start_minute


def _check_cron(value: str) -> str:
    if not croniter.is_valid(value) or len(value.split()) != 5:
        raise ValueError(
            f"{value!r} is not a 5-field cron expression (minute hour day month weekday), "
            "for example '0 5 * * mon-fri'"
        )
    return value


CronExpression = Annotated[str, AfterValidator(_check_cron)]
Count = Annotated[int, BeforeValidator(_as_int), Field(ge=0, le=100_000)]


class CronPair(_Document):
    """Running from each ``start`` fire until the next ``stop`` fire, in the schedule's zone."""

    start: CronExpression
    stop: CronExpression


class RunningCapacity(_Document):
    """What "running" means when no capacity was saved before the stop."""

    desired_count: Count | None = None
    min_capacity: Count | None = None
    max_capacity: Count | None = None

    @model_validator(mode="after")
    def _check_order(self) -> RunningCapacity:
        lo, hi, want = self.min_capacity, self.max_capacity, self.desired_count
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_capacity {lo} is greater than max_capacity {hi}")
        if want is not None and lo is not None and want < lo:
            raise ValueError(f"desired_count {want} is below min_capacity {lo}")
        if want is not None and hi is not None and want > hi:
            raise ValueError(f"desired_count {want} is above max_capacity {hi}")
        return self


class StoppedCapacity(_Document):
    """The size while stopped: 0 by default, or a reduced night size."""

    desired_count: Count = 0


def _check_service(value: str) -> str:
    if not SERVICE_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not '<cluster>/<service>' (letters, digits, '-' and '_', "
            "for example example-cluster/example-service-stg)"
        )
    return value


def _check_account(value: str) -> str:
    if not _ACCOUNT.match(value):
        raise ValueError(f"{value!r} is not a 12-digit AWS account id")
    return value


def _check_region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError(f"{value!r} is not an AWS region name such as ap-northeast-1")
    return value


ServiceName = Annotated[str, AfterValidator(_check_service)]
AccountId = Annotated[str, AfterValidator(_check_account)]
RegionName = Annotated[str, AfterValidator(_check_region)]


class Schedule(_Document):
    """One ECS service's schedule: when it runs, what running and stopped mean."""

    kind: Literal["schedule"] = "schedule"
    service: ServiceName
    mode: Mode = "scheduled"
    timezone: str = DEFAULT_TIMEZONE
    windows: list[Window] = Field(default_factory=list)
    cron: list[CronPair] = Field(default_factory=list)
    holidays: list[str] = Field(default_factory=list)
    running: RunningCapacity | None = None
    stopped: StoppedCapacity = Field(default_factory=StoppedCapacity)
    targets: TargetsMode = "verify"
    account: AccountId | None = None
    region: RegionName | None = None
    description: str | None = Field(default=None, max_length=1024)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        if value not in pytz.all_timezones_set:
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name such as Asia/Tokyo, UTC or "
                "America/New_York"
            )
        return value

    @field_validator("holidays", mode="before")
    @classmethod
    def _holidays_from_set(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        if isinstance(value, set | frozenset | tuple):
            return sorted(str(v) for v in value)
        return value

    @field_validator("holidays")
    @classmethod
    def _check_holiday_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a calendar name; use a country code such as JP or the "
                    "name of a calendar document"
                )
        return value

    @model_validator(mode="after")
    def _check_mode(self) -> Schedule:
        if self.mode == "scheduled" and not self.windows and not self.cron:
            raise ValueError(
                "mode scheduled needs at least one entry in windows or cron "
                "(use mode: always_off to keep the service stopped)"
            )
        return self

    @property
    def cluster(self) -> str:
        return self.service.split("/", 1)[0]

    @property
    def service_name(self) -> str:
        return self.service.split("/", 1)[1]

    @property
    def key(self) -> str:
        """The service's identity across teiji: see ``engine.model.service_key``."""
        return service_key(self.service, self.account, self.region)

    @staticmethod
    def is_country_code(name: str) -> bool:
        return bool(_COUNTRY.match(name))


class DateRange(_Document):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _check_order(self) -> DateRange:
        if self.to < self.from_:
            raise ValueError(f"'to' {self.to} is before 'from' {self.from_}")
        return self


class Calendar(_Document):
    """A company calendar: local dates on which schedules that list it do not start."""

    kind: Literal["calendar"] = "calendar"
    name: str
    dates: list[date] = Field(default_factory=list)
    ranges: list[DateRange] = Field(default_factory=list)
    description: str | None = Field(default=None, max_length=1024)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"{value!r} is not a calendar name (letters, digits, '.', '_' and '-')"
            )
        if _COUNTRY.match(value):
            raise ValueError(
                f"{value!r} looks like a country code; choose a name such as company or "
                f"{value.lower()}-office"
            )
        return value

    @field_validator("dates", "ranges", mode="before")
    @classmethod
    def _list_from_set(cls, value: Any) -> Any:
        if isinstance(value, set | frozenset | tuple):
            return sorted(value, key=str)
        return value

    def contains(self, day: date) -> bool:
        return day in self.dates or any(r.from_ <= day <= r.to for r in self.ranges)


class Override(_Document):
    """A one-off: keep a service running (or stopped) until ``until``."""

    kind: Literal["override"] = "override"
    service: ServiceName
    state: State
    start: datetime | None = None
    until: datetime
    reason: str = Field(min_length=1, max_length=1024)
    created_by: str | None = Field(default=None, max_length=256)
    created_at: datetime | None = None
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    account: AccountId | None = None
    region: RegionName | None = None

    @field_validator("start", "until", "created_at")
    @classmethod
    def _check_aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError(
                f"{value.isoformat()} has no UTC offset; write it with one, "
                "for example 2026-12-01T23:30:00+09:00"
            )
        return value

    @model_validator(mode="after")
    def _check_span(self) -> Override:
        if self.start is not None and self.until <= self.start:
            raise ValueError(
                f"until {self.until.isoformat()} is not after start {self.start.isoformat()}"
            )
        return self

    @property
    def key(self) -> str:
        return service_key(self.service, self.account, self.region)

    def active_at(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and at < self.until


def service_key(service: str, account: str | None = None, region: str | None = None) -> str:
    """The one string that names a managed service everywhere (config sk, baselines, reports).

    ``cluster/service`` in the deployment's own account and region; otherwise the scope follows
    an ``@``: ``cluster/service@us-east-1``, ``cluster/service@123456789012`` or
    ``cluster/service@123456789012/us-east-1``.
    """
    scope = "/".join(part for part in (account, region) if part)
    return f"{service}@{scope}" if scope else service


def parse_service_key(key: str) -> tuple[str, str | None, str | None]:
    """Inverse of ``service_key``: (cluster/service, account, region)."""
    service, _, scope = key.partition("@")
    account: str | None = None
    region: str | None = None
    for part in scope.split("/") if scope else ():
        if _ACCOUNT.match(part):
            account = part
        elif _REGION.match(part):
            region = part
        else:
            raise ValueError(f"{part!r} in {key!r} is neither an account id nor a region")
    return service, account, region


Document = Annotated[Schedule | Calendar | Override, Field(discriminator="kind")]
KINDS: tuple[Kind, ...] = ("schedule", "calendar", "override")
