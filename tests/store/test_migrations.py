"""Alembic migrations: empty database to head, idempotent re-runs, downgrade to base."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import tether
from tether.exceptions import ConfigError
from tether.store import SQLStore, migrations, resolve_url
from tether.store.tables import metadata

from .conftest import SQL_BACKENDS, drop_schema, postgres_url, require_postgres

TABLES = {
    "sessions",
    "events",
    "api_keys",
    "idempotency",
    "agent_versions",
    "agent_version_log",
    "tool_pins",
    "alembic_version",
}


@pytest.fixture(params=SQL_BACKENDS)
async def empty_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str | None]]:
    """(url, schema) of an empty database: a new SQLite file or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite'}", None
        return
    require_postgres()
    schema = f"tether_mig_{uuid.uuid4().hex[:12]}"
    try:
        yield postgres_url(), schema
    finally:
        await drop_schema(schema)


def _engine(url: str, schema: str | None) -> AsyncEngine:
    args: dict[str, Any] = {}
    if schema is not None:
        args["server_settings"] = {"search_path": schema}
    return create_async_engine(resolve_url(url), connect_args=args)


async def _state(url: str, schema: str | None) -> tuple[set[str], str | None]:
    engine = _engine(url, schema)
    try:
        async with engine.connect() as conn:

            def read(c: sa.Connection) -> tuple[set[str], str | None]:
                names = set(sa.inspect(c).get_table_names(schema=schema))
                return names, migrations.current(c)

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def test_upgrade_creates_tables_and_is_idempotent(empty_db: tuple[str, str | None]) -> None:
    url, schema = empty_db
    store = await SQLStore.open(url, schema=schema)
    await store.aclose()
    tables, rev = await _state(url, schema)
    assert tables == TABLES
    assert rev == migrations.head()

    # a second open (and so a second upgrade) is a no-op, even with data present
    store = await SQLStore.open(url, schema=schema)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO sessions VALUES ('s', 'a', '1', NULL, 'idle', 0, 0, 0, 0, 0, 0,"
                    " NULL, NULL, NULL, 1.0, 1.0, 0.0, NULL)"
                )
            )
    finally:
        await store.aclose()
    store = await SQLStore.open(url, schema=schema)
    try:
        assert (await store.get("s")).status == "idle"
    finally:
        await store.aclose()
    assert await _state(url, schema) == (TABLES, migrations.head())


async def test_downgrade_to_base_drops_everything(empty_db: tuple[str, str | None]) -> None:
    url, schema = empty_db
    await (await SQLStore.open(url, schema=schema)).aclose()
    engine = _engine(url, schema)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrations.downgrade, "base")
    finally:
        await engine.dispose()
    assert await _state(url, schema) == ({"alembic_version"}, None)
    # and back up again
    await (await SQLStore.open(url, schema=schema)).aclose()
    assert await _state(url, schema) == (TABLES, migrations.head())


async def test_tables_module_matches_the_migrations(empty_db: tuple[str, str | None]) -> None:
    url, schema = empty_db
    store = await SQLStore.open(url, schema=schema)
    try:
        async with store.engine.connect() as conn:

            def diff(c: sa.Connection) -> list[Any]:
                ctx = MigrationContext.configure(c, opts={"compare_type": True})
                return list(compare_metadata(ctx, metadata))

            assert await conn.run_sync(diff) == []
    finally:
        await store.aclose()


async def test_open_without_migrate_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    with pytest.raises(ConfigError, match="migrate=True"):
        await SQLStore.open(url, migrate=False)
    await (await SQLStore.open(url)).aclose()
    await (await SQLStore.open(url, migrate=False)).aclose()


def test_alembic_command_line_upgrade_and_downgrade(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite"
    ini = migrations.SCRIPT_LOCATION / "alembic.ini"
    src = str(Path(tether.__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    env.pop("TETHER_DATABASE_URL", None)

    def alembic(*args: str) -> str:
        cmd = [sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"url=sqlite:///{db}", *args]
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    alembic("upgrade", "head")
    assert migrations.head() in alembic("current")
    alembic("downgrade", "base")
    assert migrations.head() not in alembic("current")


async def test_0002_keeps_every_session_and_event_both_ways(
    empty_db: tuple[str, str | None],
) -> None:
    # A database made by 0001 with data in it: 0002 rebuilds ``events`` on
    # SQLite and swaps the indexes; nothing stored may be lost either way.
    url, schema = empty_db
    store = await SQLStore.open(url, schema=schema)
    await store.aclose()
    engine = _engine(url, schema)
    insert_session = sa.text(
        "INSERT INTO sessions VALUES (:id, 'a', '1', NULL, 'idle', 2, 2, 5, 7, 0, 0,"
        " NULL, NULL, NULL, :t, :t)"
    )
    insert_event = sa.text(
        "INSERT INTO events VALUES (:sid, :seq, 1, 'user.message', 1.0, :data, NULL)"
    )

    async def contents() -> tuple[list[Any], list[Any]]:
        async with engine.connect() as conn:
            sessions = (await conn.execute(sa.text("SELECT * FROM sessions ORDER BY id"))).all()
            events = (
                await conn.execute(sa.text("SELECT * FROM events ORDER BY session_id, seq"))
            ).all()
        return [tuple(r) for r in sessions], [tuple(r) for r in events]

    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrations.downgrade, "0001")
            for i in range(3):
                await conn.execute(insert_session, {"id": f"s{i}", "t": float(i)})
                for seq in (1, 2):
                    data = f'{{"text": "message {seq} of s{i}"}}'
                    await conn.execute(insert_event, {"sid": f"s{i}", "seq": seq, "data": data})
        before = await contents()
        assert len(before[0]) == 3
        assert len(before[1]) == 6
        async with engine.begin() as conn:
            await conn.run_sync(migrations.upgrade, "0002")
        assert await contents() == before
        async with engine.begin() as conn:
            await conn.run_sync(migrations.downgrade, "0001")
        assert await contents() == before
        # 0003 adds the cost (0 for old rows) and tenant columns, and takes them away again
        async with engine.begin() as conn:
            await conn.run_sync(migrations.upgrade, "head")
        sessions, events = await contents()
        assert events == before[1]
        assert [r[:-2] for r in sessions] == before[0]
        assert {r[-2:] for r in sessions} == {(0.0, None)}
        async with engine.begin() as conn:
            await conn.run_sync(migrations.downgrade, "0002")
        assert await contents() == before
        async with engine.begin() as conn:
            await conn.run_sync(migrations.upgrade, "head")
    finally:
        await engine.dispose()
    # and the store works on the upgraded data
    store = await SQLStore.open(url, schema=schema)
    try:
        assert [r.id for r in await store.list_sessions()] == ["s2", "s1", "s0"]
        assert len(await store.events("s1")) == 2
    finally:
        await store.aclose()
