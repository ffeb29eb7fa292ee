"""The CLI's modules: no two import each other in a circle, each says what it owns, and none
grows past a size a reader takes in.

Imports are read from the source (``ast``), so an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parent.parent / "engine" / "cli"
MAX_LINES = 400
# Modules past the limit that no change has split yet; the list only shrinks.
TOO_LONG_YET = {"simulate.py"}


def _cli_imports(path: Path) -> set[str]:
    """The ``engine.cli`` modules ``path`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "engine.cli":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("engine.cli."):
                found.add(node.module.removeprefix("engine.cli.").split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("engine.cli."):
                    found.add(alias.name.removeprefix("engine.cli.").split(".")[0])
    return found - {path.stem}


def _graph() -> dict[str, set[str]]:
    return {path.stem: _cli_imports(path) for path in sorted(CLI.glob("*.py"))}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports in ``graph`` (the path round it), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for imported in sorted(graph.get(name, ())):
            found = visit(imported, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        found = visit(name, [])
        if found:
            return found
    return None


def test_no_cli_module_imports_another_in_a_circle() -> None:
    assert _cycle(_graph()) is None


def test_the_cycle_check_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_main_registers_each_command_module_that_exists() -> None:
    from engine.cli.main import COMMAND_MODULES

    for name in COMMAND_MODULES:
        assert (CLI / f"{name.removeprefix('engine.cli.')}.py").exists(), name
    assert not (CLI / "operator.py").exists()


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_each_cli_module_says_what_it_owns_and_stays_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.name != "__init__.py":
        assert ast.get_docstring(ast.parse(text)), f"{path.name} opens with no docstring"
    lines = len(text.splitlines())
    if path.name in TOO_LONG_YET:
        return
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines (at most {MAX_LINES})"
