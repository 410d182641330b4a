"""What the reconciliation sweep finds when Paystack's books and ours disagree. Pure
functions: the sweep's activities call them, and unit tests pin them down."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.invoice import InvoiceStatus
from domain.pricing import Price, expected_fee
from domain.refunds import RefundStatus
from paystack.disputes import DisputeRecord
from paystack.refunds import RefundRecord
from paystack.settlements import SettlementRecord
from paystack.transactions import TransactionRecord


class DiscrepancyKind(StrEnum):
    # Paystack says success; the invoice is pending, expired or cancelled. Healed by a verify.
    MISSED_PAYMENT = "missed_payment"
    # A successful transaction that belongs to no invoice.
    ORPHAN_PAYMENT = "orphan_payment"
    # More than one successful transaction for one invoice.
    DUPLICATE_PAYMENT = "duplicate_payment"
    # The invoice and Paystack disagree on amount or currency.
    AMOUNT_MISMATCH = "amount_mismatch"
    # The invoice is paid, but Paystack's transaction is not `success` (or not there).
    PAID_NOT_ON_PAYSTACK = "paid_not_on_paystack"
    # Paid long enough ago to have been paid out, and in no settlement.
    UNSETTLED = "unsettled"
    # A settlement that does not add up, or whose transactions do not add up to it.
    SETTLEMENT_MISMATCH = "settlement_mismatch"
    # A transaction's fees differ from the agreed pricing.
    FEE_MISMATCH = "fee_mismatch"
    # A refund on Paystack that payrecon does not have, or has with another amount or state.
    # Healed by asking the invoice's workflow to look at its refunds.
    REFUND_MISMATCH = "refund_mismatch"
    # A dispute Paystack has open past its due date.
    DISPUTE_OVERDUE = "dispute_overdue"


class DiscrepancyStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


# The kinds judged from one transaction record: a run whose window covers the record's
# creation and no longer finds one of these resolves it.
TRANSACTION_KINDS = (
    DiscrepancyKind.MISSED_PAYMENT,
    DiscrepancyKind.ORPHAN_PAYMENT,
    DiscrepancyKind.DUPLICATE_PAYMENT,
    DiscrepancyKind.AMOUNT_MISMATCH,
    DiscrepancyKind.PAID_NOT_ON_PAYSTACK,
    DiscrepancyKind.FEE_MISMATCH,
)
# Judged from one refund or dispute record, resolved as the transaction kinds are.
AFTER_PAYMENT_KINDS = (DiscrepancyKind.REFUND_MISMATCH, DiscrepancyKind.DISPUTE_OVERDUE)
# Open ones of these page an operator (deploy/alerts.yml).
ALERTING_KINDS = (
    DiscrepancyKind.ORPHAN_PAYMENT,
    DiscrepancyKind.PAID_NOT_ON_PAYSTACK,
    DiscrepancyKind.SETTLEMENT_MISMATCH,
)
UNSETTLED_STATUSES = (InvoiceStatus.PENDING, InvoiceStatus.EXPIRED, InvoiceStatus.CANCELLED)


@dataclass(frozen=True)
class Finding:
    """One discrepancy as one run sees it; `key` names its subject, so it is stored once."""

    kind: DiscrepancyKind
    key: str
    record_at: datetime
    invoice_id: str | None = None
    paystack_reference: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InvoiceFacts:
    """What the sweep reads of an invoice's row."""

    invoice_id: str
    status: InvoiceStatus
    amount: int
    currency: str
    paystack_reference: str | None
    paystack_transaction_id: int | None
    amount_paid: int | None


def finding_key(kind: DiscrepancyKind, subject: str | int) -> str:
    return f"{kind.value}:{subject}"


