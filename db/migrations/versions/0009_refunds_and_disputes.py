"""Refunds and disputes: each invoice's refunds, what has gone back to the customer, and
the card holders' disputes of its payment.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.models import PaystackId, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(
            sa.Column("amount_refunded", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=27), primary_key=True),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("initiated_by", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("paystack_refund_id", PaystackId(), nullable=True),
        sa.Column("paystack_transaction_id", PaystackId(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_index("ix_refunds_invoice_id_created_at", "refunds", ["invoice_id", "created_at"])
    op.create_index("ix_refunds_paystack_refund_id", "refunds", ["paystack_refund_id"])
    op.create_index("ix_refunds_status", "refunds", ["status"])
    op.create_table(
        "disputes",
        sa.Column("id", PaystackId(), primary_key=True),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("resolution", sa.String(length=40), nullable=True),
        sa.Column("refund_amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_index("ix_disputes_invoice_id", "disputes", ["invoice_id"])
    op.create_index("ix_disputes_status", "disputes", ["status"])


def downgrade() -> None:
    op.drop_table("disputes")
    op.drop_table("refunds")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("amount_refunded")
