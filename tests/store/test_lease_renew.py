"""SQLStore's lease renewal across stores and under a stuck database.

The behaviour every backend shares is in ``test_store_contract.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tether.exceptions import SessionConflict
from tether.runtime.ports import SessionRecord, SessionStatus
from tether.store import StoreTimeout

from .conftest import SQL_BACKENDS, OpenStore

T0 = 1_700_000_000.0
TTL = 30.0


def _record(sid: str) -> SessionRecord:
    return SessionRecord(
        id=sid,
        agent="a",
        agent_version="1",
        user_id=None,
        status=SessionStatus.RUNNING,
        created_at=T0,
        updated_at=T0,
    )


@pytest.mark.parametrize("sql_opener", SQL_BACKENDS, indirect=True)
async def test_renew_is_seen_by_another_store_and_loses_to_its_takeover(
    sql_opener: OpenStore,
) -> None:
    one, two = await sql_opener(), await sql_opener()
    await one.create(_record("r"), [], owner="a", lease_ttl=TTL)
    await one.renew("r", owner="a", now=T0 + 20, lease_ttl=TTL)
    with pytest.raises(SessionConflict):
        await two.acquire("r", owner="b", now=T0 + TTL + 1, lease_ttl=TTL)
    await two.acquire("r", owner="b", now=T0 + 20 + TTL + 1, lease_ttl=TTL)
    with pytest.raises(SessionConflict) as info:
        await one.renew("r", owner="a", now=T0 + 20 + TTL + 2, lease_ttl=TTL)
    assert info.value.holder == "b"
    # "a" lost the lease, so its commit must fail too
    rec = _record("r")
    rec.updated_at = T0 + 60
    with pytest.raises(SessionConflict):
        await one.commit(rec, [], owner="a", lease_ttl=TTL)
    assert (await one.get("r")).lease_owner == "b"


@pytest.mark.parametrize("sql_opener", ["sqlite"], indirect=True)
async def test_sqlite_renew_times_out_instead_of_hanging(
    sql_opener: OpenStore, tmp_path: Path
) -> None:
    store = await sql_opener(op_timeout=2.0)
    await store.create(_record("t"), [], owner="w", lease_ttl=TTL)
    blocker = sqlite3.connect(tmp_path / "tether.sqlite", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreTimeout, match="renew of session t"):
            await store.renew("t", owner="w", now=T0 + 5, lease_ttl=TTL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (await store.get("t")).lease_expires == T0 + TTL
    assert await store.renew("t", owner="w", now=T0 + 6, lease_ttl=TTL) == T0 + 6 + TTL
    assert (await store.get("t")).lease_expires == T0 + 6 + TTL


@pytest.mark.parametrize("sql_opener", SQL_BACKENDS[1:], indirect=True)
async def test_postgres_renew_times_out_on_a_locked_row(sql_opener: OpenStore) -> None:
    store = await sql_opener(op_timeout=2.0)
    other = await sql_opener()
    await store.create(_record("t"), [], owner="w", lease_ttl=TTL)
    async with other.engine.begin() as conn:
        await conn.exec_driver_sql("SELECT * FROM sessions WHERE id = 't' FOR UPDATE")
        with pytest.raises(StoreTimeout, match="renew of session t"):
            await store.renew("t", owner="w", now=T0 + 5, lease_ttl=TTL)
    assert (await store.get("t")).lease_expires == T0 + TTL
    assert await store.renew("t", owner="w", now=T0 + 6, lease_ttl=TTL) == T0 + 6 + TTL
