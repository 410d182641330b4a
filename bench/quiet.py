"""What the bench waits on between phases, so each phase meets only the load it makes: the
outbox's rows still due, in the stack's SQLite file, and the reconciliation sweeps, which
the bench pauses outside its reconciliation phase and counts while they run."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_fixed

from workflows.reconciliation import DAILY_RECONCILIATION_SCHEDULE_ID, RECONCILIATION_SCHEDULE_ID

# Plain SQL on the stack's database file: what is still to be sent.
OUTBOX = {
    "event deliveries": "SELECT count(*) FROM event_deliveries WHERE status = 'pending'",
    "customer emails": "SELECT count(*) FROM customer_emails WHERE status = 'pending'",
}
RUNNING_SWEEPS = 'WorkflowType="Reconciliation" AND ExecutionStatus="Running"'
SWEEP_SCHEDULES = (RECONCILIATION_SCHEDULE_ID, DAILY_RECONCILIATION_SCHEDULE_ID)


def sqlite_path(database_url: str) -> Path:
    prefix = "sqlite:///"
    assert database_url.startswith(prefix), f"the bench reads a SQLite stack: {database_url}"
    return Path(database_url.removeprefix(prefix))


def pending(database: Path, sql: str) -> int | None:
    """The count `sql` gives; 0 when its table or column is not there (a stack from before
    the outbox), None when the file is too busy to answer now."""
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
            (count,) = connection.execute(sql).fetchone()
    except sqlite3.OperationalError as error:
        if str(error).startswith(("no such table", "no such column")):
            return 0
        return None
    return int(count)


def outbox_busy(database: Path) -> list[str]:
    """What the outbox still has to send, e.g. ['3 event deliveries pending']."""
    busy = []
    for what, sql in OUTBOX.items():
        count = pending(database, sql)
        if count is None:
            busy.append(f"{what}: database busy")
        elif count:
            busy.append(f"{count} {what} pending")
    return busy


async def sweeps_busy(client: Client) -> list[str]:
    running = (await client.count_workflows(RUNNING_SWEEPS)).count
    return [f"{running} reconciliation sweep(s) running"] if running else []


def _not_found(error: BaseException) -> bool:
    return isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND


async def pause_sweeps(client: Client, paused: bool) -> None:
    """Pauses (or resumes) the scheduled sweeps; the worker makes the schedules as it starts,
    so they are waited for."""
    for schedule_id in SWEEP_SCHEDULES:
        handle = client.get_schedule_handle(schedule_id)
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(60),
            wait=wait_fixed(0.5),
            retry=retry_if_exception(_not_found),
            reraise=True,
        ):
            with attempt:
                await (handle.pause if paused else handle.unpause)(note="make bench")


async def busy(client: Client, database: Path) -> list[str]:
    """Everything still going on in the stack (empty: nothing)."""
    outbox = await asyncio.to_thread(outbox_busy, database)
    return outbox + await sweeps_busy(client)
