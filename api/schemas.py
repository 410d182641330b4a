"""Request and response bodies of the REST API."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain.disputes import DisputeResolution, DisputeStatus
from domain.invoice import Currency, InvoiceStatus, ReviewReason

MAX_DUE_IN_SECONDS = 365 * 24 * 3600
# Ten billion in major units: far above any invoice, far below a 64-bit integer.
MAX_AMOUNT = 10**12
MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 10
MAX_URL_LENGTH = 2048
_http_url = TypeAdapter(HttpUrl)


def _checked_url(value: str | None) -> str | None:
    """An absolute http(s) URL, as a browser would be sent to it (host lowercased, the
    rest percent-encoded): the checkout return redirects the customer there."""
    if value is None:
        return None
    url = str(_http_url.validate_python(value))
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters once encoded")
    return url


ReturnUrl = Annotated[str | None, Field(max_length=MAX_URL_LENGTH), AfterValidator(_checked_url)]


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Any]]


# What every route that reads a JSON body may also answer.
# Every route of an API key's: the key, and the caller's request rate.
AUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid API key"},
    429: {
        "model": ErrorBody,
        "description": "Over this caller's request rate (PAYRECON_CALLER_RATE_LIMIT); "
        "Retry-After says in how many seconds to try again",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
WITH_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be read as JSON"},
    413: {"model": ErrorBody, "description": "The body is over 64 KiB"},
}


class CreateInvoice(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_email": "ada@example.com",
                    "amount": 250000,
                    "currency": "NGN",
                    "description": "Order 1042",
                    "due_in_seconds": 86400,
                    "metadata": {"order_id": "1042"},
                    "success_url": "https://shop.example/orders/1042/paid",
                    "cancel_url": "https://shop.example/orders/1042",
                    "send_invoice_email": True,
                }
            ]
        },
    )

    customer_email: EmailStr
    currency: Currency
    amount: Annotated[
        int,
        Field(
            strict=True,
            gt=0,
            le=MAX_AMOUNT,
            description="In the currency's subunit: kobo (NGN), pesewas (GHS), cents (ZAR, "
            "KES, USD); at least Paystack's minimum for the currency",
        ),
    ]
    description: Annotated[str | None, Field(max_length=500)] = None
    due_in_seconds: Annotated[int | None, Field(strict=True, ge=1, le=MAX_DUE_IN_SECONDS)] = None
    due_at: AwareDatetime | None = None
    metadata: dict[str, Any] | None = None
    success_url: ReturnUrl = Field(
        default=None, description="Where the checkout return sends the customer once paid"
    )
    cancel_url: ReturnUrl = Field(
        default=None,
        description="Where the checkout return sends the customer when the payment is not coming",
    )
    send_invoice_email: bool = Field(
        default=False,
        strict=True,
        description="Email the customer the invoice, with its payment link, once created",
    )

    @field_validator("metadata")
    @classmethod
    def _plain_metadata(cls, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        if metadata is not None and (problem := _metadata_problem(metadata, depth=1)):
            raise ValueError(problem)
        return metadata

    @field_validator("amount")
    @classmethod
    def _at_least_paystacks_minimum(cls, amount: int, info: ValidationInfo) -> int:
        currency = info.data.get("currency")  # absent when the currency itself is invalid
        if isinstance(currency, Currency) and amount < currency.minimum_amount:
            major = currency.minimum_amount / 100
            raise ValueError(
                f"must be at least {currency.minimum_amount} {currency.subunit} "
                f"({currency.value} {major:.2f}), Paystack's minimum"
            )
        return amount

    @model_validator(mode="after")
    def _check(self) -> CreateInvoice:
        if self.due_in_seconds is not None and self.due_at is not None:
            raise ValueError("give due_in_seconds or due_at, not both")
        if self.due_at is not None:
            now = datetime.now(UTC)
            if self.due_at <= now:
                raise ValueError("due_at must be in the future")
            if self.due_at > now + timedelta(seconds=MAX_DUE_IN_SECONDS):
                raise ValueError("due_at must be within 365 days")
        if self.metadata is not None and len(json.dumps(self.metadata)) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata must serialise to at most {MAX_METADATA_BYTES} bytes")
        return self

    def resolve_due_at(self, now: datetime, default_due_in: float) -> datetime:
        if self.due_at is not None:
            return self.due_at.astimezone(UTC)
        due_in = self.due_in_seconds if self.due_in_seconds is not None else default_due_in
        return now + timedelta(seconds=due_in)

    def redirect_refusals(self, allowed_hosts: frozenset[str]) -> list[dict[str, Any]]:
        """A 422 problem for each return URL whose host is not one of the caller's
        (PAYRECON_REDIRECT_HOSTS): payrecon would send customers there, so never to just
        any host."""
        problems = []
        for name in ("success_url", "cancel_url"):
            url = getattr(self, name)
            host = (urlsplit(url).hostname or "") if url else None
            if host is not None and host.rstrip(".") not in allowed_hosts:
                problems.append(
                    {
                        "type": "value_error",
                        "loc": ["body", name],
                        "msg": f"{host!r} is not one of this caller's redirect hosts "
                        "(PAYRECON_REDIRECT_HOSTS)",
                        "input": url,
                    }
                )
        return problems

    def fingerprint(self) -> str:
        """A digest of the body as sent, to tell a repeat from a different request."""
        # `send_invoice_email: false` is the body without it: a body from before the field
        # keeps its digest, so its retry is still a repeat.
        skipped = None if self.send_invoice_email else {"send_invoice_email"}
        canonical = json.dumps(
            self.model_dump(mode="json", exclude_none=True, exclude=skipped),
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def _metadata_problem(value: Any, depth: int) -> str | None:
    """Why metadata cannot be stored and handed back as JSON, if it cannot."""
    if depth > MAX_METADATA_DEPTH:
        return f"must not nest deeper than {MAX_METADATA_DEPTH} levels"
    if isinstance(value, float) and not math.isfinite(value):
        return "must hold finite numbers only (no NaN or Infinity)"
    inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return next((p for item in inner if (p := _metadata_problem(item, depth + 1))), None)


class DisputeOut(BaseModel):
    """A dispute of the invoice's payment, with Paystack's values written with underscores."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 358950,
                    "status": "awaiting_merchant_feedback",
                    "category": "chargeback",
                    "reason": "Customer complained about debit without value",
                    "due_at": "2026-11-25T18:00:00Z",
                    "resolution": None,
                    "refund_amount": 250000,
                    "overdue": False,
                    "updated_at": "2026-11-24T13:46:57Z",
                }
            ]
        },
    )

    id: int = Field(validation_alias=AliasChoices("dispute_id", "id"))
    status: DisputeStatus = Field(
        description="awaiting_merchant_feedback, awaiting_bank_feedback, pending, resolved, "
        "archived"
    )
    category: str | None
    reason: str | None
    due_at: datetime | None
    resolution: DisputeResolution | None = Field(
        description="merchant_accepted, declined, auto_accepted"
    )
    refund_amount: int | None = Field(description="In the currency's subunit")
    overdue: bool = Field(description="Still open after its due date: an operator must answer")
    updated_at: datetime


