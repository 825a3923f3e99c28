"""``tether guard``: the guards, on your own data.

- ``tether guard sql [FILE]``: review SQL statements, one per line (from
  FILE or standard input), with :func:`tether.controls.sqlguard.review_sql`;
  writes one JSON line per statement: ``{"verdict": "allow" | "approve" |
  "block", "reasons": [...]}``.

Importing this module registers the commands on :data:`tether.surfaces.cli.app.app`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tether.controls.sqlguard import SqlPolicy, review_sql
from tether.surfaces.cli.app import _fail, app

__all__ = ["guard_app", "sql"]

guard_app = typer.Typer(help="Check input with Tether's guards.", no_args_is_help=True)
app.add_typer(guard_app, name="guard")


@guard_app.command("sql")
def sql(
    file: Annotated[
        Path | None, typer.Argument(help="SQL statements, one per line (default: stdin).")
    ] = None,
    allow_table: Annotated[
        list[str] | None,
        typer.Option("--allow-table", help="A table the SQL may use (repeat; default: any)."),
    ] = None,
    read_write: Annotated[
        bool, typer.Option("--read-write", help="Writes need approval instead of being blocked.")
    ] = False,
    destructive: Annotated[
        str, typer.Option(help="What DROP, TRUNCATE, DELETE without WHERE... get: block|approve.")
    ] = "block",
    dialect: Annotated[str, typer.Option(help="sqlglot dialect: sqlite, postgres...")] = "sqlite",
) -> None:
    """Review SQL: one JSON line per statement, {"verdict": ..., "reasons": [...]}."""
    if destructive not in ("block", "approve"):
        raise _fail(f"--destructive must be 'block' or 'approve', not {destructive!r}")
    policy = SqlPolicy(
        allowed_tables=frozenset(t.lower() for t in allow_table) if allow_table else None,
        read_only=not read_write,
        destructive="approve" if destructive == "approve" else "block",
        dialect=dialect or None,
    )
    try:
        text = file.read_text(encoding="utf-8") if file is not None else sys.stdin.read()
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror or exc}") from None
    for line in text.splitlines():
        if not line.strip():
            continue
        verdict = review_sql(line, policy)
        sys.stdout.write(json.dumps(verdict.to_dict(), ensure_ascii=False) + "\n")
