"""SQLStore specifics: races between processes, timeouts, URL handling."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tether.exceptions import ConfigError, SessionConflict
from tether.runtime.ports import SessionRecord, SessionStatus
from tether.spec.events import Event
from tether.store import SQLStore, StoreTimeout, StoreUnavailable, resolve_url

from .conftest import SQL_BACKENDS, OpenStore

T0 = 1_700_000_000.0


def _record(sid: str) -> SessionRecord:
    return SessionRecord(
        id=sid,
        agent="a",
        agent_version="1",
        user_id=None,
        status="idle",
        created_at=T0,
        updated_at=T0,
    )


def _event(sid: str, seq: int, text: str = "") -> Event:
    return Event(type="message.user", session_id=sid, step=0, time=T0, data={"t": text}, seq=seq)


@pytest.mark.parametrize("sql_opener", SQL_BACKENDS, indirect=True)
async def test_two_stores_racing_to_acquire_exactly_one_wins(sql_opener: OpenStore) -> None:
    one, two = await sql_opener(), await sql_opener()
    ids = [f"race-{i}" for i in range(20)]
    for sid in ids:
        await one.create(_record(sid), [_event(sid, 1)], owner="creator", lease_ttl=30)
        await one.release(sid, owner="creator")

    async def grab(store: SQLStore, owner: str, sid: str) -> str | SessionConflict:
        try:
            await store.acquire(sid, owner=owner, now=T0 + 1, lease_ttl=30)
        except SessionConflict as e:
            return e
        return owner

    for sid in ids:
        results = await asyncio.gather(grab(one, "p1", sid), grab(two, "p2", sid))
        winners = [r for r in results if isinstance(r, str)]
        losers = [r for r in results if isinstance(r, SessionConflict)]
        assert len(winners) == len(losers) == 1, results
        assert losers[0].holder == winners[0]
        assert (await two.get(sid)).lease_owner == winners[0]


@pytest.mark.parametrize("sql_opener", SQL_BACKENDS, indirect=True)
async def test_concurrent_commits_of_the_same_seq_one_conflicts(sql_opener: OpenStore) -> None:
    one, two = await sql_opener(), await sql_opener()
    sid = "dup"
    await one.create(_record(sid), [_event(sid, 1)], owner="w", lease_ttl=30)
    for n in range(2, 22):
        rec = _record(sid)
        rec.event_count, rec.updated_at = n, T0 + n
        results = await asyncio.gather(
            one.commit(rec, [_event(sid, n, "one")], owner="w", lease_ttl=30),
            two.commit(rec, [_event(sid, n, "two")], owner="w", lease_ttl=30),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], SessionConflict), errors[0]
    assert [e.seq for e in await one.events(sid)] == list(range(1, 22))


@pytest.mark.parametrize("sql_opener", ["sqlite"], indirect=True)
async def test_sqlite_store_times_out_instead_of_hanging(
    sql_opener: OpenStore, tmp_path: Path
) -> None:
    # Generous enough that a loaded CI machine does not time out the calls that
    # are meant to succeed; the blocked commit still has to give up.
    store = await sql_opener(op_timeout=5.0)
    await store.create(_record("t"), [], owner="w", lease_ttl=30)
    blocker = sqlite3.connect(tmp_path / "tether.sqlite", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreTimeout, match=r"longer than 4.5s for SQLite's write lock") as info:
            await store.commit(_record("t"), [_event("t", 1)], owner="w", lease_ttl=30)
        assert isinstance(info.value, TimeoutError)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await store.commit(_record("t"), [_event("t", 1)], owner="w", lease_ttl=30)
    assert len(await store.events("t")) == 1


@pytest.mark.parametrize("sql_opener", ["sqlite"], indirect=True)
async def test_sqlite_write_waits_for_another_process_without_blocking_the_loop(
    sql_opener: OpenStore, tmp_path: Path
) -> None:
    # Commits run inline on the loop and never wait on SQLite's lock there:
    # when another process holds it they wait on a worker thread, and the
    # event loop keeps running meanwhile.
    store = await sql_opener(op_timeout=30.0)
    await store.create(_record("w"), [], owner="w", lease_ttl=30)
    blocker = sqlite3.connect(tmp_path / "tether.sqlite", isolation_level=None)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    try:
        blocker.execute("BEGIN IMMEDIATE")
        rec = _record("w")
        rec.status, rec.event_count = SessionStatus.RUNNING, 1
        commit = asyncio.create_task(store.commit(rec, [_event("w", 1)], owner="w", lease_ttl=30))
        await asyncio.sleep(0.5)
        assert not commit.done()
        assert ticks >= 5  # the loop was free while the commit waited
        # a second write queues behind the first instead of racing it
        rec2 = _record("w")
        rec2.status, rec2.event_count = SessionStatus.IDLE, 2
        second = asyncio.create_task(
            store.commit(rec2, [_event("w", 2)], owner="w", lease_ttl=30, release=True)
        )
        await asyncio.sleep(0.1)
        assert not second.done()
        blocker.execute("ROLLBACK")
        await asyncio.wait_for(commit, 10)
        await asyncio.wait_for(second, 10)
    finally:
        tick_task.cancel()
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()
    got = await store.get("w")
    assert (got.status, got.event_count, got.lease_owner) == (SessionStatus.IDLE, 2, None)
    assert [e.seq for e in await store.events("w")] == [1, 2]


@pytest.mark.parametrize("sql_opener", SQL_BACKENDS[1:], indirect=True)
async def test_postgres_store_times_out_on_a_locked_row(sql_opener: OpenStore) -> None:
    store = await sql_opener(op_timeout=3.0)
    other = await sql_opener()
    await store.create(_record("t"), [], owner="w", lease_ttl=30)
    async with other.engine.begin() as conn:
        await conn.exec_driver_sql("SELECT * FROM sessions WHERE id = 't' FOR UPDATE")
        with pytest.raises(StoreTimeout):
            await store.commit(_record("t"), [_event("t", 1)], owner="w", lease_ttl=30)
    rec = _record("t")
    rec.status = SessionStatus.COMPLETED
    await store.commit(rec, [_event("t", 1)], owner="w", lease_ttl=30)
    assert (await store.get("t")).status == SessionStatus.COMPLETED


@pytest.mark.parametrize("sql_opener", SQL_BACKENDS[1:], indirect=True)
async def test_postgres_server_gives_up_before_the_client(sql_opener: OpenStore) -> None:
    # A statement the client abandoned must not be able to commit later.
    store = await sql_opener(op_timeout=4.0)
    async with store.engine.connect() as conn:
        setting = (await conn.exec_driver_sql("SHOW statement_timeout")).scalar()
    assert setting == "3600ms"


def test_resolve_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TETHER_DATABASE_URL", raising=False)
    monkeypatch.setenv("TETHER_HOME", str(tmp_path))
    assert resolve_url() == f"sqlite+aiosqlite:///{tmp_path / 'tether.sqlite'}"
    monkeypatch.setenv("TETHER_DATABASE_URL", "postgres://u:p%40ss@db:5433/app?sslmode=require")
    assert resolve_url() == "postgresql+asyncpg://u:p%40ss@db:5433/app?ssl=require"
    assert resolve_url("postgresql://u@h/d") == "postgresql+asyncpg://u@h/d"
    assert resolve_url("postgresql+asyncpg://u@h/d") == "postgresql+asyncpg://u@h/d"
    assert resolve_url("sqlite:///rel/t.db") == "sqlite+aiosqlite:///rel/t.db"
    assert resolve_url("sqlite:////abs/t.db") == "sqlite+aiosqlite:////abs/t.db"
    with pytest.raises(ConfigError, match="invalid database URL"):
        resolve_url("not a url")


async def test_open_refuses_in_memory_sqlite() -> None:
    with pytest.raises(ConfigError, match="InMemoryStore"):
        await SQLStore.open("sqlite://")


async def test_open_refuses_a_sync_only_driver() -> None:
    with pytest.raises(ConfigError, match="async driver"):
        await SQLStore.open("sqlite+pysqlite_nonexistent:///x.db")


async def test_open_creates_the_default_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tether.store import open_store

    home = tmp_path / "home" / ".tether"
    monkeypatch.delenv("TETHER_DATABASE_URL", raising=False)
    monkeypatch.setenv("TETHER_HOME", str(home))
    store = await open_store()
    try:
        assert (home / "tether.sqlite").exists()
        assert await store.list_sessions() == []
    finally:
        await store.aclose()


async def test_unreachable_database_fails_fast_and_clearly() -> None:
    with pytest.raises(StoreUnavailable, match="unavailable or busy"):
        await SQLStore.open("postgresql://postgres@127.0.0.1:1/test", op_timeout=5)
