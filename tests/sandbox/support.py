"""What the sandbox tests share: a server runner, a webhook receiver, and calls to the
sandbox as Paystack's clients and its test controls make them. The fixtures that start
them are in tests/sandbox/conftest.py."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from pydantic import SecretStr
from tenacity import (
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

from paystack.signature import SIGNATURE_HEADER, is_valid_signature
from sandbox.controls import FAULTS, STATS, WEBHOOKS, pay_path
from sandbox.fault_config import FaultConfig
from sandbox.settings import SandboxSettings

SECRET = "sk_test_sandbox_suite_1234567890"
WEBHOOK_PATH = "/webhooks/paystack"

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

# Key for key, the `data` of Paystack's documented verify sample.
VERIFY_KEYS = [
    "id", "domain", "status", "reference", "receipt_number", "amount", "message",
    "gateway_response", "paid_at", "created_at", "channel", "currency", "ip_address",
    "metadata", "log", "fees", "fees_split", "authorization", "customer", "plan", "split",
    "order_id", "paidAt", "createdAt", "requested_amount", "pos_transaction_data", "source",
    "fees_breakdown", "connect", "transaction_date", "plan_object", "subaccount",
]  # fmt: skip
WEBHOOK_REQUIRED_KEYS = {
    "id", "domain", "status", "reference", "amount", "message", "gateway_response", "paid_at",
    "created_at", "channel", "currency", "ip_address", "metadata", "log", "fees", "customer",
    "authorization", "plan", "requested_amount",
}  # fmt: skip


# Servers


@contextmanager
def serve(make_app: Callable[[int], FastAPI]) -> Iterator[str]:
    """Runs make_app(port) under uvicorn in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Bound before the app exists, so the app can know its own port.
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        make_app(port), log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def sandbox_settings(port: int, **overrides: Any) -> SandboxSettings:
    # Every field explicit: a developer's environment or .env must not leak in.
    values: dict[str, Any] = {
        "paystack_secret_key": SecretStr(SECRET),
        "sandbox_host": "127.0.0.1",
        "sandbox_port": port,
        "sandbox_public_url": None,
        "sandbox_webhook_url": "http://127.0.0.1:9/unused",
        "sandbox_webhooks_enabled": True,
        "sandbox_state_file": None,
        "sandbox_faults": FaultConfig(),
        **overrides,
    }
    return SandboxSettings(_env_file=None, **values)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    # time.monotonic() on arrival, to check delays and retry spacing.
    arrived_at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def reference(self) -> str:
        data = self.json()["data"]
        # A refund's event names its transaction's reference otherwise.
        reference: str = data.get("reference") or data["transaction_reference"]
        return reference

    @property
    def signed_correctly(self) -> bool:
        return is_valid_signature(self.body, self.headers.get(SIGNATURE_HEADER), SECRET)


class Receiver:
    """A webhook endpoint that records every request it gets.

    It answers 200 unless told otherwise: `answers` holds the status codes for the
    next requests, and with `reject_bad_signatures` a bad signature gets a 401.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: deque[int] = deque()
        self.reject_bad_signatures = False
        self._changed = threading.Condition()
        self.app = FastAPI()
        self.app.add_api_route(WEBHOOK_PATH, self._receive, methods=["POST"])

    async def _receive(self, request: Request) -> Response:
        received = Received(dict(request.headers), await request.body())
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
            if self.reject_bad_signatures and not received.signed_correctly:
                return Response(status_code=401)
            return Response(status_code=self.answers.popleft() if self.answers else 200)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"expected {count} webhooks, got {len(self.requests)}")
            return list(self.requests)

    def for_reference(self, reference: str) -> list[Received]:
        with self._changed:
            return [r for r in self.requests if r.reference == reference]

    def clear(self) -> None:
        with self._changed:
            self.requests.clear()
            self.answers.clear()
            self.reject_bad_signatures = False


def initialize(paystack: httpx.Client, amount: int | str = 50_000, **fields: Any) -> dict[str, Any]:
    response = paystack.post(
        "/transaction/initialize", json={"email": "ada@example.com", "amount": amount, **fields}
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def pay(http: httpx.Client, reference: str, **body: Any) -> httpx.Response:
    return http.post(pay_path(reference), json={"outcome": "success", **body})


def verify(paystack: httpx.Client, reference: str) -> dict[str, Any]:
    response = paystack.get(f"/transaction/verify/{reference}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def deliveries(http: httpx.Client, reference: str, count: int) -> list[dict[str, Any]]:
    """The sandbox's delivery log once `count` attempts are recorded."""
    fetch = Retrying(
        stop=stop_after_delay(5),
        wait=wait_fixed(0.02),
        retry=retry_if_result(lambda log: len(log) < count),
        # Short of `count` when the time is up: the log as it stands, for the test to judge.
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else [],
    )
    log: list[dict[str, Any]] = fetch(
        lambda: http.get(WEBHOOKS, params={"reference": reference}).json()
    )
    return log


# Faults

FAST_RETRY = {"enabled": True, "time_factor": 0.001}


def set_faults(http: httpx.Client, **changes: Any) -> dict[str, Any]:
    response = http.post(FAULTS, json=changes)
    assert response.status_code == 200, response.text
    config: dict[str, Any] = response.json()
    return config


def fault_stats(http: httpx.Client) -> dict[str, int]:
    counters: dict[str, int] = http.get(STATS).json()["faults"]
    return counters


def paid(paystack: httpx.Client, http: httpx.Client, reference: str) -> None:
    initialize(paystack, reference=reference)
    assert pay(http, reference).status_code == 200


def wait_until_idle(http: httpx.Client, timeout: float = 5.0) -> None:
    """Until no delivery is being sent, waiting, or due for a retry."""
    for attempt in Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(0.02),
        retry=retry_if_exception_type(AssertionError),
        reraise=True,
    ):
        with attempt:
            assert not http.get(STATS).json()["webhooks_in_flight"], "deliveries still in flight"
