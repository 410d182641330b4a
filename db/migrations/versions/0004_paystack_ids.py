"""Paystack's transaction ids are unsigned 64-bit integers: kept exactly, as decimal text,
where a signed BIGINT overflowed above 2^63 - 1.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (("invoices", "paystack_transaction_id"), ("webhook_deliveries", "transaction_id"))


def upgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                existing_type=sa.BigInteger(),
                type_=sa.String(length=20),
                existing_nullable=True,
                postgresql_using=f"{column}::text",
            )


def downgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                existing_type=sa.String(length=20),
                type_=sa.BigInteger(),
                existing_nullable=True,
                postgresql_using=f"{column}::bigint",
            )
