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
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from db.engine import make_engine
from db.migrate import alembic_config, migrate

HEAD = "0012"


def test_migrations_make_exactly_the_models_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_indexes_for_the_api_queries(engine: Engine) -> None:
    indexes = {index["name"]: index for index in inspect(engine).get_indexes("invoices")}
    assert indexes["ix_invoices_status_created_at"]["column_names"] == ["status", "created_at"]
    assert indexes["ix_invoices_customer_email"]["column_names"] == ["customer_email"]
    idempotency = indexes["ux_invoices_caller_idempotency_key"]
    assert idempotency["unique"] and idempotency["column_names"] == ["caller", "idempotency_key"]
    assert indexes["ix_invoices_caller_created_at"]["column_names"] == ["caller", "created_at"]
    outbox = {index["name"]: index for index in inspect(engine).get_indexes("webhook_deliveries")}
    assert outbox["ix_webhook_deliveries_outcome_relay_after"]["column_names"] == [
        "outcome",
        "relay_after",
    ]
    assert outbox["ix_webhook_deliveries_body_sha256"]["unique"]


def test_concurrent_migrations_end_at_head(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(migrate, engines))
    with engines[0].connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == HEAD
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


def test_upgrade_to_0005_redacts_stored_bodies_and_merges_repeats(
    engine: Engine, database_url: str
) -> None:
    command.downgrade(alembic_config(database_url), "0004")
    card = (
        '{"event": "charge.success", "data": {"id": 9, "reference": "inv-1", "amount": 5000,'
        ' "authorization": {"authorization_code": "AUTH_8dfhjjdt", "last4": "4081"},'
        ' "customer": {"email": "ada@example.com"}}}'
    )
    rows = [
        (card, "signalled", None),
        (card, "duplicate", None),
        (card, "queued", "2026-11-23 10:05:00"),
        ('{"event": "charge.success", "data": {"reference": "inv-2"}}', "ignored", None),
    ]
    with engine.begin() as connection:
        for minute, (body, outcome, relay_after) in enumerate(rows):
            connection.execute(
                text(
                    "INSERT INTO webhook_deliveries (received_at, event, body_sha256, raw_body,"
                    " outcome, relay_after, relay_attempts) VALUES (:at, 'charge.success',"
                    " :digest, :body, :outcome, :relay_after, 0)"
                ),
                {
                    "at": f"2026-11-23 10:0{minute}:00",
                    "digest": hashlib.sha256(body.encode()).hexdigest(),
                    "body": body,
                    "outcome": outcome,
                    "relay_after": relay_after,
                },
            )
    migrate(engine)
    with engine.connect() as connection:
        kept = connection.exec_driver_sql(
            "SELECT redacted_body, outcome, repeats FROM webhook_deliveries ORDER BY id"
        ).all()
    assert [(outcome, repeats) for _, outcome, repeats in kept] == [("queued", 2), ("ignored", 0)]
    assert "AUTH_" not in kept[0][0] and "4081" not in kept[0][0] and "ada@" not in kept[0][0]
    assert '"reference": "inv-1"' in kept[0][0] and '"amount": 5000' in kept[0][0]
