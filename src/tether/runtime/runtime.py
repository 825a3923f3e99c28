"""The runtime: drives sessions step by step and persists after every step.

One *turn* is a user message followed by steps until the agent answers, a
limit is reached or something fails. One *step* is one model call plus the
tool calls it asked for. The session commits to its store after every step
(and, before a tool that is not idempotent runs, commits the intent to run
it), so a process killed at any point leaves a session that any other
process can resume from its last committed step.

Usage::

    async with Runtime(store=await open_store()) as rt:
        result = await rt.run(agent, "Where is my order #W123?")
        print(result.output)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from tether.controls.breaker import Breakers
from tether.controls.honesty import unacknowledged
from tether.controls.retry import Sleep
from tether.exceptions import (
    ApprovalError,
    ConfigError,
    InputRejected,
    InvalidSessionState,
    ModelUnavailable,
    ProviderError,
    RunError,
    SessionConflict,
)
from tether.providers.registry import model_from_spec
from tether.runtime import lease
from tether.runtime.approvals import (
    CLARIFY,
    CLARIFY_SPEC,
    PendingApproval,
    needs_approval,
    parse_reply,
    summarize,
)
from tether.runtime.calls import CallEnv, call_model_chain
from tether.runtime.context import build_request, system_prompt
from tether.runtime.execute import ToolEnv, execute_tool, outcome_unknown
from tether.runtime.ids import new_session_id
from tether.runtime.ports import SessionRecord, SessionStatus, SessionStore
from tether.runtime.state import SessionState
from tether.spec.agent import Agent
from tether.spec.approval import arguments_hash
from tether.spec.events import Event, EventType
from tether.spec.messages import Message, ToolCall, ToolResult, Usage
from tether.spec.model import Model, ModelResponse, ToolSpec
from tether.spec.tools import Tool

__all__ = ["EventSink", "Runtime", "TurnResult"]

log = logging.getLogger("tether.runtime")

EventSink = Callable[[Event], None]

_RESUMABLE = frozenset({SessionStatus.RUNNING, SessionStatus.FAILED})
_ACCEPTS_MESSAGE = frozenset(
    {
        SessionStatus.IDLE,
        SessionStatus.AWAITING_USER,
        SessionStatus.AWAITING_APPROVAL,  # the message is read as the yes/no
        SessionStatus.FAILED,
    }
)


@dataclass(slots=True)
class TurnResult:
    """What one turn ended with.

    ``status`` is the session's status after the turn (``idle`` when the
    agent answered); ``output`` the final answer, if any; ``error`` a
    message a person can act on when the turn failed; ``events`` every
    event of the turn, streamed ones included.
    """

    session_id: str
    status: str
    output: str | None
    usage: Usage
    events: list[Event] = field(default_factory=list)
    error: str | None = None
    #: the approval the session waits for (status ``awaiting_approval``)
    approval: PendingApproval | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class _AgentServices:
    """What the runtime built for one agent version: models, tools, deps."""

    models: tuple[Model, ...]
    tools: dict[str, Tool]
    specs: tuple[ToolSpec, ...]
    system: str
    deps: Any


class Runtime:
    """Drives sessions of any agent against one store.

    - ``store``: a :class:`~tether.runtime.ports.SessionStore`; ``None``
      uses an in-memory store (nothing survives the process).
    - ``clock``: returns Unix time; injected so tests control time.
    - ``lease_ttl``: seconds a session's lease lasts without a commit.
    - ``models``: extra :class:`Model` objects by spec string, used instead
      of building a provider from the string (tests, custom providers).
    - ``close_store``: whether :meth:`aclose` also closes the store and the
      breakers' backend (pass ``False`` when several runtimes share them).
    - ``breakers``: the circuit breakers (:class:`~tether.controls.breaker.Breakers`);
      default: in this process. Pass one built on
      :mod:`tether.store.redis_breakers` to share them between replicas
      (``tether.store.open_breakers()`` does when ``TETHER_REDIS_URL`` is set).
    - ``sleep``, ``rng``: how the runtime waits between retries and draws
      their jitter; injected so tests run retries on a fake clock.
    """

    def __init__(
        self,
        store: SessionStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        lease_ttl: float = 300.0,
        models: dict[str, Model] | None = None,
        close_store: bool = True,
        breakers: Breakers | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if store is None:
            from tether.runtime.memory import InMemoryStore

            store = InMemoryStore()
        self.store = store
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.owner = lease.owner_id()
        self._close_store = close_store
        self.breakers = breakers if breakers is not None else Breakers(clock=clock)
        self.sleep = sleep
        self.rng = rng if rng is not None else random.Random()
        self._models: dict[str, Model] = dict(models or {})
        self._prepared: set[int] = set()
        # Keyed by id() of the Agent / deps factory, with the object itself
        # kept in the entry: while an entry exists its object is alive, so its
        # id cannot be reused by a new object (which would get stale services,
        # or another agent's deps). One entry per distinct object: build agents
        # once, not per request.
        self._services: dict[int, tuple[Agent, _AgentServices]] = {}
        self._deps: dict[int, tuple[Callable[[], Any], Any]] = {}
        #: sessions with a turn in progress in this runtime (they share its lease owner)
        self._active: set[str] = set()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close deps the agents built, the models, and (if owned) the store."""
        for _factory, deps in self._deps.values():
            closer = getattr(deps, "aclose", None) or getattr(deps, "close", None)
            if closer is not None:
                res = closer()
                if asyncio.iscoroutine(res):
                    await res
        self._deps.clear()
        for model in self._models.values():
            aclose = getattr(model, "aclose", None)
            if aclose is not None:
                await aclose()
        if self._close_store:
            await self.breakers.aclose()
            await self.store.aclose()

    # --- public API -------------------------------------------------------

    async def run(
        self,
        agent: Agent,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        on_event: EventSink | None = None,
        metadata: dict[str, Any] | None = None,
        new_session_id: str | None = None,
    ) -> TurnResult:
        """Send ``message`` to a session (a new one unless ``session_id``) and run the turn.

        ``metadata`` (JSON-serialisable) is recorded when a new session is
        created, e.g. the agent reference the CLI loaded, so ``tether resume``
        can find the agent again. ``new_session_id`` names the new session
        instead of a generated id: a caller that dies before ``run`` returns
        (the first turn may stop for an approval) can still find its session.
        An id that exists raises ``SessionConflict``; nothing is run then.
        """
        text = self._check_input(agent, message)
        if new_session_id is not None:
            if session_id is not None:
                raise ConfigError("pass session_id (to continue) or new_session_id, not both")
            if not new_session_id.strip() or len(new_session_id) > 255:
                raise ConfigError("new_session_id must be 1 to 255 characters, not blank")
        events: list[Event] = []
        sink = _tee(events, on_event)
        turn = await self._open(
            agent,
            session_id,
            user_id,
            sink,
            new_message=True,
            metadata=metadata,
            new_id=new_session_id,
        )
        try:
            if turn.state.status == SessionStatus.AWAITING_APPROVAL:
                return await turn.reply_to_approval(text, events)
            asked = turn.open_clarify()
            if asked is not None:
                return await turn.answer_clarify(asked, text, events)
            await turn.add_user_message(text)
            return await turn.run_steps(events)
        finally:
            await turn.close()

    async def decide(
        self,
        agent: Agent,
        session_id: str,
        approval_id: str,
        *,
        approve: bool,
        by: str,
        roles: frozenset[str] | set[str] = frozenset(),
        reason: str | None = None,
        on_event: EventSink | None = None,
    ) -> TurnResult:
        """Approve or deny the call a session waits on, then continue its turn.

        ``approval_id`` must be the pending request's (an older one is
        stale); ``by`` is who decided (recorded). In ``operator`` mode
        ``roles`` must hold the policy's ``approver_role``. An approval past
        its expiry is refused: the call is not run and the model is told.
        Raises :class:`~tether.exceptions.ApprovalError` for a stale or
        unauthorised decision (nothing is recorded then).
        """
        events: list[Event] = []
        sink = _tee(events, on_event)
        turn = await self._open(agent, session_id, None, sink, new_message=False)
        try:
            return await turn.decide(
                approval_id,
                approve=approve,
                by=by,
                roles=frozenset(roles),
                reason=reason,
                events=events,
            )
        finally:
            await turn.close()

    async def pending_approval(self, session_id: str) -> PendingApproval | None:
        """The approval a stored session waits for, if any (read-only)."""
        state = await self.load(session_id)
        if state.status != SessionStatus.AWAITING_APPROVAL or state.pending_approval is None:
            return None
        return PendingApproval.from_event(session_id, state.pending_approval)

    async def resume(
        self, agent: Agent, session_id: str, *, on_event: EventSink | None = None
    ) -> TurnResult:
        """Continue a turn that was interrupted (crash, kill) or failed, from its last step."""
        events: list[Event] = []
        sink = _tee(events, on_event)
        turn = await self._open(agent, session_id, None, sink, new_message=False)
        try:
            if turn.state.status not in _RESUMABLE:
                raise InvalidSessionState(
                    f"session {session_id} is {turn.state.status!r}; only a running "
                    "(interrupted) or failed session can be resumed. Send it a new "
                    "message instead."
                )
            turn.emit(
                EventType.SESSION_RESUMED,
                {"from_step": turn.state.step, "owner": self.owner},
            )
            if turn.state.status == SessionStatus.FAILED:
                turn.emit(
                    EventType.SESSION_STATUS, {"status": SessionStatus.RUNNING, "reason": "resumed"}
                )
            return await turn.run_steps(events)
        finally:
            await turn.close()

    async def stream(
        self,
        agent: Agent,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AsyncIterator[Event]:
        """Like :meth:`run`, but yield every event as it happens (text deltas included)."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        task = asyncio.create_task(
            self.run(
                agent,
                message,
                session_id=session_id,
                user_id=user_id,
                on_event=queue.put_nowait,
                metadata=metadata,
            )
        )
        task.add_done_callback(lambda _t: queue.put_nowait(None))
        try:
            while (ev := await queue.get()) is not None:
                yield ev
            await task  # re-raise what the turn raised
        finally:
            if not task.done():
                task.cancel()

    async def load(self, session_id: str) -> SessionState:
        """The current state of a stored session (read-only; no lease taken)."""
        record = await self.store.get(session_id)
        state = SessionState.from_events(session_id, await self.store.events(session_id))
        state.status = record.status
        return state

    # --- internals --------------------------------------------------------

    def _check_input(self, agent: Agent, message: str) -> str:
        if not isinstance(message, str):
            raise InputRejected(f"a user message must be text, got {type(message).__name__}")
        text = message.strip()
        if not text:
            raise InputRejected("the message is empty; type what you need")
        limit = agent.limits.max_input_chars
        if len(text) > limit:
            raise InputRejected(
                f"the message has {len(text):,} characters; this agent accepts at most "
                f"{limit:,}. Shorten it or attach the document through a tool."
            )
        return text

    def _model(self, ref: str | Model, timeout: float) -> Model:
        if not isinstance(ref, str):
            return ref
        model = self._models.get(ref)
        if model is None:
            model = model_from_spec(ref, timeout=timeout)
            self._models[ref] = model
        return model

    async def _prepare_model(self, model: Model) -> None:
        """One-time set-up of ``model`` before its first call (:func:`_prepare_once`)."""
        if id(model) not in self._prepared:
            await _prepare_once(model)
            self._prepared.add(id(model))

    def _services_for(self, agent: Agent) -> _AgentServices:
        entry = self._services.get(id(agent))
        if entry is not None and entry[0] is agent:
            return entry[1]
        deps = None
        factory = agent.deps
        if factory is not None:
            made = self._deps.get(id(factory))
            if made is not None and made[0] is factory:
                deps = made[1]
            else:
                deps = factory()
                self._deps[id(factory)] = (factory, deps)
        svc = _AgentServices(
            models=tuple(self._model(m, agent.limits.model_timeout) for m in agent.models),
            tools={t.name: t for t in agent.tools},
            specs=tuple(t.spec for t in agent.tools) + _clarify_spec(agent),
            system=system_prompt(agent),
            deps=deps,
        )
        self._services[id(agent)] = (agent, svc)
        return svc

    async def _open(
        self,
        agent: Agent,
        session_id: str | None,
        user_id: str | None,
        sink: EventSink,
        *,
        new_message: bool,
        metadata: dict[str, Any] | None = None,
        new_id: str | None = None,
    ) -> _Turn:
        svc = self._services_for(agent)
        now = self.clock()
        if session_id is None:
            sid = new_id if new_id is not None else new_session_id()
            if new_id is not None and new_id in self._active:
                raise SessionConflict(f"session {new_id} already has a turn in this process")
            record = SessionRecord(
                id=sid,
                agent=agent.name,
                agent_version=agent.version,
                user_id=user_id,
                status=SessionStatus.IDLE,
                created_at=now,
                updated_at=now,
            )
            state = SessionState(
                session_id=sid, agent=agent.name, agent_version=agent.version, user_id=user_id
            )
            turn = _Turn(self, agent, svc, record, state, sink)
            created: dict[str, Any] = {
                "agent": agent.name,
                "version": agent.version,
                "user_id": user_id,
                "models": [m if isinstance(m, str) else m.name for m in agent.models],
            }
            if metadata:
                created["metadata"] = metadata
            turn.emit(EventType.SESSION_CREATED, created)
            turn.stored = False  # its first commit creates the row (with the first message)
            self._active.add(sid)
            return turn
        if session_id in self._active:
            raise SessionConflict(
                f"session {session_id} already has a turn in progress in this process; "
                "wait for it to finish before sending another message"
            )
        record, stored = await self._acquire(session_id, now)
        self._active.add(session_id)
        try:
            if record.agent != agent.name:
                raise ConfigError(
                    f"session {session_id} belongs to agent {record.agent!r}, not "
                    f"{agent.name!r}; load the agent it was started with"
                )
            if record.agent_version != agent.version:
                log.warning(
                    "session %s started on %s v%s; continuing with v%s",
                    session_id,
                    record.agent,
                    record.agent_version,
                    agent.version,
                )
            state = SessionState.from_events(session_id, stored)
            state.status = record.status
            if new_message and record.status not in _ACCEPTS_MESSAGE:
                hint = (
                    f"it was interrupted mid-turn; run `tether resume {session_id}` first"
                    if record.status == SessionStatus.RUNNING
                    else "it has ended; start a new session"
                )
                raise InvalidSessionState(
                    f"session {session_id} is {record.status!r} and cannot take a new "
                    f"message: {hint}"
                )
        except BaseException:
            self._active.discard(session_id)
            await self.store.release(session_id, owner=self.owner)
            raise
        return _Turn(self, agent, svc, record, state, sink)

    async def _acquire(self, session_id: str, now: float) -> tuple[SessionRecord, list[Event]]:
        try:
            return await self.store.acquire(
                session_id, owner=self.owner, now=now, lease_ttl=self.lease_ttl
            )
        except SessionConflict as exc:
            if exc.holder and lease.holder_is_dead(exc.holder):
                log.warning(
                    "session %s: lease holder %s is no longer running; taking over",
                    session_id,
                    exc.holder,
                )
                return await self.store.acquire(
                    session_id,
                    owner=self.owner,
                    now=now,
                    lease_ttl=self.lease_ttl,
                    replace=exc.holder,
                )
            raise


async def _prepare_once(model: Model) -> None:
    """Let a model do its one-time set-up (a local model loads its weights).

    This runs before the first call and outside the per-call timeout, so a
    model that takes a minute to load is not reported as unavailable; the
    model bounds its own set-up (``LocalModel.load_timeout``).
    """
    prepare = getattr(model, "prepare", None)
    if prepare is not None:
        await prepare()


def _last_question(events: list[Event]) -> str | None:
    for ev in reversed(events):
        if ev.type == EventType.CLARIFY_ASKED:
            return str(ev.data["question"])
    return None


def _clarify_spec(agent: Agent) -> tuple[ToolSpec, ...]:
    """The built-in clarify tool, unless turned off or the agent has its own."""
    if not agent.clarify or agent.tool(CLARIFY) is not None:
        return ()
    return (CLARIFY_SPEC,)


def _tee(events: list[Event], on_event: EventSink | None) -> EventSink:
    if on_event is None:
        return events.append

    def sink(ev: Event) -> None:
        events.append(ev)
        on_event(ev)

    return sink


class _Turn:
    """One turn of one session, holding its lease. Not shared between tasks."""

    __slots__ = (
        "agent",
        "call_env",
        "degraded_from",
        "failed_tools",
        "latency_ms",
        "pending",
        "record",
        "released",
        "rt",
        "sink",
        "state",
        "stored",
        "svc",
        "tool_env",
    )

    def __init__(
        self,
        rt: Runtime,
        agent: Agent,
        svc: _AgentServices,
        record: SessionRecord,
        state: SessionState,
        sink: EventSink,
    ) -> None:
        self.rt = rt
        self.agent = agent
        self.svc = svc
        self.record = record
        self.state = state
        self.sink = sink
        self.pending: list[Event] = []
        self.latency_ms = 0.0
        #: whether the session row exists in the store yet
        self.stored = True
        #: whether the lease was already given back by the turn's last commit
        self.released = False
        #: the primary model's name when the last answer came from a fallback
        self.degraded_from: str | None = None
        #: tools whose calls ended in an error during this turn
        self.failed_tools: list[str] = []
        #: what the reliability layer needs, built at the first model / tool call
        self.call_env: CallEnv | None = None
        self.tool_env: ToolEnv | None = None

    # events ---------------------------------------------------------------

    def emit(
        self,
        type_: str,
        data: dict[str, Any],
        usage: Usage | None = None,
        message: Message | None = None,
    ) -> Event:
        """Create an event, fold it into the state, queue it for the next commit."""
        st = self.state
        st.event_count += 1
        ev = Event(type_, st.session_id, st.step, self.rt.clock(), data, usage, st.event_count)
        st.apply(ev, message)
        self.pending.append(ev)
        self.sink(ev)
        return ev

    def take_pending(self) -> list[Event]:
        out, self.pending = self.pending, []
        return out

    async def commit(self, *, release: bool = False) -> None:
        """Write the queued events and the row in one transaction.

        Renews the lease, or with ``release=True`` (the turn's last commit)
        gives it back in the same transaction.
        """
        st, rec = self.state, self.record
        rec.status = st.status
        rec.step = st.step
        rec.event_count = st.event_count
        rec.usage = st.usage
        rec.last_error = st.last_error
        rec.updated_at = self.rt.clock()
        if not self.stored:
            # A conflict (the id exists) writes nothing: the pending events are
            # dropped with it, so close() does not try to create it again.
            await self.rt.store.create(
                rec, self.take_pending(), owner=self.rt.owner, lease_ttl=self.rt.lease_ttl
            )
            self.stored = True
            return
        await self.rt.store.commit(
            rec,
            self.take_pending(),
            owner=self.rt.owner,
            lease_ttl=self.rt.lease_ttl,
            release=release,
        )
        self.released = release

    async def close(self) -> None:
        """Commit anything left (best effort) and release the lease."""
        try:
            if self.pending:
                await self.commit()
        except RunError:
            log.exception("session %s: final commit failed", self.state.session_id)
        finally:
            self.rt._active.discard(self.state.session_id)
            if self.stored and not self.released:
                await self.rt.store.release(self.state.session_id, owner=self.rt.owner)

    # the turn -------------------------------------------------------------

    async def add_user_message(self, text: str) -> None:
        self.emit(EventType.USER_MESSAGE, {"text": text})
        await self.commit()

    async def run_steps(self, events: list[Event]) -> TurnResult:
        st = self.state
        limits = self.agent.limits
        started_step = st.step
        turn_usage = Usage()
        # A resumed turn may stop between a tool call's intent and its result,
        # and a decided approval leaves the rest of its step to run.
        if st.open_calls and not await self._run_open_calls():
            return await self._pause(events, turn_usage)
        while st.step - started_step < limits.max_steps_per_turn:
            st.step += 1
            try:
                response = await self._call_model()
            except ModelUnavailable as exc:
                return await self._fail(str(exc), events, turn_usage)
            except ProviderError as exc:
                return await self._fail(f"the model refused the request: {exc}", events, turn_usage)
            turn_usage = turn_usage + response.usage
            msg = response.message
            calls = msg.tool_calls
            self.emit(
                EventType.MODEL_RESPONSE,
                {
                    "message": msg.to_dict(),
                    "model": response.model,
                    "stop_reason": response.stop_reason,
                    "latency_ms": self.latency_ms,
                }
                | ({"degraded": True, "primary": self.degraded_from} if self.degraded_from else {}),
                response.usage,
                msg,
            )
            if not calls:
                missed = unacknowledged(msg.text, self.failed_tools)
                if missed:
                    log.warning(
                        "session %s: the answer does not mention the failure of %s",
                        st.session_id,
                        ", ".join(missed),
                    )
                    self.emit(EventType.UNACKNOWLEDGED_FAILURE, {"tools": missed})
                self.emit(EventType.TURN_COMPLETED, {"output": msg.text})
                await self.commit(release=True)
                return TurnResult(st.session_id, st.status, msg.text, turn_usage, events)
            if not await self._run_open_calls():
                return await self._pause(events, turn_usage)
        return await self._fail(
            f"the agent took {limits.max_steps_per_turn} steps without answering; "
            "the turn was stopped (raise Limits.max_steps_per_turn if that is expected)",
            events,
            turn_usage,
        )

    async def _call_model(self) -> ModelResponse:
        """One model answer through the reliability layer (retries, breakers, fallback)."""
        st = self.state
        request = build_request(self.agent, st.messages, self.svc.specs, system=self.svc.system)
        env = self.call_env
        if env is None:
            env = self.call_env = CallEnv(
                breakers=self.rt.breakers,
                sleep=self.rt.sleep,
                rng=self.rt.rng,
                emit=self.emit,
                sink=self.sink,
                session_id=st.session_id,
                step=st.step,
                clock=self.rt.clock,
                prepare=self.rt._prepare_model,
                prepared=self.rt._prepared,
            )
        env.step = st.step
        answer = await call_model_chain(self.svc.models, request, self.agent, env)
        self.latency_ms = answer.latency_ms
        response = answer.response
        if answer.index > 0:
            msg = response.message
            self.degraded_from = self.svc.models[0].name
            response = ModelResponse(
                message=Message(
                    role=msg.role,
                    text=msg.text,
                    tool_calls=msg.tool_calls,
                    results=msg.results,
                    model=msg.model or answer.model.name,
                    degraded=True,
                    metadata=msg.metadata,
                ),
                usage=response.usage,
                model=response.model,
                stop_reason=response.stop_reason,
            )
        else:
            self.degraded_from = None
        return response

    async def _run_open_calls(self) -> bool:
        """Run the step's calls that have no result yet, in order.

        Returns ``False`` if one of them waits for approval.

        ``tool.started`` is emitted right before each call runs. Before a tool
        that is not idempotent runs, everything so far (its intent included) is
        committed, so after a crash the runtime knows exactly which unsafe call
        may have run and never runs it a second time: such a call, found
        started but without a result, is reported as "outcome unknown" and an
        operator is alerted. A call that needs approval and has none is not
        run: the approval is requested and the turn pauses there.
        """
        st = self.state
        cap = self.agent.limits.max_tool_calls_per_step
        tools = self.svc.tools
        done = st.partial_results
        gate = self.agent.approval.enabled
        for position, call in enumerate(list(st.open_calls.values())):
            if call.id in done:
                continue
            if position >= cap:
                result = ToolResult(
                    call.id,
                    call.name,
                    f"not executed: at most {cap} tool calls are run per step; "
                    "call the remaining tools one at a time",
                    is_error=True,
                )
                self._finish(result, 0.0, None)
                continue
            tool = tools.get(call.name)
            if tool is None and call.name == CLARIFY and self.agent.clarify:
                question = str(call.arguments.get("question") or "").strip()
                if question:
                    self.emit(EventType.CLARIFY_ASKED, {"call_id": call.id, "question": question})
                    self.emit(
                        EventType.SESSION_STATUS,
                        {"status": SessionStatus.AWAITING_USER, "reason": "clarify"},
                    )
                    return False
            if tool is not None and call.id in st.started and not tool.idempotent:
                self._alert(call, "outcome unknown: it started but never reported a result")
                self._finish(outcome_unknown(call), 0.0, None)
                continue
            if (
                gate
                and tool is not None
                and call.id not in st.approved
                and needs_approval(self.agent, tool, call)
            ):
                if st.pending_approval is None:
                    self._request_approval(call, tool)
                return False
            if tool is not None:
                self.emit(
                    EventType.TOOL_STARTED,
                    {
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                        "idempotency_key": f"{st.session_id}:{st.step}:{call.id}",
                    },
                )
                if not tool.idempotent:
                    await self.commit()
            await self._execute(call)
        await self.commit()
        return True

    def _request_approval(self, call: ToolCall, tool: Tool) -> None:
        st = self.state
        policy = self.agent.approval
        last = st.messages[-1] if st.messages else None
        explanation = last.text if last is not None and last.role == "assistant" else ""
        self.emit(
            EventType.APPROVAL_REQUESTED,
            {
                "approval_id": f"{st.session_id}.{st.event_count + 1}",
                "call_id": call.id,
                "tool": call.name,
                "arguments": call.arguments,
                "args_hash": arguments_hash(call.name, call.arguments),
                "summary": summarize(tool, call),
                "explanation": explanation,
                "mode": policy.mode,
                "expires_at": self.rt.clock() + policy.expires_after,
            },
        )
        self.emit(
            EventType.SESSION_STATUS,
            {"status": SessionStatus.AWAITING_APPROVAL, "reason": f"{call.name} needs approval"},
        )

    async def decide(
        self,
        approval_id: str,
        *,
        approve: bool,
        by: str,
        roles: frozenset[str],
        reason: str | None,
        events: list[Event],
    ) -> TurnResult:
        st = self.state
        pending = st.pending_approval
        if st.status != SessionStatus.AWAITING_APPROVAL or pending is None:
            raise InvalidSessionState(
                f"session {st.session_id} is {st.status!r} and waits for no approval"
            )
        if pending["approval_id"] != approval_id:
            raise ApprovalError(
                f"approval {approval_id} is not the one session {st.session_id} waits for "
                f"({pending['approval_id']}): it is stale or unknown. Decide on the pending one"
            )
        policy = self.agent.approval
        if pending.get("mode") == "operator" and policy.approver_role not in roles:
            raise ApprovalError(
                f"{by} cannot decide approval {approval_id}: it needs the "
                f"{policy.approver_role!r} role (operator approval)"
            )
        call = st.open_calls.get(pending["call_id"])
        if call is None or arguments_hash(call.name, call.arguments) != pending["args_hash"]:
            raise ApprovalError(  # the log itself would have to be inconsistent
                f"approval {approval_id} does not match the call it was requested for"
            )
        if self.rt.clock() > float(pending["expires_at"]):
            self._expire(pending, call, by)
        else:
            self.emit(
                EventType.APPROVAL_DECIDED,
                {"approval_id": approval_id, "approved": approve, "by": by, "reason": reason},
            )
            self._running("approval decided")
            if not approve:
                why = f" ({reason})" if reason else ""
                who = (
                    "the operator reviewing it" if pending.get("mode") == "operator" else "the user"
                )
                self._finish(
                    ToolResult(
                        call.id,
                        call.name,
                        f"not done: {who} declined {pending['summary']}{why}. Do not do it; "
                        "tell the user, and ask what they would like instead.",
                    ),
                    0.0,
                    None,
                )
        await self.commit()
        return await self.run_steps(events)

    def _expire(self, pending: dict[str, Any], call: ToolCall, by: str) -> None:
        """The request lapsed: the call does not run and the model is told."""
        self.emit(EventType.APPROVAL_EXPIRED, {"approval_id": pending["approval_id"], "by": by})
        self._running("approval expired")
        self._finish(
            ToolResult(
                call.id,
                call.name,
                f"not done: the request to approve {pending['summary']} expired before "
                "anyone decided, so it did not run. Ask the user again if it is still wanted.",
            ),
            0.0,
            None,
        )

    async def reply_to_approval(self, text: str, events: list[Event]) -> TurnResult:
        """A chat message while an approval is pending: a strict yes or no decides; else re-ask."""
        st = self.state
        assert st.pending_approval is not None
        pending = PendingApproval.from_event(st.session_id, st.pending_approval)
        call = st.open_calls.get(pending.call_id)
        if call is not None and self.rt.clock() > pending.expires_at:
            # Too late to ask again: the request lapses now, and the turn goes on.
            self._expire(st.pending_approval, call, "user")
            await self.commit()
            return await self.run_steps(events)
        answer = parse_reply(text) if pending.mode == "user" else None
        if answer is None:
            self.emit(EventType.APPROVAL_REASKED, {"text": text})
            return await self._pause(events, Usage())
        by = f"user:{st.user_id}" if st.user_id else "user"
        return await self.decide(
            pending.id, approve=answer, by=by, roles=frozenset(), reason=None, events=events
        )

    def _running(self, reason: str) -> None:
        self.emit(EventType.SESSION_STATUS, {"status": SessionStatus.RUNNING, "reason": reason})

    async def _pause(self, events: list[Event], usage: Usage) -> TurnResult:
        """End the turn waiting for a decision (an approval) or an answer (clarify)."""
        st = self.state
        await self.commit(release=True)
        if st.pending_approval is None:
            question = _last_question(events) or st.last_output
            return TurnResult(st.session_id, st.status, question, usage, events)
        pending = PendingApproval.from_event(st.session_id, st.pending_approval)
        return TurnResult(
            st.session_id, st.status, pending.question(), usage, events, approval=pending
        )

    def open_clarify(self) -> ToolCall | None:
        """The unanswered ``clarify`` call the session waits on, if any."""
        if self.state.status != SessionStatus.AWAITING_USER:
            return None
        for call in self.state.unanswered_calls():
            if call.name == CLARIFY and call.name not in self.svc.tools:
                return call
        return None

    async def answer_clarify(self, call: ToolCall, text: str, events: list[Event]) -> TurnResult:
        """The user's message is the clarify call's result; the turn goes on."""
        self.emit(EventType.SESSION_STATUS, {"status": SessionStatus.RUNNING, "reason": "answered"})
        self._finish(ToolResult(call.id, call.name, f"The user answered: {text}"), 0.0, None)
        await self.commit()
        return await self.run_steps(events)

    def _alert(self, call: ToolCall, reason: str) -> None:
        sid = self.state.session_id
        log.error("session %s: %s: %s; a person must check", sid, call.name, reason)
        data = {"reason": reason, "call_id": call.id, "tool": call.name}
        self.emit(EventType.OPERATOR_ALERT, data)

    async def _execute(self, call: ToolCall) -> None:
        st = self.state
        t0 = time.perf_counter()
        result, new_vars = await execute_tool(
            self.svc.tools,
            call,
            session_id=st.session_id,
            step=st.step,
            user_id=st.user_id,
            vars=st.vars,
            deps=self.svc.deps,
            env=self._tool_env(),
        )
        self._finish(result, (time.perf_counter() - t0) * 1000, new_vars)

    def _tool_env(self) -> ToolEnv:
        env = self.tool_env
        if env is None:
            env = self.tool_env = ToolEnv(
                agent=self.agent.name,
                breakers=self.rt.breakers,
                breaker=self.agent.breaker,
                retry=self.agent.retry,
                sleep=self.rt.sleep,
                rng=self.rt.rng,
                emit=self.emit,
            )
        return env

    def _finish(self, result: ToolResult, ms: float, new_vars: dict[str, Any] | None) -> None:
        data: dict[str, Any] = {
            "call_id": result.call_id,
            "name": result.name,
            "content": result.content,
            "is_error": result.is_error,
            "duration_ms": round(ms, 3),
        }
        if new_vars:
            data["vars"] = new_vars
        if result.is_error:
            self.failed_tools.append(result.name)
        self.emit(EventType.TOOL_FINISHED, data)

    async def _fail(self, reason: str, events: list[Event], usage: Usage) -> TurnResult:
        log.error("session %s failed: %s", self.state.session_id, reason)
        self.emit(EventType.SESSION_STATUS, {"status": SessionStatus.FAILED, "reason": reason})
        await self.commit(release=True)
        st = self.state
        return TurnResult(st.session_id, st.status, None, usage, events, error=reason)
