"""A delivery is named by the SHA-256 of its raw body (Paystack's retries are
byte-identical); the event-derived dedupe key, written but never read, goes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

deliveries = sa.table(
    "webhook_deliveries",
    sa.column("id", sa.Integer()),
    sa.column("raw_body", sa.Text()),
    sa.column("body_sha256", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as table:
        table.add_column(sa.Column("body_sha256", sa.String(length=64), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(deliveries.c.id, deliveries.c.raw_body))
    for delivery_id, raw_body in rows.fetchall():
        digest = hashlib.sha256(raw_body.encode("utf-8")).hexdigest()
        connection.execute(
            deliveries.update().where(deliveries.c.id == delivery_id).values(body_sha256=digest)
        )
    op.drop_index("ix_webhook_deliveries_dedupe_key", "webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as table:
        table.alter_column("body_sha256", existing_type=sa.String(length=64), nullable=False)
        table.drop_column("dedupe_key")
    op.create_index("ix_webhook_deliveries_body_sha256", "webhook_deliveries", ["body_sha256"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_body_sha256", "webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as table:
        table.add_column(sa.Column("dedupe_key", sa.String(), nullable=False, server_default=""))
        table.drop_column("body_sha256")
    op.create_index("ix_webhook_deliveries_dedupe_key", "webhook_deliveries", ["dedupe_key"])