def judge_transaction(
    record: TransactionRecord,
    invoice: InvoiceFacts | None,
    *,
    pricing: Sequence[Price],
    account_country: str,
    settled_before: datetime | None = None,
) -> list[Finding]:
    """Every discrepancy one Paystack transaction shows against its invoice (if any).

    A payment made at or after `settled_before` (the window's end: a scheduled run's is the
    grace period before now) may still have its webhook in flight, so it is not yet a missed
    payment; a later run judges it."""
    findings: list[Finding] = []

    def found(kind: DiscrepancyKind, subject: str | int, **details: Any) -> None:
        findings.append(
            Finding(
                kind=kind,
                key=finding_key(kind, subject),
                record_at=record.created_at,
                invoice_id=invoice.invoice_id if invoice is not None else None,
                paystack_reference=record.reference,
                details={
                    "transaction_id": record.id,
                    "paystack_status": record.status,
                    "amount": record.amount,
                    "currency": record.currency,
                    **details,
                },
            )
        )

    paid_by_this = invoice is not None and _pays(invoice, record)
    if record.status != "success":
        # A full refund reverses the transaction: that is explained, a partial one is not.
        standing = (InvoiceStatus.PAID, InvoiceStatus.PARTIALLY_REFUNDED)
        if invoice is not None and paid_by_this and invoice.status in standing:
            found(DiscrepancyKind.PAID_NOT_ON_PAYSTACK, record.reference)
        return findings

    fee_finding = judge_fee(record, pricing=pricing, account_country=account_country)
    if fee_finding is not None:
        findings.append(replace(fee_finding, invoice_id=invoice.invoice_id if invoice else None))

    if invoice is None:
        found(DiscrepancyKind.ORPHAN_PAYMENT, record.reference)
        return findings
    if invoice.status in UNSETTLED_STATUSES:
        in_flight = (
            settled_before is not None
            and record.paid_at is not None
            and record.paid_at >= settled_before
        )
        if not in_flight:
            found(DiscrepancyKind.MISSED_PAYMENT, record.reference, invoice_status=invoice.status)
        return findings
    if not paid_by_this and invoice.paystack_transaction_id is not None:
        found(
            DiscrepancyKind.DUPLICATE_PAYMENT,
            record.reference,
            paid_by_transaction_id=invoice.paystack_transaction_id,
        )
        return findings
    if (
        record.currency != invoice.currency
        or record.amount < invoice.amount
        or (record.requested_amount is not None and record.requested_amount != invoice.amount)
    ):
        found(
            DiscrepancyKind.AMOUNT_MISMATCH,
            record.reference,
            invoice_amount=invoice.amount,
            invoice_currency=invoice.currency,
        )
    return findings


def judge_fee(
    record: TransactionRecord, *, pricing: Sequence[Price], account_country: str
) -> Finding | None:
    """A successful transaction's fees against the agreed pricing (none to judge when the
    table has no price for it, or Paystack shows no fees)."""
    if record.status != "success" or record.fees is None:
        return None
    fee = expected_fee(
        pricing,
        amount=record.amount,
        currency=record.currency,
        channel=record.channel,
        card_country=record.card_country,
        account_country=account_country,
    )
    if fee is None or record.fees == fee:
        return None
    kind = DiscrepancyKind.FEE_MISMATCH
    return Finding(
        kind=kind,
        key=finding_key(kind, record.id),
        record_at=record.created_at,
        paystack_reference=record.reference,
        details={
            "transaction_id": record.id,
            "amount": record.amount,
            "currency": record.currency,
            "channel": record.channel,
            "card_country": record.card_country,
            "fees": record.fees,
            "expected_fees": fee,
        },
    )


def _pays(invoice: InvoiceFacts, record: TransactionRecord) -> bool:
    """Whether this is the transaction the invoice's workflow recorded as its payment."""
    if invoice.paystack_transaction_id is not None:
        return invoice.paystack_transaction_id == record.id
    return invoice.paystack_reference == record.reference


