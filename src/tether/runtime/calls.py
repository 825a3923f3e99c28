"""One model call through the reliability layer: timeouts, retries, breakers, fallback.

:func:`call_model_chain` asks the agent's models in order. For each model:

1. its breaker (``model:<spec>``) must admit the call, else
   :class:`~tether.exceptions.CircuitOpen`;
2. the call streams under two deadlines: the first event within
   ``Limits.first_token_timeout``, the whole answer within
   ``Limits.model_timeout``;
3. a transient failure (see :class:`~tether.spec.policy.RetryPolicy`) is
   retried after a wait, unless text has already been shown to the user:
   a stream that delivered text and then broke is never silently restarted;
4. every transient failure counts against the breaker, every answer for it.

Only an *availability* failure (retries exhausted on a transient error, a
timeout, an open breaker) moves on to the next model, and only if the agent
may downgrade (:attr:`~tether.spec.agent.Agent.may_downgrade`: not
``no_downgrade`` and no ``critical`` tool). A 4xx, or a failure after text
was shown, ends the call at once. When nothing could answer,
:class:`~tether.exceptions.ModelUnavailable` says why in words a user can
act on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tether.controls.breaker import Breakers
from tether.controls.retry import RetryInfo, Sleep, describe, retry_after
from tether.exceptions import CircuitOpen, ModelTimeout, ModelUnavailable, ProviderError
from tether.runtime.execute import record_outcome
from tether.spec.agent import Agent
from tether.spec.events import Event, EventType
from tether.spec.model import Model, ModelRequest, ModelResponse, TextDelta

__all__ = ["CallEnv", "ChainAnswer", "call_model_chain"]

log = logging.getLogger("tether.models")


@dataclass(slots=True)
class CallEnv:
    """What the reliability layer needs from the turn that calls it."""

    breakers: Breakers
    sleep: Sleep
    rng: random.Random
    #: queue a stored event (``type``, ``data``) on the turn
    emit: Callable[[str, dict[str, Any]], Any]
    #: publish a streamed (not stored) event
    sink: Callable[[Event], None]
    session_id: str
    step: int
    clock: Callable[[], float]
    #: one-time set-up of a model before its first call, outside every timeout
    prepare: Callable[[Model], Awaitable[None]]
    #: ids of the models already set up (``prepare`` adds to it)
    prepared: set[int]


@dataclass(frozen=True, slots=True)
class ChainAnswer:
    """The answer and who gave it: ``index`` 0 is the primary model."""

    response: ModelResponse
    model: Model
    index: int
    latency_ms: float


class _Deadlines:
    """The first-event and total deadlines of one model call, on one timer.

    ``asyncio.timeout`` would need a second timer (a reschedule) as soon as
    the first event arrives, on every call; here the single timer fires at
    the first-event deadline and, if the stream has started by then, moves
    itself to the total deadline instead of cancelling. Most calls finish
    before either, so they pay for one timer. Cancellation follows
    ``asyncio.timeout``: the task is cancelled, and the ``CancelledError`` is
    turned into a timeout only if this timer caused it (``uncancel``).
    """

    __slots__ = ("_end", "_handle", "_loop", "_task", "fired", "started")

    def __init__(self, first_by: float, end: float) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(self._loop)
        assert task is not None
        self._task = task
        self._end = end
        self.started = False
        self.fired = False
        self._handle = self._loop.call_at(first_by, self._expire)

    def _expire(self) -> None:
        if self.started and self._loop.time() < self._end:
            self._handle = self._loop.call_at(self._end, self._expire)
            return
        self.fired = True
        self._task.cancel()

    def close(self) -> bool:
        """Stop the timer (idempotent); whether it fired and the cancellation is ours."""
        self._handle.cancel()
        if not self.fired:
            return False
        self.fired = False  # uncancel once, however often close() is called
        return self._task.uncancel() == 0


async def _stream_once(
    model: Model, request: ModelRequest, agent: Agent, env: CallEnv, shown: list[bool]
) -> ModelResponse:
    limits = agent.limits
    start = asyncio.get_running_loop().time()
    end = start + limits.model_timeout
    deadlines = _Deadlines(min(start + limits.first_token_timeout, end), end)
    response: ModelResponse | None = None
    stream = model.stream(request)
    try:
        async for item in stream:
            deadlines.started = True
            if isinstance(item, TextDelta):
                if item.text:
                    shown[0] = True
                env.sink(
                    Event(
                        EventType.MODEL_DELTA,
                        env.session_id,
                        env.step,
                        env.clock(),
                        {"text": item.text},
                    )
                )
            else:
                response = item
    except asyncio.CancelledError as exc:
        if not deadlines.close():
            raise
        if not deadlines.started and limits.first_token_timeout < limits.model_timeout:
            raise ModelTimeout(
                f"{model.name} did not start answering within "
                f"{limits.first_token_timeout:g} s (Limits.first_token_timeout)",
                model=model.name,
            ) from exc
        raise ModelTimeout(
            f"{model.name} did not finish answering within {limits.model_timeout:g} s "
            "(Limits.model_timeout)",
            model=model.name,
        ) from exc
    finally:
        deadlines.close()  # on success, and when the stream raised anything else
        # Close the provider's stream now (its HTTP connection goes back to the
        # pool) rather than when it is collected, before any retry opens another.
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    if response is None:
        raise ProviderError(
            f"{model.name} ended its stream without a response", model=model.name, retryable=True
        )
    return response


async def _attempt(
    model: Model, request: ModelRequest, agent: Agent, env: CallEnv, shown: list[bool], key: str
) -> ModelResponse:
    """One try: the breaker admits it, the stream runs, the outcome is recorded."""
    policy = agent.breaker
    admission = env.breakers.admit_now(key, policy) or await env.breakers.admit(key, policy)
    if not admission.allowed:
        raise CircuitOpen(
            f"{model.name} is failing repeatedly; calls to it are paused",
            key=key,
            retry_at=admission.retry_at,
        )
    try:
        response = await _stream_once(model, request, agent, env, shown)
    except (ProviderError, TimeoutError, ConnectionError) as exc:
        healthy = not agent.retry.is_transient(exc)  # a 4xx: the provider did answer
        await _record(env, key, agent, ok=healthy, trial=admission.trial)
        raise
    await _record(env, key, agent, ok=True, trial=admission.trial)
    return response


async def _call_one(
    model: Model, request: ModelRequest, agent: Agent, env: CallEnv, shown: list[bool]
) -> ModelResponse:
    key = f"model:{model.name}"
    try:
        return await _attempt(model, request, agent, env, shown, key)
    except Exception as exc:
        # Only a failed first try pays for the retry machinery (closures, tenacity).
        return await _retries(exc, model, request, agent, env, shown, key)


async def _retries(
    first: Exception,
    model: Model,
    request: ModelRequest,
    agent: Agent,
    env: CallEnv,
    shown: list[bool],
    key: str,
) -> ModelResponse:
    def on_retry(info: RetryInfo) -> None:
        log.warning(
            "%s: attempt %d failed (%s); retrying in %.2f s",
            model.name,
            info.attempt,
            info.reason,
            info.delay,
        )
        env.emit(
            EventType.MODEL_RETRY,
            {
                "model": model.name,
                "attempt": info.attempt,
                "reason": info.reason,
                "delay": round(info.delay, 3),
                "error": str(info.error)[:300],
            },
        )

    async def again() -> ModelResponse:  # a coroutine function, as tenacity requires
        return await _attempt(model, request, agent, env, shown, key)

    return await retry_after(
        first,
        again,
        agent.retry,
        sleep=env.sleep,
        rng=env.rng,
        on_retry=on_retry,
        can_retry=lambda _exc: not shown[0],
    )


async def _record(env: CallEnv, key: str, agent: Agent, *, ok: bool, trial: bool) -> None:
    await record_outcome(env.breakers, key, agent.breaker, env.emit, ok=ok, trial=trial)


def _may_downgrade(agent: Agent, request: ModelRequest) -> bool:
    if not agent.may_downgrade:
        return False
    # A critical call the model asked for in its last message is still pending.
    critical = {t.name for t in agent.tools if t.risk.critical}
    last = request.messages[-1] if request.messages else None
    return not (
        last and last.role == "assistant" and any(c.name in critical for c in last.tool_calls)
    )


async def call_model_chain(
    models: Sequence[Model], request: ModelRequest, agent: Agent, env: CallEnv
) -> ChainAnswer:
    """Ask the chain for one answer; raise :class:`ModelUnavailable` if none can give it."""
    reasons: list[str] = []
    for index, model in enumerate(models):
        if index > 0:
            if not _may_downgrade(agent, request):
                raise ModelUnavailable(
                    f"{models[0].name} is unavailable right now ({reasons[-1]}). This "
                    "conversation can lead to an action that must not be decided by a backup "
                    "model, so nothing was done; please try again in a few minutes.",
                    reasons=tuple(reasons),
                    fallback_blocked=True,
                )
            env.emit(
                EventType.MODEL_FALLBACK,
                {"from": models[index - 1].name, "to": model.name, "reason": reasons[-1]},
            )
            log.warning("falling back from %s to %s", models[index - 1].name, model.name)
        shown = [False]
        if id(model) not in env.prepared:
            await env.prepare(model)
        started = time.perf_counter()
        try:
            response = await _call_one(model, request, agent, env, shown)
        except CircuitOpen as exc:
            wait = "" if exc.retry_at is None else f", next try in {_secs(exc.retry_at, env)}"
            reasons.append(f"{model.name}: paused after repeated failures{wait}")
            continue
        except (ProviderError, TimeoutError, ConnectionError) as exc:
            if shown[0]:
                raise ModelUnavailable(
                    f"{model.name} stopped in the middle of its answer ({describe(exc)}); the "
                    "part already shown may be incomplete. Nothing was retried, so that no "
                    "answer is shown twice: send your message again.",
                    reasons=(f"{model.name}: {exc}",),
                ) from exc
            if not agent.retry.is_transient(exc):
                raise  # a request the provider refused: another model will not fix it
            tries = agent.retry.max_retries
            reasons.append(f"{model.name}: {_said(model, exc)} ({describe(exc)}, {tries} retries)")
            continue
        latency = round((time.perf_counter() - started) * 1000, 3)
        return ChainAnswer(response, model, index, latency)
    raise ModelUnavailable(
        "The assistant is unavailable right now ("
        + "; ".join(reasons)
        + "). Nothing was done; please try again in a few minutes.",
        reasons=tuple(reasons),
    )


def _said(model: Model, exc: BaseException) -> str:
    """The error's message without the model name that providers already put first."""
    text = str(exc)
    if text.startswith(model.name):
        text = text[len(model.name) :].lstrip(" :")
    return text or type(exc).__name__


def _secs(at: float, env: CallEnv) -> str:
    return f"{max(0.0, at - env.breakers.clock()):.0f} s"
