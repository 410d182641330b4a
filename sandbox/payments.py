"""Settling a transaction as a customer would at checkout, and the webhook that follows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from domain.pricing import NIGERIA, expected_fee
from sandbox.context import Sandbox
from sandbox.store import Transaction, now, random_code
from sandbox.webhooks import charge_success

Outcome = Literal["success", "failed"]

ACCOUNT_COUNTRY = "NG"
# Where the pricing table has no price (other currencies): 1.5 %.
FALLBACK_RATE_BP = 150


def fees_for(amount: int, currency: str, channel: str, card_country: str | None) -> int:
    """Paystack's fee for a payment, by the same pricing table payrecon checks against."""
    fee = expected_fee(
        NIGERIA,
        amount=amount,
        currency=currency,
        channel=channel,
        card_country=card_country,
        account_country=ACCOUNT_COUNTRY,
    )
    return fee if fee is not None else (amount * FALLBACK_RATE_BP + 5_000) // 10_000


class AlreadySettled(Exception):
    pass


def card_authorization(country: str = ACCOUNT_COUNTRY) -> dict[str, Any]:
    """Paystack's test Visa card, as it appears in an authorization object."""
    return {
        "authorization_code": "AUTH_" + random_code(10),
        "bin": "408408",
        "last4": "4081",
        "exp_month": "12",
        "exp_year": "2030",
        "channel": "card",
        "card_type": "visa ",
        "bank": "TEST BANK",
        "country_code": country,
        "brand": "visa",
        "reusable": True,
        "signature": "SIG_" + random_code(20),
        "account_name": None,
    }


def _checkout_log(created_at: datetime, settled_at: datetime, success: bool) -> dict[str, Any]:
    time_spent = max(1, int((settled_at - created_at).total_seconds()))
    outcome = (
        {"type": "success", "message": "Successfully paid with card", "time": time_spent}
        if success
        else {"type": "error", "message": "Error: Declined", "time": time_spent}
    )
    return {
        "start_time": int(created_at.timestamp()),
        "time_spent": time_spent,
        "attempts": 1,
        "errors": 0 if success else 1,
        "success": success,
        "mobile": False,
        "input": [],
        "history": [
            {"type": "action", "message": "Attempted to pay with card", "time": time_spent},
            outcome,
        ],
    }


async def settle(
    sandbox: Sandbox,
    reference: str,
    outcome: Outcome,
    *,
    amount: int | None = None,
    currency: str | None = None,
    ip_address: str | None = None,
    card_country: str = ACCOUNT_COUNTRY,
) -> Transaction:
    """Raises TransactionNotFound or AlreadySettled. A failed transaction can be retried."""

    def change(tx: Transaction) -> None:
        if tx.status == "success":
            raise AlreadySettled(reference)
        settled_at = now()
        tx.amount = amount if amount is not None else tx.requested_amount
        tx.currency = currency or tx.currency
        tx.channel = "card"
        tx.ip_address = ip_address
        tx.log = _checkout_log(tx.created_at, settled_at, outcome == "success")
        if outcome == "success":
            tx.status = "success"
            tx.paid_at = settled_at
            tx.gateway_response = "Successful"
            tx.authorization = card_authorization(card_country)
            tx.fees = fees_for(tx.amount, tx.currency, tx.channel, card_country)
        else:
            tx.status = "failed"
            tx.paid_at = None
            tx.gateway_response = "Declined"
            tx.fees = None
            tx.authorization = {}

    tx = await sandbox.store.update(reference, change)
    # Paystack sends no webhook for failed charges.
    if outcome == "success" and sandbox.config.webhooks_enabled:
        send_charge_success(sandbox, tx)
    return tx


def send_charge_success(sandbox: Sandbox, tx: Transaction, copies: int = 1) -> None:
    # Built now, synchronously, so the payload is this state even if tx changes later.
    sandbox.webhooks.send(charge_success(tx), url=sandbox.config.webhook_url, copies=copies)
