"""The blocking client, :class:`Client`: :class:`~tether.surfaces.client._async.AsyncClient`'s
endpoints, not awaited, and its I/O on ``httpx.Client``.

Only the I/O is its own: requests come from
:class:`~tether.surfaces.client._routes.Routes`, and what an answer means is
decided by :class:`~tether.surfaces.client._retry.Call` and
:class:`~tether.surfaces.client._follow.Follow`, as for ``AsyncClient``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
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

__all__ = ["Client"]

M = TypeVar("M", bound=BaseModel)


class Client:
    """The Tether server's API, blocking: :class:`AsyncClient`'s methods, not awaited.

    ``with Client(url) as c: ...``; streams are plain iterators.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._http = httpx.Client(transport=transport, **settings(base_url, api_key, timeout))
        self._retry = retry
        self._sleep = sleep
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"Client({str(self._http.base_url)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # the endpoints (the same on AsyncClient, where they are documented) ------------

    def health(self) -> HealthOut:
        return self._call(Routes.health())

    def ready(self) -> ReadyOut:
        return self._call(Routes.ready())

    def agents(self) -> AgentsOut:
        return self._call(Routes.agents())

    def create_session(
        self,
        agent: str,
        *,
        context: dict[str, Any] | None = None,
        version: str | None = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> SessionOut:
        op = Routes.create_session(agent, context, version, session_id, idempotency_key)
        return self._call(op)

    def get_session(self, session_id: str) -> SessionOut:
        return self._call(Routes.get_session(session_id))

    def list_sessions(
        self,
        *,
        status: str | None = None,
        agent: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionsOut:
        return self._call(Routes.list_sessions(status, agent, limit, cursor))

    def send(
        self,
        session_id: str,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> TurnOut:
        return self._call(Routes.send(session_id, message, context, idempotency_key))

    def stream(
        self,
        session_id: str,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Iterator[StreamEvent]:
        return self._stream(Routes.send(session_id, message, context, idempotency_key))

    def answer(self, session_id: str, text: str, *, idempotency_key: str | None = None) -> TurnOut:
        return self._call(Routes.answer(session_id, text, idempotency_key))

    def stream_answer(
        self, session_id: str, text: str, *, idempotency_key: str | None = None
    ) -> Iterator[StreamEvent]:
        return self._stream(Routes.answer(session_id, text, idempotency_key))

    def resume(self, session_id: str, *, idempotency_key: str | None = None) -> TurnOut:
        return self._call(Routes.resume(session_id, idempotency_key))

    def stream_resume(
        self, session_id: str, *, idempotency_key: str | None = None
    ) -> Iterator[StreamEvent]:
        return self._stream(Routes.resume(session_id, idempotency_key))

    def events(self, session_id: str, *, after: int = 0, limit: int = 100) -> EventsOut:
        return self._call(Routes.events(session_id, after, limit))

    def stream_events(
        self, session_id: str, *, after: int = 0, until: Until = "rest"
    ) -> Iterator[StreamEvent]:
        return self._stream(Routes.events_stream(session_id, after, until), after, until)

    def approvals(self, *, limit: int = 50) -> ApprovalsOut:
        return self._call(Routes.approvals(limit))

    def get_approval(self, approval_id: str) -> ApprovalOut:
        return self._call(Routes.get_approval(approval_id))

    def decide(
        self,
        approval_id: str,
        approve: bool,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> TurnOut:
        return self._call(Routes.decide(approval_id, approve, reason, idempotency_key))

    def stream_decide(
        self,
        approval_id: str,
        approve: bool,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Iterator[StreamEvent]:
        return self._stream(Routes.decide(approval_id, approve, reason, idempotency_key))

    # I/O (AsyncClient's, without await) ----------------------------------------------

    def _retries(self) -> Retries:
        return Retries(self._retry, self._rng, self._http.base_url)

    def _call(self, op: Op[M]) -> M:
        call = Call(op, self._retries())
        while True:
            try:
                answer: httpx.Response | Exception = self._http.request(**op.http())
            except TRANSIENT as exc:
                answer = exc
            outcome = call.settle(answer)
            if not isinstance(outcome, Wait):
                return outcome
            self._sleep(outcome.seconds)

    def _stream(
        self, op: Op[Any], after: int | None = None, until: Until = "rest"
    ) -> Iterator[StreamEvent]:
        follow = Follow(op, self._retries(), after=after, until=until)
        timeout = stream_timeout(self._http)
        while True:
            try:
                with self._http.stream(**follow.request(), timeout=timeout) as response:
                    if follow.is_events(response):
                        for sse in EventSource(response).iter_sse():
                            item = follow.accept(sse)
                            if item is not None:
                                yield item
                            if follow.done:
                                return
                        failure: Exception = follow.ended_early()
                    else:
                        response.read()
                        got = follow.accept_body(response)
                        if isinstance(got, StreamEvent):
                            yield got
                            return
                        failure = got
            except (*TRANSIENT, Broken) as exc:
                failure = exc
            self._sleep(follow.after_break(failure))
