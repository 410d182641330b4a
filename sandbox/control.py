"""Sandbox-only endpoints under /_sandbox: drive payments, inspect state, change config.

No authentication: the sandbox is a local development and test tool.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AnyHttpUrl, BaseModel, Field, ValidationError, field_validator

from sandbox.context import SandboxDep
from sandbox.errors import PaystackError, reference_not_found
from sandbox.initialize import CURRENCY_MINIMUMS
from sandbox.payments import AlreadySettled, Outcome, send_charge_success, settle
from sandbox.store import CALL_KINDS, TransactionNotFound
from sandbox.views import verify_view

router = APIRouter(prefix="/_sandbox", tags=["sandbox"])


class PayRequest(BaseModel):
    outcome: Outcome
    amount: int | None = Field(None, gt=0)
    currency: str | None = None

    @field_validator("currency")
    @classmethod
    def _supported(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in CURRENCY_MINIMUMS:
            raise ValueError(f"must be one of {', '.join(CURRENCY_MINIMUMS)}")
        return value.upper()


class ResendRequest(BaseModel):
    copies: int = Field(1, ge=1, le=50)


class ConfigUpdate(BaseModel):
    webhooks_enabled: bool
    webhook_url: AnyHttpUrl | None = None


def already_settled() -> PaystackError:
    return PaystackError(409, "Transaction already settled")


@router.post("/transactions/{reference}/pay")
async def pay(
    reference: str, body: PayRequest, request: Request, sandbox: SandboxDep
) -> dict[str, Any]:
    try:
        tx = await settle(
            sandbox,
            reference,
            body.outcome,
            amount=body.amount,
            currency=body.currency,
            ip_address=request.client.host if request.client else None,
        )
    except TransactionNotFound:
        raise reference_not_found() from None
    except AlreadySettled:
        raise already_settled() from None
    return {"status": True, "message": "Transaction settled", "data": verify_view(tx)}


@router.post("/transactions/{reference}/webhook")
async def resend_webhook(
    reference: str,
    sandbox: SandboxDep,
    body: Annotated[ResendRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Sends charge.success again, even with webhooks disabled: it was asked for explicitly."""
    tx = sandbox.store.get(reference)
    if tx is None:
        raise reference_not_found()
    if tx.status != "success":
        raise PaystackError(409, "Transaction is not successful, Paystack sends no webhook")
    copies = body.copies if body else 1
    send_charge_success(sandbox, tx, copies=copies)
    return {
        "status": True,
        "message": "Webhook scheduled",
        "data": {"copies": copies, "url": sandbox.config.webhook_url},
    }


@router.get("/transactions/{reference}")
async def inspect_transaction(reference: str, sandbox: SandboxDep) -> dict[str, Any]:
    if not sandbox.store.known_reference(reference):
        raise reference_not_found()
    tx = sandbox.store.get(reference)
    return {
        "transaction": verify_view(tx) if tx else None,
        "calls": sandbox.store.calls_for(reference),
    }


@router.get("/stats")
async def stats(sandbox: SandboxDep) -> dict[str, Any]:
    store = sandbox.store
    return {
        "calls": {kind: store.calls[kind] for kind in CALL_KINDS},
        "transactions": len(store),
        "webhooks_sent": store.webhooks_sent,
        # Deliveries not finished yet: being sent, delayed, held back or waiting to retry.
        "webhooks_in_flight": sandbox.webhooks.in_flight,
        "faults": sandbox.faults.stats(),
    }


@router.get("/faults")
async def get_faults(sandbox: SandboxDep) -> dict[str, Any]:
    return sandbox.faults.config.model_dump(mode="json")


@router.post("/faults")
async def update_faults(
    changes: Annotated[dict[str, Any], Body()], sandbox: SandboxDep
) -> dict[str, Any]:
    """Merges a partial config into the current one; an invalid one is a 422, changing nothing."""
    try:
        config = sandbox.faults.update(changes)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    return config.model_dump(mode="json")


@router.delete("/faults")
async def clear_faults(sandbox: SandboxDep) -> dict[str, Any]:
    """Every fault off; counters stay until /_sandbox/reset."""
    sandbox.faults.turn_off()
    return sandbox.faults.config.model_dump(mode="json")


@router.get("/config")
async def get_config(sandbox: SandboxDep) -> dict[str, Any]:
    return sandbox.config.to_dict()


@router.post("/config")
async def set_config(update: ConfigUpdate, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.config.webhooks_enabled = update.webhooks_enabled
    if update.webhook_url is not None:
        sandbox.config.webhook_url = str(update.webhook_url)
    return sandbox.config.to_dict()


@router.get("/webhooks")
async def webhook_log(sandbox: SandboxDep, reference: str | None = None) -> list[dict[str, Any]]:
    """Delivery attempts, oldest first."""
    return [attempt.to_dict() for attempt in sandbox.store.deliveries_for(reference)]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/reset")
async def reset(sandbox: SandboxDep) -> dict[str, Any]:
    """Forgets transactions, counters and the webhook log, cancels deliveries under way;
    config goes back to settings, every fault off."""
    await sandbox.reset()
    return {"status": True, "message": "Sandbox reset"}
