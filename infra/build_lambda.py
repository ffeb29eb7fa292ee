#!/usr/bin/env python3
"""Build the Lambda artifact ``dist/teiji-lambda.zip`` without Docker.

The runtime dependencies come from pip's platform options (``--platform manylinux2014_<arch>
--implementation cp --python-version X.Y --only-binary=:all:``), so a laptop on any OS builds
a zip for the Lambda's own CPU and Python. ``--local`` copies the distributions installed in
the interpreter running this script instead (no network, used by the tests).

What goes in: the runtime only. Of ``engine`` and ``schemas``, the modules the handler's
import graph reaches from ``engine.handler`` (so never ``engine.cli``, ``teiji demo`` or its
samples); of the dependencies, those pyproject.toml declares for the Lambda
(``[tool.teiji] lambda-dependencies``, with the versions of ``[project] dependencies``), minus
boto3 and botocore, which the Lambda runtime provides. PyYAML stays a dependency of the package
(the CLI reads YAML) but out of the zip. What stays out: tests, dev tools, scripts, the
dependencies' own ``__pycache__`` and the installer bookkeeping in ``*.dist-info`` (RECORD,
INSTALLER, ...).

Bytecode: when this interpreter's Python is the zip's Python, every module is compiled into
``__pycache__`` with unchecked-hash pycs (no timestamps, nothing checked at import), so a cold
start does not compile anything; otherwise the zip ships sources only and says so on stderr.
The zip is deterministic: files in sorted order, one fixed timestamp and fixed permissions, so
the same inputs give the same sha256.

Usage: python infra/build_lambda.py [--arch arm64|x86_64] [--python-version 3.12]
                                    [--output dist/teiji-lambda.zip] [--local]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "dist" / "teiji-lambda.zip"
SOURCE_PACKAGES = ("engine", "schemas")
ARCHITECTURES = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
PYTHON_VERSIONS = ("3.11", "3.12")

# The Lambda Python runtime ships boto3 and botocore (and what only they need); bundling them
# would double the zip and pin an SDK the runtime keeps patched.
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})

# Installer bookkeeping that nothing reads at run time. METADATA, licences and entry points stay
# (importlib.metadata and licence notices need them).
DIST_INFO_NOISE = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "WHEEL"})

# Never in the zip, whatever imports them: the CLI, `teiji demo` and its sample documents (they
# need moto). The import graph keeps them out; this is the second guard.
CLI_ONLY = frozenset({"engine/cli", "engine/demo.py", "engine/__main__.py", "engine/samples"})
# Imports a runtime module must not make: the Lambda does not ship them.
CLI_ONLY_IMPORTS = frozenset({"engine.cli", "engine.demo", "yaml", "moto"})
ENTRY_MODULE = "engine.handler"

# Every entry gets this timestamp (the zip format's earliest) and these modes.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXTENSION_MODE = 0o755


class BuildError(Exception):
    """A build that cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class BuildResult:
    path: Path
    size: int
    sha256: str
    files: int
    bytecode: bool = False


# Pure rules ------------------------------------------------------------------------------------
def runtime_requirements(pyproject: Path) -> list[str]:
    """The Lambda's dependencies: ``[tool.teiji] lambda-dependencies`` names them, ``[project]
    dependencies`` gives their versions; those the Lambda runtime already has are left out."""
    document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    declared = {_requirement_name(req): req for req in document["project"]["dependencies"]}
    names = document.get("tool", {}).get("teiji", {}).get("lambda-dependencies")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BuildError(
            f"{pyproject}: [tool.teiji] lambda-dependencies must list the names of the "
            'dependencies the Lambda needs, such as ["pydantic", "holidays"]'
        )
    missing = sorted(n for n in names if _canonical(n) not in declared)
    if missing:
        raise BuildError(
            f"{pyproject}: [tool.teiji] lambda-dependencies names {', '.join(missing)}, which "
            "[project] dependencies does not list; add it there (with its version) first"
        )
    return [declared[_canonical(n)] for n in names if _canonical(n) not in PROVIDED_BY_RUNTIME]


