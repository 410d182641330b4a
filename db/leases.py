"""Claiming due rows with a lease: the one engine behind both of payrecon's queues in the
database, the webhook inbox (inbox/relayer.py, webhooks in) and the outbox
(outbound/deliverer.py, events and emails out): `claim_due`, and the loop both run,
`LeasedLoop`.

A row is due while its due time has passed. Claiming moves that time a lease ahead, in one
transaction, so no other process takes the row while its holder works on it; a holder that
dies leaves the lease to run out, and the row is due again. Postgres claims with
`FOR UPDATE SKIP LOCKED` (claimers never wait on each other); SQLite has one writer at a
time, and the write transaction (BEGIN IMMEDIATE) makes the read and the move one step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy import ColumnElement, Engine, select, update

from db.engine import is_sqlite, write_transaction

log = structlog.get_logger(__name__)
T = TypeVar("T")


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


class LeasedLoop:
    """The loop both queues run: a scan every `scan_every` seconds (or at once when woken)
    claims what is due, and each claimed row is worked on in a task of its own. A row whose
    task has not finished when the loop stops keeps its lease, and is taken up again once
    the lease runs out."""

    def __init__(self, scan_every: float, name: str, failed: str) -> None:
        self._scan_every = scan_every
        self._name = name
        # The log event of a scan that failed.
        self._failed = failed
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._scanner: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Event | None = None

    async def scan_once(self) -> int:
        """Claims what is due and starts each; how many."""
        raise NotImplementedError

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()
        self._scanner = asyncio.create_task(self._scan_forever(), name=self._name)

    def wake(self) -> None:
        """Scan now. Safe from any thread (a synchronous activity runs in one)."""
        if self._loop is not None and self._woken is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._woken.set)

    def spawn(self, work: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        task = asyncio.create_task(work, name=name)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task

    @property
    def busy(self) -> int:
        return len(self._in_flight)

    async def idle(self) -> None:
        """Returns once every task under way has ended."""
        while self._in_flight:
            await asyncio.wait(set(self._in_flight))

    async def stop(self, grace: float = 5.0) -> None:
        if self._scanner is not None:
            self._scanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scanner
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=grace)

    async def _scan_forever(self) -> None:
        assert self._woken is not None
        while True:
            self._woken.clear()
            try:
                await self.scan_once()
            except Exception:
                log.exception(self._failed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout=self._scan_every)
