"""Handing recorded Paystack events to their invoices' workflows.

The webhook route answers Paystack once a delivery is committed to the database, queued;
the `Relayer` in each API process then signals the workflow. Deliveries a process could
not finish (Temporal down, a crash) stay queued, and any API process's relayer takes them
up again. Signals are idempotent, since the workflow ignores a notice it already has, so
a delivery relayed twice changes nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import structlog
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.metrics import WEBHOOK_RELAYS
from db import queries
from domain.invoice import invoice_id_from_reference, is_invoice_reference
from paystack.events import CHARGE_SUCCESS, MalformedWebhook, WebhookEvent, parse_webhook
from workflows.invoice import InvoiceWorkflow
from workflows.types import PaymentNotice, workflow_id_for

log = structlog.get_logger(__name__)

SIGNAL_TIMEOUT = timedelta(seconds=10)
MAX_RETRY_DELAY = 60.0


class RelayOutcome(StrEnum):
    # Committed, to be signalled after the answer.
    QUEUED = queries.QUEUED
    SIGNALLED = queries.SIGNALLED
    WORKFLOW_CLOSED = "workflow_closed"
    UNKNOWN_REFERENCE = "unknown_reference"
    IGNORED = "ignored"
    # The same body for the same invoice is already queued or signalled: Paystack's retry.
    DUPLICATE = "duplicate"
    # Not handed over; a queued delivery is tried again.
    TEMPORAL_UNAVAILABLE = "temporal_unavailable"


def classify(engine: Engine, event: WebhookEvent) -> RelayOutcome:
    """What a delivery needs, decided from the database alone: nothing, or a signal."""
    if event.event != CHARGE_SUCCESS:
        return RelayOutcome.IGNORED
    reference = event.reference
    if reference is None or not is_invoice_reference(reference):
        return RelayOutcome.UNKNOWN_REFERENCE
    # The invoice row is written before its payment link is handed out, so a payment for
    # one of our invoices always finds it.
    if not queries.invoice_exists(engine, invoice_id_from_reference(reference)):
        return RelayOutcome.UNKNOWN_REFERENCE
    return RelayOutcome.QUEUED


def accept(
    engine: Engine, event: WebhookEvent, raw_body: bytes, lease_until: datetime
) -> tuple[RelayOutcome, int]:
    """Commits a delivery; one to be signalled is queued and leased to the caller."""
    outcome = classify(engine, event)
    if outcome is RelayOutcome.QUEUED and queries.has_relayed_copy(engine, event, raw_body):
        outcome = RelayOutcome.DUPLICATE
    relay_after = lease_until if outcome is RelayOutcome.QUEUED else None
    delivery_id = queries.record_delivery(
        engine, event, raw_body, outcome.value, relay_after=relay_after
    )
    return outcome, delivery_id


async def signal(temporal: Client, event: WebhookEvent) -> RelayOutcome:
    """Signals a known invoice's workflow with a charge.success."""
    assert event.reference is not None
    invoice_id = invoice_id_from_reference(event.reference)
    notice = PaymentNotice(
        reference=event.reference,
        transaction_id=event.transaction_id,
        amount=event.amount,
        currency=event.currency,
        paid_at=event.paid_at,
    )
    handle = temporal.get_workflow_handle(workflow_id_for(invoice_id))
    try:
        await handle.signal(InvoiceWorkflow.payment_notified, notice, rpc_timeout=SIGNAL_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return RelayOutcome.WORKFLOW_CLOSED
        log.warning("webhook.signal_failed", invoice_id=invoice_id, error=str(error))
        return RelayOutcome.TEMPORAL_UNAVAILABLE
    except Exception as error:  # the lazy client fails this way when Temporal is down
        log.warning("webhook.signal_failed", invoice_id=invoice_id, error=str(error))
        return RelayOutcome.TEMPORAL_UNAVAILABLE
    return RelayOutcome.SIGNALLED


async def relay(temporal: Client, engine: Engine, event: WebhookEvent) -> RelayOutcome:
    """Classify and signal at once: the operator CLI's re-delivery."""
    outcome = await run_in_threadpool(classify, engine, event)
    return await signal(temporal, event) if outcome is RelayOutcome.QUEUED else outcome


def retry_delay(attempts: int) -> float:
    return min(2.0**attempts, MAX_RETRY_DELAY)


class Relayer:
    """Signals queued deliveries: those this process just accepted, at once, and every
    `scan_interval` any whose time has come (retries, and ones left by another process)."""

    def __init__(
        self,
        temporal: Client,
        engine: Engine,
        *,
        lease: timedelta,
        scan_interval: float,
        concurrency: int = 32,
    ) -> None:
        self._temporal = temporal
        self._engine = engine
        self._lease = lease
        self._scan_interval = scan_interval
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: set[asyncio.Task[RelayOutcome | None]] = set()
        self._scanner: asyncio.Task[None] | None = None
        # Outcomes are written in batches: under load, one transaction for many deliveries.
        self._finished: list[tuple[int, str]] = []
        self._writer: asyncio.Task[None] | None = None

    def lease_until(self) -> datetime:
        return datetime.now(UTC) + self._lease

    def start(self) -> None:
        self._scanner = asyncio.create_task(self._scan_forever(), name="relayer-scan")

    def submit(
        self, delivery_id: int, event: WebhookEvent, attempts: int = 0
    ) -> asyncio.Task[RelayOutcome | None]:
        """Relay a delivery this process holds the lease of. The task ends with the
        signal's outcome, or None if it failed before one (the lease then runs out)."""
        task = asyncio.create_task(self._relay_one(delivery_id, event, attempts))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task

    async def stop(self, grace: float = 5.0) -> None:
        if self._scanner is not None:
            self._scanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scanner
        if self._in_flight:
            # What is not finished keeps its lease and is taken up again when it ends.
            await asyncio.wait(self._in_flight, timeout=grace)
        if self._writer is not None:
            await asyncio.wait([self._writer], timeout=grace)

    async def scan_once(self) -> int:
        claimed = await run_in_threadpool(
            queries.claim_queued_deliveries,
            self._engine,
            now=datetime.now(UTC),
            lease=self._lease,
            limit=200,
        )
        for delivery in claimed:
            assert delivery.id is not None
            try:
                event = parse_webhook(delivery.raw_body.encode())
            except MalformedWebhook as error:  # it parsed when accepted; never expected
                await run_in_threadpool(
                    queries.set_delivery_outcome, self._engine, delivery.id, "malformed", str(error)
                )
                continue
            self.submit(delivery.id, event, delivery.relay_attempts)
        return len(claimed)

    async def _scan_forever(self) -> None:
        while True:
            try:
                await self.scan_once()
            except Exception:
                log.exception("webhook.relay_scan_failed")
            await asyncio.sleep(self._scan_interval)

    async def _relay_one(
        self, delivery_id: int, event: WebhookEvent, attempts: int
    ) -> RelayOutcome | None:
        bound = log.bind(invoice_id=event.reference, delivery_id=delivery_id)
        try:
            async with self._slots:
                outcome = await signal(self._temporal, event)
            WEBHOOK_RELAYS.labels(outcome=outcome.value).inc()
            if outcome is RelayOutcome.TEMPORAL_UNAVAILABLE:
                delay = retry_delay(attempts)
                await run_in_threadpool(
                    queries.retry_delivery_later,
                    self._engine,
                    delivery_id,
                    datetime.now(UTC) + timedelta(seconds=delay),
                    "temporal unavailable",
                )
                bound.warning("webhook.relay_deferred", attempts=attempts + 1, retry_in=delay)
                return outcome
            bound.info("webhook.relayed", outcome=outcome.value)
            self._finish(delivery_id, outcome)
            return outcome
        except Exception:
            # The lease runs out and a scan takes the delivery up again.
            bound.exception("webhook.relay_failed")
            return None

    def _finish(self, delivery_id: int, outcome: RelayOutcome) -> None:
        self._finished.append((delivery_id, outcome.value))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_outcomes(), name="relayer-write")

    async def _write_outcomes(self) -> None:
        while self._finished:
            batch, self._finished = self._finished, []
            try:
                await run_in_threadpool(queries.finish_deliveries, self._engine, batch)
            except Exception:
                # Still queued in the database: their leases run out and they are relayed
                # again, which the workflows ignore.
                log.exception("webhook.relay_outcomes_not_written", deliveries=len(batch))
