"""Database tables. The `invoices` table, its `refunds` and `disputes` are a projection of
the invoice workflows, written only by the `record_invoice` activity (db/projection.py);
`webhook_deliveries` is the webhook inbox's audit log and relay queue (inbox/store.py);
`invoice_timeline` is everything that happened to an invoice (db/timeline.py); the
merchants' endpoints, the events sent to them and the customers' emails are outbound/'s."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
)
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
    success_url: str | None = Field(default=None, sa_column=Column(Text))
    cancel_url: str | None = Field(default=None, sa_column=Column(Text))
    send_invoice_email: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, default=False)
    )
    amount_refunded: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0")
    )


class InvoiceRefund(SQLModel, table=True):
    """A refund of an invoice's payment: part of the invoice's projection, written with it
    by its workflow only (db/projection.py)."""

    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_invoice_id_created_at", "invoice_id", "created_at"),
        Index("ix_refunds_paystack_refund_id", "paystack_refund_id"),
        Index("ix_refunds_status", "status"),
    )

    id: str = Field(primary_key=True, max_length=27)
    invoice_id: str = Field(max_length=64)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    status: str = Field(max_length=20)
    initiated_by: str = Field(max_length=80)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    paystack_refund_id: int | None = Field(default=None, sa_column=Column(PaystackId()))
    paystack_transaction_id: int | None = Field(default=None, sa_column=Column(PaystackId()))
    failure_reason: str | None = Field(default=None, sa_column=Column(Text))
    idempotency_key: str | None = None
    fingerprint: str = ""
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    revision: int = 0


class InvoiceDispute(SQLModel, table=True):
    """A card holder's dispute of an invoice's payment: part of the invoice's projection,
    written with it by its workflow only (db/projection.py)."""

    __tablename__ = "disputes"
    __table_args__ = (
        Index("ix_disputes_invoice_id", "invoice_id"),
        Index("ix_disputes_status", "status"),
    )

    id: int = Field(sa_column=Column(PaystackId(), primary_key=True))
    invoice_id: str = Field(max_length=64)
    status: str = Field(max_length=40)
    category: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    due_at: datetime | None = utc_column(nullable=True)
    resolution: str | None = Field(default=None, max_length=40)
    refund_amount: int | None = Field(default=None, sa_column=Column(BigInteger))
    currency: str | None = Field(default=None, max_length=3)
    overdue: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    updated_at: datetime = utc_column()
    revision: int = 0


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


class InvoiceTimelineEntry(SQLModel, table=True):
    """One thing that happened to an invoice: GET /invoices/{id}/events, oldest first."""

    __tablename__ = "invoice_timeline"
    __table_args__ = (Index("ix_invoice_timeline_invoice_at", "invoice_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: str = Field(max_length=64)
    at: datetime = utc_column()
    kind: str = Field(max_length=40)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class WebhookEndpoint(SQLModel, table=True):
    """A merchant's URL that receives the events of its caller's invoices."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_caller", "caller", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    caller: str = Field(max_length=64)
    url: str = Field(sa_column=Column(Text, nullable=False))
    # The event types it receives; empty: every type.
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text))
    enabled: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    disabled_reason: str | None = None
    # Signing secrets, encrypted (outbound/secrets.py); the previous one signs too until
    # it expires, so a receiver can roll its secret over without losing events.
    secret: str = Field(sa_column=Column(Text, nullable=False))
    previous_secret: str | None = Field(default=None, sa_column=Column(Text))
    previous_secret_expires_at: datetime | None = utc_column(nullable=True)
    # Since when every delivery to it has failed (None: the last one succeeded).
    failing_since: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class OutboundEvent(SQLModel, table=True):
    """An event as sent: one id and one body for every attempt and redelivery."""

    __tablename__ = "outbound_events"
    __table_args__ = (Index("ix_outbound_events_invoice_id", "invoice_id"),)

    id: str = Field(primary_key=True, max_length=100)
    type: str = Field(max_length=64)
    caller: str = Field(max_length=64)
    invoice_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = utc_column()
    # The JSON body, exactly as every attempt sends it.
    payload: str = Field(sa_column=Column(Text, nullable=False))


