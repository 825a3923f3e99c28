"""The ``SessionStore`` seam: what the runtime needs from persistence.

DESIGN.md lists the protocol under ``store``; it lives here, in the layer
that consumes it, so that the runtime never imports the store layer (lower
layers never import higher ones). ``tether.store`` implements and
re-exports it.

A session is a row (:class:`SessionRecord`, a cache of state derived from
the log) plus an append-only log of :class:`~tether.spec.events.Event`.
Writers hold a *lease*: ``acquire`` takes it (or fails with
``SessionConflict``), every ``commit`` checks it and renews it (or, with
``release=True``, gives it back), ``release`` gives it back. A commit is
one transaction: the events and the row land together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tether.spec.events import Event, SessionStatus
from tether.spec.messages import Usage

__all__ = ["SessionRecord", "SessionStatus", "SessionStore"]


@dataclass(slots=True)
class SessionRecord:
    """The session row: identity plus a cache of state derived from its events.

    ``event_count`` is the number of stored events (the next event's ``seq``
    is ``event_count + 1``); ``step`` the step counter; ``last_error`` the
    message of the failure that stopped the session, if any; ``cost`` the
    dollars its model calls cost.
    """

    id: str
    agent: str
    agent_version: str
    user_id: str | None
    status: str
    created_at: float
    updated_at: float
    step: int = 0
    event_count: int = 0
    usage: Usage = field(default_factory=Usage)
    last_error: str | None = None
    lease_owner: str | None = None
    lease_expires: float | None = None
    #: dollars spent by the session's model calls, at the prices in force when made
    cost: float = 0.0
    #: the tenant (organisation) the user belongs to, when there is one
    tenant_id: str | None = None


class SessionStore(Protocol):
    """Durable sessions. Implementations: in-memory, SQLAlchemy (SQLite, PostgreSQL)."""

    async def create(
        self, record: SessionRecord, events: Sequence[Event], *, owner: str, lease_ttl: float
    ) -> None:
        """Insert a new session holding the lease for ``owner``, with its first events.

        Raises ``SessionConflict`` if the id exists.
        """
        ...

    async def acquire(
        self,
        session_id: str,
        *,
        owner: str,
        now: float,
        lease_ttl: float,
        replace: str | None = None,
    ) -> tuple[SessionRecord, list[Event]]:
        """Take the lease and load the session with all its stored events.

        Succeeds if the lease is free, expired, already ``owner``'s, or held
        by exactly ``replace`` (a holder the caller has proven dead). Raises
        ``SessionNotFound`` or ``SessionConflict`` (with ``holder`` and
        ``expires``).
        """
        ...

    async def commit(
        self,
        record: SessionRecord,
        events: Sequence[Event],
        *,
        owner: str,
        lease_ttl: float,
        release: bool = False,
    ) -> None:
        """Append ``events`` (their ``seq`` already set) and update the row, atomically.

        Renews the lease to ``record.updated_at + lease_ttl``, or with
        ``release=True`` gives it back in the same transaction (a turn's last
        commit: one write instead of two). Raises ``SessionConflict`` if
        ``owner`` no longer holds the lease.
        """
        ...

    async def append(self, session_id: str, events: Sequence[Event], *, owner: str) -> None:
        """Append ``events`` (their ``seq`` set) if ``owner`` holds the lease; one transaction.

        Unlike :meth:`commit`, the session row is not written: a turn's
        commits between status changes use it (the row is a cache of the log,
        brought up to date by the next ``commit``; the lease is kept by
        :meth:`renew`). Raises ``SessionConflict`` if ``owner`` does not hold
        the lease or a ``seq`` is already stored; nothing is written then.
        Optional for a store: the runtime uses ``commit`` when it is absent.
        """
        ...

    async def release(self, session_id: str, *, owner: str) -> None:
        """Give the lease back (no-op if ``owner`` does not hold it)."""
        ...

    async def renew(self, session_id: str, *, owner: str, now: float, lease_ttl: float) -> float:
        """Extend ``owner``'s lease to ``now + lease_ttl``; return that new expiry.

        A heartbeat for a turn that runs longer than ``lease_ttl`` between
        commits (a slow model call or tool). It is one compare-and-set on
        ``lease_owner = owner`` that writes the lease expiry and nothing else:
        not the status, not events, not ``updated_at``. The expiry is set, not
        maximised: it becomes ``now + lease_ttl`` even if that is earlier.

        The check is on the owner, not the clock: an owner whose lease has
        already expired but that nobody has taken over may still renew (the
        row still names it, so nobody else can have written). Once the lease
        was released, or another owner acquired it (after it expired, or with
        ``replace``), renew raises ``SessionConflict`` (with ``holder`` and
        ``expires``) and changes nothing; the caller must stop advancing the
        session. Raises ``SessionNotFound`` for an unknown id.
        """
        ...

    async def get(self, session_id: str) -> SessionRecord:
        """The session row. Raises ``SessionNotFound``."""
        ...

    async def events(self, session_id: str, *, after_seq: int = 0) -> list[Event]:
        """Stored events with ``seq > after_seq``, in order."""
        ...

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
        ...

    async def scan_events(self, types: Sequence[str], *, since: float | None = None) -> list[Event]:
        """Stored events of the given types across all sessions (reports, audits).

        Ordered by session then ``seq``; ``since`` keeps events at or after
        that time.
        """
        ...

    async def aclose(self) -> None:
        """Release connections. The store is unusable afterwards."""
        ...
