"""One real stack per test session: a Temporal dev server, the Paystack sandbox and the API
as separate processes talking HTTP, a real SQLite file, and an in-process worker that a
test can stop and start again. The names tests share are in tests/stack.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from temporalio.client import Client

from config import ApiKey, Settings
from db.engine import make_engine
from db.migrate import migrate
from devstack.postgres import ThrowawayPostgres
from devstack.stack import Stack as Processes
from sandbox.controls import SandboxControls
from temporal_codec import payrecon_data_converter
from tests.helpers import api_client
from tests.mailbox import Mailbox
from tests.stack import (
    API_KEY,
    API_KEYS,
    CONTINUE_AS_NEW_AFTER_EVENTS,
    EVENT_SETTINGS,
    LATE_PAYMENT_WINDOW,
    OPERATOR_KEY,
    OTHER_CALLER_KEY,
    POLL_SCHEDULE,
    REFUND_POLL_SCHEDULE,
    SECRET_KEY,
    Stack,
    WorkerControl,
)

# The suite runs payrecon with short test keys: development mode, for it and its processes.
os.environ["PAYRECON_DEVELOPMENT_MODE"] = "true"


FIRST_AND_LAST = {"workflows": 0, "e2e": 2}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The time-skipping tests first, the end-to-end ones last. Once started, the session
    stack's worker runs in the test process's event loop until the session ends, its
    invoices polling Paystack: it would slow the others, and the test server's skips past
    their RPC deadline."""
    items.sort(key=lambda item: FIRST_AND_LAST.get(item.path.parent.name, 1))


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


def start_processes(data_dir: Path, *, worker_process: bool = False) -> Processes:
    """The stack as `make run` starts it (devstack/stack.py), but for the worker, which runs
    in the test process so tests can stop and start it (or, with `worker_process`, as its
    own process, for a test to SIGKILL)."""
    processes = Processes(
        data_dir,
        secret_key=SECRET_KEY,
        api_key=API_KEY,
        settings={
            "PAYRECON_API_KEYS": API_KEYS,
            "PAYRECON_POLL_SCHEDULE": POLL_SCHEDULE,
            "PAYRECON_REFUND_POLL_SCHEDULE": REFUND_POLL_SCHEDULE,
            "PAYRECON_LATE_PAYMENT_WINDOW": LATE_PAYMENT_WINDOW,
            "PAYRECON_METRICS_REFRESH_SECONDS": "0",
            # As in tests/stack.py: the limit is tested on an API process of its own.
            "PAYRECON_CALLER_RATE_LIMIT": "0",
            **EVENT_SETTINGS,
        },
        # Suggest continue-as-new early, so the tests reach it (the default is 4 Ki events).
        temporal_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={CONTINUE_AS_NEW_AFTER_EVENTS}",
        ],
        # Kept on disk at every change, as Paystack keeps its books through an outage.
        # Refunds move only when a test settles them.
        sandbox_settings={
            "SANDBOX_STATE_FILE": str(data_dir / "sandbox-state.json"),
            "SANDBOX_REFUND_AUTO_SECONDS": "0",
        },
        # The worker's emails go to the session's `mailbox`, not to a mail catcher.
        without=frozenset({"mailcatcher"} if worker_process else {"worker", "mailcatcher"}),
    )
    try:
        processes.start_all()
    except BaseException:
        processes.stop_all()
        raise
    return processes


def stack_settings(processes: Processes, mailbox: Mailbox) -> Settings:
    """The in-process worker's settings: the same as the stack's processes have."""
    # The event settings as the processes read them, from the environment's text.
    events = Settings.model_validate(
        {name.lower(): value for name, value in EVENT_SETTINGS.items()}
    )
    return Settings(
        paystack_secret_key=SecretStr(SECRET_KEY),
        paystack_base_url=processes.sandbox_url,
        database_url=processes.database_url,
        payrecon_api_keys=[ApiKey.parse(entry) for entry in API_KEYS.split(",")],
        payrecon_poll_schedule=[float(seconds) for seconds in POLL_SCHEDULE.split(",")],
        payrecon_refund_poll_schedule=[float(s) for s in REFUND_POLL_SCHEDULE.split(",")],
        payrecon_late_payment_window=float(LATE_PAYMENT_WINDOW),
        smtp_url=SecretStr(mailbox.smtp_url),
        paystack_callback_url=f"{processes.api_url}/checkout/return",
        payrecon_event_retry_schedule=events.payrecon_event_retry_schedule,
        payrecon_event_retry_for_seconds=events.payrecon_event_retry_for_seconds,
        payrecon_event_timeout_seconds=events.payrecon_event_timeout_seconds,
    )


@asynccontextmanager
async def running_stack(
    processes: Processes, settings: Settings, data_dir: Path, *, start_worker: bool = True
) -> AsyncIterator[Stack]:
    """The processes, a Temporal client encrypting as they do, and the in-process worker
    (started unless the processes run one)."""
    temporal = await Client.connect(
        processes.temporal_address, data_converter=payrecon_data_converter(settings)
    )
    engine = make_engine(settings.database_url)
    migrate(engine)
    worker = WorkerControl(temporal, settings, engine)
    if start_worker:
        await worker.start()
    try:
        yield Stack(
            api_url=processes.api_url,
            sandbox_url=processes.sandbox_url,
            settings=settings,
            engine=engine,
            temporal=temporal,
            worker=worker,
            data_dir=data_dir,
        )
    finally:
        if start_worker:
            await worker.stop()
        worker.close()
        engine.dispose()


@pytest.fixture(scope="session")
def processes(data_dir: Path) -> Iterator[Processes]:
    processes = start_processes(data_dir)
    yield processes
    processes.stop_all()


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and what it received; the stack's worker
    sends the customers' emails to it."""
    mailbox = Mailbox().start()
    yield mailbox
    mailbox.stop()


@pytest.fixture(scope="session")
def settings(processes: Processes, mailbox: Mailbox) -> Settings:
    return stack_settings(processes, mailbox)


@pytest.fixture(scope="session")
async def stack(processes: Processes, settings: Settings, data_dir: Path) -> AsyncIterator[Stack]:
    async with running_stack(processes, settings, data_dir) as stack:
        yield stack


@pytest.fixture(scope="session")
async def temporal(stack: Stack) -> Client:
    return stack.temporal


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(stack.api_url, API_KEY) as client:
        yield client


@pytest.fixture
async def shop(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """Another caller: the `shop` backend service."""
    async with api_client(stack.api_url, OTHER_CALLER_KEY) as client:
        yield client


@pytest.fixture
async def operator(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An operator, who sees every caller's invoices and endpoints."""
    async with api_client(stack.api_url, OPERATOR_KEY) as client:
        yield client


@pytest.fixture
async def sandbox(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=30) as client:
        await SandboxControls(client).set_webhooks(True)
        yield client
        await SandboxControls(client).set_webhooks(True)
