"""The documents operators write: schedules, calendars and overrides.

Every document carries ``kind``. Unknown fields are errors, so a typo such as ``timezon`` can
never fall back to a default silently. Values may arrive from YAML files or from DynamoDB items
(Decimals, sets): the models accept both and normalise them.

Only shape and single-document rules live here. Rules that need other documents (does the
calendar named in ``holidays`` exist?) or the clock (is an override too long?) live in
``schemas.validation``, which also turns validation errors into sentences people can act on.
Every ``ValueError`` raised here is shown to the operator as written: it says what is wrong and
what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal

import pytz
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from schemas.keys import ACCOUNT_ID, REGION_NAME, service_key

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
# re.ASCII everywhere: \d would otherwise also match digits of other scripts.
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$", re.ASCII)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", re.ASCII)
_ECS_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}"
SERVICE_PATTERN = re.compile(rf"^(?P<cluster>{_ECS_NAME})/(?P<service>{_ECS_NAME})$", re.ASCII)
_COUNTRY = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$", re.ASCII)

# Long enough for any sensible value, short enough that a pasted blob fails fast and cheaply.
MAX_SPEC_LENGTH = 200
MAX_COUNT = 100_000

Kind = Literal["schedule", "calendar", "override", "profile"]
Mode = Literal["scheduled", "always_on", "always_off", "unmanaged"]
TargetsMode = Literal["verify", "repair", "ignore"]
State = Literal["running", "stopped"]

# JSON Schema hints only (editors); the validators below give the better error messages.
_HHMM_SCHEMA = r"^(([01][0-9]|2[0-3]):[0-5][0-9])$"
_HHMM_24_SCHEMA = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"


class _Document(BaseModel):
    """Common settings: forbid unknown fields, keep documents immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def describe_value(value: object) -> str:
    """A short phrase for a value someone wrote: ``the number 300``, ``the text 'x'``, ``a list``.

    Never recurses and never prints more than a line, whatever the value is.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        text = str(value)
        return f"the number {text if len(text) <= 30 else text[:27] + '...'}"
    if isinstance(value, str):
        return f"the text {quote(value)}" if value else "empty text"
    if isinstance(value, datetime):
        return f"the timestamp {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, set | frozenset):
        return "a set"
    if isinstance(value, dict):
        return "a mapping"
    return f"a value of type {type(value).__name__}"


def quote(text: str, limit: int = 60) -> str:
    """``'text'`` with control characters escaped and long text cut short."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def _as_int(value: Any) -> Any:
    # DynamoDB returns every number as Decimal; accept whole ones as int. A YAML ``true`` is
    # not a count (pydantic would read it as 1), nor is text such as "2" (a DynamoDB S where
    # the stored shape is N; pydantic would read it as 2).
    if isinstance(value, bool):
        raise ValueError(
            f"expected a whole number from 0 to {MAX_COUNT}, got {describe_value(value)}"
        )
    if isinstance(value, str):
        raise ValueError(
            f"expected a whole number from 0 to {MAX_COUNT}, got {describe_value(value)}; "
            "write it as a number, not text (in DynamoDB a number N, not a string S)"
        )
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


def _no_number(expected: str) -> Any:
    """A before-validator refusing numbers where pydantic would read them as Unix times."""

    def check(value: Any) -> Any:
        if isinstance(value, bool | int | float | Decimal):
            raise ValueError(f"expected {expected}, got {describe_value(value)}")
        return value

    return check


_DATE_TEXT = "a date such as 2026-12-29"
_TIMESTAMP_TEXT = "a timestamp with a UTC offset such as 2026-12-01T23:30:00+09:00"
LocalDate = Annotated[date, BeforeValidator(_no_number(_DATE_TEXT))]
Timestamp = Annotated[datetime, BeforeValidator(_no_number(_TIMESTAMP_TEXT))]


