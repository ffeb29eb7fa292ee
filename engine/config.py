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
# Renewed while the tick works (engine.lease): a tick that dies blocks the others this long.
DEFAULT_LEASE_SECONDS = 120
# Services worked at once within one (account, region); the groups themselves run in parallel.
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
# Schedules ticking a share of the services each; the Terraform module allows 1 to 50.
DEFAULT_SHARDS = 1
MAX_SHARDS = 50
# An unchanged, healthy service's load-balancer targets are checked again after this long.
DEFAULT_TARGET_CHECK_INTERVAL = 3600
MIN_TARGET_CHECK_INTERVAL = 60
MAX_TARGET_CHECK_INTERVAL = 7 * 24 * 3600
# Who may touch what: the accounts, regions and clusters teiji may manage, the largest desired
# count or maximum it may set, and where each account's ExternalId is kept.
DEFAULT_MAX_DESIRED = 100
MAX_MAX_DESIRED = 100_000
ACCESS_ENV_VARS = (
    "TEIJI_ALLOWED_ACCOUNTS",
    "TEIJI_ALLOWED_REGIONS",
    "TEIJI_ALLOWED_CLUSTERS",
    "TEIJI_MAX_DESIRED",
    "TEIJI_EXTERNAL_ID_PARAMETER",
)

ENV_VARS = (
    "TEIJI_CONFIG_TABLE",
    "TEIJI_STATE_TABLE",
    "TEIJI_DRY_RUN",
    "TEIJI_PROTECTED",
    "TEIJI_MAX_OVERRIDE",
    "TEIJI_LEASE_SECONDS",
    "TEIJI_LOG_LEVEL",
    "TEIJI_ROLE_NAME",
    "TEIJI_CONCURRENCY",
    "TEIJI_SHARDS",
    "TEIJI_DEFAULT_TIMEZONE",
    "TEIJI_TARGET_CHECK_INTERVAL",
    "TEIJI_EVENT_BUS",
    "TEIJI_TICK_INTERVAL",
    "TEIJI_METRICS_PER_SERVICE",
    "TEIJI_FANOUT_QUEUE_URL",
    "TEIJI_WAKE_TARGET_GROUPS",
    *ACCESS_ENV_VARS,
)

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*$", re.ASCII)


def parse_duration(text: str) -> timedelta:
    """``2h``, ``90m``, ``1d12h``, ``7d`` -> timedelta. Raises ValueError with the allowed forms."""
    match = _DURATION.match(text)
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration; write it like 90m, 2h, 1d12h or 7d")
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def parse_max_override(text: str) -> timedelta:
    """``TEIJI_MAX_OVERRIDE`` and ``--max``: the longest override allowed, at least a minute
    (a shorter limit would refuse every override, each failing its service)."""
    length = parse_duration(text)
    if length < timedelta(minutes=1):
        raise ValueError(
            f"{text!r} is less than a minute; write the longest override allowed, like 7d or 12h"
        )
    return length


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
        raise ValueError(f"{text!r} is not a whole number of seconds, for example 120") from None
    if value < 60:
        raise ValueError(
            f"{value} is too short; use at least 60 (the lease is renewed every quarter of it)"
        )
    return value


def parse_target_check_interval(text: str) -> int:
    """``TEIJI_TARGET_CHECK_INTERVAL``: whole seconds from 60 to 604800 (a week)."""
    allowed = (
        f"write whole seconds from {MIN_TARGET_CHECK_INTERVAL} to {MAX_TARGET_CHECK_INTERVAL}, "
        "for example 3600"
    )
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number of seconds; {allowed}") from None
    if not MIN_TARGET_CHECK_INTERVAL <= value <= MAX_TARGET_CHECK_INTERVAL:
        raise ValueError(f"{value} is out of range; {allowed}")
    return value


# How often the tick runs: the Terraform module's schedule is cron(0/15 * * * ? *).
DEFAULT_TICK_INTERVAL = timedelta(minutes=15)


