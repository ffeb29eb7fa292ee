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
from engine.aws.errors import AWS_ERRORS
from engine.cli.common import EXIT_FAILED, CliError, fail_with_problems, plural
from engine.config import Settings
from engine.files import UnreadableFileError, load_and_validate
from engine.phases import opt_in
from engine.simulate import ServiceSimulation, select
from engine.store import ConfigStore, LoadedConfig, service_of_problem
from schemas.documents import Schedule
from schemas.validation import DocumentSet, Problem

FILES_SEE_NO_TAGS = (
    "services opted in by their teiji:profile tag are not simulated from files (the tags are "
    "in ECS); run without --file to include them, as teiji list does"
)


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


def read_documents(
    files: Sequence[str], settings: Settings, clients: Clients | None, now: datetime
) -> tuple[DocumentSet, list[Problem]]:
    """The documents of ``files``, or of the config table when ``clients`` is not None, and
    their problems. Raises UnreadableFileError or one of AWS_ERRORS when they cannot be read."""
    if clients is None:
        return load_and_validate(
            files,
            now=now,
            max_override=settings.max_override,
            default_timezone=settings.default_timezone,
        )
    loaded = _load_table(settings, clients, now)
    return loaded.documents, loaded.problems


def _load_table(settings: Settings, clients: Clients, now: datetime) -> LoadedConfig:
    # Overrides are read as files give them, ended ones too: the simulated range may lie in
    # the past, and each override counts where it falls in that range.
    return ConfigStore(clients, settings.config_table).load_config(
        now=now,
        max_override=settings.max_override,
        default_timezone=settings.default_timezone,
        keep_ended=True,
    )


def load_sources(
    args: argparse.Namespace, settings: Settings, clients: Clients | None, now: datetime
) -> Sources:
    """The documents simulate reads: ``--file``, else the table and the tagged services of
    the allowed clusters (``TEIJI_ALLOWED_CLUSTERS``), as the tick and ``teiji list`` see
    them. Unreadable documents stop the command (exit 2 for files, 1 for AWS)."""
    try:
        if clients is None:
            docs, problems = read_documents(args.files, settings, None, now)
            sources = split_problems(docs, problems)
            if docs.profiles or docs.invalid_profiles:
                sources.notes.append(FILES_SEE_NO_TAGS)
            return sources
        loaded = _load_table(settings, clients, now)
    except UnreadableFileError as exc:
        raise CliError(str(exc)) from exc
    except AWS_ERRORS as exc:
        raise CliError(
            f"cannot read documents from DynamoDB table {settings.config_table}: {exc}",
            EXIT_FAILED,
        ) from exc
    try:
        found = opt_in(clients, settings.access, loaded, settings.default_timezone)
    except AWS_ERRORS as exc:
        raise CliError(
            f"cannot list the services of the allowed clusters: {exc}", EXIT_FAILED
        ) from exc
    sources = split_problems(found.value.documents, found.value.problems)
    sources.warnings.extend(found.problems)
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


def failure_lines(sources: Sources, failed: Sequence[str]) -> list[str]:
    """One line per service that cannot be simulated, with what is wrong (its profile named),
    then the problems of the profiles themselves."""
    lines = [f"cannot simulate {key}: {_why(sources.failed[key])}" for key in failed]
    lines.extend(f"problem: {problem}" for problem in sources.profile_problems)
    return lines


def _why(problems: Sequence[Problem]) -> str:
    return "; ".join(
        f"{p.message if p.path == '-' else f'{p.path}: {p.message}'} ({p.source})" for p in problems
    )


def origin_lines(sims: Sequence[ServiceSimulation]) -> list[str]:
    """``schedules made with a profile:`` and a line per such service: the profile, named by
    its document or by its tag, and the fields the schedule set itself (none: nothing)."""
    made = [sim for sim in sims if _profile(sim.origin)]
    if not made:
        return []
    width = max(len(sim.service) for sim in made)
    return ["schedules made with a profile:"] + [
        f"  {sim.service.ljust(width)}  {sim.origin_text}" for sim in made
    ]


def _profile(origin: Mapping[str, object]) -> bool:
    return origin.get("profile") is not None
