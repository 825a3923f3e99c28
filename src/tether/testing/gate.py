"""A model that holds its answer until the test opens a gate.

Use it to test what happens *while* a model call is in progress: a second
turn on the same session, a concurrent-session limit, cancellation, a
timeout in the middle of a stream::

    model = GatedModel(ScriptedModel(["done"]))
    task = asyncio.create_task(rt.run(agent.with_models([model]), "hi"))
    await model.entered.wait()      # the turn is now inside its model call
    ...                             # assert on the state meanwhile
    model.gate.set()                # let it answer
    result = await task

A gate that is never opened holds the call until something cancels it (a
``Limits(model_timeout=...)`` or the test).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from tether.spec.model import Model, ModelRequest, ModelStreamEvent, TextDelta

__all__ = ["GatedModel"]


class GatedModel:
    """Wraps ``inner`` so that its calls wait for :attr:`gate` before answering.

    - ``gate``: the :class:`asyncio.Event` calls wait on; default: a new one
      (pass one to hold several models with one event). Once set, waiting
      calls go on, and so do later ones until it is cleared.
    - ``when``: which calls wait, a predicate on the
      :class:`~tether.spec.model.ModelRequest` (e.g. ``lambda r:
      r.messages[-1].text == "slow"``); default: every call. Other calls go
      straight to ``inner``.
    - ``after_deltas``: how many text deltas of ``inner``'s stream a held
      call lets through before it waits (0: it waits before the first event;
      an answer with fewer deltas waits before its final response).

    :attr:`entered` is set when a held call reaches the gate, open or not;
    :attr:`waiting` is how many calls are waiting now and :attr:`held` how
    many have reached the gate in all. ``name`` is ``inner``'s.
    """

    def __init__(
        self,
        inner: Model,
        *,
        gate: asyncio.Event | None = None,
        when: Callable[[ModelRequest], bool] | None = None,
        after_deltas: int = 0,
    ) -> None:
        if after_deltas < 0:
            raise ValueError(f"after_deltas must be >= 0, got {after_deltas}")
        self.inner = inner
        self.gate = gate if gate is not None else asyncio.Event()
        self.entered = asyncio.Event()
        self.when = when
        self.after_deltas = after_deltas
        self.waiting = 0
        self.held = 0

    @property
    def name(self) -> str:
        return self.inner.name

    async def _wait(self) -> None:
        self.held += 1
        self.waiting += 1
        self.entered.set()
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Stream from ``inner``, waiting at the gate if this call is held."""
        hold = self.when is None or self.when(request)
        if hold and self.after_deltas == 0:
            await self._wait()
            hold = False
        deltas = 0
        it = self.inner.stream(request)
        try:
            async for event in it:
                if hold and not isinstance(event, TextDelta):
                    await self._wait()  # fewer deltas than after_deltas: hold the response
                    hold = False
                yield event
                if hold:
                    deltas += 1
                    if deltas >= self.after_deltas:
                        await self._wait()
                        hold = False
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()
