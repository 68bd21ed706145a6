"""Schema upgrades with alembic (storage/migrations): the configuration built in code and the two
synchronous steps `Database.upgrade` and `Database.current_revision` run on a connection."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary constant: PostgreSQL advisory lock key serialising concurrent schema upgrades.
UPGRADE_LOCK_KEY = 0x756E6F676173  # "unogas"


def alembic_config() -> Config:
    """The alembic configuration, built in code: no alembic.ini is needed at run time."""
    config = Config()
    # configparser interpolation: a literal "%" in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def upgrade_sync(connection: Connection, revision: str) -> None:
    config = alembic_config()
    # env.py picks this connection up instead of creating its own engine.
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def current_revision_sync(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
