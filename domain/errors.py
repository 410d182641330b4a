"""The kinds of failure that cross a process boundary, as Temporal ApplicationError types:
raised by activities and workflow handlers, told apart by the workflow, and turned into
HTTP answers by the API (api/errors.py). Plain names only: workflow code imports this."""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    # Paystack's answers, from the activities that call it.
    PAYSTACK_REJECTED = "PaystackRejected"
    PAYSTACK_UNAVAILABLE = "PaystackUnavailable"
    # Paystack refused our secret key: a configuration fault on our side, not the caller's.
    PAYSTACK_UNAUTHORIZED = "PaystackUnauthorized"
    # Paystack holds this reference already (its payment link is lost to us).
    DUPLICATE_REFERENCE = "DuplicateReference"

    # The invoice workflow's answers to the API.
    IDEMPOTENCY_CONFLICT = "IdempotencyConflict"
    INVOICE_NOT_CREATED = "InvoiceNotCreated"
    INVOICE_NOT_FOUND = "InvoiceNotFound"
    INVOICE_FINAL = "InvoiceFinal"
    INVOICE_NOT_READY = "InvoiceNotReady"
    # Refunds and disputes: nothing left to refund, more asked than is left, a retry of a
    # refund that does not need one, a dispute no longer open; and Paystack's refusal.
    NOTHING_TO_REFUND = "NothingToRefund"
    REFUND_TOO_LARGE = "RefundTooLarge"
    REFUND_NOT_FOUND = "RefundNotFound"
    REFUND_NOT_RETRYABLE = "RefundNotRetryable"
    DISPUTE_NOT_FOUND = "DisputeNotFound"
    DISPUTE_NOT_OPEN = "DisputeNotOpen"
    PAYSTACK_REFUSED = "PaystackRefused"
