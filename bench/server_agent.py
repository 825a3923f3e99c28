"""The agent ``bench/server.py`` serves: a plain question, a model with a fixed latency.

:class:`FixedLatencyModel` is a :class:`~tether.testing.FunctionModel` that
waits ``first`` seconds, then streams its answer in ``deltas`` pieces with
``gap`` seconds between them, then returns the whole response: a hosted
model's shape (time to first token, then a steady stream) with none of its
variance. The agent has no tools, so a turn is one model call.

Two ways to pace the deltas: by default each waits ``gap`` after the last
was handed on, so a late wake-up of a busy event loop delays every later
delta (the burst mode of ``bench/server.py`` uses this); ``paced`` puts
delta ``i`` at ``first + i * gap`` from the call's start, as a hosted model's
tokens arrive on the network whatever our loop is doing: a late wake-up
delays that delta only (the steady mode uses this).

The same values reach the server (``TETHER_BENCH_FIRST_MS``,
``TETHER_BENCH_GAP_MS``, ``TETHER_BENCH_DELTAS``, ``TETHER_BENCH_PACED``: ``1``
or not set, read when this module is
imported: ``tether serve bench.server_agent:plain``) and the in-process
baseline (:func:`plain_agent`), so the two run the same model.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from tether import Agent
from tether.spec.model import ModelRequest, ModelStreamEvent, TextDelta
from tether.testing import FunctionModel

__all__ = ["ANSWER", "QUESTION", "FixedLatencyModel", "plain", "plain_agent"]

QUESTION = "What are your opening hours on Saturdays?"
ANSWER = "We are open on Saturdays from nine in the morning until six in the evening."


class FixedLatencyModel(FunctionModel):
    """``first`` s before the first delta, ``deltas`` deltas ``gap`` s apart, then the response."""

    def __init__(
        self,
        *,
        first: float,
        gap: float,
        deltas: int,
        paced: bool = False,
        name: str = "bench-fixed",
    ) -> None:
        super().__init__(lambda _request: ANSWER, name=name, record=False)
        self.first = first
        self.gap = gap
        self.deltas = max(1, deltas)
        self.paced = paced

    @property
    def intrinsic_ttft(self) -> float:
        return self.first

    @property
    def intrinsic_total(self) -> float:
        return self.first + self.gap * (self.deltas - 1)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        response = None
        async for ev in super().stream(request):  # the whole answer (chunk=0): one delta
            if not isinstance(ev, TextDelta):
                response = ev
        assert response is not None
        for i, piece in enumerate(pieces(ANSWER, self.deltas)):
            if self.paced:
                await asyncio.sleep(max(0.0, start + self.first + i * self.gap - loop.time()))
            else:
                await asyncio.sleep(self.gap if i else self.first)
            yield TextDelta(piece)
        yield response


def pieces(text: str, n: int) -> list[str]:
    """``text`` in ``n`` pieces as even as can be (none empty while ``n <= len(text)``)."""
    size, extra = divmod(len(text), n)
    out, at = [], 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append(text[at : at + step])
        at += step
    return out


def plain_agent(*, first: float, gap: float, deltas: int, paced: bool = False) -> Agent:
    """The served agent: no tools, one model call per turn, defaults otherwise."""
    return Agent(
        name="plain",
        instructions="You answer questions about the shop in one sentence.",
        models=(FixedLatencyModel(first=first, gap=gap, deltas=deltas, paced=paced),),
        description="bench/server.py: a fixed-latency scripted model, no tools",
    )


def _env_ms(name: str, default: float) -> float:
    return float(os.environ.get(name) or default) / 1000.0


plain = plain_agent(
    first=_env_ms("TETHER_BENCH_FIRST_MS", 200),
    gap=_env_ms("TETHER_BENCH_GAP_MS", 25),
    deltas=int(os.environ.get("TETHER_BENCH_DELTAS") or 4),
    paced=os.environ.get("TETHER_BENCH_PACED") == "1",
)
