"""An endpoint's reach follows its caller's role now, not the role its key had when the
endpoint was made: the `operator` flag written then goes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as table:
        table.drop_column("operator")


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as table:
        table.add_column(
            sa.Column("operator", sa.Boolean(), nullable=False, server_default=sa.false())
        )
