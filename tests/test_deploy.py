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
from typer.testing import CliRunner

from cli.main import app as cli_app
from config import Settings
from sandbox.settings import SandboxSettings
from temporal_config import SDK_ENVIRONMENT_NAMES

ROOT = Path(__file__).parent.parent
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


def test_dockerfile_installs_the_package_with_every_part_of_it() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "RUN pip install .\n" in dockerfile
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    top_level = {name.split(".")[0] for name in setuptools["packages"]}
    for package in top_level:
        assert f"COPY {package} ./{package}" in dockerfile, package
    for module in setuptools["py-modules"]:
        assert f"{module}.py" in dockerfile, module
    assert project["project"]["scripts"]["payrecon"] == "cli.main:main"
