"""Database URLs and engines for the SQL store.

Turns whatever the user gave (nothing, ``$TETHER_DATABASE_URL``, a plain
``postgres://`` or ``sqlite:///`` URL) into an async SQLAlchemy engine with
settings that cannot hang forever: a bounded pool wait, connect and command
timeouts, and a SQLite busy timeout no longer than the store's ``op_timeout``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DisconnectionError,
    InterfaceError,
    InvalidRequestError,
    OperationalError,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tether.exceptions import ConfigError

__all__ = [
    "QUERY_CANCELED",
    "default_url",
    "is_lock_timeout",
    "is_transient",
    "make_engine",
    "resolve_url",
    "sqlstate",
]

# SQLSTATE classes a retry can cure: connection trouble, server shutting
# down or overloaded, serialization failures and deadlocks.
_TRANSIENT_SQLSTATE = ("08", "57P", "53", "40001", "40P01")
QUERY_CANCELED = "57014"  # statement_timeout


def default_url() -> str:
    """The SQLite file under ``$TETHER_HOME`` (default ``~/.tether``)."""
    home = os.environ.get("TETHER_HOME")
    folder = Path(home).expanduser() if home else Path.home() / ".tether"
    return f"sqlite+aiosqlite:///{folder / 'tether.sqlite'}"


def resolve_url(url: str | None = None) -> str:
    """The async SQLAlchemy URL for ``url``, ``$TETHER_DATABASE_URL``, or the default.

    Plain ``postgres://``/``postgresql://`` URLs get the ``asyncpg`` driver
    (libpq's ``sslmode`` becomes asyncpg's ``ssl``), plain ``sqlite://``
    ones ``aiosqlite``.
    """
    url = url or os.environ.get("TETHER_DATABASE_URL") or None
    if url is None:
        return default_url()
    try:
        u = make_url(url)
    except ArgumentError as e:
        raise ConfigError(
            f"invalid database URL {url!r}: {e}. Expected e.g. "
            "'sqlite:///path/to/tether.sqlite' or 'postgresql://user@host/db'"
        ) from None
    backend, _, driver = u.drivername.partition("+")
    if backend in ("postgres", "postgresql") and driver in ("", "psycopg2", "asyncpg"):
        u = u.set(drivername="postgresql+asyncpg")
        if "sslmode" in u.query:
            query = dict(u.query)
            query["ssl"] = query.pop("sslmode")
            u = u.set(query=query)
    elif backend == "sqlite" and driver in ("", "pysqlite", "aiosqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    return u.render_as_string(hide_password=False)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error, raw or wrapped by SQLAlchemy."""
    state = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
    return None if state is None else str(state)


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite giving up on waiting for a lock (``SQLITE_BUSY``/``LOCKED``)."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorcode", None)
    return isinstance(orig, sqlite3.OperationalError) and code is not None and code & 0xFF in (5, 6)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` means "the database is unavailable or busy right now"."""
    if isinstance(exc, OperationalError | InterfaceError | sqlite3.OperationalError | OSError):
        return True
    module = type(exc).__module__
    if module.startswith("asyncpg"):  # raw-driver errors from the commit fast path
        state = getattr(exc, "sqlstate", None)
        return state is None or str(state).startswith(_TRANSIENT_SQLSTATE)
    return False


def _sqlite_setup(busy_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return on_connect


def _asyncpg_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # A free pre-ping: asyncpg notices a closed socket without a round trip.
    # Raising DisconnectionError makes the pool discard it and connect anew.
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the pooled PostgreSQL connection was closed")


def make_engine(
    u: URL, *, schema: str | None, op_timeout: float, pool_size: int, pool_timeout: float
) -> AsyncEngine:
    """An async engine for ``u``, tuned for the store; see the module docstring."""
    kw: dict[str, Any] = {}
    backend = u.get_backend_name()
    # SQLite stops waiting for a lock a little before the caller gives up.
    busy_ms = max(1, int(op_timeout * 900))
    if backend == "sqlite":
        if schema is not None:
            raise ConfigError("schema= is only supported on PostgreSQL; SQLite has no schemas")
        db = u.database or ""
        if db in ("", ":memory:") or u.query.get("mode") == "memory":
            raise ConfigError(
                f"{u.render_as_string()!r} is an in-memory SQLite database, which lives and "
                "dies with one connection; use tether.store.InMemoryStore instead, or a file"
            )
        kw["connect_args"] = {"timeout": busy_ms / 1000}
        Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
    elif backend == "postgresql":
        # The server gives up on a statement a little before the client does, so
        # a statement the client abandoned can never commit behind its back.
        settings = {"statement_timeout": str(max(1, int(op_timeout * 900)))}
        if schema is not None:
            settings["search_path"] = schema
        kw["connect_args"] = {
            "timeout": op_timeout,
            "command_timeout": op_timeout,
            "server_settings": settings,
        }
        kw["pool_recycle"] = 1800
    kw.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_timeout=pool_timeout)
    try:
        engine = create_async_engine(u, **kw)
    except (ArgumentError, ImportError, InvalidRequestError) as e:
        raise ConfigError(
            f"cannot use database URL {u.render_as_string()!r}: {e}. Tether needs an async "
            "driver: sqlite+aiosqlite or postgresql+asyncpg"
        ) from e
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_setup(busy_ms))
    elif engine.dialect.driver == "asyncpg":
        event.listen(engine.sync_engine, "checkout", _asyncpg_checkout)
    return engine
