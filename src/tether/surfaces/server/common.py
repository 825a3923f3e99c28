"""What every route needs: the server's state, the caller, the agent, an SSE response."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from tether.runtime.ports import SessionRecord
from tether.runtime.state import SessionState
from tether.spec.agent import Agent
from tether.spec.events import SessionStatus
from tether.spec.principal import Principal
from tether.surfaces.server.app import ServerState
from tether.surfaces.server.auth import Caller, authenticate, bearer
from tether.surfaces.server.models import QuestionOut
from tether.surfaces.server.problems import ApiProblem

__all__ = [
    "SSE_DOC",
    "CallerDep",
    "IdemHeader",
    "agent_named",
    "caller_of",
    "narrowing",
    "question_of",
    "sse",
    "state_of",
]


#: how a streamed answer is documented in OpenAPI: each event is an object whose ``data``
#: is a JSON string (the shape OpenAPI 3.2 and FastAPI's own SSE responses publish)
SSE_DOC: dict[str, Any] = {
    "text/event-stream": {
        "itemSchema": {
            "type": "object",
            "properties": {
                "data": {"type": "string"},
                "event": {"type": "string"},
                "id": {"type": "string"},
                "retry": {"type": "integer", "minimum": 0},
            },
        }
    }
}


def state_of(request: Request) -> ServerState:
    st: ServerState = request.app.state.tether
    return st


async def caller_of(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    return await authenticate(request, creds)


CallerDep = Annotated[Caller, Depends(caller_of)]
IdemHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="retrying with the same key returns the first outcome; nothing runs twice",
    ),
]


def agent_named(st: ServerState, name: str) -> Agent:
    agent = st.agents.get(name)
    if agent is None:
        raise ApiProblem(
            404, "agent-not-served", f"this server does not serve an agent named {name!r}"
        )
    return agent


def narrowing(caller: Caller, rec: SessionRecord) -> Principal | None:
    """The caller's principal if it is the session's own user; else none (stored scopes act)."""
    p = caller.principal
    if p.user == rec.user_id and p.tenant == rec.tenant_id:
        return p
    return None


def question_of(state: SessionState) -> QuestionOut | None:
    """The question the session waits to have answered, if any."""
    if state.status != SessionStatus.AWAITING_USER:
        return None
    for call in state.unanswered_calls():
        if call.name == "clarify":
            return QuestionOut(call_id=call.id, question=str(call.arguments.get("question", "")))
    return None


def sse(gen: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        gen,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
