"""Alembic migrations for the SQL store, runnable from code.

``SQLStore.open()`` calls :func:`upgrade` on a connection it already holds,
so no ``alembic.ini`` is read and no second engine is made. The same scripts
work from the command line through ``alembic.ini`` in this folder.

Migrations take a lock first (``BEGIN IMMEDIATE`` on SQLite, a transaction
advisory lock on PostgreSQL), so processes that start together on a fresh
database do not race to create the same tables.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

__all__ = ["SCRIPT_LOCATION", "alembic_config", "current", "downgrade", "head", "upgrade"]

SCRIPT_LOCATION = Path(__file__).resolve().parent

# pg_advisory_xact_lock key; any constant works as long as it never changes.
_PG_LOCK_KEY = 0x7E7E_7465_7468_6572  # b"~~tether" as an int64


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for these scripts, bound to ``connection`` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def lock(connection: Connection) -> None:
    """Serialise migrations across processes for the current transaction."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    elif dialect == "sqlite":
        driver = connection.connection.driver_connection
        if not getattr(driver, "in_transaction", True):
            # Take the write lock before Alembic reads the version table.
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` (a sync connection) to ``revision``."""
    command.upgrade(alembic_config(connection), revision)


def downgrade(connection: Connection, revision: str = "base") -> None:
    """Migrate the database behind ``connection`` down to ``revision``."""
    command.downgrade(alembic_config(connection), revision)


def current(connection: Connection) -> str | None:
    """The revision the database is at, or ``None`` if it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    """The newest revision these scripts define."""
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if rev is None:  # pragma: no cover - the package ships its scripts
        raise RuntimeError(f"no migration scripts found in {SCRIPT_LOCATION}")
    return rev
