"""Fault injection: wrap a model or a tool so that chosen calls fail.

:class:`FaultyModel` wraps any :class:`~tether.spec.model.Model`;
:func:`faulty_tool` wraps a :class:`~tether.spec.tools.Tool`. Faults come
first from an explicit list, one entry per call (``None`` lets the call
through), then, once the list is used up, at random with probability
``rate`` from a seeded generator, so a run is repeatable::

    model = FaultyModel(ScriptedModel(["hi"]), [Fault.rate_limited(retry_after=2), None])
    lookup = faulty_tool(get_order, ["hang", None]).tool   # first call hangs

A fault may be given as its kind string (``"503"``) or as a :class:`Fault` /
:class:`ToolFault` when it takes options.
"""

from __future__ import annotations

import asyncio
import random
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from tether.exceptions import ModelTimeout, ProviderError, Retry, ToolFailed
from tether.spec.model import Model, ModelRequest, ModelResponse, ModelStreamEvent, TextDelta
from tether.spec.tools import Tool
from tether.testing.clock import FakeClock

__all__ = [
    "MODEL_FAULT_KINDS",
    "TOOL_FAULT_KINDS",
    "Fault",
    "FaultyModel",
    "FaultyTool",
    "ToolFault",
    "faulty_tool",
]

# kind -> (HTTP status, retryable, what it means)
_STATUS: dict[str, tuple[int, bool, str]] = {
    "429": (429, True, "rate limited"),
    "500": (500, True, "internal server error"),
    "502": (502, True, "bad gateway"),
    "503": (503, True, "service unavailable"),
    "529": (529, True, "overloaded"),
    "400": (400, False, "bad request"),
    "401": (401, False, "unauthorized"),
}
MODEL_FAULT_KINDS = (
    *_STATUS,
    "connect_timeout",
    "read_timeout",
    "reset",
    "stream_cut",
    "stall",
)
TOOL_FAULT_KINDS = ("raise", "fail", "retry", "hang", "slow")

_F = TypeVar("_F")


