"""Opt-in by tag: ECS services that a ``teiji:profile=<name>`` tag puts under a profile.

A service in an allowed cluster (``TEIJI_ALLOWED_CLUSTERS``; with none set nothing is
discovered) that carries ``teiji:profile=<name>`` and has no schedule document is managed by
that profile, under the same key a document for it would have (``cluster/service`` in teiji's
own account and region, ``cluster/service@account/region`` elsewhere), so its baseline and
overrides work as a document's do. A schedule document for the service wins over its tag.
``teiji:protected=true`` means teiji never changes the service, document or not.

Discovery lists each allowed cluster of every (account, region) in use (teiji's own, those the
schedules name and those the allow-list names: an account whose services opt in by tag alone
is found too) with ListServices (100 a page, every page) and describes every service it
lists, 10 a call with their tags; the tick reuses those answers for the documented services
instead of describing them again. The pure part (which schedule a tagged service gets)
is ``tagged_schedule``; ``discover`` is the thin shell around the calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from engine.aws import ecs
from engine.aws.batching import chunks
from engine.aws.clock import Clock, RealClock
from engine.aws.errors import AWS_ERRORS, error_code, error_text
from engine.aws.lanes import run_lanes
from engine.logs import log_event
from schemas.documents import PROFILE_FIELDS, Schedule, quote
from schemas.keys import service_key
from schemas.validation import DocumentSet, Problem, parse_document

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from engine.config import Access

PROFILE_TAG = "teiji:profile"
PROTECTED_TAG = "teiji:protected"
PROTECTED_NOTE = (
    "protected: the service is tagged teiji:protected=true, so teiji never changes it; "
    "remove the tag to let teiji manage it"
)
TAG_SOURCE = "tag"
# Discovery's calls in flight at once (its own, before the tick's workers start).
DISCOVERY_THREADS = 32
# Keys a BatchGetItem takes (the documents of listed services, asked by key).
DOCUMENT_BATCH = 100

Scope = tuple[str | None, str | None]


def tags_of(entry: Mapping[str, Any]) -> dict[str, str]:
    """The tags of a described service (``include=["TAGS"]``) as a mapping; entries that are
    not a text key and value are left out."""
    found: dict[str, str] = {}
    tags = entry.get("tags")
    if not isinstance(tags, list):
        return found
    for tag in tags:
        if isinstance(tag, Mapping):
            key, value = tag.get("key"), tag.get("value")
            if isinstance(key, str) and isinstance(value, str):
                found[key] = value
    return found


def is_protected(entry: Mapping[str, Any]) -> bool:
    return tags_of(entry).get(PROTECTED_TAG, "").strip().lower() == "true"


def tagged_schedule(
    cluster: str,
    name: str,
    scope: Scope,
    profile: str,
    docs: DocumentSet,
    *,
    default_timezone: str,
) -> Schedule | Problem:
    """The schedule of a service tagged ``teiji:profile=<profile>``: the profile's body for
    that service, or the one problem why it has none (the service is then left as it is)."""
    account, region = scope
    key = service_key(f"{cluster}/{name}", account, region)
    label = f"schedule {key}"
    wanted = profile.strip()
    if wanted in docs.invalid_profiles:
        fields = ", ".join(docs.invalid_profiles[wanted]) or "-"
        return Problem(
            TAG_SOURCE,
            label,
            PROFILE_TAG,
            f"the tag names profile {quote(wanted)}, which is invalid (fields at fault: "
            f"{fields}); the service is left as it is until the profile is fixed",
        )
    body = docs.profile_bodies.get(wanted)
    if body is None:
        known = ", ".join(sorted(docs.profile_bodies)) or "none"
        return Problem(
            TAG_SOURCE,
            label,
            PROFILE_TAG,
            f"the tag names profile {quote(wanted)}, and there is none; profiles defined: "
            f"{known}; the service is left as it is until the tag names one",
        )
    raw: dict[str, Any] = {
        **body,
        "kind": "schedule",
        "service": f"{cluster}/{name}",
        "profile": wanted,
    }
    if account:
        raw["account"] = account
    if region:
        raw["region"] = region
    parsed = parse_document(raw, source=TAG_SOURCE, index=1, default_timezone=default_timezone)
    if isinstance(parsed, list):
        why = "; ".join(f"{p.path}: {p.message}" for p in parsed)
        return Problem(
            TAG_SOURCE,
            label,
            PROFILE_TAG,
            f"profile {quote(wanted)} is not a whole schedule by itself ({why}); a service "
            "opted in by tag takes every field from its profile",
        )
    assert isinstance(parsed, Schedule)
    return parsed.from_profile((f for f in PROFILE_FIELDS if f in body), by_tag=True)


@dataclass
class Discovery:
    """What the tags say: schedules for tagged services, problems (each one service's), the
    tagged services that are protected, and the calls it took."""

    schedules: dict[str, Schedule] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # clusters that could not be listed
    list_calls: int = 0
    describe_calls: int = 0
    # The answers of DescribeServices (with tags) by service key, documented services' too.
    described: dict[str, Mapping[str, Any]] = field(default_factory=dict)


def scopes_in_use(schedules: Iterable[Schedule], allowed: Iterable[Scope] = ()) -> list[Scope]:
    """teiji's own (account, region), every one the schedules name and every one in
    ``allowed``, in order."""
    found: set[Scope] = {(None, None), *allowed}
    found.update((s.account, s.region) for s in schedules)
    return sorted(found, key=lambda scope: (scope[0] or "", scope[1] or ""))


def tag_scopes(clients: Clients, access: Access) -> list[Scope]:
    """The allow-list's scopes (``allowed_scopes``), with the own account known. When it
    cannot be learned, only the own account's: another account's id might be this one, and
    one service under two keys would be left alone as shared."""
    if not access.accounts:
        return allowed_scopes(access, clients.region)
    try:
        own = clients.own_account()
    except AWS_ERRORS as exc:
        log_event(
            "cannot learn the own account; tagged services are looked for in the accounts "
            "the documents name only",
            level=logging.WARNING,
            error=error_text(exc),
        )
        return allowed_scopes(replace(access, accounts=()), clients.region)
    return allowed_scopes(access, clients.region, own)


def allowed_scopes(
    access: Access, own_region: str | None, own_account: str | None = None
) -> list[Scope]:
    """Every (account, region) the allow-list lets teiji manage: its own account and each
    allowed one, in its own region and each allowed one. Tagged services are looked for in
    all of them, so that an account whose services opt in by tag alone (no document names
    it) is found too. The own account and region are spelled None, as schedules spell them
    (the module's TEIJI_ALLOWED_ACCOUNTS lists the own account first): one service, one key."""
    accounts: list[str | None] = [None, *(a for a in access.accounts if a != own_account)]
    regions: list[str | None] = [None, *(r for r in access.regions if r != own_region)]
    return [(account, region) for account in accounts for region in regions]


def discover(
    clients: Clients,
    access: Access,
    docs: DocumentSet,
    known: Iterable[str],
    *,
    default_timezone: str,
    scopes: Iterable[Scope] | None = None,
    pace: Clock | None = None,
    alongside: Callable[[Mapping[tuple[Scope, str], list[str]]], list[Callable[[], None]]]
    | None = None,
    documents_of: Callable[[Sequence[str]], set[str]] | None = None,
) -> Discovery:
    """The tagged services of the allowed clusters that no document (``known``: every key a
    document names, valid or not) manages, in ``scopes`` (default: every scope in use; a
    fan-out worker looks in its own only).

    Two round trips deep, each call on its own thread (waiting on ``pace``): every allowed
    cluster listed at once, then every service listed described at once with its tags, 10 a
    call. The answers for services a document names are kept too (``Discovery.described``),
    so that the tick does not describe them a second time. ``alongside``: more calls for the
    second round, made from what the listing found (the tick's own reads of those services).
    ``documents_of`` (a fan-out worker, which read the schedules the hand-out named): which
    of the given keys have a schedule document now, asked in the second round for the listed
    services no document read names; one written since the hand-out is not taken for a tag
    (the edits function or the next tick converges it by its document)."""
    found = Discovery()
    if not access.clusters:
        return found
    taken = set(known)
    if scopes is None:
        wanted = scopes_in_use(docs.schedules.values(), tag_scopes(clients, access))
    else:
        wanted = list(scopes)
    clusters = [(scope, cluster) for scope in wanted for cluster in sorted(access.clusters)]
    clock = pace or RealClock()
    lock = threading.Lock()
    listed: dict[tuple[Scope, str], list[str]] = {}

    def list_one(scope: Scope, cluster: str) -> None:
        try:
            names = ecs.list_service_names(clients.ecs(*scope), cluster)
        except AWS_ERRORS as exc:
            if error_code(exc) == "ClusterNotFoundException":
                # An allowed cluster name need not exist in every allowed account and region.
                return
            _cannot(found, lock, scope, cluster, exc)
            return
        with lock:
            listed[(scope, cluster)] = names
            found.list_calls += max(1, -(-len(names) // ecs.LIST_SERVICES_PAGE))

    _at_once(clock, [partial(list_one, scope, cluster) for scope, cluster in clusters])
    entries: dict[tuple[Scope, str], dict[str, Mapping[str, Any]]] = {}

    def describe_some(scope: Scope, cluster: str, names: list[str]) -> None:
        try:
            lookup = ecs.describe_services(clients.ecs(*scope), cluster, names, tags=True)
        except AWS_ERRORS as exc:
            _cannot(found, lock, scope, cluster, exc)
            return
        with lock:
            entries.setdefault((scope, cluster), {}).update(lookup.found)
            found.describe_calls += 1

    describes: list[Callable[[], None]] = [
        partial(describe_some, scope, cluster, batch)
        for (scope, cluster), names in sorted(listed.items(), key=_place)
        for batch in chunks(names, ecs.DESCRIBE_SERVICES_BATCH)
    ]
    late: set[str] = set()

    def documents_now(keys: Sequence[str]) -> None:
        assert documents_of is not None
        try:
            found_now = documents_of(keys)
        except AWS_ERRORS as exc:
            # Not knowing whether a person wrote a document for them, leave them alone.
            log_event(
                "cannot read whether tagged services have documents now; left alone",
                level=logging.WARNING,
                services=len(keys),
                error=error_text(exc),
            )
            found_now = set(keys)
        with lock:
            late.update(found_now)

    checks: list[Callable[[], None]] = []
    if documents_of is not None:
        untaken = [
            key
            for (scope, cluster), names in sorted(listed.items(), key=_place)
            for key in (service_key(f"{cluster}/{n}", *scope) for n in names)
            if key not in taken
        ]
        checks = [partial(documents_now, batch) for batch in chunks(untaken, DOCUMENT_BATCH)]
    _at_once(clock, describes + checks + (alongside(listed) if alongside is not None else []))
    if late:
        log_event(
            "documents written since the hand-out; their services wait for them",
            services=sorted(late)[:20],
        )
        taken |= late
    for (scope, cluster), described in sorted(entries.items(), key=_place):
        for name, entry in sorted(described.items()):
            _take(found, scope, cluster, name, entry, docs, taken, default_timezone)
    return found


def _place(item: tuple[tuple[Scope, str], object]) -> tuple[str, str, str]:
    (account, region), cluster = item[0]
    return (account or "", region or "", cluster)


def _at_once(clock: Clock, units: list[Callable[[], None]]) -> None:
    if units:
        run_lanes(clock, [units], workers=min(len(units), DISCOVERY_THREADS))


def _cannot(
    found: Discovery, lock: threading.Lock, scope: Scope, cluster: str, exc: Exception
) -> None:
    account, region = scope
    where = f"cluster {cluster} in {account or 'its own account'}/{region or 'own region'}"
    with lock:
        found.failures.append(f"cannot discover tagged services of {where}: {error_text(exc)}")
    log_event("cannot discover tagged services", level=logging.WARNING, cluster=cluster)


def _take(
    found: Discovery,
    scope: Scope,
    cluster: str,
    name: str,
    entry: Mapping[str, Any],
    docs: DocumentSet,
    taken: set[str],
    default_timezone: str,
) -> None:
    """One described service: kept for the tick's own observation; a service no document
    names gets its tag's schedule (or its problem), or is protected."""
    account, region = scope
    key = service_key(f"{cluster}/{name}", account, region)
    if key in taken:
        found.described[key] = entry
        return
    profile = tags_of(entry).get(PROFILE_TAG)
    if profile is None:
        return
    if is_protected(entry):
        found.protected.append(key)
        return
    made = tagged_schedule(cluster, name, scope, profile, docs, default_timezone=default_timezone)
    if isinstance(made, Problem):
        found.problems.append(made)
    else:
        found.schedules[made.key] = made
        found.described[made.key] = entry
