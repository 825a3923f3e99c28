"""The ``/v1`` resources: sessions, messages, approvals, events; and the health probes.

Every handler authenticates first (:mod:`~tether.surfaces.server.auth`),
loads what it acts on and answers 404 for what the caller may not see.
Turns run as the server's work (:mod:`~tether.surfaces.server.runs`); a
request waits for the turn's answer (JSON) or streams its events (SSE,
``Accept: text/event-stream``). Every POST honours ``Idempotency-Key``
(:mod:`~tether.surfaces.server.idempotency`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.sse import format_sse_event

from tether.exceptions import SessionConflict, SessionNotFound
from tether.runtime import TurnResult
from tether.runtime.approvals import PendingApproval
from tether.runtime.bus import Subscription
from tether.runtime.journal import EventSink
from tether.runtime.ports import SessionRecord
from tether.runtime.session import Session
from tether.runtime.state import SessionState
from tether.spec.agent import Agent
from tether.spec.events import Event, EventType, SessionStatus
from tether.surfaces.server import agui_route
from tether.surfaces.server.app import ServerState
from tether.surfaces.server.auth import Caller, own, visible
from tether.surfaces.server.common import (
    SSE_DOC,
    CallerDep,
    IdemHeader,
    narrowing,
    question_of,
    sse,
    state_of,
)
from tether.surfaces.server.idempotency import Claim, claim
from tether.surfaces.server.models import (
    AgentOut,
    AgentsOut,
    AnswerIn,
    ApprovalOut,
    ApprovalsOut,
    DecisionIn,
    EventOut,
    EventsOut,
    HealthOut,
    MessageIn,
    MessageOut,
    Problem,
    QuestionOut,
    ReadyOut,
    SessionIn,
    SessionOut,
    SessionsOut,
    SessionSummary,
    TurnOut,
    UsageOut,
)
from tether.surfaces.server.problems import (
    PROBLEM_JSON,
    ApiProblem,
    AsciiJSON,
    problem_body,
    problem_of,
)
from tether.surfaces.server.streaming import Item, follow, subscribe_now

__all__ = ["MAX_SEQ", "router"]

#: the largest event number a request may name (the store's integer column)
MAX_SEQ = 2**31 - 1

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}}
    for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
router = APIRouter(responses=_PROBLEMS)

Work = Callable[[EventSink], Coroutine[Any, Any, TurnResult]]


# --- health -----------------------------------------------------------------


@router.get("/healthz", response_model=HealthOut, tags=["health"])
async def healthz() -> HealthOut:
    """Liveness: the process answers."""
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    tags=["health"],
    responses={503: {"model": ReadyOut, "description": "a part failed (which one is said)"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the store answers and each agent's model chain answers as expected."""
    st = state_of(request)
    if st.closing.is_set():
        body = ReadyOut(
            status="not_ready", checks={"server": {"ok": False, "detail": "shutting down"}}
        )
        return AsciiJSON(body.model_dump(), status_code=503)
    ok, checks = await st.ready.check()
    body = ReadyOut(status="ready" if ok else "not_ready", checks=checks)
    return AsciiJSON(body.model_dump(), status_code=200 if ok else 503)


# --- agents -----------------------------------------------------------------


@router.get("/v1/agents", response_model=AgentsOut, tags=["agents"])
async def list_agents(request: Request, caller: CallerDep) -> AgentsOut:
    """The agents this server serves."""
    del caller
    return AgentsOut(
        items=[
            AgentOut(
                name=a.name,
                version=a.version,
                description=a.description,
                tools=[t.name for t in a.tools],
            )
            for a in _newest_first(state_of(request).versions.serving_agents())
        ]
    )


def _newest_first(agents: list[Agent]) -> list[Agent]:
    """One per name: the version new sessions start on (the active one, not the canary)."""
    seen: dict[str, Agent] = {}
    for a in agents:
        seen.setdefault(a.name, a)
    return list(seen.values())


# --- sessions -----------------------------------------------------------------


