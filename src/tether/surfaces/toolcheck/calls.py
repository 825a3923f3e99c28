"""One call of a tool, as the runtime makes it, and what became of it.

The tool is called through :meth:`Tool.__call__ <tether.spec.tools.Tool.__call__>`
(its validation first, then its function) under its timeout; its result
goes through :func:`~tether.runtime.execute.render_output` and the session
vars it set through :func:`~tether.spec.jsonsafe.check_var`, the checks the
runtime makes before it stores a call. What the runtime adds around a call
(breakers, retries, approval) is left out: those are not the tool's contract.

A plain function runs on a daemon thread of its own (:class:`DaemonThreads`):
a call that hangs cannot be stopped, so its thread is left running, and a
daemon thread does not keep the process from exiting when the check is over
(the runtime's own pool would be joined at exit, forever for a call that
never returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from tether.exceptions import ToolSignal
from tether.runtime.execute import render_output
from tether.spec.jsonsafe import SessionVars, Unstorable, check_var
from tether.spec.tools import Tool, ToolContext
from tether.surfaces.loader import raising_frame

__all__ = ["CallResult", "DaemonThreads", "Outcome", "call_tool"]

#: the session id the calls carry (tools see it as ``ctx.session_id``)
SESSION_ID = "tools-test"


class Outcome(enum.StrEnum):
    """How one call ended (the last three are findings)."""

    OK = "ok"
    REFUSED = "refused"
    REJECTED = "rejected"
    RAISED = "raised"
    HUNG = "hung"
    UNSTORABLE = "unstorable"


@dataclass(slots=True)
class CallResult:
    """What one call did. ``ran``: its function was entered; ``key`` groups one cause."""

    outcome: Outcome
    ran: bool
    detail: str = ""
    key: str = ""


class DaemonThreads:
    """An :class:`~tether.spec.tools.Executor` running each call on a daemon thread of its own.

    :attr:`running` counts the threads still busy with a call whose caller
    stopped waiting (it timed out).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = 0

    @property
    def running(self) -> int:
        """Threads still running a call that was given up on."""
        return self._abandoned

    async def run(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        # guarded by self._lock: the thread is done / its caller stopped waiting
        state = {"finished": False, "abandoned": False}
        context = contextvars.copy_context()

        def settle(value: Any, exc: BaseException | None) -> None:
            if future.done():
                return
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(value)

        def work() -> None:
            value: Any = None
            error: BaseException | None = None
            try:
                value = context.run(functools.partial(fn, **kwargs))
            except BaseException as exc:  # delivered to the caller, whatever it is
                error = exc
            with self._lock:
                state["finished"] = True
                if state["abandoned"]:
                    self._abandoned -= 1
                    return
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(settle, value, error)

        threading.Thread(target=work, name="tether-toolcheck", daemon=True).start()
        try:
            return await future
        except asyncio.CancelledError:
            with self._lock:
                if not state["finished"]:
                    state["abandoned"] = True
                    self._abandoned += 1
            raise


async def call_tool(
    tool: Tool,
    arguments: dict[str, Any],
    *,
    deps: Any,
    vars: dict[str, Any],
    user_id: str | None,
    step: int,
    call_timeout: float,
    threads: DaemonThreads,
) -> CallResult:
    """Call ``tool`` once with ``arguments``; never raises (but for cancellation)."""
    entered: list[bool] = []
    ctx_vars = SessionVars(vars)
    call_id = f"call_{step}"
    ctx = ToolContext(
        session_id=SESSION_ID,
        step=step,
        call_id=call_id,
        idempotency_key=f"{SESSION_ID}:{step}:{call_id}",
        user_id=user_id,
        vars=ctx_vars,
        deps=deps,
    )
    deadline = asyncio.timeout(call_timeout)
    try:
        async with deadline:
            value = await tool(
                ctx, arguments, executor=threads, started=lambda: entered.append(True)
            )
    except pydantic.ValidationError as exc:
        if not entered:  # the tool's validation refused them: its function never ran
            return CallResult(Outcome.REJECTED, False, _validation(exc))
        return _raised(exc)
    except TimeoutError as exc:
        if deadline.expired():
            return CallResult(
                Outcome.HUNG,
                bool(entered),
                f"did not finish within {call_timeout:g} s",
                key="hung",
            )
        return _raised(exc)  # the tool's own TimeoutError (a socket's, say)
    except ToolSignal as exc:
        return CallResult(Outcome.REFUSED, True, f"{type(exc).__name__}: {exc}")
    except Unstorable as exc:
        if exc.key is not None:  # raised by ctx.vars[key] = value
            return _unstorable(
                f"set session var {exc.key!r} to a value that cannot be stored: {exc}"
            )
        return _raised(exc)
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise
    except BaseException as exc:  # anything else the tool let escape is a bug
        return _raised(exc)
    for key, item in ctx_vars.items():
        if vars.get(key, _MISSING) != item:
            try:
                check_var(key, item)
            except Unstorable as exc:
                return _unstorable(
                    f"set session var {key!r} to a value that cannot be stored: {exc}"
                )
    try:
        render_output(value)
    except Exception as exc:  # Unstorable, or a broken __repr__ or model_dump inside it
        return _unstorable(f"returned a value that cannot be stored: {exc}")
    return CallResult(Outcome.OK, True)


_MISSING = object()


def _raised(exc: BaseException) -> CallResult:
    """A bug: ``Type: message (file:line)``, the file relative to the working directory."""
    frame = raising_frame(exc.__traceback__)
    where = "" if frame is None else f"{_relative(frame.filename)}:{frame.lineno}"
    text = str(exc).strip()
    if len(text) > _MESSAGE_CHARS:
        text = text[: _MESSAGE_CHARS - 1] + "…"
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if where:
        detail += f" ({where})"
    return CallResult(Outcome.RAISED, True, detail, key=f"{type(exc).__qualname__}@{where}")


#: the most of an exception's message kept in a finding
_MESSAGE_CHARS = 500


def _relative(path: str) -> str:
    try:
        relative = Path(path).resolve().relative_to(Path.cwd())
    except (ValueError, OSError):
        return path
    return str(relative)


def _unstorable(detail: str) -> CallResult:
    # the reason without the path's specifics would merge too much; the detail is the cause
    return CallResult(Outcome.UNSTORABLE, True, detail, key=detail)


def _validation(exc: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )
