"""The Paystack endpoints: same paths, envelopes, messages and codes as api.paystack.co."""

from __future__ import annotations

import base64
import hmac
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request

from sandbox import api_faults
from sandbox.context import Sandbox, SandboxDep
from sandbox.errors import PaystackError, invalid_key, reference_not_found, validation_error
from sandbox.initialize import INVALID_AMOUNT, parse_initialize, raw_reference, read_params
from sandbox.store import DuplicateReference, Transaction
from sandbox.views import fetch_view, list_view, verify_view

DEFAULT_PER_PAGE = 50

router = APIRouter(tags=["paystack"])


def require_key(request: Request, sandbox: Sandbox) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = sandbox.settings.paystack_secret_key.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise invalid_key()


@router.post("/transaction/initialize")
async def initialize(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    params = await read_params(request)
    # Counted before any check: tests want to see refused calls too.
    sandbox.store.count_call("initialize", raw_reference(params))
    require_key(request, sandbox)
    call = sandbox.faults.plan_call("initialize", raw_reference(params))
    await api_faults.before_work(sandbox.faults, call)
    if params is None:
        raise validation_error("Invalid request body, send JSON or form data")
    new = parse_initialize(params)
    try:
        tx = await sandbox.store.create(new)
    except DuplicateReference:
        raise validation_error(
            "Duplicate Transaction Reference",
            "duplicate_reference",
            next_step="Try and create the Transaction or Charge with a new reference",
        ) from None
    if new.reference is None:
        sandbox.store.count_reference_call("initialize", tx.reference)
    await api_faults.after_work(sandbox.faults, call)
    return {
        "status": True,
        "message": "Authorization URL created",
        "data": {
            "authorization_url": f"{sandbox.settings.public_url}/checkout/{tx.access_code}",
            "access_code": tx.access_code,
            "reference": tx.reference,
        },
    }


# Declared before /transaction/{transaction_id} so "verify" is never taken for an id.
@router.get("/transaction/verify/{reference}")
async def verify(reference: str, request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.store.count_call("verify", reference)
    require_key(request, sandbox)
    await api_faults.before_work(sandbox.faults, sandbox.faults.plan_call("verify", reference))
    tx = sandbox.store.get(reference)
    if tx is None:
        raise reference_not_found()
    return {"status": True, "message": "Verification successful", "data": verify_view(tx)}


@router.get("/transaction")
@router.get("/transaction/", include_in_schema=False)
async def list_transactions(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.store.count_call("list")
    require_key(request, sandbox)
    query = request.query_params
    per_page = positive_int(query.get("perPage") or query.get("per_page"), DEFAULT_PER_PAGE)
    page = positive_int(query.get("page"), 1)
    amount = query.get("amount")
    if amount is not None and not (amount.isascii() and amount.isdigit()):
        raise validation_error(INVALID_AMOUNT)
    matches = list(
        _filter(
            sandbox.store.newest_first(),
            status=query.get("status") or None,
            since=parse_date(query.get("from"), "from", end_of_day=False),
            until=parse_date(query.get("to"), "to", end_of_day=True),
            amount=int(amount) if amount is not None else None,
            reference=query.get("reference") or None,
        )
    )
    if query.get("use_cursor") == "true":
        return _cursor_page(matches, per_page, query.get("next"), query.get("previous"))
    skipped = (page - 1) * per_page
    return {
        "status": True,
        "message": "Transactions retrieved",
        "data": [list_view(tx) for tx in matches[skipped : skipped + per_page]],
        "meta": {
            "total": len(matches),
            # Volume is money actually received, so only successful charges count.
            "total_volume": sum(tx.amount for tx in matches if tx.status == "success"),
            "skipped": skipped,
            "perPage": per_page,
            "page": page,
            "pageCount": math.ceil(len(matches) / per_page),
        },
    }


@router.get("/transaction/{transaction_id}")
async def fetch(transaction_id: str, request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.store.count_call("fetch")
    require_key(request, sandbox)
    tx = None
    if transaction_id.isascii() and transaction_id.isdigit():
        tx = sandbox.store.get_by_id(int(transaction_id))
    if tx is None:
        raise PaystackError(
            404,
            "Transaction not found",
            error_type="validation_error",
            code="transaction_not_found",
        )
    return {"status": True, "message": "Transaction retrieved", "data": fetch_view(tx)}


def _cursor_page(
    matches: list[Transaction], per_page: int, following: str | None, preceding: str | None
) -> dict[str, Any]:
    """Paystack's cursor mode: newest first, a page after (`next`) or before (`previous`)
    a transaction id; cursors stay put while new transactions arrive."""
    if following:
        after = _cursor_key(following)
        page = [tx for tx in matches if _key(tx) < after][:per_page]
    elif preceding:
        before = _cursor_key(preceding)
        page = [tx for tx in matches if _key(tx) > before][-per_page:]
    else:
        page = matches[:per_page]
    older = page and any(_key(tx) < _key(page[-1]) for tx in matches)
    newer = page and any(_key(tx) > _key(page[0]) for tx in matches)
    return {
        "status": True,
        "message": "Transactions retrieved",
        "data": [list_view(tx) for tx in page],
        "meta": {
            "next": _cursor(page[-1]) if older else None,
            "previous": _cursor(page[0]) if newer else None,
            "perPage": per_page,
        },
    }


def _key(tx: Transaction) -> tuple[datetime, int]:
    """The list's order: by creation time, then id (a seeded transaction may be older
    than its id says)."""
    return tx.created_at, tx.id


def _cursor(tx: Transaction) -> str:
    return base64.urlsafe_b64encode(f"{tx.created_at.isoformat()}|{tx.id}".encode()).decode()


def _cursor_key(cursor: str) -> tuple[datetime, int]:
    try:
        moment, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        if value.isdigit():
            return datetime.fromisoformat(moment), int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise validation_error("Invalid cursor")


def positive_int(value: str | None, default: int) -> int:
    # Paystack falls back to its defaults rather than refusing odd paging values.
    if value is None or not (value.isascii() and value.isdigit()) or int(value) < 1:
        return default
    return int(value)


def parse_date(value: str | None, name: str, *, end_of_day: bool) -> datetime | None:
    """ISO date or datetime; a bare `to` date includes that whole day."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise validation_error(f"Invalid date passed for '{name}'") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end_of_day and "T" not in value and " " not in value:
        moment += timedelta(days=1, microseconds=-1)
    return moment


def _filter(
    transactions: Iterable[Transaction],
    *,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    amount: int | None,
    reference: str | None,
) -> Iterable[Transaction]:
    for tx in transactions:
        if status is not None and tx.status != status:
            continue
        if since is not None and tx.created_at < since:
            continue
        if until is not None and tx.created_at > until:
            continue
        if amount is not None and tx.amount != amount:
            continue
        if reference is not None and tx.reference != reference:
            continue
        yield tx
