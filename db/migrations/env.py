"""Alembic environment: the tables are the SQLModel models in db.models; the database is the
one payrecon's settings name (DATABASE_URL) unless the caller gives a URL."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

from config import get_settings
from db import models  # noqa: F401 - registers the tables
from db.engine import is_sqlite, make_engine

config = context.config
target_metadata = SQLModel.metadata
if config.config_file_name is not None:  # the `alembic` command, reading alembic.ini
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them.
        render_as_batch=is_sqlite(connection),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    engine = make_engine(database_url())
    with engine.begin() as connection:
        run_migrations(connection)
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=database_url(), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
