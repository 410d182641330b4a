"""Finding invoices by what a backend knows, and the timeline's entries from the webhook
inbox, on SQLite and on Postgres (their JSON functions differ)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine

from db import queries, timeline
from db.projection import apply_snapshot
from db.queries import InvoiceFilter
from db.timeline import TimelineKind
from domain.invoice import InvoiceSnapshot, InvoiceStatus
from inbox.intake import accept
from inbox.outcomes import Intake
from paystack.events import parse_webhook

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _invoice(
    engine: Engine,
    n: int,
    *,
    caller: str = "default",
    email: str = "ada@example.com",
    key: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    invoice_id = f"inv-find-{n:04d}"
    apply_snapshot(
        engine,
        InvoiceSnapshot(
            invoice_id=invoice_id,
            workflow_id=f"invoice-{invoice_id}",
            status=InvoiceStatus.PENDING,
            customer_email=email,
            amount=250000,
            currency="NGN",
            due_at=START + timedelta(days=1),
            created_at=START + timedelta(minutes=n),
            updated_at=START + timedelta(minutes=n),
            revision=1,
            fingerprint="f",
            idempotency_key=key,
            metadata=metadata or {},
            caller=caller,
        ),
    )
    return invoice_id


def _found(engine: Engine, caller: str | None = None, **wanted: Any) -> list[str]:
    rows, total = queries.list_invoices(
        engine, limit=50, offset=0, caller=caller, where=InvoiceFilter(**wanted)
    )
    assert total == len(rows)
    return [row.id for row in rows]


def test_each_filter_and_their_combinations(engine: Engine) -> None:
    a = _invoice(engine, 1, key="order-1", metadata={"learner_id": 77, "cohort": "2026-a"})
    b = _invoice(engine, 2, key="order-2", metadata={"learner_id": "77", "a.b-c_d": "x"})
    c = _invoice(engine, 3, email="bo@example.com", metadata={"learner_id": 78, "flag": True})
    d = _invoice(engine, 4, caller="shop", key="order-1", metadata={"learner_id": 77})

    assert _found(engine, customer_email="ada@example.com") == [d, b, a]
    assert _found(engine, customer_email="Ada@example.com") == []  # as stored: exact
    assert _found(engine, idempotency_key="order-1") == [d, a]
    assert _found(engine, caller="default", idempotency_key="order-1") == [a]
    assert _found(engine, caller="shop", idempotency_key="order-2") == []
    # A number and the string of its digits read alike; another number does not.
    assert _found(engine, metadata={"learner_id": "77"}) == [d, b, a]
    assert _found(engine, metadata={"learner_id": "78"}) == [c]
    assert _found(engine, metadata={"learner_id": "7"}) == []
    assert _found(engine, metadata={"missing": "77"}) == []
    assert _found(engine, metadata={"a.b-c_d": "x"}) == [b]
    assert _found(engine, metadata={"learner_id": "77", "cohort": "2026-a"}) == [a]
    assert _found(engine, caller="default", metadata={"learner_id": "77"}) == [b, a]
    assert _found(engine, customer_email="bo@example.com", metadata={"learner_id": "77"}) == []
    # Inclusive after, exclusive before.
    two, four = START + timedelta(minutes=2), START + timedelta(minutes=4)
    assert _found(engine, created_after=two) == [d, c, b]
    assert _found(engine, created_before=two) == [a]
    assert _found(engine, created_after=two, created_before=four) == [c, b]
    assert _found(engine, created_after=four, created_before=four) == []
    # Another zone, the same moment.
    lagos = two.astimezone(timezone(timedelta(hours=1)))
    assert _found(engine, created_after=lagos, created_before=four) == [c, b]
    # The page keeps its shape: the total of every match, one page of them.
    rows, total = queries.list_invoices(
        engine,
        status="pending",
        limit=1,
        offset=1,
        where=InvoiceFilter(metadata={"learner_id": "77"}),
    )
    assert total == 3 and [row.id for row in rows] == [b]
    assert queries.list_invoices(engine, status="paid", limit=5, offset=0)[1] == 0


def _webhook(event: str, reference: str, **data: Any) -> tuple[bytes, Any]:
    body = json.dumps({"event": event, "data": {"id": 41, "reference": reference, **data}})
    return body.encode(), parse_webhook(body.encode())


def _entries(engine: Engine, invoice_id: str) -> list[tuple[str, dict[str, Any]]]:
    entries, total = timeline.page(engine, invoice_id, limit=100, offset=0)
    assert total == len(entries)
    return [(entry.kind, entry.detail) for entry in entries]


def test_a_webhook_for_one_of_our_invoices_is_on_its_timeline_whatever_its_outcome(
    engine: Engine,
) -> None:
    invoice_id = _invoice(engine, 10)
    body, event = _webhook("charge.success", invoice_id)
    decided, delivery_id = accept(engine, event, body, START)
    repeated, same_id = accept(engine, event, body, START)
    refund_body = json.dumps(
        {"event": "refund.processed", "data": {"transaction_reference": f"{invoice_id}.2"}}
    ).encode()
    routed, refund_id = accept(engine, parse_webhook(refund_body), refund_body, START)
    # Of our shape, but no invoice of ours: nothing on any timeline.
    stranger_body, stranger = _webhook("charge.success", "inv-find-9999")
    assert accept(engine, stranger, stranger_body, START)[0] is Intake.UNKNOWN_REFERENCE

    # A refund's webhook names its transaction's reference: the invoice's second one here.
    assert (decided, repeated, routed) == (Intake.QUEUED, Intake.DUPLICATE, Intake.QUEUED)
    assert same_id == delivery_id
    status_changed = (
        TimelineKind.STATUS_CHANGED,
        {"status": "pending", "revision": 1, "review_reason": None},
    )
    received = TimelineKind.WEBHOOK_RECEIVED
    entries = _entries(engine, invoice_id)
    # The repeat is counted on its delivery's one entry, not added as another.
    assert entries[1][1].pop("last_repeated_at") is not None
    assert entries == [
        status_changed,
        (
            received,
            {
                "event": "charge.success",
                "reference": invoice_id,
                "outcome": "queued",
                "delivery_id": delivery_id,
                "repeats": 1,
            },
        ),
        (
            received,
            {
                "event": "refund.processed",
                "reference": f"{invoice_id}.2",
                "outcome": "queued",
                "delivery_id": refund_id,
            },
        ),
    ]
    assert _entries(engine, "inv-find-9999") == []


def test_the_timeline_pages_in_the_order_entries_were_added_and_forgets_one(
    engine: Engine,
) -> None:
    invoice_id = _invoice(engine, 20)
    # A later stamp added first still comes first: the order is the order of adding.
    late = timeline.record(
        engine, invoice_id, TimelineKind.CANCEL_REQUESTED, START + timedelta(hours=1), caller="a"
    )
    taken_back = timeline.record(
        engine, invoice_id, TimelineKind.CANCEL_REQUESTED, START, caller="b"
    )
    timeline.record(engine, invoice_id, TimelineKind.EMAIL_SENT, START, message_id="m-1")
    timeline.forget(engine, taken_back)

    first, total = timeline.page(engine, invoice_id, limit=2, offset=0)
    rest, _ = timeline.page(engine, invoice_id, limit=2, offset=2)
    assert total == 3
    assert [e.kind for e in first + rest] == ["status_changed", "cancel_requested", "email_sent"]
    assert first[1].id == late and first[1].detail == {"caller": "a"}
