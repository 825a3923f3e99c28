"""Running one tool call: validate, run under a timeout, never raise.

Whatever happens (unknown tool, invalid arguments, a refusal, a crash, a
timeout, a result or session var that cannot be stored, no free worker
thread) the model receives a :class:`ToolResult`; failures carry
``is_error=True`` and say what could not be done, so the model can tell
the user instead of inventing an answer.

What the model is shown is bounded: a result longer than the tool's
``max_output_chars`` is cut, with a note, and the full text is kept in the
:class:`ToolRun` for the store (itself cut at :data:`STORE_CAP_CHARS`);
error messages, which quote exception text, are cut at
:data:`ERROR_CAP_CHARS`.

A tool with a ``cost`` is metered here: its function's runs are counted
as they start, and :class:`ToolRun` carries what the call cost
(:func:`call_cost`; the rules are in :class:`~tether.spec.tools.Tool`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from tether.controls.breaker import ADMITTED, Breakers
from tether.controls.retry import RetryInfo, Sleep, retry_after
from tether.exceptions import CircuitOpen, Retry, ToolFailed, ToolWorkersBusy
from tether.runtime.executor import ToolExecutor
from tether.spec.events import EventType
from tether.spec.jsonsafe import SessionVars, Unstorable, check_var, to_jsonable
from tether.spec.messages import ToolCall, ToolResult
from tether.spec.policy import BreakerPolicy, RetryPolicy
from tether.spec.tools import Tool, ToolContext

__all__ = [
    "ERROR_CAP_CHARS",
    "STORE_CAP_CHARS",
    "ToolEnv",
    "ToolRun",
    "call_cost",
    "execute_tool",
    "outcome_unknown",
    "record_outcome",
    "render_output",
]

log = logging.getLogger("tether.tools")

#: the most of one tool result kept for the store (the model sees ``max_output_chars``)
STORE_CAP_CHARS = 1_000_000
#: the most of one error result (they quote exceptions, which may be huge)
ERROR_CAP_CHARS = 2_000

_dumps = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


def render_output(value: Any) -> str:
    """A tool's return value as text for the model: itself if text, else JSON.

    Values JSON lacks follow :func:`tether.spec.jsonsafe.to_jsonable` (a
    ``datetime`` as ISO text, a dataclass as an object...); raises
    :class:`~tether.spec.jsonsafe.Unstorable`, naming the path to the bad
    value, for what cannot be stored.
    """
    if isinstance(value, str):
        return value
    return _dumps(to_jsonable(value))  # to_jsonable refused cycles and NaN already


def _cut(text: str, cap: int, name: str, kept: str) -> str:
    if len(text) <= cap:
        return text
    return (
        f"{text[:cap]}\n[output cut: {name} returned {len(text):,} characters; "
        f"the first {cap:,} are {kept}]"
    )


def _error(call: ToolCall, content: str) -> ToolResult:
    """An error result, cut in the middle when longer than ``ERROR_CAP_CHARS``.

    The head says what failed, the tail what to do; what is cut is the
    quoted exception text in between.
    """
    if len(content) > ERROR_CAP_CHARS:
        tail = ERROR_CAP_CHARS // 5
        head = ERROR_CAP_CHARS - tail - 50  # room for the marker
        cut = len(content) - head - tail
        content = f"{content[:head]} [... {cut:,} characters cut ...] {content[-tail:]}"
    return ToolResult(call.id, call.name, content, is_error=True)


def _may_have_acted(tool: Tool) -> str:
    if tool.idempotent:
        return ""
    return (
        " It is not idempotent, so it may have acted: tell the user the action may or may "
        "not have happened."
    )


def _validation_message(call: ToolCall, exc: pydantic.ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )
    return f"error: invalid arguments for {call.name}: {problems}. Fix them and call again."


def outcome_unknown(call: ToolCall) -> ToolResult:
    """The result for a non-idempotent call that started but never reported back."""
    return _error(
        call,
        f"error: outcome unknown. {call.name} was started but the process stopped before it "
        "reported a result, and it is not safe to run it again. Tell the user the action may "
        "or may not have happened and that it must be checked before trying again.",
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
    #: the runtime's threads for plain-function tools (``None``: the loop's default pool)
    executor: ToolExecutor | None = None


_NO_RETRY = RetryPolicy(max_retries=0)


@dataclass(slots=True)
class ToolRun:
    """What one tool call produced, as the turn records it.

    ``result`` is what the model sees (its content cut to the tool's
    ``max_output_chars`` when longer); ``vars`` the session vars the call
    changed (already storable); ``original`` the full text when it was cut
    (itself kept up to :data:`STORE_CAP_CHARS`, with a note when cut again)
    and ``original_chars`` its length (0 when not cut).
    """

    result: ToolResult
    vars: dict[str, Any] | None = None
    original: str | None = None
    original_chars: int = 0
    #: the error quotes what the tool itself raised (text from wherever it read)
    raised: bool = False
    #: dollars the call cost (a tool with a ``cost``; ``None``: not metered)
    cost: float | None = None
    #: why a cost function's answer was not used (the call is then recorded at 0)
    cost_error: str | None = None


class _Meter:
    """Counts the runs of a priced tool's function and keeps what it returned."""

    __slots__ = ("runs", "value")

    def __init__(self) -> None:
        self.runs = 0
        self.value: Any = None

    def started(self) -> None:  # called in the tool's worker thread for a plain function
        self.runs += 1


