"""Each invoice records the caller (API key name) that created it, and an Idempotency-Key
is unique per caller. Invoices made before keys had names belong to `default`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as table:
        table.add_column(
            sa.Column("caller", sa.String(length=64), nullable=False, server_default="default")
        )
        table.drop_index("ux_invoices_idempotency_key")
        table.create_index(
            "ux_invoices_caller_idempotency_key", ["caller", "idempotency_key"], unique=True
        )
        table.create_index("ix_invoices_caller_created_at", ["caller", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("invoices") as table:
        table.drop_index("ix_invoices_caller_created_at")
        table.drop_index("ux_invoices_caller_idempotency_key")
        table.create_index("ux_invoices_idempotency_key", ["idempotency_key"], unique=True)
        table.drop_column("caller")
