"""Stored deliveries keep a redacted copy of the body, never the card token, card details
or payer that Paystack sends; and one row a body, with its repeats counted on it.

Existing rows are redacted in place. Rows sharing a body digest (Paystack's retries, an
operator's redelivery) become one: the first, with the others counted as its repeats; if
one of them is still queued for relaying, the kept row stays queued.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

from db.models import UTCDateTime
from inbox.redaction import redacted_data

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

deliveries = sa.table(
    "webhook_deliveries",
    sa.column("id", sa.Integer()),
    sa.column("received_at", UTCDateTime()),
    sa.column("event", sa.String()),
    sa.column("body_sha256", sa.String()),
    sa.column("raw_body", sa.Text()),
    sa.column("outcome", sa.String()),
    sa.column("relay_after", UTCDateTime()),
    sa.column("repeats", sa.Integer()),
    sa.column("last_repeated_at", UTCDateTime()),
)


def _redacted(event: str, raw_body: str) -> str:
    try:
        payload = json.loads(raw_body)
    except ValueError:
        payload = {}
    data = payload.get("data") if isinstance(payload, dict) else None
    return json.dumps(
        {"event": event, "data": redacted_data(data if isinstance(data, dict) else {})}
    )


def _merge_repeats(connection: sa.Connection) -> None:
    columns = deliveries.c
    rows = connection.execute(
        sa.select(
            columns.id,
            columns.received_at,
            columns.body_sha256,
            columns.outcome,
            columns.relay_after,
        ).order_by(columns.id)
    ).fetchall()
    by_digest: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_digest[row.body_sha256].append(row)
    for group in by_digest.values():
        if len(group) < 2:
            continue
        kept, repeats = group[0], group[1:]
        values: dict[str, Any] = {
            "repeats": len(repeats),
            "last_repeated_at": max(row.received_at for row in repeats),
        }
        queued = [row for row in repeats if row.outcome == "queued"]
        if queued and kept.outcome != "queued":
            values.update(outcome="queued", relay_after=queued[0].relay_after)
        connection.execute(deliveries.update().where(columns.id == kept.id).values(values))
        connection.execute(deliveries.delete().where(columns.id.in_([row.id for row in repeats])))


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as table:
        table.add_column(sa.Column("repeats", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("last_repeated_at", UTCDateTime(), nullable=True))
    connection = op.get_bind()
    _merge_repeats(connection)
    columns = deliveries.c
    for delivery_id, event, raw_body in connection.execute(
        sa.select(columns.id, columns.event, columns.raw_body)
    ).fetchall():
        connection.execute(
            deliveries.update()
            .where(columns.id == delivery_id)
            .values(raw_body=_redacted(event, raw_body))
        )
    op.drop_index("ix_webhook_deliveries_body_sha256", "webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as table:
        table.alter_column("raw_body", new_column_name="redacted_body")
        table.create_index("ix_webhook_deliveries_body_sha256", ["body_sha256"], unique=True)


def downgrade() -> None:
    # The redacted fields are gone for good; the rows stay as they are.
    with op.batch_alter_table("webhook_deliveries") as table:
        table.drop_index("ix_webhook_deliveries_body_sha256")
        table.alter_column("redacted_body", new_column_name="raw_body")
        table.drop_column("last_repeated_at")
        table.drop_column("repeats")
    op.create_index("ix_webhook_deliveries_body_sha256", "webhook_deliveries", ["body_sha256"])
