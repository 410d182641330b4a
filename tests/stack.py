"""The test session's stack: its settings and keys, and the handles tests use to reach its
parts. The fixtures that start it are in tests/conftest.py."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from temporalio.client import Client

from config import Settings
from devstack.processes import Service, free_port, python_module, wait_for_http
from worker import ACTIVITY_THREADS, running_worker

SECRET_KEY = "sk_test_payrecon_tests_5d1f0c8e2a"
API_KEY = "test-api-key-1"
# Two more callers: another backend service, and an operator who sees every invoice.
OTHER_CALLER_KEY = "test-api-key-other"
OPERATOR_KEY = "test-api-key-operator"
API_KEYS = f"{API_KEY},shop:{OTHER_CALLER_KEY},ops:{OPERATOR_KEY}:operator"
# Short timers: the first poll 2 s after creation, then every 4 s; late window 4 s.
POLL_SCHEDULE = "2,4"
# A refund with no webhook is found within a test's patience.
REFUND_POLL_SCHEDULE = "1,2,3"
LATE_PAYMENT_WINDOW = "4"
CONTINUE_AS_NEW_AFTER_EVENTS = 100
# A merchant's failures retried within a test's patience; an endpoint left failing after
# its test is given up within a minute. The API starts invoices with these, so both have them.
EVENT_SETTINGS = {
    "PAYRECON_EVENT_RETRY_SCHEDULE": "0.5,1,2",
    "PAYRECON_EVENT_RETRY_FOR_SECONDS": "60",
    "PAYRECON_EVENT_TIMEOUT_SECONDS": "5",
}


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
        self._running: contextlib.AsyncExitStack | None = None

    async def start(self) -> None:
        running = contextlib.AsyncExitStack()
        await running.enter_async_context(
            running_worker(self._client, self._settings, self._engine, self._executor)
        )
        self._running = running

    async def stop(self) -> None:
        if self._running is not None:
            await self._running.aclose()
        self._running = None

    def close(self) -> None:
        self._executor.shutdown(wait=False)


def settings_env(settings: Settings, temporal_address: str) -> dict[str, str]:
    return {
        "PAYSTACK_SECRET_KEY": settings.paystack_secret_key.get_secret_value(),
        "PAYSTACK_BASE_URL": settings.paystack_base_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "DATABASE_URL": settings.database_url,
        "PAYRECON_API_KEYS": API_KEYS,
        "PAYRECON_POLL_SCHEDULE": POLL_SCHEDULE,
        "PAYRECON_LATE_PAYMENT_WINDOW": LATE_PAYMENT_WINDOW,
        "PAYRECON_WORKER_METRICS_ADDRESS": "",
        "PAYRECON_DEVELOPMENT_MODE": "true",
        # Every scrape reads anew: tests compare figures right after what changes them.
        "PAYRECON_METRICS_REFRESH_SECONDS": "0",
        # The session's tests (and the fuzzer) call as fast as they can; the limit itself is
        # tested on an API process of its own (tests/e2e/test_limits.py).
        "PAYRECON_CALLER_RATE_LIMIT": "0",
        # A worker started from these sends the customers' emails to the session's mailbox.
        **({"SMTP_URL": settings.smtp_url.get_secret_value()} if settings.smtp_url else {}),
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
