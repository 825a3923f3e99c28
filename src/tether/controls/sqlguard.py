"""Reviewing SQL a model wrote before anything runs it (on sqlglot).

:func:`review_sql` parses the text with sqlglot and returns a
:class:`SqlVerdict`: ``allow``, ``approve`` (a person must confirm) or
``block``, with the reasons. The rules, from DESIGN.md guarantee 9:

- **Fail closed.** Text that does not parse, is empty, is nested too deeply,
  or parses into something sqlglot only keeps as an opaque command
  (``VACUUM``, ``DO``, ``CALL``, ``EXECUTE``, ``LOCK``...) or misreads as a
  bare expression (``LISTEN x`` as a column alias) is blocked, whatever the
  policy: the guard cannot say what it does.
- **Every statement.** The text is split into statements; more than
  ``max_statements`` (1 by default: stacked queries are a classic injection)
  is blocked, and each one is reviewed.
- **The whole tree.** Every node of each statement is visited, not just its
  top: a ``DELETE`` inside a CTE of a ``SELECT`` is a ``DELETE``.
- **Destructive statements** (``DROP``, ``TRUNCATE``, ``ALTER``, ``GRANT``,
  ``REVOKE``, ``MERGE``, and ``DELETE`` or ``UPDATE`` without a real
  ``WHERE``) get ``policy.destructive``: ``block`` by default, or
  ``approve``. A ``WHERE`` that filters nothing is no ``WHERE``, and that
  is decided two ways, on the whole condition and on each ``OR``-ed part:
  *always true*, when sqlglot's simplifier and then the constant folding of
  :mod:`tether.controls._sql_fold` reduce it to true (``1 IN (1)``, ``TRUE
  IS TRUE``, ``EXISTS (SELECT 1)``, ``'a' LIKE '%'``, ``COALESCE(TRUE, x)``,
  ``x = x``, ``id = 3 OR 1 BETWEEN 0 AND 2``); or *row-independent*, when a
  part names no column, so that it holds for every row or for none
  (``WHERE ABS(-1) = 1``, ``WHERE ?``, ``WHERE (SELECT count(*) FROM t) >
  0``), unless the fold proves it false or NULL. Where the fold cannot tell
  and the condition reads the row, it is judged as written.
- **Writes** are what creates or changes anything, data, catalog, settings
  or locks, not only rows: ``INSERT``, ``UPDATE``/``DELETE`` with a real
  ``WHERE``, ``CREATE`` (any object, ``CREATE TABLE AS`` too), ``SELECT ...
  INTO`` (creates a table, or sets a variable), ``SELECT ... FOR UPDATE`` /
  ``FOR SHARE`` / ``LOCK IN SHARE MODE`` (row locks: PostgreSQL writes them
  into the rows and refuses them in a read-only transaction), ``COMMENT ON``,
  ``ANALYZE`` (statistics), ``COPY`` to or from the client, ``DETACH``,
  ``PRAGMA``, ``SET``, ``USE``, ``@var := ...``, and the functions that
  write (``nextval``...). They are blocked under ``read_only`` (the default)
  and need approval otherwise.
- **Always blocked**, even on a read-write connection: what escapes the
  caller's control. Transaction control (``BEGIN``, ``COMMIT``,
  ``ROLLBACK``: the transaction, read-only or not, is the caller's),
  ``ATTACH`` (opens or creates a file), ``COPY`` to or from a file or a
  program, ``KILL``, and the maintenance and session statements sqlglot
  cannot parse (``VACUUM``, ``REINDEX``, ``CLUSTER``, ``REFRESH MATERIALIZED
  VIEW``, ``LOCK``, ``LISTEN``/``NOTIFY``, ``CALL``, ``DO``,
  ``PREPARE``/``EXECUTE``, ``EXPLAIN``, which ``ANALYZE`` makes run).
- **Functions** that run SQL given as text, reach outside the database,
  change settings or server state, or wait or take locks are blocked; see
  :mod:`tether.controls._sql_dialects` for the lists per engine and why.
- **Tables** outside ``allowed_tables`` (when given) are refused, whatever
  the statement; names a CTE defines are not tables.

What it does not do: prove a ``SELECT`` cheap (a cross join can still be
slow: run it with a timeout and a row limit), see inside views, triggers and
user-defined functions (a view may call anything), or know your database's
permissions. Give the connection that runs the SQL the least privilege it
needs (a read-only user and a ``READ ONLY`` transaction, SQLite's
``query_only`` or an authorizer), and treat this review as the layer that
explains the refusal, not the only one. Set ``dialect`` to the engine that
runs the SQL: strings and comments are read by its rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.simplify import simplify

from tether.controls._sql_dialects import STATEMENT_WHY, FunctionRisk, denied_function
from tether.controls._sql_fold import UNKNOWN, Folded, fold, truth
from tether.exceptions import ConfigError

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
#: (node, statement, what it does): blocked on a read-only connection, approval otherwise
_WRITES: tuple[tuple[type[exp.Expr], str, str], ...] = (
    (exp.Insert, "INSERT", "adds rows"),
    (exp.Create, "CREATE", "creates an object"),
    (exp.Into, "SELECT INTO", "creates a table or sets a variable"),
    (exp.Lock, "FOR UPDATE/SHARE", "locks rows"),
    (exp.Comment, "COMMENT", "changes the catalog"),
    (exp.Analyze, "ANALYZE", "rewrites the planner's statistics"),
    (exp.Copy, "COPY", "moves rows in or out"),
    (exp.Detach, "DETACH", "changes the attached databases"),
    (exp.Pragma, "PRAGMA", "reads or changes the engine's settings"),
    (exp.Set, "SET", "changes a setting"),
    (exp.Use, "USE", "changes the current database"),
)
_TRANSACTION = "is transaction control, which belongs to the caller"
#: (node, statement, what it does): blocked whatever the policy
_ESCAPES: tuple[tuple[type[exp.Expr], str, str], ...] = (
    (exp.Attach, "ATTACH", "opens (or creates) another database file"),
    (exp.Transaction, "BEGIN", _TRANSACTION),
    (exp.Commit, "COMMIT", _TRANSACTION),
    (exp.Rollback, "ROLLBACK", _TRANSACTION),
    (exp.Kill, "KILL", "ends another session"),
)
_STATEMENTS: tuple[type[exp.Expr], ...] = (
    exp.Query,
    exp.Values,
    exp.Delete,
    exp.Update,
    *(kind for kind, _ in _DESTRUCTIVE),
    *(kind for kind, _, _ in _WRITES),
    *(kind for kind, _, _ in _ESCAPES),
)
_CLIENT_STREAMS = frozenset({"stdin", "stdout"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SqlPolicy:
    """What SQL may do.

    - ``allowed_tables``: lower-case table names that may be read or
      written (``None``: any).
    - ``read_only``: only reads; any write is blocked (else it needs approval).
    - ``destructive``: what a destructive statement gets (``block`` or ``approve``).
    - ``max_statements``: statements allowed in one text.
    - ``dialect``: sqlglot's dialect name (``sqlite``, ``postgres``,
      ``mysql``...): the engine that will run the SQL. An unknown name is a
      :class:`~tether.exceptions.ConfigError`.
    """

    allowed_tables: frozenset[str] | None = None
    read_only: bool = True
    destructive: Literal["block", "approve"] = "block"
    max_statements: int = 1
    dialect: str | None = "sqlite"

    def __post_init__(self) -> None:
        if self.dialect is not None:
            try:
                Dialect.get_or_raise(self.dialect)
            except ValueError:
                raise ConfigError(
                    f"unknown SQL dialect {self.dialect!r}: name sqlglot's dialect for the "
                    "engine that runs the SQL (sqlite, postgres, mysql...)"
                ) from None


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


def _snippet(node: exp.Expr, dialect: str | None, limit: int = 80) -> str:
    text = " ".join(node.sql(dialect=dialect).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _write(v: SqlVerdict, policy: SqlPolicy, what: str) -> None:
    if policy.read_only:
        v.escalate("block", f"{what}: not a read, and this connection is read-only")
    else:
        v.escalate("approve", what)


def _unreviewable(stmt: exp.Expr, policy: SqlPolicy, v: SqlVerdict) -> None:
    if isinstance(stmt, exp.Command):
        words = str(stmt.this).upper().split()
    else:
        words = stmt.sql(dialect=policy.dialect).upper().split()
    first = words[0] if words else ""
    why = STATEMENT_WHY.get(first)
    if why is not None:
        v.escalate("block", f"{first} {why}; the guard cannot review it, so it is refused")
    elif isinstance(stmt, exp.Command):
        v.escalate("block", f"cannot review this statement ({' '.join(words[:2])}): refused")
    else:
        # sqlglot reads "SELEC * FORM t" as the expression "SELEC * FORM AS t":
        # anything that is not a statement is a typo or a trick, refused.
        v.escalate("block", f"not a SQL statement ({_snippet(stmt, policy.dialect, 60)}): refused")


def _folded(e: exp.Expr) -> Folded:
    """Condition ``e`` folded as written, else after sqlglot's simplifier.

    The simplifier compares strings as PostgreSQL does (``'a' = 'A'`` is
    false, but true under MySQL's default collation), so only its ``TRUE`` is
    taken: a condition wrongly judged to filter nothing is refused, which is
    the safe side.
    """
    value = fold(e)
    if value is not UNKNOWN:
        return value
    try:
        simplified = fold(simplify(e.copy()))
    except (SqlglotError, ArithmeticError, ValueError, TypeError):
        return UNKNOWN
    return simplified if truth(simplified) is True else UNKNOWN


def _disjuncts(e: exp.Expr) -> list[exp.Expr]:
    while isinstance(e, exp.Paren):
        e = e.this
    if isinstance(e, exp.Or):
        return _disjuncts(e.this) + _disjuncts(e.expression)
    return [e]


def _reads_the_row(e: exp.Expr) -> bool:
    # Var and Dot too: sqlglot reads some names as them
    return any(isinstance(n, (exp.Column, exp.Dot, exp.Var)) for n in e.walk())


def _filters_nothing(condition: exp.Expr, dialect: str | None) -> str | None:
    """Why ``condition`` keeps every row (or every row or none), or ``None``."""
    for part in _disjuncts(condition):
        value = truth(_folded(part))
        if value is True:
            return f"an always-true WHERE ({_snippet(part, dialect)}) changes every row"
        if value is UNKNOWN and not _reads_the_row(part):
            shown = _snippet(part, dialect)
            return f"a WHERE that does not depend on the row ({shown}) changes every row or none"
    if truth(_folded(condition)) is True:  # true as a whole only: x IS NULL OR x IS NOT NULL
        return f"an always-true WHERE ({_snippet(condition, dialect)}) changes every row"
    return None


def _review_where(node: exp.Expr, word: str, policy: SqlPolicy, v: SqlVerdict) -> None:
    where = node.args.get("where")
    why = _filters_nothing(where.this, policy.dialect) if where is not None else None
    if where is None:
        v.escalate(policy.destructive, f"{word} without WHERE changes every row")
    elif why is not None:
        v.escalate(policy.destructive, f"{word} with {why}")
    elif policy.read_only:
        v.escalate("block", f"{word} writes, and this connection is read-only")
    else:
        v.escalate("approve", f"{word} changes rows")


def _qualifier(node: exp.Expr) -> str | None:
    """The schema a function call names (``pg_catalog`` in ``pg_catalog.set_config()``)."""
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        return parent.this.name if isinstance(parent.this, exp.Expr) else None
    if isinstance(parent, exp.Table) and parent.this is node:
        return parent.db or None
    return None


def _function_names(node: exp.Func) -> list[str]:
    if isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)):
        return [node.name]
    return sorted({node.sql_name().lower(), *(n.lower() for n in type(node).sql_names())})


def _review_function(node: exp.Func, policy: SqlPolicy, v: SqlVerdict) -> None:
    schema = _qualifier(node)
    for name in _function_names(node):
        refusal = denied_function(name, schema, policy.dialect)
        if refusal is None:
            continue
        shown = refusal.name
        if refusal.risk is FunctionRisk.WRITES:
            _write(v, policy, f"the function {shown}() writes ({refusal.engine})")
        else:
            v.escalate("block", f"the function {shown}() {refusal.risk} ({refusal.engine})")
        return


def _review_node(node: exp.Expr, policy: SqlPolicy, v: SqlVerdict) -> None:
    for kind, word in _DESTRUCTIVE:
        if isinstance(node, kind):
            v.escalate(policy.destructive, f"{word} is destructive")
    if isinstance(node, (exp.Delete, exp.Update)):
        _review_where(node, "DELETE" if isinstance(node, exp.Delete) else "UPDATE", policy, v)
    for kind, word, why in _ESCAPES:
        if isinstance(node, kind):
            v.escalate("block", f"{word} {why}: refused")
    if isinstance(node, exp.Copy):
        files = node.args.get("files") or []
        if any(f.name.lower() not in _CLIENT_STREAMS for f in files):
            v.escalate("block", "COPY to or from a file or a program reaches outside the database")
    for kind, word, why in _WRITES:
        if isinstance(node, kind):
            _write(v, policy, f"{word} {why}")
    if isinstance(node, exp.PropertyEQ) and isinstance(node.this, exp.Parameter):
        _write(v, policy, f"{_snippet(node.this, policy.dialect)} := sets a session variable")
    if isinstance(node, exp.Func):
        _review_function(node, policy, v)


def _ident(node: exp.Expr | None) -> str:
    """An identifier as the engine compares it: quoted keeps its case, bare is folded."""
    if isinstance(node, exp.Identifier):
        return node.name if node.quoted else node.name.lower()
    return node.name.lower() if node is not None else ""


def _table_name(t: exp.Table) -> str:
    """The table ``t`` reads or writes as the allowlist sees it; ``""`` for a CTE's name.

    A bare name is a CTE's only where that CTE is visible: in a ``WITH`` around
    it, defined before the query that names it (or that CTE itself, when
    recursive), and never as the target of a write. A schema-qualified name
    is ``schema.table`` (list it that way to allow it); a quoted name keeps
    its case (``"ORDERS"`` is not ``orders`` on PostgreSQL).
    """
    name = _ident(t.this)
    if not name:
        return ""
    db, catalog = t.args.get("db"), t.args.get("catalog")
    if not db and not catalog and _names_a_visible_cte(t, name):
        return ""
    return ".".join(x for x in (_ident(catalog), _ident(db), name) if x)


def _names_a_visible_cte(t: exp.Table, name: str) -> bool:
    node: exp.Expr = t
    parent = t.parent
    if isinstance(parent, exp.Schema):  # INSERT INTO t (cols): the target
        node, parent = parent, parent.parent
    if isinstance(parent, (exp.Insert, exp.Update, exp.Delete, exp.Merge)) and (
        node.arg_key == "this"
    ):
        return False  # the target of a write is always a real table
    inside: exp.Expr | None = None  # the CTE of the current WITH we are inside, if any
    while parent is not None:
        if isinstance(node, exp.CTE):
            inside = node
        with_ = parent.args.get("with_") or parent.args.get("with")
        if isinstance(with_, exp.With):
            ctes = list(with_.expressions)
            limit = ctes.index(inside) if inside in ctes else len(ctes)
            recursive = bool(with_.args.get("recursive"))
            for i, cte in enumerate(ctes):
                if _ident(cte.args.get("alias") and cte.args["alias"].this) != name:
                    continue
                if i < limit or (recursive and cte is inside):
                    return True
        node, parent = parent, parent.parent
    return False


def _review(stmt: exp.Expr, policy: SqlPolicy, v: SqlVerdict) -> None:
    if isinstance(stmt, exp.Command) or not isinstance(stmt, _STATEMENTS):
        _unreviewable(stmt, policy, v)
        return
    for node in stmt.walk():
        _review_node(node, policy, v)
    names = sorted({n for t in stmt.find_all(exp.Table) if (n := _table_name(t))})
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
    except (ParseError, SqlglotError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        v.escalate("block", f"cannot be parsed, so it is refused: {first}")
    except RecursionError:
        v.escalate("block", "nested too deeply to review, so it is refused")
    return v
