"""The countries the ``holidays`` library knows, each imported only when a document names it.

``import holidays.countries.japan`` runs the ``holidays.countries`` package first, and its
``__init__`` imports every one of the library's ~250 country modules: about 0.1 s with bytecode
and over a second without, in the middle of a cold tick that needs Japan alone. The library's
registry (``holidays.registry.COUNTRIES``) lists every code and the module that holds it without
importing any, so this module answers "is this a country?" from the registry and imports a
country's own module the first time its holidays or subdivisions are asked for.

To import one country module without the package's ``__init__``, ``holidays.countries`` is put
in ``sys.modules`` as the package it is (its real spec and ``__path__``) with its ``__init__``
not yet run. Importing a country module then loads that module alone (and the modules it
imports, such as a territory's parent country), and the library's own lazy loaders
(``holidays.JP``) find it. The first time anyone asks the package for a name it does not hold
(``from holidays.countries import Japan``), its ``__init__`` runs after all, so every other use
of the library behaves as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from functools import cache
from types import ModuleType
from typing import Any

from schemas.documents import Schedule

__all__ = ["country_codes", "holiday_class", "is_country", "subdivisions"]

_PACKAGE = "holidays.countries"


def is_country(name: str) -> bool:
    """True for ``CC`` or ``CC-SUB`` whose country and subdivision the library knows. Imports
    the country's module only for a subdivision."""
    if not Schedule.is_country_code(name):
        return False
    code, _, subdivision = name.partition("-")
    return code in _registry() and (not subdivision or subdivision in subdivisions(code))


def country_codes() -> frozenset[str]:
    """Every country code the library knows (its two- and three-letter aliases too)."""
    return frozenset(_registry())


@cache
def subdivisions(code: str) -> frozenset[str]:
    return frozenset(holiday_class(code).subdivisions)


@cache
def holiday_class(code: str) -> Any:
    """The library's class for ``code`` (what ``holidays.country_holidays(code)`` makes),
    importing that country's module only. Raises KeyError for a code the library lacks."""
    module, entity = _registry()[code]
    return getattr(_country_module(module), entity)


@cache
def _registry() -> Mapping[str, tuple[str, str]]:
    """Country code -> (module in ``holidays.countries``, the class the code names there)."""
    from holidays.registry import COUNTRIES

    return {
        code: (module, code)
        for module, entities in COUNTRIES.items()
        for code in entities[1:]  # entities[0] is the class; then the codes and aliases
        if 2 <= len(code) <= 3
    }


def _country_module(module: str) -> ModuleType:
    from holidays.registry import IMPORT_LOCK  # the lock the library's lazy loaders hold

    with IMPORT_LOCK:
        _package_without_init(IMPORT_LOCK)
        return importlib.import_module(f"{_PACKAGE}.{module}")


def _package_without_init(lock: AbstractContextManager[Any]) -> None:
    """Put ``holidays.countries`` in ``sys.modules`` with its ``__init__`` deferred (see the
    module's docstring); nothing to do when the package is imported already."""
    if _PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(_PACKAGE)  # imports ``holidays``, not the package
    if spec is None or spec.loader is None:
        raise ImportError(f"the holidays library has no {_PACKAGE} package")
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader
    completed = False

    def complete(name: str) -> Any:
        # A name the package does not hold yet: run its __init__ (every country) once.
        nonlocal completed
        with lock:
            if not completed:
                completed = True
                loader.exec_module(package)
        try:
            return vars(package)[name]
        except KeyError:
            raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}") from None

    vars(package)["__getattr__"] = complete  # PEP 562: asked for names the module lacks
    sys.modules[_PACKAGE] = package
    # ``holidays.countries`` as an attribute, as an import would have bound it.
    setattr(sys.modules["holidays"], "countries", package)  # noqa: B010
