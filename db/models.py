"""Database tables. The `invoices` table is a projection of the invoice workflows, written
only by the `record_invoice` activity; `webhook_deliveries` is the audit log of every
correctly signed Paystack delivery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


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


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Invoice(SQLModel, table=True):
    __tablename__ = "invoices"

    id: str = Field(primary_key=True, max_length=64)
    workflow_id: str
    status: str = Field(index=True)
    customer_email: str = Field(index=True)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    description: str | None = None
    invoice_metadata: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    idempotency_key: str | None = Field(default=None, unique=True)
    fingerprint: str
    authorization_url: str | None = None
    access_code: str | None = None
    due_at: datetime = utc_column()
    created_at: datetime = utc_column(index=True)
    updated_at: datetime = utc_column()
    paid_at: datetime | None = utc_column(nullable=True)
    amount_paid: int | None = Field(default=None, sa_column=Column(BigInteger))
    paystack_transaction_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    paystack_reference: str | None = Field(default=None, index=True)
    review_reason: str | None = None
    revision: int = 0


class InvoiceStatusChange(SQLModel, table=True):
    """One row per status an invoice entered: its state history."""

    __tablename__ = "invoice_status_changes"
    __table_args__ = (UniqueConstraint("invoice_id", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: str = Field(index=True, max_length=64)
    revision: int
    status: str
    review_reason: str | None = None
    changed_at: datetime = utc_column()


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = utc_column(index=True)
    event: str
    reference: str | None = Field(default=None, index=True)
    transaction_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    dedupe_key: str = Field(index=True)
    raw_body: str = Field(sa_column=Column(Text, nullable=False))
    outcome: str
    detail: str | None = None