class InvoiceOut(BaseModel):
    """The invoice as the API shows it. Validated from either of its other shapes, the
    workflow's `InvoiceSnapshot` or the database's `Invoice` row: the names that differ
    are aliases here, so a field added to both is one more line below."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "inv-5f0c8a1e2b3d4c5e6f7a8b9c",
                    "status": "pending",
                    "amount": 250000,
                    "currency": "NGN",
                    "customer_email": "ada@example.com",
                    "description": "Order 1042",
                    "metadata": {"order_id": "1042"},
                    "authorization_url": "https://checkout.paystack.com/0peioxfhpn",
                    "due_at": "2026-11-24T10:00:00Z",
                    "created_at": "2026-11-23T10:00:00Z",
                    "updated_at": "2026-11-23T10:00:00Z",
                    "paid_at": None,
                    "amount_paid": None,
                    "paystack_transaction_id": None,
                    "paystack_reference": "inv-5f0c8a1e2b3d4c5e6f7a8b9c",
                    "review_reason": None,
                    "revision": 1,
                    "success_url": "https://shop.example/orders/1042/paid",
                    "cancel_url": "https://shop.example/orders/1042",
                    "send_invoice_email": True,
                    "settlement_id": None,
                    "fees": None,
                    "net_amount": None,
                    "amount_refunded": 0,
                    "disputes": [],
                }
            ]
        },
    )

    id: str = Field(
        validation_alias=AliasChoices("invoice_id", "id"),
        description="The invoice id, also its Paystack reference",
    )
    status: InvoiceStatus
    amount: int = Field(description="In the currency's subunit")
    currency: str
    customer_email: str
    description: str | None
    # The table model's `metadata` is SQLAlchemy's own, so the row names it otherwise.
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("invoice_metadata", "metadata"))
    authorization_url: str | None
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    amount_paid: int | None
    paystack_transaction_id: int | None
    paystack_reference: str | None = Field(
        description="The Paystack reference: the id, or `<id>.2` if Paystack lost the first"
    )
    review_reason: ReviewReason | None
    revision: int = Field(
        description="Grows by one at every change: of two views of one invoice, the one "
        "with the higher revision is the newer"
    )
    success_url: str | None = None
    cancel_url: str | None = None
    send_invoice_email: bool = False
    # From Paystack's books, as the reconciliation sweep last saw them.
    settlement_id: int | None = Field(
        None, description="The Paystack settlement that paid this invoice out, once one has"
    )
    fees: int | None = Field(None, description="Paystack's fees on the payment, in the subunit")
    net_amount: int | None = Field(None, description="amount_paid less fees, in the subunit")
    amount_refunded: int = Field(
        0, description="What has gone back to the customer (processed refunds), in the subunit"
    )
    disputes: list[DisputeOut] = Field(
        default_factory=list, description="Card holders' disputes of the payment"
    )


class InvoicePage(BaseModel):
    items: list[InvoiceOut]
    total: int
    limit: int
    offset: int


class TimelineEntryOut(BaseModel):
    """One thing that happened to an invoice."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 41,
                    "at": "2026-11-23T10:02:11.204000Z",
                    "kind": "paystack_verified",
                    "detail": {
                        "reference": "inv-5f0c8a1e2b3d4c5e6f7a8b9c",
                        "found": True,
                        "paystack_status": "failed",
                        "gateway_response": "Declined",
                        "amount": 250000,
                        "currency": "NGN",
                        "transaction_id": 4100000000,
                    },
                }
            ]
        },
    )

    id: int
    at: datetime
    kind: str = Field(
        description="status_changed, webhook_received, paystack_verified, cancel_requested, "
        "event_delivery, email_sent (more may come: treat an unknown kind as information)"
    )
    detail: dict[str, Any] = Field(description="What the kind says happened")


