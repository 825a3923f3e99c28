"""The Session API: one handle per conversation, the one way to drive it.

``rt.session(agent, session_id=None, principal=...)`` returns a
:class:`Session`. Every operation on it (``send``, ``stream``, ``decide``,
``answer``, ``resume``) is one turn: it takes the session (a second
operation on the same session, here or in another process, gets
:class:`~tether.exceptions.SessionConflict` before anything runs), runs
until the agent answers or pauses, commits, and gives the session back.
``state``, ``events`` and ``pending_approval`` read without taking it.

``stream`` is ``send`` as an async iterator of events: one code path, two
shapes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.exceptions import ConfigError, InvalidSessionState, ShuttingDown
from tether.runtime import turn_approvals
from tether.runtime.journal import EventSink
from tether.runtime.result import TurnResult
from tether.runtime.turn import Interrupted, Turn
from tether.spec.events import Event, EventType, SessionStatus
from tether.spec.jsonsafe import to_jsonable
from tether.spec.principal import Principal

if TYPE_CHECKING:
    from tether.runtime.approvals import PendingApproval
    from tether.runtime.runtime import Runtime
    from tether.runtime.state import SessionState
    from tether.spec.agent import Agent

__all__ = ["Session", "SessionInfo"]

log = logging.getLogger("tether.runtime")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a per-session deps factory receives (``deps=lambda s: Shop(s.principal.tenant)``)."""

    session_id: str
    agent: str
    principal: Principal
    context: dict[str, Any] = field(default_factory=dict)


