"""Settings read from the environment, in one place, so the Lambda and the CLI agree."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import pytz

from schemas.documents import DEFAULT_TIMEZONE

DEFAULT_CONFIG_TABLE = "teiji-config"
DEFAULT_STATE_TABLE = "teiji-state"
DEFAULT_MAX_OVERRIDE = timedelta(days=7)
DEFAULT_LEASE_SECONDS = 960  # a bit longer than the Lambda's 900 s ceiling
# Services worked at once within one (account, region); the groups themselves run in parallel.
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
# Schedules ticking a share of the services each; the Terraform module allows 1 to 50.
DEFAULT_SHARDS = 1
MAX_SHARDS = 50

ENV_VARS = (
    "TEIJI_CONFIG_TABLE",
    "TEIJI_STATE_TABLE",
    "TEIJI_DRY_RUN",
    "TEIJI_PROTECTED",
    "TEIJI_MAX_OVERRIDE",
    "TEIJI_LEASE_SECONDS",
    "TEIJI_LOG_LEVEL",
    "TEIJI_ROLE_NAME",
    "TEIJI_EXTERNAL_ID",
    "TEIJI_CONCURRENCY",
    "TEIJI_SHARDS",
    "TEIJI_DEFAULT_TIMEZONE",
)

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*$")


def parse_duration(text: str) -> timedelta:
    """``2h``, ``90m``, ``1d12h``, ``7d`` -> timedelta. Raises ValueError with the allowed forms."""
    match = _DURATION.match(text)
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration; write it like 90m, 2h, 1d12h or 7d")
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def parse_concurrency(text: str) -> int:
    """``TEIJI_CONCURRENCY``: a whole number of services worked at once per account and region."""
    allowed = f"write a whole number from 1 to {MAX_CONCURRENCY}, for example 8"
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number; {allowed}") from None
    if not 1 <= value <= MAX_CONCURRENCY:
        raise ValueError(f"{value} is out of range; {allowed}")
    return value


def parse_shards(text: str) -> int:
    """``TEIJI_SHARDS``: how many schedules tick a share of the services each (1 to 50)."""
    allowed = f"write a whole number from 1 to {MAX_SHARDS}, the Terraform module's shards"
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number; {allowed}") from None
    if not 1 <= value <= MAX_SHARDS:
        raise ValueError(f"{value} is out of range; {allowed}")
    return value


def parse_timezone(text: str) -> str:
    """``TEIJI_DEFAULT_TIMEZONE``: an IANA time zone name, spelled exactly (Asia/Tokyo)."""
    name = text.strip()
    if name not in pytz.all_timezones_set:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Asia/Tokyo, UTC or "
            "America/New_York"
        )
    return name


def parse_seconds(text: str) -> int:
    """``TEIJI_LEASE_SECONDS``: whole seconds, at least 60."""
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number of seconds, for example 960") from None
    if value < 60:
        raise ValueError(
            f"{value} is too short; use at least 60 (the Lambda timeout plus a minute)"
        )
    return value


class SettingsError(ValueError):
    """An environment variable teiji reads holds a value it cannot use."""


def _setting(env: dict[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    config_table: str = DEFAULT_CONFIG_TABLE
    state_table: str = DEFAULT_STATE_TABLE
    dry_run: bool = False
    protected: tuple[str, ...] = ()
    max_override: timedelta = DEFAULT_MAX_OVERRIDE
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    log_level: str = "INFO"
    role_name: str | None = None
    external_id: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    # How many schedules tick a share each; a tick given no shard covers all of them.
    shards: int = DEFAULT_SHARDS
    # The zone of a schedule document that names none.
    default_timezone: str = DEFAULT_TIMEZONE
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        protected = tuple(p.strip() for p in env.get("TEIJI_PROTECTED", "").split(",") if p.strip())
        return cls(
            config_table=env.get("TEIJI_CONFIG_TABLE") or DEFAULT_CONFIG_TABLE,
            state_table=env.get("TEIJI_STATE_TABLE") or DEFAULT_STATE_TABLE,
            dry_run=_flag(env.get("TEIJI_DRY_RUN")),
            protected=protected,
            max_override=_setting(env, "TEIJI_MAX_OVERRIDE", parse_duration, DEFAULT_MAX_OVERRIDE),
            lease_seconds=_setting(
                env, "TEIJI_LEASE_SECONDS", parse_seconds, DEFAULT_LEASE_SECONDS
            ),
            log_level=(env.get("TEIJI_LOG_LEVEL") or "INFO").upper(),
            role_name=env.get("TEIJI_ROLE_NAME") or None,
            external_id=env.get("TEIJI_EXTERNAL_ID") or None,
            concurrency=_setting(env, "TEIJI_CONCURRENCY", parse_concurrency, DEFAULT_CONCURRENCY),
            shards=_setting(env, "TEIJI_SHARDS", parse_shards, DEFAULT_SHARDS),
            default_timezone=_setting(
                env, "TEIJI_DEFAULT_TIMEZONE", parse_timezone, DEFAULT_TIMEZONE
            ),
        )