class TimelinePage(BaseModel):
    """The invoice's timeline, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 40,
                            "at": "2026-11-23T10:00:00Z",
                            "kind": "status_changed",
                            "detail": {"status": "pending", "revision": 1, "review_reason": None},
                        },
                        {
                            "id": 52,
                            "at": "2026-11-23T10:04:09.871000Z",
                            "kind": "webhook_received",
                            "detail": {
                                "event": "charge.success",
                                "reference": "inv-5f0c8a1e2b3d4c5e6f7a8b9c",
                                "outcome": "queued",
                                "delivery_id": 17,
                            },
                        },
                    ],
                    "total": 5,
                    "limit": 2,
                    "offset": 0,
                }
            ]
        }
    )

    items: list[TimelineEntryOut]
    total: int
    limit: int
    offset: int


class PaystackEvent(BaseModel):
    """A Paystack webhook body, for the docs: the route checks the raw bytes it is sent."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "event": "charge.success",
                    "data": {
                        "id": 302961,
                        "reference": "inv-5f0c8a1e2b3d4c5e6f7a8b9c",
                        "status": "success",
                        "amount": 250000,
                        "currency": "NGN",
                        "paid_at": "2026-11-23T10:00:00.000Z",
                    },
                }
            ]
        },
    )

    event: str
    data: dict[str, Any]


class WebhookAck(BaseModel):
    outcome: str = Field(
        description=(
            "queued: committed, and relayed to the invoice's workflow right after; "
            "duplicate: the same delivery is already queued or relayed, kept for the audit log; "
            "unknown_reference: not one of our invoices, kept for the audit log; "
            "ignored: an event payrecon does not act on, kept for the audit log; "
            "with PAYRECON_WEBHOOK_ACK=signalled, signalled or workflow_closed instead of "
            "queued, and temporal_unavailable with a 503"
        ),
        examples=["queued"],
    )
