"""The golden-set format: eval cases as YAML or JSONL, validated by pydantic.

A *suite* is a file, or a folder of files, of *cases*. A YAML file holds one
case, or a list of cases under ``cases:`` (with optional suite-wide
``defaults:``); a JSONL file holds one case per line. A folder may hold a
``suite.yaml`` naming the agent to test and its environment (see
:class:`SuiteConfig`). Every file is validated against the models below;
:func:`case_schema` exports them as a JSON Schema (published as
``schemas/eval-case.schema.json``) so editors autocomplete and check cases.

One case::

    id: cancel-pending-order
    tags: [writes, cancel]
    conversation:
      - user: "I'm Ava Moreno, zip 94107. Cancel #W1024001: I don't need it."
        model:                        # scripted mode: the model's answers, in order
          - tool: find_user_id_by_name_zip
            args: {first_name: Ava, last_name: Moreno, zip: "94107"}
          - tool: cancel_pending_order
            args: {order_id: "#W1024001", reason: no longer needed}
          - text: Your order is cancelled.
        approvals: [yes]              # answers to approval requests, in order
    expect:
      - tool-used: cancel_pending_order
      - asked-approval-before: cancel_pending_order
      - db-state:
          patch: {orders: {"#W1024001": {status: cancelled}}}

Expectation names follow promptfoo and pydantic-evals where they exist:
``tool-used``, ``not-tool-used``, ``tool-sequence``, ``tool-args``,
``final-format``, ``asked-approval-before``, ``acknowledged-failure``,
``unsupported-claim``, ``no-writes``, ``db-state``, ``max-tool-calls``,
``max-cost``. ``unsupported-claim: true`` says the case expects an answer
withheld for claiming an action no tool did (``answer.unsupported_claim``):
a regression test of that check. Without it, such an answer fails the case.

Pydantic is used here (and not plain dataclasses, as in ``tether.spec``)
because case files are input from outside the program: every unknown key is
an error with its path, so a typo in a golden set fails loudly instead of
silently testing nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "Approval",
    "Case",
    "Expectation",
    "ModelStep",
    "SuiteConfig",
    "ToolOverride",
    "Turn",
    "case_schema",
    "problems",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ModelStep(_Strict):
    """One scripted model answer: text, a tool call, or both (text first)."""

    text: str | None = None
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    #: raise this provider error instead of answering (an HTTP status: 429, 500, 503...)
    error: int | None = None

    @model_validator(mode="after")
    def _something(self) -> ModelStep:
        if self.text is None and self.tool is None and self.error is None:
            raise ValueError("a model step needs 'text', 'tool' or 'error'")
        if self.args and self.tool is None:
            raise ValueError("'args' needs a 'tool'")
        return self


class Approval(_Strict):
    """The answer to one approval request: a decision, optionally given late."""

    approve: bool
    #: seconds of (virtual) time that pass before the decision: past the
    #: policy's expiry, the approval lapses and the call does not run
    after_s: float = 0.0
    by: str = "eval-user"
    roles: list[str] = Field(default_factory=list)


def _approval(value: Any) -> Any:
    if isinstance(value, bool):
        return {"approve": value}
    if isinstance(value, str) and value.lower() in ("yes", "no", "approve", "deny"):
        return {"approve": value.lower() in ("yes", "approve")}
    return value


class Turn(_Strict):
    """One user message, and in scripted mode what the model answers during its turn."""

    user: str
    model: list[ModelStep] | None = None
    #: answers to the approval requests this turn stops for, in order
    approvals: list[Approval] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _approvals(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("approvals"), list):
            data = dict(data)
            data["approvals"] = [_approval(a) for a in data["approvals"]]
        return data


class ToolOverride(_Strict):
    """Replace what a tool does for one case: a fixed result, a refusal, or a fault.

    - ``result``: the tool returns this (a string, or data shown as JSON):
      for example a poisoned help-center article;
    - ``error``: the tool refuses with this message (``ToolFailed``);
    - ``fault``: the tool fails as a broken dependency does: ``raise`` (an
      unexpected exception), ``timeout`` (it hangs past its timeout).
    """

    result: Any = None
    error: str | None = None
    fault: Literal["raise", "timeout"] | None = None

    @model_validator(mode="after")
    def _one(self) -> ToolOverride:
        given = [self.result is not None, self.error is not None, self.fault is not None]
        if sum(given) != 1:
            raise ValueError("a tool override needs exactly one of 'result', 'error', 'fault'")
        return self


class _Sequence(_Strict):
    tools: list[str]
    #: ``in-order``: these tools were called in this order, others may come
    #: between; ``exact``: exactly these calls, nothing else
    mode: Literal["in-order", "exact"] = "in-order"


class _Args(_Strict):
    tool: str
    args: dict[str, Any]
    #: ``partial``: these arguments (others may be there); ``exact``: only these
    mode: Literal["partial", "exact"] = "partial"


class _Format(_Strict):
    regex: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="json-schema")

    @model_validator(mode="after")
    def _one(self) -> _Format:
        if (self.regex is None) == (self.json_schema is None):
            raise ValueError("final-format needs exactly one of 'regex', 'json-schema'")
        # Compiled now, so a bad one is reported as the file loads, before any model runs.
        if self.regex is not None:
            try:
                re.compile(self.regex, re.DOTALL)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} is invalid: {exc}") from None
        elif (schema := self.json_schema) is not None:
            import jsonschema

            try:
                jsonschema.validators.validator_for(schema).check_schema(schema)
            except jsonschema.SchemaError as exc:
                where = "/".join(str(p) for p in exc.path) or "(root)"
                raise ValueError(
                    f"json-schema is not a valid JSON Schema at {where}: {exc.message}"
                ) from None
        return self


class _DbState(_Strict):
    #: the final state is the initial one with this deep-merged into it
    #: (dicts merge, everything else replaces); nothing else may change
    patch: dict[str, Any]


class Expectation(_Strict):
    """One thing a case checks. Exactly one key is set (the YAML form ``- tool-used: X``)."""

    tool_used: str | None = Field(default=None, alias="tool-used")
    not_tool_used: str | None = Field(default=None, alias="not-tool-used")
    tool_sequence: _Sequence | None = Field(default=None, alias="tool-sequence")
    tool_args: _Args | None = Field(default=None, alias="tool-args")
    final_format: _Format | None = Field(default=None, alias="final-format")
    asked_approval_before: str | None = Field(default=None, alias="asked-approval-before")
    acknowledged_failure: bool | None = Field(default=None, alias="acknowledged-failure")
    #: ``true``: an answer was withheld for claiming an action no tool did
    #: (``answer.unsupported_claim``); ``false``: none was (the default without the key)
    unsupported_claim: bool | None = Field(default=None, alias="unsupported-claim")
    no_writes: bool | None = Field(default=None, alias="no-writes")
    db_state: Literal["unchanged"] | _DbState | None = Field(default=None, alias="db-state")
    max_tool_calls: int | None = Field(default=None, alias="max-tool-calls", ge=0)
    max_cost: float | None = Field(default=None, alias="max-cost", ge=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> Expectation:
        if len(self.model_fields_set) != 1:
            raise ValueError(
                "each expectation has exactly one key, such as '- tool-used: NAME'; "
                f"got {sorted(self.model_dump(by_alias=True, exclude_none=True)) or 'none'}"
            )
        return self

    @property
    def name(self) -> str:
        """The expectation's key, as written in the case (``tool-used``...)."""
        (field,) = self.model_fields_set
        alias = type(self).model_fields[field].alias
        return alias or field

    @property
    def value(self) -> Any:
        (field,) = self.model_fields_set
        return getattr(self, field)


