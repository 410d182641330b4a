"""Webhook deliveries become an outbox: a queued delivery is relayed to its workflow after
the API has answered Paystack.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as table:
        table.add_column(sa.Column("relay_after", UTCDateTime(), nullable=True))
        table.add_column(
            sa.Column("relay_attempts", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index(
        "ix_webhook_deliveries_outcome_relay_after",
        "webhook_deliveries",
        ["outcome", "relay_after"],
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_outcome_relay_after", "webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as table:
        table.drop_column("relay_attempts")
        table.drop_column("relay_after")
