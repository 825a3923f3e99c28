"""The SQL guard: a table of destructive and safe statements, and the rules one by one."""

from __future__ import annotations

import pytest

from tether.controls.sqlguard import SqlPolicy, review_sql

SHOP = SqlPolicy(allowed_tables=frozenset({"orders", "order_items", "products", "variants"}))

# (statement, verdict under the read-only shop policy, a word its reasons must contain)
TABLE: list[tuple[str, str, str]] = [
    # safe reads
    ("SELECT * FROM orders", "allow", ""),
    ("SELECT status, COUNT(*) FROM orders GROUP BY status", "allow", ""),
    ("SELECT * FROM orders WHERE status = 'pending' LIMIT 5", "allow", ""),
    ("select o.order_id, i.name from orders o join order_items i using (order_id)", "allow", ""),
    ("SELECT AVG(price) FROM variants WHERE available = 1", "allow", ""),
    (
        "SELECT p.name FROM products p WHERE p.product_id IN (SELECT product_id FROM variants)",
        "allow",
        "",
    ),
    (
        "WITH pending AS (SELECT * FROM orders WHERE status = 'pending') "
        "SELECT COUNT(*) FROM pending",
        "allow",
        "",
    ),
    ("SELECT * FROM orders ORDER BY pos DESC", "allow", ""),
    ("SELECT 1", "allow", ""),
    ("SELECT * FROM orders WHERE order_id = '#W1'; ", "allow", ""),
    ("SELECT CASE WHEN status = 'delivered' THEN 1 ELSE 0 END FROM orders", "allow", ""),
    ("SELECT * FROM orders WHERE zip LIKE '941%'", "allow", ""),
    # destructive
    ("DROP TABLE orders", "block", "DROP"),
    ("drop table if exists order_items", "block", "DROP"),
    ("TRUNCATE TABLE orders", "block", "TRUNCATE"),
    ("ALTER TABLE orders ADD COLUMN note TEXT", "block", "ALTER"),
    ("ALTER TABLE orders RENAME TO old_orders", "block", "ALTER"),
    ("GRANT ALL ON orders TO mallory", "block", "GRANT"),
    ("REVOKE SELECT ON orders FROM alice", "block", "REVOKE"),
    (
        "MERGE INTO orders USING products ON orders.order_id = products.product_id "
        "WHEN MATCHED THEN DELETE",
        "block",
        "MERGE",
    ),
    ("DELETE FROM orders", "block", "without WHERE"),
    ("UPDATE orders SET status = 'cancelled'", "block", "without WHERE"),
    ("DELETE FROM orders WHERE 1=1", "block", "always-true"),
    ("DELETE FROM orders WHERE 1 = 1 AND 2 = 2", "block", "always-true"),
    ("UPDATE orders SET status = 'x' WHERE 'a' = 'a'", "block", "always-true"),
    ("DELETE FROM orders WHERE order_id = '#W1' OR 1=1", "block", "always-true"),
    ("DELETE FROM orders WHERE TRUE", "block", "always-true"),
    ("DELETE FROM orders WHERE 1", "block", "always-true"),
    ("DELETE FROM orders WHERE 2 > 1", "block", "always-true"),
    ("DELETE FROM orders WHERE NOT 0", "block", "always-true"),
    ("DELETE FROM orders WHERE status = status", "block", "always-true"),
    ("WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone", "block", "DELETE"),
    # stacked queries
    ("SELECT * FROM orders; DROP TABLE orders", "block", "2 statements"),
    ("SELECT 1; SELECT 2", "block", "2 statements"),
    # other writes on a read-only connection
    ("DELETE FROM orders WHERE order_id = '#W1'", "block", "read-only"),
    ("UPDATE orders SET status = 'cancelled' WHERE order_id = '#W1'", "block", "read-only"),
    ("INSERT INTO orders (order_id) VALUES ('#X')", "block", "read-only"),
    ("CREATE TABLE stolen AS SELECT * FROM orders", "block", "read-only"),
    ("ATTACH DATABASE '/tmp/x.db' AS x", "block", "another database file"),
    ("PRAGMA writable_schema = 1", "block", "read-only"),
    # tables outside the allowlist
    ("SELECT * FROM users", "block", "users"),
    ("SELECT email FROM orders o JOIN users u ON o.user_id = u.user_id", "block", "users"),
    ("SELECT * FROM (SELECT * FROM payment_methods) p", "block", "payment_methods"),
    ("SELECT name, sql FROM sqlite_master", "block", "sqlite_master"),
    ("SELECT * FROM orders UNION SELECT email, 1, 1 FROM users", "block", "users"),
    # functions that reach outside the database
    ("SELECT load_extension('/tmp/evil.so')", "block", "load_extension"),
    ("SELECT readfile('/etc/passwd')", "block", "readfile"),
    # cannot be reviewed: refused
    ("SELEC * FORM orders", "block", "not a SQL statement"),
    ("SELECT * FROM", "block", "cannot be parsed"),
    ("", "block", "empty"),
    ("   ;   ", "block", "no statement"),
]


@pytest.mark.parametrize(("sql", "verdict", "word"), TABLE, ids=[t[0][:48] for t in TABLE])
def test_the_table(sql: str, verdict: str, word: str) -> None:
    v = review_sql(sql, SHOP)
    assert v.verdict == verdict, v.reasons
    if verdict == "allow":
        assert v.reasons == []
    else:
        assert any(word.lower() in r.lower() for r in v.reasons), v.reasons


def test_the_table_is_big_enough_and_mixed() -> None:
    assert len(TABLE) >= 40
    assert sum(v == "allow" for _, v, _ in TABLE) >= 10
    assert sum(v == "block" for _, v, _ in TABLE) >= 30


def test_writes_need_approval_on_a_read_write_connection() -> None:
    rw = SqlPolicy(read_only=False)
    v = review_sql("DELETE FROM orders WHERE order_id = '#W1'", rw)
    assert (v.verdict, v.reasons) == ("approve", ["DELETE changes rows"])
    assert review_sql("INSERT INTO orders VALUES (1)", rw).verdict == "approve"
    # destructive stays blocked unless the policy says approve
    assert review_sql("DELETE FROM orders", rw).verdict == "block"
    relaxed = SqlPolicy(read_only=False, destructive="approve")
    assert review_sql("DROP TABLE orders", relaxed).verdict == "approve"
    assert review_sql("DELETE FROM orders WHERE 1=1", relaxed).verdict == "approve"


def test_more_statements_when_allowed_are_each_reviewed() -> None:
    two = SqlPolicy(max_statements=2)
    assert review_sql("SELECT 1; SELECT 2", two).verdict == "allow"
    v = review_sql("SELECT 1; DELETE FROM orders", two)
    assert (v.verdict, v.statements) == ("block", 2)


def test_cte_names_are_not_tables_and_tables_are_reported() -> None:
    v = review_sql(
        "WITH o AS (SELECT * FROM orders) SELECT * FROM o JOIN products USING (pos)", SHOP
    )
    assert v.verdict == "allow"
    assert v.tables == ["orders", "products"]


def test_any_table_without_an_allowlist() -> None:
    assert review_sql("SELECT * FROM users").verdict == "allow"
    assert review_sql("SELECT * FROM users").tables == ["users"]


def test_the_verdict_serialises_as_the_cli_prints_it() -> None:
    assert review_sql("DROP TABLE t").to_dict() == {
        "verdict": "block",
        "reasons": ["DROP is destructive"],
    }