def _text_or_list(value: Any, expected: str) -> Any:
    """Accept text or a list (or DynamoDB string set) of text; refuse anything else clearly."""
    if isinstance(value, str):
        return value
    if isinstance(value, set | frozenset | tuple | list):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"expected {expected}, got {describe_value(item)} in the list")
        return items
    raise ValueError(f"expected {expected}, got {describe_value(value)}")


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
    if not parts:
        raise ValueError("no days given; write names like mon-fri or sat,sun")
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
            f"unknown day {quote(name.strip())}; use mon, tue, wed, thu, fri, sat, sun (or the "
            "full names, tues, thur, thurs; any case), ranges such as mon-fri or fri-mon, lists "
            "such as sat,sun, or daily"
        )
    return DAY_NAMES.index(key)


def parse_hhmm(value: str, *, allow_24: bool) -> int:
    """Minutes after local midnight for ``HH:MM``; ``24:00`` only where allowed."""
    if allow_24 and value == "24:00":
        return 24 * 60
    match = _HHMM.match(value)
    if not match:
        if value == "24:00":
            raise ValueError(
                "24:00 is allowed only as an end; a window that starts at midnight starts at 00:00"
            )
        allowed = "00:00 to 24:00" if allow_24 else "00:00 to 23:59"
        raise ValueError(f"{quote(value)} is not a time HH:MM ({allowed})")
    return int(match.group(1)) * 60 + int(match.group(2))


_TIME_TEXT = 'a time as quoted text "HH:MM", for example "05:00"'


def _time_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(time_number_hint(value))
    if not isinstance(value, str):
        raise ValueError(f"expected {_TIME_TEXT}, got {describe_value(value)}")
    return value


def time_number_hint(value: int) -> str:
    """What a number written where a time belongs probably meant.

    teiji's YAML loader reads an unquoted 05:00 as the text "05:00"; a number gets here as
    ``0500`` or ``500`` in YAML or JSON, or a DynamoDB number such as 900, all most likely
    HHMM. ``5`` is most likely 05:00. A YAML 1.1 tool (PyYAML, for one) that wrote the
    document reads an unquoted 08:20 as 500 (base 60): that reading is offered second.
    """
    guesses: list[str] = []
    hours, minutes = divmod(value, 100)
    if 0 <= value < 24:
        guesses.append(f"{value:02d}:00")
    elif 0 <= value <= 2400 and minutes < 60 and (hours < 24 or value == 2400):
        guesses.append(f"{hours:02d}:{minutes:02d}")
    text = f"expected {_TIME_TEXT}, got the number {value}"
    if guesses:
        text += f'; if you meant {guesses[0]}, write "{guesses[0]}" in quotes'
    if 60 <= value <= 24 * 60:
        sixty = "{:02d}:{:02d}".format(*divmod(value, 60))
        if sixty not in guesses:
            lead = "; or, if" if guesses else "; if"
            text += (
                f'{lead} a YAML 1.1 tool wrote it, "{sixty}" (such tools read an unquoted '
                f"{sixty} as {value}, base 60)"
            )
    return text


