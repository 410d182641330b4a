"""The checkout return: where Paystack sends the customer's browser after checkout
(PAYSTACK_CALLBACK_URL, `…/checkout/return?reference=…`).

No API key: it is the customer. It asks Paystack now through the invoice's workflow, then
sends the customer on: to the invoice's `success_url` once paid, to its `cancel_url` once
Paystack says the payment is not coming. While Paystack still says `ongoing` or `pending`
it keeps asking, for up to PAYRECON_CHECKOUT_WAIT_SECONDS, so a customer who paid seconds
ago is not sent to `cancel_url`. Only the URLs given at the invoice's creation are ever
redirected to; every other case is a small status page.
"""

from __future__ import annotations

import asyncio
import html
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from temporalio.client import RPCTimeoutOrCancelledError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.deps import EngineDep, SettingsDep, TemporalDep
from db import queries
from db.projection import snapshot_of
from domain.invoice import InvoiceSnapshot, InvoiceStatus, invoice_id_from_reference
from workflows.invoice import InvoiceWorkflow
from workflows.policies import VERIFY_NOW_INTERVAL
from workflows.starter import reach_invoice
from workflows.types import PaymentCheck

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/checkout", tags=["checkout"])

# What Paystack says of a payment under way: the customer may have paid a moment ago.
UNDER_WAY = frozenset({"ongoing", "pending", "processing", "queued"})
REFERENCE_PATTERN = r"^[A-Za-z0-9-]{1,64}(\.[0-9]{1,2})?$"
# One question to the workflow; past it the customer sees the status page.
CHECK_TIMEOUT_SECONDS = 15.0

PAGES = {
    "paid": ("Payment received", "Thank you: your payment is confirmed."),
    "needs_review": (
        "Payment received",
        "We have your payment and are checking it; you will hear from us shortly.",
    ),
    "checking": (
        "Confirming your payment",
        "Paystack has not confirmed your payment yet. This page shows the latest when you "
        "reload it.",
    ),
    "not_paid": ("Payment not completed", "Your payment was not completed."),
    "unknown": ("Payment not found", "We could not find this payment."),
}


@router.get(
    "/return",
    summary="The customer's return from Paystack's checkout",
    response_class=HTMLResponse,
    responses={
        200: {
            "description": "A status page: paid, being checked, not paid, or not found",
            "content": {"text/html": {}},
        },
        303: {"description": "To the invoice's success_url or cancel_url"},
        # Not the page's HTML: FastAPI's validation error, JSON as on every route.
        422: {
            "description": "No reference, or not one of ours in shape",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        },
    },
)
async def checkout_return(
    reference: Annotated[
        str,
        Query(pattern=REFERENCE_PATTERN, description="The Paystack reference Paystack adds"),
    ],
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalDep,
) -> Response:
    row = await run_in_threadpool(queries.get_invoice, engine, invoice_id_from_reference(reference))
    if row is None or reference not in (row.id, row.paystack_reference):
        return _page("unknown")
    invoice = snapshot_of(row)
    bound = log.bind(invoice_id=invoice.invoice_id)
    if invoice.status is not InvoiceStatus.PENDING:
        # Decided: its record answers, and nothing is asked of Paystack or Temporal (this
        # route needs no key; a completed invoice's workflow is never woken from here).
        bound.info("checkout.returned", status=invoice.status.value, paystack=None)
        return _where_to(invoice, settled=True)
    # Pending: its open workflow verifies at most once a VERIFY_NOW_INTERVAL, however many
    # returns (or a loop on one reference) ask.
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + settings.payrecon_checkout_wait_seconds
    while True:
        check = await _verify_now(temporal, settings, invoice)
        if check is None:  # the workflow could not be asked: never guess that it failed
            bound.warning("checkout.unconfirmed")
            return _where_to(invoice, settled=False)
        invoice = check.invoice
        waiting = invoice.status is InvoiceStatus.PENDING and check.paystack_status in UNDER_WAY
        if not waiting or loop.time() + VERIFY_NOW_INTERVAL.total_seconds() > give_up_at:
            bound.info(
                "checkout.returned", status=invoice.status.value, paystack=check.paystack_status
            )
            return _where_to(invoice, settled=not waiting)
        await asyncio.sleep(VERIFY_NOW_INTERVAL.total_seconds())


async def _verify_now(
    temporal: TemporalDep, settings: SettingsDep, invoice: InvoiceSnapshot
) -> PaymentCheck | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            check: PaymentCheck = await reach_invoice(
                temporal, settings, invoice, InvoiceWorkflow.verify_now
            )
            return check
    except (
        TimeoutError,
        RPCError,
        RPCTimeoutOrCancelledError,
        RuntimeError,
        WorkflowUpdateFailedError,
    ) as error:
        log.warning("checkout.check_failed", invoice_id=invoice.invoice_id, error=str(error))
        return None


def _where_to(invoice: InvoiceSnapshot, *, settled: bool) -> Response:
    """`settled`: Paystack answered, and not that a payment is under way."""
    if invoice.status is InvoiceStatus.PAID:
        return _redirect(invoice.success_url) or _page("paid")
    if invoice.status is InvoiceStatus.NEEDS_REVIEW:
        return _page("needs_review")
    if settled or invoice.status in (InvoiceStatus.EXPIRED, InvoiceStatus.CANCELLED):
        return _redirect(invoice.cancel_url) or _page("not_paid")
    return _page("checking")


def _redirect(url: str | None) -> Response | None:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER) if url else None


def _page(kind: str) -> HTMLResponse:
    title, message = (html.escape(text) for text in PAGES[kind])
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head>"
        '<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto">'
        f"<h1>{title}</h1><p>{message}</p></body></html>"
    )
    return HTMLResponse(body, headers={"cache-control": "no-store"})
