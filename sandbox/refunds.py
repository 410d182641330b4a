"""Refunds as Paystack does them: `POST /refund` (in part or in full, never more than is
left), `GET /refund`, `GET /refund/{id}`, `POST /refund/retry_with_customer_details/{id}`,
and each step of a refund (`pending` -> `processing` -> `processed` | `failed` |
`needs-attention`) told by its signed `refund.*` webhook. A refund settles by itself after
SANDBOX_REFUND_AUTO_SECONDS, or by the control `POST /_sandbox/refunds/{id}/settle`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from sandbox import api_faults
from sandbox.context import Sandbox, SandboxDep
from sandbox.errors import PaystackError, validation_error
from sandbox.initialize import read_params
from sandbox.paystack_api import (
    DEFAULT_PER_PAGE,
    RecordFilter,
    find_transaction,
    positive_int,
    require_key,
)
from sandbox.store import REFUND_FINAL, Refund, Transaction, now, random_code
from sandbox.views import iso, offset_page

paystack_router = APIRouter(tags=["paystack"])
control_router = APIRouter(prefix="/_sandbox", tags=["sandbox controls"])

# Paystack's expected date for the money to reach the customer.
EXPECTED_AFTER = timedelta(days=7)
PROCESSOR = "instant-transfer"
NEEDS_ATTENTION = "needs-attention"
Outcome = Literal["processed", "failed", "needs-attention"]


# --- Paystack's endpoints -----------------------------------------------------------------


@paystack_router.post("/refund")
async def create_refund(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    params = await read_params(request)
    raw_transaction = str((params or {}).get("transaction") or "")
    sandbox.store.count_call("refund")
    require_key(request, sandbox)
    call = sandbox.faults.plan_call("refund", raw_transaction or None)
    await api_faults.before_work(sandbox.faults, call)
    if params is None:
        raise validation_error("Invalid request body, send JSON or form data")
    if not raw_transaction:
        raise validation_error("Transaction reference or id is required")
    tx = find_transaction(sandbox, raw_transaction)
    amount = _amount(params.get("amount"))
    currency = params.get("currency")
    if currency is not None and str(currency).upper() != tx.currency:
        raise validation_error(f"Currency should be {tx.currency}, the transaction's currency")

    refund = await open_refund(
        sandbox,
        tx,
        amount=amount,
        customer_note=_note(params.get("customer_note")),
        merchant_note=_note(params.get("merchant_note")),
    )
    await api_faults.after_work(sandbox.faults, call)
    return {
        "status": True,
        "message": "Refund has been queued for processing",
        "data": {**refund_view(refund), "transaction": _transaction_summary(tx)},
    }


@paystack_router.get("/refund")
async def list_refunds(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.store.count_call("refunds")
    require_key(request, sandbox)
    query = request.query_params
    wanted = RecordFilter.of(sandbox, query)
    currency = (query.get("currency") or "").upper()
    matches = [
        refund
        for refund in sorted(sandbox.store.refunds.values(), key=lambda r: r.id, reverse=True)
        if wanted.keeps(refund.created_at, refund.reference)
        and (not currency or refund.currency == currency)
    ]
    views = [refund_view(refund) for refund in matches]
    return offset_page(
        "Refunds retrieved",
        views,
        positive_int(query.get("perPage"), DEFAULT_PER_PAGE),
        positive_int(query.get("page"), 1),
    )


@paystack_router.get("/refund/{refund_id}")
async def fetch_refund(refund_id: str, request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.store.count_call("refunds")
    require_key(request, sandbox)
    refund = _refund(sandbox, refund_id)
    return {"status": True, "message": "Refund retrieved", "data": refund_view(refund)}


class AccountDetails(BaseModel):
    currency: str
    account_number: str
    bank_id: str


@paystack_router.post("/refund/retry_with_customer_details/{refund_id}")
async def retry_refund(refund_id: str, request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    """Only a refund that needs attention: with the customer's bank account it goes back to
    processing, and settles as any refund does."""
    require_key(request, sandbox)
    refund = _refund(sandbox, refund_id)
    params = await read_params(request) or {}
    details = params.get("refund_account_details")
    if not isinstance(details, dict) or not all(
        details.get(name) for name in AccountDetails.model_fields
    ):
        raise validation_error(
            "refund_account_details with currency, account_number and bank_id is required"
        )

    def retried(held: Refund) -> None:
        if held.status != NEEDS_ATTENTION:
            raise validation_error(
                'Invalid Refund state, refund status should be "needs-attention"',
                status_code=422,
                next_step="Ensure that the value(s) you're passing are valid.",
            )
        held.status = "processing"
        held.updated_at = now()

    refund = await sandbox.store.update_refund(refund.id, retried)
    tx = sandbox.store.get(refund.reference)
    if tx is not None:
        send_refund_webhook(sandbox, refund, tx)
    settle_by_itself(sandbox, refund.id)
    return {
        "status": True,
        "message": "Refund retried and has been queued for processing",
        "data": refund_view(refund),
    }


# --- test controls ------------------------------------------------------------------------


class Settle(BaseModel):
    outcome: Outcome = "processed"


@control_router.post("/refunds/{refund_id}/settle")
async def settle_refund(refund_id: str, body: Settle, sandbox: SandboxDep) -> dict[str, Any]:
    """Moves a refund on to `outcome` (through `processing` if it is still pending), each
    step with its webhook; a refund already processed or failed stays as it is (409)."""
    refund = _refund(sandbox, refund_id)
    if refund.status in REFUND_FINAL:
        raise PaystackError(409, f"Refund is already {refund.status}")
    if refund.status == "pending":
        await advance(sandbox, refund.id, "processing")
    refund = await advance(sandbox, refund.id, body.outcome)
    return {"status": True, "message": f"Refund {body.outcome}", "data": refund_view(refund)}


# --- a refund's steps ---------------------------------------------------------------------


async def open_refund(
    sandbox: Sandbox,
    tx: Transaction,
    *,
    amount: int | None,
    customer_note: str | None = None,
    merchant_note: str | None = None,
    dispute_id: int | None = None,
) -> Refund:
    """A refund of `amount` (all that is left when None), queued and told; refused when the
    transaction was not paid or has not that much left."""

    def make(refund_id: int) -> Refund:
        if tx.status != "success":
            raise validation_error("Cannot refund a transaction that is not successful")
        left = sandbox.store.refundable(tx)
        if left <= 0:
            raise validation_error("Transaction has been fully reversed")
        if amount is not None and amount > left:
            raise validation_error(
                f"Refund amount cannot be more than the unrefunded balance of {left}"
            )
        moment = now()
        return Refund(
            id=refund_id,
            reference=tx.reference,
            transaction_id=tx.id,
            amount=amount if amount is not None else left,
            currency=tx.currency,
            created_at=moment,
            updated_at=moment,
            expected_at=moment + EXPECTED_AFTER,
            customer_note=customer_note or f"Refund for transaction {tx.reference}",
            merchant_note=merchant_note
            or f"Refund for transaction {tx.reference} by sandbox@example.com",
            dispute_id=dispute_id,
        )

    refund = await sandbox.store.add_refund(make)
    send_refund_webhook(sandbox, refund, tx)
    settle_by_itself(sandbox, refund.id)
    return refund


async def advance(sandbox: Sandbox, refund_id: int, status: str) -> Refund:
    """One step, saved, then told by webhook; a full refund reverses its transaction, a
    failed one gives the money back to it."""

    def step(refund: Refund) -> None:
        refund.status = status
        refund.updated_at = now()
        if status == "processed":
            refund.refunded_at = refund.updated_at
            refund.bank_reference = "TRF_" + random_code(15)

    refund = await sandbox.store.update_refund(refund_id, step)
    store = sandbox.store
    processed = sum(r.amount for r in store.refunds_of(refund.reference) if r.status == "processed")

    def reflect(tx: Transaction) -> None:
        if tx.status in ("success", "reversed"):
            tx.status = "reversed" if processed >= tx.amount else "success"

    tx = await store.update(refund.reference, reflect)
    send_refund_webhook(sandbox, refund, tx)
    return refund


def settle_by_itself(sandbox: Sandbox, refund_id: int) -> None:
    """Processing half-way through SANDBOX_REFUND_AUTO_SECONDS, processed at its end, unless
    the control moved it meanwhile."""
    seconds = sandbox.settings.sandbox_refund_auto_seconds
    if seconds <= 0:
        return

    async def settle() -> None:
        await asyncio.sleep(seconds / 2)
        if sandbox.store.refunds[refund_id].status == "pending":
            await advance(sandbox, refund_id, "processing")
        await asyncio.sleep(seconds / 2)
        if sandbox.store.refunds[refund_id].status == "processing":
            await advance(sandbox, refund_id, "processed")

    sandbox.spawn(settle())


def send_refund_webhook(sandbox: Sandbox, refund: Refund, tx: Transaction) -> None:
    if sandbox.config.webhooks_enabled:
        sandbox.webhooks.send(refund_event(refund, tx), url=sandbox.config.webhook_url)


def refund_event(refund: Refund, tx: Transaction) -> dict[str, Any]:
    """As Paystack's samples: no refund id, the amount a string while under way."""
    final = refund.status in ("failed", NEEDS_ATTENTION)
    data: dict[str, Any] = {
        "status": refund.status,
        "transaction_reference": refund.reference,
        "refund_reference": refund.bank_reference,
        "amount": refund.amount if final else str(refund.amount),
        "currency": refund.currency,
        "processor": PROCESSOR,
        "customer": {"first_name": None, "last_name": None, "email": tx.customer.email},
        "integration": 412829,
        "domain": "test",
    }
    if refund.status == NEEDS_ATTENTION:
        data |= {
            "id": str(refund.id),
            "customer_note": refund.customer_note,
            "merchant_note": refund.merchant_note,
        }
    return {"event": f"refund.{refund.status}", "data": data}


