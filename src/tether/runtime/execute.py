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
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from tether.controls.breaker import ADMITTED, Breakers
from tether.controls.retry import RetryInfo, Sleep, retry_after
from tether.exceptions import CircuitOpen, Retry, ToolFailed
from tether.spec.events import EventType
from tether.spec.messages import ToolCall, ToolResult
from tether.spec.policy import BreakerPolicy, RetryPolicy
from tether.spec.tools import Tool, ToolContext

__all__ = [
    "ToolEnv",
    "ToolRun",
    "execute_tool",
    "outcome_unknown",
    "record_outcome",
    "render_output",
]

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


@dataclass(slots=True)
class ToolEnv:
    """What running a tool needs besides the call: breakers, retries, events."""

    agent: str
    breakers: Breakers
    breaker: BreakerPolicy
    retry: RetryPolicy  # the agent's; a tool may carry its own
    sleep: Sleep
    rng: random.Random
    #: queue a stored event (``type``, ``data``) on the turn
    emit: Callable[[str, dict[str, Any]], Any]


_NO_RETRY = RetryPolicy(max_retries=0)


@dataclass(slots=True)
class ToolRun:
    """What one tool call produced, as the turn records it.

    ``result`` is what the model sees (its content cut to the tool's
    ``max_output_chars`` when longer); ``vars`` the session vars the call
    changed; ``original`` the full text when it was cut (itself kept up to
    the store cap) and ``original_chars`` its length (0 when not cut).
    """

    result: ToolResult
    vars: dict[str, Any] | None = None
    original: str | None = None
    original_chars: int = 0


async def execute_tool(
    tools: dict[str, Tool],
    call: ToolCall,
    *,
    session_id: str,
    step: int,
    user_id: str | None,
    vars: dict[str, Any],
    deps: Any,
    env: ToolEnv | None = None,
) -> ToolRun:
    """Run ``call``; return its result and the session vars it changed (as a :class:`ToolRun`).

    With ``env``, the call goes through the tool's breaker
    (``tool:<agent>:<name>``) and, if the tool is idempotent, is retried on
    transient failures (its ``Retry`` signal, a timeout, a lost connection).
    A tool that is not idempotent is never retried: it may have acted.
    """
    tool = tools.get(call.name)
    if tool is None:
        names = ", ".join(sorted(tools)) or "none"
        return ToolRun(
            ToolResult(
                call.id,
                call.name,
                f"error: there is no tool named {call.name!r}. Available tools: {names}.",
                is_error=True,
            )
        )
    key = f"tool:{env.agent}:{tool.name}" if env is not None else ""
    changed_vars: list[dict[str, Any]] = [dict(vars)]

    async def attempt() -> Any:
        admission = ADMITTED
        if env is not None:
            breakers = env.breakers
            admission = breakers.admit_now(key, env.breaker) or await breakers.admit(
                key, env.breaker
            )
            if not admission.allowed:
                raise CircuitOpen(f"{tool.name} is paused", key=key, retry_at=admission.retry_at)
        ctx_vars = dict(vars)  # a failed attempt's changes are dropped
        changed_vars[0] = ctx_vars
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
        except pydantic.ValidationError:
            raise  # the model's mistake: says nothing about the tool's health
        except ToolFailed:
            await _record(env, key, ok=True, trial=admission.trial)  # it answered: a refusal
            raise
        except Exception:
            await _record(env, key, ok=False, trial=admission.trial)
            raise
        await _record(env, key, ok=True, trial=admission.trial)
        return value

    def on_retry(info: RetryInfo) -> None:
        log.warning(
            "tool %s: attempt %d failed (%s); retrying in %.2f s",
            tool.name,
            info.attempt,
            info.reason,
            info.delay,
        )
        if env is not None:
            env.emit(
                EventType.TOOL_RETRY,
                {
                    "call_id": call.id,
                    "name": tool.name,
                    "attempt": info.attempt,
                    "reason": info.reason,
                    "delay": round(info.delay, 3),
                },
            )

    policy = _NO_RETRY
    if env is not None and tool.idempotent:
        policy = tool.retry or env.retry
    try:
        try:
            value = await attempt()
        except Exception as exc:
            value = await retry_after(
                exc,
                attempt,
                policy,
                sleep=env.sleep if env is not None else asyncio.sleep,
                rng=env.rng if env is not None else None,
                on_retry=on_retry,
            )
    except pydantic.ValidationError as exc:
        return ToolRun(ToolResult(call.id, call.name, _validation_message(call, exc), True))
    except CircuitOpen as exc:
        wait = ""
        if exc.retry_at is not None and env is not None:
            wait = f" for about {max(0.0, exc.retry_at - env.breakers.clock()):.0f} more seconds"
        content = (
            f"error: {call.name} is unavailable right now: it failed repeatedly, so the runtime "
            f"stopped calling it{wait}. It was not run. Tell the user what you could not do."
        )
        return ToolRun(ToolResult(call.id, call.name, content, True))
    except Retry as exc:
        content = (
            f"error: {call.name} is temporarily unavailable ({exc}). "
            "Its result is not available; tell the user, or try again later."
        )
        return ToolRun(ToolResult(call.id, call.name, content, True))
    except ToolFailed as exc:
        content = f"error: {call.name} could not be done: {exc}"
        return ToolRun(
            ToolResult(call.id, call.name, content, True), _changed(vars, changed_vars[0])
        )
    except TimeoutError:
        log.warning("tool %s timed out after %ss (session %s)", call.name, tool.timeout, session_id)
        effect = "" if tool.idempotent else " It may or may not have taken effect."
        content = f"error: {call.name} did not finish within {tool.timeout:g} s.{effect}"
        return ToolRun(ToolResult(call.id, call.name, content, True))
    except Exception as exc:
        log.exception("tool %s raised (session %s)", call.name, session_id)
        content = (
            f"error: {call.name} failed unexpectedly ({type(exc).__name__}: {exc}). "
            "Its result is not available."
        )
        return ToolRun(ToolResult(call.id, call.name, content, True))
    return ToolRun(
        ToolResult(call.id, call.name, render_output(value)), _changed(vars, changed_vars[0])
    )


async def _record(env: ToolEnv | None, key: str, *, ok: bool, trial: bool) -> None:
    if env is not None:
        await record_outcome(env.breakers, key, env.breaker, env.emit, ok=ok, trial=trial)


async def record_outcome(
    breakers: Breakers,
    key: str,
    policy: BreakerPolicy,
    emit: Callable[[str, dict[str, Any]], Any],
    *,
    ok: bool,
    trial: bool,
) -> None:
    """Record a call's outcome on its breaker; an opening is an alert event and an error log."""
    if breakers.local:
        change = breakers.record_now(key, policy, ok=ok, trial=trial)
    else:
        change = await breakers.record(key, policy, ok=ok, trial=trial)
    if change == "opened":
        log.error("circuit breaker %s opened: calls fail fast for %g s", key, policy.cooldown)
        emit(EventType.BREAKER_OPENED, {"key": key, "cooldown": policy.cooldown})
    elif change == "closed":
        log.warning("circuit breaker %s closed: its trial call succeeded", key)
        emit(EventType.BREAKER_CLOSED, {"key": key})


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    if after == before:
        return None
    return {k: v for k, v in after.items() if before.get(k, _MISSING) != v}


_MISSING = object()
