#!/usr/bin/env python3
"""Build the Lambda artifact ``dist/teiji-lambda.zip`` without Docker.

The runtime dependencies come from pip's platform options (``--platform manylinux2014_<arch>
--implementation cp --python-version X.Y --only-binary=:all:``), so a laptop on any OS builds
a zip for the Lambda's own CPU and Python. ``--local`` copies the distributions installed in
the interpreter running this script instead (no network, used by the tests).

What goes in: the ``engine`` and ``schemas`` packages and the dependencies from pyproject.toml,
minus boto3 and botocore, which the Lambda runtime provides. What stays out: tests, dev tools,
``teiji demo`` and its samples (they need moto), ``__pycache__``, compiled bytecode, scripts,
and the installer bookkeeping in ``*.dist-info`` (RECORD, INSTALLER, ...). The zip is
deterministic: files in sorted order, one fixed timestamp and fixed permissions, so the same
inputs give the same sha256.

Usage: python infra/build_lambda.py [--arch arm64|x86_64] [--python-version 3.12]
                                    [--output dist/teiji-lambda.zip] [--local]
"""

from __future__ import annotations

import argparse
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

# `teiji demo` and its sample documents need moto (the `demo` extra): the Lambda never runs them.
DEMO_ONLY = frozenset({"engine/demo.py", "engine/cli/demo.py", "engine/samples"})

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


# Pure rules ------------------------------------------------------------------------------------
def runtime_requirements(pyproject: Path) -> list[str]:
    """The project's dependencies, less those the Lambda runtime already has."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [
        req for req in project["dependencies"] if _requirement_name(req) not in PROVIDED_BY_RUNTIME
    ]


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
    if any(str(PurePosixPath(*parts[:n])) in DEMO_ONLY for n in range(1, len(parts) + 1)):
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


# Filling the staging directory ----------------------------------------------------------------
def copy_sources(staging: Path, repo: Path = REPO) -> None:
    for package in SOURCE_PACKAGES:
        for path in sorted((repo / package).rglob("*")):
            relative = PurePosixPath(path.relative_to(repo).as_posix())
            if path.is_file() and is_packaged(relative):
                _copy(path, staging / relative)


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
def build(
    output: Path = DEFAULT_OUTPUT,
    *,
    arch: str = "arm64",
    python_version: str = "3.12",
    local: bool = False,
    repo: Path = REPO,
) -> BuildResult:
    requirements = runtime_requirements(repo / "pyproject.toml")
    with tempfile.TemporaryDirectory(prefix="teiji-lambda-") as tmp:
        install_dir = Path(tmp) / "install"
        staging = Path(tmp) / "staging"
        if local:
            copy_installed(staging, requirements)
        else:
            pip_install(install_dir, requirements, arch, python_version)
            _stage_installed(install_dir, staging)
        copy_sources(staging, repo)
        leaked = sorted(
            p.name for p in staging.iterdir() if _canonical(p.name) in PROVIDED_BY_RUNTIME
        )
        if leaked:
            raise BuildError(f"{', '.join(leaked)} ended up in the zip; the runtime provides them")
        return write_zip(staging, output)


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
    print(
        f"{result.path}  ({target})\n"
        f"size    {result.size:,} bytes ({result.size / 2**20:.2f} MiB), {result.files} files\n"
        f"sha256  {result.sha256}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