class Window(_Document):
    """A running window: on each local date whose weekday is in ``days``, from start to end.

    ``end`` is exclusive; ``24:00`` is allowed; an end at or before start runs past midnight.
    """

    days: str = Field(
        description="Weekdays on which the window starts, as one text: names (mon..sun; also "
        "monday..sunday, tues, thur, thurs; any case), ranges that may wrap (mon-fri, "
        "fri-mon), comma lists (sat,sun or mon,wed-fri) or daily.",
        examples=["mon-fri", "sat,sun", "mon,wed-fri"],
    )
    start: str = Field(
        description="Local start time HH:MM (00:00 to 23:59), inclusive.",
        examples=["05:00"],
        json_schema_extra={"pattern": _HHMM_SCHEMA},
    )
    end: str = Field(
        description="Local end time HH:MM, exclusive; 24:00 is midnight at the end of the day; "
        "an end earlier than start runs past midnight into the next day.",
        examples=["22:00", "24:00"],
        json_schema_extra={"pattern": _HHMM_24_SCHEMA},
    )

    @field_validator("days", mode="before")
    @classmethod
    def _days_shape(cls, value: Any) -> Any:
        # One shape, text, in files and in DynamoDB (S): a list (L) or string set (SS) is
        # refused with the text to write instead.
        if isinstance(value, str):
            return value
        expected = "the days as one text such as 'mon-fri' or 'sat,sun'"
        if isinstance(value, list | tuple | set | frozenset):
            names = sorted(value, key=str) if isinstance(value, set | frozenset) else value
            if names and all(isinstance(name, str) for name in names):
                joined = ",".join(name.strip() for name in names)
                raise ValueError(
                    f"expected {expected}, got {describe_value(value)}; write {quote(joined)}"
                )
        raise ValueError(f"expected {expected}, got {describe_value(value)}")

    @field_validator("days")
    @classmethod
    def _check_days(cls, value: str) -> str:
        if len(value) > MAX_SPEC_LENGTH:
            raise ValueError(f"longer than {MAX_SPEC_LENGTH} characters; write it like mon-fri")
        parse_days(value)
        return value

    @field_validator("start", mode="before")
    @classmethod
    def _start_text(cls, value: Any) -> Any:
        return _time_text(value)

    @field_validator("end", mode="before")
    @classmethod
    def _end_text(cls, value: Any) -> Any:
        return _time_text(value)

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        parse_hhmm(value, allow_24=False)
        return value

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: str, info: ValidationInfo) -> str:
        end = parse_hhmm(value, allow_24=True)
        # ``start`` is declared first, so it is in info.data when it was valid.
        start = info.data.get("start")
        if isinstance(start, str) and parse_hhmm(start, allow_24=False) == end:
            raise ValueError(
                f"start and end are both {start}: a window must have a length "
                "(00:00 to 24:00 is a whole day)"
            )
        return value

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
    if len(value) > MAX_SPEC_LENGTH:
        raise ValueError(f"longer than {MAX_SPEC_LENGTH} characters; write it like 0 5 * * mon-fri")
    fields = value.split()
    valid = False
    if len(fields) == 5 and value.isascii():
        try:
            # Late: croniter costs a cold start tens of ms, and only cron pairs need it.
            from croniter import croniter

            valid = croniter.is_valid(value)
        except Exception:  # croniter raises more than it documents on odd input
            valid = False
    if not valid:
        raise ValueError(
            f"{quote(value)} is not a 5-field cron expression (minute hour day month weekday), "
            "for example '0 5 * * mon-fri'"
        )
    return value


def _cron_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(
            f"expected a cron expression as text, for example '0 5 * * mon-fri', "
            f"got {describe_value(value)}"
        )
    return value


CronExpression = Annotated[str, BeforeValidator(_cron_text), AfterValidator(_check_cron)]
# Bounds before the BeforeValidator, or the JSON Schema shows them as "ge"/"le" (not keywords).
Count = Annotated[int, Field(ge=0, le=MAX_COUNT), BeforeValidator(_as_int)]


class CronPair(_Document):
    """Running from each ``start`` fire until the next ``stop`` fire, in the schedule's zone."""

    start: CronExpression = Field(
        description="Cron expression (minute hour day month weekday) at which the service starts, "
        "evaluated in the schedule's timezone.",
        examples=["0 5 * * mon-fri"],
    )
    stop: CronExpression = Field(
        description="Cron expression at which the service stops, in the schedule's timezone.",
        examples=["0 22 * * mon-fri"],
    )


class RunningCapacity(_Document):
    """What "running" means when no capacity was saved before the stop."""

    desired_count: Count | None = Field(
        default=None, description="ECS desiredCount when running (default: what was saved)."
    )
    min_capacity: Count | None = Field(
        default=None, description="Application Auto Scaling MinCapacity when running."
    )
    max_capacity: Count | None = Field(
        default=None, description="Application Auto Scaling MaxCapacity when running."
    )

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

    desired_count: Count = Field(
        default=0, description="ECS desiredCount while stopped (default 0; a night size if > 0)."
    )


def _check_service(value: str) -> str:
    if not SERVICE_PATTERN.match(value):
        raise ValueError(
            f"{quote(value)} is not '<cluster>/<service>' (letters, digits, '-' and '_', "
            "for example example-cluster/example-service-stg)"
        )
    return value


