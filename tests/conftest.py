"""One real stack per test session: a Temporal dev server, the Paystack sandbox and the API
as separate processes talking HTTP, a real SQLite file, and an in-process worker that a
test can stop and start again."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from config import Settings
from db.engine import make_engine
from db.migrate import migrate
from devstack.postgres import ThrowawayPostgres
from devstack.processes import (
    TEMPORAL_CLI,
    Service,
    free_port,
    python_module,
    wait_for_http,
)
from paystack.client import PaystackClient
from worker import ACTIVITY_THREADS, build_workers, make_paystack_client
from workflows.types import SEARCH_ATTRIBUTES

SECRET_KEY = "sk_test_payrecon_tests_5d1f0c8e2a"
API_KEY = "test-api-key-1"
# Short timers: the first poll 2 s after creation, then every 4 s; late window 4 s.
POLL_SCHEDULE = "2,4"
LATE_PAYMENT_WINDOW = "4"
CONTINUE_AS_NEW_AFTER_EVENTS = 100


@dataclass
class Stack:
    api_url: str
    sandbox_url: str
    settings: Settings
    engine: Engine
    temporal: Client
    worker: WorkerControl
    data_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment of this stack's processes."""
        return settings_env(self.settings, self.temporal.service_client.config.target_host)


class WorkerControl:
    """The worker, in this process, so a test can take it away and bring it back."""

    def __init__(self, client: Client, settings: Settings, engine: Engine) -> None:
        self._client = client
        self._settings = settings
        self._engine = engine
        self._executor = ThreadPoolExecutor(max_workers=ACTIVITY_THREADS)
        self._paystack: PaystackClient | None = None
        self._workers: list[Worker] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._paystack = make_paystack_client(self._settings)
        self._workers = build_workers(
            self._client, self._settings, self._engine, self._paystack, self._executor
        )
        self._tasks = [asyncio.create_task(worker.run()) for worker in self._workers]

    async def stop(self) -> None:
        await asyncio.gather(*(worker.shutdown() for worker in self._workers))
        await asyncio.gather(*self._tasks)
        if self._paystack is not None:
            await self._paystack.aclose()
        self._workers, self._tasks, self._paystack = [], [], None

    def close(self) -> None:
        self._executor.shutdown(wait=False)


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


def settings_env(settings: Settings, temporal_address: str) -> dict[str, str]:
    return {
        "PAYSTACK_SECRET_KEY": settings.paystack_secret_key.get_secret_value(),
        "PAYSTACK_BASE_URL": settings.paystack_base_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "DATABASE_URL": settings.database_url,
        "PAYRECON_API_KEYS": API_KEY,
        "PAYRECON_POLL_SCHEDULE": POLL_SCHEDULE,
        "PAYRECON_LATE_PAYMENT_WINDOW": LATE_PAYMENT_WINDOW,
        "PAYRECON_WORKER_METRICS_ADDRESS": "",
    }


@contextmanager
def another_api(stack: Stack, name: str, **env: str) -> Iterator[Stack]:
    """A second API process on the same database and Temporal, with other settings."""
    port = free_port()
    api = Service(
        name,
        python_module("api"),
        env={**stack.env, "PAYRECON_API_PORT": str(port), **env},
        log_path=stack.data_dir / f"{name}.log",
    ).start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=api.process)
        yield dataclasses.replace(stack, api_url=f"http://127.0.0.1:{port}")
    finally:
        api.stop()


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
