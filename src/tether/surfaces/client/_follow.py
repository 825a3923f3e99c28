"""A stream's place (:class:`Follow`): what each frame means, and where to pick it up.

No I/O: a client opens :meth:`Follow.request`, hands over the response and its
SSE frames, and sleeps for what :meth:`Follow.after_break` says before opening
the next request. Stored events come exactly once and in ``seq`` order; a gap
in ``seq`` counts as a break.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx
from httpx_sse import ServerSentEvent
from pydantic import ValidationError

from tether.spec.events import SessionStatus
from tether.surfaces.client._errors import ServerError, error_of, invalid, read_body
from tether.surfaces.client._items import StreamEnd, StreamEvent, StreamKind
from tether.surfaces.client._retry import Broken, Retries
from tether.surfaces.client._routes import Op, Routes
from tether.surfaces.client._settings import JSON, SSE, media_type
from tether.surfaces.server.models import EventOut, Problem, TurnOut

__all__ = ["Follow", "Until"]

log = logging.getLogger("tether.client")

#: when an events stream ends: once the session is at rest, or never
Until = Literal["rest", "never"]

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


class Follow:
    """A stream's place: the last stored ``seq`` delivered and the session it belongs to,
    so that after a break it is picked up where it stopped, with nothing twice or missed.

    It starts with ``op`` (a POST that runs a turn, or an events stream). After a
    break, it asks for the events stream from the last ``seq`` seen, or, before any
    stored event came, for ``op`` again (a POST with the same Idempotency-Key: the
    server replays that turn rather than running another).
    """

    def __init__(
        self, op: Op[Any], retries: Retries, *, after: int | None, until: str = "rest"
    ) -> None:
        self.op = op
        self.retries = retries
        self.session_id = op.session_id
        self.last_seq = after
        self.until = until
        self.done = False

    def request(self) -> dict[str, Any]:
        """What to send now: the first request, or the one that picks the stream up again."""
        return self.op.http(stream=True)

    def is_events(self, response: httpx.Response) -> bool:
        """Whether ``response`` is the stream itself (2xx SSE), to read frame by frame;
        else the client reads it whole and hands it to :meth:`accept_body`."""
        return response.is_success and media_type(response) == SSE

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
            raise invalid(f"a {name!r} frame of the stream does not parse ({exc})") from None
        if ev.seq <= 0:  # live only: never stored, never replayed
            kind = StreamKind.DELTA if ev.type == "model.delta" else StreamKind.EVENT
            return StreamEvent(kind=kind, event=ev)
        if self.last_seq is not None:
            if ev.seq <= self.last_seq:
                return None  # sent again after a reconnect
            if ev.seq > self.last_seq + 1:
                raise Broken(f"events {self.last_seq + 1} to {ev.seq - 1} were skipped")
        self.last_seq = ev.seq
        self.session_id = self.session_id or ev.session_id
        self.retries.reset()  # progress: the retries count again from here
        return StreamEvent(kind=StreamKind.EVENT, id=ev.seq, event=ev)

    def _end(self, data: Any) -> StreamEvent:
        status = data.get("status") if isinstance(data, dict) else None
        if self.until != "rest" or status not in _REST:
            # the server is going away (shutting down) with the session not at rest
            raise Broken("the server ended the stream before the session came to rest")
        self.done = True
        last = data.get("last_seq")
        last_seq = last if isinstance(last, int) else (self.last_seq or 0)
        return StreamEvent(kind=StreamKind.END, end=StreamEnd(str(status), last_seq))

    def ended_early(self) -> Broken:
        """The failure of a stream whose frames ran out before its end frame."""
        return Broken("the stream ended before its end frame")

    def accept_body(self, response: httpx.Response) -> StreamEvent | ServerError:
        """A stream request answered whole (its body read) instead of with SSE: the error
        of a non-2xx answer (for :meth:`after_break`), or a turn's replayed outcome."""
        if not response.is_success:
            return error_of(response)
        content_type = media_type(response)
        if self.op.method != "POST" or content_type != JSON:
            raise invalid(f"a stream was answered with {content_type or 'no content type'}")
        self.done = True
        return StreamEvent(kind=StreamKind.TURN, turn=read_body(response, TurnOut))

    def after_break(self, exc: Exception) -> float:
        """The wait before picking the stream up again after ``exc``; raises when it may not."""
        delay = self.retries.wait(self.op, exc)
        if self.session_id is not None and self.last_seq is not None:
            self.op = Routes.events_stream(self.session_id, self.last_seq, self.until, resume=True)
        log.info(
            "stream of session %s broke (%s: %s); again in %.1f s from seq %s",
            self.session_id or "?", type(exc).__name__, exc, delay, self.last_seq,
        )  # fmt: skip
        return delay
