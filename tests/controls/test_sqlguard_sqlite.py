"""The SQL guard against a real SQLite database (a file in ``tmp_path``).

What the guard allows under ``read_only`` runs on a ``query_only``
connection without error and, on an ordinary one, leaves the schema, the
rows, the pragmas, the attached databases, the files beside the database and
the transaction state as they were. What it blocks, run anyway, changes one
of them.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tether.controls.sqlguard import SqlPolicy, review_sql

POLICY = SqlPolicy(dialect="sqlite", allowed_tables=frozenset({"orders", "order_items"}))

SETUP = """
CREATE TABLE orders (order_id INTEGER PRIMARY KEY, user_id INTEGER, status TEXT, extra TEXT);
CREATE TABLE order_items (order_id INTEGER, sku TEXT, price REAL);
CREATE TABLE users (user_id INTEGER PRIMARY KEY, email TEXT);
INSERT INTO orders VALUES (1, 1, 'pending', '{"gift": true}'), (2, 1, 'delivered', '{}'),
    (3, 2, 'pending', NULL);
INSERT INTO order_items VALUES (1, 'A', 10.0), (2, 'B', 5.5);
INSERT INTO users VALUES (1, 'alice@example.com');
"""


@dataclass
class Shop:
    conn: sqlite3.Connection
    path: Path


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit: nothing hides in a transaction
    conn.executescript(SETUP)
    try:
        yield Shop(conn, path)
    finally:
        conn.close()


def _snapshot(shop: Shop) -> dict[str, object]:
    c = shop.conn
    return {
        "schema": c.execute("SELECT type, name, sql FROM sqlite_master ORDER BY 1, 2").fetchall(),
        "temp": c.execute("SELECT type, name FROM sqlite_temp_master ORDER BY 1, 2").fetchall(),
        "rows": [
            c.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("orders", "order_items", "users")
        ],
        "pragmas": [
            c.execute(f"PRAGMA {p}").fetchall()
            for p in ("user_version", "application_id", "writable_schema", "foreign_keys")
        ],
        "databases": [row[1:] for row in c.execute("PRAGMA database_list").fetchall()],
        "files": sorted(p.name for p in shop.path.parent.iterdir()),
        "in_transaction": c.in_transaction,
        "bytes": hashlib.sha256(shop.path.read_bytes()).hexdigest(),
    }


def _changed(shop: Shop, sql: str) -> set[str]:
    before = _snapshot(shop)
    shop.conn.execute(sql).fetchall()
    after = _snapshot(shop)
    return {k for k in before if before[k] != after[k]}


READS = [
    "SELECT * FROM orders",
    "SELECT status, COUNT(*) FROM orders GROUP BY status",
    "WITH p AS (SELECT * FROM orders WHERE status = 'pending') SELECT COUNT(*) FROM p",
    "SELECT o.order_id, i.sku FROM orders o JOIN order_items i USING (order_id)",
    "SELECT * FROM orders WHERE order_id IN (SELECT order_id FROM order_items)",
    "SELECT order_id, ROW_NUMBER() OVER (ORDER BY order_id) FROM orders",
    "SELECT json_extract(extra, '$.gift'), printf('%05d', order_id) FROM orders",
    "SELECT datetime('now'), random(), hex('a'), typeof(1), sqlite_version()",
    "SELECT * FROM orders WHERE status LIKE 'p%' LIMIT 2 OFFSET 1",
    "SELECT group_concat(status, ',') FROM orders",
    "SELECT CASE WHEN status = 'pending' THEN 1 ELSE 0 END FROM orders",
    "SELECT 1 UNION SELECT 2",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT changes(), last_insert_rowid(), total_changes()",
    "SELECT COALESCE(MAX(price), 0) FROM order_items",
]


@pytest.mark.parametrize("sql", READS)
def test_what_the_guard_allows_changes_nothing_on_sqlite(shop: Shop, sql: str) -> None:
    verdict = review_sql(sql, POLICY)
    assert (verdict.verdict, verdict.reasons) == ("allow", [])
    assert _changed(shop, sql) == set()
    shop.conn.execute("PRAGMA query_only = 1")
    shop.conn.execute(sql).fetchall()  # a write would raise "attempt to write a readonly database"


# (statement, what changes when it runs; {d} is the folder of the database)
ATTACKS: list[tuple[str, str]] = [
    ("ATTACH DATABASE '{d}/other.db' AS other", "databases"),
    ("ATTACH ':memory:' AS scratch", "databases"),
    ("VACUUM INTO '{d}/copy.db'", "files"),
    ("VACUUM", "bytes"),
    ("PRAGMA user_version = 7", "pragmas"),
    ("PRAGMA writable_schema = 1", "pragmas"),
    ("PRAGMA application_id = 5", "pragmas"),
    ("ANALYZE", "schema"),
    ("CREATE TABLE stolen AS SELECT * FROM orders", "schema"),
    ("CREATE TEMP TABLE stolen AS SELECT * FROM orders", "temp"),
    ("CREATE VIEW v AS SELECT 1", "schema"),
    ("REPLACE INTO orders (order_id, status) VALUES (1, 'replaced')", "rows"),
    ("INSERT OR REPLACE INTO orders (order_id, status) VALUES (1, 'replaced')", "rows"),
    ("BEGIN", "in_transaction"),
    ("SAVEPOINT s", "in_transaction"),
    ("DELETE FROM orders WHERE 1 IN (1)", "rows"),
    ("DELETE FROM orders WHERE EXISTS (SELECT 1)", "rows"),
    ("DELETE FROM orders WHERE 'a' LIKE '%'", "rows"),
    ("DELETE FROM orders WHERE 1", "rows"),
    ("DELETE FROM orders WHERE NOT 0", "rows"),
    ("DELETE FROM orders WHERE order_id = order_id", "rows"),
    ("DELETE FROM orders WHERE 1 BETWEEN 0 AND 2", "rows"),
    ("DELETE FROM orders WHERE COALESCE(1, status)", "rows"),
    ("DELETE FROM orders WHERE 'a' || 'b' = 'ab'", "rows"),
    ("DELETE FROM orders WHERE NULL IS NULL", "rows"),
    ("DELETE FROM orders WHERE order_id = 2 OR 1 = 1", "rows"),
    ("DELETE FROM orders WHERE ABS(-1) = 1", "rows"),
    ("UPDATE orders SET status = 'x' WHERE TRUE IS TRUE", "rows"),
    ("UPDATE orders SET status = 'x' WHERE order_id = order_id OR 2 > 1", "rows"),
]


@pytest.mark.parametrize(("sql", "evidence"), ATTACKS, ids=[a[0][:60] for a in ATTACKS])
def test_what_the_guard_blocks_really_acts_on_sqlite(shop: Shop, sql: str, evidence: str) -> None:
    sql = sql.format(d=shop.path.parent)
    verdict = review_sql(sql, POLICY)
    assert verdict.verdict == "block", verdict.reasons
    assert evidence in _changed(shop, sql)


def test_load_extension_would_reach_for_a_file(shop: Shop, tmp_path: Path) -> None:
    sql = f"SELECT load_extension('{tmp_path}/evil')"
    verdict = review_sql(sql, POLICY)
    assert verdict.verdict == "block"
    assert verdict.reasons == [
        "the function load_extension() reaches outside the database (sqlite)"
    ]
    if not hasattr(shop.conn, "enable_load_extension"):
        pytest.skip("this Python's sqlite3 is built without extension loading")
    shop.conn.enable_load_extension(True)
    with pytest.raises(sqlite3.OperationalError, match="evil"):
        shop.conn.execute(sql)  # it looked for the file on disk
