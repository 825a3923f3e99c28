"""Structured final answers: validated against the agent's output schema, with a bounded re-ask.

An agent with ``output_schema`` (a JSON Schema dict, or a pydantic model
class) must answer with JSON that matches it. The runtime reads the final
answer (a JSON object, optionally inside a Markdown code fence), validates
it, and on a mismatch asks the model again, telling it exactly what was
wrong, at most ``Agent.output_retries`` times; then the turn fails with the
errors. The re-ask is recorded (``output.reask``) and is part of the
conversation the model sees, so a resumed turn sees it too. A valid answer's
parsed value is ``TurnResult.data`` (the pydantic instance for a model class).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic

__all__ = ["parse_output", "reask_text"]

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


def parse_output(text: str, schema: Any) -> tuple[Any, list[str]]:
    """``(value, [])`` when ``text`` is JSON matching ``schema``, else ``(None, errors)``."""
    m = _FENCE.match(text)
    raw = m.group(1) if m else text.strip()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, [f"the answer is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
    if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
        try:
            return schema.model_validate(value), []
        except pydantic.ValidationError as exc:
            return None, [
                f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
                for e in exc.errors()[:10]
            ]
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))[:10]
    ]
    return (None, errors) if errors else (value, [])


def reask_text(errors: list[str], schema: Any) -> str:
    """The runtime's message asking for a corrected answer."""
    if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
        schema = schema.model_json_schema()
    return (
        "[Tether runtime] Your answer does not match the required output format:\n- "
        + "\n- ".join(errors)
        + "\nAnswer again with only a JSON value that matches this JSON Schema, and nothing "
        f"else:\n{json.dumps(schema, ensure_ascii=False)}"
    )
