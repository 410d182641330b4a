"""Building, signing and sending webhooks the way Paystack does.

Deliveries run as background tasks so the endpoint that triggered them answers
at once. Each delivery is one `Delivery`; `_run` is the place where fault
injection and Paystack's retry schedule will hook in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from paystack.signature import SIGNATURE_HEADER, sign
from sandbox.store import Store, Transaction, WebhookAttempt, now
from sandbox.views import webhook_view

CHARGE_SUCCESS = "charge.success"
# Paystack gives the receiver 30 seconds per try.
DELIVERY_TIMEOUT_SECONDS = 30.0
# At shutdown, in-flight deliveries get this long before they are cancelled.
SHUTDOWN_GRACE_SECONDS = 5.0

logger = logging.getLogger(__name__)


def charge_success(tx: Transaction) -> dict[str, Any]:
    return {"event": CHARGE_SUCCESS, "data": webhook_view(tx)}


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON: the signature covers these exact bytes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Delivery:
    event: str
    reference: str
    url: str
    body: bytes
    generation: int


class WebhookSender:
    def __init__(self, store: Store, secret_key: str) -> None:
        self._store = store
        self._secret_key = secret_key
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def open(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_SECONDS)

    async def aclose(self) -> None:
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def send(self, payload: dict[str, Any], *, url: str, copies: int = 1) -> list[Delivery]:
        """Schedules `copies` deliveries of the same bytes and returns without waiting."""
        body = encode(payload)
        data = payload.get("data") or {}
        reference = str(data.get("reference") or data.get("transaction_reference") or "")
        delivery = Delivery(
            event=str(payload["event"]),
            reference=reference,
            url=url,
            body=body,
            generation=self._store.generation,
        )
        deliveries = [delivery] * copies
        for item in deliveries:
            task = asyncio.create_task(self._run(item))
            # Keep a reference: the loop holds tasks weakly.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return deliveries

    async def _run(self, delivery: Delivery) -> None:
        attempt = await self.attempt(delivery)
        self._store.record_delivery(attempt, delivery.generation)
        if not attempt.delivered:
            logger.warning(
                "webhook %s for %s to %s failed: %s",
                delivery.event,
                delivery.reference,
                delivery.url,
                attempt.error or attempt.status_code,
            )

    async def attempt(self, delivery: Delivery) -> WebhookAttempt:
        """One POST of the delivery; never raises, the outcome is in the result."""
        if self._client is None:
            raise RuntimeError("WebhookSender.open() was not called (app lifespan not running)")
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(delivery.body, self._secret_key),
        }
        attempted_at = now()
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(delivery.url, content=delivery.body, headers=headers)
            status_code = response.status_code
        except Exception as exc:  # any failure is a failed delivery, never a crashed task
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return WebhookAttempt(
            event=delivery.event,
            reference=delivery.reference,
            url=delivery.url,
            attempted_at=attempted_at,
            latency_ms=(time.perf_counter() - started) * 1000,
            status_code=status_code,
            error=error,
        )