class Case(_Strict):
    """One eval case: a conversation to run and what must hold afterwards."""

    id: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:\-]+$")]
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    #: ``scripted``: the model's answers are in the case; ``live``: a real model answers
    mode: Literal["scripted", "live"] = "scripted"
    #: the initial state of the agent's world, as the suite's environment reads it
    #: (for the retail shop: ``{"shop": "tau2"}`` or ``{"shop": "demo"}``)
    state: dict[str, Any] = Field(default_factory=dict)
    #: the end user the session belongs to (``ctx.user_id``)
    user_id: str | None = None
    tools: dict[str, ToolOverride] = Field(default_factory=dict)
    conversation: list[Turn] = Field(min_length=1)
    expect: list[Expectation] = Field(default_factory=list)
    #: where the case came from (a task id, a captured session): free text
    source: str | None = None

    @model_validator(mode="after")
    def _scripted_has_model(self) -> Case:
        if self.mode == "scripted":
            missing = [i for i, t in enumerate(self.conversation) if t.model is None]
            if missing:
                raise ValueError(
                    f"scripted case {self.id!r}: turn(s) {missing} have no 'model' answers; "
                    "give them, or set mode: live"
                )
        return self


class SuiteConfig(_Strict):
    """A suite folder's ``suite.yaml``: what to test, and how to set up each case.

    - ``agent``: ``module:attr`` of an :class:`~tether.Agent`, or of a
      function ``(case) -> Agent``;
    - ``environment``: ``module:attr`` of a factory ``(case) -> Environment``
      that builds the world a case runs in (a fresh shop, say) and snapshots
      it for ``db-state`` and ``no-writes``; see :mod:`tether.surfaces.evals.env`.
    - ``defaults``: keys every case gets unless it sets them (``tags`` add up).
    """

    name: str = ""
    agent: str | None = None
    environment: str | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)


def case_schema() -> dict[str, Any]:
    """The JSON Schema of a case file (what ``schemas/eval-case.schema.json`` holds).

    A file holds one case, a list of cases, or ``{defaults: {...}, cases:
    [...]}``; an approval may be written ``yes``/``no``/``true``/``false`` or
    as an object. Keys the ``defaults`` supply (``state``, ``tags``...) are
    merged before a case is validated, so the schema does not require them.
    """
    case = Case.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs = dict(case.pop("$defs", {}))
    defs["Case"] = case
    turn = defs["Turn"]["properties"]["approvals"]
    turn["items"] = {
        "anyOf": [
            {"$ref": "#/$defs/Approval"},
            {"type": "boolean"},
            {"enum": ["yes", "no", "approve", "deny"]},
        ]
    }
    one = {"$ref": "#/$defs/Case"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://tether.dev/schemas/eval-case.schema.json",
        "title": "Tether eval case file",
        "$defs": defs,
        "anyOf": [
            one,
            {"type": "array", "items": one},
            {
                "type": "object",
                "properties": {
                    "defaults": {"type": "object", "description": "keys every case gets"},
                    "cases": {"type": "array", "items": one},
                },
                "required": ["cases"],
                "additionalProperties": False,
            },
        ],
    }


def problems(
    exc: ValidationError,
    *,
    root: str = "(file)",
    name: Callable[[list[Any]], list[Any]] | None = None,
) -> str:
    """The first five problems of ``exc`` as ``where: what; ...`` for an error message.

    ``root`` stands for an empty location; ``name`` may rewrite a location
    (say, a list index into the item's id) before it is shown.
    """
    parts = []
    for err in exc.errors()[:5]:
        loc = list(err["loc"])
        if name is not None:
            loc = name(loc)
        what = err["msg"].removeprefix("Value error, ")  # pydantic's prefix for a ValueError
        parts.append(f"{'.'.join(str(x) for x in loc) or root}: {what}")
    return "; ".join(parts)