async def _own_record(
    st: ServerState, caller: Caller, sid: str, *, admin_too: bool = False
) -> SessionRecord:
    """The session ``caller`` is about to talk in: theirs (404 if unseen, 403 if not theirs)."""
    rec = await _record(st, caller, sid)
    if not own(caller, rec) and not (admin_too and caller.admin):
        raise ApiProblem(
            403,
            "not-your-session",
            "only the session's own user sends messages, answers and resumes to it; an "
            "approver decides its approvals (POST /v1/approvals/{id}/decision)",
        )
    return rec


async def _record(st: ServerState, caller: Caller, sid: str) -> SessionRecord:
    try:
        rec = await st.rt.store.get(sid)
    except SessionNotFound:
        raise ApiProblem(404, "not-found", "no such session (or not yours)") from None
    if not visible(caller, rec):
        raise ApiProblem(404, "not-found", "no such session (or not yours)")
    return rec


def _summary(rec: SessionRecord) -> SessionSummary:
    return SessionSummary(
        id=rec.id,
        agent=rec.agent,
        version=rec.agent_version,
        status=rec.status,
        user=rec.user_id,
        tenant=rec.tenant_id,
        created_at=rec.created_at,
        updated_at=rec.updated_at,
        step=rec.step,
        cost=round(rec.cost, 6),
        last_error=rec.last_error,
    )


def _approval(pa: PendingApproval, rec: SessionRecord | None = None) -> ApprovalOut:
    return ApprovalOut(
        id=pa.id,
        session_id=pa.session_id,
        tool=pa.tool,
        call_id=pa.call_id,
        summary=pa.summary,
        question=pa.question(),
        explanation=pa.explanation,
        mode=pa.mode,
        arguments=pa.arguments,
        expires_at=pa.expires_at,
        warning=pa.warning,
        flagged=list(pa.flagged),
        tainted=list(pa.tainted),
        user=None if rec is None else rec.user_id,
        tenant=None if rec is None else rec.tenant_id,
        agent=None if rec is None else rec.agent,
    )


def _pending(state: SessionState) -> PendingApproval | None:
    if state.status != SessionStatus.AWAITING_APPROVAL or state.pending_approval is None:
        return None
    return PendingApproval.from_event(state.session_id, state.pending_approval)


