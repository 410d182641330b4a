"""Disputes as Paystack does them: a card holder's claim against a successful transaction,
opened (`charge.dispute.create`) and reminded (`charge.dispute.remind`) by the test controls,
read with `GET /dispute`, `GET /dispute/{id}` and `GET /dispute/transaction/{id}`, evidence
uploaded to the URL `GET /dispute/{id}/upload_url` hands out, and resolved with
`PUT /dispute/{id}/resolve` (`charge.dispute.resolve`): an accepted dispute with a refund
amount makes that refund, as Paystack does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

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
from sandbox.refunds import open_refund
from sandbox.store import Dispute, Transaction, now, random_code
from sandbox.views import iso, offset_page, webhook_view

paystack_router = APIRouter(tags=["paystack"])
control_router = APIRouter(prefix="/_sandbox", tags=["sandbox controls"])

RESOLUTIONS = ("merchant-accepted", "declined")
# Paystack gives the merchant about a day to answer a chargeback.
DEFAULT_DUE = timedelta(days=1)
BY = "sandbox@example.com"


# --- test controls ------------------------------------------------------------------------


class OpenDispute(BaseModel):
    transaction: str | int
    refund_amount: int | None = Field(None, gt=0)
    category: Literal["chargeback", "fraud", "general"] = "chargeback"
    # When the merchant's answer is due; by default a day from now.
    due_in_seconds: float | None = Field(None, ge=-86_400 * 30, le=86_400 * 90)


@control_router.post("/disputes")
async def open_dispute(body: OpenDispute, sandbox: SandboxDep) -> dict[str, Any]:
    """The card holder disputes a successful transaction; `charge.dispute.create` follows."""
    tx = find_transaction(sandbox, str(body.transaction))
    if tx.status not in ("success", "reversed"):
        raise validation_error("Only a successful transaction can be disputed")
    amount = body.refund_amount if body.refund_amount is not None else tx.amount
    if amount > tx.amount:
        raise validation_error("A dispute cannot claim more than the transaction's amount")
    moment = now()
    due = timedelta(seconds=body.due_in_seconds) if body.due_in_seconds is not None else DEFAULT_DUE

    def make(dispute_id: int) -> Dispute:
        return Dispute(
            id=dispute_id,
            reference=tx.reference,
            transaction_id=tx.id,
            currency=tx.currency,
            refund_amount=amount,
            category=body.category,
            due_at=moment + due,
            created_at=moment,
            updated_at=moment,
            history=[{"status": "pending", "by": tx.customer.email, "createdAt": iso(moment)}],
            messages=[
                {
                    "sender": tx.customer.email,
                    "body": "Customer complained about debit without value",
                    "createdAt": iso(moment),
                }
            ],
        )

    dispute = await sandbox.store.add_dispute(make)
    send_dispute_webhook(sandbox, "charge.dispute.create", dispute)
    return {"status": True, "message": "Dispute opened", "data": dispute_view(sandbox, dispute)}


@control_router.post("/disputes/{dispute_id}/remind")
async def remind(dispute_id: str, sandbox: SandboxDep) -> dict[str, Any]:
    dispute = _dispute(sandbox, dispute_id)
    if not dispute.open:
        raise PaystackError(409, f"Dispute is already {dispute.status}")
    send_dispute_webhook(sandbox, "charge.dispute.remind", dispute)
    return {"status": True, "message": "Reminder sent", "data": dispute_view(sandbox, dispute)}


@control_router.put("/uploads/{file_name}")
async def upload(file_name: str, request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    """Where an upload URL points: takes the evidence file (its bytes are not kept)."""
    owner = next((d for d in sandbox.store.disputes.values() if file_name in d.upload_names), None)
    if owner is None:
        raise PaystackError(404, "No such upload URL")
    size = len(await request.body())

    def uploaded(dispute: Dispute) -> None:
        if file_name not in dispute.uploaded:
            dispute.uploaded.append(file_name)

    await sandbox.store.update_dispute(owner.id, uploaded)
    return {"status": True, "message": "Uploaded", "data": {"fileName": file_name, "size": size}}


# --- Paystack's endpoints -----------------------------------------------------------------


@paystack_router.get("/dispute")
async def list_disputes(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.store.count_call("disputes")
    require_key(request, sandbox)
    query = request.query_params
    wanted = RecordFilter.of(sandbox, query)
    status = query.get("status")
    matches = [
        dispute
        for dispute in sorted(sandbox.store.disputes.values(), key=lambda d: d.id, reverse=True)
        if wanted.keeps(dispute.created_at, dispute.reference)
        and (not status or dispute.status == status)
    ]
    return offset_page(
        "Disputes retrieved",
        [dispute_view(sandbox, dispute) for dispute in matches],
        positive_int(query.get("perPage"), DEFAULT_PER_PAGE),
        positive_int(query.get("page"), 1),
    )


# Declared before /dispute/{id} so "transaction" is never taken for an id.
@paystack_router.get("/dispute/transaction/{transaction_id}")
async def transaction_dispute(
    transaction_id: str, request: Request, sandbox: SandboxDep
) -> dict[str, Any]:
    """The latest dispute of a transaction."""
    sandbox.store.count_call("disputes")
    require_key(request, sandbox)
    tx = find_transaction(sandbox, transaction_id)
    disputes = [d for d in sandbox.store.disputes.values() if d.reference == tx.reference]
    if not disputes:
        raise _not_found()
    latest = max(disputes, key=lambda d: d.id)
    return {
        "status": True,
        "message": "Dispute retrieved successfully",
        "data": dispute_view(sandbox, latest),
    }


@paystack_router.get("/dispute/{dispute_id}")
async def fetch_dispute(dispute_id: str, request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.store.count_call("disputes")
    require_key(request, sandbox)
    dispute = _dispute(sandbox, dispute_id)
    return {"status": True, "message": "Dispute retrieved", "data": dispute_view(sandbox, dispute)}


@paystack_router.get("/dispute/{dispute_id}/upload_url")
async def upload_url(dispute_id: str, request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    require_key(request, sandbox)
    dispute = _dispute(sandbox, dispute_id)
    wanted = request.query_params.get("upload_filename") or "evidence"
    extension = wanted.rsplit(".", 1)[1] if "." in wanted else "pdf"
    file_name = f"{random_code(20)}.{extension[:8]}"

    def issued(held: Dispute) -> None:
        held.upload_names.append(file_name)

    await sandbox.store.update_dispute(dispute.id, issued)
    return {
        "status": True,
        "message": "Upload url generated",
        "data": {
            "signedUrl": f"{sandbox.settings.public_url}/_sandbox/uploads/{file_name}",
            "fileName": file_name,
        },
    }


@paystack_router.put("/dispute/{dispute_id}/resolve")
async def resolve(dispute_id: str, request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    """The merchant's answer: accepted (with a refund of `refund_amount`, made now) or
    declined (with evidence uploaded); `charge.dispute.resolve` follows."""
    require_key(request, sandbox)
    dispute = _dispute(sandbox, dispute_id)
    params = await read_params(request)
    if params is None:
        raise validation_error("Invalid request body, send JSON or form data")
    resolution = params.get("resolution")
    if resolution not in RESOLUTIONS:
        raise validation_error("resolution must be merchant-accepted or declined")
    message = params.get("message")
    if not isinstance(message, str) or not message.strip():
        raise validation_error("message is required")
    refund_amount = params.get("refund_amount")
    if type(refund_amount) is not int or refund_amount < 0:
        raise validation_error("refund_amount is required: a whole number of subunits")
    file_name = params.get("uploaded_filename")
    if not isinstance(file_name, str) or file_name not in dispute.uploaded:
        raise validation_error("uploaded_filename must name a file uploaded to its upload URL")
    if not dispute.open:
        raise validation_error(f"Dispute has already been {dispute.status}")
    tx = sandbox.store.get(dispute.reference)
    assert tx is not None  # a dispute is only ever opened on a known transaction
    if resolution == "merchant-accepted" and refund_amount > sandbox.store.refundable(tx):
        raise validation_error("refund_amount is more than is left to refund")

    def resolved(held: Dispute) -> None:
        moment = now()
        held.status = "resolved"
        held.resolution = str(resolution)
        held.resolved_at = held.updated_at = moment
        held.refund_amount = refund_amount if resolution == "merchant-accepted" else 0
        held.history.append({"status": "resolved", "by": BY, "createdAt": iso(moment)})
        held.messages.append({"sender": BY, "body": message, "createdAt": iso(moment)})
        evidence = params.get("evidence")
        held.evidence = evidence if type(evidence) is int else None

    dispute = await sandbox.store.update_dispute(dispute.id, resolved)
    if resolution == "merchant-accepted" and refund_amount > 0:
        await open_refund(
            sandbox,
            tx,
            amount=refund_amount,
            merchant_note=f"Refund for dispute {dispute.id}",
            dispute_id=dispute.id,
        )
    send_dispute_webhook(sandbox, "charge.dispute.resolve", dispute)
    return {
        "status": True,
        "message": "Dispute successfully resolved",
        "data": dispute_view(sandbox, dispute),
    }


# --- views and lookups --------------------------------------------------------------------


def send_dispute_webhook(sandbox: Sandbox, event: str, dispute: Dispute) -> None:
    if sandbox.config.webhooks_enabled:
        payload = {"event": event, "data": dispute_view(sandbox, dispute)}
        sandbox.webhooks.send(payload, url=sandbox.config.webhook_url)


def dispute_view(sandbox: Sandbox, dispute: Dispute) -> dict[str, Any]:
    tx = sandbox.store.get(dispute.reference)
    return {
        "id": dispute.id,
        "refund_amount": dispute.refund_amount,
        "currency": dispute.currency,
        "status": dispute.status,
        "resolution": dispute.resolution,
        "domain": "test",
        "transaction": _transaction(tx) if tx is not None else None,
        "transaction_reference": None,
        "category": dispute.category,
        "customer": _customer(tx) if tx is not None else None,
        "bin": "408408",
        "last4": "4081",
        "dueAt": iso(dispute.due_at),
        "resolvedAt": iso(dispute.resolved_at),
        "evidence": dispute.evidence,
        "attachments": dispute.uploaded[-1] if dispute.uploaded else None,
        "note": None,
        "history": dispute.history,
        "messages": dispute.messages,
        "createdAt": iso(dispute.created_at),
        "updatedAt": iso(dispute.updated_at),
    }


def _transaction(tx: Transaction) -> dict[str, Any]:
    """As Paystack's dispute samples embed it: the customer is beside it, not in it."""
    view = webhook_view(tx)
    return {
        **{key: view[key] for key in view if key != "log"},
        "log": None,
        "customer": {"international_format_phone": None},
    }


def _customer(tx: Transaction) -> dict[str, Any]:
    return {
        "id": tx.customer.id,
        "first_name": None,
        "last_name": None,
        "email": tx.customer.email,
        "customer_code": tx.customer.customer_code,
        "phone": None,
        "metadata": None,
        "risk_action": "default",
        "international_format_phone": None,
    }


def _dispute(sandbox: Sandbox, dispute_id: str) -> Dispute:
    dispute = (
        sandbox.store.disputes.get(int(dispute_id))
        if dispute_id.isascii() and dispute_id.isdigit()
        else None
    )
    if dispute is None:
        raise _not_found()
    return dispute


def _not_found() -> PaystackError:
    return PaystackError(404, "Dispute not found", error_type="validation_error", code="not_found")
