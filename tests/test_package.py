"""The Lambda zip: what goes in, that it is reproducible, and that the handler runs from it.

The end-to-end test unpacks a ``--local`` build and imports ``engine.handler`` in a clean
interpreter (``-I -S``) whose path holds only the unpacked zip and the SDK the Lambda runtime
provides, then runs a dry-run tick against the moto server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import boto3
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
        ("engine/cli/main.py", True),
    ],
)
def test_what_goes_into_the_zip(path: str, packaged: bool) -> None:
    assert build_lambda.is_packaged(PurePosixPath(path)) is packaged


def test_requirements_leave_out_what_the_runtime_provides(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["boto3>=1.34", "Botocore", "pydantic>=2.6,<3",'
        ' "PyYAML>=6.0", "holidays"]\n',
        encoding="utf-8",
    )
    assert build_lambda.runtime_requirements(pyproject) == [
        "pydantic>=2.6,<3",
        "PyYAML>=6.0",
        "holidays",
    ]
    real = build_lambda.runtime_requirements(REPO / "pyproject.toml")
    assert real and not any(req.lower().startswith(("boto3", "botocore")) for req in real)


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


def test_zip_holds_the_packages_and_nothing_else(names: list[str]) -> None:
    tops = {PurePosixPath(name).parts[0] for name in names}
    for required in ("engine", "schemas", "pydantic", "pydantic_core", "croniter", "pytz"):
        assert required in tops, f"{required} is missing"
    assert {"holidays", "yaml", "dateutil"} <= tops
    assert "engine/handler.py" in names
    assert not [n for n in names if "demo" in n or n.startswith("engine/samples/")]
    for forbidden in ("boto3", "botocore", "s3transfer", "tests", "bin", "pytest", "moto"):
        assert forbidden not in tops, f"{forbidden} must not be in the zip"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.endswith(".dist-info/RECORD")]
    assert not [n for n in names if PurePosixPath(n).parts[0].endswith(".egg-info")]


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


# The handler, from the zip, in a clean interpreter ------------------------------------------------
def _runtime_sdk(directory: Path) -> Path:
    """A directory that holds what the Lambda runtime puts beside the function: boto3 & co."""
    directory.mkdir()
    for name in RUNTIME_SDK:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (directory / source.name).symlink_to(source)
    return directory


def _prepare_aws(endpoint: str) -> None:
    from engine.aws.clients import Clients
    from engine.config import Settings
    from engine.store import init_tables, item_from_document, to_attribute_map
    from schemas.documents import Schedule

    region = "ap-northeast-1"
    init_tables(
        Clients(region=region, endpoint_url=endpoint),
        Settings(config_table="teiji-config", state_table="teiji-state"),
    )
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region)
    schedule = Schedule(service="example-cluster/web", mode="always_off")
    dynamodb.put_item(TableName="teiji-config", Item=to_attribute_map(item_from_document(schedule)))

    ecs = boto3.client("ecs", endpoint_url=endpoint, region_name=region)
    ecs.create_cluster(clusterName="example-cluster")
    ecs.register_task_definition(
        family="web",
        containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128, "cpu": 64}],
    )
    ecs.create_service(
        cluster="example-cluster", serviceName="web", taskDefinition="web", desiredCount=2
    )


def test_handler_runs_from_the_unpacked_zip(built: Any, endpoint: str, tmp_path: Path) -> None:
    unpacked = tmp_path / "task"
    with zipfile.ZipFile(built.path) as archive:
        archive.extractall(unpacked)
    runtime = _runtime_sdk(tmp_path / "runtime")
    _prepare_aws(endpoint)

    script = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(unpacked)!r}, {str(runtime)!r}]\n"
        "import engine.handler\n"
        "report = engine.handler.lambda_handler({'dry_run': True}, None)\n"
        "outside = sorted({m.__name__.split('.')[0] for m in list(sys.modules.values())\n"
        "    if 'site-packages' in (getattr(m, '__file__', None) or '')})\n"
        "print(json.dumps({'report': report, 'outside': outside}))\n"
    )
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "ap-northeast-1",
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "TEIJI_CONFIG_TABLE": "teiji-config",
        "TEIJI_STATE_TABLE": "teiji-state",
        "TEIJI_LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["outside"] == [], "modules were imported from outside the zip and the SDK"

    report = output["report"]
    assert report["dry_run"] is True
    assert report["failed"] is False
    [service] = report["services"]
    assert service["service"] == "example-cluster/web"
    assert service["decision"] == "stopped"

    ecs = boto3.client("ecs", endpoint_url=endpoint, region_name="ap-northeast-1")
    [described] = ecs.describe_services(cluster="example-cluster", services=["web"])["services"]
    assert described["desiredCount"] == 2, "a dry run changes nothing"


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
    assert every.returncode == 0 and every.stdout.startswith("6 documents OK"), every.stderr
