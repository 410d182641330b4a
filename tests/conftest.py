"""One real stack per test session: a Temporal dev server, the Paystack sandbox and the API
as separate processes talking HTTP, a real SQLite file, and an in-process worker that a
test can stop and start again. The names tests share are in tests/stack.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from config import Settings
from db.engine import make_engine
from db.migrate import migrate
from devstack.postgres import ThrowawayPostgres
from devstack.processes import TEMPORAL_CLI, Service, free_port, python_module, wait_for_http
from tests.stack import (
    API_KEY,
    CONTINUE_AS_NEW_AFTER_EVENTS,
    LATE_PAYMENT_WINDOW,
    POLL_SCHEDULE,
    SECRET_KEY,
    Stack,
    WorkerControl,
    settings_env,
)
from workflows.types import SEARCH_ATTRIBUTES


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind: a SQLite file, or a new Postgres database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    server: ThrowawayPostgres = request.getfixturevalue("postgres")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = server.url.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    yield server.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database of each kind."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("payrecon")


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI),
        search_attributes=list(SEARCH_ATTRIBUTES),
        # Suggest continue-as-new early, so the tests reach it (the default is 4 Ki events).
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={CONTINUE_AS_NEW_AFTER_EVENTS}",
        ],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def ports() -> dict[str, int]:
    return {"api": free_port(), "sandbox": free_port()}


@pytest.fixture(scope="session")
def settings(temporal_env: WorkflowEnvironment, data_dir: Path, ports: dict[str, int]) -> Settings:
    return Settings(
        paystack_secret_key=SecretStr(SECRET_KEY),
        paystack_base_url=f"http://127.0.0.1:{ports['sandbox']}",
        database_url=f"sqlite:///{data_dir / 'payrecon.db'}",
        payrecon_api_keys=[SecretStr(API_KEY)],
        payrecon_poll_schedule=[float(seconds) for seconds in POLL_SCHEDULE.split(",")],
        payrecon_late_payment_window=float(LATE_PAYMENT_WINDOW),
    )


@pytest.fixture(scope="session")
def processes(
    settings: Settings, temporal_env: WorkflowEnvironment, data_dir: Path, ports: dict[str, int]
) -> Iterator[None]:
    env = settings_env(settings, temporal_env.client.service_client.config.target_host)
    sandbox = Service(
        "sandbox",
        python_module("sandbox"),
        env={
            **env,
            "SANDBOX_PORT": str(ports["sandbox"]),
            "SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{ports['api']}/webhooks/paystack",
        },
        log_path=data_dir / "sandbox.log",
    ).start()
    api = Service(
        "api",
        python_module("api"),
        env={**env, "PAYRECON_API_PORT": str(ports["api"])},
        log_path=data_dir / "api.log",
    ).start()
    try:
        wait_for_http(
            f"http://127.0.0.1:{ports['sandbox']}/_sandbox/healthz", process=sandbox.process
        )
        wait_for_http(f"http://127.0.0.1:{ports['api']}/healthz", process=api.process)
        yield
    finally:
        api.stop()
        sandbox.stop()


@pytest.fixture(scope="session")
async def stack(
    processes: None,
    temporal_env: WorkflowEnvironment,
    settings: Settings,
    data_dir: Path,
    ports: dict[str, int],
) -> AsyncIterator[Stack]:
    engine = make_engine(settings.database_url)
    migrate(engine)
    worker = WorkerControl(temporal_env.client, settings, engine)
    await worker.start()
    yield Stack(
        api_url=f"http://127.0.0.1:{ports['api']}",
        sandbox_url=f"http://127.0.0.1:{ports['sandbox']}",
        settings=settings,
        engine=engine,
        temporal=temporal_env.client,
        worker=worker,
        data_dir=data_dir,
    )
    await worker.stop()
    worker.close()
    engine.dispose()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture
async def sandbox(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=30) as client:
        await client.post("/_sandbox/config", json={"webhooks_enabled": True})
        yield client
        await client.post("/_sandbox/config", json={"webhooks_enabled": True})
