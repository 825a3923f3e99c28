"""``tether guard``: the guards, on your own data.

- ``tether guard sql [FILE]``: review SQL statements (from FILE or standard
  input) with :func:`tether.controls.sqlguard.review_sql`. The input is split
  into statements by the dialect's own tokenizer, so a statement may span
  lines and a ``;`` inside a string or comment splits nothing. Writes one
  JSON line per statement: ``{"line": N, "statement": "SELECT ...",
  "verdict": "allow" | "approve" | "block", "reasons": [...]}``, where
  ``statement`` is a one-line, shortened form with control characters shown
  as escapes. Exits 1 when any statement is blocked, 0 otherwise, 2 on a
  usage error (an unknown dialect, a file that cannot be read).
- ``tether guard scan FILE.jsonl`` (``-`` for standard input): scan lines of
  ``{"text": ...}`` for prompt injection with
  :class:`tether.controls.guards.InjectionDetector`; writes one JSON line per
  input: ``{"score": float, "flagged": bool, "categories": [...]}``
  (``--spans`` adds where and what matched, and the decodings). Lines end at
  ``\n`` only: JSON strings may hold U+2028, U+0085 and the like.

Importing this module registers the commands on :data:`tether.surfaces.cli.app.app`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import Token, TokenType

from tether.controls.guards import InjectionDetector, Source
from tether.controls.sqlguard import SqlPolicy, review_sql
from tether.exceptions import ConfigError
from tether.surfaces.cli.app import _fail, app
from tether.surfaces.cli.render import visible
from tether.surfaces.jsonl import parse_jsonl

__all__ = ["guard_app", "scan", "sql"]

guard_app = typer.Typer(help="Check input with Tether's guards.", no_args_is_help=True)
app.add_typer(guard_app, name="guard")


@guard_app.command("sql")
def sql(
    file: Annotated[
        Path | None, typer.Argument(help="SQL statements, separated by ';' (default: stdin).")
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
    """Review SQL: one JSON line per statement; exit 1 if any is blocked."""
    if destructive not in ("block", "approve"):
        raise _fail(f"--destructive must be 'block' or 'approve', not {destructive!r}")
    try:
        policy = SqlPolicy(
            allowed_tables=frozenset(t.lower() for t in allow_table) if allow_table else None,
            read_only=not read_write,
            destructive="approve" if destructive == "approve" else "block",
            dialect=dialect or None,
        )
    except ConfigError:
        raise _fail(
            f"--dialect: unknown SQL dialect {dialect!r} (sqlite, postgres, mysql...)"
        ) from None
    text = _read(str(file) if file is not None else "-")
    blocked = False
    for line, statement in _statements(text, policy.dialect):
        verdict = review_sql(statement, policy)
        blocked = blocked or verdict.verdict == "block"
        out = {
            "line": line,
            "statement": _one_line(statement),
            "verdict": verdict.verdict,
            "reasons": [visible(r) for r in verdict.reasons],
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=True) + "\n")
    if blocked:
        raise typer.Exit(1)


def _read(file: str) -> str:
    """The text of ``file`` (``-``: standard input); a usage error if it cannot be read."""
    try:
        return sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise _fail(f"cannot read {file}: not UTF-8 text ({exc.reason})") from None


def _statements(text: str, dialect: str | None) -> list[tuple[int, str]]:
    """``text`` split into statements by the dialect's tokenizer: (first line, source text).

    Text the tokenizer cannot read (an unterminated string) cannot be split:
    it is returned whole, as one statement, for the review to refuse.
    """
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(text)
    except SqlglotError:
        return [(1, text.strip())] if text.strip() else []
    out: list[tuple[int, str]] = []
    start: Token | None = None
    end: Token | None = None
    for token in [*tokens, None]:
        if token is None or token.token_type == TokenType.SEMICOLON:
            if start is not None and end is not None:
                out.append((start.line, text[start.start : end.end + 1]))
            start = end = None
        else:
            start = start or token
            end = token
    return out


def _one_line(statement: str, limit: int = 100) -> str:
    """``statement`` on one line, shortened, with control characters shown as escapes."""
    flat = " ".join(statement.split())
    return visible(flat if len(flat) <= limit else flat[: limit - 1] + "…")


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
    text = _read(file)
    detector = InjectionDetector(thresholds={source: threshold} if threshold is not None else None)
    kind: Source = "user" if source == "user" else "tool"
    # the shared reader: "\n" only (U+2028 inside strings is valid), a BOM skipped,
    # depth and number size bounded, every problem one line with its line number
    try:
        rows = parse_jsonl(text, source=str(file))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    for number, row in rows:
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
        sys.stdout.write(json.dumps(out, ensure_ascii=True) + "\n")
