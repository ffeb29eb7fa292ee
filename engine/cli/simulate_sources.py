"""Where ``teiji simulate``'s schedules come from: the documents (files, or the config table
with the services their ``teiji:profile`` tag opts in, as ``teiji list`` finds them), which
services cannot be simulated because their documents or their profile are invalid, and the
lines that say which profile decided each service.

A problem that belongs to one service (its schedule, its override, the profile it names, its
tag) fails that service only: the others are simulated. A profile's own problems are listed
and fail no one else. Any other problem (a file that is not YAML, an invalid calendar) leaves
nothing simulated, as before profiles: which services it touches cannot be told.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn

from engine.aws.clients import Clients
from engine.cli.common import CliError, fail_with_problems, plural
from engine.cli.fleet import TagView, files_see_no_tags, load_fleet
from engine.config import Settings
from engine.files import UnreadableFileError, load_and_validate
from engine.simulate import ServiceSimulation, select
from engine.store import service_of_problem
from schemas.documents import Schedule
from schemas.validation import DocumentSet, Problem


@dataclass
class Sources:
    """The valid documents, and what keeps some services (or all) from being simulated."""

    docs: DocumentSet
    # Service key -> the problems that keep it from being simulated, in the order found.
    failed: dict[str, list[Problem]] = field(default_factory=dict)
    # Problems of profile documents: listed, but their users are already in ``failed``.
    profile_problems: list[Problem] = field(default_factory=list)
    # Problems no one service owns (syntax, calendars): nothing is simulated with any of them.
    other_problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # all of them, in the order found
    # Tagged services without a document that are tagged teiji:protected=true: never changed.
    protected: list[str] = field(default_factory=list)


def load_sources(
    args: argparse.Namespace,
    settings: Settings,
    clients: Clients | None,
    now: datetime,
    *,
    what: str = "simulated",
) -> Sources:
    """The documents simulate (and savings' prediction) read: ``--file``, else the table and
    the tagged services of the allowed clusters (``TEIJI_ALLOWED_CLUSTERS``), as the tick and
    ``teiji list`` see them (``engine.cli.fleet``). Unreadable documents stop the command
    (exit 2 for files, 1 for AWS)."""
    if clients is None:
        try:
            docs, problems = load_and_validate(
                args.files,
                now=now,
                max_override=settings.max_override,
                default_timezone=settings.default_timezone,
            )
        except UnreadableFileError as exc:
            raise CliError(str(exc)) from exc
        sources = split_problems(docs, problems)
        if docs.profiles or docs.invalid_profiles:
            sources.notes.append(files_see_no_tags(what))
        return sources
    # Overrides are read as files give them, ended ones too: the simulated range may lie in
    # the past, and each override counts where it falls in that range.
    fleet = load_fleet(clients, settings, now=now, keep_ended=True)
    sources = split_problems(fleet.documents, fleet.loaded.problems)
    sources.warnings.extend(fleet.warnings)
    sources.protected = list(fleet.protected)
    return sources


def split_problems(docs: DocumentSet, problems: Sequence[Problem]) -> Sources:
    """The problems sorted by whom they keep from being simulated (see the module's doc)."""
    sources = Sources(docs, problems=list(problems))
    for problem in problems:
        key = service_of_problem(problem)
        if key is not None:
            sources.failed.setdefault(key, []).append(problem)
        elif problem.document.startswith("profile "):
            sources.profile_problems.append(problem)
        else:
            sources.other_problems.append(problem)
    return sources


def chosen(sources: Sources, names: Sequence[str]) -> tuple[list[Schedule], list[str]]:
    """The schedules to simulate and the keys of the services named (every one when ``names``
    is empty) that cannot be. Stops with exit 2 when a name matches nothing, when a problem no
    one service owns was found, or when nothing is left to simulate."""
    docs = sources.docs
    if sources.other_problems:
        _stop(sources.problems)
    known = set(docs.schedules) | set(sources.failed)
    unknown = [
        name
        for name in names
        if name not in known
        and not any(_service(key) == name for key in known)
        and not any(s.service == name for s in docs.schedules.values())
    ]
    if unknown:
        shown = ", ".join(sorted(known)) or "none"
        raise CliError(f"no schedule for {', '.join(unknown)}; schedules: {shown}")
    wanted = set(names)
    failed = sorted(
        key for key in sources.failed if not wanted or key in wanted or _service(key) in wanted
    )
    # A schedule of a service whose override is invalid is not simulated either.
    schedules = [s for s in select(docs.schedules.values(), names) if s.key not in failed]
    if not schedules:
        if failed:
            mine = [p for key in failed for p in sources.failed[key]]
            _stop([*mine, *sources.profile_problems])
        raise CliError("there are no schedules to simulate")
    return schedules, failed


def _service(key: str) -> str:
    return key.split("@", 1)[0]


def _stop(problems: Sequence[Problem]) -> NoReturn:
    fail_with_problems(
        problems, f"{plural(len(problems), 'problem')} in the documents; fix them and run again"
    )


def failure_lines(sources: Sources, failed: Sequence[str], verb: str = "simulate") -> list[str]:
    """One line per service that cannot be simulated (``verb``), with what is wrong (its
    profile named, and its tag when a tag named it), then the problems of the profiles."""
    lines = [f"cannot {verb} {key}: {_why(sources.failed[key])}" for key in failed]
    lines.extend(f"problem: {problem}" for problem in sources.profile_problems)
    return lines


def _why(problems: Sequence[Problem]) -> str:
    return "; ".join(
        f"{p.message if p.path == '-' else f'{p.path}: {p.message}'} ({p.source})" for p in problems
    )


def origin_lines(
    sims: Sequence[ServiceSimulation], tags: Mapping[str, TagView] | None = None
) -> list[str]:
    """``schedules made with a profile:`` and a line per such service: the profile, named by
    its document or by its tag, and the fields the schedule set itself (none: nothing); a
    service whose document wins over its ``teiji:profile`` tag is listed too, saying so."""
    tags = tags or {}
    made = [
        sim
        for sim in sims
        if _profile(sim.origin) or (sim.service in tags and tags[sim.service].ignored_profile)
    ]
    if not made:
        return []
    width = max(len(sim.service) for sim in made)
    lines = ["schedules made with a profile:"]
    for sim in made:
        text = sim.origin_text
        view = tags.get(sim.service)
        if view is not None and view.ignored_profile is not None:
            text = f"{text}; {view.notes()[-1]}"
        lines.append(f"  {sim.service.ljust(width)}  {text}")
    return lines


def protected_text(keys: Sequence[str]) -> str | None:
    """The services left out because they are tagged teiji:protected=true."""
    if not keys:
        return None
    return (
        "protected, not simulated (tagged teiji:protected=true: teiji never changes them): "
        + ", ".join(keys)
    )


def _profile(origin: Mapping[str, object]) -> bool:
    return origin.get("profile") is not None
