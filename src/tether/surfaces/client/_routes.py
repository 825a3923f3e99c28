"""Every endpoint of the server's contract, as the request to send (:class:`Op`).

Both clients build their requests here, each once: a retry sends that very
request again, with the same ``Idempotency-Key``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from tether.exceptions import InputRejected
from tether.surfaces.client._errors import first_error
from tether.surfaces.client._settings import SSE
from tether.surfaces.server.models import (
    AgentsOut,
    AnswerIn,
    ApprovalOut,
    ApprovalsOut,
    DecisionIn,
    EventsOut,
    HealthOut,
    MessageIn,
    ReadyOut,
    SessionIn,
    SessionOut,
    SessionsOut,
    TurnOut,
)

__all__ = ["Op", "Routes"]

M = TypeVar("M", bound=BaseModel)

_STREAM_HEADERS = {"Accept": SSE, "Cache-Control": "no-store"}
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True, slots=True)
class Op(Generic[M]):
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
        raise InputRejected(f"{model.__name__}: {first_error(exc)}; nothing was sent") from None


def _key(key: str | None) -> str:
    if key is None:
        return str(uuid.uuid4())
    if not _KEY.fullmatch(key):
        raise InputRejected("an Idempotency-Key is 1 to 255 printable ASCII characters, no spaces")
    return key


def _post(
    path: str, model: type[M], body: dict[str, Any] | None, key: str | None, sid: str | None
) -> Op[M]:
    return Op("POST", path, model, body=body, headers={"Idempotency-Key": _key(key)},
              session_id=sid)  # fmt: skip


class Routes:
    """Every endpoint of the contract, as the request to send: both clients read these."""

    @staticmethod
    def health() -> Op[HealthOut]:
        return Op("GET", "/healthz", HealthOut)

    @staticmethod
    def ready() -> Op[ReadyOut]:
        return Op("GET", "/readyz", ReadyOut, ok=frozenset({503}))

    @staticmethod
    def agents() -> Op[AgentsOut]:
        return Op("GET", "/v1/agents", AgentsOut)

    @staticmethod
    def create_session(
        agent: str,
        context: dict[str, Any] | None,
        version: str | None,
        session_id: str | None,
        key: str | None,
    ) -> Op[SessionOut]:
        body = _body(SessionIn, agent=agent, context=context, version=version,
                     session_id=session_id)  # fmt: skip
        return _post("/v1/sessions", SessionOut, body, key, None)

    @staticmethod
    def get_session(sid: str) -> Op[SessionOut]:
        return Op("GET", f"/v1/sessions/{_seg(sid, 'session id')}", SessionOut)

    @staticmethod
    def list_sessions(
        status: str | None, agent: str | None, limit: int, cursor: str | None
    ) -> Op[SessionsOut]:
        given = {"status": status, "agent": agent, "limit": limit, "cursor": cursor}
        params = {k: v for k, v in given.items() if v is not None}
        return Op("GET", "/v1/sessions", SessionsOut, params=params)

    @staticmethod
    def send(
        sid: str, message: str, context: dict[str, Any] | None, key: str | None
    ) -> Op[TurnOut]:
        body = _body(MessageIn, message=message, context=context)
        return _post(f"/v1/sessions/{_seg(sid, 'session id')}/messages", TurnOut, body, key, sid)

    @staticmethod
    def answer(sid: str, text: str, key: str | None) -> Op[TurnOut]:
        body = _body(AnswerIn, text=text)
        return _post(f"/v1/sessions/{_seg(sid, 'session id')}/answer", TurnOut, body, key, sid)

    @staticmethod
    def resume(sid: str, key: str | None) -> Op[TurnOut]:
        return _post(f"/v1/sessions/{_seg(sid, 'session id')}/resume", TurnOut, None, key, sid)

    @staticmethod
    def events(sid: str, after: int, limit: int) -> Op[EventsOut]:
        path = f"/v1/sessions/{_seg(sid, 'session id')}/events"
        return Op("GET", path, EventsOut, params={"after": after, "limit": limit})

    @staticmethod
    def events_stream(sid: str, after: int, until: str, *, resume: bool = False) -> Op[EventsOut]:
        path = f"/v1/sessions/{_seg(sid, 'session id')}/events/stream"
        headers = {"Last-Event-ID": str(after)} if resume else {}
        params: dict[str, str | int] = {"after": after, "until": until}
        return Op("GET", path, EventsOut, params=params, headers=headers, session_id=sid)

    @staticmethod
    def approvals(limit: int) -> Op[ApprovalsOut]:
        return Op("GET", "/v1/approvals", ApprovalsOut, params={"limit": limit})

    @staticmethod
    def get_approval(aid: str) -> Op[ApprovalOut]:
        return Op("GET", f"/v1/approvals/{_seg(aid, 'approval id')}", ApprovalOut)

    @staticmethod
    def decide(aid: str, approve: bool, reason: str | None, key: str | None) -> Op[TurnOut]:
        body = _body(DecisionIn, approve=approve, reason=reason)
        path = f"/v1/approvals/{_seg(aid, 'approval id')}/decision"
        return _post(path, TurnOut, body, key, None)
