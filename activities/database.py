"""Activities that write the database projection with the outbox, and delete expired
webhook deliveries. Synchronous: they run in the worker's thread pool."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from sqlalchemy import Engine
from temporalio import activity

from db.projection import apply_snapshot
from domain.events import RecordedChange
from inbox import store
from workflows.retention import ExpiredDeliveries

log = structlog.get_logger(__name__)

DELETE_BATCH = 1000


class DatabaseActivities:
    def __init__(self, engine: Engine, told: Callable[[], None] = lambda: None) -> None:
        self._engine = engine
        # Called once a record has put something in the outbox: this worker's delivery
        # loop sends it at once.
        self._told = told

    @activity.defn(name="record_invoice")
    def record_invoice(self, change: RecordedChange) -> bool:
        """Runs after the workflow task that decided the change has completed, so what it
        writes (and tells) is what the workflow's history holds."""
        snapshot = change.invoice
        written = apply_snapshot(self._engine, snapshot, change.events)
        if change.events:
            self._told()
        log.info(
            "invoice.recorded" if written else "invoice.record_skipped",
            invoice_id=snapshot.invoice_id,
            workflow_id=snapshot.workflow_id,
            status=snapshot.status.value,
            revision=snapshot.revision,
            events=[event.event_id for event in change.events],
        )
        return written

    @activity.defn(name="delete_expired_deliveries")
    def delete_expired_deliveries(self, expired: ExpiredDeliveries) -> int:
        """In batches, each its own short transaction, so webhooks keep being taken."""
        deleted = 0
        while batch := store.delete_relayed_before(
            self._engine, expired.received_before, batch=DELETE_BATCH
        ):
            deleted += batch
            activity.heartbeat(deleted)
        log.info("webhook.deliveries_deleted", deleted=deleted)
        return deleted