def parse_tick_interval(text: str) -> timedelta:
    """``TEIJI_TICK_INTERVAL``: how often the tick runs, 1m to 1h (what each tick counts as
    saved for the services it keeps stopped)."""
    value = parse_duration(text)
    if not timedelta(minutes=1) <= value <= timedelta(hours=1):
        raise ValueError(
            f"{text.strip()!r} is out of range; write 1m to 1h, the schedule's interval "
            "(15m for the Terraform module's)"
        )
    return value


# An event bus: its name (1-256 of letters, digits and ._-/) or its ARN.
_EVENT_BUS_NAME = re.compile(r"^[A-Za-z0-9._/-]{1,256}$", re.ASCII)
_EVENT_BUS_ARN = re.compile(
    r"^arn:aws[a-z-]*:events:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256}$",
    re.ASCII,
)


def parse_event_bus(text: str) -> str | None:
    """``TEIJI_EVENT_BUS``: the bus teiji's events go to, by name (``default``) or ARN; empty
    sends none."""
    value = text.strip()
    if not value:
        return None
    if _EVENT_BUS_NAME.match(value) or _EVENT_BUS_ARN.match(value):
        return value
    raise ValueError(
        f"{value!r} is not an event bus; write its name (letters, digits and ._-/, for example "
        "default) or its ARN (arn:aws:events:<region>:<account>:event-bus/<name>), or leave it "
        "empty to send no events"
    )


# An SQS queue URL: https://sqs.<region>.amazonaws.com/<account>/<name> (or an endpoint's).
_QUEUE_URL = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?/[0-9]{12}/[A-Za-z0-9_-]{1,80}$", re.ASCII
)


def parse_queue_url(text: str) -> str | None:
    """``TEIJI_FANOUT_QUEUE_URL``: the fan-out's work queue (``engine.fanout``); empty: the
    tick converges every service itself."""
    value = text.strip()
    if not value:
        return None
    if _QUEUE_URL.match(value):
        return value
    raise ValueError(
        f"{value[:120]!r} is not an SQS queue URL; write it like "
        "https://sqs.ap-northeast-1.amazonaws.com/111111111111/teiji-work (the Terraform "
        "output fanout_queue_url), or leave it empty for a single-invocation tick"
    )


# The wake function's target groups (wake on request, engine.wake_plan): a target group serves
# one load balancer only (an AWS rule), so each load balancer in front of wake-enabled services
# has its own, and the setting pairs them.
_TARGET_GROUP_ARN = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:([a-z]{2}(?:-[a-z]+)+-[0-9]+):([0-9]{12}):"
    r"targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$",
    re.ASCII,
)
_LOAD_BALANCER_ARN = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:([a-z]{2}(?:-[a-z]+)+-[0-9]+):([0-9]{12}):"
    r"loadbalancer/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$",
    re.ASCII,
)
_WAKE_FORM = (
    "write <load balancer ARN>=<target group ARN> pairs separated by commas, like "
    "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/stg/"
    "0123456789abcdef=arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/"
    "teiji-wake-0/0123456789abcdef (the Terraform output wake_target_groups), or leave it empty "
    "to turn wake on request off"
)


def parse_wake_target_groups(text: str) -> tuple[tuple[str, str], ...]:
    """``TEIJI_WAKE_TARGET_GROUPS``: each Application Load Balancer paired with the Lambda
    target group of the wake function on it; empty turns wake on request off (the rules of
    sleeping services are then left alone)."""
    pairs: dict[str, str] = {}
    groups: set[str] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        balancer, equals, group = (s.strip() for s in part.partition("="))
        lb, tg = _LOAD_BALANCER_ARN.match(balancer), _TARGET_GROUP_ARN.match(group)
        if not equals or lb is None:
            raise ValueError(
                f"{balancer[:200]!r} is not an Application Load Balancer ARN; {_WAKE_FORM}"
            )
        if tg is None:
            raise ValueError(f"{group[:200]!r} is not a target group ARN; {_WAKE_FORM}")
        if lb.groups() != tg.groups():
            raise ValueError(
                f"target group {group} is not in the account and region of load balancer "
                f"{balancer}; a load balancer forwards only to target groups of its own"
            )
        if balancer in pairs or group in groups:
            raise ValueError(
                f"{balancer if balancer in pairs else group} is named twice; a target group "
                "serves one load balancer, and each load balancer has one wake target group"
            )
        pairs[balancer] = group
        groups.add(group)
    return tuple(sorted(pairs.items()))


