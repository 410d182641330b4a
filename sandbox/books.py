"""Paystack's books beyond one checkout: payments no invoice asked for (a payment page),
reversals, and settlements (the day's successful payments paid out to the merchant, less
fees), with Paystack's `GET /settlement` routes and the test controls that make them."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request, status
from pydantic import BaseModel, EmailStr, Field, field_validator

from sandbox.context import SandboxDep
from sandbox.errors import PaystackError, reference_not_found, validation_error
from sandbox.initialize import CURRENCY_MINIMUMS
from sandbox.payments import ACCOUNT_COUNTRY, card_authorization, fees_for, send_charge_success
from sandbox.paystack_api import DEFAULT_PER_PAGE, parse_date, positive_int, require_key
from sandbox.store import (
    DuplicateReference,
    NewTransaction,
    Settlement,
    Transaction,
    TransactionNotFound,
    now,
)
from sandbox.views import iso, list_view, offset_page, verify_view

paystack_router = APIRouter(tags=["paystack"])
control_router = APIRouter(prefix="/_sandbox", tags=["sandbox"])

INTEGRATION = 463_433
# What a settlement fault puts wrong, in the subunit.
FAULT_AMOUNT = 100


class PaymentPage(BaseModel):
    """A payment that no invoice asked for, as a Paystack payment page takes one."""

    amount: int = Field(gt=0)
    currency: str = "NGN"
    email: EmailStr
    reference: str | None = Field(None, pattern=r"^[A-Za-z0-9.=-]{1,100}$")
    card_country: str = Field(ACCOUNT_COUNTRY, pattern=r"^[A-Z]{2}$")

    @field_validator("currency")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value.upper() not in CURRENCY_MINIMUMS:
            raise ValueError(f"must be one of {', '.join(CURRENCY_MINIMUMS)}")
        return value.upper()


class SettlementRun(BaseModel):
    # One thing wrong on purpose in the first settlement made: its arithmetic, or one of
    # its transactions' fees (its totals then follow that fee, so only the fee is wrong).
    fault: Literal["arithmetic", "fee"] | None = None


@control_router.post("/transactions", status_code=status.HTTP_201_CREATED)
async def pay_without_invoice(body: PaymentPage, sandbox: SandboxDep) -> dict[str, Any]:
    """Creates a transaction already paid, and sends its signed charge.success."""
    new = NewTransaction(
        email=str(body.email), amount=body.amount, currency=body.currency, reference=body.reference
    )
    try:
        created = await sandbox.store.create(new)
    except DuplicateReference:
        raise validation_error("Duplicate Transaction Reference", "duplicate_reference") from None

    def paid(tx: Transaction) -> None:
        tx.status, tx.paid_at, tx.gateway_response = "success", now(), "Successful"
        tx.channel = "card"
        tx.authorization = card_authorization(body.card_country)
        tx.fees = fees_for(tx.amount, tx.currency, tx.channel, body.card_country)

    tx = await sandbox.store.update(created.reference, paid)
    if sandbox.config.webhooks_enabled:
        send_charge_success(sandbox, tx)
    return {"status": True, "message": "Transaction created", "data": verify_view(tx)}


class SeededTransaction(BaseModel):
    reference: str = Field(pattern=r"^[A-Za-z0-9.=-]{1,100}$")
    amount: int = Field(gt=0)
    currency: str = "NGN"
    email: EmailStr
    created_at: datetime
    status: Literal["success", "abandoned", "failed"] = "success"


class Seed(BaseModel):
    transactions: list[SeededTransaction] = Field(max_length=20_000)


@control_router.post("/transactions/bulk")
async def seed_transactions(body: Seed, sandbox: SandboxDep) -> dict[str, Any]:
    """Transactions written straight into the books (no webhooks), for benchmarks that
    need a window of many: a paid one is paid a second after it was made."""
    references = [seeded.reference for seeded in body.transactions]
    if len(set(references)) != len(references) or any(map(sandbox.store.get, references)):
        raise validation_error("Duplicate Transaction Reference", "duplicate_reference")
    for seeded in body.transactions:
        created = await sandbox.store.create(
            NewTransaction(
                email=str(seeded.email),
                amount=seeded.amount,
                currency=seeded.currency,
                reference=seeded.reference,
                created_at=seeded.created_at.astimezone(UTC),
            ),
            save=False,
        )
        created.status = seeded.status
        if seeded.status == "success":
            created.paid_at = created.created_at + timedelta(seconds=1)
            created.gateway_response = "Successful"
            created.authorization = card_authorization()
            created.fees = fees_for(created.amount, created.currency, "card", ACCOUNT_COUNTRY)
    await sandbox.store.save()
    return {"status": True, "data": {"created": len(body.transactions)}}


@control_router.post("/transactions/{reference}/reverse")
async def reverse(reference: str, sandbox: SandboxDep) -> dict[str, Any]:
    """A successful transaction reversed on Paystack's side, with no refund to explain it."""

    def reversed_(tx: Transaction) -> None:
        if tx.status != "success":
            raise PaystackError(409, "Only a successful transaction can be reversed")
        tx.status = "reversed"

    try:
        tx = await sandbox.store.update(reference, reversed_)
    except TransactionNotFound:
        raise reference_not_found() from None
    return {"status": True, "message": "Transaction reversed", "data": verify_view(tx)}


