"""Running one tool call: validate, run under a timeout, never raise.

Whatever happens (unknown tool, invalid arguments, a refusal, a crash, a
timeout) the model receives a :class:`ToolResult`; failures carry
``is_error=True`` and say what could not be done, so the model can tell
the user instead of inventing an answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pydantic

from tether.exceptions import Retry, ToolFailed
from tether.spec.messages import ToolCall, ToolResult
from tether.spec.tools import Tool, ToolContext

__all__ = ["execute_tool", "outcome_unknown", "render_output"]

log = logging.getLogger("tether.tools")


def render_output(value: Any) -> str:
    """A tool's return value as text for the model (JSON unless it is text)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def _validation_message(call: ToolCall, exc: pydantic.ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )
    return f"error: invalid arguments for {call.name}: {problems}. Fix them and call again."


def outcome_unknown(call: ToolCall) -> ToolResult:
    """The result for a non-idempotent call that started but never reported back."""
    return ToolResult(
        call.id,
        call.name,
        f"error: outcome unknown. {call.name} was started but the process stopped before it "
        "reported a result, and it is not safe to run it again. Tell the user the action may "
        "or may not have happened and that it must be checked before trying again.",
        is_error=True,
    )


async def execute_tool(
    tools: dict[str, Tool],
    call: ToolCall,
    *,
    session_id: str,
    step: int,
    user_id: str | None,
    vars: dict[str, Any],
    deps: Any,
) -> tuple[ToolResult, dict[str, Any] | None]:
    """Run ``call``; return its result and the session vars it changed (or ``None``)."""
    tool = tools.get(call.name)
    if tool is None:
        names = ", ".join(sorted(tools)) or "none"
        return (
            ToolResult(
                call.id,
                call.name,
                f"error: there is no tool named {call.name!r}. Available tools: {names}.",
                is_error=True,
            ),
            None,
        )
    ctx_vars = dict(vars)
    ctx = ToolContext(
        session_id=session_id,
        step=step,
        call_id=call.id,
        idempotency_key=f"{session_id}:{step}:{call.id}",
        user_id=user_id,
        vars=ctx_vars,
        deps=deps,
    )
    try:
        async with asyncio.timeout(tool.timeout):
            value = await tool(ctx, call.arguments)
    except pydantic.ValidationError as exc:
        return ToolResult(call.id, call.name, _validation_message(call, exc), True), None
    except Retry as exc:
        content = (
            f"error: {call.name} is temporarily unavailable ({exc}). "
            "Its result is not available; tell the user, or try again later."
        )
        return ToolResult(call.id, call.name, content, True), None
    except ToolFailed as exc:
        content = f"error: {call.name} could not be done: {exc}"
        return ToolResult(call.id, call.name, content, True), _changed(vars, ctx_vars)
    except TimeoutError:
        log.warning("tool %s timed out after %ss (session %s)", call.name, tool.timeout, session_id)
        effect = "" if tool.idempotent else " It may or may not have taken effect."
        content = f"error: {call.name} did not finish within {tool.timeout:g} s.{effect}"
        return ToolResult(call.id, call.name, content, True), None
    except Exception as exc:
        log.exception("tool %s raised (session %s)", call.name, session_id)
        content = (
            f"error: {call.name} failed unexpectedly ({type(exc).__name__}: {exc}). "
            "Its result is not available."
        )
        return ToolResult(call.id, call.name, content, True), None
    return ToolResult(call.id, call.name, render_output(value)), _changed(vars, ctx_vars)


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    if after == before:
        return None
    return {k: v for k, v in after.items() if before.get(k, _MISSING) != v}


_MISSING = object()