# Who may touch what --------------------------------------------------------------------------
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$", re.ASCII)
_REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$", re.ASCII)
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$", re.ASCII)
# An SSM parameter path: /segments of letters, digits and _.-, no trailing slash.
_PARAMETER_PATH = re.compile(r"^(/[A-Za-z0-9_.-]+)+$", re.ASCII)


def _name_list(text: str, pattern: re.Pattern[str], what: str, example: str) -> tuple[str, ...]:
    """A comma-separated list; every entry must match ``pattern`` (no empty entries)."""
    entries = [entry.strip() for entry in text.split(",")]
    if not "".join(entries):
        return ()
    for entry in entries:
        if not pattern.match(entry):
            shown = repr(entry) if entry else "an empty entry"
            raise ValueError(
                f"{shown} is not {what}; write a comma-separated list such as {example}"
            )
    return tuple(dict.fromkeys(entries))


def parse_accounts(text: str) -> tuple[str, ...]:
    """``TEIJI_ALLOWED_ACCOUNTS``: 12-digit account ids, comma-separated."""
    return _name_list(text, _ACCOUNT_ID, "a 12-digit AWS account id", "111111111111,222222222222")


def parse_regions(text: str) -> tuple[str, ...]:
    """``TEIJI_ALLOWED_REGIONS``: region names, comma-separated."""
    return _name_list(text, _REGION_NAME, "an AWS region name", "ap-northeast-1,us-east-1")


def parse_clusters(text: str) -> tuple[str, ...]:
    """``TEIJI_ALLOWED_CLUSTERS``: ECS cluster names, comma-separated (empty: every cluster)."""
    return _name_list(text, _CLUSTER_NAME, "an ECS cluster name", "web,batch")


def parse_max_desired(text: str) -> int:
    """``TEIJI_MAX_DESIRED``: the largest desired count or maximum teiji may set."""
    allowed = f"write a whole number from 1 to {MAX_MAX_DESIRED:,}, for example 100"
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number; {allowed}") from None
    if not 1 <= value <= MAX_MAX_DESIRED:
        raise ValueError(f"{value} is out of range; {allowed}")
    return value


def parse_parameter_path(text: str) -> str:
    """``TEIJI_EXTERNAL_ID_PARAMETER``: the SSM path under which ``<path>/<account>`` holds
    each account's ExternalId."""
    path = text.strip()
    if not _PARAMETER_PATH.match(path):
        raise ValueError(
            f"{text!r} is not an SSM parameter path; write it like /teiji/external-id "
            "(each account's ExternalId is then the SecureString /teiji/external-id/<account>)"
        )
    return path