async def _session_out(st: ServerState, rec: SessionRecord) -> SessionOut:
    state = await st.rt.load(rec.id)
    messages: list[MessageOut] = []
    for m in state.messages:
        if m.role == "tool":  # one message per tool result, naming its tool
            messages.extend(MessageOut(role="tool", text=r.content, tool=r.name) for r in m.results)
            continue
        if m.role not in ("user", "assistant"):
            continue
        messages.append(
            MessageOut(
                role=m.role,
                text=m.text or "",
                tool_calls=[
                    {"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls
                ],
            )
        )
    pending = _pending(state)
    return SessionOut(
        **_summary(rec).model_dump() | {"status": state.status},
        usage=UsageOut(**state.usage.to_dict()),
        last_seq=state.event_count,
        messages=messages,
        context=dict(state.context),
        pending_approval=None if pending is None else _approval(pending, rec),
        question=question_of(state),
    )


@router.post(
    "/v1/sessions",
    status_code=201,
    response_model=SessionOut,
    tags=["sessions"],
)
async def create_session(
    request: Request, body: SessionIn, caller: CallerDep, idem_key: IdemHeader = None
) -> Response:
    """Start a session with an agent (as the caller; nothing runs until a message)."""
    st = state_of(request)
    agent = await st.versions.for_new(body.agent, body.version)
    held = await claim(st, caller, request, idem_key)
    if held is not None and held.replay is not None:
        return held.replay
    _handle, rec = await _create(st, agent, caller, held, body.context, body.session_id)
    body_json = (await _session_out(st, rec)).model_dump(mode="json")
    if held is not None:
        await held.finish(201, body_json)
    return AsciiJSON(body_json, status_code=201)


async def _create(
    st: ServerState,
    agent: Agent,
    caller: Caller,
    held: Claim | None,
    context: dict[str, Any] | None,
    session_id: str | None = None,
) -> tuple[Session, SessionRecord]:
    """A new session owned by ``caller``; a failure gives the idempotency key back."""
    try:
        handle = st.rt.session(agent, session_id, principal=caller.principal, new=True)
        await handle.create(context=context, metadata={"via": "server"})
        return handle, await st.rt.store.get(handle.id)
    except BaseException as exc:
        if held is not None:
            await held.forget()
        if isinstance(exc, SessionConflict):  # the id is taken: retrying will not help
            raise ApiProblem(
                409, "session-exists", "a session with this id exists; choose another id"
            ) from None
        if isinstance(exc, Exception):
            raise problem_of(exc) from None
        raise


@router.get("/v1/sessions", response_model=SessionsOut, tags=["sessions"])
async def list_sessions(
    request: Request,
    caller: CallerDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    agent: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> SessionsOut:
    """The caller's sessions, newest first (admins: everyone's)."""
    st = state_of(request)
    user = None if caller.admin else caller.principal.user
    before: tuple[float, str] | None = None
    if cursor:
        try:
            at, _, sid = cursor.partition(":")
            before = (float(at), sid)
        except ValueError:
            raise ApiProblem(422, "invalid-request", "cursor is not one this server gave") from None
    # The store filters by user id, not tenant: the same user id in another tenant is
    # another person, so read all of this user id's sessions and keep the caller's.
    page_only = before is None and caller.admin
    records = await st.rt.store.list_sessions(
        limit=limit + 1 if page_only else None, status=status, agent=agent, user_id=user
    )
    mine = [r for r in records if visible(caller, r)]
    if before is not None:
        mine = [r for r in mine if (r.created_at, r.id) < before]
    page = mine[:limit]
    more = len(mine) > limit
    nxt = f"{page[-1].created_at!r}:{page[-1].id}" if more and page else None
    return SessionsOut(items=[_summary(r) for r in page], next_cursor=nxt)


@router.get("/v1/sessions/{session_id}", response_model=SessionOut, tags=["sessions"])
async def get_session(request: Request, session_id: str, caller: CallerDep) -> SessionOut:
    """A session: state, messages, usage, cost, and what it waits for."""
    st = state_of(request)
    return await _session_out(st, await _record(st, caller, session_id))


# --- turns --------------------------------------------------------------------


def _wants_sse(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def turn_out(result: TurnResult, first_seq: int) -> TurnOut:
    calls = [
        {"name": e.data.get("name"), "arguments": e.data.get("arguments")}
        for e in result.events
        if e.type == EventType.TOOL_STARTED
    ]
    stored = [e.seq for e in result.events if e.seq]
    question = None
    for e in result.events:
        if e.type == EventType.CLARIFY_ASKED:
            question = QuestionOut(call_id=e.data["call_id"], question=e.data["question"])
    if result.status != SessionStatus.AWAITING_USER:
        question = None
    return TurnOut(
        session_id=result.session_id,
        status=result.status,
        output=result.output,
        error=result.error,
        stop_reason=result.stop_reason,
        usage=UsageOut(**result.usage.to_dict()),
        cost=round(result.cost, 6),
        approval=None if result.approval is None else _approval(result.approval),
        question=question,
        tool_calls=calls,
        first_seq=min(stored, default=first_seq),
        last_seq=max(stored, default=first_seq - 1),
    )


def event_out(ev: Event) -> dict[str, Any]:
    return ev.to_dict()


def event_frames(item: Item) -> bytes:
    """An event's frame, a keep-alive comment, or nothing (an end: the caller frames it)."""
    if item.event is not None:
        return frame(item.event)
    return b": keepalive\n\n" if item.kind == "keepalive" else b""


def frame(ev: Event) -> bytes:
    data = json.dumps(event_out(ev), separators=(",", ":"), default=str)
    return format_sse_event(data_str=data, event=ev.type, id=str(ev.seq) if ev.seq else None)


def _json_frame(event: str, body: Any) -> bytes:
    return format_sse_event(
        data_str=json.dumps(body, separators=(",", ":"), default=str), event=event
    )


def _refuse_when_closing(st: ServerState) -> None:
    if st.closing.is_set():
        raise ApiProblem(
            503,
            "shutting-down",
            "this replica is shutting down; retry on another",
            headers={"Retry-After": "1"},
        )


async def run_turn(
    request: Request,
    st: ServerState,
    caller: Caller,
    rec: SessionRecord,
    work: Work,
    idem_key: str | None,
    *,
    claimed: Claim | None = None,
) -> Response:
    """Start ``work`` as a turn on ``rec``'s session and answer with its outcome or its stream.

    ``claimed``: the request's idempotency key, already claimed by the caller.
    """
    _refuse_when_closing(st)
    held = claimed if claimed is not None else await claim(st, caller, request, idem_key)
    if held is not None and held.replay is not None:
        return held.replay
    if held is not None and held.stream_from is not None:
        return held.stream_from
    first_seq = rec.event_count + 1
    if held is not None:
        await held.started(rec.id, first_seq)

    async def outcome(result: TurnResult | None, error: BaseException | None, last: int) -> None:
        if held is None:
            return
        if result is not None:
            await held.finish(200, turn_out(result, first_seq).model_dump(mode="json"))
        elif last >= first_seq and error is not None:
            p = problem_of(error)
            # the turn's last event: a streamed retry replays this turn, not later ones
            p.extra = {**(p.extra or {}), "last_seq": last}
            await held.finish(p.status, problem_body(p))
        else:
            await held.forget()

    streaming = _wants_sse(request)
    # a turn's own stream listens before the turn starts: it hears the first deltas too
    listening = await subscribe_now(st.bus, rec.id) if streaming else None
    started = st.runs.start(work, outcome=outcome)
    await started.begun()
    task = started.task
    if task.done() and not started.first.done():  # refused before it did anything
        exc = task.exception()
        if exc is not None:
            if listening is not None:
                async with listening:
                    pass
            raise problem_of(exc)
    if listening is not None:
        return sse(_turn_stream(st, rec.id, first_seq, task, listening))
    try:
        result = await asyncio.shield(task)
    except Exception as exc:
        raise problem_of(exc) from None
    return AsciiJSON(turn_out(result, first_seq).model_dump(mode="json"))


async def _turn_stream(
    st: ServerState,
    sid: str,
    first_seq: int,
    task: asyncio.Task[TurnResult],
    listening: contextlib.AbstractAsyncContextManager[Subscription],
) -> AsyncIterator[bytes]:
    cfg = st.config
    async for batch in follow(
        st.rt.store,
        st.bus,
        sid,
        first_seq - 1,
        until_rest=False,
        poll=cfg.stream_poll,
        keepalive=cfg.keepalive,
        closing=st.closing,
        done=task,
        subscription=listening,
    ):
        out = [event_frames(item) for item in batch]
        if batch[-1].reason == "shutdown" and not task.done():
            yield b"".join([*out, _json_frame("error", _shutdown_problem(sid))])
            return
        if batch[-1].kind != "end":
            yield b"".join(out)
            continue
        try:
            result = task.result()
        except Exception as exc:
            out.append(_json_frame("error", problem_body(problem_of(exc))))
        else:
            out.append(_json_frame("turn.end", turn_out(result, first_seq).model_dump(mode="json")))
        yield b"".join(out)
        return


def _shutdown_problem(sid: str) -> dict[str, Any]:
    return problem_body(
        ApiProblem(
            503,
            "shutting-down",
            "this replica is shutting down; the turn stops at a step boundary and another "
            f"replica continues it: reconnect to /v1/sessions/{sid}/events/stream with "
            "Last-Event-ID",
        )
    )


@router.post(
    "/v1/sessions/{session_id}/messages",
    response_model=TurnOut,
    tags=["turns"],
    responses={200: {"content": SSE_DOC}},
)
async def post_message(
    request: Request,
    session_id: str,
    body: MessageIn,
    caller: CallerDep,
    idem_key: IdemHeader = None,
) -> Response:
    """Send a user message and run the turn (JSON, or SSE for ``Accept: text/event-stream``)."""

    def act(handle: Session, sink: EventSink) -> Awaitable[TurnResult]:
        return handle.send(body.message, context=body.context, on_event=sink)

    return await _own_turn(request, session_id, caller, idem_key, act)


@router.post(
    "/v1/agents/{name}/messages",
    response_model=TurnOut,
    tags=["turns"],
    responses={200: {"content": SSE_DOC}},
)
async def start_conversation(
    request: Request,
    name: str,
    body: MessageIn,
    caller: CallerDep,
    idem_key: IdemHeader = None,
) -> Response:
    """Start a session with agent ``name`` and run its first turn, in one request.

    The same as ``POST /v1/sessions`` then ``POST /v1/sessions/{id}/messages``;
    the answer's ``session_id`` (or the stream's first event) names the session.
    """
    st = state_of(request)
    agent = await st.versions.for_new(name)
    _refuse_when_closing(st)
    held = await claim(st, caller, request, idem_key)
    if held is not None and (held.replay is not None or held.stream_from is not None):
        return held.replay or held.stream_from  # type: ignore[return-value]
    handle, rec = await _create(st, agent, caller, held, body.context)

    async def work(sink: EventSink) -> TurnResult:
        return await handle.send(body.message, on_event=sink)

    return await run_turn(request, st, caller, rec, work, idem_key, claimed=held)


@router.post(
    "/v1/sessions/{session_id}/answer",
    response_model=TurnOut,
    tags=["turns"],
    responses={200: {"content": SSE_DOC}},
)
async def post_answer(
    request: Request,
    session_id: str,
    body: AnswerIn,
    caller: CallerDep,
    idem_key: IdemHeader = None,
) -> Response:
    """Answer the question the agent asked, and continue the turn."""

    def act(handle: Session, sink: EventSink) -> Awaitable[TurnResult]:
        return handle.answer(body.text, on_event=sink)

    return await _own_turn(request, session_id, caller, idem_key, act)


@router.post(
    "/v1/sessions/{session_id}/resume",
    response_model=TurnOut,
    tags=["turns"],
    responses={200: {"content": SSE_DOC}},
)
async def post_resume(
    request: Request, session_id: str, caller: CallerDep, idem_key: IdemHeader = None
) -> Response:
    """Continue a turn that was interrupted or failed."""

    def act(handle: Session, sink: EventSink) -> Awaitable[TurnResult]:
        return handle.resume(on_event=sink)

    return await _own_turn(request, session_id, caller, idem_key, act, admin_too=True)


async def _own_turn(
    request: Request,
    session_id: str,
    caller: Caller,
    idem_key: str | None,
    act: Callable[[Session, EventSink], Awaitable[TurnResult]],
    *,
    admin_too: bool = False,
) -> Response:
    """Run ``act`` as a turn in the caller's own session (see :func:`_own_record`)."""
    st = state_of(request)
    rec = await _own_record(st, caller, session_id, admin_too=admin_too)
    handle = st.rt.session(st.versions.for_session(rec), rec.id, principal=narrowing(caller, rec))

    async def work(sink: EventSink) -> TurnResult:
        return await act(handle, sink)

    return await run_turn(request, st, caller, rec, work, idem_key)


# --- events -------------------------------------------------------------------


@router.get("/v1/sessions/{session_id}/events", response_model=EventsOut, tags=["events"])
async def list_events(
    request: Request,
    session_id: str,
    caller: CallerDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventsOut:
    """The session's stored events after ``after``, in order."""
    st = state_of(request)
    await _record(st, caller, session_id)
    events = await st.rt.store.events(session_id, after_seq=after)
    page = events[:limit]
    nxt = page[-1].seq if page else None
    return EventsOut(items=[EventOut.model_validate(event_out(e)) for e in page], next_after=nxt)


@router.get(
    "/v1/sessions/{session_id}/events/stream",
    tags=["events"],
    response_class=StreamingResponse,
    responses={200: {"content": SSE_DOC}},
)
async def stream_events(
    request: Request,
    session_id: str,
    caller: CallerDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    until: Annotated[str, Query(pattern="^(rest|never)$")] = "rest",
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> StreamingResponse:
    """Stored events after ``after`` (or ``Last-Event-ID``), then live ones as they happen."""
    st = state_of(request)
    await _record(st, caller, session_id)
    if last_event_id:
        try:
            after = int(last_event_id)
        except ValueError:
            after = -1
        if not 0 <= after <= MAX_SEQ:
            raise ApiProblem(
                422, "invalid-request", "Last-Event-ID must be an event id this server sent"
            )
    return sse(_event_stream(st, session_id, after, until == "rest"))


async def _event_stream(
    st: ServerState, sid: str, after: int, until_rest: bool
) -> AsyncIterator[bytes]:
    cfg = st.config
    async for batch in follow(
        st.rt.store,
        st.bus,
        sid,
        after,
        until_rest=until_rest,
        poll=cfg.stream_poll,
        keepalive=cfg.keepalive,
        closing=st.closing,
    ):
        out = []
        for item in batch:
            if item.reason == "shutdown":
                out.append(_json_frame("error", _shutdown_problem(sid)))
            elif item.kind == "end":
                end = {"status": item.status, "last_seq": item.last_seq, "reason": item.reason}
                out.append(_json_frame("end", end))
            else:
                out.append(event_frames(item))
        yield b"".join(out)


# --- approvals -------------------------------------------------------------------


def _session_of(approval_id: str) -> str:
    sid, dot, _ = approval_id.rpartition(".")
    if not dot or not sid:
        raise ApiProblem(404, "not-found", "no such approval (or not yours)")
    return sid


async def _pending_for(
    st: ServerState, caller: Caller, approval_id: str
) -> tuple[SessionRecord, PendingApproval]:
    try:
        rec = await _record(st, caller, _session_of(approval_id))
    except ApiProblem:
        raise ApiProblem(404, "not-found", "no such approval (or not yours)") from None
    pending = await st.rt.pending_approval(rec.id)
    if pending is None or pending.id != approval_id:
        raise ApiProblem(
            404, "not-found", "no such approval pending (decided, expired, or never asked)"
        )
    return rec, pending


@router.get("/v1/approvals", response_model=ApprovalsOut, tags=["approvals"])
async def list_approvals(
    request: Request, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> ApprovalsOut:
    """Approvals waiting: on the caller's sessions, or their tenant's for approvers."""
    st = state_of(request)
    user = None if caller.approver else caller.principal.user
    records = await st.rt.store.list_sessions(
        limit=None, status=SessionStatus.AWAITING_APPROVAL, user_id=user
    )
    items = []
    for rec in records:
        if not visible(caller, rec):
            continue
        pending = await st.rt.pending_approval(rec.id)
        if pending is not None:
            items.append(_approval(pending, rec))
        if len(items) >= limit:
            break
    return ApprovalsOut(items=items)


@router.get("/v1/approvals/{approval_id}", response_model=ApprovalOut, tags=["approvals"])
async def get_approval(request: Request, approval_id: str, caller: CallerDep) -> ApprovalOut:
    """An approval: summary, every argument, and provenance warnings."""
    st = state_of(request)
    rec, pending = await _pending_for(st, caller, approval_id)
    return _approval(pending, rec)


@router.post(
    "/v1/approvals/{approval_id}/decision",
    response_model=TurnOut,
    tags=["approvals"],
    responses={200: {"content": SSE_DOC}},
)
async def decide(
    request: Request,
    approval_id: str,
    body: DecisionIn,
    caller: CallerDep,
    idem_key: IdemHeader = None,
) -> Response:
    """Approve or deny; the session continues (on this replica) and the outcome is returned."""
    st = state_of(request)
    try:
        rec = await _record(st, caller, _session_of(approval_id))
    except ApiProblem:
        raise ApiProblem(404, "not-found", "no such approval (or not yours)") from None
    if not idem_key:  # with a key, a retry after the decision must reach its recorded outcome
        rec, _pending = await _pending_for(st, caller, approval_id)
    handle = st.rt.session(st.versions.for_session(rec), rec.id)

    async def work(sink: EventSink) -> TurnResult:
        return await handle.decide(
            approval_id, body.approve, by=caller.principal, reason=body.reason, on_event=sink
        )

    return await run_turn(request, st, caller, rec, work, idem_key)


router.include_router(agui_route.router)
