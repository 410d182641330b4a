"""Deciding what a Paystack verification means for an invoice. Pure functions: the
workflow calls them, and unit tests pin them down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass
class Verification:
    """What Paystack's verify API said about one reference."""

    reference: str
    found: bool
    status: str | None = None
    amount: int | None = None
    requested_amount: int | None = None
    currency: str | None = None
    paid_at: datetime | None = None
    transaction_id: int | None = None
    gateway_response: str | None = None


class Outcome(StrEnum):
    PAID = "paid"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    NOT_PAID = "not_paid"


def judge(invoice_amount: int, invoice_currency: str, verification: Verification) -> Outcome:
    """Paid only when Paystack says `success` for what was asked, in full, in our currency.

    `requested_amount` is what the transaction was initialized for; `amount` is what was
    charged, which is higher when the customer bore the fees and lower on a partial debit.
    """
    if not verification.found or verification.status != "success":
        return Outcome.NOT_PAID
    if verification.currency != invoice_currency:
        return Outcome.CURRENCY_MISMATCH
    charged = verification.amount
    asked = verification.requested_amount if verification.requested_amount is not None else charged
    if charged is None or asked != invoice_amount or charged < invoice_amount:
        return Outcome.AMOUNT_MISMATCH
    return Outcome.PAID
