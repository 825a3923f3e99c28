"""Fixtures for the store tests: one ``store`` per backend.

``store`` is parametrised over the in-memory store, SQLite (a file in
``tmp_path``) and PostgreSQL (``$TETHER_TEST_POSTGRES_URL``, default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``). Each PostgreSQL test
gets its own schema, migrated from scratch and dropped afterwards.

PostgreSQL tests are marked ``postgres``. When the server is unreachable they
are skipped locally, but fail when ``CI=true``: CI must never skip them quietly.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services import skip_or_fail
from tether.runtime.ports import SessionStore
from tether.store import InMemoryStore, SQLStore, resolve_url

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

OpenStore = Callable[..., Awaitable[SQLStore]]  # (op_timeout=...) -> a new SQLStore


def postgres_url() -> str:
    return os.environ.get("TETHER_TEST_POSTGRES_URL") or DEFAULT_PG_URL


@cache
def _postgres_unreachable() -> str | None:
    u = make_url(resolve_url(postgres_url()))
    host, port = u.host or "127.0.0.1", u.port or 5432
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        return f"PostgreSQL at {host}:{port} is unreachable ({e}); set TETHER_TEST_POSTGRES_URL"
    return None


def require_postgres() -> None:
    """Skip or fail (see :func:`tests.services.skip_or_fail`) without PostgreSQL."""
    reason = _postgres_unreachable()
    if reason is not None:
        skip_or_fail(reason)


async def drop_schema(schema: str) -> None:
    engine = create_async_engine(resolve_url(postgres_url()))
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await engine.dispose()


@asynccontextmanager
async def _opener(backend: str, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens SQLStores that all share one fresh database of ``backend``."""
    opened: list[SQLStore] = []
    schema: str | None = None
    if backend == "postgres":
        require_postgres()
        schema = f"tether_test_{uuid.uuid4().hex[:12]}"
        url = postgres_url()
    else:
        url = f"sqlite:///{tmp_path / 'tether.sqlite'}"

    async def opener(op_timeout: float = 10.0) -> SQLStore:
        store = await SQLStore.open(url, schema=schema, op_timeout=op_timeout)
        opened.append(store)
        return store

    try:
        yield opener
    finally:
        for s in opened:
            await s.aclose()
        if schema is not None:
            await drop_schema(schema)


SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
async def sql_opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens SQLStores sharing one fresh database; parametrise indirectly with a backend."""
    async with _opener(request.param, tmp_path) as opener:
        yield opener


@pytest.fixture(params=["memory", *SQL_BACKENDS])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A fresh, empty store of each backend."""
    if request.param == "memory":
        mem = InMemoryStore()
        yield mem
        await mem.aclose()
        return
    async with _opener(request.param, tmp_path) as opener:
        yield await opener()
