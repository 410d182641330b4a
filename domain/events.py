"""What payrecon tells others: the events its merchants' endpoints receive, and the emails
its customers get. Decided by the invoice workflow at each transition (pure: workflow code
imports this module); written to the outbox with the change that makes it, and delivered
by the workers' delivery loops (outbound/).

A new event type is one entry in `EventType` (and, for an invoice status, one in
`EVENT_OF_STATUS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from domain.disputes import Dispute
from domain.invoice import InvoiceSnapshot, InvoiceStatus
from domain.refunds import Refund

# Between attempts to deliver an event to one endpoint (the first is at once): 5 s, 5 m,
# 30 m, 2 h, 5 h, then every 10 h, each with jitter, for up to 3 days. An endpoint whose
# every delivery has failed for 5 days is disabled.
RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
RETRY_FOR_SECONDS = 3 * 86400.0
DISABLE_AFTER_SECONDS = 5 * 86400.0
ATTEMPT_TIMEOUT_SECONDS = 10.0


class EventType(StrEnum):
    INVOICE_CREATED = "invoice.created"
    INVOICE_PAID = "invoice.paid"
    INVOICE_NEEDS_REVIEW = "invoice.needs_review"
    INVOICE_EXPIRED = "invoice.expired"
    INVOICE_CANCELLED = "invoice.cancelled"
    INVOICE_PARTIALLY_REFUNDED = "invoice.partially_refunded"
    INVOICE_REFUNDED = "invoice.refunded"
    # A refund of the invoice's payment changed: asked for, queued, processed, failed…
    REFUND_UPDATED = "refund.updated"
    # A dispute of the invoice's payment changed: opened, reminded, resolved, overdue…
    DISPUTE_UPDATED = "dispute.updated"
    # A discrepancy the reconciliation sweep opened: for operators.
    RECONCILIATION_DISCREPANCY = "reconciliation.discrepancy"

    @property
    def for_operators_only(self) -> bool:
        """Operator events reach operators' endpoints (of any caller) only."""
        return self in OPERATOR_EVENTS


OPERATOR_EVENTS = frozenset({EventType.RECONCILIATION_DISCREPANCY})
# The caller named on operator events: they belong to no one caller.
OPERATORS = "operators"

EVENT_OF_STATUS = {
    InvoiceStatus.PENDING: EventType.INVOICE_CREATED,
    InvoiceStatus.PAID: EventType.INVOICE_PAID,
    InvoiceStatus.NEEDS_REVIEW: EventType.INVOICE_NEEDS_REVIEW,
    InvoiceStatus.EXPIRED: EventType.INVOICE_EXPIRED,
    InvoiceStatus.CANCELLED: EventType.INVOICE_CANCELLED,
    InvoiceStatus.PARTIALLY_REFUNDED: EventType.INVOICE_PARTIALLY_REFUNDED,
    InvoiceStatus.REFUNDED: EventType.INVOICE_REFUNDED,
}


class EmailKind(StrEnum):
    """What the customer is emailed: the invoice with its link, and the receipt once paid."""

    INVOICE = "invoice"
    RECEIPT = "receipt"


def event_id_for(invoice_id: str, revision: int) -> str:
    """One id per transition, the same for all its attempts and redeliveries: a receiver
    deduplicates on it (`webhook-id`)."""
    return f"evt_{invoice_id}_{revision}"


@dataclass
class InvoiceEvent:
    """One change of an invoice, to tell: the invoice as it stands after it, and for a
    refund's change, that refund (the event's data)."""

    event_id: str
    type: EventType
    invoice: InvoiceSnapshot
    emails: list[EmailKind] = field(default_factory=list)
    refund: Refund | None = None
    dispute: Dispute | None = None

    @classmethod
    def of(cls, invoice: InvoiceSnapshot) -> InvoiceEvent:
        """The event the invoice's latest transition makes, and the emails it sends."""
        event_type = EVENT_OF_STATUS[invoice.status]
        emails = []
        if event_type is EventType.INVOICE_CREATED and invoice.send_invoice_email:
            emails.append(EmailKind.INVOICE)
        if event_type is EventType.INVOICE_PAID:
            emails.append(EmailKind.RECEIPT)
        return cls(
            event_id=event_id_for(invoice.invoice_id, invoice.revision),
            type=event_type,
            invoice=invoice,
            emails=emails,
        )

    @classmethod
    def of_refund(cls, invoice: InvoiceSnapshot, refund: Refund) -> InvoiceEvent:
        """The event a change to one of the invoice's refunds makes (its own revision)."""
        return cls(
            event_id=event_id_for(invoice.invoice_id, invoice.revision),
            type=EventType.REFUND_UPDATED,
            invoice=invoice,
            refund=refund,
        )

    @classmethod
    def of_dispute(cls, invoice: InvoiceSnapshot, dispute: Dispute) -> InvoiceEvent:
        """The event a change to one of the invoice's disputes makes (its own revision)."""
        return cls(
            event_id=event_id_for(invoice.invoice_id, invoice.revision),
            type=EventType.DISPUTE_UPDATED,
            invoice=invoice,
            dispute=dispute,
        )

    @property
    def caller(self) -> str:
        return self.invoice.caller


@dataclass
class RecordedChange:
    """What one record writes in one transaction: the invoice as it stands now, and the
    events of its changes that the database does not hold yet (each with the invoice as
    that change left it)."""

    invoice: InvoiceSnapshot
    events: list[InvoiceEvent] = field(default_factory=list)
