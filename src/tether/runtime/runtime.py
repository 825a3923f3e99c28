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
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from tether.controls.breaker import Breakers
from tether.controls.retry import Sleep
from tether.exceptions import (
    ConfigError,
    InputRejected,
    InvalidSessionState,
    RateLimited,
    SessionConflict,
)
from tether.providers.registry import model_from_spec
from tether.runtime import lease, turn_approvals
from tether.runtime.approvals import (
    CLARIFY,
    CLARIFY_SPEC,
    PendingApproval,
)
from tether.runtime.context import system_prompt
from tether.runtime.ids import new_session_id
from tether.runtime.leak import canary_for, canary_line
from tether.runtime.ports import SessionRecord, SessionStatus, SessionStore
from tether.runtime.state import SessionState
from tether.runtime.turn import AgentServices, EventSink, Turn, TurnResult
from tether.spec.agent import Agent
from tether.spec.events import Event, EventType
from tether.spec.guard import GuardPolicy
from tether.spec.model import Model, ToolSpec
from tether.spec.pricing import Price, PriceTable, load_prices

if TYPE_CHECKING:  # the limits library loads only when a limiter is used
    from tether.controls.guards import Detector
    from tether.controls.ratelimit import RateLimiter

__all__ = ["EventSink", "Runtime", "TurnResult"]

log = logging.getLogger("tether.runtime")

