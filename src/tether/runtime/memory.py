"""A :class:`~tether.runtime.ports.SessionStore` kept in process memory.

Same semantics as the SQL store (leases, conflicts, atomic commits), none of
its durability: everything is gone when the process ends. Use it for tests,
for benchmarks that should not measure a database, and for throwaway runs.
It lives in the runtime layer so that ``Runtime()`` works without importing
the store layer (lower layers never import higher ones); ``tether.store``
re-exports it.

Every method runs without awaiting anything, so each one is atomic with
respect to other coroutines on the same event loop. Records are copied in
and out (callers may mutate theirs); events are frozen and shared, so their
``data`` dicts must be treated as read-only, as everywhere else.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from tether.exceptions import SessionConflict, SessionNotFound
from tether.runtime.lease import lease_conflict, lease_lost
from tether.runtime.pins import InMemoryToolPins
from tether.runtime.ports import SessionRecord
from tether.spec.events import Event

__all__ = ["InMemoryStore"]


def _copy(r: SessionRecord) -> SessionRecord:
    return SessionRecord(
        r.id,
        r.agent,
        r.agent_version,
        r.user_id,
        r.status,
        r.created_at,
        r.updated_at,
        r.step,
        r.event_count,
        r.usage,
        r.last_error,
        r.lease_owner,
        r.lease_expires,
        r.cost,
        r.tenant_id,
    )


@dataclass(slots=True)
class _Entry:
    record: SessionRecord
    events: list[Event] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)  # sorted, parallel to ``events``

    def append(self, evs: Sequence[Event]) -> None:
        for e in evs:
            if not self.seqs or e.seq > self.seqs[-1]:
                self.seqs.append(e.seq)
                self.events.append(e)
            else:
                i = bisect_right(self.seqs, e.seq)
                self.seqs.insert(i, e.seq)
                self.events.insert(i, e)

    def check_new(self, session_id: str, evs: Sequence[Event]) -> None:
        last = self.seqs[-1] if self.seqs else None
        seen: set[int] = set()
        for e in evs:
            if e.seq in seen or (last is not None and e.seq <= last and e.seq in self.seqs):
                raise SessionConflict(
                    f"session {session_id}: event seq {e.seq} is already stored; "
                    "another writer appended to this session. Reload it and retry"
                )
            seen.add(e.seq)


class InMemoryStore:
    """Sessions in a dict. Cheap: a commit is a few microseconds."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Entry] = {}
        self._closed = False
        #: pinned tool definitions of tool sources (``tether.runtime.pins``)
        self.tool_pins = InMemoryToolPins()

    def _entry(self, session_id: str) -> _Entry:
        if self._closed:
            raise RuntimeError("this InMemoryStore was closed; open a new one")
        try:
            return self._sessions[session_id]
        except KeyError:
            raise SessionNotFound(
                f"no session with id {session_id!r}; check the id (list_sessions() shows "
                "recent ones) or start a new session"
            ) from None

    async def create(
        self, record: SessionRecord, events: Sequence[Event], *, owner: str, lease_ttl: float
    ) -> None:
        """Insert a new session holding the lease for ``owner``, with its first events."""
        if self._closed:
            raise RuntimeError("this InMemoryStore was closed; open a new one")
        if record.id in self._sessions:
            raise SessionConflict(
                f"session {record.id} already exists; use a new id, or acquire() the "
                "existing session to continue it"
            )
        stored = _copy(record)
        stored.lease_owner = owner
        stored.lease_expires = record.updated_at + lease_ttl
        entry = _Entry(stored)
        entry.check_new(record.id, events)
        entry.append(events)
        self._sessions[record.id] = entry

    async def acquire(
        self,
        session_id: str,
        *,
        owner: str,
        now: float,
        lease_ttl: float,
        replace: str | None = None,
    ) -> tuple[SessionRecord, list[Event]]:
        """Take the lease (free, expired, ours, or ``replace``'s) and load the session."""
        entry = self._entry(session_id)
        r = entry.record
        holder, expires = r.lease_owner, r.lease_expires
        if not (
            holder is None
            or holder == owner
            or (replace is not None and holder == replace)
            or (expires is not None and expires < now)
        ):
            raise lease_conflict(session_id, holder, expires)
        r.lease_owner = owner
        r.lease_expires = now + lease_ttl
        return _copy(r), list(entry.events)

    async def commit(
        self,
        record: SessionRecord,
        events: Sequence[Event],
        *,
        owner: str,
        lease_ttl: float,
        release: bool = False,
    ) -> None:
        """Append ``events`` and update the row, or raise and change nothing."""
        entry = self._entry(record.id)
        r = entry.record
        if r.lease_owner != owner:
            raise lease_lost(record.id, owner, r.lease_owner, r.lease_expires)
        if events:
            entry.check_new(record.id, events)
            entry.append(events)
        r.status = record.status
        r.step = record.step
        r.event_count = record.event_count
        r.usage = record.usage
        r.cost = record.cost
        r.last_error = record.last_error
        r.updated_at = record.updated_at
        if release:
            r.lease_owner = r.lease_expires = None
        else:
            r.lease_expires = record.updated_at + lease_ttl

    async def append(self, session_id: str, events: Sequence[Event], *, owner: str) -> None:
        """Append ``events`` if ``owner`` holds the lease; the row is left as it is."""
        entry = self._entry(session_id)
        r = entry.record
        if r.lease_owner != owner:
            raise lease_lost(session_id, owner, r.lease_owner, r.lease_expires)
        if events:
            entry.check_new(session_id, events)
            entry.append(events)

    async def release(self, session_id: str, *, owner: str) -> None:
        """Give the lease back (no-op if ``owner`` does not hold it)."""
        entry = self._sessions.get(session_id)
        if entry is not None and entry.record.lease_owner == owner:
            entry.record.lease_owner = None
            entry.record.lease_expires = None

    async def renew(self, session_id: str, *, owner: str, now: float, lease_ttl: float) -> float:
        """Extend ``owner``'s lease to ``now + lease_ttl``, or raise and change nothing.

        Only the lease moves. An expired lease nobody took over still names
        ``owner``, so it may be renewed.
        """
        r = self._entry(session_id).record
        if r.lease_owner != owner:
            raise lease_lost(session_id, owner, r.lease_owner, r.lease_expires)
        expires = now + lease_ttl
        r.lease_expires = expires
        return expires

    async def get(self, session_id: str) -> SessionRecord:
        """The session row. Raises ``SessionNotFound``."""
        return _copy(self._entry(session_id).record)

    async def events(self, session_id: str, *, after_seq: int = 0) -> list[Event]:
        """Stored events with ``seq > after_seq``, in order."""
        entry = self._sessions.get(session_id)
        if entry is None:
            return []
        return entry.events[bisect_right(entry.seqs, after_seq) :]

    async def list_sessions(
        self,
        *,
        limit: int | None = 50,
        status: str | None = None,
        agent: str | None = None,
        user_id: str | None = None,
        since: float | None = None,
    ) -> list[SessionRecord]:
        """Newest sessions first (by ``created_at``; ties: larger id first).

        ``limit=None`` lists all; ``since`` keeps sessions created at or after it.
        """
        rows = [
            e.record
            for e in self._sessions.values()
            if (status is None or e.record.status == status)
            and (agent is None or e.record.agent == agent)
            and (user_id is None or e.record.user_id == user_id)
            and (since is None or e.record.created_at >= since)
        ]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        if limit is not None:
            rows = rows[: max(limit, 0)]
        return [_copy(r) for r in rows]

    async def scan_events(self, types: Sequence[str], *, since: float | None = None) -> list[Event]:
        """Stored events of the given types across all sessions, by session then ``seq``."""
        wanted = frozenset(types)
        return [
            ev
            for sid in sorted(self._sessions)
            for ev in self._sessions[sid].events
            if ev.type in wanted and (since is None or ev.time >= since)
        ]

    async def aclose(self) -> None:
        """Forget every session. The store is unusable afterwards."""
        self._sessions.clear()
        self._closed = True
