"""Invoices, their state history and the webhook audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("customer_email", sa.String(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("authorization_url", sa.String(), nullable=True),
        sa.Column("access_code", sa.String(), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.Column("amount_paid", sa.BigInteger(), nullable=True),
        sa.Column("paystack_transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("paystack_reference", sa.String(), nullable=True),
        sa.Column("review_reason", sa.String(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_index("ix_invoices_status_created_at", "invoices", ["status", "created_at"])
    op.create_index("ix_invoices_created_at", "invoices", ["created_at"])
    op.create_index("ix_invoices_customer_email", "invoices", ["customer_email"])
    op.create_index("ux_invoices_idempotency_key", "invoices", ["idempotency_key"], unique=True)
    op.create_index("ix_invoices_paystack_reference", "invoices", ["paystack_reference"])

    op.create_table(
        "invoice_status_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("review_reason", sa.String(), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ux_invoice_status_changes_invoice_revision",
        "invoice_status_changes",
        ["invoice_id", "revision"],
        unique=True,
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("reference", sa.String(), nullable=True),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("dedupe_key", sa.String(), nullable=False),
        sa.Column("raw_body", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=True),
    )
    op.create_index("ix_webhook_deliveries_received_at", "webhook_deliveries", ["received_at"])
    op.create_index("ix_webhook_deliveries_reference", "webhook_deliveries", ["reference"])
    op.create_index("ix_webhook_deliveries_dedupe_key", "webhook_deliveries", ["dedupe_key"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("invoice_status_changes")
    op.drop_table("invoices")
