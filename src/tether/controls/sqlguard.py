"""Reviewing SQL a model wrote before anything runs it (on sqlglot).

:func:`review_sql` parses the text with sqlglot and returns a
:class:`SqlVerdict`: ``allow``, ``approve`` (a person must confirm) or
``block``, with the reasons. The rules, from DESIGN.md guarantee 9:

- **Fail closed.** Text that does not parse, is empty, or parses into
  something sqlglot only keeps as an opaque command is blocked.
- **Every statement.** The text is split into statements; more than
  ``max_statements`` (1 by default: stacked queries are a classic injection)
  is blocked, and each one is reviewed.
- **The whole tree.** Every node of each statement is visited, not just its
  top: a ``DELETE`` inside a CTE of a ``SELECT`` is a ``DELETE``.
- **Destructive statements** (``DROP``, ``TRUNCATE``, ``ALTER``, ``GRANT``,
  ``REVOKE``, ``MERGE``, and ``DELETE`` or ``UPDATE`` without a real
  ``WHERE``) get ``policy.destructive``: ``block`` by default, or
  ``approve``. A ``WHERE`` that is always true (``1=1``, ``'a'='a'``,
  ``x = x``, ``id = 3 OR 1=1``, ``TRUE``, a non-zero number) is no ``WHERE``:
  sqlglot's simplifier reduces the condition, and what reduces to true is a
  tautology.
- **Other writes** (``INSERT``, a ``DELETE``/``UPDATE`` with a real
  ``WHERE``, ``CREATE``, ``COPY``, ``ATTACH``, ``PRAGMA``...) are blocked
  under ``read_only`` (the default) and need approval otherwise.
- **Tables** outside ``allowed_tables`` (when given) are refused, whatever
  the statement; names a CTE defines are not tables.
- **Functions** that reach outside the database (``load_extension``,
  ``readfile``, ``pg_read_file``...) are blocked.

What it does not do: prove a ``SELECT`` cheap (a cross join can still be
slow: run it with a timeout and a row limit), or know your database's
permissions. Give the connection that runs the SQL the least privilege it
needs (a read-only user, SQLite's ``query_only``), and treat this review as
the layer that explains the refusal, not the only one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.simplify import simplify

__all__ = ["SqlPolicy", "SqlVerdict", "review_sql"]

Verdict = Literal["allow", "approve", "block"]
_RANK = {"allow": 0, "approve": 1, "block": 2}

_DESTRUCTIVE: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Drop, "DROP"),
    (exp.TruncateTable, "TRUNCATE"),
    (exp.Alter, "ALTER"),
    (exp.Grant, "GRANT"),
    (exp.Revoke, "REVOKE"),
    (exp.Merge, "MERGE"),
)
_WRITES: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Insert, "INSERT"),
    (exp.Create, "CREATE"),
    (exp.Copy, "COPY"),
    (exp.Attach, "ATTACH"),
    (exp.Detach, "DETACH"),
    (exp.Pragma, "PRAGMA"),
    (exp.Set, "SET"),
    (exp.Use, "USE"),
)
_STATEMENTS: tuple[type[exp.Expr], ...] = (
    exp.Query,
    exp.Delete,
    exp.Update,
    *(kind for kind, _ in _DESTRUCTIVE),
    *(kind for kind, _ in _WRITES),
)
_DANGEROUS_FUNCTIONS = frozenset(
    {
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "fts3_tokenizer",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_sleep",
        "lo_import",
        "lo_export",
        "dblink",
        "sleep",
        "benchmark",
        "load_file",
        "xp_cmdshell",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SqlPolicy:
    """What SQL may do.

    - ``allowed_tables``: lower-case table names that may be read or
      written (``None``: any).
    - ``read_only``: only reads; any write is blocked (else it needs approval).
    - ``destructive``: what a destructive statement gets (``block`` or ``approve``).
    - ``max_statements``: statements allowed in one text.
    - ``dialect``: sqlglot's dialect name (``sqlite``, ``postgres``...).
    """

    allowed_tables: frozenset[str] | None = None
    read_only: bool = True
    destructive: Literal["block", "approve"] = "block"
    max_statements: int = 1
    dialect: str | None = "sqlite"


@dataclass(slots=True)
class SqlVerdict:
    """The review of one SQL text: ``verdict``, why, and the tables it touches."""

    verdict: Verdict = "allow"
    reasons: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    statements: int = 0

    def escalate(self, verdict: Verdict, reason: str) -> None:
        """Record ``reason``; raise the verdict to ``verdict`` if that is worse."""
        if _RANK[verdict] > _RANK[self.verdict]:
            self.verdict = verdict
        if reason not in self.reasons:
            self.reasons.append(reason)

    def to_dict(self) -> dict[str, object]:
        return {"verdict": self.verdict, "reasons": list(self.reasons)}


def _is_tautology(condition: exp.Expr) -> bool:
    """Whether a WHERE condition is always true (so it filters nothing)."""
    try:
        reduced = simplify(condition.copy())
    except SqlglotError:  # a condition the simplifier cannot handle: judged as written
        reduced = condition
    if isinstance(reduced, exp.Boolean):
        return bool(reduced.this)
    if isinstance(reduced, exp.Literal) and reduced.is_number:
        return float(reduced.this) != 0.0
    if isinstance(reduced, (exp.EQ, exp.GTE, exp.LTE, exp.Like)) and (
        reduced.left == reduced.right
    ):
        return True  # x = x, x >= x: true for every non-NULL row
    if isinstance(reduced, exp.Or):
        return _is_tautology(reduced.left) or _is_tautology(reduced.right)
    if isinstance(reduced, exp.Not):
        return _is_contradiction(reduced.this)
    return False


def _is_contradiction(condition: exp.Expr) -> bool:
    """Whether a condition is always false (``NOT`` of it is then always true)."""
    if isinstance(condition, exp.Boolean):
        return not condition.this
    if isinstance(condition, exp.Literal) and condition.is_number:
        return float(condition.this) == 0.0
    if isinstance(condition, exp.Paren):
        return _is_contradiction(condition.this)
    return False


def _review(stmt: exp.Expr, policy: SqlPolicy, v: SqlVerdict) -> None:
    if isinstance(stmt, exp.Command):
        v.escalate("block", f"cannot review this statement ({str(stmt.this).upper()}): refused")
        return
    if not isinstance(stmt, _STATEMENTS):
        # sqlglot reads "SELEC * FORM t" as the expression "SELEC * FORM AS t":
        # anything that is not a statement is a typo or a trick, refused.
        v.escalate("block", f"not a SQL statement ({stmt.sql()[:60]}): refused")
        return
    for node in stmt.walk():
        for kind, word in _DESTRUCTIVE:
            if isinstance(node, kind):
                v.escalate(policy.destructive, f"{word} is destructive")
        if isinstance(node, (exp.Delete, exp.Update)):
            word = "DELETE" if isinstance(node, exp.Delete) else "UPDATE"
            where = node.args.get("where")
            if where is None:
                v.escalate(policy.destructive, f"{word} without WHERE changes every row")
            elif _is_tautology(where.this):
                v.escalate(
                    policy.destructive,
                    f"{word} with an always-true WHERE ({where.this.sql()}) changes every row",
                )
            elif policy.read_only:
                v.escalate("block", f"{word} writes, and this connection is read-only")
            else:
                v.escalate("approve", f"{word} changes rows")
        for kind, word in _WRITES:
            if isinstance(node, kind):
                if policy.read_only:
                    v.escalate("block", f"{word} is not a read, and this connection is read-only")
                else:
                    v.escalate("approve", f"{word} changes the database")
        if isinstance(node, exp.Func):
            name = (node.sql_name() if not isinstance(node, exp.Anonymous) else node.name).lower()
            if name in _DANGEROUS_FUNCTIONS:
                v.escalate("block", f"the function {name}() reaches outside the database")
    ctes = {c.alias_or_name.lower() for c in stmt.find_all(exp.CTE)}
    names = sorted({t.name.lower() for t in stmt.find_all(exp.Table)} - ctes - {""})
    for name in names:
        if name not in v.tables:
            v.tables.append(name)
        if policy.allowed_tables is not None and name not in policy.allowed_tables:
            v.escalate("block", f"table {name} is not in the allowed tables")


def review_sql(sql: str, policy: SqlPolicy | None = None) -> SqlVerdict:
    """Review ``sql`` under ``policy`` (default: read-only, one statement, any table)."""
    policy = policy or SqlPolicy()
    v = SqlVerdict()
    if not sql or not sql.strip():
        v.escalate("block", "empty SQL")
        return v
    try:
        statements = [s for s in sqlglot.parse(sql, read=policy.dialect) if s is not None]
    except (ParseError, SqlglotError) as exc:
        first = str(exc).splitlines()[0][:200]
        v.escalate("block", f"cannot be parsed, so it is refused: {first}")
        return v
    v.statements = len(statements)
    if not statements:
        v.escalate("block", "no statement found")
        return v
    if len(statements) > policy.max_statements:
        v.escalate(
            "block",
            f"{len(statements)} statements in one query (at most {policy.max_statements})",
        )
    for stmt in statements:
        _review(stmt, policy, v)
    return v