@control_router.post("/settlements/run")
async def run_settlements(
    sandbox: SandboxDep, body: Annotated[SettlementRun | None, Body()] = None
) -> dict[str, Any]:
    """Pays out every successful transaction not yet settled: one settlement per currency
    and UTC day of payment, dated the next day, fees by the pricing table."""
    store = sandbox.store
    groups: dict[tuple[str, datetime], list[Transaction]] = defaultdict(list)
    for tx in store.in_order(newest_first=False):
        if tx.status == "success" and tx.paid_at and tx.reference not in store.settled:
            day = datetime.combine(tx.paid_at.astimezone(UTC).date(), time(), UTC)
            groups[(tx.currency, day)].append(tx)
    made: list[Settlement] = []
    faults: list[dict[str, Any]] = []
    fault = body.fault if body else None
    for (currency, day), transactions in sorted(groups.items()):
        if fault == "fee" and not made:
            wrong = transactions[0]
            wrong.fees = (wrong.fees or 0) + FAULT_AMOUNT
            faults.append({"kind": "fee", "reference": wrong.reference})
        processed = sum(tx.amount for tx in transactions)
        fees = sum(tx.fees or 0 for tx in transactions)
        settlement = Settlement(
            id=0,
            currency=currency,
            total_processed=processed,
            total_fees=fees,
            deductions=None,
            total_amount=processed - fees,
            settlement_date=day + timedelta(days=1),
            created_at=now(),
            references=[tx.reference for tx in transactions],
        )
        if fault == "arithmetic" and not made:
            settlement.total_amount += FAULT_AMOUNT
            faults.append({"kind": "arithmetic"})
        made.append(settlement)
    await store.add_settlements(made)
    for entry in faults:
        entry["settlement_id"] = made[0].id
    return {
        "status": True,
        "message": "Settlements created",
        "data": [settlement_view(settlement) for settlement in made],
        "faults": faults,
    }


@paystack_router.get("/settlement")
async def list_settlements(request: Request, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.store.count_call("settlements")
    require_key(request, sandbox)
    query = request.query_params
    per_page = positive_int(query.get("perPage"), DEFAULT_PER_PAGE)
    page = positive_int(query.get("page"), 1)
    since = parse_date(query.get("from"), "from", end_of_day=False)
    until = parse_date(query.get("to"), "to", end_of_day=True)
    wanted_status = query.get("status")
    matches = [
        settlement
        for settlement in sorted(
            sandbox.store.settlements.values(), key=lambda s: s.id, reverse=True
        )
        if (since is None or settlement.settlement_date >= since)
        and (until is None or settlement.settlement_date <= until)
        and (not wanted_status or settlement.status == wanted_status)
        # The sandbox's merchant has no subaccounts.
        and not query.get("subaccount")
    ]
    return offset_page(
        "Settlements retrieved", [settlement_view(s) for s in matches], per_page, page
    )


@paystack_router.get("/settlement/{settlement_id}/transactions")
async def settlement_transactions(
    settlement_id: str, request: Request, sandbox: SandboxDep
) -> dict[str, Any]:
    sandbox.store.count_call("settlements")
    require_key(request, sandbox)
    settlement = (
        sandbox.store.settlements.get(int(settlement_id))
        if settlement_id.isascii() and settlement_id.isdigit()
        else None
    )
    if settlement is None:
        raise PaystackError(
            404, "Settlement not found", error_type="validation_error", code="not_found"
        )
    query = request.query_params
    per_page = positive_int(query.get("perPage"), DEFAULT_PER_PAGE)
    page = positive_int(query.get("page"), 1)
    transactions = [
        tx for reference in settlement.references if (tx := sandbox.store.get(reference))
    ]
    answer = offset_page(
        "Transactions retrieved", [list_view(tx) for tx in transactions], per_page, page
    )
    # As Paystack's sample: the volume in the main unit, not the subunit of `amount`.
    answer["meta"]["total_volume"] = sum(tx.amount for tx in transactions) // 100
    return answer


def settlement_view(settlement: Settlement) -> dict[str, Any]:
    return {
        "id": settlement.id,
        "domain": "test",
        "status": settlement.status,
        "currency": settlement.currency,
        "integration": INTEGRATION,
        "total_amount": settlement.total_amount,
        "effective_amount": settlement.total_amount,
        "total_fees": settlement.total_fees,
        "total_processed": settlement.total_processed,
        "deductions": settlement.deductions,
        "settlement_date": iso(settlement.settlement_date),
        "settled_by": None,
        "createdAt": iso(settlement.created_at),
        "updatedAt": iso(settlement.created_at),
    }
