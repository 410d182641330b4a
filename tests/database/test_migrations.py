"""Alembic migrations, on SQLite and on Postgres: they make exactly the models' schema, with
the indexes the API's queries need, and are safe to run from several processes at once."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from db.engine import make_engine
from db.migrate import alembic_config, migrate


def test_migrations_make_exactly_the_models_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_indexes_for_the_api_queries(engine: Engine) -> None:
    indexes = {index["name"]: index for index in inspect(engine).get_indexes("invoices")}
    assert indexes["ix_invoices_status_created_at"]["column_names"] == ["status", "created_at"]
    assert indexes["ix_invoices_customer_email"]["column_names"] == ["customer_email"]
    assert indexes["ux_invoices_idempotency_key"]["unique"]
    outbox = {index["name"]: index for index in inspect(engine).get_indexes("webhook_deliveries")}
    assert outbox["ix_webhook_deliveries_outcome_relay_after"]["column_names"] == [
        "outcome",
        "relay_after",
    ]


def test_concurrent_migrations_end_at_head(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(migrate, engines))
    with engines[0].connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == "0004"
    for engine in engines:
        engine.dispose()


def test_downgrade_to_nothing_and_back(engine: Engine, database_url: str) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "base")
    assert "invoices" not in inspect(engine).get_table_names()
    migrate(engine)
    assert {"invoices", "invoice_status_changes", "webhook_deliveries"} <= set(
        inspect(engine).get_table_names()
    )


def test_upgrade_from_0001_keeps_deliveries_and_queues_none(
    engine: Engine, database_url: str
) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "0001")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO webhook_deliveries (received_at, event, dedupe_key, raw_body, outcome)"
            " VALUES ('2026-11-23 10:00:00', 'charge.success', 'k', '{}', 'signalled')"
        )
    migrate(engine)
    with engine.connect() as connection:
        row = connection.exec_driver_sql(
            "SELECT outcome, relay_after, relay_attempts, body_sha256 FROM webhook_deliveries"
        ).one()
    # 0003 names the stored body by its digest, as the intake names a new one.
    assert tuple(row) == ("signalled", None, 0, hashlib.sha256(b"{}").hexdigest())


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The `alembic` command as an operator runs it: from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=Path(__file__).parents[2],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_alembic_command_upgrades_and_finds_nothing_left_to_generate(
    database_url: str,
) -> None:
    upgraded = alembic(database_url, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Running upgrade  -> 0001" in upgraded.stderr
    checked = alembic(database_url, "check")
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout
    current = alembic(database_url, "current")
    assert "(head)" in current.stdout
