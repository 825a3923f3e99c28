"""Constant folding for the SQL guard: what a piece of SQL is worth, when it is a constant.

:func:`fold` evaluates what sqlglot's simplifier leaves of a condition:
``IN`` lists and ``IN`` of a constant ``SELECT``, ``LIKE``/``ILIKE`` (with
``ESCAPE``), ``IS TRUE``/``IS NULL``, ``IS [NOT] DISTINCT FROM``,
``BETWEEN [SYMMETRIC]``, ``COALESCE``, ``NULLIF``, ``CASE``, ``EXISTS`` and
scalar subqueries of a ``SELECT`` without ``FROM`` (its ``WHERE``, ``LIMIT``
and ``OFFSET`` folded too), ``VALUES``, ``UNION``, ``+ - *`` and ``||``.
Logic is SQL's three-valued one (``None`` is NULL). ``x = x``, ``x >= x``
and ``x LIKE '%'`` fold to true: they are for every row whose ``x`` is not
NULL.

It is conservative: where engines disagree (``'1' = 1`` is true on
PostgreSQL, false on SQLite; ``'a' = 'A'`` is true under MySQL's default
collation, and accents may compare equal; ``LIKE`` is case-sensitive on
PostgreSQL only; the default ``LIKE`` escape; integer division), or a value
is not a plain constant, the answer is :data:`UNKNOWN`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Final

from sqlglot import exp

__all__ = ["UNKNOWN", "Folded", "fold", "truth"]


class _Unknown:
    """The fold cannot tell (the value depends on the row, the engine or the data)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
Value = bool | Decimal | str | None  # None is SQL's NULL
Folded = Value | _Unknown
Rows = list[tuple[Folded, ...]] | _Unknown


def _unparen(e: exp.Expr) -> exp.Expr:
    while isinstance(e, exp.Paren):
        e = e.this
    return e


def truth(v: Folded) -> bool | _Unknown | None:
    """``v`` used as a condition: SQLite and MySQL take a non-zero number as true."""
    if v is None or isinstance(v, (bool, _Unknown)):
        return v
    if isinstance(v, Decimal):
        return v != 0
    return UNKNOWN  # a string as a condition: engines disagree


def _not(v: bool | _Unknown | None) -> bool | _Unknown | None:
    return (not v) if isinstance(v, bool) else v


def _number(v: Folded) -> Decimal | None:
    return v if isinstance(v, Decimal) else None


def _equal(a: Folded, b: Folded) -> bool | _Unknown | None:
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if a is None or b is None:
        return None
    if isinstance(a, bool) and isinstance(b, bool):
        return a == b
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        if a == b:
            return True
        if a.isascii() and b.isascii() and a.casefold().rstrip(" ") != b.casefold().rstrip(" "):
            return False  # unequal under any collation: case and trailing spaces aside
    return UNKNOWN


def _order(a: Folded, b: Folded) -> int | _Unknown | None:
    """-1, 0 or 1; None when either is NULL."""
    same = _equal(a, b)
    if same is None or same is UNKNOWN:
        return same
    if same:
        return 0
    if isinstance(a, (bool, Decimal)) and isinstance(b, type(a)):
        return -1 if a < b else 1
    return UNKNOWN  # strings order by collation


def _same_row_expr(a: exp.Expr, b: exp.Expr) -> bool:
    """Both sides are the same expression of the row, with nothing volatile in it."""
    return (
        a == b
        and any(isinstance(n, exp.Column) for n in a.walk())
        and not any(isinstance(n, (exp.Func, exp.Query, exp.Subquery)) for n in a.walk())
    )


_ORDERS: dict[type[exp.Expr], Callable[[int], bool]] = {
    exp.GT: lambda c: c > 0,
    exp.GTE: lambda c: c >= 0,
    exp.LT: lambda c: c < 0,
    exp.LTE: lambda c: c <= 0,
}
_REFLEXIVE = (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ, exp.Like, exp.ILike)
_IRREFLEXIVE = (exp.NEQ, exp.GT, exp.LT, exp.NullSafeNEQ)


def _compare(e: exp.Expr) -> Folded:
    a, b = fold(e.this), fold(e.expression)
    if (a is UNKNOWN or b is UNKNOWN) and _same_row_expr(e.this, e.expression):
        return isinstance(e, _REFLEXIVE)
    if isinstance(e, (exp.NullSafeEQ, exp.NullSafeNEQ)):
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        same = (a is None and b is None) if a is None or b is None else _equal(a, b)
        return _not(same) if isinstance(e, exp.NullSafeNEQ) else same
    if isinstance(e, (exp.EQ, exp.NEQ)):
        same = _equal(a, b)
        return _not(same) if isinstance(e, exp.NEQ) else same
    order = _order(a, b)
    return _ORDERS[type(e)](order) if isinstance(order, int) else order