def _refuse_plain_external_id(env: dict[str, str]) -> None:
    # A plain-text ExternalId in the environment is what this setting replaced: refuse it
    # rather than silently assume roles without it.
    if env.get("TEIJI_EXTERNAL_ID"):
        raise SettingsError(
            "TEIJI_EXTERNAL_ID: an ExternalId is no longer read from the environment; store "
            "each account's in SSM Parameter Store as the SecureString <path>/<account> and set "
            "TEIJI_EXTERNAL_ID_PARAMETER=<path> (the Terraform variable external_ids does both)"
        )


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def parse_bool(text: str) -> bool:
    """A yes/no setting: true/false, 1/0 or yes/no, in any case. Anything else is refused, so
    that a typo (``ture``) never reads as off."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a yes/no value; write true or false (also 1/0, yes/no)")


# A protected pattern: fnmatch over ``cluster``, ``cluster/service`` or a full service key
# (``cluster/service@account/region``). Names hold letters, digits, ``_`` and ``-``; the
# wildcards are ``*``, ``?`` and ``[...]`` / ``[!...]``.
_PATTERN_CHARS = re.compile(r"^[A-Za-z0-9_*?\[\]!.@/-]+$", re.ASCII)
_SCOPE_PART = re.compile(r"^[A-Za-z0-9_*?\[\]!.-]+$", re.ASCII)


def parse_protected(text: str) -> tuple[str, ...]:
    """``TEIJI_PROTECTED``: comma-separated patterns, every one checked.

    Spaces around a comma are allowed. Refused: an empty part (``a,,b``, a trailing comma), a
    space inside a pattern, separators other than a comma
    (``;``), characters no service name or wildcard uses, unbalanced ``[`` ``]`` and a
    pattern that is not ``cluster``, ``cluster/service`` or ``cluster/service@scope``. A
    pattern that silently matched nothing would leave the service it meant unprotected.
    """
    allowed = (
        "write comma-separated patterns such as prod-*/* or example-cluster/example-service, "
        "with no spaces inside a pattern"
    )
    if not text.strip():
        return ()
    patterns = [part.strip() for part in text.split(",")]
    for number, pattern in enumerate(patterns, 1):
        where = f"pattern {number} ({pattern!r})"
        if not pattern:
            raise ValueError(f"{where} is empty; {allowed}")
        if not _PATTERN_CHARS.match(pattern):
            bad = sorted({ch for ch in pattern if not _PATTERN_CHARS.match(ch)})
            raise ValueError(f"{where} holds {', '.join(map(repr, bad))}; {allowed}")
        problem = _pattern_shape(pattern)
        if problem:
            raise ValueError(f"{where} {problem}; {allowed}")
    return tuple(patterns)


def _pattern_shape(pattern: str) -> str | None:
    depth = 0
    for ch in pattern:
        if ch == "[":
            depth += 1
            if depth > 1:
                return "nests '['"
        elif ch == "]":
            depth -= 1
            if depth < 0:
                return "closes a ']' it never opened"
    if depth:
        return "opens a '[' it never closes"
    name, at, scope = pattern.partition("@")
    parts = name.split("/")
    if len(parts) > 2 or not all(parts):
        return "is not cluster or cluster/service"
    if at and (len(parts) != 2 or not all(_SCOPE_PART.match(p) for p in scope.split("/"))):
        return "has a scope that is not @account, @region or @account/region"
    if at and len(scope.split("/")) > 2:
        return "has a scope that is not @account, @region or @account/region"
    return None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$", re.ASCII)


def parse_log_level(text: str) -> str:
    """``TEIJI_LOG_LEVEL``: one of DEBUG, INFO, WARNING, ERROR (any case)."""
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not a log level; write one of {', '.join(LOG_LEVELS)}")
    return level


def parse_table_name(text: str) -> str:
    """A DynamoDB table name: 3 to 255 letters, digits, ``_``, ``-`` and ``.``."""
    if not _TABLE_NAME.match(text):
        raise ValueError(
            f"{text!r} is not a DynamoDB table name (3 to 255 letters, digits, '_', '-', '.')"
        )
    return text


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


@dataclass(frozen=True)
class Access:
    """Who may touch what, set at deployment (Terraform variables -> the Lambda environment).

    Empty ``accounts`` and ``regions`` mean teiji's own only (a document that names none is
    always its own); empty ``clusters`` means every cluster in those. No document, override or
    restore may set a desired count or maximum above ``max_desired``. Each other account's
    ExternalId is the SSM SecureString ``<external_id_parameter>/<account>``.
    """

    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    max_desired: int = DEFAULT_MAX_DESIRED
    external_id_parameter: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Access:
        _refuse_plain_external_id(env)
        return cls(
            accounts=_setting(env, "TEIJI_ALLOWED_ACCOUNTS", parse_accounts, ()),
            regions=_setting(env, "TEIJI_ALLOWED_REGIONS", parse_regions, ()),
            clusters=_setting(env, "TEIJI_ALLOWED_CLUSTERS", parse_clusters, ()),
            max_desired=_setting(env, "TEIJI_MAX_DESIRED", parse_max_desired, DEFAULT_MAX_DESIRED),
            external_id_parameter=_setting(
                env, "TEIJI_EXTERNAL_ID_PARAMETER", parse_parameter_path, None
            ),
        )


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
    concurrency: int = DEFAULT_CONCURRENCY
    # How many schedules tick a share each; a tick given no shard covers all of them.
    shards: int = DEFAULT_SHARDS
    # The zone of a schedule document that names none.
    default_timezone: str = DEFAULT_TIMEZONE
    # Seconds after which an unchanged, healthy service's targets are checked again.
    target_check_interval: int = DEFAULT_TARGET_CHECK_INTERVAL
    # Where the tick's events go (None: no events).
    event_bus: str | None = None
    # How often the tick runs: each tick counts this long as saved for what it keeps stopped.
    tick_interval: timedelta = DEFAULT_TICK_INTERVAL
    # The savings metrics per service too (a Service dimension), not only per deployment.
    metrics_per_service: bool = False
    # Fan-out (engine.fanout): the work queue the scheduled tick hands scopes to; None: the
    # tick converges every service itself.
    fanout_queue_url: str | None = None
    # Each load balancer's wake target group (none: wake on request is unavailable).
    wake_target_groups: tuple[tuple[str, str], ...] = ()
    # The allow-list, the growth cap and where the ExternalIds are kept.
    access: Access = field(default_factory=Access)
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        config_table = _setting(env, "TEIJI_CONFIG_TABLE", parse_table_name, DEFAULT_CONFIG_TABLE)
        state_table = _setting(env, "TEIJI_STATE_TABLE", parse_table_name, DEFAULT_STATE_TABLE)
        if config_table == state_table:
            # teiji would read what operators write as its own records: a baseline-shaped item
            # among the documents would be restored as a service's capacity.
            raise SettingsError(
                f"TEIJI_STATE_TABLE: {state_table!r} is also TEIJI_CONFIG_TABLE; the state "
                "table must be a table of its own (the Terraform module makes teiji-state)"
            )
        return cls(
            config_table=config_table,
            state_table=state_table,
            dry_run=_setting(env, "TEIJI_DRY_RUN", parse_bool, False),
            protected=_setting(env, "TEIJI_PROTECTED", parse_protected, ()),
            max_override=_setting(
                env, "TEIJI_MAX_OVERRIDE", parse_max_override, DEFAULT_MAX_OVERRIDE
            ),
            lease_seconds=_setting(
                env, "TEIJI_LEASE_SECONDS", parse_seconds, DEFAULT_LEASE_SECONDS
            ),
            log_level=_setting(env, "TEIJI_LOG_LEVEL", parse_log_level, "INFO"),
            role_name=env.get("TEIJI_ROLE_NAME") or None,
            concurrency=_setting(env, "TEIJI_CONCURRENCY", parse_concurrency, DEFAULT_CONCURRENCY),
            shards=_setting(env, "TEIJI_SHARDS", parse_shards, DEFAULT_SHARDS),
            default_timezone=_setting(
                env, "TEIJI_DEFAULT_TIMEZONE", parse_timezone, DEFAULT_TIMEZONE
            ),
            target_check_interval=_setting(
                env,
                "TEIJI_TARGET_CHECK_INTERVAL",
                parse_target_check_interval,
                DEFAULT_TARGET_CHECK_INTERVAL,
            ),
            event_bus=_setting(env, "TEIJI_EVENT_BUS", parse_event_bus, None),
            tick_interval=_setting(
                env, "TEIJI_TICK_INTERVAL", parse_tick_interval, DEFAULT_TICK_INTERVAL
            ),
            metrics_per_service=_setting(env, "TEIJI_METRICS_PER_SERVICE", parse_bool, False),
            fanout_queue_url=_setting(env, "TEIJI_FANOUT_QUEUE_URL", parse_queue_url, None),
            wake_target_groups=_setting(
                env, "TEIJI_WAKE_TARGET_GROUPS", parse_wake_target_groups, ()
            ),
            access=Access.from_env(env),
        )
