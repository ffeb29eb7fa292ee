"""The Lambda zip: what goes in (the runtime only, with bytecode) and that it is reproducible.

tests/test_lambda_isolated.py runs the handler from the unpacked zip in a clean interpreter.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")


def _load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_lambda", REPO / "infra" / "build_lambda.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_lambda"] = module
    spec.loader.exec_module(module)
    return module


build_lambda = _load_build_script()


@pytest.fixture(scope="module")
def source_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sources, so the builds compare the same inputs."""
    snapshot = tmp_path_factory.mktemp("repo")
    shutil.copy2(REPO / "pyproject.toml", snapshot / "pyproject.toml")
    for package in build_lambda.SOURCE_PACKAGES:
        shutil.copytree(REPO / package, snapshot / package)
    return snapshot


@pytest.fixture(scope="module")
def built(source_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    output = tmp_path_factory.mktemp("dist") / "teiji-lambda.zip"
    return build_lambda.build(output, local=True, repo=source_snapshot)


@pytest.fixture(scope="module")
def names(built: Any) -> list[str]:
    with zipfile.ZipFile(built.path) as archive:
        return archive.namelist()


# Pure rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "packaged"),
    [
        ("engine/handler.py", True),
        ("schemas/py.typed", True),
        ("pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so", True),
        ("holidays-0.60.dist-info/METADATA", True),
        ("holidays-0.60.dist-info/licenses/LICENSE", True),
        ("holidays-0.60.dist-info/RECORD", False),
        ("holidays-0.60.dist-info/INSTALLER", False),
        ("engine/__pycache__/handler.cpython-312.pyc", False),
        ("yaml/constructor.pyc", False),
        ("boto3/session.py", False),
        ("botocore/data/ecs/2014-11-13/service-2.json.gz", False),
        ("boto3-1.35.0.dist-info/METADATA", False),
        ("tests/test_tick.py", False),
        ("bin/croniter", False),
        ("../../bin/pip", False),
        ("engine/demo.py", False),
        ("engine/cli/demo.py", False),
        ("engine/samples/stg.yaml", False),
        ("engine/cli/main.py", False),
        ("engine/cli/__init__.py", False),
        ("engine/__main__.py", False),
    ],
)
def test_what_goes_into_the_zip(path: str, packaged: bool) -> None:
    assert build_lambda.is_packaged(PurePosixPath(path)) is packaged


def _pyproject(tmp_path: Path, lambda_dependencies: str) -> Path:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["boto3>=1.34", "Botocore", "pydantic>=2.6,<3",'
        f' "PyYAML>=6.0", "holidays"]\n{lambda_dependencies}',
        encoding="utf-8",
    )
    return pyproject


def test_requirements_are_the_declared_lambda_list_with_the_project_versions(
    tmp_path: Path,
) -> None:
    declared = '[tool.teiji]\nlambda-dependencies = ["pydantic", "holidays", "boto3"]\n'
    assert build_lambda.runtime_requirements(_pyproject(tmp_path, declared)) == [
        "pydantic>=2.6,<3",
        "holidays",
    ]


def test_the_real_lambda_list_leaves_out_the_cli_and_the_runtime_sdk() -> None:
    real = build_lambda.runtime_requirements(REPO / "pyproject.toml")
    names = {build_lambda._requirement_name(req) for req in real}
    assert {"pydantic", "holidays", "croniter", "pytz"} <= names
    assert not names & {"pyyaml", "boto3", "botocore", "moto"}
    # PyYAML is still a dependency of the package: the CLI reads YAML.
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "pyyaml" in {build_lambda._requirement_name(req) for req in project["dependencies"]}


@pytest.mark.parametrize(
    ("lambda_dependencies", "message"),
    [
        ("", "[tool.teiji] lambda-dependencies must list"),
        ('[tool.teiji]\nlambda-dependencies = "pydantic"\n', "must list the names"),
        (
            '[tool.teiji]\nlambda-dependencies = ["pydantic", "requests"]\n',
            "names requests, which [project] dependencies does not list",
        ),
    ],
)
def test_a_missing_or_unknown_lambda_list_stops_the_build(
    tmp_path: Path, lambda_dependencies: str, message: str
) -> None:
    with pytest.raises(build_lambda.BuildError, match=re.escape(message)):
        build_lambda.runtime_requirements(_pyproject(tmp_path, lambda_dependencies))


@pytest.mark.parametrize(
    ("arch", "platform"), [("arm64", "manylinux2014_aarch64"), ("x86_64", "manylinux2014_x86_64")]
)
def test_pip_installs_wheels_for_the_lambda_platform(arch: str, platform: str) -> None:
    command = build_lambda.pip_command(Path("/t"), ["pydantic>=2.6,<3"], arch, "3.12")
    joined = " ".join(command)
    assert f"--platform {platform}" in joined
    assert "--implementation cp" in joined
    assert "--python-version 3.12" in joined
    assert "--only-binary=:all:" in command
    assert "--target /t" in joined
    assert "--no-compile" in command
    assert command[-1] == "pydantic>=2.6,<3"


