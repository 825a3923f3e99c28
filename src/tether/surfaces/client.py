"""A client for the Tether server's HTTP API (public as :mod:`tether.client`).

:class:`AsyncClient` and :class:`Client` have the same methods, awaited or
not, and return the server's own response models
(:mod:`tether.surfaces.server.models`). What they add to plain HTTP:

- **Errors**: a non-2xx answer raises :class:`ServerError`, carrying the
  status, the problem document and ``Retry-After``; its message is the
  problem's title and detail. A server that cannot be reached, after the
  retries, raises :class:`ServerUnreachable`.
- **Idempotency**: every POST carries an ``Idempotency-Key`` (a fresh uuid4
  unless the caller gives one). A POST that failed on the connection is sent
  again with the same key, so the server runs it once. A POST answered with
  an error is not retried: the server replays a key's first outcome, so a
  second try needs a new key (the default for the next call).
- **Streams** (the ``stream*`` methods) yield :class:`StreamEvent` items. If
  a stream breaks before its end frame (a dropped connection, a cut read, a
  server shutting down), it is picked up again with ``GET
  /v1/sessions/{id}/events/stream`` and ``Last-Event-ID``: stored events come
  exactly once and in ``seq`` order, none missed (a gap in ``seq`` also
  reconnects). Text deltas are live only: some may be lost across a break,
  and the ``model.response`` event that follows has the whole text. A turn
  picked up that way ends with an ``END`` item (the session's status) instead
  of ``TURN``: the turn's summary went with the connection; ``get_session``
  has the state.

Retries (a connection error; a GET answered with one of the policy's
``retry_statuses``, 429 and 5xx by default; a broken stream) follow a
:class:`~tether.spec.policy.RetryPolicy`, ``Retry-After`` honoured up to its cap.
Sleep and randomness are injected. Both clients share everything but the
I/O: :class:`_Routes` builds each request once (a retry sends that very
request again) and :class:`_Follow` keeps a stream's place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar
from urllib.parse import quote

import httpx
from httpx_sse import EventSource, ServerSentEvent
from pydantic import BaseModel, ValidationError

from tether import __version__
from tether.exceptions import InputRejected, RunError
from tether.spec.events import SessionStatus
from tether.spec.policy import RetryPolicy
from tether.surfaces.server.models import (
    AgentsOut,
    AnswerIn,
    ApprovalOut,
    ApprovalsOut,
    DecisionIn,
    EventOut,
    EventsOut,
    HealthOut,
    MessageIn,
    Problem,
    ReadyOut,
    SessionIn,
    SessionOut,
    SessionsOut,
    TurnOut,
)

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "SERVER_ENV",
    "STREAM_IDLE_TIMEOUT",
    "AsyncClient",
    "Client",
    "ServerError",
    "ServerUnreachable",
    "StreamEnd",
    "StreamEvent",
    "StreamKind",
]

log = logging.getLogger("tether.client")

#: where the API key comes from when none is given
API_KEY_ENV = "TETHER_API_KEY"
#: where the server's URL comes from when none is given (else ``http://127.0.0.1:8000``)
SERVER_ENV = "TETHER_SERVER"
#: a turn answered as JSON may run for minutes; a stream hears a keep-alive every 15 s
DEFAULT_TIMEOUT = httpx.Timeout(30.0, read=300.0)
#: a stream silent this long (four missed keep-alives) is taken as broken and picked up again
STREAM_IDLE_TIMEOUT = 60.0
DEFAULT_RETRY = RetryPolicy(max_retries=3, initial_delay=0.5, max_delay=8.0)

_JSON = "application/json"
_SSE = "text/event-stream"
#: failures on the way that sending again may cure (not a bad URL or a refused protocol)
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_STREAM_HEADERS = {"Accept": _SSE, "Cache-Control": "no-store"}
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
#: statuses in which no turn runs: an ``end`` frame with another is a server going away
_REST = frozenset(
    {
        SessionStatus.IDLE,
        SessionStatus.AWAITING_APPROVAL,
        SessionStatus.AWAITING_USER,
        SessionStatus.COMPLETED,
        SessionStatus.FAILED,
        SessionStatus.BUDGET_EXHAUSTED,
    }
)

M = TypeVar("M", bound=BaseModel)


# --- errors --------------------------------------------------------------------------


class ServerError(RunError):
    """The server answered with an error: ``status``, its ``problem`` document, and
    ``retry_after`` (seconds, from the ``Retry-After`` header or the problem's extra).

    The message is the problem's title and detail: the server words the detail
    for a person to act on (which key, which state, what to do).
    """

    def __init__(
        self, problem: Problem, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        message = f"{problem.title}: {problem.detail}" if problem.detail else problem.title
        if retry_after is not None:
            message += f" (retry after {retry_after:g} s)"
        super().__init__(message)
        self.problem = problem
        self.status = problem.status if status is None else status
        self.retry_after = retry_after

    @property
    def slug(self) -> str:
        """The problem's kind, the last part of its type URI (``not-found``, ``rate-limited``)."""
        return self.problem.type.rstrip("/").rpartition("/")[2]


class ServerUnreachable(RunError, ConnectionError):
    """The server could not be reached, or a stream kept breaking, through every retry."""


def _problem(status: int, title: str, detail: str) -> Problem:
    return Problem(type="about:blank", title=title, status=status, detail=detail)


def _invalid(detail: str) -> ServerError:
    """An answer this client cannot read: a server of another version, or not Tether at all."""
    return ServerError(
        _problem(
            502,
            "Unexpected answer from the server",
            f"{detail}; is --server a Tether server, of a version this client knows?",
        )
    )


def _retry_after(response: httpx.Response, problem: Problem) -> float | None:
    for value in (response.headers.get("retry-after"), (problem.extra or {}).get("retry_after")):
        try:
            seconds = float(value)  # type: ignore[arg-type] # reason: None and junk raise, caught
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return None


def _error(response: httpx.Response) -> ServerError:
    """The :class:`ServerError` for a non-2xx ``response`` (its body already read)."""
    status = response.status_code
    try:
        problem = Problem.model_validate_json(response.content)
    except ValidationError:
        body = " ".join(response.text.split())[:200]
        problem = _problem(
            status,
            response.reason_phrase or f"HTTP {status}",
            f"the server answered HTTP {status} without a problem document"
            + (f": {body}" if body else ""),
        )
    return ServerError(problem, status=status, retry_after=_retry_after(response, problem))


def _read(response: httpx.Response, model: type[M]) -> M:
    """A successful ``response``'s body as ``model``."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise _invalid(f"its {model.__name__} does not parse ({_first_error(exc)})") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ())) or "body"
    more = exc.error_count() - 1
    return f"{where}: {err.get('msg', 'invalid')}" + (f" (and {more} more)" if more else "")


# --- stream items --------------------------------------------------------------------


class StreamKind(StrEnum):
    """What a :class:`StreamEvent` holds."""

    #: a stored event (``id`` is its ``seq``): each comes once, in order
    EVENT = "event"
    #: a streamed-only ``model.delta`` (``seq`` 0, ``id`` None): live text, never replayed
    DELTA = "delta"
    #: the turn's outcome (``turn``): the last item of a turn stream
    TURN = "turn"
    #: the session is at rest (``end``): the last item of an events stream, and of a
    #: turn stream picked up again after a break
    END = "end"
    #: the server reported a problem (``problem``); the stream ends with it
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How an events stream ended: the session's ``status`` and the last ``seq`` sent."""

    status: str
    last_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEvent:
    """One item of a stream; ``kind`` says which one field is set."""

    kind: StreamKind
    #: the stored event's ``seq`` (``EVENT``), else None
    id: int | None = None
    event: EventOut | None = None
    turn: TurnOut | None = None
    problem: Problem | None = None
    end: StreamEnd | None = None


# --- requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Op(Generic[M]):
    """One request, built once: a retry sends this very request (the same Idempotency-Key)."""

    method: Literal["GET", "POST"]
    path: str
    #: what a success answers (for a stream request: its JSON answer, when it gives one)
    model: type[M]
    params: dict[str, str | int] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: the session a stream follows (None: learnt from its first event)
    session_id: str | None = None
    #: non-2xx statuses whose body is still ``model`` (``/readyz``'s 503)
    ok: frozenset[int] = frozenset()

    def http(self, *, stream: bool = False) -> dict[str, Any]:
        """The keyword arguments of ``httpx.Client.request`` (or ``.stream``) for this request."""
        return {
            "method": self.method,
            "url": self.path,
            "params": self.params or None,
            "json": self.body,
            "headers": {**self.headers, **_STREAM_HEADERS} if stream else self.headers,
        }


def _seg(value: str, what: str) -> str:
    """``value`` as one path segment; an empty one would name another endpoint."""
    if not value:
        raise InputRejected(f"an empty {what}: give the id the server returned")
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if set(value) == {"."} else quoted


def _body(model: type[BaseModel], **fields: Any) -> dict[str, Any]:
    """A request body checked against the server's model before it is sent."""
    given = {k: v for k, v in fields.items() if v is not None}
    try:
        return model(**given).model_dump(mode="json", exclude_unset=True)
    except ValidationError as exc:
        raise InputRejected(f"{model.__name__}: {_first_error(exc)}; nothing was sent") from None


def _key(key: str | None) -> str:
    if key is None:
        return str(uuid.uuid4())
    if not _KEY.fullmatch(key):
        raise InputRejected("an Idempotency-Key is 1 to 255 printable ASCII characters, no spaces")
    return key


def _post(
    path: str, model: type[M], body: dict[str, Any] | None, key: str | None, sid: str | None
) -> _Op[M]:
    return _Op("POST", path, model, body=body, headers={"Idempotency-Key": _key(key)},
               session_id=sid)  # fmt: skip


class _Routes:
    """Every endpoint of the contract, as the request to send: both clients read these."""

    @staticmethod
    def health() -> _Op[HealthOut]:
        return _Op("GET", "/healthz", HealthOut)

    @staticmethod
    def ready() -> _Op[ReadyOut]:
        return _Op("GET", "/readyz", ReadyOut, ok=frozenset({503}))

    @staticmethod
    def agents() -> _Op[AgentsOut]:
        return _Op("GET", "/v1/agents", AgentsOut)

    @staticmethod
    def create_session(
        agent: str,
        context: dict[str, Any] | None,
        version: str | None,
        session_id: str | None,
        key: str | None,
    ) -> _Op[SessionOut]:
        body = _body(SessionIn, agent=agent, context=context, version=version,
                     session_id=session_id)  # fmt: skip
        return _post("/v1/sessions", SessionOut, body, key, None)

    @staticmethod
    def get_session(sid: str) -> _Op[SessionOut]:
        return _Op("GET", f"/v1/sessions/{_seg(sid, 'session id')}", SessionOut)

    @staticmethod
    def list_sessions(
        status: str | None, agent: str | None, limit: int, cursor: str | None
    ) -> _Op[SessionsOut]:
        given = {"status": status, "agent": agent, "limit": limit, "cursor": cursor}
        params = {k: v for k, v in given.items() if v is not None}
        return _Op("GET", "/v1/sessions", SessionsOut, params=params)

    @staticmethod
    def send(
        sid: str, message: str, context: dict[str, Any] | None, key: str | None
    ) -> _Op[TurnOut]:
        body = _body(MessageIn, message=message, context=context)
        return _post(f"/v1/sessions/{_seg(sid, 'session id')}/messages", TurnOut, body, key, sid)

    @staticmethod
    def answer(sid: str, text: str, key: str | None) -> _Op[TurnOut]:
        body = _body(AnswerIn, text=text)
        return _post(f"/v1/sessions/{_seg(sid, 'session id')}/answer", TurnOut, body, key, sid)

    @staticmethod
    def resume(sid: str, key: str | None) -> _Op[TurnOut]:
        return _post(f"/v1/sessions/{_seg(sid, 'session id')}/resume", TurnOut, None, key, sid)

    @staticmethod
    def events(sid: str, after: int, limit: int) -> _Op[EventsOut]:
        path = f"/v1/sessions/{_seg(sid, 'session id')}/events"
        return _Op("GET", path, EventsOut, params={"after": after, "limit": limit})

    @staticmethod
    def events_stream(sid: str, after: int, until: str, *, resume: bool = False) -> _Op[EventsOut]:
        path = f"/v1/sessions/{_seg(sid, 'session id')}/events/stream"
        headers = {"Last-Event-ID": str(after)} if resume else {}
        params: dict[str, str | int] = {"after": after, "until": until}
        return _Op("GET", path, EventsOut, params=params, headers=headers, session_id=sid)

    @staticmethod
    def approvals(limit: int) -> _Op[ApprovalsOut]:
        return _Op("GET", "/v1/approvals", ApprovalsOut, params={"limit": limit})

    @staticmethod
    def get_approval(aid: str) -> _Op[ApprovalOut]:
        return _Op("GET", f"/v1/approvals/{_seg(aid, 'approval id')}", ApprovalOut)

    @staticmethod
    def decide(aid: str, approve: bool, reason: str | None, key: str | None) -> _Op[TurnOut]:
        body = _body(DecisionIn, approve=approve, reason=reason)
        path = f"/v1/approvals/{_seg(aid, 'approval id')}/decision"
        return _post(path, TurnOut, body, key, None)


# --- retries and streams, without I/O --------------------------------------------------


class _Broken(Exception):
    """A stream that stopped short of its end although the connection did not fail."""


def _transient(op: _Op[Any], exc: Exception, policy: RetryPolicy) -> bool:
    """Whether sending ``op`` again may cure ``exc``: a connection failure (a POST keeps
    its Idempotency-Key), or a transient status on a GET (a POST's error is its outcome)."""
    if isinstance(exc, (*_TRANSIENT, _Broken)):
        return True
    return (
        isinstance(exc, ServerError) and op.method == "GET" and exc.status in policy.retry_statuses
    )


def _gave_up(base: httpx.URL, op: _Op[Any], tries: int, exc: Exception) -> Exception:
    """What to raise once retrying ``op`` is over: a status error as it came, else
    :class:`ServerUnreachable` saying what to check (and, for a POST, how to retry it)."""
    if isinstance(exc, ServerError):
        return exc
    message = (
        f"could not reach the Tether server at {base} after {tries} tries "
        f"({type(exc).__name__}: {exc or 'no detail'}): check the URL and that the server runs"
    )
    if op.method == "POST":
        message += (
            "; the request may have been applied: send it again with idempotency_key="
            f"{op.headers['Idempotency-Key']!r} to be sure it runs once"
        )
    error = ServerUnreachable(message)
    error.__cause__ = exc
    return error


class _Follow:
    """A stream's place: the last stored ``seq`` delivered and the session it belongs to,
    so that after a break it is picked up where it stopped, with nothing twice or missed.

    It starts with ``op`` (a POST that runs a turn, or an events stream). After a
    break, it asks for the events stream from the last ``seq`` seen, or, before any
    stored event came, for ``op`` again (a POST with the same Idempotency-Key: the
    server replays that turn rather than running another).
    """

    def __init__(
        self, op: _Op[Any], policy: RetryPolicy, rng: random.Random, *,
        after: int | None, until: str = "rest",
    ) -> None:  # fmt: skip
        self.op = op
        self.policy = policy
        self.rng = rng
        self.session_id = op.session_id
        self.last_seq = after
        self.until = until
        self.done = False
        self._breaks = 0

    def accept(self, sse: ServerSentEvent) -> StreamEvent | None:
        """The item for one SSE frame; None for a repeat or an empty frame."""
        if not sse.data:
            return None
        name = sse.event
        try:
            if name == "turn.end":
                self.done = True
                return StreamEvent(kind=StreamKind.TURN, turn=TurnOut.model_validate_json(sse.data))
            if name == "error":
                self.done = True
                problem = Problem.model_validate_json(sse.data)
                return StreamEvent(kind=StreamKind.ERROR, problem=problem)
            if name == "end":
                return self._end(sse.json())
            ev = EventOut.model_validate_json(sse.data)
        except (ValidationError, ValueError) as exc:
            raise _invalid(f"a {name!r} frame of the stream does not parse ({exc})") from None
        if ev.seq <= 0:  # live only: never stored, never replayed
            kind = StreamKind.DELTA if ev.type == "model.delta" else StreamKind.EVENT
            return StreamEvent(kind=kind, event=ev)
        if self.last_seq is not None:
            if ev.seq <= self.last_seq:
                return None  # sent again after a reconnect
            if ev.seq > self.last_seq + 1:
                raise _Broken(f"events {self.last_seq + 1} to {ev.seq - 1} were skipped")
        self.last_seq = ev.seq
        self.session_id = self.session_id or ev.session_id
        self._breaks = 0  # progress: the retries count again from here
        return StreamEvent(kind=StreamKind.EVENT, id=ev.seq, event=ev)

    def _end(self, data: Any) -> StreamEvent:
        status = data.get("status") if isinstance(data, dict) else None
        if self.until != "rest" or status not in _REST:
            # the server is going away (shutting down) with the session not at rest
            raise _Broken("the server ended the stream before the session came to rest")
        self.done = True
        last = data.get("last_seq")
        last_seq = last if isinstance(last, int) else (self.last_seq or 0)
        return StreamEvent(kind=StreamKind.END, end=StreamEnd(str(status), last_seq))

    def accept_body(self, response: httpx.Response) -> StreamEvent:
        """A stream request answered with JSON (a turn's replayed outcome) instead of SSE."""
        content_type = _media_type(response)
        if self.op.method != "POST" or content_type != _JSON:
            raise _invalid(f"a stream was answered with {content_type or 'no content type'}")
        self.done = True
        return StreamEvent(kind=StreamKind.TURN, turn=_read(response, TurnOut))

    def request(self) -> dict[str, Any]:
        """What to send now: the first request, or the one that picks the stream up again."""
        return self.op.http(stream=True)

    def after_break(self, exc: Exception, base: httpx.URL) -> float:
        """The wait before picking the stream up again after ``exc``; raises when it may not."""
        if not _transient(self.op, exc, self.policy):
            raise exc
        self._breaks += 1
        if self._breaks > self.policy.max_retries:
            raise _gave_up(base, self.op, self._breaks, exc)
        delay = self.policy.delay(self._breaks, exc, self.rng)
        if self.session_id is not None and self.last_seq is not None:
            self.op = _Routes.events_stream(self.session_id, self.last_seq, self.until, resume=True)
        log.info(
            "stream of session %s broke (%s: %s); again in %.1f s from seq %s",
            self.session_id or "?", type(exc).__name__, exc, delay, self.last_seq,
        )  # fmt: skip
        return delay


def _media_type(response: httpx.Response) -> str:
    return str(response.headers.get("content-type", "")).partition(";")[0].strip().lower()


def _settings(
    base_url: str | None, api_key: str | None, timeout: float | httpx.Timeout | None
) -> dict[str, Any]:
    """What both clients hand to httpx: the URL, the headers (the key), the timeout."""
    url = base_url or os.environ.get(SERVER_ENV) or "http://127.0.0.1:8000"
    if not url.startswith(("http://", "https://")):
        raise InputRejected(f"{url!r} is not a server URL: give http://HOST:PORT or https://...")
    key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
    headers = {"User-Agent": f"tether-client/{__version__}", "Accept": _JSON}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return {"base_url": url, "headers": headers, "timeout": timeout}


def _stream_timeout(client: httpx.AsyncClient | httpx.Client) -> httpx.Timeout:
    t = client.timeout
    read = STREAM_IDLE_TIMEOUT if t.read is None else min(t.read, STREAM_IDLE_TIMEOUT)
    return httpx.Timeout(connect=t.connect, read=read, write=t.write, pool=t.pool)


Until = Literal["rest", "never"]


# --- the clients -----------------------------------------------------------------------


class AsyncClient:
    """The Tether server's API, awaited. ``async with AsyncClient(url) as c: ...``

    ``base_url`` defaults to ``$TETHER_SERVER`` (else ``http://127.0.0.1:8000``),
    ``api_key`` to ``$TETHER_API_KEY`` (``""``: send none). ``transport`` replaces
    httpx's (``httpx.MockTransport`` in tests); ``retry``, ``sleep`` and ``rng``
    set how failures are retried (see the module docstring).
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
        self._http = httpx.AsyncClient(transport=transport, **_settings(base_url, api_key, timeout))
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
        return await self._call(_Routes.health())

    async def ready(self) -> ReadyOut:
        """The readiness checks; ``status`` is ``not_ready`` (no error) when one fails."""
        return await self._call(_Routes.ready())

    async def agents(self) -> AgentsOut:
        return await self._call(_Routes.agents())

    async def create_session(
        self,
        agent: str,
        *,
        context: dict[str, Any] | None = None,
        version: str | None = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> SessionOut:
        op = _Routes.create_session(agent, context, version, session_id, idempotency_key)
        return await self._call(op)

    async def get_session(self, session_id: str) -> SessionOut:
        return await self._call(_Routes.get_session(session_id))

    async def list_sessions(
        self,
        *,
        status: str | None = None,
        agent: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionsOut:
        """One page of sessions, newest first; pass ``next_cursor`` as ``cursor`` for the next."""
        return await self._call(_Routes.list_sessions(status, agent, limit, cursor))

    async def send(
        self,
        session_id: str,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> TurnOut:
        """Run a turn and return how it ended."""
        return await self._call(_Routes.send(session_id, message, context, idempotency_key))

    def stream(
        self,
        session_id: str,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Run a turn, yielding its events as they happen, then its ``TURN`` outcome."""
        return self._stream(_Routes.send(session_id, message, context, idempotency_key))

    async def answer(
        self, session_id: str, text: str, *, idempotency_key: str | None = None
    ) -> TurnOut:
        """Answer the question the agent asked (the session is ``awaiting_user``)."""
        return await self._call(_Routes.answer(session_id, text, idempotency_key))

    def stream_answer(
        self, session_id: str, text: str, *, idempotency_key: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        return self._stream(_Routes.answer(session_id, text, idempotency_key))

    async def resume(self, session_id: str, *, idempotency_key: str | None = None) -> TurnOut:
        """Continue a turn that was interrupted, from its last committed step."""
        return await self._call(_Routes.resume(session_id, idempotency_key))

    def stream_resume(
        self, session_id: str, *, idempotency_key: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        return self._stream(_Routes.resume(session_id, idempotency_key))

    async def events(self, session_id: str, *, after: int = 0, limit: int = 100) -> EventsOut:
        """Stored events with ``seq > after``; ``next_after`` reads the next page."""
        return await self._call(_Routes.events(session_id, after, limit))

    def stream_events(
        self, session_id: str, *, after: int = 0, until: Until = "rest"
    ) -> AsyncIterator[StreamEvent]:
        """The session's events after ``after``, live; with ``until="rest"`` it ends
        (``END``) once the session is at rest and everything was sent."""
        return self._stream(_Routes.events_stream(session_id, after, until), after, until)

    async def approvals(self, *, limit: int = 50) -> ApprovalsOut:
        """Pending approvals this key may see (its own sessions; a tenant's for approvers)."""
        return await self._call(_Routes.approvals(limit))

    async def get_approval(self, approval_id: str) -> ApprovalOut:
        return await self._call(_Routes.get_approval(approval_id))

    async def decide(
        self,
        approval_id: str,
        approve: bool,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> TurnOut:
        """Approve or deny; returns how the turn it continues ended."""
        return await self._call(_Routes.decide(approval_id, approve, reason, idempotency_key))

    def stream_decide(
        self,
        approval_id: str,
        approve: bool,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        return self._stream(_Routes.decide(approval_id, approve, reason, idempotency_key))

    # I/O ------------------------------------------------------------------------

    async def _call(self, op: _Op[M]) -> M:
        tries = 0
        while True:
            tries += 1
            try:
                response = await self._http.request(**op.http())
            except _TRANSIENT as exc:
                failure: Exception = exc
            else:
                if response.is_success or response.status_code in op.ok:
                    return _read(response, op.model)
                failure = _error(response)
            if not _transient(op, failure, self._retry):
                raise failure
            if tries > self._retry.max_retries:
                raise _gave_up(self._http.base_url, op, tries, failure)
            await self._sleep(self._retry.delay(tries, failure, self._rng))

    async def _stream(
        self, op: _Op[Any], after: int | None = None, until: Until = "rest"
    ) -> AsyncIterator[StreamEvent]:
        follow = _Follow(op, self._retry, self._rng, after=after, until=until)
        timeout = _stream_timeout(self._http)
        while True:
            try:
                async with self._http.stream(**follow.request(), timeout=timeout) as response:
                    if not response.is_success:
                        await response.aread()
                        failure: Exception = _error(response)
                    elif _media_type(response) != _SSE:
                        await response.aread()
                        yield follow.accept_body(response)
                        return
                    else:
                        async for sse in EventSource(response).aiter_sse():
                            item = follow.accept(sse)
                            if item is not None:
                                yield item
                            if follow.done:
                                return
                        failure = _Broken("the stream ended before its end frame")
            except (*_TRANSIENT, _Broken) as exc:
                failure = exc
            await self._sleep(follow.after_break(failure, self._http.base_url))


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
        self._http = httpx.Client(transport=transport, **_settings(base_url, api_key, timeout))
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
        return self._call(_Routes.health())

    def ready(self) -> ReadyOut:
        return self._call(_Routes.ready())

    def agents(self) -> AgentsOut:
        return self._call(_Routes.agents())

    def create_session(
        self,
        agent: str,
        *,
        context: dict[str, Any] | None = None,
        version: str | None = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> SessionOut:
        op = _Routes.create_session(agent, context, version, session_id, idempotency_key)
        return self._call(op)

    def get_session(self, session_id: str) -> SessionOut:
        return self._call(_Routes.get_session(session_id))

    def list_sessions(
        self,
        *,
        status: str | None = None,
        agent: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionsOut:
        return self._call(_Routes.list_sessions(status, agent, limit, cursor))

    def send(
        self,
        session_id: str,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> TurnOut:
        return self._call(_Routes.send(session_id, message, context, idempotency_key))

    def stream(
        self,
        session_id: str,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Iterator[StreamEvent]:
        return self._stream(_Routes.send(session_id, message, context, idempotency_key))

    def answer(self, session_id: str, text: str, *, idempotency_key: str | None = None) -> TurnOut:
        return self._call(_Routes.answer(session_id, text, idempotency_key))

    def stream_answer(
        self, session_id: str, text: str, *, idempotency_key: str | None = None
    ) -> Iterator[StreamEvent]:
        return self._stream(_Routes.answer(session_id, text, idempotency_key))

    def resume(self, session_id: str, *, idempotency_key: str | None = None) -> TurnOut:
        return self._call(_Routes.resume(session_id, idempotency_key))

    def stream_resume(
        self, session_id: str, *, idempotency_key: str | None = None
    ) -> Iterator[StreamEvent]:
        return self._stream(_Routes.resume(session_id, idempotency_key))

    def events(self, session_id: str, *, after: int = 0, limit: int = 100) -> EventsOut:
        return self._call(_Routes.events(session_id, after, limit))

    def stream_events(
        self, session_id: str, *, after: int = 0, until: Until = "rest"
    ) -> Iterator[StreamEvent]:
        return self._stream(_Routes.events_stream(session_id, after, until), after, until)

    def approvals(self, *, limit: int = 50) -> ApprovalsOut:
        return self._call(_Routes.approvals(limit))

    def get_approval(self, approval_id: str) -> ApprovalOut:
        return self._call(_Routes.get_approval(approval_id))

    def decide(
        self,
        approval_id: str,
        approve: bool,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> TurnOut:
        return self._call(_Routes.decide(approval_id, approve, reason, idempotency_key))

    def stream_decide(
        self,
        approval_id: str,
        approve: bool,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Iterator[StreamEvent]:
        return self._stream(_Routes.decide(approval_id, approve, reason, idempotency_key))

    # I/O (AsyncClient's, without await) ----------------------------------------------

    def _call(self, op: _Op[M]) -> M:
        tries = 0
        while True:
            tries += 1
            try:
                response = self._http.request(**op.http())
            except _TRANSIENT as exc:
                failure: Exception = exc
            else:
                if response.is_success or response.status_code in op.ok:
                    return _read(response, op.model)
                failure = _error(response)
            if not _transient(op, failure, self._retry):
                raise failure
            if tries > self._retry.max_retries:
                raise _gave_up(self._http.base_url, op, tries, failure)
            self._sleep(self._retry.delay(tries, failure, self._rng))

    def _stream(
        self, op: _Op[Any], after: int | None = None, until: Until = "rest"
    ) -> Iterator[StreamEvent]:
        follow = _Follow(op, self._retry, self._rng, after=after, until=until)
        timeout = _stream_timeout(self._http)
        while True:
            try:
                with self._http.stream(**follow.request(), timeout=timeout) as response:
                    if not response.is_success:
                        response.read()
                        failure: Exception = _error(response)
                    elif _media_type(response) != _SSE:
                        response.read()
                        yield follow.accept_body(response)
                        return
                    else:
                        for sse in EventSource(response).iter_sse():
                            item = follow.accept(sse)
                            if item is not None:
                                yield item
                            if follow.done:
                                return
                        failure = _Broken("the stream ended before its end frame")
            except (*_TRANSIENT, _Broken) as exc:
                failure = exc
            self._sleep(follow.after_break(failure, self._http.base_url))
