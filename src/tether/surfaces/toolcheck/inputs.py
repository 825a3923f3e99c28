"""Arguments for contract tests, from a tool's JSON Schema: valid, boundary and invalid.

:class:`ArgumentSchema` wraps a tool's ``parameters``:

- :meth:`~ArgumentSchema.valid_examples`: what ``hypothesis`` draws from
  the schema, seeded, so a run can be repeated. The structure (objects,
  arrays, ``anyOf``, ``$ref``) is built here; each leaf (a string with its
  pattern or format, a bounded number) comes from ``hypothesis-jsonschema``.
  Why not ``hypothesis_jsonschema.from_schema`` for the whole schema: its
  object strategy reaches into Hypothesis internals that changed (with
  Hypothesis 6.170.10 every object schema fails to draw), and every tool's
  arguments are an object.
- :meth:`~ArgumentSchema.boundary_examples`: one valid example with one
  argument set to an edge of its schema (``minimum``, ``maximum``,
  ``minLength``, ``maxLength``, each ``enum`` value, the empty string, a
  long one, control and bidi characters, ``null``).
- :meth:`~ArgumentSchema.invalid_examples`: valid examples broken one way
  each (a required argument missing, an unknown one added where the schema
  forbids extras, a value of the wrong type, a value out of range).

Every example is checked against the schema (``jsonschema``) before it is
returned: valid and boundary ones pass it, invalid ones fail it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import hypothesis
import jsonschema
import jsonschema.validators
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

__all__ = ["ArgumentSchema", "Invalid"]

JSON = Any
#: how deep a schema is followed ($ref chains, nested objects) before giving up on a branch
_MAX_DEPTH = 8
#: the most items drawn for an array without a small ``maxItems``, beyond its ``minItems``
_MAX_EXTRA_ITEMS = 4
#: a string longer than a model usually sends, for a schema without ``maxLength``
_LONG = 2_000
#: keywords this module does not build: such a schema goes to hypothesis-jsonschema whole
_OBJECT_UNSUPPORTED = frozenset(
    {
        "patternProperties",
        "propertyNames",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "unevaluatedProperties",
        "allOf",
        "not",
        "if",
    }
)
_ARRAY_UNSUPPORTED = frozenset({"contains", "unevaluatedItems", "allOf", "not", "if"})
_SCALAR_TYPES = ("string", "integer", "number", "boolean", "null")
#: values tried, in order, as "the wrong type": the first the schema refuses is used
_WRONG_TYPES: tuple[JSON, ...] = (None, [], {"unexpected": 1}, "not a number", 0.5, 12345, True)


def canonical(value: JSON) -> str:
    """``value`` as canonical JSON text: to compare, deduplicate and measure examples."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class Invalid:
    """An invalid example: the arguments and what was broken (``missing 'order_id'``)."""

    __slots__ = ("arguments", "broken")

    def __init__(self, arguments: dict[str, JSON], broken: str) -> None:
        self.arguments = arguments
        self.broken = broken


