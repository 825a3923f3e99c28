"""A WHERE that filters nothing is no WHERE: constant folding and row independence.

Before the fold, each of these got ``approve`` on a read-write connection
("DELETE changes rows") although it changes every row.
"""

from __future__ import annotations

import pytest

from tether.controls._sql_fold import UNKNOWN, fold
from tether.controls.sqlguard import SqlPolicy, review_sql

DIALECTS = ("postgres", "sqlite", "mysql")

ALWAYS_TRUE = [
    "1 IN (1)",
    "2 IN (1, 2, 3)",
    "1 NOT IN (2, 3)",
    "'a' IN ('b', 'a')",
    "1 IN (SELECT 1)",
    "1 IN (SELECT 2 UNION SELECT 1)",
    "TRUE IS TRUE",
    "FALSE IS FALSE",
    "TRUE IS NOT FALSE",
    "NOT (TRUE IS FALSE)",
    "NULL IS NULL",
    "1 IS NOT NULL",
    "'x' IS NOT NULL",
    "NOT NULL IS NOT NULL",
    "EXISTS (SELECT 1)",
    "EXISTS (SELECT NULL)",
    "EXISTS (SELECT 1 WHERE 1 = 1)",
    "EXISTS (SELECT 1 LIMIT 1)",
    "EXISTS (SELECT 1 UNION ALL SELECT 2)",
    "NOT EXISTS (SELECT 1 WHERE FALSE)",
    "'a' LIKE '%'",
    "'abc' LIKE 'a%'",
    "'abc' LIKE 'a_c'",
    "'abc' NOT LIKE 'b%'",
    "'ab' ILIKE 'A%'",
    "'a%' LIKE 'a!%' ESCAPE '!'",
    "NOT FALSE",
    "NOT (1 = 2)",
    "NOT NOT TRUE",
    "1 BETWEEN 0 AND 2",
    "1 NOT BETWEEN 2 AND 3",
    "'b' BETWEEN 'b' AND 'b'",
    "COALESCE(TRUE, x)",
    "COALESCE(NULL, TRUE)",
    "COALESCE(NULL, NULL, 1) = 1",
    "NULLIF(1, 2) = 1",
    "NULLIF(1, 1) IS NULL",
    "x = x",
    "t.x = t.x",
    "x >= x",
    "x <= x",
    "NOT (x <> x)",
    "NOT (x < x)",
    "x LIKE '%'",
    "x LIKE '%%'",
    "x LIKE x",
    "x IS NULL OR x IS NOT NULL",
    "x IS NOT NULL OR x IS NULL",
    "x IS NULL OR NOT x IS NULL",
    "'a' || 'b' = 'ab'",
    "'a' || 'b' || 'c' IN ('abc')",
    "2 > 1",
    "1 < 2",
    "-1 < 0",
    "1 + 1 = 2",
    "2 * 3 = 6",
    "1 <> 2",
    "1 = 1.0",
    "'a' = 'a'",
    "'a' <> 'b'",
    "TRUE",
    "1",
    "(((1 = 1)))",
    "id = id OR 1 = 1",
    "id = 5 OR 1 IN (1)",
    "status = 'x' OR EXISTS (SELECT 1)",
    "(id = 5 AND status = 'x') OR TRUE IS TRUE",
    "id = 5 OR (status = 'x' OR 'a' LIKE '%')",
    "id = id AND 1 = 1",
    "CASE WHEN 1 = 1 THEN TRUE ELSE FALSE END",
    "CASE 1 WHEN 2 THEN FALSE WHEN 1 THEN TRUE END",
    "CASE WHEN NULL THEN FALSE ELSE TRUE END",
    "(SELECT 1) = 1",
    "(SELECT 1 WHERE FALSE) IS NULL",
    "1 IS NOT DISTINCT FROM 1",
    "NULL IS NOT DISTINCT FROM NULL",
    "1 IS DISTINCT FROM 2",
    "x IS NOT DISTINCT FROM x",
    "2 BETWEEN SYMMETRIC 3 AND 1",
]

ROW_INDEPENDENT = [
    "ABS(-1) = 1",
    "'1' = 1",
    "'a' = 'A'",
    "'é' = 'e'",
    "'A' LIKE 'a'",
    "'x'",
    "?",
    "id = 5 OR ?",
    "random() < 2",
    "CURRENT_DATE > '2000-01-01'",
    "(SELECT count(*) FROM admins) > 0",
    "EXISTS (SELECT * FROM admins)",
    "id = 5 OR (SELECT count(*) FROM admins) > 0",
    "length('abc') = 3",
    "upper('a') = 'A'",
    "6 / 3 = 2",
]

