"""What may be stored: a tool's result and session vars become plain JSON, or an error.

Everything a tool returns or puts in ``ctx.vars`` ends up in a stored event,
and every store must be able to write it and read the same thing back. So
it is checked, and converted, by one rule, :func:`to_jsonable`, at the
moment it is produced (the result when the tool returns, a var when it is
set), not later when a commit fails after the tool has acted.

JSON's own types pass unchanged: ``dict`` with ``str`` keys, ``list``,
``str``, ``int``, ``float`` (finite), ``bool``, ``None``. The documented
fallback for common types (the way a reader would expect them in JSON):

- ``datetime``, ``date``, ``time``: ISO 8601 text (``value.isoformat()``);
- ``Decimal``, ``UUID``, ``Path`` (any ``PurePath``): ``str(value)``;
- ``Enum``: its ``value``, converted by the same rule;
- ``tuple``: a list; ``set``, ``frozenset``: a sorted list when its items
  sort, else a list in iteration order;
- pydantic ``BaseModel``: ``model_dump(mode="json")``;
- a dataclass instance: a dict of its fields (like ``dataclasses.asdict``);
- a subclass of ``str``, ``int`` or ``float``: the plain value;
- dict keys that are ``int``, ``float`` or ``bool``: the key as JSON writes
  it (``1`` -> ``"1"``, ``True`` -> ``"true"``).

Everything else is refused with :class:`Unstorable`, which names the path
to the bad value (``$.items[2].when``): other objects, ``bytes``,
functions, keys of any other type (or two keys that become the same
text), NaN and infinities (not valid JSON), cycles, and nesting deeper than
:data:`MAX_DEPTH`. The converted value is a new structure; the caller's
objects are never changed.

Why not ``pydantic_core.to_jsonable_python``, which converts the same
types: it accepts what a store then reads back differently or not at all
(``bytes`` as text, NaN, a tuple key joined into ``"1,2"``, a key that
collides with another silently dropped) and names no path when it fails.
The fast path here is a plain walk; only a value with something to convert
or refuse takes the careful one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import re
import uuid
from collections.abc import Iterable
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Self

import pydantic

__all__ = ["MAX_DEPTH", "SessionVars", "Unstorable", "check_var", "to_jsonable"]

#: how deep containers may nest (a list in a dict in a list... counts 3)
MAX_DEPTH = 100

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Unstorable(TypeError):
    """A value that cannot be stored as JSON.

    ``reason`` says why, ``path`` where (``$`` is the value itself,
    ``$.items[2].when`` a part of it), and ``key`` names the session var
    when the value was one (see :func:`check_var`).
    """

    def __init__(self, reason: str, path: str = "$", *, key: str | None = None) -> None:
        self.reason = reason
        self.path = path
        self.key = key
        where = "" if path == "$" else f" at {path}"
        super().__init__(f"{reason}{where}")


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (see the module's table), or raise :class:`Unstorable`.

    Containers are copied, so later changes to ``value`` do not reach the result.
    """
    try:
        return _plain(value, 0)
    except _NotPlain:  # something to convert or refuse: the careful walk, which knows the path
        return _Walk().convert(value, 0)


def check_var(key: Any, value: Any) -> Any:
    """A session var's value as it will be stored, or :class:`Unstorable` naming ``key``.

    Keys must be ``str``; the value follows :func:`to_jsonable`.
    """
    if not isinstance(key, str):
        raise Unstorable(
            f"session var keys must be str, got {type(key).__name__} {_short(key)}",
            key=_short(key),
        )
    try:
        return to_jsonable(value)
    except Unstorable as exc:
        raise Unstorable(exc.reason, exc.path, key=str(key)) from None


_SCALARS = frozenset({str, int, float, bool, type(None)})


class SessionVars(dict[str, Any]):
    """Session vars that check each value as it is set: what a tool sees as ``ctx.vars``.

    Every way of setting a value (``vars[k] = v``, ``update``, ``setdefault``,
    ``|=``, the constructor) goes through :func:`check_var`: the value is kept
    converted (a ``datetime`` as its ISO text, so what the tool reads back is
    what a reloaded session will hold) or refused with :class:`Unstorable`
    naming the key, and then nothing of that call is set. A value changed in
    place afterwards (a stored list appended to) is not seen here; the runtime
    checks the changed vars again when the tool returns.
    """

    __slots__ = ()

    def __init__(self, values: Any = (), /, **kwargs: Any) -> None:
        super().__init__()
        self.update(values, **kwargs)

    @classmethod
    def stored(cls, values: dict[str, Any]) -> SessionVars:
        """A tool's copy of the session's vars, which were checked when they were set.

        Plain values are shared; containers are copied, so a change a tool
        makes in place is seen as a change and never reaches the session's
        own state behind the event log.
        """
        out = dict.__new__(cls)  # not __init__: nothing here needs checking again
        for key, value in values.items():
            if type(value) not in _SCALARS:
                value = to_jsonable(value)
            dict.__setitem__(out, key, value)
        return out

    def __setitem__(self, key: str, value: Any, /) -> None:
        dict.__setitem__(self, *_checked(key, value))

    def update(self, values: Any = (), /, **kwargs: Any) -> None:
        """Set every pair (a mapping's, or an iterable's, then ``kwargs``), or none of them."""
        pairs: Iterable[tuple[Any, Any]] = (
            ((k, values[k]) for k in values.keys())  # noqa: SIM118 - dict.update's own rule
            if hasattr(values, "keys")
            else values
        )
        checked = dict(_checked(k, v) for k, v in pairs)
        checked.update(_checked(k, v) for k, v in kwargs.items())
        dict.update(self, checked)

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        """``self[key]``, first setting it to ``default`` (checked) when missing."""
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, values: Any, /) -> Self:  # type: ignore[override,misc]
        self.update(values)
        return self


