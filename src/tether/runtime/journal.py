"""The journal of one turn: its events, its commits, its lease, and its result.

A :class:`Journal` is the only writer of a session while a turn runs. It
folds every event it records into the :class:`~tether.runtime.state.SessionState`,
queues it for the next commit and hands it to the caller's sink; it commits
the queue and the session row in one transaction; it holds the session's
lease and renews it while the turn works (a heartbeat), so another process
takes the session over only once the lease has expired, that is, once this
one has stopped renewing it; and it builds the turn's
:class:`~tether.runtime.result.TurnResult` (one place, whatever ended the turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tether.exceptions import RunError, SessionConflict
from tether.runtime.approvals import PendingApproval
from tether.runtime.ports import SessionRecord, SessionStatus, SessionStore
from tether.runtime.result import TurnResult
from tether.runtime.state import SessionState
from tether.spec.events import Event, EventType
from tether.spec.messages import Message, Usage

if TYPE_CHECKING:
    from tether.controls.ratelimit import RateLimiter, Slots
    from tether.runtime.bus import EventBus

__all__ = ["EventSink", "Journal", "LeaseKeeper"]

log = logging.getLogger("tether.runtime")

EventSink = Callable[[Event], None]


class LeaseKeeper:
    """Holds a runtime's leases: ``ttl`` seconds each, renewed while their turns work.

    One task per runtime, not a timer per turn: every third of the TTL it
    renews the lease of each journal that has held its session that long
    (most turns end long before), so holding a lease costs a turn nothing
    but a set insertion. A renewal that finds another holder marks the
    journal's lease lost; one the store could not make is tried again at
    the next beat.
    """

    __slots__ = ("_journals", "_task", "clock", "ttl")

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self.clock = clock
        self._journals: dict[Journal, float] = {}  # -> when it last took or renewed its lease
        self._task: asyncio.Task[None] | None = None

    def hold(self, journal: Journal) -> None:
        """Keep ``journal``'s lease from now until :meth:`drop`."""
        if not hasattr(journal.store, "renew"):
            return
        self._journals[journal] = time.monotonic()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._beat(), name="tether-leases")

    def drop(self, journal: Journal) -> None:
        self._journals.pop(journal, None)

    async def _beat(self) -> None:
        period = self.ttl / 3
        try:
            while self._journals:
                await asyncio.sleep(period)
                due = time.monotonic() - period
                held = [j for j, at in self._journals.items() if at <= due]
                if held:
                    await asyncio.gather(*(self._renew(j) for j in held))
        finally:
            self._task = None

    async def _renew(self, journal: Journal) -> None:
        sid = journal.record.id
        if journal.released or journal.lease_lost:
            return
        try:
            await journal.store.renew(
                sid, owner=journal.owner, now=self.clock(), lease_ttl=self.ttl
            )
        except SessionConflict:
            journal.lease_lost = True
            self._journals.pop(journal, None)
            log.error(
                "session %s: lost its lease while a turn was running; the turn stops "
                "before its next step or tool call",
                sid,
            )
            return
        except RunError as exc:  # the store is down or slow: try again next beat
            log.warning("session %s: lease renewal failed: %s", sid, exc)
            return
        if journal in self._journals:
            self._journals[journal] = time.monotonic()

    async def aclose(self) -> None:
        self._journals.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Journal:
    """Events, commits and the lease of one turn of one session."""

    __slots__ = (
        "_append",
        "bus",
        "cost0",
        "events",
        "lease",
        "lease_lost",
        "limiter",
        "observe",
        "owner",
        "pending",
        "record",
        "released",
        "row_status",
        "sink",
        "slots",
        "state",
        "store",
        "stored",
        "usage",
    )

    def __init__(
        self,
        store: SessionStore,
        record: SessionRecord,
        state: SessionState,
        *,
        owner: str,
        lease: LeaseKeeper,
        on_event: EventSink | None,
        stored: bool,
        limiter: RateLimiter | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.store = store
        #: where committed events (and streamed deltas) are published for listeners
        self.bus = bus
        self.record = record
        self.state = state
        self.owner = owner
        self.lease = lease
        self.limiter = limiter
        #: every event of the turn, streamed ones included (the TurnResult's ``events``)
        self.events: list[Event] = []
        self.sink = on_event
        #: the runtime's observers, bound to this session (metrics, traces, logs)
        self.observe: Callable[[Event], None] | None = None
        self.pending: list[Event] = []
        #: whether the session row exists in the store yet
        self.stored = stored
        #: whether the lease was already given back by the turn's last commit
        self.released = False
        #: the lease was taken over while this turn worked (its next commit fails)
        self.lease_lost = False
        #: the status the session row holds (a commit that keeps it writes only events)
        self.row_status: str | None = record.status if stored else None
        #: the concurrency slots the turn holds (per-user limits), if any
        self.slots: Slots | None = None
        #: tokens of the turn's answers and side calls (summaries)
        self.usage = Usage()
        self.cost0 = state.cost
        #: the store's ``append`` (optional in the protocol: ``None`` means commit always)
        self._append = getattr(store, "append", None)

    # events ---------------------------------------------------------------

    def emit(
        self,
        type_: str,
        data: dict[str, Any],
        usage: Usage | None = None,
        message: Message | None = None,
    ) -> Event:
        """Record an event: fold it into the state, queue it for the next commit."""
        st = self.state
        st.event_count += 1
        ev = Event(type_, st.session_id, st.step, self.lease.clock(), data, usage, st.event_count)
        st.apply(ev, message)
        self.pending.append(ev)
        self.events.append(ev)
        if self.sink is not None:
            self.sink(ev)
        if self.observe is not None:
            self.observe(ev)
        return ev

    def publish(self, ev: Event) -> None:
        """Hand an event to the caller (streamed-only events come straight here)."""
        self.events.append(ev)
        if self.sink is not None:
            self.sink(ev)
        if self.observe is not None:
            self.observe(ev)
        if self.bus is not None:
            self.bus.publish(ev.session_id, (ev,))

    def _published(self, batch: list[Event]) -> None:
        """Listeners hear a batch only once the store holds it (a crash cannot undo it)."""
        if self.bus is not None and batch:
            self.bus.publish(self.record.id, batch)

    def check_lease(self) -> None:
        """Raise ``SessionConflict`` if the lease was lost (a renewal found another holder).

        The turn checks this before each step and each tool call, so a turn
        that lost its session stops before it acts again, not at its next commit.
        """
        if self.lease_lost:
            raise SessionConflict(
                f"session {self.record.id}: this turn lost its lease (another process took "
                "the session over after the lease expired); it stopped before doing more. "
                "Reload the session to see where it is"
            )

    def status(self, status: SessionStatus, reason: str | None) -> None:
        self.emit(EventType.SESSION_STATUS, {"status": status, "reason": reason})

    # commits and the lease ---------------------------------------------------

    async def commit(self, *, release: bool = False) -> None:
        """Write the queued events in one transaction, lease-checked.

        Mid-turn, when the status is what the row holds, the events alone
        (``SessionStore.append``); otherwise with the row, which with
        ``release=True`` (the turn's last commit) also gives the lease back.
        A new session's first commit creates it. The lease itself is kept
        by the :class:`LeaseKeeper`.
        """
        st, rec = self.state, self.record
        append = self._append
        if append is not None and self.stored and not release and st.status == self.row_status:
            # Mid-turn, status unchanged: the events alone, lease-checked; the row
            # (a cache of the log) catches up at the next status change or the end.
            batch, self.pending = self.pending, []
            await append(rec.id, batch, owner=self.owner)
            self._published(batch)
            return
        rec.status = st.status
        rec.step = st.step
        rec.event_count = st.event_count
        rec.usage = st.usage
        rec.cost = st.cost
        rec.last_error = st.last_error
        rec.updated_at = self.lease.clock()
        if not self.stored:
            # A conflict (the id exists) writes nothing: the pending events are
            # dropped with it, so close() does not try to create it again.
            batch, self.pending = self.pending, []
            await self.store.create(rec, batch, owner=self.owner, lease_ttl=self.lease.ttl)
            self._published(batch)
            self.stored = True
            self.row_status = rec.status
            if not release:
                self.start()
                return
            await self.store.release(rec.id, owner=self.owner)
            self.released = True
            return
        batch, self.pending = self.pending, []
        await self.store.commit(
            rec, batch, owner=self.owner, lease_ttl=self.lease.ttl, release=release
        )
        self._published(batch)
        self.row_status = rec.status
        self.released = release

    def start(self) -> None:
        """The lease is held (acquired or created): keep it while the turn works."""
        self.lease.hold(self)

    async def close(self, error: BaseException | None = None) -> None:
        """End the turn: record an unexpected failure, commit what is left, release.

        A turn that raised something other than a ``RunError`` (a bug in a
        tool wrapper, a misconfigured model) is recorded as
        ``failed`` with the reason, so the session never stays ``running``
        with nobody working on it; a cancelled turn (shutdown, Ctrl-C) stays
        ``running``: it was interrupted at a step boundary and ``resume``
        continues it. A new session refused before its first commit is not
        created: its pending events are dropped.
        """
        self.lease.drop(self)
        try:
            if (
                isinstance(error, Exception)
                and not isinstance(error, RunError)
                and self.stored
                and not self.released
                and self.state.status == SessionStatus.RUNNING
            ):
                reason = f"the turn stopped on an internal error ({type(error).__name__}: {error})"
                log.error("session %s: %s", self.state.session_id, reason)
                self.status(SessionStatus.FAILED, reason[:2000])
            if self.pending and self.stored and not self.released:
                await self.commit(release=True)
        except RunError:
            log.exception("session %s: final commit failed", self.state.session_id)
        finally:
            if self.slots is not None and self.limiter is not None:
                slots, self.slots = self.slots, None
                await self.limiter.release_slots(slots)
            if self.stored and not self.released:
                self.released = True
                try:
                    await self.store.release(self.state.session_id, owner=self.owner)
                except RunError as exc:  # the lease expires on its own; keep the first error
                    log.warning(
                        "session %s: could not give the lease back (%s); it expires in %g s",
                        self.state.session_id,
                        exc,
                        self.lease.ttl,
                    )

    # the result ---------------------------------------------------------------

    def result(
        self,
        output: str | None,
        *,
        error: str | None = None,
        stop_reason: str | None = None,
        data: Any = None,
    ) -> TurnResult:
        """The turn's :class:`TurnResult` (the only place one is built)."""
        st = self.state
        approval = None
        if st.status == SessionStatus.AWAITING_APPROVAL and st.pending_approval is not None:
            approval = PendingApproval.from_event(st.session_id, st.pending_approval)
            output = approval.question()
        return TurnResult(
            st.session_id,
            st.status,
            output,
            self.usage,
            self.events,
            error=error,
            approval=approval,
            stop_reason=stop_reason,
            cost=st.cost - self.cost0,
            data=data,
        )
