"""The awaited client, :class:`AsyncClient`: its endpoints and its I/O (``httpx.AsyncClient``).

Each method builds its request with :class:`~tether.surfaces.client._routes.Routes`;
what an answer means, and when to try again, is decided by
:class:`~tether.surfaces.client._retry.Call` and
:class:`~tether.surfaces.client._follow.Follow`, shared with :class:`Client`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from httpx_sse import EventSource
from pydantic import BaseModel

from tether.spec.policy import RetryPolicy
from tether.surfaces.client._follow import Follow, Until
from tether.surfaces.client._items import StreamEvent
from tether.surfaces.client._retry import TRANSIENT, Broken, Call, Retries, Wait
from tether.surfaces.client._routes import Op, Routes
from tether.surfaces.client._settings import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    settings,
    stream_timeout,
)
from tether.surfaces.server.models import (
    AgentsOut,
    ApprovalOut,
    ApprovalsOut,
    EventsOut,
    HealthOut,
    ReadyOut,
    SessionOut,
    SessionsOut,
    TurnOut,
)

__all__ = ["AsyncClient"]

M = TypeVar("M", bound=BaseModel)


class AsyncClient:
    """The Tether server's API, awaited. ``async with AsyncClient(url) as c: ...``

    ``base_url`` defaults to ``$TETHER_SERVER`` (else ``http://127.0.0.1:8000``),
    ``api_key`` to ``$TETHER_API_KEY`` (``""``: send none). ``transport`` replaces
    httpx's (``httpx.MockTransport`` in tests); ``retry``, ``sleep`` and ``rng``
    set how failures are retried (see :mod:`tether.surfaces.client`).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(transport=transport, **settings(base_url, api_key, timeout))
        self._retry = retry
        self._sleep = sleep
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"AsyncClient({str(self._http.base_url)!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # the endpoints (the same on Client) ------------------------------------------

    async def health(self) -> HealthOut:
        return await self._call(Routes.health())

    async def ready(self) -> ReadyOut:
        """The readiness checks; ``status`` is ``not_ready`` (no error) when one fails."""
        return await self._call(Routes.ready())

    async def agents(self) -> AgentsOut:
        return await self._call(Routes.agents())

    async def create_session(
        self,
        agent: str,
        *,
        context: dict[str, Any] | None = None,
        version: str | None = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> SessionOut:
        op = Routes.create_session(agent, context, version, session_id, idempotency_key)
        return await self._call(op)

    async def get_session(self, session_id: str) -> SessionOut:
        return await self._call(Routes.get_session(session_id))

    async def list_sessions(
        self,
        *,
        status: str | None = None,
        agent: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionsOut:
        """One page of sessions, newest first; pass ``next_cursor`` as ``cursor`` for the next."""
        return await self._call(Routes.list_sessions(status, agent, limit, cursor))

    async def send(
        self,
        session_id: str,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> TurnOut:
        """Run a turn and return how it ended."""
        return await self._call(Routes.send(session_id, message, context, idempotency_key))

    def stream(
        self,
        session_id: str,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Run a turn, yielding its events as they happen, then its ``TURN`` outcome."""
        return self._stream(Routes.send(session_id, message, context, idempotency_key))

    async def answer(
        self, session_id: str, text: str, *, idempotency_key: str | None = None
    ) -> TurnOut:
        """Answer the question the agent asked (the session is ``awaiting_user``)."""
        return await self._call(Routes.answer(session_id, text, idempotency_key))

    def stream_answer(
        self, session_id: str, text: str, *, idempotency_key: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        return self._stream(Routes.answer(session_id, text, idempotency_key))

    async def resume(self, session_id: str, *, idempotency_key: str | None = None) -> TurnOut:
        """Continue a turn that was interrupted, from its last committed step."""
        return await self._call(Routes.resume(session_id, idempotency_key))

    def stream_resume(
        self, session_id: str, *, idempotency_key: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        return self._stream(Routes.resume(session_id, idempotency_key))

    async def events(self, session_id: str, *, after: int = 0, limit: int = 100) -> EventsOut:
        """Stored events with ``seq > after``; ``next_after`` reads the next page."""
        return await self._call(Routes.events(session_id, after, limit))

    def stream_events(
        self, session_id: str, *, after: int = 0, until: Until = "rest"
    ) -> AsyncIterator[StreamEvent]:
        """The session's events after ``after``, live; with ``until="rest"`` it ends
        (``END``) once the session is at rest and everything was sent."""
        return self._stream(Routes.events_stream(session_id, after, until), after, until)

    async def approvals(self, *, limit: int = 50) -> ApprovalsOut:
        """Pending approvals this key may see (its own sessions; a tenant's for approvers)."""
        return await self._call(Routes.approvals(limit))

    async def get_approval(self, approval_id: str) -> ApprovalOut:
        return await self._call(Routes.get_approval(approval_id))

    async def decide(
        self,
        approval_id: str,
        approve: bool,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> TurnOut:
        """Approve or deny; returns how the turn it continues ended."""
        return await self._call(Routes.decide(approval_id, approve, reason, idempotency_key))

    def stream_decide(
        self,
        approval_id: str,
        approve: bool,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        return self._stream(Routes.decide(approval_id, approve, reason, idempotency_key))

    # I/O ------------------------------------------------------------------------

    def _retries(self) -> Retries:
        return Retries(self._retry, self._rng, self._http.base_url)

    async def _call(self, op: Op[M]) -> M:
        call = Call(op, self._retries())
        while True:
            try:
                answer: httpx.Response | Exception = await self._http.request(**op.http())
            except TRANSIENT as exc:
                answer = exc
            outcome = call.settle(answer)
            if not isinstance(outcome, Wait):
                return outcome
            await self._sleep(outcome.seconds)

    async def _stream(
        self, op: Op[Any], after: int | None = None, until: Until = "rest"
    ) -> AsyncIterator[StreamEvent]:
        follow = Follow(op, self._retries(), after=after, until=until)
        timeout = stream_timeout(self._http)
        while True:
            try:
                async with self._http.stream(**follow.request(), timeout=timeout) as response:
                    if follow.is_events(response):
                        async for sse in EventSource(response).aiter_sse():
                            item = follow.accept(sse)
                            if item is not None:
                                yield item
                            if follow.done:
                                return
                        failure: Exception = follow.ended_early()
                    else:
                        await response.aread()
                        got = follow.accept_body(response)
                        if isinstance(got, StreamEvent):
                            yield got
                            return
                        failure = got
            except (*TRANSIENT, Broken) as exc:
                failure = exc
            await self._sleep(follow.after_break(failure))