FILTERS = [
    "id = 5",
    "id IN (1, 2)",
    "status = 'pending' AND id > 3",
    "x LIKE 'a%'",
    "x = y",
    "x <> x",
    "x IS NULL",
    "id BETWEEN 1 AND 10",
    "EXISTS (SELECT 1 FROM items i WHERE i.order_id = t.id)",
    "id IN (SELECT order_id FROM items)",
    "1 = 0",
    "FALSE",
    "NULL",
    "0",
    "NULL = NULL",
    "1 IN (2, 3)",
    "1 NOT IN (1, NULL)",
    "2 NOT IN (1, NULL)",
    "'a' LIKE 'b%'",
    "EXISTS (SELECT 1 WHERE FALSE)",
    "EXISTS (SELECT 1 LIMIT 0)",
    "EXISTS (SELECT 1 OFFSET 1)",
    "id = 5 OR 1 = 0",
    "id = 5 AND 1 = 1",
    "id = 5 AND ?",
    "COALESCE(NULL, FALSE)",
    "NULL IS NOT NULL",
    "CASE WHEN 1 = 2 THEN TRUE END",
]


def _delete_and_update(where: str) -> list[str]:
    return [
        f"DELETE FROM t WHERE {where}",
        f"UPDATE t SET status = 'x' WHERE {where}",
        f"WITH gone AS (DELETE FROM t WHERE {where} RETURNING *) SELECT count(*) FROM gone",
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("where", ALWAYS_TRUE)
def test_an_always_true_where_is_no_where(where: str, dialect: str) -> None:
    for sql in _delete_and_update(where):
        v = review_sql(sql, SqlPolicy(dialect=dialect, read_only=False))
        assert v.verdict == "block", (sql, v.reasons)
        if dialect == "mysql" and "||" in where:
            continue  # MySQL's || is OR: 'a' OR ... does not depend on the row, still refused
        assert any("always-true WHERE" in r for r in v.reasons), (sql, v.reasons)
        relaxed = review_sql(
            sql, SqlPolicy(dialect=dialect, read_only=False, destructive="approve")
        )
        assert relaxed.verdict == "approve"
        assert all("changes rows" not in r for r in relaxed.reasons), relaxed.reasons


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("where", ROW_INDEPENDENT)
def test_a_where_that_ignores_the_row_changes_every_row_or_none(where: str, dialect: str) -> None:
    for sql in _delete_and_update(where):
        v = review_sql(sql, SqlPolicy(dialect=dialect, read_only=False))
        assert v.verdict == "block", (sql, v.reasons)
        assert any("does not depend on the row" in r for r in v.reasons), (sql, v.reasons)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("where", FILTERS)
def test_a_real_or_empty_filter_is_judged_as_written(where: str, dialect: str) -> None:
    v = review_sql(f"DELETE FROM t WHERE {where}", SqlPolicy(dialect=dialect, read_only=False))
    assert (v.verdict, v.reasons) == ("approve", ["DELETE changes rows"])
    ro = review_sql(f"UPDATE t SET a = 1 WHERE {where}", SqlPolicy(dialect=dialect))
    assert (ro.verdict, ro.reasons) == (
        "block",
        ["UPDATE writes, and this connection is read-only"],
    )


def test_the_reason_names_the_part_that_filters_nothing() -> None:
    v = review_sql("DELETE FROM orders WHERE order_id = 7 OR 'a' LIKE '%'")
    assert v.reasons == ["DELETE with an always-true WHERE ('a' LIKE '%') changes every row"]


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("NULL = 1", None),
        ("NOT NULL", None),
        ("NULL AND FALSE", False),
        ("NULL OR TRUE", True),
        ("NULL AND TRUE", None),
        ("1 IN (2, NULL)", None),
        ("1 IN (1, NULL)", True),
        ("NULL BETWEEN 1 AND 2", None),
        ("0 BETWEEN 1 AND NULL", False),
        ("'a' || NULL", UNKNOWN),  # NULL may count as '' (Oracle), sqlglot marks it "safe"
        ("'a' || 'b'", "ab"),
        ("COALESCE(NULL, NULL)", None),
        ("NULL LIKE '%'", None),
        ("'ab' LIKE 'A%'", UNKNOWN),  # case-sensitive on PostgreSQL only
        ("'a\\b' LIKE 'a\\b'", UNKNOWN),  # the default escape differs by engine
        ("'1' = 1", UNKNOWN),
        ("1 = TRUE", UNKNOWN),
        ("'b' > 'a'", UNKNOWN),  # collation
        ("x = 1", UNKNOWN),
        ("EXISTS (SELECT 1 FROM t)", UNKNOWN),
        ("random() = random()", UNKNOWN),
    ],
)
def test_the_fold_follows_three_valued_logic_and_says_when_it_cannot_tell(
    expr: str, value: object
) -> None:
    import sqlglot

    tree = sqlglot.parse_one(f"SELECT * FROM t WHERE {expr}", read="postgres").args["where"].this
    assert fold(tree) == value if value is not UNKNOWN else fold(tree) is UNKNOWN
