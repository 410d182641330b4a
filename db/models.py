"""Database tables. The `invoices` table is a projection of the invoice workflows, written
only by the `record_invoice` activity (db/projection.py); `webhook_deliveries` is the
webhook inbox's audit log and outbox (inbox/store.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, String, Text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from domain.invoice import DEFAULT_CALLER


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back timezone-aware datetimes (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PaystackId(TypeDecorator[int]):
    """Paystack's ids are unsigned 64-bit integers: above a signed BIGINT's range, and SQLite
    would round them to a float. Kept exactly, as decimal text."""

    impl = String(20)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Any) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> int | None:
        return None if value is None else int(value)


def utc_column(*, nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


class Invoice(SQLModel, table=True):
    __tablename__ = "invoices"
    # The API's queries: by status newest first, by caller, by customer, by idempotency key.
    __table_args__ = (
        Index("ix_invoices_status_created_at", "status", "created_at"),
        Index("ix_invoices_created_at", "created_at"),
        Index("ix_invoices_customer_email", "customer_email"),
        Index("ux_invoices_caller_idempotency_key", "caller", "idempotency_key", unique=True),
        Index("ix_invoices_caller_created_at", "caller", "created_at"),
        Index("ix_invoices_paystack_reference", "paystack_reference"),
    )

    id: str = Field(primary_key=True, max_length=64)
    workflow_id: str
    status: str
    customer_email: str
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    description: str | None = None
    invoice_metadata: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    idempotency_key: str | None = None
    fingerprint: str
    authorization_url: str | None = None
    access_code: str | None = None
    due_at: datetime = utc_column()
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    paid_at: datetime | None = utc_column(nullable=True)
    amount_paid: int | None = Field(default=None, sa_column=Column(BigInteger))
    paystack_transaction_id: int | None = Field(default=None, sa_column=Column(PaystackId()))
    paystack_reference: str | None = None
    review_reason: str | None = None
    revision: int = 0
    # The API key's name that created it: callers see their own invoices, operators all.
    caller: str = Field(default=DEFAULT_CALLER, max_length=64)


class InvoiceStatusChange(SQLModel, table=True):
    """One row per status an invoice entered: its state history."""

    __tablename__ = "invoice_status_changes"
    __table_args__ = (
        Index("ux_invoice_status_changes_invoice_revision", "invoice_id", "revision", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: str = Field(max_length=64)
    revision: int
    status: str
    review_reason: str | None = None
    changed_at: datetime = utc_column()


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_received_at", "received_at"),
        Index("ix_webhook_deliveries_reference", "reference"),
        Index("ix_webhook_deliveries_body_sha256", "body_sha256", unique=True),
        Index("ix_webhook_deliveries_outcome_relay_after", "outcome", "relay_after"),
    )

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = utc_column()
    event: str
    reference: str | None = None
    transaction_id: int | None = Field(default=None, sa_column=Column(PaystackId()))
    # Of the raw body, as received. Paystack's retries are byte-identical: one row a body,
    # and each repeat of it counted on that row (a replayed body adds no row).
    body_sha256: str = Field(max_length=64)
    repeats: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    last_repeated_at: datetime | None = utc_column(nullable=True)
    # The fields reconciliation reads, never a card token or the payer (inbox/redaction.py).
    redacted_body: str = Field(sa_column=Column(Text, nullable=False))
    outcome: str
    detail: str | None = None
    # While `queued`: not before this moment may a relayer claim it. Claiming moves it a
    # lease ahead; a failed attempt moves it to the next try. Cleared once relayed.
    relay_after: datetime | None = utc_column(nullable=True)
    relay_attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