def test_zip_ignores_timestamps_and_permissions(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "b.py").write_text("B = 2\n")
    (root / "pkg" / "a.py").write_text("A = 1\n")
    (root / "pkg" / "_ext.so").write_bytes(b"\x7fELF")
    first = build_lambda.write_zip(root, tmp_path / "1.zip")

    os.utime(root / "pkg" / "a.py", (1_900_000_000, 1_900_000_000))
    (root / "pkg" / "b.py").chmod(0o600)
    second = build_lambda.write_zip(root, tmp_path / "2.zip")

    assert first.sha256 == second.sha256
    with zipfile.ZipFile(second.path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == ["pkg/_ext.so", "pkg/a.py", "pkg/b.py"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes == {"pkg/_ext.so": 0o755, "pkg/a.py": 0o644, "pkg/b.py": 0o644}


# A real build ----------------------------------------------------------------------------------
def test_build_is_deterministic(built: Any, source_snapshot: Path, tmp_path: Path) -> None:
    again = build_lambda.build(tmp_path / "again.zip", local=True, repo=source_snapshot)
    assert again.sha256 == built.sha256
    assert again.size == built.size


def test_zip_holds_the_runtime_and_nothing_else(names: list[str]) -> None:
    tops = {PurePosixPath(name).parts[0] for name in names}
    for required in ("engine", "schemas", "pydantic", "pydantic_core", "croniter", "pytz"):
        assert required in tops, f"{required} is missing"
    assert {"holidays", "dateutil"} <= tops
    assert "engine/handler.py" in names
    assert "schemas/countries.py" in names
    for forbidden in ("boto3", "botocore", "s3transfer", "tests", "bin", "pytest", "moto", "yaml"):
        assert forbidden not in tops, f"{forbidden} must not be in the zip"
    assert not [n for n in tops if n.lower().startswith(("pyyaml", "_yaml"))]
    # The CLI and what only the CLI imports (YAML files, simulate, the timeline page).
    assert not [n for n in names if n.startswith("engine/cli/") or "demo" in n]
    assert not [n for n in names if n.startswith("engine/samples/")]
    # The tick prices its savings figures: the price table, and nothing else of engine/data.
    assert [n for n in names if n.startswith("engine/data/")] == ["engine/data/fargate_prices.json"]
    assert "engine/pricing.py" in names
    for cli_only in ("__main__", "files", "simulate", "timeline_html", "overrides"):
        assert f"engine/{cli_only}.py" not in names
    assert not [n for n in names if n.endswith(".dist-info/RECORD")]
    assert not [n for n in names if PurePosixPath(n).parts[0].endswith(".egg-info")]


def test_every_module_ships_its_bytecode_for_this_python(built: Any, names: list[str]) -> None:
    tag = sys.implementation.cache_tag
    sources = [n for n in names if n.endswith(".py")]
    pycs = {n for n in names if n.endswith(".pyc")}
    assert built.bytecode is True
    assert sources and len(pycs) == len(sources)
    for source in sources:
        path = PurePosixPath(source)
        assert str(path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc") in pycs, source
    with zipfile.ZipFile(built.path) as archive:
        for name in sorted(pycs):
            header = archive.read(name)[:16]
            assert header[:4] == importlib.util.MAGIC_NUMBER, name
            # PEP 552 flags: 0b01 = hash-based and not checked against the source at import.
            assert int.from_bytes(header[4:8], "little") == 0b01, name


def test_the_runtime_is_what_the_handler_imports(source_snapshot: Path) -> None:
    graph = build_lambda.import_graph(source_snapshot)
    assert "engine.handler" in graph.modules and "engine.tick" in graph.modules
    assert "engine.calendars" in graph.modules and "schemas.countries" in graph.modules
    assert graph.modules["engine.aws"] == PurePosixPath("engine/aws/__init__.py")
    assert not [m for m in graph.modules if m.startswith("engine.cli")]
    assert "engine.files" not in graph.modules  # YAML: the CLI's
    assert "yaml" not in graph.external
    # Imports under `if TYPE_CHECKING:` are not followed (mypy_boto3 stubs are dev-only).
    assert not [top for top in graph.external if top.startswith("mypy_boto3")]
    assert set(graph.external) <= {"boto3", "botocore", "pydantic", "croniter", "pytz", "holidays"}


def _snapshot_with(source_snapshot: Path, tmp_path: Path, module: str, line: str) -> Path:
    changed = tmp_path / "changed"
    shutil.copytree(source_snapshot, changed)
    path = changed / module
    path.write_text(path.read_text(encoding="utf-8") + line, encoding="utf-8")
    return changed


@pytest.mark.parametrize(
    ("module", "line", "message"),
    [
        ("engine/decide.py", "\nimport yaml\n", "engine.decide import(s) yaml"),
        (
            "engine/store.py",
            "\n\ndef _dump() -> None:\n    import yaml  # a late import counts too\n",
            "engine.store import(s) yaml",
        ),
        (
            "engine/tick.py",
            "\nfrom engine.cli.common import table\n",
            "engine.tick imports engine.cli.common, which belongs to the CLI",
        ),
        ("engine/logs.py", "\nfrom engine.files import load_files\n", "import(s) yaml"),
        ("engine/plan.py", "\nimport engine.nowhere\n", "engine.plan imports engine.nowhere"),
    ],
)
def test_a_runtime_module_that_reaches_the_cli_stops_the_build(
    source_snapshot: Path, tmp_path: Path, module: str, line: str, message: str
) -> None:
    # Someone adds an import to a runtime module: the zip would fail on the Lambda (no YAML,
    # no CLI there), so the build refuses and names the module.
    changed = _snapshot_with(source_snapshot, tmp_path, module, line)
    with pytest.raises(build_lambda.BuildError, match=re.escape(message)):
        build_lambda.build(tmp_path / "x.zip", local=True, repo=changed)
    assert not (tmp_path / "x.zip").exists()


def test_a_zip_for_another_python_ships_sources_and_says_so(
    source_snapshot: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A .pyc is only valid for the Python that wrote it: building for another version (pip's
    # wheels for it; here this interpreter's packages stand in) gives sources only.
    other = next(v for v in build_lambda.PYTHON_VERSIONS if v != build_lambda.running_python())

    def fake_pip(target: Path, requirements: list[str], arch: str, version: str) -> None:
        assert version == other
        build_lambda.copy_installed(target, requirements)

    monkeypatch.setattr(build_lambda, "pip_install", fake_pip)
    monkeypatch.setattr(build_lambda, "REPO", source_snapshot)
    output = tmp_path / "other.zip"
    code = build_lambda.main(["--python-version", other, "--output", str(output)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"cannot compile bytecode for Python {other}" in captured.err
    assert f"run the build under python{other}" in captured.err
    assert "sources only" in captured.out
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
    assert "engine/handler.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_command_line_prints_size_and_sha256(tmp_path: Path) -> None:
    output = tmp_path / "cli.zip"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "infra" / "build_lambda.py"),
            "--local",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    import hashlib

    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    assert f"sha256  {digest}" in result.stdout
    assert f"{output.stat().st_size:,} bytes" in result.stdout


def test_command_line_refuses_unknown_architecture() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "infra" / "build_lambda.py"), "--arch", "sparc"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid choice: 'sparc'" in result.stderr


# pip install / pipx install from the repository ---------------------------------------------------
def _source_tree(target: Path) -> Path:
    """The files of a clone that a wheel is built from (engine/samples stays a link)."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("engine", "schemas", "sample_schedules"):
        shutil.copytree(REPO / name, target / name, symlinks=True, ignore=ignore)
    assert (target / "engine" / "samples").is_symlink()
    return target


@pytest.mark.slow
def test_pip_install_gives_a_teiji_that_works_outside_the_repository(tmp_path: Path) -> None:
    # What `pipx install <repo>` and `pip install <repo>` do: build a wheel, install it into a
    # fresh virtualenv. Offline: the dependencies are this interpreter's (a .pth line), the
    # package itself only what the wheel holds.
    import site

    wheels = tmp_path / "wheels"
    offline = ["--quiet", "--no-deps", "--no-index"]
    clone = _source_tree(tmp_path / "clone")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            *offline,
            "--no-build-isolation",
            "-w",
            wheels,
            clone,
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("teiji-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("dist-info/METADATA")))
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "engine/samples/stg.yaml" in names
    assert b"License-Expression: Apache-2.0" in metadata
    assert b'Requires-Dist: moto<5.3,>=5.1; extra == "demo"' in metadata

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (packages,) = venv.glob("lib/python*/site-packages")
    (packages / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            venv / "bin" / "python",
            "install",
            *offline,
            wheel,
        ],
        check=True,
        timeout=600,
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "COLUMNS": "1000",  # help on one line
        # The samples also name a service in us-east-1: a deployment that allows that region.
        "TEIJI_ALLOWED_REGIONS": "us-east-1",
    }

    def teiji(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["teiji", *args],
            cwd=elsewhere,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    helped = teiji("--help")
    assert helped.returncode == 0, helped.stderr
    assert "completion" in helped.stdout and "demo" in helped.stdout
    demo_help = teiji("demo", "--help")
    assert demo_help.returncode == 0, demo_help.stderr
    samples = packages / "engine" / "samples"
    assert f"the samples installed with teiji, {samples})" in demo_help.stdout
    validated = teiji("validate", str(samples / "stg.yaml"), str(samples / "company-calendar.yaml"))
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.startswith("2 documents OK")
    every = teiji("validate", str(samples))
    assert every.returncode == 0 and every.stdout.startswith("9 documents OK"), every.stderr
