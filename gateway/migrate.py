"""Bring the gateway database to the newest Alembic revision."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from gateway.db.session import create_db_engine

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")


def alembic_config(database_url: str) -> Config:
    """Alembic config pointed at a database URL."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str) -> None:
    """Apply every pending migration (idempotent)."""
    # Creates the SQLite folder if needed.
    create_db_engine(database_url).dispose()
    command.upgrade(alembic_config(database_url), "head")
