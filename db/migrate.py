"""Schema migrations with Alembic: the only way the schema is made or changed.

python -m db.migrate            (the API and the worker also migrate on start)
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from config import get_settings
from db.engine import lock_schema, make_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Brings the database to the newest revision; safe when processes race to do it."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        lock_schema(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def main() -> None:
    engine = make_engine(get_settings().database_url)
    migrate(engine)
    engine.dispose()
    print("database is at the newest revision")


if __name__ == "__main__":
    main()