def _check_kind(kind: str, allowed: tuple[str, ...], what: str) -> None:
    if kind not in allowed:
        raise ValueError(f"unknown {what} fault kind {kind!r}; use one of {', '.join(allowed)}")


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected model failure: ``kind`` is one of :data:`MODEL_FAULT_KINDS`.

    ``retry_after`` (seconds) is sent with a ``"429"``; ``after_deltas`` is how
    many text deltas a ``"stream_cut"`` lets through before the cut; a
    ``"stall"`` starts the stream (one empty event, as a provider's
    ``message_start``) and then waits ``stall_for`` seconds (really: it tests
    the runtime's total deadline) before the inner model answers.
    """

    kind: str
    retry_after: float | None = None
    after_deltas: int = 1
    stall_for: float = 3600.0

    def __post_init__(self) -> None:
        _check_kind(self.kind, MODEL_FAULT_KINDS, "model")
        if self.after_deltas < 0:
            raise ValueError(f"after_deltas must be >= 0, got {self.after_deltas}")

    @classmethod
    def rate_limited(cls, retry_after: float | None = None) -> Fault:
        """HTTP 429, retryable, optionally asking to wait ``retry_after`` seconds."""
        return cls("429", retry_after=retry_after)

    @classmethod
    def server_error(cls) -> Fault:
        """HTTP 500, retryable."""
        return cls("500")

    @classmethod
    def bad_gateway(cls) -> Fault:
        """HTTP 502, retryable."""
        return cls("502")

    @classmethod
    def unavailable(cls) -> Fault:
        """HTTP 503, retryable."""
        return cls("503")

    @classmethod
    def overloaded(cls) -> Fault:
        """HTTP 529 (provider overloaded), retryable."""
        return cls("529")

    @classmethod
    def bad_request(cls) -> Fault:
        """HTTP 400, not retryable."""
        return cls("400")

    @classmethod
    def unauthorized(cls) -> Fault:
        """HTTP 401, not retryable."""
        return cls("401")

    @classmethod
    def connect_timeout(cls) -> Fault:
        """A :class:`ModelTimeout` while connecting (retryable)."""
        return cls("connect_timeout")

    @classmethod
    def read_timeout(cls) -> Fault:
        """A :class:`ModelTimeout` while waiting for data (retryable)."""
        return cls("read_timeout")

    @classmethod
    def reset(cls) -> Fault:
        """Connection reset by peer: retryable, no status."""
        return cls("reset")

    @classmethod
    def stalled(cls, seconds: float = 3600.0) -> Fault:
        """Start the stream, then go silent for ``seconds`` before answering."""
        return cls("stall", stall_for=seconds)

    @classmethod
    def stream_cut(cls, after_deltas: int = 1) -> Fault:
        """Let ``after_deltas`` text deltas through, then fail (retryable)."""
        return cls("stream_cut", after_deltas=after_deltas)


@dataclass(frozen=True, slots=True)
class ToolFault:
    """One injected tool failure: ``kind`` is one of :data:`TOOL_FAULT_KINDS`.

    ``delay`` (seconds) overrides the wrapper's delay for a ``"slow"`` call.
    """

    kind: str
    delay: float | None = None

    def __post_init__(self) -> None:
        _check_kind(self.kind, TOOL_FAULT_KINDS, "tool")


class _Plan(Generic[_F]):
    """Which fault the next call gets: the list first, then seeded chance."""

    def __init__(
        self,
        entries: Sequence[_F | str | None],
        make: Callable[[str], _F],
        rate: float,
        kinds: Sequence[str],
        seed: int,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {rate}")
        if rate > 0 and not kinds:
            raise ValueError("rate > 0 needs at least one fault kind to draw from")
        self._entries = [make(e) if isinstance(e, str) else e for e in entries]
        self._kinds = [make(k) for k in kinds]
        self._rate = rate
        self._rng = random.Random(seed)
        self._pos = 0

    def next(self) -> _F | None:
        if self._pos < len(self._entries):
            self._pos += 1
            return self._entries[self._pos - 1]
        if self._rate > 0 and self._rng.random() < self._rate:
            return self._rng.choice(self._kinds)
        return None


async def _aclose(it: AsyncIterator[Any]) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()


class FaultyModel:
    """A model that fails on chosen calls and otherwise defers to ``inner``.

    Each :meth:`stream` call takes the next entry of ``faults`` (``None``
    passes the call through); after the list, with ``rate > 0``, a
    ``random.Random(seed)`` injects a fault of a kind drawn from ``kinds``.
    ``name`` defaults to the inner model's, so breakers and fallback see the
    same model. Errors carry ``model=name`` and ``provider=""``. Counters:
    :attr:`calls`, :attr:`passed` and :attr:`injected` (kinds, in order).
    """

    def __init__(
        self,
        inner: Model,
        faults: Sequence[Fault | str | None] = (),
        *,
        rate: float = 0.0,
        kinds: Sequence[str] = ("503",),
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        self.inner = inner
        self._name = inner.name if name is None else name
        self._plan = _Plan(faults, Fault, rate, kinds, seed)
        self.calls = 0
        self.passed = 0
        self.injected: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream from the inner model, or fail as this call's fault says."""
        self.calls += 1
        fault = self._plan.next()
        if fault is None:
            self.passed += 1
            return self._pass(request)
        self.injected.append(fault.kind)
        if fault.kind == "stream_cut":
            return self._cut(request, fault.after_deltas)
        if fault.kind == "stall":
            return self._stall(request, fault.stall_for)
        return self._fail(self._error(fault))

    async def _stall(
        self, request: ModelRequest, seconds: float
    ) -> AsyncIterator[ModelStreamEvent]:
        yield TextDelta("")
        await asyncio.sleep(seconds)
        async for ev in self._pass(request):
            yield ev

    def _error(self, fault: Fault) -> ProviderError:
        where = f"{self._name}: injected"
        if fault.kind in _STATUS:
            status, retryable, what = _STATUS[fault.kind]
            return ProviderError(
                f"{where} HTTP {status} ({what})",
                model=self._name,
                status=status,
                retryable=retryable,
                retry_after=fault.retry_after,
            )
        if fault.kind.endswith("_timeout"):
            phase = "connect" if fault.kind == "connect_timeout" else "read"
            return ModelTimeout(f"{where} {phase} timeout", model=self._name)
        return ProviderError(f"{where} connection reset by peer", model=self._name, retryable=True)

    async def _fail(self, error: ProviderError) -> AsyncIterator[ModelStreamEvent]:
        raise error
        yield  # pragma: no cover - makes this an async generator

    async def _pass(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        it = self.inner.stream(request)
        try:
            async for event in it:
                yield event
        finally:
            await _aclose(it)

    async def _cut(self, request: ModelRequest, after: int) -> AsyncIterator[ModelStreamEvent]:
        it = self.inner.stream(request)
        sent = 0
        try:
            async for event in it:
                if isinstance(event, ModelResponse) or sent >= after:
                    break
                if isinstance(event, TextDelta):
                    sent += 1
                yield event
        finally:
            await _aclose(it)
        raise ProviderError(
            f"{self._name}: injected stream cut after {sent} text delta(s)",
            model=self._name,
            retryable=True,
        )


class FaultyTool:
    """Counters and the wrapped :class:`Tool` (:attr:`tool`) of :func:`faulty_tool`.

    The wrapped tool keeps the original's name, schema, risk flags,
    ``idempotent`` and ``timeout``; only its function changes.
    """

    def __init__(
        self,
        tool: Tool,
        faults: Sequence[ToolFault | str | None] = (),
        *,
        rate: float = 0.0,
        kind: str = "raise",
        seed: int = 0,
        delay: float = 1.0,
        clock: FakeClock | None = None,
    ) -> None:
        self.original = tool
        self.delay = delay
        self.clock = clock
        self._plan = _Plan(faults, ToolFault, rate, (kind,), seed)
        self.calls = 0
        self.passed = 0
        self.injected: list[str] = []
        self.tool = replace(tool, fn=self._run, is_async=True)

    async def _call_original(self, kwargs: dict[str, Any]) -> Any:
        fn = self.original.fn
        if self.original.is_async:
            return await typing.cast(Callable[..., Awaitable[Any]], fn)(**kwargs)
        return await asyncio.to_thread(fn, **kwargs)

    async def _run(self, **kwargs: Any) -> Any:
        self.calls += 1
        fault = self._plan.next()
        if fault is None:
            self.passed += 1
            return await self._call_original(kwargs)
        self.injected.append(fault.kind)
        if fault.kind == "raise":
            raise RuntimeError("injected failure")
        if fault.kind == "fail":
            raise ToolFailed("injected: the service refused")
        if fault.kind == "retry":
            raise Retry("injected: try again")
        if fault.kind == "hang":
            await asyncio.Event().wait()  # never set: only a timeout ends it
        delay = self.delay if fault.delay is None else fault.delay
        await (self.clock.sleep(delay) if self.clock is not None else asyncio.sleep(delay))
        return await self._call_original(kwargs)


def faulty_tool(
    tool: Tool,
    faults: Sequence[ToolFault | str | None] = (),
    *,
    rate: float = 0.0,
    kind: str = "raise",
    seed: int = 0,
    delay: float = 1.0,
    clock: FakeClock | None = None,
) -> FaultyTool:
    """Wrap ``tool`` so that chosen calls fail; use the result's ``.tool``.

    Each call takes the next entry of ``faults`` (``None`` runs the real
    tool); after the list, with ``rate > 0``, a ``random.Random(seed)``
    injects ``kind`` (``rate`` with ``"raise"`` makes a flaky tool). Kinds:
    ``"raise"`` (RuntimeError), ``"fail"`` (:class:`ToolFailed`), ``"retry"``
    (:class:`Retry`), ``"hang"`` (never returns; the tool timeout must end
    it) and ``"slow"`` (sleeps ``delay`` seconds, on ``clock`` if given, then
    runs the real tool).
    """
    return FaultyTool(tool, faults, rate=rate, kind=kind, seed=seed, delay=delay, clock=clock)
