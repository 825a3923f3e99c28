"""Alembic environment for Tether's SQL store.

Used two ways:

- from code (``tether.store.migrations.upgrade``): the caller puts a live sync
  connection in ``config.attributes["connection"]``; it is used as is, inside
  the caller's transaction.
- from the command line (``alembic -c .../alembic.ini``): the URL comes from
  ``-x url=...``, else ``TETHER_DATABASE_URL``, else the default SQLite file;
  an async engine is made for the run and disposed afterwards.

Logging configuration is left to the application: this file never calls
``logging.config.fileConfig``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from tether.store._engine import resolve_url
from tether.store.migrations import lock

config = context.config


def _url() -> str:
    return resolve_url(context.get_x_argument(as_dictionary=True).get("url"))


def run_migrations_offline() -> None:
    """Emit the migration SQL to the script output (``alembic ... --sql``)."""
    context.configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        lock(connection)
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or a fresh engine from the CLI."""
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(_run_async())
    else:
        _run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
