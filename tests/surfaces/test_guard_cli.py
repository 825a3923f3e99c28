"""`tether guard sql`: one JSON verdict per statement, from a file or standard input.

Also `tether guard scan`'s reading of JSON Lines (its detector is tested in
tests/controls/test_guards.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.surfaces.cli import app

STATEMENTS = """\
SELECT * FROM orders WHERE status = 'pending';
DROP TABLE orders;

DELETE FROM orders WHERE 1=1;
SELECT email FROM users;
UPDATE orders SET status = 'x' WHERE order_id = '#W1'
"""


def _lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in stdout.splitlines()]


def test_a_file_of_statements_gets_one_verdict_each(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text(STATEMENTS)
    result = CliRunner().invoke(
        app, ["guard", "sql", str(path), "--allow-table", "orders"], catch_exceptions=False
    )
    assert result.exit_code == 1  # some are blocked
    lines = _lines(result.stdout)
    assert [x["verdict"] for x in lines] == ["allow", "block", "block", "block", "block"]
    assert [x["line"] for x in lines] == [1, 2, 4, 5, 6]
    assert lines[0] == {
        "line": 1,
        "statement": "SELECT * FROM orders WHERE status = 'pending'",
        "verdict": "allow",
        "reasons": [],
    }
    assert lines[1]["reasons"] == ["DROP is destructive"]
    assert "table users is not in the allowed tables" in lines[3]["reasons"]
    assert "read-only" in lines[4]["reasons"][0]


def test_stdin_and_a_read_write_policy() -> None:
    result = CliRunner().invoke(
        app,
        ["guard", "sql", "--read-write"],
        input="UPDATE orders SET status = 'x' WHERE order_id = '#W1';\nDROP TABLE t\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    assert [x["verdict"] for x in _lines(result.stdout)] == ["approve", "block"]


def test_no_block_exits_0_even_with_approvals() -> None:
    result = CliRunner().invoke(
        app,
        ["guard", "sql", "--read-write", "-"],
        input="SELECT 1;\nINSERT INTO orders VALUES (1);\n-- a comment\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    assert [x["verdict"] for x in _lines(result.stdout)] == ["allow", "approve"]


def test_a_multi_line_statement_is_one_statement() -> None:
    sql = """\
SELECT o.order_id,
       i.name
  FROM orders o
  JOIN order_items i USING (order_id)
 WHERE o.status = 'x';
