"""Building, signing and sending webhooks the way Paystack does, faults included.

Deliveries run as background tasks so the endpoint that triggered them answers
at once. Each scheduled delivery gets a WebhookPlan, drawn when it is scheduled
(see sandbox.faults): dropped, extra copies, delayed, held back until the next
delivery has gone out, first try signed with the wrong key, and retried on
Paystack's schedule while the answer is not a 200.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from paystack.signature import SIGNATURE_HEADER, sign
from sandbox.faults import Faults, WebhookPlan
from sandbox.store import Store, Transaction, WebhookAttempt, now
from sandbox.views import webhook_view

CHARGE_SUCCESS = "charge.success"
# Paystack gives the receiver 30 seconds per try.
DELIVERY_TIMEOUT_SECONDS = 30.0
# At shutdown, a POST under way gets this long before it is cancelled.
SHUTDOWN_GRACE_SECONDS = 5.0
DROPPED_ERROR = "dropped by fault injection, never sent"
# A bad signature is a real HMAC-SHA512, made with some other key: it looks right, fails checks.
WRONG_KEY_PREFIX = "not-the-key:"

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


@dataclass
class Send:
    """One copy of a delivery on its way: a first attempt, then perhaps retries."""

    delivery_id: int
    duplicate: bool = False
    reordered: bool = False
    bad_signature: bool = False
    delay_ms: float = 0.0
    # Event loop time of the first attempt: retries are due relative to it.
    first_at: float = 0.0


class _ShuttingDown(Exception):
    """Ends a delivery that is waiting (delay, hold, retry) when the app stops."""


class WebhookSender:
    def __init__(self, store: Store, secret_key: str, faults: Faults) -> None:
        self._store = store
        self._secret_key = secret_key
        self._faults = faults
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Gates of reordered deliveries waiting for the next delivery to go out.
        self._held: list[asyncio.Event] = []
        self._closing = asyncio.Event()
        self._ids = itertools.count(1)

    def open(self, client: httpx.AsyncClient | None = None) -> None:
        self._closing = asyncio.Event()
        self._client = client or httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_SECONDS)

    async def aclose(self) -> None:
        # Waiting deliveries end at once; only a POST under way gets the grace period.
        self._closing.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def cancel_all(self) -> None:
        """Stops every delivery, waiting or under way, and forgets held ones."""
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._held.clear()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def send(self, payload: dict[str, Any], *, url: str, copies: int = 1) -> list[Delivery]:
        """Schedules `copies` deliveries of the same bytes and returns without waiting."""
        data = payload.get("data") or {}
        delivery = Delivery(
            event=str(payload["event"]),
            reference=str(data.get("reference") or data.get("transaction_reference") or ""),
            url=url,
            body=encode(payload),
            generation=self._store.generation,
        )
        for _ in range(copies):
            self._schedule(delivery, self._faults.plan_webhook())
        return [delivery] * copies

    def _schedule(self, delivery: Delivery, plan: WebhookPlan) -> None:
        # Decided now, in scheduling order, so "the next one" does not depend on timing.
        gate: asyncio.Event | None = None
        released: list[asyncio.Event] = []
        if plan.reorder:
            gate = asyncio.Event()
            self._held.append(gate)
        elif not plan.drop:
            released, self._held = self._held, []
        self._spawn(self._deliver(delivery, plan, gate, released))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guarded(work))
        # Keep a reference: the loop holds tasks weakly.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except _ShuttingDown:
            return
        except Exception:
            # A background task has nobody to raise to: log rather than lose it.
            logger.exception("webhook delivery failed unexpectedly")

    async def _deliver(
        self,
        delivery: Delivery,
        plan: WebhookPlan,
        gate: asyncio.Event | None,
        released: list[asyncio.Event],
    ) -> None:
        if plan.drop:
            self._record_dropped(delivery)
            return
        try:
            if gate is not None:
                await self._wait(plan.hold_s, until=gate)
            if plan.delay_s > 0:
                await self._wait(plan.delay_s)
            sends = [
                Send(
                    next(self._ids),
                    duplicate=copy > 0,
                    reordered=plan.reorder,
                    bad_signature=plan.bad_signature and copy == 0,
                    delay_ms=plan.delay_s * 1000,
                )
                for copy in range(1 + plan.extra_copies)
            ]
            # One after the other, so the receiver sees the original first.
            failed = [
                send for send in sends if not (await self._attempt(delivery, send, 1)).delivered
            ]
        finally:
            # Deliveries held back for this one go out now that it has (or was cancelled).
            for held in released:
                held.set()
        if plan.retry_offsets:
            for send in failed:
                self._spawn(self._retry(delivery, send, plan.retry_offsets))

    async def _retry(self, delivery: Delivery, send: Send, offsets: tuple[float, ...]) -> None:
        loop = asyncio.get_running_loop()
        for number, offset in enumerate(offsets, start=2):
            await self._wait(send.first_at + offset - loop.time())
            # Retries turned off meanwhile (or all faults cleared): stop this chain too.
            if not self._faults.config.webhooks.retry.enabled:
                return
            self._faults.count("retried")
            if (await self._attempt(delivery, send, number)).delivered:
                return
        self._faults.count("retry_exhausted")
        logger.warning(
            "webhook %s for %s to %s: retries exhausted",
            delivery.event,
            delivery.reference,
            delivery.url,
        )

    async def _wait(self, seconds: float, until: asyncio.Event | None = None) -> None:
        """Sleeps `seconds`, less if `until` is set first; raises _ShuttingDown at shutdown."""
        waiters = [asyncio.ensure_future(self._closing.wait())]
        if until is not None:
            waiters.append(asyncio.ensure_future(until.wait()))
        try:
            await asyncio.wait(
                waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self._closing.is_set():
            raise _ShuttingDown

    async def _attempt(self, delivery: Delivery, send: Send, number: int) -> WebhookAttempt:
        """One POST; never raises for a failed delivery, the outcome is in the result."""
        if self._client is None:
            raise RuntimeError("WebhookSender.open() was not called (app lifespan not running)")
        first = number == 1
        # Only the first try is corrupted: Paystack's retries sign correctly again.
        bad_signature = send.bad_signature and first
        key = WRONG_KEY_PREFIX + self._secret_key if bad_signature else self._secret_key
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(delivery.body, key)}
        if first:
            send.first_at = asyncio.get_running_loop().time()
        attempted_at = now()
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(delivery.url, content=delivery.body, headers=headers)
            status_code = response.status_code
        except Exception as exc:  # any failure is a failed delivery, never a crashed task
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        attempt = WebhookAttempt(
            event=delivery.event,
            reference=delivery.reference,
            url=delivery.url,
            attempted_at=attempted_at,
            latency_ms=(time.perf_counter() - started) * 1000,
            status_code=status_code,
            error=error,
            delivery_id=send.delivery_id,
            attempt=number,
            retry=not first,
            duplicate=send.duplicate,
            reordered=send.reordered and first,
            bad_signature=bad_signature,
            delay_ms=send.delay_ms if first else 0.0,
        )
        self._store.record_delivery(attempt, delivery.generation)
        if not attempt.delivered:
            logger.warning(
                "webhook %s for %s to %s, attempt %d failed: %s",
                delivery.event,
                delivery.reference,
                delivery.url,
                number,
                error or status_code,
            )
        return attempt

    def _record_dropped(self, delivery: Delivery) -> None:
        dropped = WebhookAttempt(
            event=delivery.event,
            reference=delivery.reference,
            url=delivery.url,
            attempted_at=now(),
            latency_ms=0.0,
            error=DROPPED_ERROR,
            delivery_id=next(self._ids),
            attempt=0,
            dropped=True,
        )
        self._store.record_delivery(dropped, delivery.generation)
