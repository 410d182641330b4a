"""Telling others: the invoice's checkout URLs and email choice, its timeline, the
merchants' webhook endpoints, the events sent to them and their attempts, and the
customers' emails.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as table:
        table.add_column(sa.Column("success_url", sa.Text(), nullable=True))
        table.add_column(sa.Column("cancel_url", sa.Text(), nullable=True))
        table.add_column(
            sa.Column("send_invoice_email", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "invoice_timeline",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_invoice_timeline_invoice_at", "invoice_timeline", ["invoice_id", "at", "id"]
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.Boolean(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", UTCDateTime(), nullable=True),
        sa.Column("failing_since", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_webhook_endpoints_caller", "webhook_endpoints", ["caller", "created_at"])
    op.create_table(
        "outbound_events",
        sa.Column("id", sa.String(length=100), primary_key=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_index("ix_outbound_events_invoice_id", "outbound_events", ["invoice_id"])
    op.create_table(
        "event_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    )
    op.create_index(
        "ix_event_attempts_endpoint_attempted_at",
        "event_attempts",
        ["endpoint_id", "attempted_at"],
    )
    op.create_index("ix_event_attempts_event_id", "event_attempts", ["event_id"])
    op.create_table(
        "customer_emails",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ux_customer_emails_invoice_kind", "customer_emails", ["invoice_id", "kind"], unique=True
    )


def downgrade() -> None:
    op.drop_table("customer_emails")
    op.drop_table("event_attempts")
    op.drop_table("outbound_events")
    op.drop_table("webhook_endpoints")
    op.drop_table("invoice_timeline")
    with op.batch_alter_table("invoices") as table:
        table.drop_column("send_invoice_email")
        table.drop_column("cancel_url")
        table.drop_column("success_url")