# --- views and lookups --------------------------------------------------------------------


def refund_view(refund: Refund) -> dict[str, Any]:
    processed = refund.status == "processed"
    return {
        "id": refund.id,
        "integration": 412829,
        "domain": "test",
        "transaction": refund.transaction_id,
        "dispute": refund.dispute_id,
        "settlement": None,
        "amount": refund.amount,
        "deducted_amount": refund.amount if processed else 0,
        "fully_deducted": processed,
        "currency": refund.currency,
        "channel": "card",
        "status": refund.status,
        "refunded_by": refund.refunded_by,
        "refunded_at": iso(refund.refunded_at),
        "expected_at": iso(refund.expected_at),
        "customer_note": refund.customer_note,
        "merchant_note": refund.merchant_note,
        "bank_reference": refund.bank_reference,
        "reason": refund.status.upper().replace("-", "_"),
        "initiated_by": refund.refunded_by,
        "reversed_at": None,
        "createdAt": iso(refund.created_at),
        "updatedAt": iso(refund.updated_at),
    }


def _transaction_summary(tx: Transaction) -> dict[str, Any]:
    """The transaction as `POST /refund`'s answer embeds it, key for key as Paystack's."""
    return {
        "id": tx.id,
        "domain": "test",
        "reference": tx.reference,
        "amount": tx.amount,
        "paid_at": iso(tx.paid_at),
        "channel": tx.channel,
        "currency": tx.currency,
        "authorization": {"exp_month": None, "exp_year": None, "account_name": None},
        "customer": {"international_format_phone": None},
        "plan": {},
        "subaccount": {"currency": None},
        "split": {},
        "order_id": None,
        "paidAt": iso(tx.paid_at),
        "pos_transaction_data": None,
        "source": None,
        "fees_breakdown": None,
    }


def _refund(sandbox: Sandbox, refund_id: str) -> Refund:
    refund = (
        sandbox.store.refunds.get(int(refund_id))
        if refund_id.isascii() and refund_id.isdigit()
        else None
    )
    if refund is None:
        raise PaystackError(
            404, "Refund not found", error_type="validation_error", code="not_found"
        )
    return refund


def _amount(value: Any) -> int | None:
    """Subunits, as a number or a string of digits; none: the whole of what is left."""
    if value is None or value == "":
        return None
    text = str(value)
    if not text.isascii() or not text.isdigit() or int(text) <= 0:
        raise validation_error("Invalid amount: a positive whole number of subunits")
    return int(text)


def _note(value: Any) -> str | None:
    return str(value)[:500] if value else None
