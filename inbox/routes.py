"""Each event type payrecon acts on, and its owner: one entry a type. An event with no
route is stored and ignored. A route's message is a reason for the owner to ask Paystack,
never proof: the owner's verify decides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.invoice import invoice_id_from_reference, is_invoice_reference
from paystack.events import CHARGE_SUCCESS, DISPUTE_EVENTS, REFUND_EVENTS, WebhookEvent
from workflows.invoice import InvoiceWorkflow
from workflows.types import DisputeNotice, PaymentNotice, RefundNotice, workflow_id_for


@dataclass(frozen=True)
class Route:
    # The owning invoice's id, or None when the event names none of ours.
    owner: Callable[[WebhookEvent], str | None]
    # The owner's workflow signal, and the message it is sent.
    signal: Any
    message: Callable[[WebhookEvent], Any]
    # Whether a completed owner is woken for it (a run resumed from its record).
    wakes: bool = False

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


def refund_notice(event: WebhookEvent) -> RefundNotice:
    refund_reference = event.data.get("refund_reference")
    return RefundNotice(
        event=event.event,
        status=event.status,
        amount=event.amount,
        refund_reference=refund_reference if isinstance(refund_reference, str) else None,
    )


# A refund's webhook names the refunded transaction's reference, not the refund.
REFUND_ROUTE = Route(
    owner=invoice_of, signal=InvoiceWorkflow.refund_notified, message=refund_notice, wakes=True
)


def dispute_of(event: WebhookEvent) -> str | None:
    """A dispute's invoice, when the body names a dispute (its `data.id`)."""
    return invoice_of(event) if type(event.data.get("id")) is int else None


def dispute_notice(event: WebhookEvent) -> DisputeNotice:
    return DisputeNotice(event=event.event, dispute_id=event.data["id"], status=event.status)


# A dispute's webhook embeds the disputed transaction, by which its invoice is found.
DISPUTE_ROUTE = Route(
    owner=dispute_of, signal=InvoiceWorkflow.dispute_notified, message=dispute_notice, wakes=True
)

ROUTES: dict[str, Route] = {
    CHARGE_SUCCESS: Route(
        owner=invoice_of, signal=InvoiceWorkflow.payment_notified, message=payment_notice
    ),
    **dict.fromkeys(REFUND_EVENTS, REFUND_ROUTE),
    **dict.fromkeys(DISPUTE_EVENTS, DISPUTE_ROUTE),
}
