"""A session's events as a live stream: the store for what was, the bus for what comes.

:func:`follow` yields every stored event after ``after`` exactly once and in
``seq`` order, then live ones as turns commit them (on this replica or any
other), plus text deltas while they stream. It subscribes to the bus
*before* reading the store, so nothing committed in between is missed; it
skips what it has sent (the bus may repeat) and reads the store for any gap
(the bus may drop), and when nothing arrives for ``poll`` seconds it checks
the store anyway. The store is the record; the bus only makes it fast.

It ends when ``until_rest`` and the session is at rest with everything sent,
when ``done`` (a local turn) has finished and everything it committed was
sent, or when the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tether.runtime.bus import EventBus, Subscription
from tether.runtime.ports import SessionStore
from tether.spec.events import Event, EventType, SessionStatus

__all__ = ["REST", "Item", "at_rest", "follow", "subscribe_now"]

#: statuses in which no turn is running: a stream that follows one turn ends there
REST = frozenset(
    {
        SessionStatus.IDLE,
        SessionStatus.AWAITING_APPROVAL,
        SessionStatus.AWAITING_USER,
        SessionStatus.COMPLETED,
        SessionStatus.FAILED,
        SessionStatus.BUDGET_EXHAUSTED,
    }
)


def at_rest(ev: Event) -> bool:
    """Whether ``ev`` leaves its session at rest (the turn ended or paused)."""
    if ev.type == EventType.TURN_COMPLETED:
        return True
    return ev.type == EventType.SESSION_STATUS and ev.data.get("status") in REST


async def subscribe_now(
    bus: EventBus, session_id: str
) -> contextlib.AbstractAsyncContextManager[Subscription]:
    """Subscribe at once; the result, entered later, yields the subscription and ends it."""
    stack = contextlib.AsyncExitStack()
    sub = await stack.enter_async_context(bus.subscribe(session_id))

    @contextlib.asynccontextmanager
    async def held() -> AsyncIterator[Subscription]:
        try:
            yield sub
        finally:
            await stack.aclose()

    return held()


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to send: an event, a keep-alive, or the end (with why)."""

    kind: str  # "event" | "keepalive" | "end"
    event: Event | None = None
    status: str | None = None
    last_seq: int = 0
    reason: str | None = None


async def follow(
    store: SessionStore,
    bus: EventBus,
    session_id: str,
    after: int,
    *,
    until_rest: bool,
    poll: float,
    keepalive: float,
    closing: asyncio.Event,
    done: asyncio.Future[Any] | None = None,
    subscription: contextlib.AbstractAsyncContextManager[Subscription] | None = None,
) -> AsyncIterator[list[Item]]:
    """See the module's docstring; yields what is ready to send, a batch at a time.

    ``subscription``: one entered before ``done`` (a turn of this process)
    started. Everything that turn commits is then published to it before
    the turn ends, so the store is read only for a gap or an overflow: a
    turn's own stream costs no store reads, and hears its first deltas.
    """
    last = after
    primed = subscription is not None and done is not None
    async with subscription or bus.subscribe(session_id) as sub:
        if done is not None:
            done.add_done_callback(lambda _f: sub.put_wake())
        closer = asyncio.ensure_future(closing.wait())
        closer.add_done_callback(lambda _f: sub.put_wake())
        try:
            sent_at = time.monotonic()
            check = not primed  # else read the store first: what was committed before we listened
            while True:
                batch: list[Item] = []
                if check:
                    check = False
                    # whether the turn had ended *before* this read: then the read has
                    # everything it committed (one that ends during the read may not)
                    finished = done is not None and done.done()
                    for stored in await store.events(session_id, after_seq=last):
                        last = stored.seq
                        batch.append(Item("event", stored))
                    if finished:  # everything the turn committed is stored and now sent
                        yield [*batch, Item("end", last_seq=last, reason="turn")]
                        return
                    if until_rest:
                        rec = await store.get(session_id)
                        if rec.status in REST and rec.event_count <= last:
                            end = min(last, rec.event_count)
                            yield [
                                *batch,
                                Item("end", status=rec.status, last_seq=end, reason="rest"),
                            ]
                            return
                if closing.is_set():
                    yield [*batch, Item("end", last_seq=last, reason="shutdown")]
                    return
                if batch:
                    sent_at = time.monotonic()
                    yield batch
                    batch = []
                wait = min(poll, max(0.05, keepalive - (time.monotonic() - sent_at)))
                first = await sub.get(wait)
                ready = [first, *sub.drain()]
                missed = sub.take_overflow()
                for ev in ready:
                    if ev is None:
                        continue
                    if ev.seq == 0:  # a text delta: live only
                        batch.append(Item("event", ev))
                    elif ev.seq == last + 1:
                        last = ev.seq
                        batch.append(Item("event", ev))
                        if until_rest and at_rest(ev):
                            check = True
                    elif ev.seq > last + 1:  # the bus lost something: the store has it
                        missed = True
                if missed or first is None:
                    if primed and not missed and done is not None and done.done():
                        # the turn is over and all it published is here: nothing to read
                        yield [*batch, Item("end", last_seq=last, reason="turn")]
                        return
                    check = True  # quiet, woken, or the bus dropped something: ask the store
                if batch:
                    sent_at = time.monotonic()
                    yield batch
                elif time.monotonic() - sent_at >= keepalive:
                    sent_at = time.monotonic()
                    yield [Item("keepalive")]
        finally:
            closer.cancel()
