"""The Paystack endpoints: same paths, envelopes, messages and codes as api.paystack.co."""

from __future__ import annotations

import base64
import hmac
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams

from sandbox import api_faults
from sandbox.context import Sandbox, SandboxDep
from sandbox.errors import PaystackError, invalid_key, reference_not_found, validation_error
from sandbox.initialize import INVALID_AMOUNT, parse_initialize, raw_reference, read_params
from sandbox.store import DuplicateReference, Store, Transaction, list_order
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
async def list_transactions(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.store.count_call("list")
    require_key(request, sandbox)
    query = request.query_params
    per_page = positive_int(query.get("perPage") or query.get("per_page"), DEFAULT_PER_PAGE)
    page = positive_int(query.get("page"), 1)
    listed = Listing(sandbox.store, query)
    if query.get("use_cursor") == "true":
        return _cursor_page(listed, per_page, query.get("next"), query.get("previous"))
    skipped = (page - 1) * per_page
    matches = list(listed.matches())
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


@router.get("/transaction/totals")
async def totals(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    """What was received in the window, per currency, and what is yet to be paid out."""
    sandbox.store.count_call("list")
    require_key(request, sandbox)
    query = request.query_params
    successful = [
        tx
        for tx in sandbox.store.in_order(
            since=parse_date(query.get("from"), "from", end_of_day=False),
            until=parse_date(query.get("to"), "to", end_of_day=True),
        )
        if tx.status == "success"
    ]
    volume: Counter[str] = Counter()
    pending: Counter[str] = Counter()
    for tx in successful:
        volume[tx.currency] += tx.amount
        if tx.reference not in sandbox.store.settled:
            pending[tx.currency] += tx.amount
    return {
        "status": True,
        "message": "Transaction totals",
        "data": {
            "total_transactions": len(successful),
            "total_volume": sum(volume.values()),
            "total_volume_by_currency": _by_currency(volume),
            "pending_transfers": sum(pending.values()),
            "pending_transfers_by_currency": _by_currency(pending),
        },
    }


def _by_currency(amounts: Counter[str]) -> list[dict[str, Any]]:
    return [
        {"currency": currency, "amount": amount} for currency, amount in sorted(amounts.items())
    ]


@router.get("/transaction/timeline/{id_or_reference}")
async def timeline(id_or_reference: str, request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    """The checkout's steps; a transaction no one tried to pay has none yet."""
    sandbox.store.count_call("fetch")
    require_key(request, sandbox)
    tx = find_transaction(sandbox, id_or_reference)
    log = tx.log or {
        "start_time": int(tx.created_at.timestamp()),
        "time_spent": 0,
        "attempts": 0,
        "errors": 0,
        "success": False,
        "mobile": False,
        "input": [],
        "history": [],
    }
    return {"status": True, "message": "Timeline retrieved", "data": log}


@router.get("/transaction/{transaction_id}")
async def fetch(transaction_id: str, request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.store.count_call("fetch")
    require_key(request, sandbox)
    tx = None
    if transaction_id.isascii() and transaction_id.isdigit():
        tx = sandbox.store.get_by_id(int(transaction_id))
    if tx is None:
        raise transaction_not_found()
    return {"status": True, "message": "Transaction retrieved", "data": fetch_view(tx)}


def find_transaction(sandbox: Sandbox, reference_or_id: str) -> Transaction:
    """A transaction by its reference or its id, as Paystack's endpoints take either."""
    tx = sandbox.store.get(reference_or_id)
    if tx is None and reference_or_id.isascii() and reference_or_id.isdigit():
        tx = sandbox.store.get_by_id(int(reference_or_id))
    if tx is None:
        raise transaction_not_found()
    return tx


@dataclass(frozen=True)
class RecordFilter:
    """The filters Paystack's refund and dispute lists share: a creation window (`from`,
    `to`) and a transaction (reference or id)."""

    since: datetime | None
    until: datetime | None
    reference: str | None

    @classmethod
    def of(cls, sandbox: Sandbox, query: QueryParams) -> RecordFilter:
        wanted = query.get("transaction")
        return cls(
            since=parse_date(query.get("from"), "from", end_of_day=False),
            until=parse_date(query.get("to"), "to", end_of_day=True),
            reference=find_transaction(sandbox, wanted).reference if wanted else None,
        )

    def keeps(self, created_at: datetime, reference: str) -> bool:
        return (
            (self.reference is None or reference == self.reference)
            and (self.since is None or created_at >= self.since)
            and (self.until is None or created_at <= self.until)
        )


def transaction_not_found() -> PaystackError:
    return PaystackError(
        404, "Transaction not found", error_type="validation_error", code="transaction_not_found"
    )


def _cursor_page(
    listed: Listing, per_page: int, following: str | None, preceding: str | None
) -> dict[str, Any]:
    """Paystack's cursor mode: newest first, a page after (`next`) or before (`previous`)
    a transaction; cursors stay put while new transactions arrive."""
    if preceding:
        page = list(
            islice(listed.matches(after=_cursor_key(preceding), newest_first=False), per_page)
        )
        page.reverse()
    else:
        after = _cursor_key(following) if following else None
        page = list(islice(listed.matches(after=after), per_page))
    older = page and listed.any(after=list_order(page[-1]))
    newer = page and listed.any(after=list_order(page[0]), newest_first=False)
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


class Listing:
    """`GET /transaction`'s filters over the store's ordered books: the window by range,
    the rest by test."""

    def __init__(self, store: Store, query: QueryParams) -> None:
        amount = query.get("amount")
        if amount is not None and not (amount.isascii() and amount.isdigit()):
            raise validation_error(INVALID_AMOUNT)
        customer = query.get("customer")
        if customer is not None and not (customer.isascii() and customer.isdigit()):
            raise validation_error("Invalid customer id")
        self.store = store
        self.since = parse_date(query.get("from"), "from", end_of_day=False)
        self.until = parse_date(query.get("to"), "to", end_of_day=True)
        self.status = query.get("status") or None
        self.amount = int(amount) if amount is not None else None
        self.customer = int(customer) if customer is not None else None
        self.reference = query.get("reference") or None
        # The sandbox takes no payments at POS terminals.
        self.terminal = query.get("terminalid") or None

    def matches(
        self, *, after: tuple[datetime, int] | None = None, newest_first: bool = True
    ) -> Iterator[Transaction]:
        window = self.store.in_order(
            since=self.since, until=self.until, after=after, newest_first=newest_first
        )
        return (tx for tx in window if self._wanted(tx))

    def any(self, *, after: tuple[datetime, int], newest_first: bool = True) -> bool:
        return next(self.matches(after=after, newest_first=newest_first), None) is not None

    def _wanted(self, tx: Transaction) -> bool:
        return (
            self.terminal is None
            and (self.status is None or tx.status == self.status)
            and (self.amount is None or tx.amount == self.amount)
            and (self.customer is None or tx.customer.id == self.customer)
            and (self.reference is None or tx.reference == self.reference)
        )
