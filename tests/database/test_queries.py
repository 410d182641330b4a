"""The API's reads and the webhook audit writes, on SQLite and on Postgres."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from db import queries
from db.projection import apply_snapshot
from domain.invoice import InvoiceSnapshot, InvoiceStatus
from inbox import store
from inbox.intake import accept
from inbox.outcomes import Intake, Relay
from paystack.events import parse_webhook

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _invoice(n: int, status: InvoiceStatus) -> tuple[InvoiceSnapshot, InvoiceStatus]:
    return InvoiceSnapshot(
        invoice_id=f"inv-{n:024d}",
        workflow_id=f"invoice-inv-{n:024d}",
        status=InvoiceStatus.PENDING,
        customer_email=f"c{n}@example.com",
        amount=100000 + n,
        currency="NGN",
        due_at=START + timedelta(days=1),
        created_at=START + timedelta(minutes=n),
        updated_at=START + timedelta(minutes=n),
        revision=1,
        fingerprint="f",
        idempotency_key=f"key-{n}",
        metadata={"order": n},
    ), status


def test_list_filters_by_status_newest_first_and_counts(engine: Engine) -> None:
    for n in range(6):
        snapshot, status = _invoice(n, InvoiceStatus.PAID if n % 2 else InvoiceStatus.PENDING)
        apply_snapshot(engine, snapshot)
        if status is not InvoiceStatus.PENDING:
            apply_snapshot(engine, dataclasses.replace(snapshot, status=status, revision=2))

    rows, total = queries.list_invoices(engine, status="paid", limit=2, offset=0)
    assert total == 3
    assert [row.id for row in rows] == [f"inv-{5:024d}", f"inv-{3:024d}"]
    rest, _ = queries.list_invoices(engine, status="paid", limit=2, offset=2)
    assert [row.id for row in rest] == [f"inv-{1:024d}"]
    everything, total_all = queries.list_invoices(engine, status=None, limit=50, offset=0)
    assert total_all == 6 and len(everything) == 6

    row = queries.get_invoice(engine, f"inv-{4:024d}")
    assert row is not None and row.invoice_metadata == {"order": 4}
    assert row.created_at == START + timedelta(minutes=4)
    assert queries.count_invoices_by_status(engine) == {"paid": 3, "pending": 3}
    assert queries.count_status_changes(engine) == {"paid": 3, "pending": 6}


# A charge.success as Paystack sends it: a reusable card token, the card, the payer.
CHARGE = {
    "event": "charge.success",
    "data": {
        "id": 2**64 - 1,
        "domain": "live",
        "status": "success",
        "reference": "inv-1",
        "amount": 250000,
        "currency": "NGN",
        "paid_at": "2026-11-23T09:15:02.000Z",
        "channel": "card",
        "ip_address": "197.210.54.33",
        "metadata": {"phone": "+2348012345678"},
        "authorization": {
            "authorization_code": "AUTH_8dfhjjdt",
            "bin": "408408",
            "last4": "4081",
            "exp_month": "12",
            "exp_year": "2030",
            "reusable": True,
            "signature": "SIG_idyuhgd87dUYSHO92D",
        },
        "customer": {"id": 84312, "email": "ada@example.com", "customer_code": "CUS_xnxdt6s1"},
        "transaction": {"id": 7, "reference": "inv-1", "authorization": {"bin": "408408"}},
    },
}
SECRETS = ("AUTH_8dfhjjdt", "408408", "4081", "2030", "SIG_", "ada@example.com", "197.210", "+234")


def test_a_delivery_is_stored_redacted_and_parses_back_to_the_same_event(
    engine: Engine,
) -> None:
    body = json.dumps(CHARGE).encode()
    event = parse_webhook(body)

    decided, delivery_id = accept(engine, event, body, START)
    assert decided is Intake.UNKNOWN_REFERENCE  # no invoice inv-1 here
    store.finish_deliveries(engine, [(delivery_id, Relay.SIGNALLED)])

    [stored] = store.deliveries_for(engine, "inv-1")
    assert stored.id == delivery_id and stored.outcome == "signalled"
    for secret in SECRETS:
        assert secret not in stored.redacted_body, secret
    # The largest unsigned 64-bit id, kept exactly on both databases.
    assert stored.transaction_id == 2**64 - 1
    assert stored.body_sha256 == hashlib.sha256(body).hexdigest()
    assert parse_webhook(stored.redacted_body.encode()) == dataclasses.replace(
        event, data=json.loads(stored.redacted_body)["data"]
    )
    assert json.loads(stored.redacted_body)["data"]["customer"] == {
        "id": 84312,
        "customer_code": "CUS_xnxdt6s1",
    }


def test_a_repeated_body_is_counted_on_its_row_even_when_sent_at_once(engine: Engine) -> None:
    body = json.dumps(CHARGE).encode()
    event = parse_webhook(body)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: accept(engine, event, body, START), range(8)))

    [stored] = store.deliveries_for(engine, "inv-1")
    assert sorted(decided for decided, _ in answers).count(Intake.DUPLICATE) == 7
    assert {delivery_id for _, delivery_id in answers} == {stored.id}
    assert stored.repeats == 7 and stored.last_repeated_at is not None
    # The same event in other bytes is another delivery: its owner judges it against Paystack.
    other = body.replace(b": ", b":")
    assert accept(engine, parse_webhook(other), other, START)[0] is Intake.UNKNOWN_REFERENCE
    assert len(store.deliveries_for(engine, "inv-1")) == 2


def _queued(engine: Engine, reference: str, relay_after: datetime) -> int:
    body = f'{{"event": "charge.success", "data": {{"id": 1, "reference": "{reference}"}}}}'
    event = parse_webhook(body.encode())
    return store.record_delivery(
        engine, event, body.encode(), Intake.QUEUED, relay_after=relay_after
    )


def test_a_queued_delivery_is_claimed_once_its_time_comes_and_by_one_relayer(
    engine: Engine,
) -> None:
    lease = timedelta(seconds=30)
    due = _queued(engine, "inv-due", START)
    _queued(engine, "inv-leased", START + timedelta(minutes=5))
    relayed = _queued(engine, "inv-relayed", START)
    store.finish_deliveries(engine, [(relayed, Relay.SIGNALLED)])

    now = START + timedelta(seconds=1)
    [claimed] = store.claim_queued_deliveries(engine, now=now, lease=lease, limit=10)
    assert claimed.id == due and claimed.relay_after == now + lease
    # A second relayer at the same moment finds it leased.
    assert store.claim_queued_deliveries(engine, now=now, lease=lease, limit=10) == []
    assert store.count_queued_deliveries(engine) == 2

    store.retry_delivery_later(engine, due, now + timedelta(seconds=2), "temporal unavailable")
    again = store.claim_queued_deliveries(
        engine, now=now + timedelta(seconds=2), lease=lease, limit=10
    )
    assert [(row.id, row.relay_attempts, row.detail) for row in again] == [
        (due, 1, "temporal unavailable")
    ]

    store.finish_deliveries(engine, [(due, "signalled")])
    finished = store.get_delivery(engine, due)
    assert finished is not None
    assert (finished.outcome, finished.relay_after, finished.detail) == ("signalled", None, None)
    assert store.count_queued_deliveries(engine) == 1


def test_concurrent_relayers_never_claim_the_same_delivery(engine: Engine) -> None:
    ids = {_queued(engine, f"inv-{n}", START) for n in range(40)}
    now = START + timedelta(seconds=1)

    def claim(_: int) -> list[int]:
        rows = store.claim_queued_deliveries(engine, now=now, lease=timedelta(seconds=30), limit=40)
        return [row.id for row in rows if row.id is not None]

    with ThreadPoolExecutor(max_workers=4) as pool:
        claims = list(pool.map(claim, range(4)))
    everything = [delivery_id for claimed in claims for delivery_id in claimed]
    assert sorted(everything) == sorted(ids)