class ArgumentSchema:
    """A tool's argument schema, its ``$defs``, and its validator.

    Raises ``jsonschema.SchemaError`` when ``schema`` is not a valid JSON Schema.
    """

    def __init__(
        self, schema: dict[str, JSON], values: Mapping[str, Sequence[JSON]] | None = None
    ) -> None:
        self.root = schema
        #: known good values by argument name (ids that exist), tried beside drawn ones
        self.values = {k: list(v) for k, v in (values or {}).items() if v}
        self.defs: dict[str, JSON] = {
            **(schema.get("definitions") or {}),
            **(schema.get("$defs") or {}),
        }
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        self._validator = cls(schema)

    def valid(self, arguments: JSON) -> bool:
        """Whether ``arguments`` satisfy the schema."""
        return bool(self._validator.is_valid(arguments))

    def violations(self, arguments: JSON) -> list[str]:
        """What is wrong with ``arguments`` (empty when they are valid), one line each."""
        out = []
        for error in self._validator.iter_errors(arguments):
            where = "/".join(str(p) for p in error.absolute_path) or "(arguments)"
            out.append(f"{where}: {error.message}")
        return sorted(out)

    # --- valid ---------------------------------------------------------------

    def valid_examples(self, count: int, seed: int) -> list[dict[str, JSON]]:
        """Up to ``count`` distinct valid argument objects, drawn by Hypothesis with ``seed``.

        Fewer when the schema allows fewer (a tool without arguments has one).
        Raises what Hypothesis raises when it cannot draw any (the message
        says why).
        """
        strategy = self.strategy()
        drawn: list[dict[str, JSON]] = []

        @hypothesis.seed(seed)
        @settings(
            max_examples=count,
            database=None,
            deadline=None,
            derandomize=False,
            phases=(Phase.generate,),
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        @hypothesis.given(strategy)
        def collect(arguments: dict[str, JSON]) -> None:
            drawn.append(arguments)

        collect()
        return _distinct(drawn)[:count]

    def strategy(self) -> st.SearchStrategy[dict[str, JSON]]:
        """A Hypothesis strategy for valid argument objects."""
        return self._strategy(self.root, 0).filter(self.valid)

    def _strategy(self, schema: JSON, depth: int) -> st.SearchStrategy[JSON]:
        if schema is False or depth > _MAX_DEPTH:
            return st.nothing()
        if schema is True:
            return _any_json()
        if not isinstance(schema, dict):
            return st.nothing()
        if "$ref" in schema:
            target = self._ref(schema["$ref"])
            if target is None:
                return self._leaf(schema)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            merged = {**target, **rest} if isinstance(target, dict) else target
            return self._strategy(merged, depth + 1)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                base = {k: v for k, v in schema.items() if k != key}
                return st.one_of([self._strategy(_merge(base, b), depth + 1) for b in schema[key]])
        if "enum" in schema:
            return st.sampled_from(schema["enum"]) if schema["enum"] else st.nothing()
        if "const" in schema:
            return st.just(schema["const"])
        kind = schema.get("type")
        if isinstance(kind, list):
            return st.one_of([self._strategy({**schema, "type": t}, depth) for t in kind])
        if kind == "object" or (
            kind is None and any(k in schema for k in ("properties", "additionalProperties"))
        ):
            return self._object(schema, depth)
        if kind == "array" or (kind is None and ("items" in schema or "prefixItems" in schema)):
            return self._array(schema, depth)
        if kind is None and "allOf" not in schema and "not" not in schema:
            return _any_json()  # no type: any value (``Any``)
        return self._leaf(schema)

    def _leaf(self, schema: dict[str, JSON]) -> st.SearchStrategy[JSON]:
        """A scalar (or what this module does not build) from hypothesis-jsonschema."""
        if self.defs and "$defs" not in schema:
            schema = {**schema, "$defs": self.defs}
        return from_schema(schema)

    def _ref(self, ref: str) -> JSON | None:
        for prefix in ("#/$defs/", "#/definitions/"):
            if isinstance(ref, str) and ref.startswith(prefix):
                return self.defs.get(ref[len(prefix) :])
        return None

    def _object(self, schema: dict[str, JSON], depth: int) -> st.SearchStrategy[JSON]:
        if _OBJECT_UNSUPPORTED & schema.keys():
            return self._leaf(schema)
        props: dict[str, JSON] = schema.get("properties") or {}
        required = [k for k in schema.get("required") or () if isinstance(k, str)]
        extra = schema.get("additionalProperties", True)
        if props or required:
            fallback = extra if extra is not False else True
            fixed = {k: self._property(k, props.get(k, fallback), depth) for k in required}
            optional = {k: self._property(k, v, depth) for k, v in props.items() if k not in fixed}
            return st.fixed_dictionaries(fixed, optional=optional)
        if extra is False:
            return st.just({})
        low = int(schema.get("minProperties", 0))
        high = int(schema.get("maxProperties", low + 3))
        return st.dictionaries(
            st.text(max_size=12), self._strategy(extra, depth + 1), min_size=low, max_size=high
        )

    def _property(self, name: str, schema: JSON, depth: int) -> st.SearchStrategy[JSON]:
        """A property's values: drawn, or (for the arguments themselves) a known one."""
        drawn = self._strategy(schema, depth + 1)
        known = self.values.get(name) if depth == 0 else None
        return st.sampled_from(known) | drawn if known else drawn

    def _array(self, schema: dict[str, JSON], depth: int) -> st.SearchStrategy[JSON]:
        if _ARRAY_UNSUPPORTED & schema.keys():
            return self._leaf(schema)
        low = int(schema.get("minItems", 0))
        high = min(int(schema.get("maxItems", low + _MAX_EXTRA_ITEMS)), low + _MAX_EXTRA_ITEMS)
        items = schema.get("items", True)
        prefix = schema.get("prefixItems")
        if prefix:
            head = st.tuples(*(self._strategy(p, depth + 1) for p in prefix)).map(list)
            if items is False or len(prefix) >= high:
                return head
            tail = st.lists(self._strategy(items, depth + 1), max_size=high - len(prefix))
            return st.tuples(head, tail).map(lambda parts: parts[0] + parts[1])
        element = self._strategy(items, depth + 1)
        if schema.get("uniqueItems"):
            return st.lists(element, min_size=low, max_size=high, unique_by=canonical)
        return st.lists(element, min_size=low, max_size=high)

    # --- boundary ------------------------------------------------------------

    def boundary_examples(
        self, base: dict[str, JSON], count: int, *, seen: set[str] | None = None
    ) -> list[dict[str, JSON]]:
        """Up to ``count`` valid examples: ``base`` with one argument at an edge of its schema.

        Also ``base`` with only its required arguments. ``seen`` (canonical
        JSON of examples already made) is skipped and added to.
        """
        seen = set() if seen is None else seen
        out: list[dict[str, JSON]] = []

        def keep(arguments: dict[str, JSON]) -> None:
            text = canonical(arguments)
            if len(out) < count and text not in seen and self.valid(arguments):
                seen.add(text)
                out.append(arguments)

        required = set(self.root.get("required") or ())
        keep({k: v for k, v in base.items() if k in required})
        for name, prop in sorted((self.root.get("properties") or {}).items()):
            for value in (*self.values.get(name, ()), *self._edges(prop, 0)):
                keep({**base, name: value})
        return out

    def _edges(self, schema: JSON, depth: int) -> Iterator[JSON]:
        """Values at the edges of ``schema`` (not all valid: the caller checks)."""
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return
        if "$ref" in schema:
            target = self._ref(schema["$ref"])
            if isinstance(target, dict):
                yield from self._edges(target, depth + 1)
            return
        for key in ("anyOf", "oneOf"):
            for branch in schema.get(key) or ():
                yield from self._edges(_merge({}, branch), depth + 1)
        if "enum" in schema:
            yield from schema["enum"]
            return
        if "const" in schema:
            yield schema["const"]
            return
        kinds = schema.get("type")
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            yield from _type_edges(kind, schema)

    # --- invalid -------------------------------------------------------------

    def invalid_examples(self, bases: list[dict[str, JSON]], count: int) -> list[Invalid]:
        """Up to ``count`` invalid examples: each of ``bases`` broken one way at a time."""
        out: list[Invalid] = []
        seen: set[str] = set()
        for base in bases:
            for arguments, broken in self._mutations(base):
                text = canonical(arguments)
                if text in seen or self.valid(arguments):
                    continue
                seen.add(text)
                out.append(Invalid(arguments, broken))
                if len(out) >= count:
                    return out
        return out

    def _mutations(self, base: dict[str, JSON]) -> Iterator[tuple[dict[str, JSON], str]]:
        props: dict[str, JSON] = self.root.get("properties") or {}
        for name in self.root.get("required") or ():
            yield {k: v for k, v in base.items() if k != name}, f"missing {name!r}"
        if self.root.get("additionalProperties") is False:
            extra = "unexpected_argument"
            while extra in props:
                extra += "_"
            yield {**base, extra: "x"}, f"unknown argument {extra!r}"
        for name, prop in sorted(props.items()):
            for value in _WRONG_TYPES:
                candidate = {**base, name: value}
                if not self.valid(candidate):
                    yield candidate, f"{name!r} of the wrong type ({_kind(value)})"
                    break
            for value, why in self._out_of_range(prop, 0):
                yield {**base, name: value}, f"{name!r} {why}"

    def _out_of_range(self, schema: JSON, depth: int) -> Iterator[tuple[JSON, str]]:
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return
        if "$ref" in schema:
            target = self._ref(schema["$ref"])
            if isinstance(target, dict):
                yield from self._out_of_range(target, depth + 1)
            return
        for key in ("anyOf", "oneOf"):
            for branch in schema.get(key) or ():
                yield from self._out_of_range(_merge({}, branch), depth + 1)
        if schema.get("enum"):
            values = schema["enum"]
            yield "not one of the options", "not one of its enum values"
            numbers = [v for v in values if _is_number(v)]
            if numbers:
                yield max(numbers) + 1, "not one of its enum values"
        for key, step in (("minimum", -1), ("maximum", 1)):
            if _is_number(schema.get(key)):
                yield schema[key] + step, f"beyond its {key} ({schema[key]})"
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            if _is_number(schema.get(key)):
                yield schema[key], f"at its {key} ({schema[key]})"
        if isinstance(schema.get("maxLength"), int):
            yield (
                "a" * (schema["maxLength"] + 1),
                f"longer than its maxLength ({schema['maxLength']})",
            )
        if isinstance(schema.get("minLength"), int) and schema["minLength"] > 0:
            text = "a" * (schema["minLength"] - 1)
            yield text, f"shorter than its minLength ({schema['minLength']})"
        if isinstance(schema.get("pattern"), str):
            yield "", f"not matching its pattern {schema['pattern']!r}"
            yield "\x00 !", f"not matching its pattern {schema['pattern']!r}"
        if isinstance(schema.get("minItems"), int) and schema["minItems"] > 0:
            yield [], f"with fewer items than its minItems ({schema['minItems']})"


def _merge(base: dict[str, JSON], branch: JSON) -> JSON:
    """A branch of ``anyOf``/``oneOf`` with the keywords beside it."""
    if not isinstance(branch, dict):
        return branch
    return {**base, **branch}


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: JSON) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}.get(
        type(value), "object"
    )


