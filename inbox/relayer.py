"""Handing queued deliveries to their owners' workflows.

The webhook route answers Paystack once a delivery is committed, queued; the `Relayer` in
each API process then signals the owner. Deliveries a process could not finish (Temporal
down, a crash) stay queued, and any process's relayer takes them up again. Signals are
idempotent (an owner ignores a notice it already has), so a delivery relayed twice
changes nothing twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial

import structlog
from anyio.to_thread import run_sync
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from db.leases import LeasedLoop
from db.projection import load_snapshot
from inbox import store
from inbox.intake import route_of
from inbox.metrics import WEBHOOK_RELAYS
from inbox.outcomes import Intake, Relay
from inbox.routes import ROUTES, Route
from paystack.events import MalformedWebhook, WebhookEvent, parse_webhook
from workflows.starter import signal_invoice

log = structlog.get_logger(__name__)

SIGNAL_TIMEOUT = timedelta(seconds=10)
MAX_RETRY_DELAY = 60.0


async def signal(
    temporal: Client, event: WebhookEvent, settings: Settings, engine: Engine
) -> Relay:
    """Signals a queued event's owner, by its route; a completed owner is woken for it
    when its route says so (a refund webhook long after the payment)."""
    route = ROUTES[event.event]
    workflow_id = route.workflow_id(event)
    assert workflow_id is not None, "queued events have an owner"
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        try:
            await handle.signal(route.signal, route.message(event), rpc_timeout=SIGNAL_TIMEOUT)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            if not route.wakes:
                return Relay.WORKFLOW_CLOSED
            return await _wake(temporal, settings, engine, route, event)
    except RPCError as error:
        log.warning("webhook.signal_failed", workflow_id=workflow_id, error=str(error))
        return Relay.TEMPORAL_UNAVAILABLE
    except Exception as error:  # the lazy client fails this way when Temporal is down
        log.warning("webhook.signal_failed", workflow_id=workflow_id, error=str(error))
        return Relay.TEMPORAL_UNAVAILABLE
    return Relay.SIGNALLED


async def _wake(
    temporal: Client, settings: Settings, engine: Engine, route: Route, event: WebhookEvent
) -> Relay:
    owner = route.owner(event)
    invoice = await run_sync(load_snapshot, engine, owner) if owner else None
    if invoice is None:
        return Relay.WORKFLOW_CLOSED
    await signal_invoice(temporal, settings, invoice, route.signal, route.message(event))
    return Relay.SIGNALLED


async def redeliver(
    temporal: Client, settings: Settings, engine: Engine, event: WebhookEvent
) -> Intake | Relay:
    """An operator's redelivery of a stored body: routed and signalled again at once."""
    routed = await run_sync(route_of, engine, event)
    if routed is not Intake.QUEUED:
        return routed
    return await signal(temporal, event, settings, engine)


def retry_delay(attempts: int) -> float:
    return min(2.0**attempts, MAX_RETRY_DELAY)


class Relayer(LeasedLoop):
    """Signals queued deliveries: those this process just accepted, at once, and every
    `scan_interval` any whose time has come (retries, and ones left by another process)."""

    def __init__(
        self,
        temporal: Client,
        engine: Engine,
        settings: Settings,
        *,
        lease: timedelta,
        scan_interval: float,
        concurrency: int = 32,
    ) -> None:
        super().__init__(scan_interval, "relayer-scan", "webhook.relay_scan_failed")
        self._temporal = temporal
        self._engine = engine
        self._settings = settings
        self._lease = lease
        self._slots = asyncio.Semaphore(concurrency)
        # Outcomes are written in batches: under load, one transaction for many deliveries.
        self._finished: list[tuple[int, str]] = []
        self._writer: asyncio.Task[None] | None = None

    def lease_until(self) -> datetime:
        return datetime.now(UTC) + self._lease

    def submit(
        self, delivery_id: int, event: WebhookEvent, attempts: int = 0
    ) -> asyncio.Task[Relay | None]:
        """Relay a delivery this process holds the lease of. The task ends with the
        signal's outcome, or None if it failed before one (the lease then runs out)."""
        return self.spawn(self._relay_one(delivery_id, event, attempts))

    async def stop(self, grace: float = 5.0) -> None:
        await super().stop(grace)
        if self._writer is not None:
            await asyncio.wait([self._writer], timeout=grace)

    async def scan_once(self) -> int:
        claim = partial(
            store.claim_queued_deliveries,
            self._engine,
            now=datetime.now(UTC),
            lease=self._lease,
            limit=200,
        )
        claimed = await run_sync(claim)
        for delivery in claimed:
            assert delivery.id is not None
            try:
                event = parse_webhook(delivery.redacted_body.encode())
            except MalformedWebhook as error:  # it parsed when accepted; never expected
                await run_sync(
                    store.finish_deliveries,
                    self._engine,
                    [(delivery.id, Relay.UNREADABLE.value)],
                    str(error),
                )
                continue
            self.submit(delivery.id, event, delivery.relay_attempts)
        return len(claimed)

    async def _relay_one(
        self, delivery_id: int, event: WebhookEvent, attempts: int
    ) -> Relay | None:
        bound = log.bind(invoice_id=event.reference, delivery_id=delivery_id)
        try:
            async with self._slots:
                outcome = await signal(self._temporal, event, self._settings, self._engine)
            WEBHOOK_RELAYS.labels(outcome=outcome.value).inc()
            if outcome is Relay.TEMPORAL_UNAVAILABLE:
                delay = retry_delay(attempts)
                await run_sync(
                    store.retry_delivery_later,
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

    def _finish(self, delivery_id: int, outcome: Relay) -> None:
        self._finished.append((delivery_id, outcome.value))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_outcomes(), name="relayer-write")

    async def _write_outcomes(self) -> None:
        while self._finished:
            batch, self._finished = self._finished, []
            try:
                await run_sync(store.finish_deliveries, self._engine, batch)
            except Exception:
                # Still queued in the database: their leases run out and they are relayed
                # again, which the workflows ignore.
                log.exception("webhook.relay_outcomes_not_written", deliveries=len(batch))
