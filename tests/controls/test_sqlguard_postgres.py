"""The SQL guard against a real PostgreSQL.

Two claims, each shown on the server rather than asserted about text:

- what the guard **allows** under ``read_only`` changes nothing: each read
  runs in a ``READ ONLY`` transaction without error, and in a read-write one
  leaves the catalog, the rows, the sequence, the settings, the locks, the
  large objects and the prepared statements as they were (and takes no
  transaction id);
- what it **blocks** really acts: run anyway, each statement creates,
  changes, locks or reads past the table allowlist, and several do so even
  inside a ``READ ONLY`` transaction, which is why the guard is needed on top
  of one.

Each test gets its own schema (``sqlguard_<random>``), dropped afterwards;
every statement runs in a transaction that is rolled back.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.services import skip_or_fail
from tether.controls.sqlguard import SqlPolicy, review_sql

pytestmark = pytest.mark.postgres

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
POLICY = SqlPolicy(dialect="postgres", allowed_tables=frozenset({"orders", "order_items"}))
SECRET = "secret@example.com"


def _url() -> str:
    url = os.environ.get("TETHER_TEST_POSTGRES_URL") or DEFAULT_URL
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@cache
def _unreachable() -> str | None:
    u = urlsplit(_url())
    host, port = u.hostname or "127.0.0.1", u.port or 5432
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        return f"PostgreSQL at {host}:{port} is unreachable ({e}); set TETHER_TEST_POSTGRES_URL"
    return None


SETUP = """
CREATE SCHEMA "{s}";
CREATE TABLE "{s}".orders (order_id int PRIMARY KEY, user_id int, status text);
CREATE TABLE "{s}".order_items (order_id int, sku text, price numeric);
CREATE TABLE "{s}".users (user_id int PRIMARY KEY, email text);
CREATE SEQUENCE "{s}".order_seq;
INSERT INTO "{s}".orders VALUES (1, 1, 'pending'), (2, 1, 'delivered'), (3, 2, 'pending');
INSERT INTO "{s}".order_items VALUES (1, 'A', 10), (2, 'B', 5);
INSERT INTO "{s}".users VALUES (1, 'alice-{secret}'), (2, 'bob-{secret}');
"""


@dataclass
class Shop:
    conn: asyncpg.Connection
    schema: str


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    reason = _unreachable()
    if reason is not None:
        skip_or_fail(reason)
    schema = f"sqlguard_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_url())
    try:
        await conn.execute(SETUP.format(s=schema, secret=SECRET))
        await conn.execute(f'SET search_path = "{schema}"')
        yield Shop(conn, schema)
    finally:
        await conn.close()  # ends the session: its locks, prepared statements, settings
        cleanup = await asyncpg.connect(_url())
        try:
            await cleanup.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await cleanup.close()


async def _snapshot(shop: Shop) -> dict[str, object]:
    """What a statement could have changed, as this session sees it."""
    c, s = shop.conn, shop.schema
    ours = "c.relnamespace IN ($1::text::regnamespace, pg_my_temp_schema())"
    tables = ("orders", "order_items", "users")
    return {
        "relations": await c.fetch(
            f"SELECT c.relname, c.relkind FROM pg_class c WHERE {ours} ORDER BY 1", s
        ),
        "comments": await c.fetch(
            "SELECT d.objoid, d.objsubid, d.description FROM pg_description d "
            f"JOIN pg_class c ON c.oid = d.objoid WHERE {ours} ORDER BY 1, 2",
            s,
        ),
        "rows": [
            await c.fetchval(
                f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM \"{s}\".{t} t"
            )
            for t in tables
        ],
        "stats": await c.fetch(
            "SELECT c.relname, c.reltuples, c.relpages, "
            "(SELECT count(*) FROM pg_statistic st WHERE st.starelid = c.oid) "
            f"FROM pg_class c WHERE {ours} ORDER BY 1",
            s,
        ),
        "sequence": await c.fetchrow(f'SELECT last_value, is_called FROM "{s}".order_seq'),
        "settings": await c.fetch("SELECT name, setting FROM pg_settings ORDER BY name"),
        "locks": await c.fetch(
            "SELECT locktype, mode, relation::regclass::text, objid FROM pg_locks "
            "WHERE pid = pg_backend_pid() AND mode <> 'AccessShareLock' "
            "AND locktype <> 'virtualxid' ORDER BY 1, 2, 3, 4"
        ),
        "xid": await c.fetchval("SELECT pg_current_xact_id_if_assigned() IS NOT NULL"),
        "large_objects": await c.fetchval("SELECT count(*) FROM pg_largeobject_metadata"),
        "prepared": await c.fetch(
            "SELECT name FROM pg_prepared_statements WHERE from_sql ORDER BY 1"
        ),
    }


@dataclass
class Observed:
    rows: list[asyncpg.Record] = field(default_factory=list)
    error: asyncpg.PostgresError | None = None
    changed: set[str] = field(default_factory=set)


async def _observe(shop: Shop, sql: str, *, read_only: bool) -> Observed:
    """Run ``sql`` in a transaction that is rolled back; what changed, inside it and after."""
    seen = Observed()
    outside = await _snapshot(shop)
    tx = shop.conn.transaction(readonly=read_only)
    await tx.start()
    try:
        before = await _snapshot(shop)
        savepoint = shop.conn.transaction()
        await savepoint.start()
        try:
            seen.rows = await shop.conn.fetch(sql)
            await savepoint.commit()
        except asyncpg.PostgresError as exc:
            await savepoint.rollback()
            seen.error = exc
        after = await _snapshot(shop)
    finally:
        await tx.rollback()
    after_rollback = await _snapshot(shop)
    seen.changed = {k for k in before if before[k] != after[k]}
    seen.changed |= {k for k in outside if outside[k] != after_rollback[k]}
    return seen


async def _forget_session_state(shop: Shop) -> None:
    """Undo what outlives a rollback: session advisory locks, prepared statements."""
    await shop.conn.execute("SELECT pg_advisory_unlock_all()")
    for row in await shop.conn.fetch("SELECT name FROM pg_prepared_statements WHERE from_sql"):
        await shop.conn.execute(f'DEALLOCATE "{row[0]}"')


READS = [
    "SELECT * FROM orders",
    "SELECT status, count(*) FROM orders GROUP BY status ORDER BY status",
    "TABLE orders",
    "VALUES (1, 'a'), (2, 'b')",
    "WITH p AS (SELECT * FROM orders WHERE status = 'pending') SELECT count(*) FROM p",
    "SELECT o.order_id, i.sku FROM orders o JOIN order_items i USING (order_id)",
    "SELECT * FROM orders WHERE order_id IN (SELECT order_id FROM order_items)",
    "SELECT * FROM orders o WHERE EXISTS "
    "(SELECT 1 FROM order_items i WHERE i.order_id = o.order_id)",
    "SELECT DISTINCT ON (status) status, order_id FROM orders ORDER BY status, order_id",
    "SELECT order_id, row_number() OVER (ORDER BY order_id) FROM orders",
    "SELECT order_id FROM orders ORDER BY order_id LIMIT 1 OFFSET 1",
    "SELECT count(*) FROM orders o, LATERAL (SELECT o.order_id * 2 AS twice) x",
    "SELECT ARRAY(SELECT order_id FROM orders)",
    "SELECT to_json(o), xmlelement(name o, status) FROM orders o",
    "SELECT string_agg(status, ',' ORDER BY status), lower(max(status)) || '!' FROM orders",
    "SELECT * FROM orders WHERE status ILIKE 'P%' AND order_id BETWEEN 1 AND 3",
    "SELECT 1 UNION SELECT 2",
    "SELECT * FROM generate_series(1, 3)",
    "SELECT now(), random(), md5('x'), gen_random_uuid(), pg_typeof(1), version()",
    "SELECT current_setting('search_path'), current_setting('work_mem')",
    "SELECT pg_current_xact_id_if_assigned(), txid_current_if_assigned()",
    "SELECT has_table_privilege('orders', 'SELECT')",
    "SELECT coalesce(max(order_id), 0), order_id::text FROM orders GROUP BY order_id",
    "SELECT jsonb_build_object('status', status) FROM orders",
]


@pytest.mark.parametrize("sql", READS)
async def test_what_the_guard_allows_changes_nothing_on_postgres(shop: Shop, sql: str) -> None:
    verdict = review_sql(sql, POLICY)
    assert (verdict.verdict, verdict.reasons) == ("allow", [])
    read_only = await _observe(shop, sql, read_only=True)
    assert read_only.error is None, read_only.error
    read_write = await _observe(shop, sql, read_only=False)
    assert read_write.error is None, read_write.error
    assert read_write.changed == set()
    assert read_only.changed == set()


# (statement, the evidence that it acted, whether a READ ONLY transaction lets it act too)
ATTACKS: list[tuple[str, str, bool]] = [
    ("SELECT * INTO stolen FROM orders", "relations", False),
    ("SELECT * INTO TEMP stolen FROM orders", "relations", False),
    ("SELECT order_id INTO UNLOGGED stolen FROM orders", "relations", False),
    ("CREATE TABLE stolen AS SELECT * FROM orders", "relations", False),
    ("CREATE TEMP VIEW v AS SELECT 1", "relations", False),
    ("DO $$ BEGIN CREATE TABLE made_by_do (a int); END $$", "relations", False),
    ("COMMENT ON TABLE orders IS 'changed'", "comments", False),
    ("ANALYZE orders", "stats", False),
    ("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "locks", True),
    ("SELECT * FROM orders FOR UPDATE", "locks", False),
    ("SELECT * FROM orders FOR NO KEY UPDATE", "locks", False),
    ("SELECT * FROM orders FOR SHARE", "xid", False),
    ("SELECT * FROM orders FOR KEY SHARE", "xid", False),
    ("PREPARE wipe AS DELETE FROM orders", "prepared", True),
    ("SELECT query_to_xml('SELECT email FROM users', true, false, '')", "leak", True),
    ("SELECT query_to_xml_and_xmlschema('SELECT * FROM users', true, false, '')", "leak", True),
    ("SELECT table_to_xml('users', true, false, '')", "leak", True),
    ("SELECT schema_to_xml(current_schema(), true, false, '')", "leak", True),
    ("SELECT database_to_xml(true, false, '')::text LIKE '%secret%' AS leaked", "leak", True),
    ("SELECT * FROM ts_stat('SELECT to_tsvector(''simple'', email) FROM users')", "leak", True),
    ("SELECT set_config('search_path', 'public', false)", "settings", True),
    ("SELECT pg_catalog.set_config('statement_timeout', '1234', false)", "settings", True),
    ("SELECT \"set_config\"('work_mem', '7MB', true)", "settings", True),
    ("SELECT nextval('order_seq')", "sequence", False),
    ("SELECT setval('order_seq', 100)", "sequence", False),
    ("SELECT pg_advisory_lock(4242)", "locks", True),
    ("SELECT pg_try_advisory_xact_lock(4242)", "locks", True),
    ("SELECT pg_advisory_lock_shared(4242)", "locks", True),
    ("SELECT lo_create(0)", "large_objects", True),
    ("SELECT lo_from_bytea(0, 'payload')", "large_objects", True),
    ("SELECT txid_current()", "xid", True),
    ("SELECT pg_current_xact_id()", "xid", True),
    ("SELECT pg_read_file('PG_VERSION')", "file", True),
    ("SELECT * FROM pg_ls_dir('.')", "file", True),
    ("SELECT (pg_stat_file('PG_VERSION')).size", "file", True),
    ("DELETE FROM orders WHERE 1 IN (1)", "rows", False),
    ("DELETE FROM orders WHERE EXISTS (SELECT 1)", "rows", False),
    ("DELETE FROM orders WHERE 'a' LIKE '%'", "rows", False),
    ("DELETE FROM orders WHERE order_id = order_id", "rows", False),
    ("DELETE FROM orders WHERE COALESCE(TRUE, status = 'x')", "rows", False),
    ("DELETE FROM orders WHERE NULL IS NULL", "rows", False),
    ("DELETE FROM orders WHERE 1 BETWEEN 0 AND 2", "rows", False),
    ("DELETE FROM orders WHERE 'a' || 'b' = 'ab'", "rows", False),
    ("UPDATE orders SET status = 'x' WHERE TRUE IS TRUE", "rows", False),
    ("UPDATE orders SET status = 'x' WHERE NOT FALSE", "rows", False),
    ("UPDATE orders SET status = 'x' WHERE order_id = 1 OR 2 > 1", "rows", False),
    ("DELETE FROM orders WHERE (SELECT count(*) FROM order_items) > 0", "rows", False),
]


@pytest.mark.parametrize(
    ("sql", "evidence", "read_only_too"), ATTACKS, ids=[a[0][:60] for a in ATTACKS]
)
async def test_what_the_guard_blocks_really_acts_on_postgres(
    shop: Shop, sql: str, evidence: str, read_only_too: bool
) -> None:
    verdict = review_sql(sql, POLICY)
    assert verdict.verdict == "block", verdict.reasons
    modes = (False, True) if read_only_too else (False,)
    for read_only in modes:
        seen = await _observe(shop, sql, read_only=read_only)
        await _forget_session_state(shop)
        assert seen.error is None, (read_only, seen.error)
        if evidence == "leak":
            assert SECRET in str(seen.rows) or seen.rows == [(True,)], seen.rows
            assert "users" not in verdict.tables  # the allowlist never saw the table
        elif evidence == "file":
            assert seen.rows, seen.rows
            assert seen.rows[0][0], seen.rows
        else:
            assert evidence in seen.changed, (read_only, seen.changed)


async def test_pg_notify_reaches_other_sessions_from_a_read_only_transaction(shop: Shop) -> None:
    sql = "SELECT pg_notify('sqlguard_probe', 'from a read-only transaction')"
    assert review_sql(sql, POLICY).verdict == "block"
    listener = await asyncpg.connect(_url())
    got: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener("sqlguard_probe", lambda *args: got.put_nowait(args[3]))
        async with shop.conn.transaction(readonly=True):
            await shop.conn.fetch(sql)
        assert await asyncio.wait_for(got.get(), timeout=30) == "from a read-only transaction"
    finally:
        await listener.close()


async def test_dblink_exec_commits_outside_the_callers_transaction(shop: Shop) -> None:
    available = await shop.conn.fetchval(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'dblink'"
    )
    installed = await shop.conn.fetchval(
        "SELECT count(*) FROM pg_extension WHERE extname = 'dblink'"
    )
    if not available or installed:
        pytest.skip("needs the dblink extension available and not yet installed in this database")
    await shop.conn.execute(f'CREATE EXTENSION dblink SCHEMA "{shop.schema}"')
    u = urlsplit(_url())
    target = (
        f"host={u.hostname or '127.0.0.1'} port={u.port or 5432} "
        f"user={u.username or 'postgres'} dbname={u.path.lstrip('/') or 'test'}"
    )
    sql = (
        f"SELECT dblink_exec('{target}', 'CREATE TABLE \"{shop.schema}\".escaped AS SELECT 1 AS a')"
    )
    assert review_sql(sql, POLICY).verdict == "block"
    tx = shop.conn.transaction(readonly=True)
    await tx.start()
    await shop.conn.fetch(sql)
    await tx.rollback()
    # the caller's transaction was read-only and rolled back; the table stays
    exists = await shop.conn.fetchval(
        "SELECT count(*) FROM pg_class WHERE relname = 'escaped' "
        "AND relnamespace = $1::text::regnamespace",
        shop.schema,
    )
    assert exists == 1