def _type_edges(kind: JSON, schema: dict[str, JSON]) -> Iterator[JSON]:
    """The edge values of one JSON type under ``schema``'s constraints."""
    if kind == "boolean":
        yield from (True, False)
    elif kind == "null":
        yield None
    elif kind in ("integer", "number"):
        yield from _number_edges(kind, schema)
    elif kind == "string" and "format" not in schema:  # a format's values come from Hypothesis
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        yield ""
        yield " "
        if isinstance(low, int) and low > 0:
            yield "a" * low
        yield "a" * high if isinstance(high, int) else "a" * _LONG
        # controls, a bidi override, a zero-width space, an emoji, a NUL
        yield "\x00\x1b[2J\u202e\u200b🙂é"
    elif kind == "array":
        yield []


def _number_edges(kind: str, schema: dict[str, JSON]) -> Iterator[JSON]:
    integer = kind == "integer"
    yield from (0, -1, 1)
    bounded = False
    for key in ("minimum", "maximum"):
        if _is_number(schema.get(key)):
            bounded = True
            yield schema[key]
    moves: tuple[tuple[str, Callable[[float], JSON]], ...] = (
        (
            "exclusiveMinimum",
            lambda v: math.floor(v) + 1 if integer else math.nextafter(v, math.inf),
        ),
        (
            "exclusiveMaximum",
            lambda v: math.ceil(v) - 1 if integer else math.nextafter(v, -math.inf),
        ),
    )
    for key, inside in moves:
        if _is_number(schema.get(key)):
            bounded = True
            yield inside(schema[key])
    if not bounded:
        yield from ((2**63, -(2**63)) if integer else (1e300, -1e300, 0.1))


def _any_json() -> st.SearchStrategy[JSON]:
    """Any small JSON value (a schema that says nothing)."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )


def _distinct(examples: list[dict[str, JSON]]) -> list[dict[str, JSON]]:
    seen: set[str] = set()
    out = []
    for example in examples:
        text = canonical(example)
        if text not in seen:
            seen.add(text)
            out.append(example)
    return out