#: the longest ``cost_error`` recorded
_COST_ERROR_CHARS = 200


def call_cost(
    tool: Tool, *, runs: int, value: Any = None, ok: bool = False
) -> tuple[float, str | None]:
    """What one call of ``tool`` cost, in dollars, and why a cost function failed (or ``None``).

    ``runs``: how many times its function ran (attempts, counting retries);
    ``value``: what it returned, when ``ok`` (the call succeeded). A fixed
    price is charged per run; a function of the result is called only for a
    successful call, and what it raises or returns that is not a finite
    number >= 0 is recorded as 0 with the reason.
    """
    price = tool.cost
    if price is None or runs <= 0:
        return 0.0, None
    if not callable(price):
        return price * runs, None
    if not ok:
        return 0.0, None
    try:
        dollars = price(value)
    except Exception as exc:  # the author's function: it must not fail the turn
        why = f"its cost function raised {type(exc).__name__}: {exc}"
        return 0.0, why[:_COST_ERROR_CHARS]
    if inspect.iscoroutine(dollars):  # an async function the declaration could not tell
        dollars.close()
        return 0.0, "its cost function returned a coroutine, not dollars (it must not be async)"
    if (
        isinstance(dollars, bool)
        or not isinstance(dollars, int | float)
        or not math.isfinite(dollars)
        or dollars < 0
    ):
        why = f"its cost function returned {dollars!r}, not a finite number of dollars >= 0"
        return 0.0, why[:_COST_ERROR_CHARS]
    return float(dollars), None


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
    A tool that is not idempotent is never retried: it may have acted. A
    plain function runs on ``env.executor`` when there is one.

    The tool sees ``vars`` as a :class:`~tether.spec.jsonsafe.SessionVars`,
    which refuses a value that cannot be stored when it is set; the changed
    vars are checked again when it returns. A refused var, or a result that
    cannot be stored, becomes an error result (and the call's var changes
    are dropped for the former). This function does not raise.

    For a tool with a ``cost``, the run carries what the call cost
    (:func:`call_cost` of the times its function started, and of its value);
    a cost function that fails is logged and recorded at 0 with the reason.
    """
    tool = tools.get(call.name)
    if tool is None:
        names = ", ".join(sorted(tools)) or "none"
        return ToolRun(
            _error(call, f"error: there is no tool named {call.name!r}. Available tools: {names}.")
        )
    if tool.cost is None:
        return await _run(tool, call, session_id, step, user_id, vars, deps, env, None)
    meter = _Meter()
    run = await _run(tool, call, session_id, step, user_id, vars, deps, env, meter)
    ok = not run.result.is_error
    run.cost, run.cost_error = call_cost(tool, runs=meter.runs, value=meter.value, ok=ok)
    if run.cost_error is not None:
        log.warning(
            "tool %s (session %s): %s; the call is recorded at $0",
            tool.name,
            session_id,
            run.cost_error,
        )
    return run


async def _run(
    tool: Tool,
    call: ToolCall,
    session_id: str,
    step: int,
    user_id: str | None,
    vars: dict[str, Any],
    deps: Any,
    env: ToolEnv | None,
    meter: _Meter | None,
) -> ToolRun:
    """The call's run (see :func:`execute_tool`); ``meter`` counts the function's runs."""
    key = f"tool:{env.agent}:{tool.name}" if env is not None else ""
    executor = env.executor if env is not None else None
    started = None if meter is None else meter.started
    changed_vars: list[dict[str, Any]] = [vars]

    async def attempt() -> Any:
        admission = ADMITTED
        if env is not None:
            breakers = env.breakers
            admission = breakers.admit_now(key, env.breaker) or await breakers.admit(
                key, env.breaker
            )
            if not admission.allowed:
                raise CircuitOpen(f"{tool.name} is paused", key=key, retry_at=admission.retry_at)
        ctx_vars = SessionVars.stored(vars)  # a failed attempt's changes are dropped
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
                value = await tool(ctx, call.arguments, executor=executor, started=started)
        except (pydantic.ValidationError, ToolWorkersBusy):
            raise  # the model's mistake, or not run: says nothing about the tool's health
        except ToolFailed:
            await _record(env, key, ok=True, trial=admission.trial)  # it answered: a refusal
            raise
        except Exception:
            await _record(env, key, ok=False, trial=admission.trial)
            raise
        await _record(env, key, ok=True, trial=admission.trial)
        if meter is not None:
            meter.value = value
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
        return ToolRun(_error(call, _validation_message(call, exc)))
    except ToolWorkersBusy as exc:
        log.error("tool %s not run (session %s): %s", call.name, session_id, exc)
        content = (
            f"error: {call.name}: the runtime's tool workers are all busy with calls that timed "
            "out; not run. Its result is not available; tell the user, or try again later."
        )
        return ToolRun(_error(call, content))
    except CircuitOpen as exc:
        wait = ""
        if exc.retry_at is not None and env is not None:
            wait = f" for about {max(0.0, exc.retry_at - env.breakers.clock()):.0f} more seconds"
        content = (
            f"error: {call.name} is unavailable right now: it failed repeatedly, so the runtime "
            f"stopped calling it{wait}. It was not run. Tell the user what you could not do."
        )
        return ToolRun(_error(call, content))
    except Retry as exc:
        content = (
            f"error: {call.name} is temporarily unavailable ({exc}). "
            "Its result is not available; tell the user, or try again later."
        )
        return ToolRun(_error(call, content), raised=True)
    except ToolFailed as exc:
        content = f"error: {call.name} could not be done: {exc}"
        try:
            kept = _changed(vars, changed_vars[0])
        except Unstorable as bad:
            return ToolRun(_var_error(call, tool, bad, session_id), raised=True)
        return ToolRun(_error(call, content), kept, raised=True)
    except TimeoutError:
        log.warning("tool %s timed out after %ss (session %s)", call.name, tool.timeout, session_id)
        if executor is not None and not tool.is_async and executor.abandoned:
            log.warning(
                "tool %s: its function is still running in its thread; %d of %d tool threads "
                "are held by calls that timed out",
                call.name,
                executor.abandoned,
                executor.max_workers,
            )
        effect = "" if tool.idempotent else " It may or may not have taken effect."
        content = f"error: {call.name} did not finish within {tool.timeout:g} s.{effect}"
        return ToolRun(_error(call, content))
    except Exception as exc:
        if isinstance(exc, Unstorable) and exc.key is not None:  # raised by ctx.vars[key] = ...
            return ToolRun(_var_error(call, tool, exc, session_id), raised=True)
        log.exception("tool %s raised (session %s)", call.name, session_id)
        content = (
            f"error: {call.name} failed unexpectedly ({type(exc).__name__}: {exc}). "
            "Its result is not available."
        )
        return ToolRun(_error(call, content), raised=True)
    return _finished(call, tool, value, vars, changed_vars[0], session_id)


def _finished(
    call: ToolCall,
    tool: Tool,
    value: Any,
    before: dict[str, Any],
    after: dict[str, Any],
    session_id: str,
) -> ToolRun:
    """The run of a call that returned: its vars checked, its value rendered and cut."""
    try:
        new_vars = _changed(before, after)
    except Unstorable as exc:  # its message names keys the tool wrote
        return ToolRun(_var_error(call, tool, exc, session_id), raised=True)
    try:
        text = render_output(value)
    except Exception as exc:  # Unstorable, or a broken __repr__ or model_dump inside it
        log.error(
            "tool %s returned a value that cannot be stored (session %s): %s",
            call.name,
            session_id,
            exc,
        )
        content = (
            f"error: {call.name} returned a value that cannot be stored ({exc}); it ran, but "
            f"its result is not available.{_may_have_acted(tool)}"
        )
        return ToolRun(_error(call, content), new_vars, raised=True)
    n = len(text)
    if n <= tool.max_output_chars:
        return ToolRun(ToolResult(call.id, call.name, text), new_vars)
    return ToolRun(
        ToolResult(call.id, call.name, _cut(text, tool.max_output_chars, call.name, "shown")),
        new_vars,
        original=_cut(text, STORE_CAP_CHARS, call.name, "stored"),
        original_chars=n,
    )


def _var_error(call: ToolCall, tool: Tool, exc: Unstorable, session_id: str) -> ToolResult:
    """The result for a call that set a session var to something that cannot be stored."""
    log.error(
        "tool %s set session var %r to a value that cannot be stored (session %s): %s",
        call.name,
        exc.key,
        session_id,
        exc,
    )
    content = (
        f"error: {call.name} set session var {exc.key!r} to a value that cannot be stored: "
        f"{exc}. Its result is not available, and the session vars it set were not kept."
        f"{_may_have_acted(tool)}"
    )
    return _error(call, content)


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
    """The vars ``after`` sets differently from ``before``, checked (raises ``Unstorable``).

    Each was checked when it was set; checking again catches a value changed
    in place since (a stored list appended to).
    """
    if after is before or after == before:
        return None
    return {k: check_var(k, v) for k, v in after.items() if before.get(k, _MISSING) != v}


_MISSING = object()
