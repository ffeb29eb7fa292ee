"""The wake function: a request to a sleeping service starts it (imperative shell).

The same zip as the tick, its own function (``infra/wake.tf``; entry point
``engine.handler.wake_handler``), the target of one Lambda target group per load balancer.
While teiji keeps a wake-enabled service stopped, the tick points the listener rules in front
of it at that target group (``engine.wake_rules``). For each request:

1. ``engine.wake_request`` reads the ALB event (anything else is answered 400 and logged
   without its content) and finds the service: the saved rules of the load balancer the
   target group serves, matched against the host, path and other conditions.
2. The service's schedule is read (its document and profile, or its ``teiji:profile`` tag):
   teiji wakes only a service whose schedule says ``wake.on_request``, inside the allow-list
   and not protected; anything else is refused (403) and nothing is written.
3. ``engine.wake_override`` plans the override (one per wake; later requests extend it); it
   is written on condition that its item is still what was read, so of a burst of requests
   one writes.
4. The service converges at once, as the edits function converges an edit: ``run_tick`` for
   that one service under the tick's lease (with fan-out, under its scope's lease, as the
   workers take it), reading only that service's documents. At most one request per
   ``CONVERGE_EVERY_S`` converges (a conditional write in the state table picks it); the page
   reloads itself, so later requests go on converging until the targets are healthy and the
   rules are restored, after which requests reach the service itself. When another tick holds
   the lease, the request is answered all the same, and a reload converges.

Logs name the host and path and the service, never other headers or the body.

Once the rules are restored, requests go to the service itself: the keep-awake run
(``engine.wake_keep_run``, the same function on a schedule) reads the load balancer's request
counts and extends the wake while people use the service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.handler import WAKE_HOLDER
from engine.wake_answer import DEFAULT_READY_S, Answer, respond
from engine.wake_override import WAKE_ID, WakeWrite, plan_wake
from engine.wake_request import BadRequestError, WakeRequest, read_request, services_for
from schemas.keys import split_override_sk

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from engine.config import Settings
    from engine.store import LoadedConfig

# At most one request per service converges in this long; the others answer at once.
CONVERGE_EVERY_S = 10
WAKE_POKE_PK = "wake-poke"


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point of the wake target groups, and of the keep-awake schedule
    (its constant input ``{"teiji": "keep-awake"}``, ``engine.wake_keep_run``): a load
    balancer's event never has that top-level key (a request's own body is in ``body``)."""
    from engine.wake_keep_run import is_keep_event

    if is_keep_event(event):
        from engine.wake_keep_run import handler as keep_handler

        return keep_handler(event, context)
    from engine.config import Settings, SettingsError
    from engine.handler import _deadline, _get_clients
    from engine.lease import holder_id
    from engine.logs import bind_request_id, log_event, setup_logging

    request_id = getattr(context, "aws_request_id", None)
    bind_request_id(request_id)
    try:
        request = read_request(event)
    except BadRequestError as err:
        setup_logging("INFO")
        log_event(
            "not a request a load balancer sends; refused", level=logging.WARNING, why=str(err)
        )
        multi = isinstance(event, Mapping) and "multiValueHeaders" in event
        answer = Answer("bad-request", "This is not a request teiji can answer.")
        return respond(answer, browser=False, multi_value=multi)
    try:
        settings = Settings.from_env()
    except SettingsError as err:
        # Settings that cannot be parsed stop the run: nothing is written, the alarm fires.
        setup_logging("INFO")
        log_event("the settings cannot be read; nothing done", level=logging.ERROR, error=str(err))
        return _answer(request, Answer("error", "teiji cannot wake services right now."))
    setup_logging(settings.log_level)
    clients = _get_clients(settings.role_name, settings.access.external_id_parameter)
    holder = WAKE_HOLDER + holder_id(request_id if isinstance(request_id, str) else None)
    return answer_request(
        clients, settings, request, at=datetime.now(UTC), holder=holder, deadline=_deadline(context)
    )


def _answer(request: WakeRequest, answer: Answer) -> dict[str, Any]:
    return respond(
        answer,
        browser=request.browser,
        multi_value=request.multi_value,
        head=request.method == "HEAD",
    )


