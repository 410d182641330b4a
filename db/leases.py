"""Claiming due rows with a lease: the one engine behind both of payrecon's queues in the
database, the webhook inbox (inbox/relayer.py, webhooks in) and the outbox
(outbound/deliverer.py, events and emails out).

A row is due while its due time has passed. Claiming moves that time a lease ahead, in one
transaction, so no other process takes the row while its holder works on it; a holder that
dies leaves the lease to run out, and the row is due again. Postgres claims with
`FOR UPDATE SKIP LOCKED` (claimers never wait on each other); SQLite has one writer at a
time, and the write transaction (BEGIN IMMEDIATE) makes the read and the move one step.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, select, update

from db.engine import is_sqlite, write_transaction


def claim_due(
    engine: Engine,
    table: Any,
    *,
    due: Any,
    where: ColumnElement[bool],
    now: datetime,
    lease: timedelta,
    limit: int,
) -> list[int]:
    """The ids of up to `limit` rows of `table` matching `where` whose `due` column has
    passed, earliest first, each now leased to the caller until `now + lease`."""
    if limit <= 0:
        return []
    rows = select(table.id).where(where, due <= now).order_by(due).limit(limit)
    # A read first: a scan that finds nothing due never takes SQLite's write lock, which
    # every other writer (the invoices' records) would wait behind.
    with engine.connect() as connection:
        if connection.execute(rows.limit(1)).first() is None:
            return []
    with write_transaction(engine) as connection:
        if not is_sqlite(connection):
            rows = rows.with_for_update(skip_locked=True)
        ids = [int(row[0]) for row in connection.execute(rows)]
        if ids:
            connection.execute(
                update(table).where(table.id.in_(ids)).values({due.key: now + lease})
            )
    return ids