def _requirement_name(requirement: str) -> str:
    name = requirement
    for stop in "<>=!~;[ @":
        name = name.split(stop, 1)[0]
    return _canonical(name)


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def is_packaged(relative: PurePosixPath) -> bool:
    """Whether a file under the install directory belongs in the zip."""
    parts = relative.parts
    if not parts or parts[0] in ("bin", "tests", "test") or ".." in parts:
        return False
    if "__pycache__" in parts or relative.suffix in (".pyc", ".pyo"):
        return False
    if any(str(PurePosixPath(*parts[:n])) in CLI_ONLY for n in range(1, len(parts) + 1)):
        return False
    if _canonical(parts[0].split("-", 1)[0]) in PROVIDED_BY_RUNTIME:
        return False
    return not (parts[0].endswith(".dist-info") and relative.name in DIST_INFO_NOISE)


def zip_mode(relative: PurePosixPath) -> int:
    return EXTENSION_MODE if relative.suffix == ".so" or ".so." in relative.name else FILE_MODE


def write_zip(root: Path, output: Path) -> BuildResult:
    """Zip every file under ``root`` deterministically and return its size and sha256."""
    files = sorted(
        PurePosixPath(path.relative_to(root).as_posix())
        for path in root.rglob("*")
        if path.is_file()
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for relative in files:
            info = zipfile.ZipInfo(str(relative), date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode below is honoured when unpacked
            info.external_attr = (0o100000 | zip_mode(relative)) << 16
            archive.writestr(info, (root / relative).read_bytes(), compresslevel=9)
    data = output.read_bytes()
    return BuildResult(output, len(data), hashlib.sha256(data).hexdigest(), len(files))


@dataclass(frozen=True)
class ImportGraph:
    """What ``engine.handler`` reaches: our modules (name -> file) and who imports what else."""

    modules: dict[str, PurePosixPath]
    imported_by: dict[str, str]  # module -> the module whose import brought it in
    external: dict[str, list[str]]  # top-level name of another distribution -> our importers


def import_graph(repo: Path = REPO, entry: str = ENTRY_MODULE) -> ImportGraph:
    """Every ``engine``/``schemas`` module ``entry`` can import, read from the sources' import
    statements (late imports inside functions included, ``if TYPE_CHECKING:`` blocks not), with
    the packages that hold them."""
    modules: dict[str, PurePosixPath] = {}
    imported_by: dict[str, str] = {}
    external: dict[str, list[str]] = {}
    pending = [(entry, "")]
    while pending:
        name, importer = pending.pop()
        if name in modules:
            continue
        path = _module_file(repo, name)
        if path is None:
            raise BuildError(f"{importer} imports {name}, but there is no such module")
        modules[name] = path
        imported_by[name] = importer
        if "." in name:
            pending.append((name.rpartition(".")[0], name))  # its package's __init__ runs first
        tree = ast.parse((repo / path).read_bytes(), str(path))
        for imported, maybe_attribute in _imports(
            tree, name, is_package=path.name == "__init__.py"
        ):
            top = imported.partition(".")[0]
            if top in SOURCE_PACKAGES:
                if maybe_attribute and not _module_file(repo, imported):
                    continue  # `from engine.x import name`: a name in engine.x, which is counted
                pending.append((imported, name))
            elif top not in sys.stdlib_module_names:
                external.setdefault(top, []).append(name)
    return ImportGraph(dict(sorted(modules.items())), imported_by, external)


def _module_file(repo: Path, name: str) -> PurePosixPath | None:
    base = PurePosixPath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (repo / candidate).is_file():
            return candidate
    return None


def _imports(tree: ast.Module, module: str, *, is_package: bool) -> Iterator[tuple[str, bool]]:
    """Absolute names of the modules ``tree`` imports, each with whether it may be a name in a
    module instead (``from a import b`` gives a, and a.b that may be a name in a)."""
    for node in _runtime_nodes(tree.body):
        if isinstance(node, ast.Import):
            yield from ((alias.name, False) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                package = package if is_package else package[:-1]
                anchor = ".".join(package[: len(package) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            yield base, False
            yield from ((f"{base}.{a.name}", True) for a in node.names if a.name != "*")


def _runtime_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node under ``body`` except what ``if TYPE_CHECKING:`` guards."""
    for statement in body:
        if isinstance(statement, ast.If) and _is_type_checking(statement.test):
            yield from _runtime_nodes(statement.orelse)
            continue
        yield statement
        for child in ast.iter_child_nodes(statement):
            if isinstance(child, ast.stmt):
                yield from _runtime_nodes([child])
            else:
                yield from ast.walk(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def check_runtime_imports(graph: ImportGraph, staging: Path) -> None:
    """Refuse a graph that reaches the CLI or a module the zip does not hold."""
    cli = [
        f"{graph.imported_by[name]} imports {name}, which belongs to the CLI; move the code "
        "that needs it into the CLI"
        for name in graph.modules
        if _is_cli(name) and not _is_cli(graph.imported_by[name])
    ]
    if cli:  # what the CLI's own modules import would only repeat it
        raise BuildError("; ".join(cli))
    problems = []
    for top, importers in sorted(graph.external.items()):
        shipped = any((staging / candidate).exists() for candidate in (top, f"{top}.py")) or any(
            staging.glob(f"{top}.*.so")
        )
        if top in CLI_ONLY_IMPORTS or not (shipped or _canonical(top) in PROVIDED_BY_RUNTIME):
            problems.append(
                f"{', '.join(sorted(set(importers)))} import(s) {top}, which the zip does not "
                "hold (an import inside a function counts: the Lambda could reach it); move "
                "that code into the CLI, or add its distribution to [tool.teiji] "
                "lambda-dependencies"
            )
    if problems:
        raise BuildError("; ".join(problems))


def _is_cli(module: str) -> bool:
    return any(module == cli or module.startswith(cli + ".") for cli in CLI_ONLY_IMPORTS)


# Filling the staging directory ----------------------------------------------------------------
# Files a module the handler reaches reads at run time (importlib.resources), by module: the
# tick prices its savings figures from the Fargate table.
DATA_FILES: dict[str, tuple[str, ...]] = {"engine.pricing": ("engine/data/fargate_prices.json",)}


def copy_sources(staging: Path, repo: Path = REPO) -> ImportGraph:
    """Copy the modules the handler reaches, and the data files they read; return the graph
    that chose them."""
    graph = import_graph(repo)
    for relative in graph.modules.values():
        if is_packaged(relative):
            _copy(repo / relative, staging / relative)
    for module, files in DATA_FILES.items():
        if module in graph.modules:
            for name in files:
                _copy(repo / name, staging / name)
    return graph


def compile_bytecode(staging: Path) -> None:
    """Unchecked-hash pycs for every module, in a fresh interpreter (same inputs, same bytes)."""
    script = (
        "import compileall, py_compile, sys\n"
        "ok = compileall.compile_dir(sys.argv[1], quiet=1, stripdir=sys.argv[1],\n"
        "    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
        "sys.exit(0 if ok else 1)\n"
    )
    completed = subprocess.run([sys.executable, "-I", "-c", script, str(staging)], check=False)
    if completed.returncode != 0:
        raise BuildError("some modules did not compile to bytecode; see the messages above")


def pip_command(target: Path, requirements: list[str], arch: str, python_version: str) -> list[str]:
    """pip's command line for wheels of the Lambda's CPU and Python, whatever machine runs it."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        ARCHITECTURES[arch],
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        *requirements,
    ]


def pip_install(target: Path, requirements: list[str], arch: str, python_version: str) -> None:
    completed = subprocess.run(pip_command(target, requirements, arch, python_version), check=False)
    if completed.returncode != 0:
        raise BuildError(
            f"pip could not install {', '.join(requirements)} for {ARCHITECTURES[arch]} and "
            f"Python {python_version} (exit {completed.returncode}); see pip's message above"
        )


def copy_installed(staging: Path, requirements: list[str]) -> None:
    """Copy the distributions this interpreter has installed (``--local``), dependencies too."""
    for dist in _closure(requirements):
        for file in dist.files or ():
            relative = PurePosixPath(str(file).replace("\\", "/"))
            if is_packaged(relative):
                _copy(Path(str(dist.locate_file(file))), staging / relative)


def _closure(requirements: Iterable[str]) -> Iterator[importlib.metadata.Distribution]:
    from packaging.requirements import Requirement  # only --local needs it

    pending = [(Requirement(text), frozenset({""})) for text in requirements]
    seen: set[str] = set()
    while pending:
        requirement, extras = pending.pop()
        name = _canonical(requirement.name)
        if name in seen or name in PROVIDED_BY_RUNTIME:
            continue
        if requirement.marker and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in extras
        ):
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise BuildError(
                f"--local: {requirement.name} is not installed in {sys.executable}; "
                "run `make install` or build without --local"
            ) from exc
        wanted = frozenset({"", *requirement.extras})
        pending.extend((Requirement(text), wanted) for text in dist.requires or ())
        yield dist


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


# Command line -----------------------------------------------------------------------------------
def running_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def build(
    output: Path = DEFAULT_OUTPUT,
    *,
    arch: str = "arm64",
    python_version: str = "3.12",
    local: bool = False,
    repo: Path | None = None,
) -> BuildResult:
    """Build the zip. ``--local`` builds for this interpreter, so its zip always has bytecode;
    otherwise only when this interpreter runs ``python_version``."""
    repo = repo or REPO
    requirements = runtime_requirements(repo / "pyproject.toml")
    bytecode = local or python_version == running_python()
    with tempfile.TemporaryDirectory(prefix="teiji-lambda-") as tmp:
        install_dir = Path(tmp) / "install"
        staging = Path(tmp) / "staging"
        if local:
            copy_installed(staging, requirements)
        else:
            pip_install(install_dir, requirements, arch, python_version)
            _stage_installed(install_dir, staging)
        graph = copy_sources(staging, repo)
        check_runtime_imports(graph, staging)
        leaked = sorted(
            p.name for p in staging.iterdir() if _canonical(p.name) in PROVIDED_BY_RUNTIME
        )
        if leaked:
            raise BuildError(f"{', '.join(leaked)} ended up in the zip; the runtime provides them")
        if bytecode:
            compile_bytecode(staging)
        result = write_zip(staging, output)
        return BuildResult(result.path, result.size, result.sha256, result.files, bytecode)


def _stage_installed(install_dir: Path, staging: Path) -> None:
    for path in sorted(install_dir.rglob("*")):
        relative = PurePosixPath(path.relative_to(install_dir).as_posix())
        if path.is_file() and is_packaged(relative):
            _copy(path, staging / relative)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build the teiji Lambda zip without Docker.")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="arm64")
    parser.add_argument("--python-version", choices=PYTHON_VERSIONS, default="3.12")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--local",
        action="store_true",
        help="copy the packages installed in this interpreter (its platform and Python) "
        "instead of downloading wheels for the Lambda platform",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    target = (
        f"local {sys.implementation.name} {sys.version_info.major}.{sys.version_info.minor}"
        if args.local
        else f"{args.arch} Python {args.python_version}"
    )
    try:
        result = build(
            args.output, arch=args.arch, python_version=args.python_version, local=args.local
        )
    except BuildError as err:
        print(f"build_lambda: {err}", file=sys.stderr)
        return 1
    if not result.bytecode:
        print(
            f"build_lambda: Python {running_python()} cannot compile bytecode for Python "
            f"{args.python_version} (a .pyc is only valid for the Python that wrote it), so the "
            "zip holds sources only and each cold start compiles what it imports; run the "
            f"build under python{args.python_version} for a zip with bytecode",
            file=sys.stderr,
        )
    print(
        f"{result.path}  ({target}, {'with bytecode' if result.bytecode else 'sources only'})\n"
        f"size    {result.size:,} bytes ({result.size / 2**20:.2f} MiB), {result.files} files\n"
        f"sha256  {result.sha256}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
