"""An in-process :class:`SessionStore`: the runtime's default when no store is given.

Same semantics as the SQL store (leases, conflicts, atomic commits) with
nothing durable: sessions die with the process. It lives in the runtime
layer so that ``Runtime()`` works without importing the store layer;
``tether.store`` re-exports it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from tether.exceptions import SessionConflict, SessionNotFound
from tether.runtime.ports import SessionRecord
from tether.spec.events import Event

__all__ = ["InMemoryStore"]


class InMemoryStore:
    """Sessions in dicts. Commit cost is a list extend and a row copy."""

    def __init__(self) -> None:
        self._rows: dict[str, SessionRecord] = {}
        self._events: dict[str, list[Event]] = {}

    def _row(self, session_id: str) -> SessionRecord:
        row = self._rows.get(session_id)
        if row is None:
            raise SessionNotFound(f"no session with id {session_id!r}")
        return row

    async def create(
        self, record: SessionRecord, events: Sequence[Event], *, owner: str, lease_ttl: float
    ) -> None:
        if record.id in self._rows:
            raise SessionConflict(f"session {record.id} already exists")
        row = copy.copy(record)
        row.event_count = len(events)
        row.lease_owner = owner
        row.lease_expires = record.updated_at + lease_ttl
        self._rows[record.id] = row
        self._events[record.id] = list(events)

    async def acquire(
        self,
        session_id: str,
        *,
        owner: str,
        now: float,
        lease_ttl: float,
        replace: str | None = None,
    ) -> tuple[SessionRecord, list[Event]]:
        row = self._row(session_id)
        holder = row.lease_owner
        free = (
            holder is None
            or holder == owner
            or (replace is not None and holder == replace)
            or (row.lease_expires is not None and row.lease_expires < now)
        )
        if not free:
            raise SessionConflict(
                f"session {session_id} is being advanced by another process ({holder}); "
                "wait for it to finish, or resume it after its lease expires",
                holder=holder,
                expires=row.lease_expires,
            )
        row.lease_owner = owner
        row.lease_expires = now + lease_ttl
        return copy.copy(row), list(self._events[session_id])

    async def commit(
        self, record: SessionRecord, events: Sequence[Event], *, owner: str, lease_ttl: float
    ) -> None:
        row = self._row(record.id)
        if row.lease_owner != owner:
            raise SessionConflict(
                f"session {record.id}: this process no longer holds the lease "
                f"(held by {row.lease_owner}); nothing was written",
                holder=row.lease_owner,
                expires=row.lease_expires,
            )
        log = self._events[record.id]
        if events and events[0].seq != len(log) + 1:
            raise SessionConflict(
                f"session {record.id}: event {events[0].seq} was already written by another "
                "writer; reload the session"
            )
        log.extend(events)
        row.status = record.status
        row.step = record.step
        row.event_count = len(log)
        row.usage = record.usage
        row.last_error = record.last_error
        row.updated_at = record.updated_at
        row.lease_expires = record.updated_at + lease_ttl

    async def release(self, session_id: str, *, owner: str) -> None:
        row = self._rows.get(session_id)
        if row is not None and row.lease_owner == owner:
            row.lease_owner = None
            row.lease_expires = None

    async def get(self, session_id: str) -> SessionRecord:
        return copy.copy(self._row(session_id))

    async def events(self, session_id: str, *, after_seq: int = 0) -> list[Event]:
        self._row(session_id)
        return [e for e in self._events[session_id] if e.seq > after_seq]

    async def list_sessions(
        self,
        *,
        limit: int = 50,
        status: str | None = None,
        agent: str | None = None,
        user_id: str | None = None,
    ) -> list[SessionRecord]:
        rows = [
            copy.copy(r)
            for r in self._rows.values()
            if (status is None or r.status == status)
            and (agent is None or r.agent == agent)
            and (user_id is None or r.user_id == user_id)
        ]
        rows.sort(key=lambda r: r.updated_at, reverse=True)
        return rows[:limit]

    async def aclose(self) -> None:
        self._rows.clear()
        self._events.clear()