class EventAttempt(SQLModel, table=True):
    """One attempt to deliver one event to one endpoint."""

    __tablename__ = "event_attempts"
    __table_args__ = (
        Index("ix_event_attempts_endpoint_attempted_at", "endpoint_id", "attempted_at"),
        Index("ix_event_attempts_event_id", "event_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=100)
    endpoint_id: str = Field(max_length=40)
    attempt: int
    attempted_at: datetime = utc_column()
    # delivered, failed (retried at next_attempt_at), gave_up, or endpoint_disabled.
    outcome: str = Field(max_length=20)
    status_code: int | None = None
    latency_ms: float = Field(sa_column=Column(Float, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text))
    next_attempt_at: datetime | None = utc_column(nullable=True)


class EventDelivery(SQLModel, table=True):
    """One event owed to one endpoint: written with the event, in the transaction of the
    change it tells (outbound/outbox.py); due at `due_at` while `pending`. A delivery loop
    claims a due row by moving `due_at` a lease ahead, and after each attempt sets it to
    the next attempt's time, or ends the row."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        Index("ix_event_deliveries_status_due_at", "status", "due_at"),
        Index("ix_event_deliveries_event_id", "event_id"),
        Index("ix_event_deliveries_endpoint_id", "endpoint_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=100)
    endpoint_id: str = Field(max_length=40)
    # pending, delivered, gave_up, or endpoint_disabled.
    status: str = Field(max_length=20)
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    due_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class PaystackLink(SQLModel, table=True):
    """A payment link Paystack gave for an invoice, kept by the activity that asked for it:
    a run whose workflow task was lost before it recorded the invoice finds the link here
    and uses it, instead of opening another transaction under the next reference."""

    __tablename__ = "paystack_links"

    invoice_id: str = Field(primary_key=True, max_length=64)
    reference: str = Field(max_length=100)
    authorization_url: str = Field(sa_column=Column(Text, nullable=False))
    access_code: str = Field(max_length=100)
    created_at: datetime = utc_column()


class RefundBankAccount(SQLModel, table=True):
    """A customer's bank account for one refund retry, sealed under the codec key: written
    by the API, read by the activity that sends it to Paystack, and deleted after Paystack's
    answer (and by the API once its request ends). It never enters Temporal's history."""

    __tablename__ = "refund_bank_accounts"

    id: str = Field(primary_key=True, max_length=40)
    refund_id: str = Field(max_length=64)
    sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = utc_column()


class CustomerEmail(SQLModel, table=True):
    """An email to an invoice's customer: at most one of each kind per invoice, written
    `pending` with the change that owes it, then sent by the delivery loop."""

    __tablename__ = "customer_emails"
    __table_args__ = (
        Index("ux_customer_emails_invoice_kind", "invoice_id", "kind", unique=True),
        Index("ix_customer_emails_status_due_at", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: str = Field(max_length=64)
    kind: str = Field(max_length=20)
    # pending, sent, or failed (refused for good, or not sent within the retry period).
    status: str = Field(default="sent", max_length=20)
    # Set when sent: the same on every attempt (outbound/mail.py's message_id_for).
    message_id: str | None = Field(default=None, max_length=255)
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    due_at: datetime | None = utc_column(nullable=True)
    created_at: datetime | None = utc_column(nullable=True)
    sent_at: datetime | None = utc_column(nullable=True)
    error: str | None = Field(default=None, sa_column=Column(Text))


class ReconciliationRun(SQLModel, table=True):
    """One sweep of a window of Paystack's books: what it saw and what it found."""

    __tablename__ = "reconciliation_runs"
    __table_args__ = (Index("ix_reconciliation_runs_started_at", "started_at"),)

    id: str = Field(primary_key=True, max_length=100)
    # scheduled, daily or on_demand.
    trigger: str = Field(max_length=20)
    window_from: datetime = utc_column()
    window_to: datetime = utc_column()
    # running, completed or failed.
    status: str = Field(max_length=20)
    started_at: datetime = utc_column()
    finished_at: datetime | None = utc_column(nullable=True)
    # Discrepancies seen by this run, by kind.
    counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Per currency: Paystack's volume, payrecon's, fees and net settled, in the subunit.
    totals: dict[str, dict[str, int]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    records_seen: int = 0
    records_matched: int = 0
    pages: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    requested_by: str | None = Field(default=None, max_length=64)


class PaystackTransaction(SQLModel, table=True):
    """A transaction as the last sweep saw it on Paystack's books; `settlement_id` is
    learned from the settlement's side (a transaction does not name its settlement)."""

    __tablename__ = "paystack_transactions"
    __table_args__ = (
        Index("ix_paystack_transactions_reference", "reference"),
        Index("ix_paystack_transactions_invoice_id", "invoice_id"),
        Index("ix_paystack_transactions_settlement_id", "settlement_id"),
    )

    id: int = Field(sa_column=Column(PaystackId(), primary_key=True))
    reference: str = Field(max_length=100)
    # The invoice its reference names, when it has the shape of ours.
    invoice_id: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=20)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    fees: int | None = Field(default=None, sa_column=Column(BigInteger))
    channel: str | None = Field(default=None, max_length=40)
    card_country: str | None = Field(default=None, max_length=2)
    created_at: datetime = utc_column()
    paid_at: datetime | None = utc_column(nullable=True)
    settlement_id: int | None = Field(default=None, sa_column=Column(PaystackId()))
    seen_at: datetime = utc_column()


class Settlement(SQLModel, table=True):
    """A payout from Paystack to the merchant's bank, as Paystack reports it."""

    __tablename__ = "settlements"
    __table_args__ = (Index("ix_settlements_settlement_date", "settlement_date"),)

    id: int = Field(sa_column=Column(PaystackId(), primary_key=True))
    status: str = Field(max_length=20)
    currency: str = Field(max_length=3)
    total_processed: int = Field(sa_column=Column(BigInteger, nullable=False))
    total_fees: int = Field(sa_column=Column(BigInteger, nullable=False))
    deductions: int = Field(sa_column=Column(BigInteger, nullable=False))
    total_amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    settlement_date: datetime = utc_column()
    paystack_updated_at: datetime | None = utc_column(nullable=True)
    # When a sweep last added up its transactions (at that `paystack_updated_at`).
    checked_at: datetime | None = utc_column(nullable=True)
    seen_at: datetime = utc_column()


class Discrepancy(SQLModel, table=True):
    """Something on Paystack's books and ours that does not agree: stored once per subject
    (`key`), open until a later run no longer sees it, a heal fixes it, or an operator
    resolves it."""

    __tablename__ = "discrepancies"
    __table_args__ = (
        Index("ux_discrepancies_key", "key", unique=True),
        Index("ix_discrepancies_status_kind", "status", "kind"),
        Index("ix_discrepancies_invoice_id", "invoice_id"),
        Index("ix_discrepancies_first_seen_at", "first_seen_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    key: str = Field(max_length=200)
    kind: str = Field(max_length=40)
    status: str = Field(max_length=20)
    invoice_id: str | None = Field(default=None, max_length=64)
    paystack_reference: str | None = Field(default=None, max_length=100)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # When the record it is about was made on Paystack's books: a run whose window covers
    # this moment and no longer sees the discrepancy resolves it.
    record_at: datetime = utc_column()
    first_seen_at: datetime = utc_column()
    last_seen_at: datetime = utc_column()
    first_run_id: str = Field(max_length=100)
    last_run_id: str = Field(max_length=100)
    # The run that opened it last (first, or again after a run resolved it): that run tells
    # operators, once, however often its activity is retried.
    opened_run_id: str = Field(max_length=100)
    resolved_at: datetime | None = utc_column(nullable=True)
    # run:<id>, heal, or operator:<caller>; an operator's resolution is never undone.
    resolved_by: str | None = Field(default=None, max_length=120)
    resolution_note: str | None = Field(default=None, sa_column=Column(Text))


class DiscrepancyAudit(SQLModel, table=True):
    """Append-only: every change to a discrepancy, who made it and why."""

    __tablename__ = "discrepancy_audit"
    __table_args__ = (Index("ix_discrepancy_audit_discrepancy_id", "discrepancy_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    discrepancy_id: str = Field(max_length=40)
    at: datetime = utc_column()
    actor: str = Field(max_length=120)
    # opened, seen_again, healed, heal_tried, resolved, reopened.
    action: str = Field(max_length=20)
    note: str | None = Field(default=None, sa_column=Column(Text))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RunFinding(SQLModel, table=True):
    """Which discrepancies each run saw: its counts and its report."""

    __tablename__ = "reconciliation_run_findings"

    run_id: str = Field(primary_key=True, max_length=100)
    discrepancy_id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(max_length=40)
