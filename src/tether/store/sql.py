"""The durable :class:`~tether.runtime.ports.SessionStore`: SQLAlchemy async Core.

SQLite through ``aiosqlite`` is the default (a file under ``~/.tether``);
PostgreSQL through ``asyncpg`` is for servers with several replicas. Every
statement is built once per store and reused; ``commit``, the hot path, runs
through the leanest route each driver allows (see ``_writers``).

Leases are a compare-and-set on the session row: ``acquire`` is a single
``UPDATE ... WHERE the lease is free, expired, ours, or replace's``;
``commit`` updates the row only ``WHERE lease_owner = owner`` and inserts the
events in the same transaction, so a writer that lost its lease writes
nothing; ``renew`` moves only ``lease_expires``, under the same check.
Timestamps come from the caller's clock, never the database's.

Every operation runs under ``op_timeout``, and the pool never waits longer
than ``pool_timeout`` for a connection, so a stuck database surfaces as
:class:`~tether.store.errors.StoreTimeout` instead of a hang.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tether.exceptions import ConfigError, SessionConflict, SessionNotFound
from tether.runtime.ports import SessionRecord
from tether.spec.events import Event
from tether.store import migrations
from tether.store._engine import (
    QUERY_CANCELED,
    default_url,
    is_lock_timeout,
    is_transient,
    make_engine,
    resolve_url,
    sqlstate,
)
from tether.store._writers import COMMITTED, LEASE_LOST, Statements, Writer, make_writer
from tether.store.errors import StoreTimeout, StoreUnavailable, lease_conflict, lease_lost
from tether.store.pins import SQLToolPins
from tether.store.tables import (
    EVENT_COLUMNS,
    SESSION_COLUMNS,
    event_row,
    events,
    record_params,
    row_event,
    row_record,
    sessions,
)

__all__ = ["SQLStore", "default_url", "resolve_url"]

logger = logging.getLogger(__name__)

_s, _e = sessions.c, events.c
_ROW_FIELDS = (
    "status",
    "step",
    "event_count",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "last_error",
    "updated_at",
    "cost",
)
_ACQUIRE = (
    sessions.update()
    .where(
        _s.id == sa.bindparam("sid"),
        sa.or_(
            _s.lease_owner.is_(None),
            _s.lease_expires < sa.bindparam("now"),
            _s.lease_owner == sa.bindparam("owner"),
            _s.lease_owner == sa.bindparam("replace"),
        ),
    )
    .values(lease_owner=sa.bindparam("owner"), lease_expires=sa.bindparam("expires"))
    .returning(*SESSION_COLUMNS)
)


def _commit_update(fields: Sequence[str]) -> sa.Update:
    return (
        sessions.update()
        .where(_s.id == sa.bindparam("sid"), _s.lease_owner == sa.bindparam("owner"))
        .values(
            {c: sa.bindparam(c) for c in fields}
            | {"lease_owner": sa.bindparam("new_owner"), "lease_expires": sa.bindparam("expires")}
        )
    )


_COMMIT = _commit_update(_ROW_FIELDS)
# ``status`` is indexed: leaving it out when it has not changed keeps the
# commit from rewriting index entries (SQLite rewrites them for every column
# in the SET list, changed or not).
_COMMIT_SAME_STATUS = _commit_update([f for f in _ROW_FIELDS if f != "status"])
_RELEASE = (
    sessions.update()
    .where(_s.id == sa.bindparam("sid"), _s.lease_owner == sa.bindparam("owner"))
    .values(lease_owner=sa.null(), lease_expires=sa.null())
)
# A heartbeat: moves the expiry of a lease ``owner`` still holds, nothing else.
_RENEW = (
    sessions.update()
    .where(_s.id == sa.bindparam("sid"), _s.lease_owner == sa.bindparam("owner"))
    .values(lease_expires=sa.bindparam("expires"))
)
_INSERT_SESSION = sessions.insert()
_INSERT_EVENTS = events.insert()
_LEASE = sa.select(_s.lease_owner, _s.lease_expires).where(_s.id == sa.bindparam("sid"))
_LEASE_CHECK = sa.select(_s.id).where(
    _s.id == sa.bindparam("sid"), _s.lease_owner == sa.bindparam("owner")
)
_GET = sa.select(*SESSION_COLUMNS).where(_s.id == sa.bindparam("sid"))
_EVENTS = (
    sa.select(*EVENT_COLUMNS)
    .where(_e.session_id == sa.bindparam("sid"), _e.seq > sa.bindparam("after"))
    .order_by(_e.seq)
)


def _not_found(session_id: str) -> SessionNotFound:
    return SessionNotFound(
        f"no session with id {session_id!r}; check the id (list_sessions() shows recent "
        "ones) or start a new session"
    )


class SQLStore:
    """Sessions in SQLite or PostgreSQL. Open with :meth:`open`; close with :meth:`aclose`."""

    def __init__(self, engine: AsyncEngine, *, op_timeout: float = 10.0) -> None:
        """Wrap an engine already migrated to head. Prefer :meth:`open`."""
        self._engine = engine
        self._op_timeout = op_timeout
        # The status this store last wrote or read for a (session, lease owner)
        # it holds the lease for: a commit that keeps it leaves ``status`` out
        # of its UPDATE (see _COMMIT_SAME_STATUS). Only the lease holder writes
        # the row, and a commit checks the lease, so the entry is right whenever
        # the commit succeeds; entries go at release.
        self._status: dict[tuple[str, str], str] = {}
        statements = Statements(
            _COMMIT, _COMMIT_SAME_STATUS, _INSERT_EVENTS, _INSERT_SESSION, _RELEASE, _LEASE_CHECK
        )
        busy_ms = max(1, int(op_timeout * 900))  # as the engine's; see _engine
        self._writer: Writer = make_writer(engine, statements, busy_ms=busy_ms)

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        migrate: bool = True,
        schema: str | None = None,
        op_timeout: float = 10.0,
        pool_size: int = 5,
        pool_timeout: float | None = None,
    ) -> SQLStore:
        """Connect, migrate to the newest schema (unless ``migrate=False``), return a store.

        ``url`` defaults to ``$TETHER_DATABASE_URL``, then a SQLite file under
        ``$TETHER_HOME`` (``~/.tether``). ``schema`` (PostgreSQL only) puts the
        tables in that schema, creating it if needed. With ``migrate=False`` a
        database that is not at the newest revision is refused. ``op_timeout``
        bounds every operation (migrations get at least a minute).
        """
        u = make_url(resolve_url(url))
        engine = make_engine(
            u,
            schema=schema,
            op_timeout=op_timeout,
            pool_size=pool_size,
            pool_timeout=op_timeout if pool_timeout is None else pool_timeout,
        )
        store = cls(engine, op_timeout=op_timeout)
        where = u.render_as_string()
        try:
            async with store._guard("open", None, limit=max(op_timeout, 60.0)):
                await store._prepare(migrate=migrate, schema=schema, where=where)
        except BaseException:
            await store.aclose()
            raise
        logger.debug("opened session store at %s", where)
        return store

    async def _prepare(self, *, migrate: bool, schema: str | None, where: str) -> None:
        async with self._engine.begin() as conn:
            if self._engine.dialect.name == "postgresql":  # migrations may wait on a lock
                await conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            if migrate:
                await conn.run_sync(migrations.lock)
                if schema is not None:
                    quoted = self._engine.dialect.identifier_preparer.quote_identifier(schema)
                    await conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
                await conn.run_sync(migrations.upgrade)
                return
            at, head = await conn.run_sync(migrations.current), migrations.head()
            if at != head:
                raise ConfigError(
                    f"the database at {where} is at schema revision {at} but this Tether "
                    f"needs {head}; open it with migrate=True or run `alembic upgrade head`"
                )

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (for diagnostics and tests)."""
        return self._engine

    @functools.cached_property
    def tool_pins(self) -> SQLToolPins:
        """Pinned tool definitions of tool sources, in this database (``tether.store.pins``)."""
        return SQLToolPins(self._engine, self._guard)

    @asynccontextmanager
    async def _guard(
        self, op: str, session_id: str | None, *, limit: float | None = None
    ) -> AsyncIterator[None]:
        seconds = self._op_timeout if limit is None else limit
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                yield
        except Exception as e:
            what = op if session_id is None else f"{op} of session {session_id}"
            if isinstance(e, TimeoutError):
                how = f"took longer than {seconds:g}s" if deadline.expired() else f"timed out ({e})"
            elif sqlstate(e) == QUERY_CANCELED:
                how = "hit the server's statement_timeout"
            elif is_lock_timeout(e):
                how = f"waited longer than {seconds * 0.9:g}s for SQLite's write lock"
            elif is_transient(e):
                raise self._unavailable(op, session_id, e) from e
            else:
                raise
            raise StoreTimeout(
                f"store {what} {how}; the database is overloaded, locked or unreachable. "
                "A write that timed out may or may not have been applied: acquire() the "
                "session again to see its stored state before retrying, or raise op_timeout"
            ) from e

    @staticmethod
    def _unavailable(op: str, session_id: str | None, e: Exception) -> StoreUnavailable:
        """``e``, a transient failure (see ``is_transient``), as ``StoreUnavailable``."""
        what = op if session_id is None else f"{op} of session {session_id}"
        return StoreUnavailable(
            f"store {what} failed: the database is unavailable or busy "
            f"({getattr(e, 'orig', None) or e}); retry in a moment"
        )

    async def _holder(self, conn: AsyncConnection, session_id: str) -> tuple[Any, Any]:
        row = (await conn.execute(_LEASE, {"sid": session_id})).first()
        if row is None:
            raise _not_found(session_id)
        return row[0], row[1]

    async def create(
        self, record: SessionRecord, events: Sequence[Event], *, owner: str, lease_ttl: float
    ) -> None:
        """Insert a new session holding the lease for ``owner``, with its first events."""
        row = record_params(record)
        row.update(
            id=record.id,
            agent=record.agent,
            agent_version=record.agent_version,
            user_id=record.user_id,
            tenant_id=record.tenant_id,
            created_at=record.created_at,
            lease_owner=owner,
            lease_expires=record.updated_at + lease_ttl,
        )
        rows = [event_row(record.id, e) for e in events]
        try:
            outcome = self._writer.create_now(row, rows)
        except Exception as e:
            if is_transient(e):
                raise self._unavailable("create", record.id, e) from e
            raise
        if outcome is None:
            async with self._guard("create", record.id):
                outcome = await self._writer.create(row, rows)
        if outcome == COMMITTED:
            self._status[record.id, owner] = record.status
        else:
            raise SessionConflict(
                f"session {record.id} already exists (or repeats an event seq); use a "
                "new id, or acquire() the existing session to continue it"
            )

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
        params = {
            "sid": session_id,
            "owner": owner,
            "now": now,
            "expires": now + lease_ttl,
            "replace": replace,
        }
        async with self._guard("acquire", session_id), self._writer.transaction() as conn:
            row = (await conn.execute(_ACQUIRE, params)).first()
            if row is None:
                holder, expires = await self._holder(conn, session_id)
                raise lease_conflict(session_id, holder, expires)
            evs = (await conn.execute(_EVENTS, {"sid": session_id, "after": 0})).all()
        record = row_record(row)
        self._status[session_id, owner] = record.status
        return record, [row_event(session_id, r) for r in evs]

    async def commit(
        self,
        record: SessionRecord,
        events: Sequence[Event],
        *,
        owner: str,
        lease_ttl: float,
        release: bool = False,
    ) -> None:
        """Append ``events`` and update the row in one transaction, if ``owner`` holds the lease.

        With ``release=True`` the lease is given back in the same transaction.
        """
        sid = record.id
        params = record_params(record)
        params["sid"] = sid
        params["owner"] = owner
        params["new_owner"] = None if release else owner
        params["expires"] = None if release else record.updated_at + lease_ttl
        rows = [event_row(sid, e) for e in events]
        # Popped first: after a failure we no longer know what the row holds.
        stored_status = self._status.pop((sid, owner), None)
        changed = record.status != stored_status
        try:
            outcome = self._writer.commit_now(params, rows, status_changed=changed)
        except Exception as e:
            if is_transient(e):
                raise self._unavailable("commit", sid, e) from e
            raise
        if outcome == COMMITTED:
            if not release:
                self._status[sid, owner] = record.status
            return
        async with self._guard("commit", sid):
            if outcome is None:
                outcome = await self._writer.commit(params, rows, status_changed=changed)
            if outcome == COMMITTED:
                if not release:
                    self._status[sid, owner] = record.status
                return
            if outcome == LEASE_LOST:
                async with self._engine.connect() as conn:
                    holder, expires = await self._holder(conn, sid)
                raise lease_lost(sid, owner, holder, expires)
        raise SessionConflict(
            f"session {sid}: an event with seq in {events[0].seq}..{events[-1].seq} is "
            "already stored; another writer appended to this session. Nothing was written; "
            "reload it with acquire() before advancing it"
        )

    async def append(self, session_id: str, events: Sequence[Event], *, owner: str) -> None:
        """Append ``events`` if ``owner`` holds the lease, leaving the session row as it is.

        A turn's commits between status changes (after a step, before an unsafe
        tool) write only events: the row, a cache of what the log says, is
        brought up to date by the next :meth:`commit`.
        """
        if not events:
            return
        params = {"sid": session_id, "owner": owner}
        rows = [event_row(session_id, e) for e in events]
        try:
            outcome = self._writer.append_now(params, rows)
        except Exception as e:
            if is_transient(e):
                raise self._unavailable("append", session_id, e) from e
            raise
        if outcome == COMMITTED:
            return
        async with self._guard("append", session_id):
            if outcome is None:
                outcome = await self._writer.append(params, rows)
            if outcome == COMMITTED:
                return
            if outcome == LEASE_LOST:
                self._status.pop((session_id, owner), None)
                async with self._engine.connect() as conn:
                    holder, expires = await self._holder(conn, session_id)
                raise lease_lost(session_id, owner, holder, expires)
        raise SessionConflict(
            f"session {session_id}: an event with seq in {events[0].seq}..{events[-1].seq} is "
            "already stored; another writer appended to this session. Nothing was written; "
            "reload it with acquire() before advancing it"
        )

    async def release(self, session_id: str, *, owner: str) -> None:
        """Give the lease back (no-op if ``owner`` does not hold it)."""
        self._status.pop((session_id, owner), None)
        params = {"sid": session_id, "owner": owner}
        try:
            if self._writer.release_now(params) is not None:
                return
        except Exception as e:
            if is_transient(e):
                raise self._unavailable("release", session_id, e) from e
            raise
        async with self._guard("release", session_id):
            await self._writer.release(params)

    async def renew(self, session_id: str, *, owner: str, now: float, lease_ttl: float) -> float:
        """Extend ``owner``'s lease to ``now + lease_ttl``, or raise and change nothing.

        One ``UPDATE ... SET lease_expires WHERE lease_owner = owner``; when it
        matches no row, the row is read to tell a lost lease from an unknown id.
        A renew is rare (every few seconds per running turn), so it takes the
        ordinary transaction path rather than a writer's inline shortcut.
        """
        expires = now + lease_ttl
        params = {"sid": session_id, "owner": owner, "expires": expires}
        async with self._guard("renew", session_id), self._writer.transaction() as conn:
            if (await conn.execute(_RENEW, params)).rowcount == 1:
                return expires
            holder, holder_expires = await self._holder(conn, session_id)
        # The lease is gone, so what this store last knew of the row is stale.
        self._status.pop((session_id, owner), None)
        raise lease_lost(session_id, owner, holder, holder_expires)

    async def get(self, session_id: str) -> SessionRecord:
        """The session row. Raises ``SessionNotFound``."""
        async with self._guard("get", session_id), self._engine.connect() as conn:
            row = (await conn.execute(_GET, {"sid": session_id})).first()
        if row is None:
            raise _not_found(session_id)
        return row_record(row)

    async def events(self, session_id: str, *, after_seq: int = 0) -> list[Event]:
        """Stored events with ``seq > after_seq``, in order."""
        params = {"sid": session_id, "after": after_seq}
        async with self._guard("events", session_id), self._engine.connect() as conn:
            rows = (await conn.execute(_EVENTS, params)).all()
        return [row_event(session_id, r) for r in rows]

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
        q = sa.select(*SESSION_COLUMNS)
        if since is not None:
            q = q.where(_s.created_at >= since)
        if status is not None:
            q = q.where(_s.status == status)
        if agent is not None:
            q = q.where(_s.agent == agent)
        if user_id is not None:
            q = q.where(_s.user_id == user_id)
        q = q.order_by(_s.created_at.desc(), _s.id.desc())
        if limit is not None:
            q = q.limit(max(limit, 0))
        async with self._guard("list_sessions", None), self._engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [row_record(r) for r in rows]

    async def scan_events(self, types: Sequence[str], *, since: float | None = None) -> list[Event]:
        """Stored events of the given types across all sessions, by session then ``seq``."""
        if not types:
            return []
        q = sa.select(_e.session_id, *EVENT_COLUMNS).where(_e.type.in_(list(types)))
        if since is not None:
            q = q.where(_e.time >= since)
        q = q.order_by(_e.session_id, _e.seq)
        async with self._guard("scan_events", None), self._engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [row_event(r[0], r[1:]) for r in rows]

    async def aclose(self) -> None:
        """Close every connection. The store is unusable afterwards."""
        try:
            async with asyncio.timeout(self._op_timeout):
                await self._writer.aclose()
        except TimeoutError:
            logger.warning("a store write was still running at close; abandoning it")
        finally:
            await self._engine.dispose()
