"""``tether guard``: the guards, on your own data.

- ``tether guard sql [FILE]``: review SQL statements, one per line (from
  FILE or standard input), with :func:`tether.controls.sqlguard.review_sql`;
  writes one JSON line per statement: ``{"verdict": "allow" | "approve" |
  "block", "reasons": [...]}``.
- ``tether guard scan FILE.jsonl`` (``-`` for standard input): scan lines of
  ``{"text": ...}`` for prompt injection with
  :class:`tether.controls.guards.InjectionDetector`; writes one JSON line per
  input: ``{"score": float, "flagged": bool, "categories": [...]}``
  (``--spans`` adds where and what matched, and the decodings).

Importing this module registers the commands on :data:`tether.surfaces.cli.app.app`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tether.controls.guards import InjectionDetector, Source
from tether.controls.sqlguard import SqlPolicy, review_sql
from tether.surfaces.cli.app import _fail, app

__all__ = ["guard_app", "scan", "sql"]

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


@guard_app.command("scan")
def scan(
    file: Annotated[
        str, typer.Argument(help='JSON lines of {"text": ...}; "-" for standard input.')
    ],
    source: Annotated[
        str, typer.Option(help="Scan as user input or as tool output: user|tool.")
    ] = "user",
    threshold: Annotated[
        float | None,
        typer.Option(help="Flag at this score (default: the detector's for the source)."),
    ] = None,
    spans: Annotated[
        bool, typer.Option("--spans", help="Also write the matched spans and decodings.")
    ] = False,
) -> None:
    """Scan for prompt injection: one JSON line per input, {"score", "flagged", "categories"}."""
    if source not in ("user", "tool"):
        raise _fail(f"--source must be 'user' or 'tool', not {source!r}")
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise _fail(f"--threshold must be in (0, 1], got {threshold}")
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror or exc}") from None
    detector = InjectionDetector(thresholds={source: threshold} if threshold is not None else None)
    kind: Source = "user" if source == "user" else "tool"
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(f"{file}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise _fail(f'{file}:{number}: expected an object with a "text" string')
        result = detector.scan(row["text"], source=kind)
        out: dict[str, object] = {
            "score": round(result.score, 4),
            "flagged": result.flagged,
            "categories": list(result.categories),
        }
        if spans:
            out["spans"] = [s.to_dict() for s in result.spans]
            out["decoded_by"] = list(result.decoded_by)
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
