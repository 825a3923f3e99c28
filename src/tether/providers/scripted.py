"""A scripted model: plays back a list (or function) of responses.

It is the model of Tether's own tests and is public API for users' tests::

    model = ScriptedModel([
        call("get_order_details", order_id="#W1"),   # a tool call
        "Your order has shipped.",                   # a final answer
    ])

Each entry answers one model call, in order. An entry may be a string (an
answer), a :class:`ToolCall` or a list of them (a tool-calling response), a
:class:`Message`, a :class:`ModelResponse`, an exception (raised, to
simulate a provider failure), or a callable taking the
:class:`ModelRequest` and returning any of those. A call beyond the script
raises :class:`ScriptExhausted`: an agent that calls its model once too
often fails the test instead of passing silently.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeAlias

from tether.exceptions import ScriptExhausted
from tether.spec.messages import Message, ToolCall, Usage
from tether.spec.model import ModelRequest, ModelResponse, ModelStreamEvent, TextDelta

__all__ = ["FunctionModel", "ScriptedModel", "ScriptedResponse", "call"]

ScriptedResponse: TypeAlias = (
    str | ToolCall | Sequence[ToolCall] | Message | ModelResponse | BaseException
)
ScriptEntry: TypeAlias = ScriptedResponse | Callable[[ModelRequest], ScriptedResponse]

_ids = itertools.count(1)


def call(name: str, /, _id: str | None = None, **arguments: Any) -> ToolCall:
    """A tool call for a script: ``call("get_order", order_id="#W1")``."""
    return ToolCall(id=_id or f"call_{next(_ids)}", name=name, arguments=arguments)


def _estimate_tokens(request: ModelRequest) -> int:
    chars = len(request.system) + sum(len(m.text) for m in request.messages)
    for m in request.messages:
        for r in m.results:
            chars += len(r.content)
    return max(1, chars // 4)


def _to_response(entry: ScriptedResponse, request: ModelRequest, name: str) -> ModelResponse:
    if isinstance(entry, BaseException):
        raise entry
    if isinstance(entry, ModelResponse):
        return entry
    if isinstance(entry, Message):
        message = entry
    elif isinstance(entry, str):
        message = Message(role="assistant", text=entry)
    elif isinstance(entry, ToolCall):
        message = Message(role="assistant", tool_calls=(entry,))
    else:
        calls = tuple(entry)
        if not all(isinstance(c, ToolCall) for c in calls):
            raise TypeError(f"scripted response {entry!r} is not a supported type")
        message = Message(role="assistant", tool_calls=calls)
    if message.model is None:
        message = Message(
            role="assistant",
            text=message.text,
            tool_calls=message.tool_calls,
            model=name,
        )
    usage = Usage(
        input_tokens=_estimate_tokens(request),
        output_tokens=max(1, len(message.text) // 4) + 8 * len(message.tool_calls),
    )
    return ModelResponse(
        message=message,
        usage=usage,
        model=name,
        stop_reason="tool_use" if message.tool_calls else "end",
    )


class FunctionModel:
    """A model whose every answer comes from ``fn(request)``.

    ``delay`` (seconds) is awaited before answering, to simulate latency;
    ``chunk`` splits text answers into deltas of that many characters
    (0 streams the whole text as one delta).

    Every request is kept in :attr:`requests` for a test to inspect; pass
    ``record=False`` for long runs (load tests, benchmarks, large eval
    suites), where keeping them all would grow memory without bound.
    """

    def __init__(
        self,
        fn: Callable[[ModelRequest], ScriptedResponse],
        *,
        name: str = "function",
        delay: float = 0.0,
        chunk: int = 0,
        record: bool = True,
    ) -> None:
        self._fn = fn
        self._name = name
        self.delay = delay
        self.chunk = chunk
        self.record = record
        self.requests: list[ModelRequest] = []

    @property
    def name(self) -> str:
        return self._name

    def _next(self, request: ModelRequest) -> ScriptedResponse:
        return self._fn(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        if self.record:
            self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        response = _to_response(self._next(request), request, self._name)
        text = response.message.text
        if text:
            if self.chunk > 0:
                for i in range(0, len(text), self.chunk):
                    yield TextDelta(text[i : i + self.chunk])
            else:
                yield TextDelta(text)
        yield response


class ScriptedModel(FunctionModel):
    """Plays ``responses`` in order; fails on a call beyond the script."""

    def __init__(
        self,
        responses: Iterable[ScriptEntry],
        *,
        name: str = "scripted",
        delay: float = 0.0,
        chunk: int = 0,
        record: bool = True,
    ) -> None:
        self._script: list[ScriptEntry] = list(responses)
        self._pos = 0
        super().__init__(self._play, name=name, delay=delay, chunk=chunk, record=record)

    def _play(self, request: ModelRequest) -> ScriptedResponse:
        if self._pos >= len(self._script):
            last = request.messages[-1].text[:80] if request.messages else ""
            raise ScriptExhausted(
                f"scripted model {self.name!r} was called {self._pos + 1} times but has "
                f"only {len(self._script)} scripted responses (last message: {last!r}); "
                "add a response or find why the agent called its model again"
            )
        entry = self._script[self._pos]
        self._pos += 1
        if callable(entry) and not isinstance(entry, BaseException):
            return entry(request)
        return entry

    @property
    def remaining(self) -> int:
        """Scripted responses not yet played."""
        return len(self._script) - self._pos

    def assert_all_used(self) -> None:
        """Fail if some scripted responses were never requested."""
        if self.remaining:
            raise AssertionError(
                f"scripted model {self.name!r}: {self.remaining} of "
                f"{len(self._script)} responses were never used"
            )