def _checked(key: Any, value: Any) -> tuple[str, Any]:
    value = check_var(key, value)  # first: it refuses a key that is not a str
    return str.__str__(key), value


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real problem
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_key(key: Any) -> str | None:
    """A dict key as JSON writes it, or ``None`` when JSON has no text for it."""
    if isinstance(key, enum.Enum):
        key = key.value
        if isinstance(key, enum.Enum):  # pragma: no cover - an enum of enums
            return None
    if isinstance(key, str):
        return key if type(key) is str else str.__str__(key)
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float) and math.isfinite(key):
        return float.__repr__(key)
    return None


class _NotPlain(Exception):
    """Raised by :func:`_plain` at the first value that is not JSON's own."""


_NOT_PLAIN = _NotPlain()


def _plain(value: Any, depth: int) -> Any:
    """A copy of ``value`` made of JSON's own types only, or :class:`_NotPlain`.

    The common case, kept lean: no path, no cycle check (a cycle ends at
    ``MAX_DEPTH``), and anything else left to :class:`_Walk`.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if value - value == 0.0:  # false for NaN and the infinities
            return value
        raise _NOT_PLAIN
    if depth >= MAX_DEPTH:
        raise _NOT_PLAIN
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NOT_PLAIN
            out[key] = _plain(item, depth + 1)
        return out
    if kind is list or kind is tuple:
        return [_plain(item, depth + 1) for item in value]
    raise _NOT_PLAIN


class _Walk:
    """One conversion: the path to the current value and the containers above it."""

    __slots__ = ("above", "trail")

    def __init__(self) -> None:
        self.trail: list[str | int] = []
        #: ids of the containers being converted (a value that contains itself is a cycle)
        self.above: set[int] = set()

    def fail(self, reason: str) -> Unstorable:
        parts = ["$"]
        for step in self.trail:
            if isinstance(step, int):
                parts.append(f"[{step}]")
            elif _IDENT.match(step):
                parts.append(f".{step}")
            else:
                parts.append(f"[{_short(step, 40)}]")
        return Unstorable(reason, "".join(parts))

    def convert(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if value is None or kind is str or kind is int or kind is bool:
            return value
        if kind is float:
            return self.number(value)
        if kind is dict:
            return self.mapping(value, depth)
        if kind is list or kind is tuple:
            return self.sequence(value, depth)
        return self.other(value, depth)

    def number(self, value: float) -> float:
        if not math.isfinite(value):
            raise self.fail(f"{value!r} is not a JSON number (NaN and infinity are not valid JSON)")
        return value

    def enter(self, value: Any, depth: int) -> None:
        if depth >= MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
        if id(value) in self.above:
            raise self.fail(f"a cycle: this {type(value).__name__} contains itself")
        self.above.add(id(value))

    def mapping(self, value: dict[Any, Any], depth: int) -> dict[str, Any]:
        self.enter(value, depth)
        out: dict[str, Any] = {}
        trail = self.trail
        for key, item in value.items():
            text = _json_key(key)
            if text is None:
                raise self.fail(
                    f"dict keys must be str (or int, float, bool), got {type(key).__name__} "
                    f"{_short(key)}"
                )
            if text in out:
                raise self.fail(f"two keys become the same JSON key {text!r}")
            trail.append(text)
            out[text] = self.convert(item, depth + 1)
            trail.pop()
        self.above.discard(id(value))
        return out

    def sequence(self, value: Any, depth: int) -> list[Any]:
        self.enter(value, depth)
        trail = self.trail
        out = []
        for i, item in enumerate(value):
            trail.append(i)
            out.append(self.convert(item, depth + 1))
            trail.pop()
        self.above.discard(id(value))
        return out

    def other(self, value: Any, depth: int) -> Any:
        # Enum first: a StrEnum is a str, an IntEnum an int, but their value is what counts.
        if isinstance(value, enum.Enum):
            return self.convert(value.value, depth)
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, int):
            return int.__int__(value)
        if isinstance(value, float):
            return self.number(float.__float__(value))
        if isinstance(value, dict):
            return self.mapping(value, depth)
        if isinstance(value, list | tuple):
            return self.sequence(value, depth)
        if isinstance(value, dt.date | dt.time):  # datetime is a date
            return value.isoformat()
        if isinstance(value, Decimal | uuid.UUID | PurePath):
            return str(value)
        if isinstance(value, set | frozenset):
            try:
                items = sorted(value)
            except TypeError:  # mixed or unorderable items: keep iteration order
                items = list(value)
            self.enter(value, depth)
            out = self.sequence(items, depth)
            self.above.discard(id(value))
            return out
        if isinstance(value, pydantic.BaseModel):
            self.enter(value, depth)
            try:
                dumped = value.model_dump(mode="json")
            except Exception as exc:  # unserialisable fields, cycles between models
                raise self.fail(f"{type(value).__name__}.model_dump() failed: {exc}") from None
            out = self.convert(dumped, depth)
            self.above.discard(id(value))
            return out
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            self.enter(value, depth)
            trail = self.trail
            fields: dict[str, Any] = {}
            for f in dataclasses.fields(value):
                trail.append(f.name)
                fields[f.name] = self.convert(getattr(value, f.name), depth + 1)
                trail.pop()
            self.above.discard(id(value))
            return fields
        raise self.fail(_refusal(value))


def _refusal(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{type(value).__name__} is not JSON (decode it to text, or base64-encode it)"
    if callable(value):
        return f"a value of type {type(value).__name__} ({_short(value)}) is not data"
    return (
        f"a value of type {type(value).__qualname__} is not JSON "
        "(return its fields as a dict, or str() of it)"
    )
