"""The customer's bank account for a refund retry, sealed, for as long as the retry takes:
it goes to the activity by reference, never through Temporal's history.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.models import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refund_bank_accounts",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("refund_bank_accounts")
