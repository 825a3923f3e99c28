"""`tether guard sql`: one JSON verdict per statement, from a file or standard input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tether.surfaces.cli import app

STATEMENTS = """\
SELECT * FROM orders WHERE status = 'pending'
DROP TABLE orders

DELETE FROM orders WHERE 1=1
SELECT email FROM users
UPDATE orders SET status = 'x' WHERE order_id = '#W1'
"""


def test_a_file_of_statements_gets_one_verdict_each(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text(STATEMENTS)
    result = CliRunner().invoke(
        app, ["guard", "sql", str(path), "--allow-table", "orders"], catch_exceptions=False
    )
    assert result.exit_code == 0
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["verdict"] for x in lines] == ["allow", "block", "block", "block", "block"]
    assert lines[0]["reasons"] == []
    assert lines[1]["reasons"] == ["DROP is destructive"]
    assert "table users is not in the allowed tables" in lines[3]["reasons"]
    assert "read-only" in lines[4]["reasons"][0]


def test_stdin_and_a_read_write_policy() -> None:
    result = CliRunner().invoke(
        app,
        ["guard", "sql", "--read-write"],
        input="UPDATE orders SET status = 'x' WHERE order_id = '#W1'\nDROP TABLE t\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    verdicts = [json.loads(x)["verdict"] for x in result.stdout.splitlines()]
    assert verdicts == ["approve", "block"]


def test_a_bad_option_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(app, ["guard", "sql", "--destructive", "maybe"], input="SELECT 1")
    assert result.exit_code == 2
    assert "--destructive must be 'block' or 'approve'" in result.stderr