SELECT 1
"""
    result = CliRunner().invoke(app, ["guard", "sql"], input=sql, catch_exceptions=False)
    assert result.exit_code == 0
    lines = _lines(result.stdout)
    assert [(x["line"], x["verdict"]) for x in lines] == [(1, "allow"), (6, "allow")]
    assert lines[0]["statement"] == (
        "SELECT o.order_id, i.name FROM orders o JOIN order_items i USING (order_id) "
        "WHERE o.status = 'x'"
    )


def test_a_destructive_statement_split_over_lines_is_still_caught() -> None:
    # line by line, "DELETE FROM orders" alone would be one statement and "WHERE id = 1" another
    sql = "DELETE FROM orders\nWHERE 1 IN (1);\nUPDATE orders\nSET status = 'x'\n"
    result = CliRunner().invoke(app, ["guard", "sql", "--read-write"], input=sql)
    assert result.exit_code == 1
    lines = _lines(result.stdout)
    assert [(x["line"], x["verdict"]) for x in lines] == [(1, "block"), (3, "block")]
    assert "always-true" in lines[0]["reasons"][0]
    assert "without WHERE" in lines[1]["reasons"][0]


def test_semicolons_in_strings_comments_and_dollar_quotes_split_nothing() -> None:
    sql = (
        "SELECT 'a;b' AS \"x;y\" -- not; the end\nFROM orders;\n"
        "/* ; */ SELECT $$ ; $$;\n"
        "DO $body$ BEGIN DELETE FROM orders; END $body$;\n"
    )
    result = CliRunner().invoke(app, ["guard", "sql", "--dialect", "postgres"], input=sql)
    lines = _lines(result.stdout)
    assert [x["verdict"] for x in lines] == ["allow", "allow", "block"]
    assert lines[0]["statement"] == "SELECT 'a;b' AS \"x;y\" -- not; the end FROM orders"
    assert lines[2]["statement"] == "DO $body$ BEGIN DELETE FROM orders; END $body$"
    assert result.exit_code == 1


def test_a_statement_that_does_not_parse_is_reported_blocked() -> None:
    result = CliRunner().invoke(
        app, ["guard", "sql"], input="SELECT * FROM;\nSELECT 1;\nSELEC 1 FORM t\n"
    )
    assert result.exit_code == 1
    lines = _lines(result.stdout)
    assert [x["verdict"] for x in lines] == ["block", "allow", "block"]
    assert lines[0]["statement"] == "SELECT * FROM"
    assert "cannot be parsed" in lines[0]["reasons"][0]


def test_text_that_cannot_be_tokenized_is_one_blocked_statement() -> None:
    result = CliRunner().invoke(app, ["guard", "sql"], input="SELECT 1;\nSELECT 'unterminated\n")
    assert result.exit_code == 1
    lines = _lines(result.stdout)
    assert len(lines) == 1
    assert lines[0]["verdict"] == "block"
    assert lines[0]["statement"] == "SELECT 1; SELECT 'unterminated"


def test_the_echoed_statement_cannot_drive_the_terminal() -> None:
    sql = (
        "SELECT '\x1b[2J\x1b]0;pwned\x07\x9b31m' FROM orders;\n"
        "DELETE FROM t WHERE '\x1b[1A' = '\x1b[1A'\n"
    )
    result = CliRunner().invoke(app, ["guard", "sql"], input=sql)
    assert result.exit_code == 1
    for raw in ("\x1b", "\x07", "\x9b"):
        assert raw not in result.stdout
    lines = _lines(result.stdout)
    assert lines[0]["statement"] == "SELECT '\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m' FROM orders"
    assert "\x1b" not in lines[1]["reasons"][0]
    assert "\\x1b[1A" in lines[1]["reasons"][0]


def test_a_long_statement_is_shortened_to_one_line() -> None:
    sql = "SELECT " + ",\n".join(f"col_{i}" for i in range(60)) + " FROM orders"
    result = CliRunner().invoke(app, ["guard", "sql"], input=sql)
    assert result.exit_code == 0
    (line,) = _lines(result.stdout)
    assert len(line["statement"]) == 100
    assert line["statement"].startswith("SELECT col_0, col_1,")
    assert line["statement"].endswith("…")


def test_empty_input_is_no_statement_and_exit_0() -> None:
    result = CliRunner().invoke(app, ["guard", "sql"], input="\n  -- nothing here\n;;\n")
    assert (result.exit_code, result.stdout) == (0, "")


def test_a_bad_option_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(app, ["guard", "sql", "--destructive", "maybe"], input="SELECT 1")
    assert result.exit_code == 2
    assert "--destructive must be 'block' or 'approve'" in result.stderr


def test_an_unknown_dialect_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["guard", "sql", "--dialect", "postgress"], input="SELECT 1")
    assert result.exit_code == 2
    assert "unknown SQL dialect 'postgress'" in result.stderr
    assert result.stdout == ""


def test_an_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["guard", "sql", str(tmp_path / "nope.sql")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr
    binary = tmp_path / "q.sql"
    binary.write_bytes(b"SELECT '\xff\xfe'")
    not_utf8 = CliRunner().invoke(app, ["guard", "sql", str(binary)])
    assert not_utf8.exit_code == 2
    assert "not UTF-8" in not_utf8.stderr


def test_the_dialect_decides_what_is_refused() -> None:
    sql = "SELECT set_config('search_path', 'evil', false);\nSELECT * INTO stolen FROM orders\n"
    result = CliRunner().invoke(app, ["guard", "sql", "--dialect", "postgres"], input=sql)
    assert result.exit_code == 1
    lines = _lines(result.stdout)
    assert [x["verdict"] for x in lines] == ["block", "block"]
    assert "set_config" in lines[0]["reasons"][0]
    assert "SELECT INTO" in lines[1]["reasons"][0]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_scan_reads_json_lines_at_newlines_only(tmp_path: Path, separator: str) -> None:
    # str.splitlines() breaks inside these JSON strings; JSON allows them unescaped
    text = f"first{separator}second line"
    rows = [json.dumps({"text": text}, ensure_ascii=False), json.dumps({"text": "hello"})]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(rows) + "\r\n", encoding="utf-8")
    assert separator in path.read_text(encoding="utf-8")
    result = CliRunner().invoke(app, ["guard", "scan", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    out = _lines(result.stdout)
    assert len(out) == 2
    assert all({"score", "flagged", "categories"} <= set(o) for o in out)
