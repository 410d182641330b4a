"""The database connection, and everything in which SQLite and Postgres differ.

Queries read the same on both dialects: they read through the engine, and write inside
`write_transaction` or `write_session`, which this module makes right for each:

- SQLite has one writer at a time. A write transaction takes the write lock up front
  (BEGIN IMMEDIATE), so a read-then-write is atomic (SQLite ignores SELECT ... FOR UPDATE).
  Writers in one process queue on a lock first: a writer that finds SQLite's lock taken
  sleeps in growing steps (up to 100 ms) before it looks again.
- SQLite runs in WAL mode, so readers never wait for the writer; the API checkpoints the
  log in the background instead of inside a commit that a webhook answer waits on.
- Postgres needs none of this; its migrations serialise on an advisory lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import structlog
from sqlalchemy import Connection, Engine, event
from sqlmodel import Session, create_engine
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

log = structlog.get_logger(__name__)

# Any constant: serialises migrations started by several processes at once on Postgres.
MIGRATION_LOCK = 7_263_001
# Shorter than the record activity's timeout, so a stuck attempt gives up first.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(database_url: str, *, checkpoint_in_background: bool = False) -> Engine:
    """`checkpoint_in_background`: this process's commits never checkpoint SQLite's log
    themselves (the commit that does waits for it); run `checkpointing` beside it."""
    if not database_url.startswith("sqlite"):
        # Error parameters are left out of messages: they can hold a webhook body.
        return create_engine(database_url, pool_pre_ping=True, hide_parameters=True)
    _prepare_sqlite_path(database_url)
    # Connections are cheap to keep, and each new one costs the pragmas below. (An
    # in-memory database has a single connection per thread, and no pool to size.)
    in_memory = ":memory:" in database_url or database_url.rstrip("/") == "sqlite:"
    pool = {} if in_memory else {"pool_size": 16, "max_overflow": 16}
    engine = create_engine(
        database_url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        hide_parameters=True,
        **pool,
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    if checkpoint_in_background:
        event.listen(engine, "connect", _no_autocheckpoint)
    return engine


# --- writing ------------------------------------------------------------------------

_process_write_locks: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()


def _process_write_lock(engine: Engine) -> AbstractContextManager[object]:
    if not is_sqlite(engine):
        return nullcontext()
    return _process_write_locks.setdefault(engine, threading.Lock())


def _begin_write(connection: Connection) -> None:
    if is_sqlite(connection):
        # pysqlite would begin only at the first write: take the write lock now.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes, committed when the block ends without error."""
    with _process_write_lock(engine), engine.connect() as connection:
        _begin_write(connection)
        yield connection
        connection.commit()


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """The same for the ORM: reads inside it see what no other writer can change."""
    with _process_write_lock(engine), Session(engine) as session:
        _begin_write(session.connection())
        yield session
        session.commit()


def lock_schema(connection: Connection) -> None:
    """Begins a transaction that no other process's migration runs beside."""
    if is_sqlite(connection):
        # A second process waits for the write lock, then finds the work done.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.begin()
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")


# --- SQLite ---------------------------------------------------------------------------


def _prepare_sqlite_path(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        Path(url.removeprefix(prefix)).parent.mkdir(parents=True, exist_ok=True)


def _locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


# Switching to WAL needs the file to itself and does not wait in the busy handler, so
# processes opening a new database at once try again for a while.
@retry(
    retry=retry_if_exception(_locked),
    wait=wait_exponential(multiplier=0.01, max=0.5),
    stop=stop_after_delay(SQLITE_BUSY_TIMEOUT_MS / 1000),
    reraise=True,
)
def _use_wal(cursor: sqlite3.Cursor) -> None:
    cursor.execute("PRAGMA journal_mode=WAL")


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The mode is kept in the file. Setting it again needs a lock, so a new connection
    # could wait out another's write in the busy handler's growing sleeps: read it first.
    (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
    if mode.lower() != "wal":
        _use_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _no_autocheckpoint(dbapi_connection: sqlite3.Connection, _: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def checkpoint(engine: Engine) -> None:
    """Copies SQLite's write-ahead log back into the database file, without blocking
    writers (PASSIVE)."""
    if is_sqlite(engine):
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


@asynccontextmanager
async def checkpointing(engine: Engine, every: float = 1.0) -> AsyncIterator[None]:
    """Checkpoints SQLite's log every `every` seconds while the block runs (for an engine
    made with `checkpoint_in_background`); nothing for Postgres."""
    if not is_sqlite(engine):
        yield
        return

    async def run() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(checkpoint, engine)
            except Exception:
                log.exception("db.checkpoint_failed")

    task = asyncio.create_task(run(), name="sqlite-checkpoint")
    try:
        yield
    finally:
        task.cancel()
