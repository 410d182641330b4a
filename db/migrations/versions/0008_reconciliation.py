"""Reconciliation against Paystack's books: the runs of the sweep, the transactions and
settlements it saw, and the discrepancies it found with their audit trail.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.models import PaystackId, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.String(length=100), primary_key=True),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("window_from", UTCDateTime(), nullable=False),
        sa.Column("window_to", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("totals", sa.JSON(), nullable=False),
        sa.Column("records_seen", sa.Integer(), nullable=False),
        sa.Column("records_matched", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=True),
    )
    op.create_index("ix_reconciliation_runs_started_at", "reconciliation_runs", ["started_at"])
    op.create_table(
        "paystack_transactions",
        sa.Column("id", PaystackId(), primary_key=True),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fees", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=40), nullable=True),
        sa.Column("card_country", sa.String(length=2), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.Column("settlement_id", PaystackId(), nullable=True),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_paystack_transactions_reference", "paystack_transactions", ["reference"])
    op.create_index("ix_paystack_transactions_invoice_id", "paystack_transactions", ["invoice_id"])
    op.create_index(
        "ix_paystack_transactions_settlement_id", "paystack_transactions", ["settlement_id"]
    )
    op.create_table(
        "settlements",
        sa.Column("id", PaystackId(), primary_key=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_processed", sa.BigInteger(), nullable=False),
        sa.Column("total_fees", sa.BigInteger(), nullable=False),
        sa.Column("deductions", sa.BigInteger(), nullable=False),
        sa.Column("total_amount", sa.BigInteger(), nullable=False),
        sa.Column("settlement_date", UTCDateTime(), nullable=False),
        sa.Column("paystack_updated_at", UTCDateTime(), nullable=True),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_settlements_settlement_date", "settlements", ["settlement_date"])
    op.create_table(
        "discrepancies",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=True),
        sa.Column("paystack_reference", sa.String(length=100), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("record_at", UTCDateTime(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("first_run_id", sa.String(length=100), nullable=False),
        sa.Column("last_run_id", sa.String(length=100), nullable=False),
        sa.Column("opened_run_id", sa.String(length=100), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=120), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
    )
    op.create_index("ux_discrepancies_key", "discrepancies", ["key"], unique=True)
    op.create_index("ix_discrepancies_status_kind", "discrepancies", ["status", "kind"])
    op.create_index("ix_discrepancies_invoice_id", "discrepancies", ["invoice_id"])
    op.create_index("ix_discrepancies_first_seen_at", "discrepancies", ["first_seen_at"])
    op.create_table(
        "discrepancy_audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("discrepancy_id", sa.String(length=40), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_discrepancy_audit_discrepancy_id", "discrepancy_audit", ["discrepancy_id", "id"]
    )
    op.create_table(
        "reconciliation_run_findings",
        sa.Column("run_id", sa.String(length=100), primary_key=True),
        sa.Column("discrepancy_id", sa.String(length=40), primary_key=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reconciliation_run_findings")
    op.drop_table("discrepancy_audit")
    op.drop_table("discrepancies")
    op.drop_table("settlements")
    op.drop_table("paystack_transactions")
    op.drop_table("reconciliation_runs")
