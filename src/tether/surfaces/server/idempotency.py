"""``Idempotency-Key``: a client's retry of a POST gets the first outcome; nothing runs twice.

The first request with a key claims it (one INSERT in the shared store, so
two replicas receiving the same retry at once cannot both win). A later
request with the same key and the same method, path and body:

- after the first finished: gets its status and body again (a streaming
  request gets the turn's stored events again, then its outcome);
- while the first is still running: a JSON request waits for its outcome
  (up to ``WAIT`` seconds, then 409 with ``Retry-After``); a streaming one
  follows the running turn's events from its first one.

The same key with a different request is refused (422): it is a client bug
that would otherwise return the wrong outcome. A request refused before it
did anything (a rate limit, a busy session) gives its key back, so the
client may retry it with the same key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response
from fastapi.sse import format_sse_event

from tether.store.server import IdempotencyRecord
from tether.surfaces.server.problems import PROBLEM_JSON, ApiProblem, AsciiJSON

if TYPE_CHECKING:
    from tether.surfaces.server.app import ServerState
    from tether.surfaces.server.auth import Caller

__all__ = ["WAIT", "Claim", "claim"]

#: seconds a retry waits for the first request's outcome
WAIT = 30.0


@dataclass(slots=True)
class Claim:
    """A key this request holds (``replay``/``stream_from`` set: an earlier request's outcome)."""

    st: ServerState
    owner: str
    key: str
    replay: Response | None = None
    stream_from: Response | None = None
    #: the first request's record, when ``replay`` is set
    record: IdempotencyRecord | None = None
    _done: bool = field(default=False)

    async def started(self, session_id: str, first_seq: int) -> None:
        await self.st.idem.started(self.owner, self.key, session_id=session_id, first_seq=first_seq)

    async def finish(self, status_code: int, body: Any) -> None:
        self._done = True
        await self.st.idem.finish(self.owner, self.key, status_code, body)

    async def forget(self) -> None:
        self._done = True
        await self.st.idem.forget(self.owner, self.key)


async def _fingerprint(request: Request) -> str:
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(b"\0")
    h.update(request.url.path.encode())
    h.update(b"\0")
    h.update(await request.body())
    return h.hexdigest()


def _public(body: Any) -> Any:
    """The recorded body as the first request was answered (without the replay's bookmark)."""
    extra = body.get("extra") if isinstance(body, dict) else None
    if not isinstance(extra, dict) or "last_seq" not in extra:
        return body
    rest = {k: v for k, v in extra.items() if k != "last_seq"}
    out = {k: v for k, v in body.items() if k != "extra"}
    return {**out, "extra": rest} if rest else out


def _response(rec: IdempotencyRecord) -> Response:
    code = rec.status_code or 200
    media = PROBLEM_JSON if code >= 400 else "application/json"
    return AsciiJSON(
        _public(rec.body),
        status_code=code,
        media_type=media,
        headers={"Idempotent-Replayed": "true"},
    )


async def _outcome(st: ServerState, owner: str, key: str, wait: float) -> IdempotencyRecord | None:
    deadline = time.monotonic() + wait
    while True:
        rec = await st.idem.get(owner, key)
        if rec is None or rec.done:
            return rec
        if time.monotonic() >= deadline or st.closing.is_set():
            return None
        await asyncio.sleep(0.1)


async def claim(
    st: ServerState, caller: Caller, request: Request, key: str | None, *, stream: bool = True
) -> Claim | None:
    """Claim ``key`` for this request, or answer with the first request's outcome.

    ``stream=False``: a retry waits for the first outcome even when it asks
    for a stream (the AG-UI route replays the outcome in its own protocol).
    """
    if key is None:
        return None
    fp = await _fingerprint(request)
    first, rec = await st.idem.begin(caller.key_id, key, fp)
    held = Claim(st, caller.key_id, key)
    if first:
        return held
    if rec.fingerprint != fp:
        raise ApiProblem(
            422,
            "idempotency-key-reused",
            "this Idempotency-Key was used for a different request; use a new key for a new "
            "request",
        )
    streaming = stream and "text/event-stream" in request.headers.get("accept", "")
    if streaming and rec.session_id is not None and rec.first_seq is not None:
        held.stream_from = _replay_stream(st, caller.key_id, key, rec)
        return held
    done = rec if rec.done else await _outcome(st, caller.key_id, key, WAIT)
    if done is None:
        if await st.idem.get(caller.key_id, key) is None:  # the first gave its key back
            raise ApiProblem(
                409,
                "retry",
                "the first request with this key was refused before it did anything; retry it",
                headers={"Retry-After": "1"},
            )
        raise ApiProblem(
            409,
            "in-progress",
            "the first request with this Idempotency-Key is still running; retry later to get "
            "its outcome",
            headers={"Retry-After": "2"},
        )
    held.replay = _response(done)
    held.record = done
    return held


def _replay_stream(st: ServerState, owner: str, key: str, rec: IdempotencyRecord) -> Response:
    """The first request's turn again: its stored events, then its outcome.

    A finished turn replays exactly its own events (``first_seq`` to the
    outcome's ``last_seq``), never those of later turns; a running one is
    followed until the session rests, then its recorded outcome is sent.
    """
    from tether.surfaces.server.common import sse
    from tether.surfaces.server.routes import event_frames, frame  # routes import this module
    from tether.surfaces.server.streaming import follow

    assert rec.session_id is not None
    assert rec.first_seq is not None
    sid, first = rec.session_id, rec.first_seq

    async def gen() -> AsyncIterator[bytes]:
        done = rec if rec.done else None
        last = _last_seq(done)
        if done is not None and last is not None:
            events = await st.rt.store.events(sid, after_seq=first - 1)
            yield b"".join(frame(ev) for ev in events if ev.seq <= last)
        else:
            cfg = st.config
            async for batch in follow(
                st.rt.store,
                st.bus,
                sid,
                first - 1,
                until_rest=True,
                poll=cfg.stream_poll,
                keepalive=cfg.keepalive,
                closing=st.closing,
            ):
                yield b"".join(event_frames(item) for item in batch)
            done = await _outcome(st, owner, key, 5.0)
        if done is not None and done.body is not None:
            name = "turn.end" if (done.status_code or 200) < 400 else "error"
            yield format_sse_event(
                data_str=json.dumps(_public(done.body), separators=(",", ":")), event=name
            )

    return sse(gen())


def _last_seq(rec: IdempotencyRecord | None) -> int | None:
    """The last event of the recorded turn: in a ``TurnOut``, or a problem's ``extra``."""
    body = None if rec is None else rec.body
    if not isinstance(body, dict):
        return None
    value = body.get("last_seq")
    extra = body.get("extra")
    if value is None and isinstance(extra, dict):
        value = extra.get("last_seq")
    return value if isinstance(value, int) else None