def _check_account(value: str) -> str:
    if not ACCOUNT_ID.match(value):
        raise ValueError(f"{quote(value)} is not a 12-digit AWS account id")
    return value


def _check_region(value: str) -> str:
    if not REGION_NAME.match(value):
        raise ValueError(f"{quote(value)} is not an AWS region name such as ap-northeast-1")
    return value


# The JSON Schema patterns help editors only (ECMA-262 syntax); the validators give the errors.
ServiceName = Annotated[
    str,
    AfterValidator(_check_service),
    Field(
        json_schema_extra={
            "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}/[A-Za-z0-9][A-Za-z0-9_-]{0,254}$"
        }
    ),
]
AccountId = Annotated[
    str, AfterValidator(_check_account), Field(json_schema_extra={"pattern": r"^[0-9]{12}$"})
]
RegionName = Annotated[
    str,
    AfterValidator(_check_region),
    Field(json_schema_extra={"pattern": r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"}),
]


def _profile_name_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(
            f"expected a profile name such as office-hours, got {describe_value(value)}"
        )
    return value


def _check_profile_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{quote(value)} is not a profile name (1 to 128 letters, digits, '.', '_' and "
            "'-', starting with a letter or digit)"
        )
    return value


ProfileName = Annotated[
    str,
    BeforeValidator(_profile_name_text),
    AfterValidator(_check_profile_name),
    Field(json_schema_extra={"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}),
]
Origin = Literal["document", "profile", "tag"]
# The validation context that checks a profile's body as a schedule's (see Schedule).
PROFILE_BODY_CONTEXT = "teiji_profile_body"

_SERVICE_DESCRIPTION = "The ECS service as <cluster>/<service>."
_SERVICE_EXAMPLES = ["example-cluster/example-service-stg"]


# --- wake on request (a block of its own) ---------------------------------------------------
# The longest ``keep_for``: the override cap's default (``TEIJI_MAX_OVERRIDE``, 7d), since a
# wake is an override and the tick refuses a longer one.
WAKE_KEEP_FOR_MAX = timedelta(days=7)
_WAKE_DURATION = re.compile(r"^(?:(\d{1,4})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m)?$", re.ASCII)


class Wake(_Document):
    """Wake on request: a request through the service's load balancer while teiji keeps it
    stopped starts it for ``keep_for`` (an override written by the wake function)."""

    on_request: bool = Field(
        default=False, description="Start the stopped service on a request through its ALB."
    )
    keep_for: str = Field(
        default="2h",
        max_length=20,
        pattern=r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?$",
        description="How long a wake keeps the service running, like 90m, 2h or 1d.",
        examples=["2h", "90m"],
    )

    @field_validator("on_request", mode="before")
    @classmethod
    def _strict_bool(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {describe_value(value)}")
        return value

    @field_validator("keep_for", mode="before")
    @classmethod
    def _check_keep_for(cls, value: Any) -> Any:
        allowed = "write a duration from 1m to 7d, like 90m, 2h or 1d12h"
        if not isinstance(value, str):
            raise ValueError(f"expected a duration, got {describe_value(value)}; {allowed}")
        match = _WAKE_DURATION.match(value.strip())
        if not match or not any(match.groups()):
            raise ValueError(f"{quote(value)} is not a duration; {allowed}")
        days, hours, minutes = (int(g) if g else 0 for g in match.groups())
        length = timedelta(days=days, hours=hours, minutes=minutes)
        if length <= timedelta(0):
            raise ValueError(f"{quote(value)} is not positive; {allowed}")
        if length > WAKE_KEEP_FOR_MAX:
            raise ValueError(f"{quote(value)} is longer than the override cap of 7d; {allowed}")
        return value.strip()

    @property
    def keep_for_delta(self) -> timedelta:
        days, hours, minutes = (
            int(g) if g else 0
            for g in _WAKE_DURATION.match(self.keep_for).groups()  # type: ignore[union-attr]
        )
        return timedelta(days=days, hours=hours, minutes=minutes)


# --- end of wake on request ------------------------------------------------------------------


class Schedule(_Document):
    """One ECS service's schedule: when it runs, what running and stopped mean."""

    kind: Literal["schedule"] = Field(default="schedule", description="Always 'schedule'.")
    service: ServiceName = Field(description=_SERVICE_DESCRIPTION, examples=_SERVICE_EXAMPLES)
    mode: Mode = Field(
        default="scheduled",
        description="scheduled: follow windows/cron and holidays; always_on / always_off: keep "
        "running / stopped; unmanaged: teiji leaves the service alone.",
    )
    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        max_length=64,
        description="IANA time zone in which windows, cron and holidays are read.",
        examples=["Asia/Tokyo", "America/New_York", "UTC"],
    )
    windows: list[Window] = Field(
        default_factory=list, description="Running windows in local time; outside them: stopped."
    )
    cron: list[CronPair] = Field(
        default_factory=list, description="Start/stop cron pairs (an alternative to windows)."
    )
    holidays: list[str] = Field(
        default_factory=list,
        description="Country codes (national public holidays, e.g. JP, US) or names of calendar "
        "documents; on those local dates no window or cron start runs.",
        examples=[["JP", "company"]],
    )
    running: RunningCapacity | None = Field(
        default=None,
        description="Capacity when running if none was saved before the stop.",
    )
    stopped: StoppedCapacity = Field(
        default_factory=StoppedCapacity, description="Capacity while stopped (default 0)."
    )
    targets: TargetsMode = Field(
        default="verify",
        description="Load balancer targets after a start: verify (report), repair, or ignore.",
    )
    account: AccountId | None = Field(
        default=None, description="AWS account of the service (default: teiji's own)."
    )
    region: RegionName | None = Field(
        default=None, description="AWS region of the service (default: teiji's own)."
    )
    description: str | None = Field(default=None, max_length=1024, description="Free text.")
    wake: Wake | None = Field(default=None, description="Wake on request (see Wake).")
    profile: ProfileName | None = Field(
        default=None,
        description="A profile document whose fields this schedule takes; the fields written "
        "here win over the profile's.",
        examples=["office-hours"],
    )
    # Where the schedule came from (see ``origin``), and the fields taken from its profile.
    _inherited: frozenset[str] = PrivateAttr(default=frozenset())
    _by_tag: bool = PrivateAttr(default=False)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        if value not in pytz.all_timezones_set:
            raise ValueError(
                f"unknown timezone {quote(value)}; use an IANA name such as Asia/Tokyo, UTC or "
                "America/New_York"
            )
        return value

    @field_validator("holidays", mode="before")
    @classmethod
    def _holidays_shape(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return _text_or_list(
            value,
            "country codes such as JP or calendar document names (dates belong in a "
            "calendar document)",
        )

    @field_validator("holidays")
    @classmethod
    def _check_holiday_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(
                    f"{quote(name)} is not a calendar name; use a country code such as JP or the "
                    "name of a calendar document"
                )
        return value

    @model_validator(mode="after")
    def _check_mode(self, info: ValidationInfo) -> Schedule:
        # A profile's body is checked as a schedule's, but its windows may come from the
        # schedules that use it.
        if isinstance(info.context, Mapping) and info.context.get(PROFILE_BODY_CONTEXT):
            return self
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
        """The service's identity across teiji: see ``service_key``."""
        return service_key(self.service, self.account, self.region)

    @property
    def inherited(self) -> frozenset[str]:
        """The fields this schedule took from its profile (empty without one)."""
        return self._inherited

    @property
    def origin(self) -> Origin:
        """Where the schedule came from: its own document, a document naming a profile, or
        the ECS service's ``teiji:profile`` tag."""
        if self._by_tag:
            return "tag"
        return "profile" if self.profile else "document"

    def origin_detail(self) -> dict[str, Any]:
        """Where the schedule came from, for explain, list and the events: ``from`` (document,
        profile: a document naming one, tag), the ``profile`` and, with one, which of its body
        fields the schedule set itself and which it took from the profile."""
        if self.profile is None:
            return {"from": "document", "profile": None}
        # Read from pydantic's store of private attributes: ``self._inherited`` goes through
        # its __getattr__ (microseconds each), and simulate asks this of every service.
        private = self.__pydantic_private__ or {}
        inherited: frozenset[str] = private.get("_inherited", frozenset())
        by_tag: bool = private.get("_by_tag", False)
        written = self.model_fields_set
        body = [n for n in Schedule.model_fields if n not in SCHEDULE_IDENTITY_FIELDS]
        own = [n for n in body if n in written and n not in inherited]
        return {
            "from": "tag" if by_tag else "profile",
            "profile": self.profile,
            "own_fields": [] if by_tag else own,
            "profile_fields": [n for n in body if n in inherited],
        }

    def origin_text(self) -> str:
        """``its own document``, ``profile office via its document (own: timezone)``, ..."""
        return origin_words(self.origin_detail())

    def from_profile(self, inherited: Iterable[str], *, by_tag: bool = False) -> Schedule:
        """This schedule, marked as made with its profile (``inherited``: the profile's fields
        it took); ``by_tag`` when the service's tag, not a document, named the profile."""
        self._inherited = frozenset(inherited)
        self._by_tag = by_tag
        return self

    @staticmethod
    def is_country_code(name: str) -> bool:
        return bool(_COUNTRY.match(name))


def origin_words(detail: Mapping[str, Any]) -> str:
    """``Schedule.origin_text`` of an ``origin_detail``: ``its own document``, ``profile office
    via its document (set by the document: ...; from the profile: ...)``, ``... via its
    teiji:profile tag (...)``."""
    if detail["from"] == "document":
        return "its own document"
    profile = detail["profile"]
    taken = ", ".join(detail["profile_fields"]) or "nothing"
    if detail["from"] == "tag":
        return f"profile {profile} via its teiji:profile tag (from the profile: {taken})"
    own = ", ".join(detail["own_fields"]) or "nothing"
    return (
        f"profile {profile} via its document (set by the document: {own}; "
        f"from the profile: {taken})"
    )


class DateRange(_Document):
    """Local dates from ``from`` to ``to``, both included."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, str_strip_whitespace=True
    )

    from_: LocalDate = Field(alias="from", description="First local date, included.")
    to: LocalDate = Field(description="Last local date, included.")

    @field_validator("to")
    @classmethod
    def _check_order(cls, value: date, info: ValidationInfo) -> date:
        first = info.data.get("from_")
        if isinstance(first, date) and value < first:
            raise ValueError(f"'to' {value} is before 'from' {first}")
        return value


class Calendar(_Document):
    """A company calendar: local dates on which schedules that list it do not start."""

    kind: Literal["calendar"] = Field(default="calendar", description="Always 'calendar'.")
    name: str = Field(
        description="The name schedules list in holidays (not a country code).",
        examples=["company"],
    )
    dates: list[LocalDate] = Field(default_factory=list, description="Single local dates.")
    ranges: list[DateRange] = Field(
        default_factory=list, description="Inclusive ranges of local dates."
    )
    description: str | None = Field(default=None, max_length=1024, description="Free text.")

    @field_validator("name", mode="before")
    @classmethod
    def _name_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(
                f"expected a calendar name such as company, got {describe_value(value)}"
            )
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"{quote(value)} is not a calendar name (1 to 128 letters, digits, '.', '_' and "
                "'-', starting with a letter or digit)"
            )
        if _COUNTRY.match(value):
            raise ValueError(
                f"{quote(value)} looks like a country code; choose a name such as company or "
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

    kind: Literal["override"] = Field(default="override", description="Always 'override'.")
    service: ServiceName = Field(description=_SERVICE_DESCRIPTION, examples=_SERVICE_EXAMPLES)
    state: State = Field(description="The state to hold: running or stopped.")
    start: Timestamp | None = Field(
        default=None,
        description="When the override begins, with a UTC offset (default: at once).",
        examples=["2026-12-01T22:00:00+09:00"],
    )
    until: Timestamp = Field(
        description="When the override ends (exclusive), with a UTC offset.",
        examples=["2026-12-01T23:30:00+09:00"],
    )
    reason: str = Field(
        min_length=1, max_length=1024, description="Why; shown in reports and logs."
    )
    created_by: str | None = Field(default=None, max_length=256, description="Who asked.")
    created_at: Timestamp | None = Field(default=None, description="When it was written.")
    id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Identifier (1 to 64 letters, digits, '-' and '_'); set by teiji when stored.",
    )
    account: AccountId | None = Field(default=None, description="AWS account of the service.")
    region: RegionName | None = Field(default=None, description="AWS region of the service.")

    @field_validator("reason")
    @classmethod
    def _check_reason(cls, value: str) -> str:
        # The reason is printed in one-line reports and logs: it must say something readable.
        if not any(ch.isalnum() for ch in value):
            raise ValueError("say why in words, for example 'release verification (OPS-1234)'")
        if any(not ch.isprintable() for ch in value):
            raise ValueError("must be one line of text without control characters")
        return value

    @field_validator("start", "until", "created_at")
    @classmethod
    def _check_aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError(
                f"{value.isoformat()} has no UTC offset; write it with one, "
                "for example 2026-12-01T23:30:00+09:00"
            )
        return value

    @field_validator("until")
    @classmethod
    def _check_span(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if isinstance(start, datetime) and value <= start:
            raise ValueError(f"until {value.isoformat()} is not after start {start.isoformat()}")
        return value

    @property
    def key(self) -> str:
        return service_key(self.service, self.account, self.region)

    def active_at(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and at < self.until


# A schedule's fields that say which service it is (or name its profile, or describe this one
# document): everything else is the body a profile may give. A field added to Schedule is
# allowed in profiles unless it is named here.
SCHEDULE_IDENTITY_FIELDS = frozenset(
    {"kind", "service", "account", "region", "cluster", "profile", "description"}
)


def profile_fields() -> tuple[str, ...]:
    """The schedule fields a profile may set, in the Schedule model's order."""
    return tuple(name for name in Schedule.model_fields if name not in SCHEDULE_IDENTITY_FIELDS)


PROFILE_FIELDS = profile_fields()


class ProfileBase(_Document):
    """What every profile has besides its body (the type to annotate with; see Profile)."""

    kind: Literal["profile"] = Field(default="profile", description="Always 'profile'.")
    name: ProfileName = Field(
        description="The name schedules give in profile (and services in the teiji:profile tag).",
        examples=["office-hours"],
    )
    description: str | None = Field(default=None, max_length=1024, description="Free text.")


def _profile_model() -> type[ProfileBase]:
    # Each body field as the schedule has it, but optional with no default: a profile says
    # only what it sets, and the schedules using it fill in the rest (or take the defaults).
    fields: dict[str, Any] = {}
    for name in PROFILE_FIELDS:
        info = Schedule.model_fields[name]
        fields[name] = (
            info.annotation | None,  # type: ignore[operator]
            Field(default=None, description=info.description, examples=info.examples),
        )
    return create_model(
        "Profile",
        __base__=ProfileBase,
        __doc__="A shared schedule body: schedules that name it (or services tagged "
        "teiji:profile=<name>) take its fields, and their own fields win.",
        **fields,
    )


# The shape of a profile (its body's values are also checked as a schedule's: see
# ``schemas.validation``); its body is what it sets, ``body``.
Profile = _profile_model()


def profile_body(profile: ProfileBase) -> dict[str, Any]:
    """The fields a profile sets, as written (dumped by alias, so as a schedule reads them)."""
    return profile.model_dump(
        mode="json", by_alias=True, exclude_unset=True, include=set(PROFILE_FIELDS)
    )


Document = Annotated[Schedule | Calendar | Override | Profile, Field(discriminator="kind")]  # type: ignore[valid-type]
KINDS: tuple[Kind, ...] = ("schedule", "calendar", "override", "profile")
