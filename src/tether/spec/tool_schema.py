"""Arguments of a tool declared from a schema (:meth:`tether.Tool.from_schema`).

A JSON Schema is checked against its meta-schema when the tool is declared,
and each call's arguments against the schema by ``jsonschema``, with every
keyword it defines (``minimum``, ``pattern``, ``format``,
``additionalProperties``...): rebuilding a pydantic model from the schema
would lose some of them. A problem is raised as a ``pydantic.ValidationError``,
the same error a decorated tool's model raises, so the runtime refuses both
kinds of call the same way, before the function runs.

A pydantic model is used as it is: its JSON Schema is what the model is
told and the arguments are parsed into it.

Whether the function can take what the schema lets through is checked when
the tool is declared (:func:`fitting`), not found out on the first call.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic
import pydantic_core

from tether.exceptions import ToolDefinitionError

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = [
    "BY_NAME",
    "MAX_ERRORS",
    "ModelArgument",
    "SchemaArguments",
    "fitting",
    "model_schema",
    "object_schema",
]

#: the most problems one refused call lists (a decorated tool's model lists them all)
MAX_ERRORS = 10

#: the kinds of parameter a keyword argument can fill
BY_NAME = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True, slots=True)
class SchemaArguments:
    """Arguments checked against a JSON Schema, passed on as the model sent them.

    A property left out that has a ``default`` in the schema gets a copy of
    it; keys outside ``accepted`` are dropped (``None``: the function takes
    ``**kwargs``, so every key is passed).
    """

    title: str
    check: Validator
    defaults: Mapping[str, Any]
    accepted: frozenset[str] | None

    def validate(self, arguments: dict[str, Any], /) -> dict[str, Any]:
        """The keyword arguments for the function; ``pydantic.ValidationError`` if invalid."""
        errors = []
        for e in self.check.iter_errors(arguments):
            errors.append(
                pydantic_core.InitErrorDetails(
                    # the message goes in as context: its braces are not a template
                    type=pydantic_core.PydanticCustomError(
                        "json_schema", "{message}", {"message": e.message}
                    ),
                    loc=tuple(e.absolute_path),
                    input=e.instance,
                )
            )
            if len(errors) == MAX_ERRORS:
                break
        if errors:
            raise pydantic.ValidationError.from_exception_data(self.title, errors)
        kwargs = {k: copy.deepcopy(v) for k, v in self.defaults.items() if k not in arguments}
        for k, v in arguments.items():
            if self.accepted is None or k in self.accepted:
                kwargs[k] = v
        return kwargs


@dataclass(frozen=True, slots=True)
class ModelArgument:
    """Arguments parsed into ``model`` and passed whole, as the function's ``param``."""

    model: type[pydantic.BaseModel]
    param: str

    def validate(self, arguments: dict[str, Any], /) -> dict[str, Any]:
        """``{param: instance}``; ``pydantic.ValidationError`` if the model refuses them."""
        return {self.param: self.model.model_validate(arguments)}


def object_schema(what: str, schema: dict[str, Any]) -> tuple[dict[str, Any], Validator]:
    """A copy of ``schema`` and its validator, or a ToolDefinitionError saying the fix.

    It must be an object schema (what every provider takes for a tool's
    arguments), valid against its meta-schema (Draft 2020-12 unless
    ``$schema`` names another) and plain JSON (it is sent to the model).
    """
    import jsonschema  # not at import: most agents never declare a tool from a schema

    if schema.get("type") != "object":
        raise ToolDefinitionError(
            f"{what}: parameters must be a JSON Schema of an object, whose properties are "
            f"the arguments, not {_short(schema)}; write "
            '{"type": "object", "properties": {"NAME": {...}}, "required": ["NAME"]}'
        )
    try:
        text = json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(
            f"{what}: parameters cannot be sent to the model as JSON ({exc}); use only "
            "dicts, lists, strings, numbers, booleans and None in the schema"
        ) from exc
    copied: dict[str, Any] = json.loads(text)  # the caller's dict may change later; this won't
    cls = jsonschema.validators.validator_for(copied, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(copied)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise ToolDefinitionError(
            f"{what}: parameters is not a valid JSON Schema: at {where}: {exc.message}; "
            "fix the schema (it is checked against its meta-schema)"
        ) from exc
    return copied, cls(copied, format_checker=cls.FORMAT_CHECKER)


def model_schema(what: str, model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema as ``@tool`` shows one (without pydantic's titles)."""
    try:
        schema = model.model_json_schema()
    except Exception as exc:
        raise ToolDefinitionError(
            f"{what}: the model {model.__name__} cannot become a JSON Schema ({exc})"
        ) from exc
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


def fitting(
    what: str,
    params: Mapping[str, inspect.Parameter],
    context: str | None,
    names: Collection[str],
    given: Collection[str],
) -> frozenset[str] | None:
    """The names the function takes by keyword (``None``: any, it has ``**kwargs``).

    ``params`` are the function's parameters but its context (``context``);
    ``names`` the arguments the schema declares and ``given`` those every
    call will have (required, or with a default). A ToolDefinitionError if a
    declared argument cannot reach the function or a call could lack one it
    needs.
    """
    if context is not None and context in names:
        raise ToolDefinitionError(
            f"{what}: the function's context parameter {context!r} has the name of an "
            "argument in the schema; rename the context parameter"
        )
    for n, p in params.items():
        if p.kind is p.POSITIONAL_ONLY and (n in names or p.default is p.empty):
            raise ToolDefinitionError(
                f"{what}: the function's parameter {n!r} is positional-only, but arguments "
                "are passed by name; remove the '/'"
            )
    anything = any(p.kind is p.VAR_KEYWORD for p in params.values())
    by_name = frozenset(n for n, p in params.items() if p.kind in BY_NAME)
    unknown = [n for n in names if n not in by_name]
    if unknown and not anything:
        raise ToolDefinitionError(
            f"{what}: the schema declares {_listed(unknown)} but the function takes no "
            "argument of that name; add the parameter, or take **kwargs"
        )
    for n, p in params.items():
        if p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if n not in names:
            raise ToolDefinitionError(
                f"{what}: the function needs {n!r}, which the schema does not declare; "
                "add it to the schema's properties, or give the parameter a default"
            )
        if n not in given:
            raise ToolDefinitionError(
                f"{what}: the function needs {n!r}, which the schema lets the model leave "
                "out; list it in 'required', give it a 'default' in the schema, or give the "
                "parameter a default"
            )
    return None if anything else by_name


def _listed(names: Collection[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