@dataclass
class WakeOutcome:
    """What one request did, for the logs and the tests."""

    answer: Answer
    services: list[str]
    written: str | None = None  # create, replace, extend
    converged: bool = False


def answer_request(
    clients: Clients,
    settings: Settings,
    request: WakeRequest,
    *,
    at: datetime,
    holder: str | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """The response for one request (see the module); never raises for AWS's answers."""
    from engine.aws.errors import AWS_ERRORS, error_text
    from engine.logs import log_event

    started = time.monotonic()
    try:
        outcome = wake(clients, settings, request, at=at, holder=holder, deadline=deadline)
    except AWS_ERRORS as exc:
        log_event(
            "the wake could not be done",
            level=logging.ERROR,
            request=request.shown,
            error=error_text(exc),
        )
        outcome = WakeOutcome(
            Answer("error", "teiji could not start the service; retry shortly."), []
        )
    log_event(
        "wake request",
        request=request.shown,
        method=request.method,
        answer=outcome.answer.status,
        services=outcome.services,
        written=outcome.written,
        converged=outcome.converged,
        took_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return _answer(request, outcome.answer)


def wake(
    clients: Clients,
    settings: Settings,
    request: WakeRequest,
    *,
    at: datetime,
    holder: str | None = None,
    deadline: float | None = None,
) -> WakeOutcome:
    """Find the service, check it may be woken, write its override and converge it."""
    from engine.store import StateStore
    from engine.wake_store import every_saved_rule

    balancers = {group: lb for lb, group in settings.wake_target_groups}
    balancer = balancers.get(request.target_group)
    if balancer is None:
        return WakeOutcome(
            Answer("refused", "This target group is not one of teiji's wake target groups."), []
        )
    state = StateStore(clients, settings.state_table)
    rules, _ = every_saved_rule(state)
    keys = services_for(request, rules, balancer)
    if not keys:
        # The rule was restored a moment ago (the next try reaches the service), or it was
        # never teiji's: either way nothing here is asleep.
        return WakeOutcome(
            Answer("not-asleep", f"Nothing asleep answers {request.shown}; retrying shortly."), []
        )
    answers = [_wake_one(clients, settings, request, key, at, holder, deadline) for key in keys]
    # Several services (one per listener) answer one request: say the first that starts.
    chosen = next((o for o in answers if o.answer.status == "starting"), answers[0])
    chosen.services = keys
    return chosen


def _wake_one(
    clients: Clients,
    settings: Settings,
    request: WakeRequest,
    key: str,
    at: datetime,
    holder: str | None,
    deadline: float | None,
) -> WakeOutcome:
    from engine.access import outside_allow_list
    from engine.config import parse_duration
    from engine.plan import is_protected

    read = _read_service(clients, settings, key, at)
    schedule = read.loaded.documents.schedules.get(key)
    if schedule is None:
        return _refused(
            key, read.why or "its schedule document is invalid (teiji validate says why)."
        )
    wake = schedule.wake
    if wake is None or not wake.on_request:
        return _refused(key, "its schedule does not ask for it (wake.on_request is not true).")
    if schedule.mode == "unmanaged":
        # teiji never touches it, so an override would start nothing: say so, write none.
        return _refused(key, "its schedule says mode: unmanaged, so teiji leaves it as it is.")
    if outside_allow_list(schedule, settings.access, clients.region) or is_protected(
        schedule, settings.protected
    ):
        return _refused(key, "it is outside what this deployment may change.")
    overrides = [o for o in read.loaded.documents.overrides if o.key == key]
    plan = plan_wake(
        key,
        overrides,
        now=at,
        keep_for=parse_duration(wake.keep_for),
        cap=settings.max_override,
        shown=request.shown,
    )
    if plan.kind == "kept-stopped":
        assert plan.blocking is not None
        until = plan.blocking.until.isoformat()
        message = (
            f"{key} is kept stopped until {until} by an override ({plan.blocking.reason}); "
            "teiji does not wake it before then."
        )
        return WakeOutcome(Answer("kept-stopped", message, key), [key])
    written = None
    converged = False
    if not settings.dry_run:
        written = _write(clients, settings, plan, read.override_items.get(WAKE_ID))
        if _may_converge(clients, settings, key, at):
            converged = _converge(clients, settings, key, at, holder, deadline)
    said = (
        f"teiji runs as a dry run (TEIJI_DRY_RUN): it would start {key} for {wake.keep_for}, "
        "and starts nothing."
        if settings.dry_run
        else f"Starting {key}: teiji is bringing it back for {wake.keep_for}."
    )
    return WakeOutcome(Answer("starting", said, key, DEFAULT_READY_S), [key], written, converged)


def _refused(key: str, why: str) -> WakeOutcome:
    return WakeOutcome(Answer("refused", f"teiji does not wake {key}: {why}", key), [key])


@dataclass
class _ServiceDocuments:
    """One service's documents as the tick reads them (its schedule -- from its document or
    its tag --, its profile and calendars, and every override, ended ones too), the override
    items by id, and why it has no schedule when it has none."""

    loaded: LoadedConfig
    override_items: dict[str, Mapping[str, Any]]
    why: str = ""


def _read_service(
    clients: Clients,
    settings: Settings,
    key: str,
    at: datetime,
    overrides: Sequence[Mapping[str, Any]] | None = None,
) -> _ServiceDocuments:
    """Read and validate only what deciding this one service needs: a few GetItems and one
    Query, whatever the size of the table (no Query when the caller has just read every
    override item, ``overrides``: those of this service are picked from them)."""
    from engine.store import ConfigStore, query_items
    from schemas.validation import growth_cap

    table = settings.config_table
    item = _get(clients, table, "schedule", key)
    items = [item] if item is not None else []
    profile = item.get("profile") if item is not None else _tagged_profile(clients, key)
    if isinstance(profile, str):
        found = _get(clients, table, "profile", profile.strip())
        if found is not None:
            items.append(found)
    for name in sorted(_calendars(items)):
        calendar = _get(clients, table, "calendar", name)
        if calendar is not None:
            items.append(calendar)
    if overrides is None:
        overrides = query_items(clients, table, "override", prefix=f"{key}#")
    override_items = [o for o in overrides if split_override_sk(str(o.get("sk", "")))[0] == key]
    loaded = ConfigStore(clients, table).validate_items(
        [*items, *override_items],
        now=at,
        max_override=settings.max_override,
        default_timezone=settings.default_timezone,
        checks=(growth_cap(settings.access.max_desired),),
        keep_ended=True,
    )
    by_id: dict[str, Mapping[str, Any]] = {
        split_override_sk(str(o.get("sk", "")))[1]: o for o in override_items
    }
    why = ""
    if item is None:
        why = _add_tagged(loaded, key, profile, settings.default_timezone)
    return _ServiceDocuments(loaded, by_id, why)


def _add_tagged(loaded: LoadedConfig, key: str, profile: object, default_timezone: str) -> str:
    """Put the schedule a ``teiji:profile`` tag gives into ``loaded``; why not, if not."""
    from engine.optin import tagged_schedule
    from schemas.documents import Schedule
    from schemas.keys import ServiceKey

    if not isinstance(profile, str):
        return "it has no schedule document and no teiji:profile tag."
    parsed = ServiceKey.parse(key)
    found = tagged_schedule(
        parsed.cluster,
        parsed.service,
        (parsed.account, parsed.region),
        profile,
        loaded.documents,
        default_timezone=default_timezone,
    )
    if isinstance(found, Schedule):
        loaded.documents.schedules[key] = found
        return ""
    loaded.problems.append(found)
    loaded.problem_keys.setdefault(key, []).append(found)
    return found.message


def _tagged_profile(clients: Clients, key: str) -> str | None:
    """The ``teiji:profile`` tag of a service with no document (None when untagged, protected,
    or gone)."""
    from engine.aws import ecs
    from engine.optin import PROFILE_TAG, is_protected, tags_of
    from schemas.keys import ServiceKey

    parsed = ServiceKey.parse(key)
    client = clients.ecs(parsed.account, parsed.region)
    lookup = ecs.describe_services(client, parsed.cluster, [parsed.service], tags=True)
    entry = lookup.found.get(parsed.service)
    if entry is None or is_protected(entry):
        return None
    return tags_of(entry).get(PROFILE_TAG)


def _calendars(items: Sequence[Mapping[str, Any]]) -> set[str]:
    from engine.edits import holidays_listed

    names: set[str] = set()
    for item in items:
        names |= holidays_listed(item)
    return names


def _get(clients: Clients, table: str, pk: str, sk: str) -> dict[str, Any] | None:
    from engine.store import ConfigStore

    if not sk or len(sk) > 1024:  # no item can have it (DynamoDB's sort key limit)
        return None
    return ConfigStore(clients, table).get_item(pk, sk)


def _write(
    clients: Clients, settings: Settings, plan: WakeWrite, read: Mapping[str, Any] | None
) -> str | None:
    """Write the planned override on condition that its item is still what was read; the
    kind written, or None (nothing to write, or another request wrote first)."""
    from engine.store import conditional_write, item_from_document, stamp_item, to_attribute_map

    if plan.override is None:
        return None
    item = stamp_item(item_from_document(plan.override))
    params: dict[str, Any] = {"TableName": settings.config_table, "Item": to_attribute_map(item)}
    if read is None:
        params["ConditionExpression"] = "attribute_not_exists(pk)"
    elif isinstance(read.get("teiji_hash"), str):
        params["ConditionExpression"] = "teiji_hash = :h"
        params["ExpressionAttributeValues"] = {":h": {"S": read["teiji_hash"]}}
    else:
        # Edited by hand (no hash): still the same item only if its end is as read.
        params["ConditionExpression"] = "#u = :u"
        params["ExpressionAttributeNames"] = {"#u": "until"}
        params["ExpressionAttributeValues"] = {":u": {"S": str(read.get("until"))}}
    wrote = conditional_write(clients.dynamodb().put_item, **params)
    return plan.kind if wrote else None


def _may_converge(clients: Clients, settings: Settings, key: str, at: datetime) -> bool:
    """Whether this request converges the service: the first in ``CONVERGE_EVERY_S``."""
    from engine.store import conditional_write

    now = int(at.timestamp())
    return conditional_write(
        clients.dynamodb().put_item,
        TableName=settings.state_table,
        Item={
            "pk": {"S": WAKE_POKE_PK},
            "sk": {"S": key},
            "at": {"N": str(now)},
            "expires_at": {"N": str(now + 86400)},
        },
        ConditionExpression="attribute_not_exists(pk) OR #a <= :before",
        ExpressionAttributeNames={"#a": "at"},
        ExpressionAttributeValues={":before": {"N": str(now - CONVERGE_EVERY_S)}},
    )


def _converge(
    clients: Clients,
    settings: Settings,
    key: str,
    at: datetime,
    holder: str | None,
    deadline: float | None,
) -> bool:
    """Run the tick for the one service; True when it acted under the lease."""
    from engine.aws.errors import error_text
    from engine.logs import log_event
    from engine.tick import TickError, publish_service_events, run_tick

    quiet = replace(settings, event_bus=None)  # its own events only, below

    def documents(now: datetime) -> LoadedConfig:
        loaded = _read_service(clients, settings, key, now).loaded
        loaded.documents.overrides = [o for o in loaded.documents.overrides if o.until > now]
        return loaded

    from schemas.keys import ServiceKey

    parsed = ServiceKey.parse(key)
    # With fan-out, the workers converge each (account, region) under that scope's lease:
    # so does this run (as the edits function does); otherwise under the ticks' lease.
    scope = (parsed.account, parsed.region) if settings.fanout_queue_url else None
    try:
        report = run_tick(
            clients,
            quiet,
            at=at,
            dry_run=False,
            services=[key],
            scope=scope,
            holder=holder,
            deadline=deadline,
            documents=documents,
        )
    except TickError as exc:
        log_event("the wake could not converge", level=logging.ERROR, error=error_text(exc))
        return False
    publish_service_events(clients, settings.event_bus, report)
    return report.lease not in ("held", "not taken")