def judge_settlement(
    settlement: SettlementRecord, transactions_amount: int, transactions_fees: int
) -> Finding | None:
    """A settlement whose own arithmetic fails, or whose transactions do not add up to it
    (one currency a settlement; `meta.total_volume` is another unit: never used)."""
    problems = []
    if not settlement.adds_up:
        problems.append("total_processed - total_fees - deductions != total_amount")
    if transactions_amount != settlement.total_processed:
        problems.append("its transactions' amounts do not add up to total_processed")
    if transactions_fees != settlement.total_fees:
        problems.append("its transactions' fees do not add up to total_fees")
    if not problems:
        return None
    kind = DiscrepancyKind.SETTLEMENT_MISMATCH
    return Finding(
        kind=kind,
        key=finding_key(kind, settlement.id),
        record_at=settlement.settlement_date,
        details={
            "settlement_id": settlement.id,
            "currency": settlement.currency,
            "problems": problems,
            "total_processed": settlement.total_processed,
            "total_fees": settlement.total_fees,
            "deductions": settlement.deductions,
            "total_amount": settlement.total_amount,
            "transactions_amount": transactions_amount,
            "transactions_fees": transactions_fees,
        },
    )


@dataclass(frozen=True)
class RefundFacts:
    """What the sweep reads of payrecon's record of a refund."""

    refund_id: str
    invoice_id: str
    amount: int
    status: str


def judge_refund(
    record: RefundRecord,
    ours: RefundFacts | None,
    invoice_id: str | None,
    *,
    settled_before: datetime,
) -> list[Finding]:
    """A refund on Paystack's books against payrecon's record of it. A refund of a payment
    that is no invoice's (an orphan's) is not payrecon's to hold. A refund changed at or
    after `settled_before` may still have its webhook in flight: a later run judges it."""
    if invoice_id is None or record.created_at is None:
        return []
    changed_at = record.updated_at or record.created_at
    if changed_at >= settled_before:
        return []
    paystack_status = RefundStatus.from_paystack(record.status).value
    if ours is not None and (ours.amount, ours.status) == (record.amount, paystack_status):
        return []
    details: dict[str, Any] = {
        "paystack_refund_id": record.id,
        "paystack_status": paystack_status,
        "paystack_amount": record.amount,
        "currency": record.currency,
        "transaction_id": record.transaction_id,
    }
    if ours is None:
        details["problem"] = "payrecon has no record of this refund"
    else:
        details |= {
            "refund_id": ours.refund_id,
            "payrecon_status": ours.status,
            "payrecon_amount": ours.amount,
            "problem": "payrecon holds it with another amount or state",
        }
    return [
        Finding(
            kind=DiscrepancyKind.REFUND_MISMATCH,
            key=finding_key(DiscrepancyKind.REFUND_MISMATCH, record.id),
            record_at=record.created_at,
            invoice_id=invoice_id,
            details=details,
        )
    ]


def judge_dispute(record: DisputeRecord, invoice_id: str | None, *, now: datetime) -> list[Finding]:
    """A dispute Paystack still has open after its due date: lost by default unless an
    operator answers."""
    if not record.open or record.due_at is None or record.due_at > now:
        return []
    return [
        Finding(
            kind=DiscrepancyKind.DISPUTE_OVERDUE,
            key=finding_key(DiscrepancyKind.DISPUTE_OVERDUE, record.id),
            record_at=record.created_at or record.due_at,
            invoice_id=invoice_id,
            paystack_reference=record.transaction_reference,
            details={
                "paystack_dispute_id": record.id,
                "status": record.status,
                "due_at": record.due_at.isoformat(),
                "refund_amount": record.refund_amount,
                "currency": record.currency,
                "category": record.category,
            },
        )
    ]


# The discrepancies an operator may refund the payment of: money that is no invoice's.
REFUNDABLE_KINDS = frozenset({DiscrepancyKind.ORPHAN_PAYMENT, DiscrepancyKind.DUPLICATE_PAYMENT})
