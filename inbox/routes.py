"""Each event type payrecon acts on, and its owner: one entry a type. An event with no
route is stored and ignored. A route's message is a reason for the owner to ask Paystack,
never proof: the owner's verify decides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.invoice import invoice_id_from_reference, is_invoice_reference
from paystack.events import CHARGE_SUCCESS, WebhookEvent
from workflows.invoice import InvoiceWorkflow
from workflows.types import PaymentNotice, workflow_id_for


@dataclass(frozen=True)
class Route:
    # The owning invoice's id, or None when the event names none of ours.
    owner: Callable[[WebhookEvent], str | None]
    # The owner's workflow signal, and the message it is sent.
    signal: Any
    message: Callable[[WebhookEvent], Any]

    def workflow_id(self, event: WebhookEvent) -> str | None:
        owner = self.owner(event)
        return workflow_id_for(owner) if owner is not None else None


def invoice_of(event: WebhookEvent) -> str | None:
    reference = event.reference
    if reference is None or not is_invoice_reference(reference):
        return None
    return invoice_id_from_reference(reference)


def payment_notice(event: WebhookEvent) -> PaymentNotice:
    assert event.reference is not None
    return PaymentNotice(
        reference=event.reference,
        transaction_id=event.transaction_id,
        amount=event.amount,
        currency=event.currency,
        paid_at=event.paid_at,
    )


ROUTES: dict[str, Route] = {
    CHARGE_SUCCESS: Route(
        owner=invoice_of, signal=InvoiceWorkflow.payment_notified, message=payment_notice
    ),
}