class Session:
    """A handle on one conversation. Cheap to make; holds no lease between calls."""

    __slots__ = ("agent", "created", "id", "principal", "rt")

    def __init__(
        self,
        rt: Runtime,
        agent: Agent,
        session_id: str,
        principal: Principal | None,
        *,
        created: bool,
    ) -> None:
        self.rt = rt
        self.agent = agent
        self.id = session_id
        #: who acts (for a stored session: the stored principal, narrowed by this one)
        self.principal = principal
        #: whether the session exists in the store (a new handle's first send creates it)
        self.created = created

    def __repr__(self) -> str:
        return f"Session({self.id!r}, agent={self.agent.name!r})"

    # turns ----------------------------------------------------------------

    async def create(
        self,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Store the new session now, before its first message (a server's ``POST /sessions``).

        Records the principal, ``context`` and ``metadata`` and counts
        against per-user session limits, as a first :meth:`send` would; the
        session is ``idle`` and waits for a message. An id that exists
        raises :class:`~tether.exceptions.SessionConflict` and stores nothing.
        """
        if self.created:
            raise InvalidSessionState(f"session {self.id} exists already")
        rt = self.rt
        values = _storable(context, "context")
        meta = _storable(metadata, "metadata")
        async with rt.open_turn(self, "message", metadata=meta, creating=True) as turn:
            await rt.limit(turn.journal, new_session=True, new_message=False)
            if values:
                turn.journal.emit(EventType.CONTEXT_SET, {"values": values})
            await turn.journal.commit(release=True)

    async def send(
        self,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        on_event: EventSink | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> TurnResult:
        """Send the user's ``message`` and run the turn.

        ``context`` (JSON-serialisable data from your application: the
        customer's plan, their locale) is recorded, merged into earlier
        context, and shown to the model in a delimited data block; the
        system prompt never changes with it. ``metadata`` is recorded on a
        new session (e.g. the agent reference the CLI loaded).
        """
        rt = self.rt
        text = rt.check_input(self.agent, message)
        values = _storable(context, "context")
        meta = _storable(metadata, "metadata")
        new = not self.created
        async with rt.open_turn(self, "message", on_event=on_event, metadata=meta) as turn:
            await rt.limit(turn.journal, new_session=new, new_message=True)
            if values:
                turn.journal.emit(EventType.CONTEXT_SET, {"values": values})
            if self.agent.guard is not None:
                text = rt.guard_input(turn.journal, text, self.agent)
            if turn.state.status == SessionStatus.AWAITING_APPROVAL:
                return await _drive(turn, turn_approvals.reply_to_approval(turn, text))
            asked = turn.open_clarify()
            if asked is not None:
                return await _drive(turn, turn.answer_clarify(asked, text))
            turn.journal.emit(EventType.USER_MESSAGE, {"text": text})
            return await _drive(turn, _first_commit_then(turn))

    def stream(
        self,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AsyncIterator[Event]:
        """:meth:`send` as an async iterator of every event as it happens (deltas included)."""
        return _as_stream(
            lambda sink: self.send(message, context=context, on_event=sink, metadata=metadata)
        )

    async def decide(
        self,
        approval_id: str,
        approve: bool,
        *,
        by: Principal | str,
        reason: str | None = None,
        on_event: EventSink | None = None,
    ) -> TurnResult:
        """Approve or deny the call the session waits on, then continue its turn.

        ``by`` is who decides (a user id means ``Principal(user=...)``). In
        ``operator`` mode they need the policy's ``approver_role``; in
        ``user`` mode the session's own user may decide too. The turn goes on
        with the session's stored scopes, whoever decided. A decision on a
        request already decided raises ``ApprovalError`` and runs nothing.
        """
        decider = by if isinstance(by, Principal) else Principal(user=by)
        label = by if isinstance(by, str) else None
        async with self.rt.open_turn(self, "decision", on_event=on_event) as turn:
            await self.rt.limit(turn.journal, new_session=False, new_message=False)
            return await _drive(
                turn,
                turn_approvals.decide(
                    turn, approval_id, approve=approve, by=decider, reason=reason, by_label=label
                ),
            )

    async def answer(self, text: str, *, on_event: EventSink | None = None) -> TurnResult:
        """Answer the question the agent asked (``awaiting_user``), and continue the turn."""
        rt = self.rt
        reply = rt.check_input(self.agent, text)
        async with rt.open_turn(self, "message", on_event=on_event) as turn:
            asked = turn.open_clarify()
            if asked is None:
                raise InvalidSessionState(
                    f"session {self.id} is '{turn.state.status}' and asked no question; "
                    "use send() for a new message"
                )
            await rt.limit(turn.journal, new_session=False, new_message=True)
            if self.agent.guard is not None:
                reply = rt.guard_input(turn.journal, reply, self.agent)
            return await _drive(turn, turn.answer_clarify(asked, reply))

    async def resume(self, *, on_event: EventSink | None = None) -> TurnResult:
        """Continue a turn that was interrupted (a crash, a kill, a shutdown) or failed."""
        async with self.rt.open_turn(self, "resume", on_event=on_event) as turn:
            await self.rt.limit(turn.journal, new_session=False, new_message=False)
            st = turn.state
            turn.journal.emit(
                EventType.SESSION_RESUMED, {"from_step": st.step, "owner": turn.journal.owner}
            )
            if st.status == SessionStatus.FAILED:
                turn.journal.status(SessionStatus.RUNNING, "resumed")
            return await _drive(turn, turn.run_steps())

    # reads ----------------------------------------------------------------

    async def state(self) -> SessionState:
        """The session's current state (read-only; no lease taken)."""
        return await self.rt.load(self.id)

    async def events(self, since: int = 0) -> list[Event]:
        """Stored events after sequence number ``since``, in order."""
        return await self.rt.store.events(self.id, after_seq=since)

    async def pending_approval(self) -> PendingApproval | None:
        """The approval the session waits for, if any."""
        return await self.rt.pending_approval(self.id)


async def _first_commit_then(turn: Turn) -> TurnResult:
    await turn.journal.commit()
    return await turn.run_steps()


async def _drive(turn: Turn, work: Awaitable[TurnResult]) -> TurnResult:
    """Run a turn's work; a shutdown stops it at a step boundary, committed and resumable."""
    try:
        return await work
    except Interrupted:
        st = turn.state
        reason = (
            f"the runtime shut down after step {st.step}; the turn stopped there and is "
            f"resumable (resume session {st.session_id})"
        )
        log.warning("session %s: %s", st.session_id, reason)
        if turn.journal.stored:
            await turn.journal.commit(release=True)
        return turn.journal.result(None, error=reason)


def _storable(values: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """``values`` as stored JSON would read it back; a clear error for what cannot be stored."""
    if not values:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{what} must be a dict, got {type(values).__name__}")
    try:
        out = to_jsonable(values)
    except TypeError as exc:
        raise ConfigError(f"{what} cannot be stored: {exc}") from None
    assert isinstance(out, dict)
    return out


def _as_stream(
    start: Callable[[EventSink], Awaitable[TurnResult]],
) -> AsyncIterator[Event]:
    async def events() -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        task = asyncio.ensure_future(start(queue.put_nowait))
        task.add_done_callback(lambda _t: queue.put_nowait(None))
        try:
            while (ev := await queue.get()) is not None:
                yield ev
            if task.cancelled():  # cancelled by a shutdown, not by this consumer
                raise ShuttingDown(
                    "the runtime shut down during this turn; what it committed is kept and "
                    "the session is resumable"
                )
            await task  # re-raise what the turn raised
        finally:
            if not task.done():
                task.cancel()

    return events()
