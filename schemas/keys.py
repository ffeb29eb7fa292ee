"""The name of a managed service, and the one rule for what a name a person types refers to.

A key is ``cluster/service`` in the deployment's own account and Region, or that with a scope
after an ``@``: ``cluster/service@us-east-1``, ``cluster/service@123456789012`` or
``cluster/service@123456789012/us-east-1``. It is the config table's sort key of a schedule, the
state table's key of a baseline, and what reports print. ``ServiceKey`` parses, prints and
matches it; nothing else splits keys on ``@`` by hand.

It lives in ``schemas`` (the lowest layer) because documents carry keys; ``engine`` uses it
through ``engine.model``'s values and directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

ACCOUNT_ID = re.compile(r"^[0-9]{12}$", re.ASCII)
REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$", re.ASCII)


class Closeness(IntEnum):
    """How closely a typed name names a key; smaller is closer."""

    EXACT = 0  # the key itself (scope in any order)
    UNSCOPED = 1  # ``cluster/service`` without the key's ``@scope``
    BARE = 2  # the service's name alone, without its cluster


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    """``cluster/service`` and where it lives (None: the deployment's own account or Region)."""

    name: str
    account: str | None = None
    region: str | None = None

    @classmethod
    def parse(cls, text: str) -> ServiceKey:
        """The key ``text`` spells; ValueError when its scope is neither account nor Region."""
        name, _, scope = text.partition("@")
        account: str | None = None
        region: str | None = None
        for part in scope.split("/") if scope else ():
            if ACCOUNT_ID.match(part):
                account = part
            elif REGION_NAME.match(part):
                region = part
            else:
                raise ValueError(f"{part!r} in {text!r} is neither an account id nor a region")
        return cls(name, account, region)

    @property
    def cluster(self) -> str:
        return self.name.rpartition("/")[0]

    @property
    def service(self) -> str:
        """The service's own name, without its cluster."""
        return self.name.rpartition("/")[2]

    @property
    def scoped(self) -> bool:
        return self.account is not None or self.region is not None

    def canonical(self, own_account: str | None, own_region: str | None) -> ServiceKey:
        """One key per ECS service: the deployment's own account and Region spelled out are
        the bare key (``c1/web@ap-northeast-1`` is ``c1/web`` in ap-northeast-1)."""
        return ServiceKey(
            self.name,
            None if self.account == own_account else self.account,
            None if self.region == own_region else self.region,
        )

    def __str__(self) -> str:
        scope = "/".join(part for part in (self.account, self.region) if part)
        return f"{self.name}@{scope}" if scope else self.name

    def closeness(self, typed: str) -> Closeness | None:
        """How closely ``typed`` names this key, or None when it does not name it."""
        try:
            wanted = ServiceKey.parse(typed)
        except ValueError:
            return None
        if wanted == self:
            return Closeness.EXACT
        if wanted.scoped:
            return None
        if wanted.name == self.name:
            return Closeness.UNSCOPED
        if "/" not in typed and typed == self.service:
            return Closeness.BARE
        return None


@lru_cache(maxsize=65536)  # pure, and asked for every document many times per run
def service_key(service: str, account: str | None = None, region: str | None = None) -> str:
    """The key of ``cluster/service`` in ``account`` and ``region`` (None: the deployment's)."""
    return str(ServiceKey(service, account, region))


def split_override_sk(sk: str) -> tuple[str, str]:
    """An override item's sort key, ``<service key>#<id>``, as (service key, id).

    Neither a key nor an id may hold '#', so the first one divides them: ``svc#a#b`` is the
    service ``svc`` with the (invalid) id ``a#b``, as the tick reads it, not ``svc#a``. The id
    is "" when the sort key has no '#'."""
    key, _, ident = sk.partition("#")
    return key, ident


def closeness(key: str, typed: str) -> Closeness | None:
    """How closely ``typed`` names the stored ``key``; a key that does not parse (an invalid
    document's) is named by its own text and by its part before any ``@``."""
    try:
        return ServiceKey.parse(key).closeness(typed)
    except ValueError:
        if typed == key:
            return Closeness.EXACT
        return Closeness.UNSCOPED if typed == key.partition("@")[0] else None


def keys_named(
    typed: str, keys: Iterable[str], *, loosest: Closeness = Closeness.BARE
) -> list[str]:
    """The keys ``typed`` names at the closest level at which it names any (the key itself,
    else every scope of ``cluster/service``, else every key of that bare service name), no
    looser than ``loosest``; sorted."""
    found: dict[Closeness, list[str]] = {}
    for key in keys:
        level = closeness(key, typed)
        if level is not None and level <= loosest:
            found.setdefault(level, []).append(key)
    return sorted(found[min(found)]) if found else []


def keys_wanted(keys: Iterable[str], typed: Iterable[str]) -> set[str]:
    """Every key one of the ``typed`` names names exactly or as ``cluster/service`` (all its
    scopes): what ``--service`` lists select. One pass over ``keys``."""
    texts = set(typed)
    exact: set[ServiceKey] = set()
    unscoped: set[str] = set()
    for text in texts:
        try:
            wanted = ServiceKey.parse(text)
        except ValueError:
            continue
        exact.add(wanted)
        if not wanted.scoped:
            unscoped.add(wanted.name)
    chosen: set[str] = set()
    for key in keys:
        if key in texts or key.partition("@")[0] in unscoped:
            chosen.add(key)
            continue
        try:
            if ServiceKey.parse(key) in exact:
                chosen.add(key)
        except ValueError:
            continue
    return chosen
