"""The runtime: drives sessions step by step and persists after every step.

One *turn* is a user message followed by steps until the agent answers, a
limit is reached or something fails. One *step* is one model call plus the
tool calls it asked for. The session commits to its store after every step
(and, before a tool that is not idempotent runs, commits the intent to run
it), so a process killed at any point leaves a session that any other
process can resume from its last committed step.

Usage::

    async with Runtime(store=await open_store()) as rt:
        session = rt.session(agent, principal=Principal(user="u1", scopes={"orders"}))
        result = await session.send("Where is my order #W123?")
        print(result.output)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from tether.controls.breaker import Breakers
from tether.controls.retry import Sleep
from tether.exceptions import (
    ConfigError,
    InputRejected,
    InvalidSessionState,
    RateLimited,
    SessionConflict,
    ShuttingDown,
)
from tether.runtime import lease
from tether.runtime.approvals import PendingApproval
from tether.runtime.bus import EventBus
from tether.runtime.caller import AgentServices, ModelCaller
from tether.runtime.calls import CallEnv, ChainAnswer, call_model_chain
from tether.runtime.deps import DepsCache
from tether.runtime.execute import ToolEnv
from tether.runtime.executor import ToolExecutor
from tether.runtime.ids import new_session_id
from tether.runtime.journal import EventSink, Journal, LeaseKeeper
from tether.runtime.observe import Observer, Observers, end_turn, watch_turn
from tether.runtime.ports import SessionRecord, SessionStatus, SessionStore
from tether.runtime.result import TurnResult
from tether.runtime.services import ServiceCache
from tether.runtime.session import Session, SessionInfo
from tether.runtime.state import SessionState
from tether.runtime.toolsets import ToolSets
from tether.runtime.turn import Turn, TurnKit
from tether.spec.agent import Agent
from tether.spec.events import Event, EventType
from tether.spec.guard import GuardPolicy
from tether.spec.messages import Message
from tether.spec.model import Model, ModelRequest
from tether.spec.pricing import Price, PriceTable, load_prices
from tether.spec.principal import ANYONE, Principal

if TYPE_CHECKING:  # the limits library loads only when a limiter is used
    from tether.controls.guards import Detector
    from tether.controls.guards.judge import JudgeVerdict
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
Need = Literal["message", "decision", "resume"]


class Runtime:
    """Drives sessions of any agent against one store.

    - ``store``: a :class:`~tether.runtime.ports.SessionStore`; ``None``
      uses an in-memory store (nothing survives the process).
    - ``clock``: returns Unix time; injected so tests control time.
    - ``lease_ttl``: seconds a session's lease lasts without renewal. A turn
      renews its lease every third of that while it works, so another
      process takes a session over only after its holder stopped renewing
      (crashed, killed, partitioned): a short TTL frees a dead replica's
      sessions within seconds.
    - ``takeover_dead_pids``: also take over a lease at once when its holder
      is a process *of this PID namespace and host name* that has exited.
      Off by default: containers with host networking share a host name but
      not PIDs, so a live holder there would be judged dead. Turn it on only
      when every process that may hold a lease runs in one PID namespace.
    - ``models``: extra :class:`Model` objects by spec string, used instead
      of building a provider from the string (tests, custom providers).
    - ``close_store``: whether :meth:`aclose` also closes the store and the
      breakers' backend (pass ``False`` when several runtimes share them).
    - ``breakers``: the circuit breakers; default: in this process. Pass one
      built on :mod:`tether.store.redis_breakers` to share them between
      replicas (``tether.store.open_breakers()`` does when
      ``TETHER_REDIS_URL`` is set).
    - ``sleep``, ``rng``: how the runtime waits between retries and draws
      their jitter; injected so tests run retries on a fake clock.
    - ``prices``: the :class:`~tether.spec.pricing.PriceTable` that prices
      every model call; default: the built-in table, or ``TETHER_PRICES``.
    - ``limiter``: a :class:`~tether.controls.ratelimit.RateLimiter` enforcing
      per-user and per-tenant limits; a refused request raises
      :class:`~tether.exceptions.RateLimited` before anything is stored.
    - ``detector``: the prompt-injection detector agents' ``guard`` policies use.
    - ``tool_workers``: threads for plain-function tools (the runtime's own
      pool: a hung tool cannot starve the event loop's default executor).
    - ``max_session_deps``: per-session dependencies kept at once; the least
      recently used are closed beyond that.
    - ``bus``: an :class:`~tether.runtime.bus.EventBus` that hears every
      batch of events once it is committed, and every text delta (a server's
      live streams; ``tether.store.RedisBus`` fans out across replicas).
    """

    def __init__(
        self,
        store: SessionStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        lease_ttl: float = 15.0,
        takeover_dead_pids: bool = False,
        models: dict[str, Model] | None = None,
        close_store: bool = True,
        breakers: Breakers | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        prices: PriceTable | None = None,
        limiter: RateLimiter | None = None,
        detector: Detector | None = None,
        tool_workers: int = 32,
        max_session_deps: int = 1024,
        bus: EventBus | None = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        if lease_ttl <= 0:
            raise ConfigError(f"lease_ttl must be positive, got {lease_ttl}")
        if store is None:
            from tether.runtime.memory import InMemoryStore

            store = InMemoryStore()
        self.store = store
        self.clock = clock
        self.lease = LeaseKeeper(lease_ttl, clock)
        self.takeover_dead_pids = takeover_dead_pids
        self.owner = lease.owner_id()
        self._close_store = close_store
        self.breakers = breakers if breakers is not None else Breakers(clock=clock)
        self.sleep = sleep
        self.rng = rng if rng is not None else random.Random()
        self.prices = prices if prices is not None else load_prices()
        self._price_cache: dict[str, Price | None] = {}
        self.limiter = limiter
        #: where each committed batch of events (and each text delta) is published
        self.bus = bus
        #: who watches every turn (metrics, traces, logs, alerts): see runtime.observe
        self.observers = Observers(observers)
        self._detector = detector
        self.executor = ToolExecutor(max_workers=tool_workers)
        #: the key of the boundary markers around untrusted content (see runtime.taint)
        self.spotlight_secret = secrets.token_bytes(16)
        self._svc = ServiceCache(models, self.spotlight_secret)
        #: the agents' tool sources (MCP servers), opened on first use; their tools are
        #: pinned in the store's ``tool_pins`` when it keeps them, else in this process
        self._toolsets = ToolSets(
            pins=getattr(store, "tool_pins", None),
            flagged=self._description_flagged,
            clock=clock,
        )
        #: sessions with a turn in progress in this runtime, and the tasks running them
        self._active: dict[str, asyncio.Task[Any] | None] = {}
        self._deps = DepsCache(max_sessions=max_session_deps, busy=self._active)
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._shut = asyncio.Event()
        self._turns = 0

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _is_closing(self) -> bool:
        return self._closing

    #: whether :meth:`aclose` has begun (new turns are refused)
    closing = property(_is_closing)

    async def aclose(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - reason: a bound on the whole shutdown, not one await
        """Shut down in order, within about ``timeout`` seconds.

        1. Refuse new turns (:class:`~tether.exceptions.ShuttingDown`).
        2. Let turns in flight reach their next step boundary: each commits
           and stops there, its session left ``running`` (``resume`` continues
           it), or finishes if it was on its last step.
        3. After ``timeout``, cancel what is left (a turn cancelled inside a
           tool is resumable too: an unsafe call in flight is reported as
           "outcome unknown", never run twice).
        4. Close deps, tool sources (stopping MCP servers it started), models,
           the tool workers, then (if owned) the store.
        """
        if self._closing:  # closed, or a concurrent aclose() is at work: wait for it
            await self._shut.wait()
            return
        self._closing = True
        try:
            await self._shut_down(timeout)
        finally:
            self._shut.set()

    async def _shut_down(self, grace: float) -> None:
        if self._active:
            try:
                await asyncio.wait_for(self._idle.wait(), grace)
            except TimeoutError:
                tasks = [t for t in self._active.values() if t is not None and not t.done()]
                log.warning("shutdown: cancelling %d turn(s) still running", len(tasks))
                for t in tasks:
                    t.cancel()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), max(1.0, grace / 10))
        await self._deps.aclose()
        await self._toolsets.aclose()
        await self._svc.aclose()
        self.executor.close()
        await self.lease.aclose()
        if self._close_store:
            await self.breakers.aclose()
            if self.limiter is not None:
                await self.limiter.aclose()
            await self.store.aclose()

    # --- the Session API ----------------------------------------------------

    def session(
        self,
        agent: Agent,
        session_id: str | None = None,
        *,
        principal: Principal | None = None,
        new: bool = False,
    ) -> Session:
        """A handle on one conversation with ``agent``.

        ``session_id=None``: a new session with a generated id (``handle.id``,
        known before the first message). A ``session_id`` names an existing
        session, or with ``new=True`` the id a new one gets. ``principal`` is
        who acts: stored with a new session; for an existing one it may only
        narrow what is stored (same user and tenant, fewer roles and scopes).
        """
        if session_id is not None and (not session_id.strip() or len(session_id) > 255):
            raise ConfigError("a session id must be 1 to 255 characters, not blank")
        if session_id is None:
            return Session(self, agent, new_session_id(), principal, created=False)
        return Session(self, agent, session_id, principal, created=not new)

    # --- conveniences over the Session API -------------------------------

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
        """``rt.session(agent, ...).send(message, ...)`` in one call.

        ``session_id`` continues a session; ``new_session_id`` names a new
        one (an id that exists raises ``SessionConflict``; nothing is run).
        ``user_id``, ``tenant_id`` and ``scopes`` make the principal.
        """
        if new_session_id is not None and session_id is not None:
            raise ConfigError("pass session_id (to continue) or new_session_id, not both")
        principal = _principal(user_id, tenant_id, scopes)
        handle = (
            self.session(agent, new_session_id, principal=principal, new=True)
            if new_session_id is not None or session_id is None
            else self.session(agent, session_id, principal=principal)
        )
        return await handle.send(message, context=context, on_event=on_event, metadata=metadata)

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
        context: dict[str, Any] | None = None,
    ) -> AsyncIterator[Event]:
        """Like :meth:`run`, but yield every event as it happens (text deltas included)."""
        principal = _principal(user_id, tenant_id, scopes)
        handle = self.session(agent, session_id, principal=principal)
        async for ev in handle.stream(message, context=context, metadata=metadata):
            yield ev

    async def decide(
        self,
        agent: Agent,
        session_id: str,
        approval_id: str,
        *,
        approve: bool,
        by: str | Principal,
        roles: frozenset[str] | set[str] = frozenset(),
        reason: str | None = None,
        on_event: EventSink | None = None,
        scopes: Iterable[str] | None = None,
    ) -> TurnResult:
        """Approve or deny the call a session waits on, then continue its turn.

        ``by`` is who decides: a :class:`Principal`, or a user id (with
        ``roles``). The turn goes on with the session's stored scopes
        (``scopes`` may narrow them further).
        """
        decider = by if isinstance(by, Principal) else Principal(user=by, roles=frozenset(roles))
        narrowing = None if scopes is None else Principal(scopes=frozenset(scopes))
        handle = self.session(agent, session_id, principal=narrowing)
        return await handle.decide(
            approval_id, approve, by=decider, reason=reason, on_event=on_event
        )

    async def resume(
        self,
        agent: Agent,
        session_id: str,
        *,
        on_event: EventSink | None = None,
        scopes: Iterable[str] | None = None,
    ) -> TurnResult:
        """Continue a turn that was interrupted (crash, kill, shutdown) or failed."""
        narrowing = None if scopes is None else Principal(scopes=frozenset(scopes))
        return await self.session(agent, session_id, principal=narrowing).resume(on_event=on_event)

    async def pending_approval(self, session_id: str) -> PendingApproval | None:
        """The approval a stored session waits for, if any (read-only)."""
        state = await self.load(session_id)
        if state.status != SessionStatus.AWAITING_APPROVAL or state.pending_approval is None:
            return None
        return PendingApproval.from_event(session_id, state.pending_approval)

    async def load(self, session_id: str) -> SessionState:
        """The current state of a stored session (read-only; no lease taken)."""
        record = await self.store.get(session_id)
        state = SessionState.from_events(session_id, await self.store.events(session_id))
        state.status = record.status
        return state

    async def probe(self, agent: Agent, message: str, *, max_tokens: int = 16) -> ChainAnswer:
        """Ask ``agent``'s model chain ``message`` once, outside any session (a health check).

        The agent's reliability layer applies (breakers, fallback, timeouts)
        without retries, so a probe answers fast: the caller reads
        ``index`` (0: the primary answered; more: a fallback did) and the
        text. Nothing is stored. Raises
        :class:`~tether.exceptions.ModelUnavailable` when no model answers.
        """
        if self._closing:
            raise ShuttingDown("the runtime is shutting down")
        svc = self._svc.for_agent(agent)
        quick = dataclasses.replace(agent, retry=dataclasses.replace(agent.retry, max_retries=0))
        env = CallEnv(
            breakers=self.breakers,
            sleep=self.sleep,
            rng=self.rng,
            emit=lambda _t, _d: None,
            sink=lambda _e: None,
            session_id=f"health:{agent.name}",
            step=0,
            clock=self.clock,
            prepare=self._svc.prepare,
            prepared=self._svc.prepared,
        )
        request = ModelRequest(
            system=svc.system,
            messages=(Message.user(message),),
            tool_choice="none",
            max_tokens=max_tokens,
            temperature=0.0,
        )
        return await call_model_chain(svc.models, request, quick, env)

    # --- what a Session uses ----------------------------------------------

    @contextlib.asynccontextmanager
    async def open_turn(
        self,
        handle: Session,
        need: Need,
        *,
        on_event: EventSink | None = None,
        metadata: dict[str, Any] | None = None,
        creating: bool = False,
    ) -> AsyncIterator[Turn]:
        """Hold ``handle``'s session for one turn (the seam :class:`Session` drives).

        Claims the session in this runtime before anything awaits (a second
        operation on it gets ``SessionConflict`` at once), takes its lease
        under an owner id of this turn's own (so a refused operation can
        never release another's lease), opens the agent's tool sources
        (their tools join the agent's), checks the agent's models, and
        yields the :class:`Turn`; on the way out the journal commits what
        is left and gives the lease back.
        """
        if self._closing:
            raise ShuttingDown(
                "the runtime is shutting down and takes no new turns; retry on another "
                "replica, or after it restarts"
            )
        sid = handle.id
        if sid in self._active:
            raise SessionConflict(
                f"session {sid} already has a turn in progress in this process (a second "
                "send, decide or resume came while one ran); wait for it to finish"
            )
        self._active[sid] = asyncio.current_task()
        self._idle.clear()
        try:
            # + its MCP servers' accepted tools; those newly quarantined are reported below
            agent, quarantined = await self._toolsets.agent_for(handle.agent)
            svc = self._svc.for_agent(agent)
            self._turns += 1
            owner = f"{self.owner}:{self._turns}"
            journal = await self._journal(handle, need, owner, on_event, metadata)
            started = False
            error: BaseException | None = None
            watch = watch_turn(
                self.observers, journal, "create" if creating else need, self.clock()
            )
            try:
                for q in quarantined:  # after watch_turn: observers (alerts) hear it
                    journal.emit(EventType.TOOL_DEFINITION_CHANGED, q.to_data())
                principal = journal.state.principal.narrow(handle.principal)
                handle.principal = principal

                made: list[Any] = []

                async def deps() -> Any:  # built when a tool first needs them, once a turn
                    if not made:
                        st = journal.state
                        info = SessionInfo(sid, agent.name, principal, dict(st.context))
                        made.append(await self._deps.get(agent.deps, info))
                    return made[0]

                turn = self._turn(
                    agent, svc, journal, principal, None if agent.deps is None else deps
                )
                started = True
                yield turn
            except BaseException as exc:
                error = exc if started else None
                raise
            finally:
                try:
                    await journal.close(error)
                    handle.created = journal.stored
                finally:
                    end_turn(self.observers, journal, watch, error, self.clock())
        finally:
            del self._active[sid]
            if not self._active:
                self._idle.set()

    async def _journal(
        self,
        handle: Session,
        need: Need,
        owner: str,
        on_event: EventSink | None,
        metadata: dict[str, Any] | None,
    ) -> Journal:
        agent, sid, now = handle.agent, handle.id, self.clock()
        if not handle.created:
            if need != "message":
                raise InvalidSessionState(f"session {sid} has no message yet; send() one first")
            p = handle.principal or ANYONE
            record = SessionRecord(
                id=sid,
                agent=agent.name,
                agent_version=agent.version,
                user_id=p.user,
                status=SessionStatus.IDLE,
                created_at=now,
                updated_at=now,
                tenant_id=p.tenant,
            )
            state = SessionState(
                session_id=sid,
                agent=agent.name,
                agent_version=agent.version,
                user_id=p.user,
                tenant_id=p.tenant,
            )
            journal = Journal(
                self.store,
                record,
                state,
                owner=owner,
                lease=self.lease,
                on_event=on_event,
                stored=False,
                limiter=self.limiter,
                bus=self.bus,
            )
            created: dict[str, Any] = {
                "agent": agent.name,
                "version": agent.version,
                "user_id": p.user,
                "models": [m if isinstance(m, str) else m.name for m in agent.models],
                "principal": p.to_dict(),
            }
            if p.tenant is not None:
                created["tenant_id"] = p.tenant
            if metadata:
                created["metadata"] = metadata
            journal.emit(EventType.SESSION_CREATED, created)
            return journal
        record, stored = await self._acquire(sid, owner, now)
        journal = Journal(
            self.store,
            record,
            SessionState.from_events(sid, stored),
            owner=owner,
            lease=self.lease,
            on_event=on_event,
            stored=True,
            limiter=self.limiter,
            bus=self.bus,
        )
        journal.state.status = record.status
        journal.start()
        try:
            _check_state(record, agent, need)
        except BaseException:
            await journal.close()
            raise
        return journal

    def _turn(
        self,
        agent: Agent,
        svc: AgentServices,
        journal: Journal,
        principal: Principal,
        deps: Callable[[], Awaitable[Any]] | None,
    ) -> Turn:
        st = journal.state
        env = CallEnv(
            breakers=self.breakers,
            sleep=self.sleep,
            rng=self.rng,
            emit=journal.emit,
            sink=journal.publish,
            session_id=st.session_id,
            step=st.step,
            clock=self.clock,
            prepare=self._svc.prepare,
            prepared=self._svc.prepared,
        )
        caller = ModelCaller(agent, svc, journal, env, self.limiter, self.prices, self.price_of)
        tool_env = ToolEnv(
            agent=agent.name,
            breakers=self.breakers,
            breaker=agent.breaker,
            retry=agent.retry,
            sleep=self.sleep,
            rng=self.rng,
            emit=journal.emit,
            executor=self.executor,
        )
        kit = TurnKit(
            tool_env=tool_env,
            deps=deps,
            guard=self.guard,
            spotlight_secret=self.spotlight_secret,
            closing=self._is_closing,
        )
        allowed = None
        if principal.scopes is not None:
            held = principal.scopes
            allowed = frozenset(t.name for t in agent.tools if t.scopes <= held)
        return Turn(agent, svc, journal, caller, kit, allowed=allowed)

    def check_input(self, agent: Agent, message: str) -> str:
        """The user's message, stripped; ``InputRejected`` if it is not text, empty or too long."""
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

    @property
    def detector(self) -> Detector:
        """The prompt-injection detector (built on first use: the rules compile then)."""
        if self._detector is None:
            from tether.controls.guards import InjectionDetector

            self._detector = InjectionDetector()
        return self._detector

    def _description_flagged(self, text: str) -> bool:
        """Whether a tool source's tool description reads as a prompt injection."""
        return bool(text) and self.detector.scan(text, "tool").flagged

    def guard(
        self, text: str, source: str, policy: GuardPolicy, verdict: JudgeVerdict | None = None
    ) -> dict[str, Any] | None:
        """Scan ``text`` as ``source``: ``None`` if it passes, else the decision as event data.

        ``verdict``: what the model judge said about it (``GuardPolicy.judge``);
        a yes flags it like the rules would.
        """
        from tether.controls.guards import apply_policy
        from tether.controls.guards.judge import with_verdict

        src: Literal["user", "tool"] = "tool" if source == "tool" else "user"
        result = self.detector.scan(text, src)
        if verdict is not None:
            result = with_verdict(result, verdict)
        decision = apply_policy(result, policy, src)
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

    def guard_input(self, journal: Journal, text: str, agent: Agent) -> str:
        """Scan a user message by the agent's guard policy: refuse, record, or tag it."""
        assert agent.guard is not None
        decision = self.guard(text, "user", agent.guard)
        if decision is None:
            return text
        if decision["action"] == "block":
            raise InputRejected(str(decision["message"]))
        journal.emit(EventType.GUARD_FLAGGED, decision)
        if decision["action"] == "tag":
            return f"{decision['message']}\n{text}"
        return text

    async def limit(self, journal: Journal, *, new_session: bool, new_message: bool) -> None:
        """Check the per-user and per-tenant limits before a turn stores anything.

        A message to a user whose daily tokens are spent is refused, a turn
        takes a concurrency slot (given back when it closes), and a new
        session counts against sessions per hour, last, so a refusal by an
        earlier check does not use one up. On refusal nothing of the turn is
        stored (a new session is not created) and ``RateLimited`` propagates.
        """
        limiter = self.limiter
        if limiter is None:
            return
        st = journal.state
        try:
            if new_message:
                await limiter.check_tokens(st.user_id, st.tenant_id)
            journal.slots = await limiter.acquire_slots(
                st.user_id, st.tenant_id, f"{st.session_id}:{journal.owner}"
            )
            if new_session:
                await limiter.admit_session(st.user_id, st.tenant_id)
        except RateLimited as exc:
            log.info("session %s: %s", st.session_id, exc)
            if journal.observe is not None:  # observers count it; nothing is stored
                data: dict[str, Any] = {"limit": exc.limit, "scope": exc.scope, "key": exc.key}
                data["reset_at"] = exc.reset_at
                journal.observe(
                    Event(EventType.RATE_LIMITED, st.session_id, st.step, self.clock(), data)
                )
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

    # --- internals --------------------------------------------------------

    async def _acquire(
        self, session_id: str, owner: str, now: float
    ) -> tuple[SessionRecord, list[Event]]:
        ttl = self.lease.ttl
        try:
            return await self.store.acquire(session_id, owner=owner, now=now, lease_ttl=ttl)
        except SessionConflict as exc:
            if self.takeover_dead_pids and exc.holder and lease.holder_is_dead(exc.holder):
                log.warning(
                    "session %s: lease holder %s is no longer running; taking over",
                    session_id,
                    exc.holder,
                )
                return await self.store.acquire(
                    session_id, owner=owner, now=now, lease_ttl=ttl, replace=exc.holder
                )
            raise


def _check_state(record: SessionRecord, agent: Agent, need: Need) -> None:
    sid = record.id
    if record.agent != agent.name:
        raise ConfigError(
            f"session {sid} belongs to agent {record.agent!r}, not {agent.name!r}; load the "
            "agent it was started with"
        )
    if record.agent_version != agent.version:
        log.warning(
            "session %s started on %s v%s; continuing with v%s",
            sid,
            record.agent,
            record.agent_version,
            agent.version,
        )
    status = record.status
    if need == "message" and status not in _ACCEPTS_MESSAGE:
        if status == SessionStatus.RUNNING:
            hint = f"it was interrupted mid-turn; run `tether resume {sid}` first"
        elif status == SessionStatus.BUDGET_EXHAUSTED:
            hint = (
                f"it has used its token budget ({record.usage.total_tokens:,} tokens) "
                "and has ended; start a new session"
            )
        else:
            hint = "it has ended; start a new session"
        raise InvalidSessionState(
            f"session {sid} is '{status}' and cannot take a new message: {hint}"
        )
    if need == "resume" and status not in _RESUMABLE:
        raise InvalidSessionState(
            f"session {sid} is '{status}'; only a running (interrupted) or failed session "
            "can be resumed. Send it a new message instead."
        )


def _principal(
    user_id: str | None, tenant_id: str | None, scopes: Iterable[str] | None
) -> Principal | None:
    if user_id is None and tenant_id is None and scopes is None:
        return None
    return Principal(
        user=user_id, tenant=tenant_id, scopes=None if scopes is None else frozenset(scopes)
    )