def _like(e: exp.Expr, escape: str | None = None) -> Folded:
    value, pattern = fold(e.this), fold(e.expression)
    every = isinstance(pattern, str) and pattern and set(pattern) == {"%"}
    if every and value is UNKNOWN and any(isinstance(n, exp.Column) for n in e.this.walk()):
        return True  # x LIKE '%': every non-NULL x
    if value is UNKNOWN and _same_row_expr(e.this, e.expression):
        return True  # x LIKE x
    if value is None or pattern is None:
        return None if UNKNOWN not in (value, pattern) else UNKNOWN
    if not (isinstance(value, str) and isinstance(pattern, str)):
        return UNKNOWN
    if not (value.isascii() and pattern.isascii()) or (escape is None and "\\" in pattern):
        return UNKNOWN  # accents under a collation; the default escape differs by engine
    parts, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if escape is not None and ch == escape and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    regex = "".join(parts)
    insensitive = re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None
    if isinstance(e, exp.ILike):
        return insensitive
    sensitive = re.fullmatch(regex, value, re.DOTALL) is not None
    return sensitive if sensitive == insensitive else UNKNOWN


def _escape(e: exp.Expr) -> Folded:
    char = fold(e.expression)
    inner = e.this
    if not isinstance(char, str) or len(char) != 1 or not isinstance(inner, (exp.Like, exp.ILike)):
        return UNKNOWN
    result = _like(inner, char)
    return _not(truth(result)) if inner.args.get("negate") else result


def _in(e: exp.Expr) -> Folded:
    needle = fold(e.this)
    query = e.args.get("query")
    if query is not None:
        rows = _rows(query)
        if isinstance(rows, _Unknown) or any(len(r) != 1 for r in rows):
            return UNKNOWN
        values: list[Folded] = [r[0] for r in rows]
    elif e.expressions:
        values = [fold(x) for x in e.expressions]
    else:
        return UNKNOWN  # IN UNNEST(...) and the like
    results = [_equal(needle, v) for v in values]
    if True in results:
        return True
    if UNKNOWN in results:
        return UNKNOWN
    return None if None in results else False


def _between(e: exp.Expr) -> Folded:
    v, low, high = fold(e.this), fold(e.args["low"]), fold(e.args["high"])
    if e.args.get("symmetric"):
        swap = _order(low, high)
        if not isinstance(swap, int):
            return swap
        low, high = (high, low) if swap > 0 else (low, high)
    above, below = _order(v, low), _order(v, high)
    return _and(
        above >= 0 if isinstance(above, int) else above,
        below <= 0 if isinstance(below, int) else below,
    )


def _and(a: Folded, b: Folded) -> Folded:
    x, y = truth(a), truth(b)
    if x is False or y is False:
        return False
    if x is UNKNOWN or y is UNKNOWN:
        return UNKNOWN
    return None if x is None or y is None else True


def _or(e: exp.Expr) -> Folded:
    left, right = _unparen(e.this), _unparen(e.expression)
    if _complements(left, right) or _complements(right, left):
        return True  # A OR NOT A, where A (an IS test) is never NULL
    x, y = truth(fold(left)), truth(fold(right))
    if x is True or y is True:
        return True
    if x is UNKNOWN or y is UNKNOWN:
        return UNKNOWN
    return None if x is None or y is None else False


def _complements(a: exp.Expr, b: exp.Expr) -> bool:
    if isinstance(b, exp.Not):
        return isinstance(a, exp.Is) and not a.args.get("negate") and _unparen(b.this) == a
    return (
        isinstance(a, exp.Is)
        and isinstance(b, exp.Is)
        and bool(a.args.get("negate")) != bool(b.args.get("negate"))
        and a.this == b.this
        and a.expression == b.expression
    )


def _is(e: exp.Expr) -> Folded:
    v, test = fold(e.this), _unparen(e.expression)
    if v is UNKNOWN:
        return UNKNOWN
    if isinstance(test, exp.Null):
        return v is None
    if isinstance(test, exp.Boolean):
        held = truth(v)
        return UNKNOWN if held is UNKNOWN else held is bool(test.this)
    return UNKNOWN


