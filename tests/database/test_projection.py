"""The database projection, on SQLite and on Postgres: idempotent, never backwards, one
history row per status change, and safe when retried writes overlap."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from api.schemas import InvoiceOut
from db.models import Invoice, InvoiceStatusChange, OutboundEvent
from db.projection import (
    PARTS,
    ROW_NAMES,
    SNAPSHOT_FIELDS,
    apply_snapshot,
    load_snapshot,
)
from domain.disputes import Dispute, DisputeResolution, DisputeStatus
from domain.events import InvoiceEvent
from domain.invoice import InvoiceSnapshot, InvoiceStatus, ReviewReason
from domain.refunds import Refund, RefundStatus

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def snapshot(revision: int, status: InvoiceStatus, **changes: Any) -> InvoiceSnapshot:
    base = InvoiceSnapshot(
        invoice_id="inv-projection",
        workflow_id="invoice-inv-projection",
        status=status,
        customer_email="ada@example.com",
        amount=250000,
        currency="NGN",
        due_at=NOW + timedelta(days=1),
        created_at=NOW,
        updated_at=NOW + timedelta(seconds=revision),
        revision=revision,
        fingerprint="f",
    )
    return dataclasses.replace(base, **changes)


def stored(engine: Engine) -> tuple[Invoice, list[str]]:
    with Session(engine) as session:
        row = session.get(Invoice, "inv-projection")
        history = session.exec(select(InvoiceStatusChange.status).order_by("revision")).all()
        assert row is not None
        return row, list(history)


def test_applies_in_order_and_records_each_status_once(engine: Engine) -> None:
    assert apply_snapshot(engine, snapshot(1, InvoiceStatus.PENDING))
    assert apply_snapshot(engine, snapshot(2, InvoiceStatus.EXPIRED))
    late = snapshot(3, InvoiceStatus.NEEDS_REVIEW, review_reason=ReviewReason.PAID_AFTER_EXPIRY)
    assert apply_snapshot(engine, late)

    row, history = stored(engine)
    assert row.status == "needs_review" and row.review_reason == "paid_after_expiry"
    assert row.due_at == NOW + timedelta(days=1) and row.due_at.tzinfo is not None
    assert history == ["pending", "expired", "needs_review"]


def test_repeats_and_older_revisions_change_nothing(engine: Engine) -> None:
    apply_snapshot(engine, snapshot(1, InvoiceStatus.PENDING))
    apply_snapshot(engine, snapshot(2, InvoiceStatus.PAID, amount_paid=250000))

    assert not apply_snapshot(engine, snapshot(2, InvoiceStatus.PAID, amount_paid=250000))
    assert not apply_snapshot(engine, snapshot(1, InvoiceStatus.PENDING))

    row, history = stored(engine)
    assert (row.status, row.revision, row.amount_paid) == ("paid", 2, 250000)
    assert history == ["pending", "paid"]


def test_overlapping_retries_never_move_backwards(engine: Engine) -> None:
    apply_snapshot(engine, snapshot(1, InvoiceStatus.PENDING))
    writes = [snapshot(2, InvoiceStatus.EXPIRED), snapshot(3, InvoiceStatus.NEEDS_REVIEW)] * 10
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda s: apply_snapshot(engine, s), writes))

    row, history = stored(engine)
    assert (row.status, row.revision) == ("needs_review", 3)
    assert history[0] == "pending" and history[-1] == "needs_review"
    assert len(history) == len(set(history))


def test_a_new_invoice_written_by_several_at_once_is_written_once(engine: Engine) -> None:
    # On create the API and the record activity write the same first revision at once.
    first = snapshot(1, InvoiceStatus.PENDING, invoice_id=f"inv-{uuid.uuid4().hex[:16]}")
    event = InvoiceEvent.of(first)
    together = threading.Barrier(4)

    def write(_: int) -> bool:
        together.wait()
        return apply_snapshot(engine, first, [event])

    with ThreadPoolExecutor(max_workers=4) as pool:
        written = list(pool.map(write, range(4)))

    assert sorted(written) == [False, False, False, True]
    with Session(engine) as session:
        changes = session.exec(
            select(InvoiceStatusChange).where(InvoiceStatusChange.invoice_id == first.invoice_id)
        ).all()
        events = session.exec(
            select(OutboundEvent).where(OutboundEvent.invoice_id == first.invoice_id)
        ).all()
    assert [c.status for c in changes] == ["pending"]
    assert [e.id for e in events] == [event.event_id]


def a_full_snapshot() -> InvoiceSnapshot:
    """Every field set to a value other than its default."""
    return snapshot(
        7,
        InvoiceStatus.NEEDS_REVIEW,
        description="Order 1042",
        metadata={"order_id": "1042", "nested": {"a": [1, 2]}},
        idempotency_key="key-1042",
        authorization_url="https://checkout.example/abc",
        access_code="abc",
        paid_at=NOW + timedelta(hours=1),
        amount_paid=260000,
        paystack_transaction_id=2**64 - 1,  # Paystack's ids are unsigned 64-bit
        paystack_reference="inv-projection.2",
        review_reason=ReviewReason.AMOUNT_MISMATCH,
        caller="shop",
        success_url="https://shop.example/orders/1042/paid",
        cancel_url="https://shop.example/orders/1042",
        send_invoice_email=True,
        amount_refunded=100000,
        refunds=[
            Refund(
                refund_id="rf_00000000000000000000000a",
                invoice_id="inv-projection",
                amount=100000,
                currency="NGN",
                status=RefundStatus.PROCESSED,
                initiated_by="api:shop",
                created_at=NOW + timedelta(hours=2),
                updated_at=NOW + timedelta(hours=3),
                revision=6,
                reason="returned",
                paystack_refund_id=2**64 - 2,
                paystack_transaction_id=2**64 - 1,
                idempotency_key="refund-1",
                fingerprint="digest",
            ),
            Refund(
                refund_id="rf_00000000000000000000000b",
                invoice_id="inv-projection",
                amount=5000,
                currency="NGN",
                status=RefundStatus.FAILED,
                initiated_by="paystack_dashboard",
                created_at=NOW + timedelta(hours=4),
                updated_at=NOW + timedelta(hours=4),
                revision=7,
                failure_reason="Refund amount exceeds transaction amount",
            ),
        ],
        disputes=[
            Dispute(
                dispute_id=2**64 - 3,
                invoice_id="inv-projection",
                status=DisputeStatus.RESOLVED,
                updated_at=NOW + timedelta(hours=5),
                revision=7,
                category="chargeback",
                reason="Customer complained about debit without value",
                due_at=NOW + timedelta(days=2),
                resolution=DisputeResolution.DECLINED,
                refund_amount=250000,
                currency="NGN",
                overdue=True,
            )
        ],
    )


def test_every_snapshot_field_has_a_column_and_every_column_a_field() -> None:
    columns = {ROW_NAMES.get(name, name) for name in SNAPSHOT_FIELDS}
    assert columns == set(Invoice.model_fields)
    # Refunds and disputes are rows of their own, each field a column.
    for part in PARTS:
        assert {part.names.get(n, n) for n in part.fields} == set(part.table.model_fields)
    defaults = {
        field.name
        for field in dataclasses.fields(InvoiceSnapshot)
        if getattr(a_full_snapshot(), field.name)
        == getattr(snapshot(1, InvoiceStatus.PENDING), field.name)
    }
    # The example really sets every field (bar those that the helper fixes).
    assert defaults <= {
        "invoice_id",
        "workflow_id",
        "customer_email",
        "amount",
        "currency",
        "due_at",
        "created_at",
        "fingerprint",
    }


def test_the_three_shapes_agree_through_the_database(engine: Engine) -> None:
    full = a_full_snapshot()
    assert apply_snapshot(engine, full)
    assert load_snapshot(engine, full.invoice_id) == full
    row, _ = stored(engine)
    from_row, from_snapshot = InvoiceOut.model_validate(row), InvoiceOut.model_validate(full)
    # Disputes are rows of their own: the API adds them to the invoice's row (with_books).
    assert [d.id for d in from_snapshot.disputes] == [2**64 - 3] and from_row.disputes == []
    assert from_row == from_snapshot.model_copy(update={"disputes": []})
    shown = from_row.model_dump()
    assert shown["id"] == full.invoice_id and shown["metadata"] == full.metadata
    assert shown["revision"] == 7 and shown["review_reason"] == "amount_mismatch"
    # Every public field is one of the snapshot's, by its own name or its alias, but for
    # what the reconciliation sweep adds from Paystack's books (refunds have routes of their
    # own).
    snapshot_names = set(SNAPSHOT_FIELDS) | {part.field for part in PARTS}
    from_the_books = {"settlement_id", "fees", "net_amount"}
    for name, field in InvoiceOut.model_fields.items():
        aliases = set(getattr(field.validation_alias, "choices", [])) | {name}
        assert aliases & snapshot_names or name in from_the_books, name
    assert not from_the_books & snapshot_names
    assert load_snapshot(engine, "inv-missing") is None
