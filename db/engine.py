"""Engine construction. SQLite runs in WAL mode with a busy timeout, because the API and
the worker write to the same file from different processes."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine


def _prepare_sqlite_path(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        Path(url.removeprefix(prefix)).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The mode is kept in the file. Setting it again needs a lock, so a new connection
    # could wait out another's write in the busy handler's growing sleeps: read it first.
    (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
    if mode.lower() != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Shorter than the record activity's timeout, so a stuck attempt gives up first.
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_process_write_locks: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()


def serialized_writes(engine: Engine) -> AbstractContextManager[object]:
    """SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
    growing steps (up to 100 ms) before it looks again. Writers in one process queue on a
    lock instead, so a webhook's insert waits only as long as the write before it."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    return _process_write_locks.setdefault(engine, threading.Lock())


def _no_autocheckpoint(dbapi_connection: Any, _: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def lock_for_write(session: Session) -> None:
    """Makes a read-then-write atomic. SQLite ignores SELECT ... FOR UPDATE, and pysqlite
    would begin the transaction only at the first write, so take the write lock up front."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")


def checkpoint(engine: Engine) -> None:
    """Copies SQLite's write-ahead log back into the database file, without blocking
    writers (PASSIVE). For engines made with `background_checkpoints`."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def make_engine(database_url: str, *, background_checkpoints: bool = False) -> Engine:
    """`background_checkpoints`: this process's commits never checkpoint SQLite's log
    themselves (the commit that does waits for it); the caller runs `checkpoint` instead."""
    is_sqlite = database_url.startswith("sqlite")
    if is_sqlite:
        _prepare_sqlite_path(database_url)
        # Connections are cheap to keep, and each new one costs the pragmas above. (An
        # in-memory database has a single connection per thread, and no pool to size.)
        in_memory = ":memory:" in database_url or database_url.rstrip("/") == "sqlite:"
        pool = {} if in_memory else {"pool_size": 16, "max_overflow": 16}
        engine = create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 10}, **pool
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if background_checkpoints:
            event.listen(engine, "connect", _no_autocheckpoint)
    else:
        engine = create_engine(database_url, pool_pre_ping=True)
    return engine
