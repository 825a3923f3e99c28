"""Observers: what metrics, traces, logs and alerts hear of every turn.

An :class:`Observer` is called with each event of a turn as it is made
(stored events when emitted, streamed deltas as they stream), with a
:class:`SessionTag` saying whose session it is (agent, version, user,
tenant). Two observer-only events bracket a turn and are never stored or
streamed: ``turn.started`` (``need``: ``message``, ``decision`` or
``resume``) and ``turn.ended`` (``status``: the session's status after
the turn, ``error``: the exception type when the turn raised).

Observers run inline on the turn's task, so they must be cheap and must not
block; one that raises is logged (once per observer) and the turn goes on:
what watches a turn never changes it. Storing a new session before its
first message (``Session.create``) is not a turn: its events are observed,
unbracketed.

:data:`current_turn` holds the turn being run on this task (for log records
that carry the session, step and version ids).
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tether.spec.events import Event

if TYPE_CHECKING:
    from tether.runtime.journal import Journal
    from tether.runtime.state import SessionState

__all__ = [
    "TURN_ENDED",
    "TURN_STARTED",
    "Observer",
    "Observers",
    "SessionTag",
    "TurnInfo",
    "current_turn",
    "end_turn",
    "watch_turn",
]

log = logging.getLogger("tether.observe")

#: observer-only event types (never stored, never streamed)
TURN_STARTED = "turn.started"
TURN_ENDED = "turn.ended"


@dataclass(frozen=True, slots=True)
class SessionTag:
    """Whose session an observed event belongs to."""

    session_id: str
    agent: str
    version: str
    user: str | None = None
    tenant: str | None = None


class Observer(Protocol):
    """Something that watches turns: called with each event and its session's tag."""

    def __call__(self, ev: Event, tag: SessionTag) -> None: ...


@dataclass(slots=True)
class TurnInfo:
    """The turn running on this task: its tag and (read live) its step."""

    tag: SessionTag
    state: SessionState
    #: whether observers were told it started (not for a session's creation: no turn runs)
    bracketed: bool = True

    @property
    def step(self) -> int:
        return self.state.step


#: the turn this task is running, if any (set by the runtime for a turn's duration)
current_turn: contextvars.ContextVar[TurnInfo | None] = contextvars.ContextVar(
    "tether_current_turn", default=None
)


class Observers:
    """Several observers as one; an observer that raises is logged once and skipped."""

    __slots__ = ("_failed", "_items")

    def __init__(self, items: Sequence[Observer] = ()) -> None:
        self._items = tuple(items)
        self._failed: set[int] = set()

    def __bool__(self) -> bool:
        return bool(self._items)

    def __call__(self, ev: Event, tag: SessionTag) -> None:
        for i, observer in enumerate(self._items):
            try:
                observer(ev, tag)
            except Exception:
                if i not in self._failed:
                    self._failed.add(i)
                    log.exception(
                        "observer %r raised on a %s event; it stays installed, but later "
                        "errors from it are not logged",
                        observer,
                        ev.type,
                    )


def watch_turn(
    observers: Observers, journal: Journal, need: str, now: float
) -> contextvars.Token[TurnInfo | None] | None:
    """Bind ``observers`` to the turn's session, tell them it started, mark the task's turn."""
    if not observers:
        return None
    rec, st = journal.record, journal.state
    p = st.principal
    tag = SessionTag(rec.id, rec.agent, rec.agent_version, p.user, p.tenant)
    journal.observe = functools.partial(observers, tag=tag)
    for ev in journal.events:  # session.created, emitted before the binding
        observers(ev, tag)
    bracketed = need != "create"
    if bracketed:
        observers(Event(TURN_STARTED, rec.id, st.step, now, {"need": need}), tag)
    return current_turn.set(TurnInfo(tag, st, bracketed))


def end_turn(
    observers: Observers,
    journal: Journal,
    token: contextvars.Token[TurnInfo | None] | None,
    error: BaseException | None,
    now: float,
) -> None:
    """Tell ``observers`` the turn ended (its status, the error type if it raised)."""
    if token is None:
        return
    info = current_turn.get()
    current_turn.reset(token)
    if info is None or not info.bracketed:
        return
    st = journal.state
    data = {"status": str(st.status), "error": None if error is None else type(error).__name__}
    observers(Event(TURN_ENDED, st.session_id, st.step, now, data), info.tag)