def _rows(q: exp.Expr) -> Rows:
    """The rows of a query that reads no table, or UNKNOWN."""
    q = _unparen(q)
    if isinstance(q, exp.Subquery):
        return _rows(q.this)
    if isinstance(q, exp.Union) and not q.args.get("with_"):
        left, right = _rows(q.this), _rows(q.expression)
        if isinstance(left, _Unknown) or isinstance(right, _Unknown):
            return UNKNOWN
        return left + right
    if isinstance(q, exp.Values):
        rows = [tuple(fold(v) for v in t.expressions) for t in q.expressions]
        return rows if all(isinstance(t, exp.Tuple) for t in q.expressions) else UNKNOWN
    if not isinstance(q, exp.Select):
        return UNKNOWN
    blocked = ("with_", "from_", "joins", "laterals", "group", "having", "qualify", "into")
    if any(q.args.get(k) for k in (*blocked, "locks", "windows", "connect", "pivots")):
        return UNKNOWN
    row = tuple(fold(x) for x in q.expressions)
    where = q.args.get("where")
    keep = truth(fold(where.this)) if where is not None else True
    if keep is UNKNOWN:
        return UNKNOWN
    for key in ("limit", "offset"):
        clause = q.args.get(key)
        if clause is None:
            continue
        n = _number(fold(clause.expression))
        if n is None:
            return UNKNOWN
        if (n <= 0) if key == "limit" else (n >= 1):
            keep = False  # LIMIT 0, or an OFFSET past the one row
    return [row] if keep is True else []


def _exists(e: exp.Expr) -> Folded:
    rows = _rows(e.this)
    return UNKNOWN if isinstance(rows, _Unknown) else bool(rows)


def _scalar(e: exp.Expr) -> Folded:
    rows = _rows(e.this)
    if isinstance(rows, _Unknown) or len(rows) > 1 or any(len(r) != 1 for r in rows):
        return UNKNOWN
    return rows[0][0] if rows else None


def _coalesce(e: exp.Expr) -> Folded:
    for arg in [e.this, *e.expressions]:
        v = fold(arg)
        if v is not None:
            return v
    return None


def _nullif(e: exp.Expr) -> Folded:
    a, b = fold(e.this), fold(e.expression)
    same = _equal(a, b)
    if same is UNKNOWN:
        return UNKNOWN
    return None if same is True else a


def _case(e: exp.Expr) -> Folded:
    subject = e.this
    for branch in e.args.get("ifs") or []:
        if subject is not None:
            hit = _equal(fold(subject), fold(branch.this))
        else:
            hit = truth(fold(branch.this))
        if hit is UNKNOWN:
            return UNKNOWN
        if hit is True:
            return fold(branch.args["true"])
    default = e.args.get("default")
    return fold(default) if default is not None else None


_ARITH: dict[type[exp.Expr], Callable[[Decimal, Decimal], Decimal]] = {
    exp.Add: operator.add,
    exp.Sub: operator.sub,
    exp.Mul: operator.mul,
}


def _arith(e: exp.Expr) -> Folded:
    a, b = fold(e.this), fold(e.expression)
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return _ARITH[type(e)](x, y)
    return None if (a is None or b is None) and UNKNOWN not in (a, b) else UNKNOWN


def _concat(e: exp.Expr) -> Folded:
    a, b = fold(e.this), fold(e.expression)
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    if e.args.get("safe") or UNKNOWN in (a, b):
        return UNKNOWN  # sqlglot's "safe": NULL may count as '' (engines differ)
    return None if a is None or b is None else UNKNOWN


def _literal(e: exp.Expr) -> Folded:
    if e.is_string:
        return str(e.this)
    try:
        return Decimal(str(e.this))
    except InvalidOperation:
        return UNKNOWN


def _neg(e: exp.Expr) -> Folded:
    n = _number(v := fold(e.this))
    return -n if n is not None else (None if v is None else UNKNOWN)


_FOLDS: dict[type[exp.Expr], Callable[[exp.Expr], Folded]] = {
    exp.Literal: _literal,
    exp.Boolean: lambda e: bool(e.this),
    exp.Null: lambda e: None,
    exp.Paren: lambda e: fold(e.this),
    exp.Alias: lambda e: fold(e.this),
    exp.Not: lambda e: _not(truth(fold(e.this))),
    exp.And: lambda e: _and(fold(e.this), fold(e.expression)),
    exp.Or: _or,
    exp.Neg: _neg,
    exp.Is: _is,
    exp.In: _in,
    exp.Between: _between,
    exp.Like: _like,
    exp.ILike: _like,
    exp.Escape: _escape,
    exp.Exists: _exists,
    exp.Subquery: _scalar,
    exp.Coalesce: _coalesce,
    exp.Nullif: _nullif,
    exp.Case: _case,
    exp.DPipe: _concat,
    **dict.fromkeys((exp.Add, exp.Sub, exp.Mul), _arith),
    **dict.fromkeys(
        (exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.NullSafeNEQ, exp.GT, exp.GTE, exp.LT, exp.LTE),
        _compare,
    ),
}


def fold(e: exp.Expr) -> Folded:
    """The constant value of ``e``, or UNKNOWN."""
    fold = _FOLDS.get(type(e))
    if fold is None:
        return UNKNOWN
    value = fold(e)
    if e.args.get("negate"):
        return _not(truth(value))
    return value
