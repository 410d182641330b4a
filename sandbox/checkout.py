"""The hosted checkout page a customer lands on from `authorization_url`.

Plain HTML forms, no JavaScript: Pay and Decline settle the transaction the same
way POST /_sandbox/transactions/{reference}/pay does.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sandbox.context import Sandbox, SandboxDep
from sandbox.payments import AlreadySettled, Outcome, settle
from sandbox.store import Transaction, TransactionNotFound
from sandbox.views import format_amount

router = APIRouter(prefix="/checkout", tags=["checkout"])

_STYLE = """
body { font-family: system-ui, sans-serif; background: #f4f6f8; color: #1f2933; margin: 0; }
main { max-width: 380px; margin: 8vh auto; background: #fff; border-radius: 12px;
       padding: 28px 32px; box-shadow: 0 4px 18px rgba(0, 0, 0, .08); }
h1 { font-size: 1.1rem; margin: 0 0 4px; color: #52606d; font-weight: 500; }
.amount { font-size: 2rem; font-weight: 700; margin: 0 0 20px; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 6px 14px; margin: 0 0 24px; }
dt { color: #7b8794; } dd { margin: 0; word-break: break-all; }
form { display: inline; }
button { font-size: 1rem; padding: 10px 22px; border: 0; border-radius: 8px; cursor: pointer; }
.pay { background: #0ba360; color: #fff; } .decline { background: #e4e7eb; color: #1f2933; }
.note { color: #7b8794; font-size: .85rem; margin-top: 20px; }
"""


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status_code)


def _summary(tx: Transaction) -> str:
    return (
        "<h1>Paystack sandbox checkout</h1>"
        f"<p class='amount'>{escape(format_amount(tx.requested_amount, tx.currency))}</p>"
        "<dl>"
        f"<dt>Email</dt><dd>{escape(tx.customer.email)}</dd>"
        f"<dt>Reference</dt><dd>{escape(tx.reference)}</dd>"
        f"<dt>Status</dt><dd>{escape(tx.status)}</dd>"
        "</dl>"
    )


def _not_found() -> HTMLResponse:
    return _page(
        "Checkout not found",
        "<h1>Checkout not found</h1><p>This payment link is unknown or has been reset.</p>",
        404,
    )


def _find(sandbox: Sandbox, access_code: str) -> Transaction | None:
    return sandbox.store.get_by_access_code(access_code)


@router.get("/{access_code}", response_class=HTMLResponse)
async def checkout_page(access_code: str, sandbox: SandboxDep) -> HTMLResponse:
    tx = _find(sandbox, access_code)
    if tx is None:
        return _not_found()
    if tx.status == "success":
        return _page("Already paid", _summary(tx) + "<p>This transaction has been paid.</p>")
    code = escape(access_code)
    actions = (
        f"<form method='post' action='/checkout/{code}/pay'>"
        "<button class='pay' type='submit'>Pay</button></form> "
        f"<form method='post' action='/checkout/{code}/decline'>"
        "<button class='decline' type='submit'>Decline</button></form>"
        "<p class='note'>Sandbox: no card needed, no money moves.</p>"
    )
    return _page("Pay " + format_amount(tx.requested_amount, tx.currency), _summary(tx) + actions)


@router.post("/{access_code}/pay", response_class=HTMLResponse)
async def checkout_pay(access_code: str, request: Request, sandbox: SandboxDep) -> Response:
    return await _settle(access_code, "success", request, sandbox)


@router.post("/{access_code}/decline", response_class=HTMLResponse)
async def checkout_decline(access_code: str, request: Request, sandbox: SandboxDep) -> Response:
    return await _settle(access_code, "failed", request, sandbox)


async def _settle(
    access_code: str, outcome: Outcome, request: Request, sandbox: Sandbox
) -> Response:
    tx = _find(sandbox, access_code)
    if tx is None:
        return _not_found()
    try:
        tx = await settle(
            sandbox,
            tx.reference,
            outcome,
            ip_address=request.client.host if request.client else None,
        )
    except TransactionNotFound:
        return _not_found()
    except AlreadySettled:
        return _page(
            "Already paid", _summary(tx) + "<p>This transaction was already paid.</p>", 409
        )
    if outcome == "success" and tx.callback_url:
        return RedirectResponse(_callback(tx.callback_url, tx.reference), status_code=303)
    if outcome == "success":
        return _page("Payment successful", _summary(tx) + "<p>Payment successful.</p>")
    retry = f"<p><a href='/checkout/{escape(access_code)}'>Try again</a></p>"
    return _page("Payment declined", _summary(tx) + "<p>Payment declined.</p>" + retry)


def _callback(callback_url: str, reference: str) -> str:
    # Paystack appends both names for the reference to the callback URL.
    separator = "&" if urlsplit(callback_url).query else "?"
    return callback_url + separator + urlencode({"trxref": reference, "reference": reference})
