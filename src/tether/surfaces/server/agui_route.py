"""``POST /v1/agents/{name}/agui``: the AG-UI protocol for front ends (CopilotKit and others).

The request body is the protocol's ``RunAgentInput`` (validated by the
``ag-ui-protocol`` package's own model); the answer is its event stream.
The AG-UI thread is the Tether session (created on the first run, owned by
the caller); an approval ends the run with the protocol's interrupt
outcome, and the client's next run resumes it with the decision
(:mod:`tether.surfaces.server.agui` translates both ways). The turn is the
server's work, as for ``/v1/sessions/{id}/messages``: a client that goes
away does not stop it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from ag_ui.core import RunAgentInput
from fastapi import APIRouter, Body, Request
from fastapi.responses import Response, StreamingResponse

from tether.exceptions import SessionNotFound
from tether.runtime import TurnResult
from tether.runtime.approvals import PendingApproval
from tether.runtime.journal import EventSink
from tether.runtime.session import Session
from tether.spec.agent import Agent
from tether.spec.events import Event, EventType, SessionStatus
from tether.store.server import IdempotencyRecord
from tether.surfaces.server.agui import (
    AguiAnswer,
    AguiDecision,
    AguiInputError,
    AguiMessage,
    AguiRequest,
    AguiTranslator,
    check_pending,
    encode,
    parse_input,
)
from tether.surfaces.server.app import ServerState
from tether.surfaces.server.auth import Caller, own, visible
from tether.surfaces.server.common import (
    SSE_DOC,
    CallerDep,
    IdemHeader,
    agent_named,
    narrowing,
    question_of,
    sse,
    state_of,
)
from tether.surfaces.server.idempotency import Claim, claim
from tether.surfaces.server.problems import ApiProblem, problem_of

__all__ = ["router"]

router = APIRouter()

#: one answer for a thread that does not exist and one that is not yours
_NOT_FOUND = "no such thread (or not yours)"


def _problem_text(exc: BaseException) -> str:
    p = problem_of(exc)
    return f"{p.title}: {p.detail}"


@router.post(
    "/v1/agents/{name}/agui",
    tags=["agui"],
    response_class=StreamingResponse,
    responses={200: {"content": SSE_DOC}},
)
async def agui_run(
    request: Request,
    name: str,
    run: Annotated[RunAgentInput, Body()],
    caller: CallerDep,
    idem_key: IdemHeader = None,
) -> Response:
    """Run one AG-UI run: a message, or the resume of an interrupt (a decision, an answer).

    With an ``Idempotency-Key``, a retry of a finished run gets that run's
    events again (from the store: text whole, not in deltas) and its end.
    """
    st = state_of(request)
    agent = agent_named(st, name)
    try:
        ask = parse_input(run)
    except AguiInputError as exc:
        raise ApiProblem(422, "invalid-request", str(exc)) from None
    held = await claim(st, caller, request, idem_key, stream=False)
    if held is not None and held.record is not None:
        return sse(_replay(st, held.record, ask.run_id))
    try:
        return await _start(st, agent, ask, caller, held)
    except BaseException:
        if held is not None:
            await held.forget()
        raise


async def _start(
    st: ServerState, agent: Agent, ask: AguiRequest, caller: Caller, held: Claim | None
) -> Response:
    sid = ask.session_id
    try:
        rec = await st.rt.store.get(sid)
    except SessionNotFound:
        rec = None
    if rec is None:
        if not isinstance(ask, AguiMessage):
            raise ApiProblem(404, "not-found", _NOT_FOUND)
        agent = await st.versions.for_new(agent.name)
        handle = st.rt.session(agent, sid, principal=caller.principal, new=True)
        try:
            await handle.create(metadata={"via": "agui"})
        except Exception as exc:
            raise problem_of(exc) from None
        rec = await st.rt.store.get(sid)
    elif not visible(caller, rec):
        raise ApiProblem(404, "not-found", _NOT_FOUND)
    elif not isinstance(ask, AguiDecision) and not own(caller, rec):
        raise ApiProblem(
            403,
            "not-your-session",
            "only the thread's own user sends messages and answers in it; an approver "
            "resumes its approval interrupt",
        )
    if rec.agent != agent.name:
        raise ApiProblem(409, "wrong-agent", f"thread {sid} belongs to agent {rec.agent!r}")
    agent = st.versions.for_session(rec)  # a thread stays on the version it started on
    state = await st.rt.load(sid)
    pending = await st.rt.pending_approval(sid)
    question = question_of(state)
    try:
        check_pending(
            ask,
            status=state.status,
            approval_id=None if pending is None else pending.id,
            clarify_call_id=None if question is None else question.call_id,
        )
    except AguiInputError as exc:
        raise ApiProblem(409, "invalid-state", str(exc)) from None

    if isinstance(ask, AguiDecision):
        handle = st.rt.session(agent, sid)
    else:
        handle = st.rt.session(agent, sid, principal=narrowing(caller, rec))
    queue: asyncio.Queue[Event | None] = asyncio.Queue()

    async def work(sink: EventSink) -> TurnResult:
        def both(ev: Event) -> None:
            sink(ev)
            queue.put_nowait(ev)

        return await _act(handle, ask, caller, both)

    first_seq = (await st.rt.store.get(sid)).event_count + 1
    if held is not None:
        await held.started(sid, first_seq)

    async def outcome(result: TurnResult | None, error: BaseException | None, last: int) -> None:
        if held is None:
            return
        if last >= first_seq:
            if error is not None:
                why: str | None = _problem_text(error)
            else:
                why = None if result is None else result.error
            # enough to end a replay exactly as this run ended, whatever happened since
            await held.finish(
                200,
                {
                    "agui": True,
                    "status": result.status if result is not None else "failed",
                    "output": None if result is None else result.output,
                    "error": why,
                    "last_seq": last,
                },
            )
        else:
            await held.forget()

    started = st.runs.start(work, outcome=outcome)
    started.task.add_done_callback(lambda _t: queue.put_nowait(None))
    await started.begun()
    if started.task.done() and not started.first.done():
        refused = started.task.exception()
        if refused is not None:
            raise problem_of(refused)
    return sse(_stream(ask.session_id, ask.run_id, started.task, queue))


async def _replay(st: ServerState, rec: IdempotencyRecord, run_id: str) -> AsyncIterator[bytes]:
    """A finished run again: the first request's events (and no later ones), then its end."""
    sid = rec.session_id or ""
    tr = AguiTranslator(sid, run_id)
    yield encode(tr.start()).encode()
    body = rec.body if isinstance(rec.body, dict) else {}
    last = body.get("last_seq")
    if rec.first_seq is None or not isinstance(last, int) or (rec.status_code or 200) >= 400:
        yield encode(tr.finish("failed", error="the first run with this key was refused")).encode()
        return
    approval = None
    question = None
    for ev in await st.rt.store.events(sid, after_seq=rec.first_seq - 1):
        if ev.seq > last:
            break
        if ev.type == EventType.APPROVAL_REQUESTED:
            approval = PendingApproval.from_event(sid, ev.data)
        elif ev.type == EventType.CLARIFY_ASKED:
            question = str(ev.data.get("question", ""))
        out = tr.feed(ev)
        if out:
            yield encode(out).encode()
    status = str(body.get("status") or "failed")
    yield encode(
        tr.finish(
            status,
            output=body.get("output"),
            approval=approval if status == SessionStatus.AWAITING_APPROVAL else None,
            question=question if status == SessionStatus.AWAITING_USER else None,
            error=body.get("error"),
        )
    ).encode()


async def _act(handle: Session, ask: object, caller: Caller, sink: EventSink) -> TurnResult:
    if isinstance(ask, AguiDecision):
        return await handle.decide(
            ask.approval_id, ask.approve, by=caller.principal, reason=ask.reason, on_event=sink
        )
    if isinstance(ask, AguiAnswer):
        return await handle.answer(ask.text, on_event=sink)
    assert isinstance(ask, AguiMessage)
    return await handle.send(ask.text, context=ask.context or None, on_event=sink)


async def _stream(
    sid: str, run_id: str, task: asyncio.Task[TurnResult], queue: asyncio.Queue[Event | None]
) -> AsyncIterator[bytes]:
    tr = AguiTranslator(sid, run_id)
    yield encode(tr.start()).encode()
    while (ev := await queue.get()) is not None:
        out = tr.feed(ev)
        if out:
            yield encode(out).encode()
    try:
        result = task.result()
    except (Exception, asyncio.CancelledError) as exc:
        yield encode(tr.finish("failed", error=_problem_text(exc))).encode()
        return
    question = result.output if result.status == "awaiting_user" else None
    yield encode(
        tr.finish(
            result.status,
            output=result.output,
            approval=result.approval,
            question=question,
            error=result.error,
        )
    ).encode()
