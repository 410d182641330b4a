"""The Paystack sandbox and a webhook receiver served over real HTTP, for the sandbox tests:
uvicorn servers on free local ports. The fixtures are module-scoped: each test module gets
its own sandbox and receiver, and each test starts from POST /_sandbox/reset and an empty
receiver. `paystack` calls the sandbox as Paystack's API (with the secret key); `http`
calls it without a key (its test controls)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.app import create_app
from sandbox.controls import RESET
from tests.sandbox.support import SECRET, WEBHOOK_PATH, Receiver, sandbox_settings, serve


@pytest.fixture(scope="module", name="receiver")
def receiver_fixture() -> Iterator[tuple[Receiver, str]]:
    recorder = Receiver()
    with serve(lambda _port: recorder.app) as url:
        yield recorder, url + WEBHOOK_PATH


@pytest.fixture(scope="module", name="sandbox_url")
def sandbox_url_fixture(receiver: tuple[Receiver, str]) -> Iterator[str]:
    _, webhook_url = receiver
    # Refunds move only by the control here; a test of settling by itself makes its own.
    with serve(
        lambda port: create_app(
            sandbox_settings(port, sandbox_webhook_url=webhook_url, sandbox_refund_auto_seconds=0)
        )
    ) as url:
        yield url


@pytest.fixture(scope="module", name="http")
def http_fixture(sandbox_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_url, timeout=5) as client:
        yield client


@pytest.fixture(scope="module", name="paystack")
def paystack_fixture(sandbox_url: str) -> Iterator[httpx.Client]:
    """A client holding the secret key, like the payrecon Paystack client."""
    headers = {"Authorization": f"Bearer {SECRET}"}
    with httpx.Client(base_url=sandbox_url, headers=headers, timeout=5) as client:
        yield client


@pytest.fixture(name="hooks")
def hooks_fixture(receiver: tuple[Receiver, str], http: httpx.Client) -> Receiver:
    recorder, _ = receiver
    http.post(RESET).raise_for_status()
    recorder.clear()
    return recorder


@pytest.fixture(autouse=True, name="_clean")
def clean_fixture(hooks: Receiver) -> None:
    """Every test starts from an empty sandbox and receiver."""


@pytest.fixture
def impatient(sandbox_url: str) -> Iterator[httpx.Client]:
    """A client with the key that gives up after 0.2 s."""
    headers = {"Authorization": f"Bearer {SECRET}"}
    with httpx.Client(base_url=sandbox_url, headers=headers, timeout=0.2) as client:
        yield client