_RESUMABLE = frozenset({SessionStatus.RUNNING, SessionStatus.FAILED})
_ACCEPTS_MESSAGE = frozenset(
    {
        SessionStatus.IDLE,
        SessionStatus.AWAITING_USER,
        SessionStatus.AWAITING_APPROVAL,  # the message is read as the yes/no
        SessionStatus.FAILED,
    }
)


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
    - ``prices``: the :class:`~tether.spec.pricing.PriceTable` that prices
      every model call (recorded as the event's ``cost``); default: the
      built-in table, or the file ``TETHER_PRICES`` names.
    - ``limiter``: a :class:`~tether.controls.ratelimit.RateLimiter` enforcing
      per-user and per-tenant sessions per hour, tokens per day and
      concurrent sessions (``tether.store.open_rate_limiter`` shares one
      through Redis); ``None``: no such limits. A refused request raises
      :class:`~tether.exceptions.RateLimited` before anything is stored.
    - ``detector``: the prompt-injection detector agents' ``guard`` policies
      use (default: :class:`~tether.controls.guards.InjectionDetector`).
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
        prices: PriceTable | None = None,
        limiter: RateLimiter | None = None,
        detector: Detector | None = None,
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
        self.prices = prices if prices is not None else load_prices()
        self._price_cache: dict[str, Price | None] = {}
        self.limiter = limiter
        self._detector = detector
        #: the key of the boundary markers around untrusted content (see runtime.taint)
        self.spotlight_secret = secrets.token_bytes(16)
        self._models: dict[str, Model] = dict(models or {})
        self._prepared: set[int] = set()
        # Keyed by id() of the Agent / deps factory, with the object itself
        # kept in the entry: while an entry exists its object is alive, so its
        # id cannot be reused by a new object (which would get stale services,
        # or another agent's deps). One entry per distinct object: build agents
        # once, not per request.
        self._services: dict[int, tuple[Agent, AgentServices]] = {}
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
            if self.limiter is not None:
                await self.limiter.aclose()
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
        tenant_id: str | None = None,
        scopes: Iterable[str] | None = None,
        context: dict[str, Any] | None = None,
    ) -> TurnResult:
        """Send ``message`` to a session (a new one unless ``session_id``) and run the turn.

        ``metadata`` (JSON-serialisable) is recorded when a new session is
        created, e.g. the agent reference the CLI loaded, so ``tether resume``
        can find the agent again. ``new_session_id`` names the new session
        instead of a generated id: a caller that dies before ``run`` returns
        (the first turn may stop for an approval) can still find its session.
        An id that exists raises ``SessionConflict``; nothing is run then.
        ``user_id`` and ``tenant_id`` are recorded on a new session and
        checked against the runtime's per-user and per-tenant rate limits.
        ``scopes`` are what the caller holds: tools that require a scope the
        caller lacks (``@tool(scopes=...)``) are not offered to the model and
        not run (``None``: a trusted caller, every tool). ``context``
        (JSON-serialisable) is data about the session from your application
        (the customer's plan, their locale): it is recorded, merged into
        earlier context, and shown to the model in a delimited data block;
        the system prompt never changes with it.
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
            tenant_id=tenant_id,
        )
        turn.restrict(scopes)
        try:
            if self.limiter is not None:
                await self._limit(turn, new_session=session_id is None, new_message=True)
            if context:
                turn.emit(EventType.CONTEXT_SET, {"values": dict(context)})
            if agent.guard is not None:
                text = self._guard_input(turn, text, agent)
            if turn.state.status == SessionStatus.AWAITING_APPROVAL:
                return await turn_approvals.reply_to_approval(turn, text, events)
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
        scopes: Iterable[str] | None = None,
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
        turn.restrict(scopes)
        try:
            if self.limiter is not None:
                await self._limit(turn, new_session=False, new_message=False)
            return await turn_approvals.decide(
                turn,
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
        self,
        agent: Agent,
        session_id: str,
        *,
        on_event: EventSink | None = None,
        scopes: Iterable[str] | None = None,
    ) -> TurnResult:
        """Continue a turn that was interrupted (crash, kill) or failed, from its last step."""
        events: list[Event] = []
        sink = _tee(events, on_event)
        turn = await self._open(agent, session_id, None, sink, new_message=False)
        turn.restrict(scopes)
        try:
            if self.limiter is not None:
                await self._limit(turn, new_session=False, new_message=False)
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
        tenant_id: str | None = None,
        scopes: Iterable[str] | None = None,
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
                tenant_id=tenant_id,
                scopes=scopes,
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

    @property
    def detector(self) -> Detector:
        """The prompt-injection detector (built on first use: the rules compile then)."""
        if self._detector is None:
            from tether.controls.guards import InjectionDetector

            self._detector = InjectionDetector()
        return self._detector

    def guard(self, text: str, source: str, policy: GuardPolicy) -> dict[str, Any] | None:
        """Scan ``text`` as ``source``: ``None`` if it passes, else the decision as event data."""
        from tether.controls.guards import apply_policy

        src: Literal["user", "tool"] = "tool" if source == "tool" else "user"
        decision = apply_policy(self.detector.scan(text, src), policy, src)
        if decision.action == "allow":
            return None
        r = decision.result
        log.warning(
            "prompt injection suspected in %s (%s, score %.2f): %s",
            "tool output" if src == "tool" else "user input",
            ", ".join(r.categories),
            r.score,
            decision.action,
        )
        return {
            "source": src,
            "action": decision.action,
            "score": round(r.score, 4),
            "categories": list(r.categories),
            "decoded_by": list(r.decoded_by),
            "message": decision.message,
            "content": text[:2000],
        }

    def _guard_input(self, turn: Turn, text: str, agent: Agent) -> str:
        """Scan a user message by the agent's guard policy: refuse, record, or tag it."""
        assert agent.guard is not None
        decision = self.guard(text, "user", agent.guard)
        if decision is None:
            return text
        if decision["action"] == "block":
            raise InputRejected(str(decision["message"]))
        turn.emit(EventType.GUARD_FLAGGED, decision)
        if decision["action"] == "tag":
            return f"{decision['message']}\n{text}"
        return text

    async def _limit(self, turn: Turn, *, new_session: bool, new_message: bool) -> None:
        """Check the per-user and per-tenant limits before a turn stores anything.

        A message to a user whose daily tokens are spent is refused, a turn
        takes a concurrency slot (given back when it closes), and a new
        session counts against sessions per hour, last, so a refusal by an
        earlier check does not use one up. On refusal nothing of the turn is
        stored (a new session is not created) and ``RateLimited`` propagates.
        """
        limiter = self.limiter
        assert limiter is not None
        st = turn.state
        try:
            if new_message:
                await limiter.check_tokens(st.user_id, st.tenant_id)
            turn.slots = await limiter.acquire_slots(
                st.user_id, st.tenant_id, f"{st.session_id}:{self.owner}"
            )
            if new_session:
                await limiter.admit_session(st.user_id, st.tenant_id)
        except RateLimited as exc:
            log.info("session %s: %s", st.session_id, exc)
            raise

    def price_of(self, model: str) -> Price | None:
        """The price of ``model`` in this runtime's table (``None``: unpriced)."""
        try:
            return self._price_cache[model]
        except KeyError:
            price = self._price_cache[model] = self.prices.lookup(model)
            # A bare name (no "provider:") is a custom or test model: say nothing.
            if price is None and ":" in model:
                log.warning(
                    "no price for model %s: its calls are recorded at $0; add it to the "
                    "price table (TETHER_PRICES) to count its cost",
                    model,
                )
            return price

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

    def _services_for(self, agent: Agent) -> AgentServices:
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
        canary = canary_for(self.spotlight_secret, agent.name, agent.version)
        svc = AgentServices(
            models=tuple(self._model(m, agent.limits.model_timeout) for m in agent.models),
            tools={t.name: t for t in agent.tools},
            specs=tuple(t.spec for t in agent.tools) + _clarify_spec(agent),
            system=f"{system_prompt(agent)}{canary_line(canary)}\n",
            deps=deps,
            canary=canary,
            untrusted_tools=frozenset(t.name for t in agent.tools if t.untrusted_output),
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
        tenant_id: str | None = None,
    ) -> Turn:
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
                tenant_id=tenant_id,
            )
            state = SessionState(
                session_id=sid,
                agent=agent.name,
                agent_version=agent.version,
                user_id=user_id,
                tenant_id=tenant_id,
            )
            turn = Turn(self, agent, svc, record, state, sink)
            created: dict[str, Any] = {
                "agent": agent.name,
                "version": agent.version,
                "user_id": user_id,
                "models": [m if isinstance(m, str) else m.name for m in agent.models],
            }
            if tenant_id is not None:
                created["tenant_id"] = tenant_id
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
                if record.status == SessionStatus.RUNNING:
                    hint = f"it was interrupted mid-turn; run `tether resume {session_id}` first"
                elif record.status == SessionStatus.BUDGET_EXHAUSTED:
                    hint = (
                        f"it has used its token budget ({record.usage.total_tokens:,} tokens) "
                        "and has ended; start a new session"
                    )
                else:
                    hint = "it has ended; start a new session"
                raise InvalidSessionState(
                    f"session {session_id} is {record.status!r} and cannot take a new "
                    f"message: {hint}"
                )
        except BaseException:
            self._active.discard(session_id)
            await self.store.release(session_id, owner=self.owner)
            raise
        return Turn(self, agent, svc, record, state, sink)

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
