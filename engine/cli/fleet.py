"""The services the commands see, as the tick sees them: the schedule documents of the config
table and the services of the allowed clusters that their ``teiji:profile`` tag opts in.

Every command that reads the table's schedules goes through here, so none has its own copy of
the discovery (``engine.phases.opt_in``, which calls ``engine.optin.discover``):

- ``tagged_fleet``/``load_fleet``: the loaded documents with the tagged services' schedules
  merged in, the tagged services that are protected, and the allowed clusters that could not
  be listed.
- ``find_service``: the service a typed name means, documented or tagged, and how.
- ``TagView``/``tag_view``/``read_tags``: what a documented service's own tags say (protected;
  a ``teiji:profile`` tag that its document overrides).
- ``schedule_zones``: every managed service's zone, tagged ones too.

With ``--file`` nothing is read from ECS: ``files_see_no_tags`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from engine.aws.errors import AWS_ERRORS, error_text
from engine.cli.common import EXIT_FAILED, CliError
from engine.optin import PROFILE_TAG, PROTECTED_NOTE, TAG_SOURCE, is_protected, tags_of
from engine.report import for_people
from engine.store import ConfigStore, LoadedConfig
from schemas.documents import Schedule
from schemas.validation import DocumentSet, Problem

if TYPE_CHECKING:
    from engine.aws.clients import Clients
    from engine.cli.session import Session
    from engine.config import Settings


def files_see_no_tags(what: str) -> str:
    """What ``--file`` cannot see, said once: ``what`` the command does (``simulated``)."""
    return (
        f"services opted in by their teiji:profile tag are not {what} from files (the tags "
        "are in ECS); run without --file to include them, as teiji list does"
    )


# A tag value is shown cut to this many characters (a tag value may hold 256).
TAG_SHOWN = 80

Kind = Literal["document", "tag", "protected"]


@dataclass
class Fleet:
    """The documents with the tagged services' schedules merged in (``loaded``), the tagged
    services without a document that are protected, and the allowed clusters that could not be
    listed (``warnings``)."""

    loaded: LoadedConfig
    protected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def documents(self) -> DocumentSet:
        return self.loaded.documents

    def services(self) -> list[str]:
        """Every service teiji sees: schedules, services whose documents or tag are invalid,
        and protected tagged services."""
        return sorted(
            {*self.loaded.documents.schedules, *self.loaded.problem_keys, *self.protected}
        )

    def kind_of(self, key: str) -> Kind:
        """How the service came under teiji: its document, its tag, or a protected tag."""
        if key in self.protected:
            return "protected"
        schedule = self.loaded.documents.schedules.get(key)
        if schedule is not None:
            return "tag" if schedule.origin_detail()["from"] == "tag" else "document"
        problems = self.loaded.problem_keys.get(key, ())
        return "tag" if any(p.source == TAG_SOURCE for p in problems) else "document"


def tagged_fleet(clients: Clients, settings: Settings, loaded: LoadedConfig) -> Fleet:
    """``loaded`` with what the tags of the allowed clusters (``TEIJI_ALLOWED_CLUSTERS``) add,
    found exactly as the tick finds it (``engine.phases.opt_in``). Nothing is listed without
    an allow-list. An allowed cluster that cannot be listed is a warning; an AWS failure
    outside that is one line and exit 1."""
    from engine.phases import opt_in  # the tick's phases: only the commands that read tags

    try:
        phase = opt_in(clients, settings.access, loaded, settings.default_timezone)
    except AWS_ERRORS as exc:
        raise CliError(
            f"cannot list the services of the allowed clusters: {error_text(exc)}", EXIT_FAILED
        ) from exc
    protected = sorted(report.key for report in phase.settled)
    return Fleet(phase.value, protected, list(phase.problems))


def load_fleet(
    clients: Clients, settings: Settings, *, now: datetime, keep_ended: bool = False
) -> Fleet:
    """Every document of the config table, validated as the tick validates them, and the
    tagged services (``tagged_fleet``). ``keep_ended`` keeps the overrides that have ended
    (a simulated range may lie in the past)."""
    from engine.cli.session import aws_errors

    with aws_errors(f"cannot read the documents in {settings.config_table}"):
        loaded = ConfigStore(clients, settings.config_table).load_config(
            now=now,
            max_override=settings.max_override,
            default_timezone=settings.default_timezone,
            keep_ended=keep_ended,
        )
    return tagged_fleet(clients, settings, loaded)


# What a service's own tags say ---------------------------------------------------------------
@dataclass(frozen=True)
class TagView:
    """A service's tags as teiji reads them: protected, and the ``teiji:profile`` value that
    its schedule document overrides (None when it has none, or when the tag made it)."""

    protected: bool = False
    ignored_profile: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"protected": self.protected, "ignored_tag": self.ignored_tag}

    @property
    def ignored_tag(self) -> str | None:
        if self.ignored_profile is None:
            return None
        return f"{PROFILE_TAG}={self.ignored_profile}"

    def notes(self) -> list[str]:
        """What a person reads: protected, and the tag a document wins over."""
        found: list[str] = []
        if self.protected:
            found.append(PROTECTED_NOTE)
        if self.ignored_profile is not None:
            found.append(ignored_tag_note(self.ignored_profile))
        return found


def ignored_tag_note(value: str) -> str:
    shown = for_people(value, TAG_SHOWN)
    return f"its tag {PROFILE_TAG}={shown} is ignored: a schedule document wins over a tag"


def tag_view(schedule: Schedule | None, entry: Mapping[str, Any]) -> TagView:
    """What the tags of a described service (``include=["TAGS"]``) say about it, given its
    schedule: protected whatever made the schedule; a ``teiji:profile`` tag is ignored when a
    document made it."""
    tags = tags_of(entry)
    profile = tags.get(PROFILE_TAG)
    made_by_tag = schedule is not None and schedule.origin_detail()["from"] == "tag"
    ignored = None if profile is None or made_by_tag else profile.strip()
    return TagView(protected=is_protected(entry), ignored_profile=ignored)


def read_tags(clients: Clients, schedule: Schedule) -> TagView | str:
    """The tags of one service (DescribeServices with its tags, as the tick's observe reads
    them), or why they cannot be read."""
    from engine.aws import ecs

    try:
        client = clients.ecs(schedule.account, schedule.region)
        lookup = ecs.describe_services(client, schedule.cluster, [schedule.service_name], tags=True)
    except AWS_ERRORS as exc:
        return error_text(exc)
    entry = lookup.found.get(schedule.service_name)
    if entry is None:
        return lookup.missing.get(schedule.service_name, "not found in ECS")
    return tag_view(schedule, entry)


# Finding a service -----------------------------------------------------------------------------
@dataclass
class Found:
    """The service a typed name means: its key, how it came under teiji, and (for a tagged
    or protected one) the fleet it was found in."""

    key: str
    kind: Kind
    fleet: Fleet | None = None

    def schedule(self) -> Schedule | None:
        if self.fleet is None:
            return None
        return self.fleet.documents.schedules.get(self.key)

    def problems(self) -> list[Problem]:
        if self.fleet is None:
            return []
        return list(self.fleet.loaded.problem_keys.get(self.key, ()))


def find_service(session: Session, service: str | None, *, now: datetime) -> Found:
    """The service ``service`` names (None: the only one), as the tick would find it.

    A stored schedule document is found first, without listing any cluster. Otherwise, when
    the allowed clusters are set (``TEIJI_ALLOWED_CLUSTERS``), they are listed as the tick
    lists them and the name is looked up among every service teiji sees; the message for a
    name that matches nothing offers the tagged services too."""
    from engine.cli.session import find_schedule, match_service

    if not session.settings.access.clusters:
        return Found(find_schedule(session, service).sk, "document")
    if service is not None:
        try:
            return Found(find_schedule(session, service).sk, "document")
        except CliError:
            pass  # not a document's (or not one only): look among every service teiji sees
    fleet = load_fleet(session.clients, session.settings, now=now)
    key = match_service(service, fleet.services(), session.table)
    return Found(key, fleet.kind_of(key), fleet)


def find_document(session: Session, service: str | None, *, now: datetime, verb: str) -> str:
    """The key of the stored schedule ``service`` names, for a command that works on the
    document itself (``verb``: what it does). A service that has none because its tag opts it
    in gets a message saying so and what to do instead (exit 2)."""
    from engine.cli.session import find_schedule

    try:
        return find_schedule(session, service).sk
    except CliError as missing:
        if not session.settings.access.clusters:
            raise
        try:
            found = find_service(session, service, now=now)
        except CliError:
            raise missing from None
        if found.kind == "document":
            return found.key
        how = "is tagged teiji:protected=true"
        schedule = found.schedule()
        if found.kind == "tag":
            how = "is opted in by its teiji:profile tag"
            if schedule is not None:
                how = f"is opted in by its tag {PROFILE_TAG}={schedule.profile}"
        raise CliError(
            f"{found.key} has no schedule document to {verb}: it {how}; change or remove the "
            "tag in ECS, or `teiji put` a schedule for it (a document wins over the tag)"
        ) from None


def refuse_tagged(found: Found, verb: str) -> Schedule:
    """The schedule of a service found by ``find_service`` that is tagged, for a command that
    needs one (``verb``: what it would do): a protected service or a tag naming a missing or
    invalid profile stop it with one line (exit 2)."""
    if found.kind == "protected":
        raise CliError(
            f"{found.key} is tagged teiji:protected=true, so teiji never changes it and {verb} "
            "would do nothing; remove the tag to let teiji manage it"
        )
    schedule = found.schedule()
    if schedule is None:
        why = "; ".join(f"{p.path}: {p.message}" for p in found.problems()) or "no schedule"
        raise CliError(f"{found.key} has no valid schedule: {why}")
    return schedule


def schedule_zones(session: Session, raw: Mapping[str, str], *, now: datetime) -> dict[str, str]:
    """``raw`` (every stored schedule's zone, by key) with the zones of the tagged services of
    the allowed clusters; nothing is listed without an allow-list."""
    zones = dict(raw)
    if not session.settings.access.clusters:
        return zones
    fleet = load_fleet(session.clients, session.settings, now=now)
    for key, schedule in fleet.documents.schedules.items():
        zones.setdefault(key, schedule.timezone)
    for key in fleet.protected:
        zones.setdefault(key, session.settings.default_timezone)
    return zones


def protected_lines(keys: Sequence[str]) -> list[str]:
    """A line per protected tagged service."""
    return [f"{key}: {PROTECTED_NOTE}" for key in keys]
