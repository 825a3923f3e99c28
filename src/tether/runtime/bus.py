"""Event fan-out: who hears a session's events as they happen.

A turn's journal publishes each batch of events *after* the store has
committed it (never before: a listener must never see an event that a crash
could still undo), and publishes streamed-only events (text deltas) as they
come. :class:`LocalBus` delivers them to subscribers in this process;
:class:`tether.store.RedisBus` also sends them to other replicas through
Redis pub/sub.

A bus is a latency optimisation, not the record: pub/sub drops messages
(a slow subscriber, a Redis reconnect) and gives no order across
publishers. The store is the record. A subscriber keeps the last ``seq`` it
has, skips what it has seen, and reads the store for what it missed
(:class:`Subscription.overflowed` says when it must); see
``tether.surfaces.server.streaming``.

Why not a library: the two behaviours that matter here (publish only
after commit; gap-fill from the store) are the runtime's, and a queue per
subscriber is a few lines of asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from tether.spec.events import Event

__all__ = ["EventBus", "LocalBus", "Subscription"]


class Subscription:
    """Events of one session for one listener, in arrival order.

    ``get()`` waits for the next event (``None`` after ``timeout`` seconds,
    or when woken by :meth:`put_wake`);
    when the queue overflowed (a listener slower than the turn), the events
    it lost are in the store: :attr:`overflowed` is set once, and the
    listener should read the store after its last ``seq``.
    """

    __slots__ = ("_queue", "overflowed", "session_id")

    def __init__(self, session_id: str, size: int) -> None:
        self.session_id = session_id
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=size)
        self.overflowed = False

    def put(self, ev: Event) -> None:
        try:
            self._queue.put_nowait(ev)
        except asyncio.QueueFull:
            self.overflowed = True

    def put_wake(self) -> None:
        """Wake the listener (``get`` returns ``None``): something it waits on has changed."""
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self.overflowed = True

    async def get(self, timeout: float | None = None) -> Event | None:  # noqa: ASYNC109 - reason: a poll interval, not a deadline
        if timeout is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    def drain(self) -> list[Event | None]:
        """Everything queued now, without waiting (``None``: a wake-up)."""
        out: list[Event | None] = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def take_overflow(self) -> bool:
        """Whether events were lost since the last call (and reset the flag)."""
        lost, self.overflowed = self.overflowed, False
        return lost


class EventBus(Protocol):
    """Fan-out of a session's events (committed batches and streamed deltas)."""

    def publish(self, session_id: str, events: Sequence[Event]) -> None:
        """Hand ``events`` to listeners; never blocks and never raises."""
        ...

    def subscribe(self, session_id: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Listen to ``session_id`` until the context exits."""
        ...

    async def aclose(self) -> None: ...


class LocalBus:
    """Subscribers in this process (the whole bus for a single-process server)."""

    def __init__(self, *, queue_size: int = 2048) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = {}

    def publish(self, session_id: str, events: Sequence[Event]) -> None:
        subs = self._subs.get(session_id)
        if not subs:
            return
        for sub in tuple(subs):
            for ev in events:
                sub.put(ev)

    def listeners(self, session_id: str) -> int:
        return len(self._subs.get(session_id, ()))

    @contextlib.asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[Subscription]:
        sub = self.add(session_id)
        try:
            yield sub
        finally:
            self.remove(sub)

    def add(self, session_id: str) -> Subscription:
        sub = Subscription(session_id, self.queue_size)
        self._subs.setdefault(session_id, set()).add(sub)
        return sub

    def remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.session_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.session_id]

    def sessions(self) -> list[str]:
        """Sessions with at least one listener here."""
        return list(self._subs)

    async def aclose(self) -> None:
        self._subs.clear()
