"""Activities that write the database projection, read it back for a run that resumes an
invoice, and delete expired webhook deliveries. Synchronous: they run in the worker's
thread pool."""

from __future__ import annotations

import structlog
from sqlalchemy import Engine
from temporalio import activity

from db.projection import apply_snapshot, load_snapshot
from domain.invoice import InvoiceSnapshot
from inbox import store
from workflows.retention import ExpiredDeliveries

log = structlog.get_logger(__name__)

DELETE_BATCH = 1000


class DatabaseActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name="record_invoice")
    def record_invoice(self, snapshot: InvoiceSnapshot) -> bool:
        written = apply_snapshot(self._engine, snapshot)
        log.info(
            "invoice.recorded" if written else "invoice.record_skipped",
            invoice_id=snapshot.invoice_id,
            workflow_id=snapshot.workflow_id,
            status=snapshot.status.value,
            revision=snapshot.revision,
        )
        return written

    @activity.defn(name="load_invoice")
    def load_invoice(self, invoice_id: str) -> InvoiceSnapshot | None:
        """The invoice as its workflow last recorded it: where a new run resumes."""
        return load_snapshot(self._engine, invoice_id)

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
