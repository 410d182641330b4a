"""What a delivery needs, decided and committed before Paystack gets its answer: nothing
more (ignored, a repeat, not ours), or relaying to its owner (queued)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from db import queries
from inbox import store
from inbox.outcomes import Intake
from inbox.routes import ROUTES
from paystack.events import WebhookEvent


def route_of(engine: Engine, event: WebhookEvent) -> Intake:
    """Whether the event goes to an owner of ours (queued), or to none."""
    route = ROUTES.get(event.event)
    if route is None:
        return Intake.IGNORED
    owner = route.owner(event)
    # The invoice row is written before its payment link is handed out, so a payment for
    # one of our invoices always finds it.
    if owner is None or not queries.invoice_exists(engine, owner):
        return Intake.UNKNOWN_REFERENCE
    return Intake.QUEUED


def accept(
    engine: Engine, event: WebhookEvent, raw_body: bytes, lease_until: datetime
) -> tuple[Intake, int]:
    """Decides and commits a delivery: a body stored already is counted on its row (a
    duplicate); a new one is stored, and if it is to be relayed, queued and leased to the
    caller. Either way, a delivery for one of our invoices is on that invoice's timeline."""
    digest = store.body_digest(raw_body)
    repeated = store.count_repeat(engine, digest, event)
    if repeated is not None:
        return Intake.DUPLICATE, repeated
    decided = route_of(engine, event)
    relay_after = lease_until if decided is Intake.QUEUED else None
    try:
        delivery_id = store.record_delivery(
            engine, event, raw_body, decided.value, relay_after=relay_after
        )
    except IntegrityError:
        # The same body, committed by another request since we looked.
        repeated = store.count_repeat(engine, digest, event)
        assert repeated is not None
        return Intake.DUPLICATE, repeated
    return decided, delivery_id
