"""One outbox for what payrecon tells: each event's deliveries, and each customer email,
written with the change that owes them and sent by the workers' delivery loops; and the
payment links Paystack gave, kept by the activity that asked.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_event_deliveries_status_due_at", "event_deliveries", ["status", "due_at"])
    op.create_index("ix_event_deliveries_event_id", "event_deliveries", ["event_id"])
    op.create_index("ix_event_deliveries_endpoint_id", "event_deliveries", ["endpoint_id"])
    with op.batch_alter_table("customer_emails") as table:
        # Rows before this revision were written once sent.
        table.add_column(
            sa.Column("status", sa.String(length=20), nullable=False, server_default="sent")
        )
        table.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("due_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("created_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("error", sa.Text(), nullable=True))
        table.alter_column("sent_at", existing_type=UTCDateTime(), nullable=True)
        table.alter_column("message_id", existing_type=sa.String(length=255), nullable=True)
    op.create_index("ix_customer_emails_status_due_at", "customer_emails", ["status", "due_at"])
    op.create_table(
        "paystack_links",
        sa.Column("invoice_id", sa.String(length=64), primary_key=True),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("authorization_url", sa.Text(), nullable=False),
        sa.Column("access_code", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("paystack_links")
    op.drop_index("ix_customer_emails_status_due_at", "customer_emails")
    op.execute("DELETE FROM customer_emails WHERE sent_at IS NULL")
    with op.batch_alter_table("customer_emails") as table:
        table.alter_column("sent_at", existing_type=UTCDateTime(), nullable=False)
        table.alter_column("message_id", existing_type=sa.String(length=255), nullable=False)
        table.drop_column("error")
        table.drop_column("created_at")
        table.drop_column("due_at")
        table.drop_column("attempts")
        table.drop_column("status")
    op.drop_table("event_deliveries")
