"""Who may touch what: the deployment's allow-list and growth cap, as pure checks.

The allow-list (``Access.accounts``, ``regions``, ``clusters``) says which ECS services teiji may
manage; a document naming anything outside it is reported and never acted on. The growth cap
(``Access.max_desired``) bounds every desired count and maximum teiji sets, whatever a document,
an override or a saved baseline asks for. The IAM policy Terraform writes grants the same
accounts and regions, so these checks and the role agree; the checks give the readable error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from engine.config import Access
from engine.plan import Action, ServicePlan
from engine.report import Phase, ServiceReport
from schemas.documents import Override, Schedule
from schemas.validation import MAX_DESIRED_ENV, DocumentCheck, growth_cap

# Each list: (the setting, the Terraform variable that sets it).
_SETTINGS = {
    "accounts": ("TEIJI_ALLOWED_ACCOUNTS", "allowed_accounts"),
    "regions": ("TEIJI_ALLOWED_REGIONS", "allowed_regions"),
    "clusters": ("TEIJI_ALLOWED_CLUSTERS", "clusters"),
}


def outside_allow_list(
    document: Schedule | Override, access: Access, own_region: str | None
) -> list[tuple[str, str]]:
    """``(field, what is wrong and what is allowed)`` for each part of the document's service
    that the allow-list does not cover; empty when teiji may manage it.

    A document that names no account (or no region) means teiji's own, always allowed. A region
    spelled out equal to ``own_region`` is the own region too. Fail closed: when the own region
    is unknown, a named region must be listed.
    """
    found: list[tuple[str, str]] = []
    if document.account is not None and document.account not in access.accounts:
        allowed = ["its own account", *access.accounts]
        found.append(("account", _not_allowed(f"account {document.account}", allowed, "accounts")))
    region = document.region
    if region is not None and region != own_region and region not in access.regions:
        own = [f"{own_region} (its own)" if own_region else "its own region"]
        allowed = own + [r for r in access.regions if r != own_region]
        found.append(("region", _not_allowed(f"region {region}", allowed, "regions")))
    cluster = document.service.split("/", 1)[0]
    if access.clusters and cluster not in access.clusters:
        found.append(("service", _not_allowed(f"cluster {cluster}", access.clusters, "clusters")))
    return found


def _not_allowed(what: str, allowed: Sequence[str], setting: str) -> str:
    env, variable = _SETTINGS[setting]
    return (
        f"{what} is not one teiji may manage; allowed {setting}: {', '.join(allowed)} "
        f"({env}, Terraform variable {variable})"
    )


def allow_list_check(access: Access, own_region: str | None) -> DocumentCheck:
    """The check as ``validate_documents`` takes it (``checks=``)."""

    def check(document: Schedule | Override) -> list[tuple[str, str]]:
        return outside_allow_list(document, access, own_region)

    return check


def refuse_growth(plan: ServicePlan, cap: int) -> ServicePlan:
    """The plan, or a refusal with no actions when it would take a service above ``cap``.

    Growth is a desired count, MinCapacity or MaxCapacity set above the cap and above what the
    service had. A stop whose saved capacity exceeds the cap is refused too: teiji could not
    start the service again, so it leaves it running (and says what to change).
    """
    for action in plan.actions:
        problem = _above_cap(action, cap)
        if problem:
            return replace(plan, actions=(), error=problem)
    return plan


def _above_cap(action: Action, cap: int) -> str | None:
    fix = f"raise {MAX_DESIRED_ENV} (Terraform variable max_desired) or lower the service"
    if action.kind == "save_baseline" and action.baseline is not None:
        saved = action.baseline
        largest = max(saved.desired_count, saved.max_capacity or 0)
        if largest > cap:
            return (
                f"its capacity ({largest}) is above the growth cap of {cap}, so teiji could not "
                f"start it again after this stop; it is left running: {fix}"
            )
        return None
    fields = {
        "update_service": ("desired_count",),
        "register_target": ("min_capacity", "max_capacity"),
    }.get(action.kind, ())
    for name in fields:
        after = action.after.get(name)
        before = action.before.get(name)
        grows = isinstance(after, int) and (not isinstance(before, int) or after > before)
        if grows and isinstance(after, int) and after > cap:
            return (
                f"{action.kind} would set {name} to {after}, above the growth cap of {cap}; "
                f"nothing was changed: {fix}"
            )
    return None


def admit(
    schedules: Sequence[Schedule], access: Access, own_region: str | None
) -> Phase[list[Schedule]]:
    """The schedules teiji may act on; each of the others is settled failed, never acted on."""
    admitted: list[Schedule] = []
    refused: list[ServiceReport] = []
    for schedule in schedules:
        found = outside_allow_list(schedule, access, own_region)
        if not found:
            admitted.append(schedule)
            continue
        error = "; ".join(f"schedule {schedule.key}: {path}: {message}" for path, message in found)
        refused.append(ServiceReport(schedule.key, "failed", error=error))
    return Phase(admitted, tuple(refused))


def document_checks(
    access: Access, own_region: str | None, *, allow_list: bool = True
) -> tuple[DocumentCheck, ...]:
    """The deployment's checks for ``validate_documents``: the growth cap, and the allow-list
    unless ``allow_list`` is false. ``own_region`` None: the AWS_REGION of this environment."""
    if own_region is None:
        own_region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    checks: list[DocumentCheck] = [growth_cap(access.max_desired)]
    if allow_list:
        checks.append(allow_list_check(access, own_region))
    return tuple(checks)
