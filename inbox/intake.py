"""What a delivery needs, decided and committed before Paystack gets its answer: nothing
more (ignored, a duplicate, not ours), or relaying to its owner (queued)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from db import queries
from inbox import store
from inbox.outcomes import Intake
from inbox.routes import ROUTES
from paystack.events import WebhookEvent


def decide(engine: Engine, event: WebhookEvent, raw_body: bytes) -> Intake:
    """From the database alone: a stored twin, the event's route, its owner's record."""
    if store.is_stored(engine, store.body_digest(raw_body)):
        return Intake.DUPLICATE
    return route_of(engine, event)


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
    """Decides and commits a delivery; one to be relayed is queued, leased to the caller."""
    decided = decide(engine, event, raw_body)
    relay_after = lease_until if decided is Intake.QUEUED else None
    delivery_id = store.record_delivery(
        engine, event, raw_body, decided.value, relay_after=relay_after
    )
    return decided, delivery_id
