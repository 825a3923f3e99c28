"""Where the SQL store's write transactions run, one strategy per driver.

``commit`` is the hot path (once per step; ``create`` and ``release`` once
per turn), so each driver gets the leanest correct route; everything else
uses SQLAlchemy Core through :meth:`Writer.transaction`.

- :class:`SQLiteWriter`: ``commit``, ``create`` and ``release`` run inline on
  the event loop on a plain :mod:`sqlite3` connection that never waits on a
  lock and never checkpoints (see the class for why that is safe and why a
  worker thread costs more than the write); everything else on one
  dedicated aiosqlite connection. All writes share one ``asyncio.Lock``.
- :class:`AsyncpgWriter`: pooled connections; ``commit`` is a single
  prepared statement on the raw ``asyncpg`` connection (update and insert
  in one data-modifying CTE), so one round trip instead of four.
- :class:`PooledWriter`: any other async dialect, SQLAlchemy Core throughout.

The SQL each strategy runs is compiled from the Core statements in
:mod:`tether.store.sql`, so there is one definition of every statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["COMMITTED", "DUPLICATE", "LEASE_LOST", "Statements", "Writer", "make_writer"]

logger = logging.getLogger(__name__)

COMMITTED: Final = 0
LEASE_LOST: Final = 1  # the row was not ours (or does not exist); nothing written
DUPLICATE: Final = 2  # an event (session_id, seq) already exists; nothing written

_UNIQUE_VIOLATION = "23505"
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)  # primary result codes

_Args = tuple[str, tuple[Any, ...]]  # SQL and its positional parameters
_Body = Callable[[sqlite3.Connection, _Args, Sequence[Any]], int]


def _getter(keys: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """``values -> tuple(values[k] for k in keys)``, at C speed."""
    get = operator.itemgetter(*keys)
    if len(keys) == 1:
        return lambda values: (get(values),)
    return get


class _Rollback(Exception):
    def __init__(self, outcome: int) -> None:
        self.outcome = outcome


def _positional(
    stmt: sa.Update | sa.Insert | sa.Select[Any], dialect: sa.Dialect
) -> tuple[str, tuple[str, ...]]:
    compiled = stmt.compile(dialect=dialect)
    order = compiled.positiontup
    if order is None:  # pragma: no cover - every supported driver is positional
        raise TypeError(f"{dialect.name} uses named parameters; use PooledWriter")
    return compiled.string, tuple(order)


@dataclass(frozen=True, slots=True)
class Statements:
    """The write statements a writer runs (built once, in :mod:`tether.store.sql`)."""

    commit: sa.Update  # the guarded row update of a commit
    commit_same_status: sa.Update  # the same, leaving ``status`` alone
    insert_events: sa.Insert
    insert_session: sa.Insert
    release: sa.Update
    lease_check: sa.Select[Any]  # the session's id if ``owner`` holds its lease (an append)


class Writer:
    """Runs write transactions through SQLAlchemy Core; subclasses take shortcuts."""

    def __init__(self, engine: AsyncEngine, statements: Statements) -> None:
        self._engine = engine
        self._stmts = statements
        self._insert_keys = tuple(c.key for c in statements.insert_events.table.c)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside a transaction: committed on exit, rolled back on error."""
        async with self._engine.begin() as conn:
            yield conn

    def _dicts(self, rows: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [dict(zip(self._insert_keys, r, strict=True)) for r in rows]

    async def commit(
        self,
        params: Mapping[str, Any],
        rows: Sequence[tuple[Any, ...]],
        *,
        status_changed: bool = True,
    ) -> int:
        """Run the guarded row update, then insert ``rows``, in one transaction.

        ``status_changed=False`` uses the update that leaves ``status`` alone.
        """
        update = self._stmts.commit if status_changed else self._stmts.commit_same_status
        dicts = self._dicts(rows)
        try:
            async with self.transaction() as conn:
                if (await conn.execute(update, params)).rowcount != 1:
                    raise _Rollback(LEASE_LOST)
                if dicts:
                    try:
                        await conn.execute(self._stmts.insert_events, dicts)
                    except sa.exc.IntegrityError:
                        raise _Rollback(DUPLICATE) from None
        except _Rollback as r:
            return r.outcome
        return COMMITTED

    async def append(self, params: Mapping[str, Any], rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert ``rows`` if ``params['owner']`` holds the lease, leaving the row alone."""
        dicts = self._dicts(rows)
        try:
            async with self.transaction() as conn:
                check = self._stmts.lease_check
                if conn.dialect.name == "postgresql":
                    check = check.with_for_update(read=True)  # no takeover until we commit
                if (await conn.execute(check, params)).first() is None:
                    raise _Rollback(LEASE_LOST)
                try:
                    await conn.execute(self._stmts.insert_events, dicts)
                except sa.exc.IntegrityError:
                    raise _Rollback(DUPLICATE) from None
        except _Rollback as r:
            return r.outcome
        return COMMITTED

    async def create(self, row: Mapping[str, Any], rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert a session row and its first events: ``COMMITTED`` or ``DUPLICATE``."""
        dicts = self._dicts(rows)
        try:
            async with self.transaction() as conn:
                await conn.execute(self._stmts.insert_session, row)
                if dicts:
                    await conn.execute(self._stmts.insert_events, dicts)
        except sa.exc.IntegrityError:
            return DUPLICATE
        return COMMITTED

    async def release(self, params: Mapping[str, Any]) -> None:
        """Clear the lease if ``params['owner']`` holds it."""
        async with self.transaction() as conn:
            await conn.execute(self._stmts.release, params)

    # Synchronous attempts: a writer that can finish a write without waiting
    # does it and returns the outcome; ``None`` means "use the async method".

    def commit_now(
        self, params: Mapping[str, Any], rows: Sequence[tuple[Any, ...]], *, status_changed: bool
    ) -> int | None:
        """``commit`` without awaiting, or ``None`` if that is not possible now."""
        return None

    def create_now(self, row: Mapping[str, Any], rows: Sequence[tuple[Any, ...]]) -> int | None:
        """``create`` without awaiting, or ``None`` if that is not possible now."""
        return None

    def append_now(self, params: Mapping[str, Any], rows: Sequence[tuple[Any, ...]]) -> int | None:
        """``append`` without awaiting, or ``None`` if that is not possible now."""
        return None

    def release_now(self, params: Mapping[str, Any]) -> int | None:
        """``release`` without awaiting, or ``None`` if that is not possible now."""
        return None

    async def aclose(self) -> None:
        """Give back any connection held outside the pool."""


PooledWriter = Writer


def _insert_if(guard: sa.CTE, insert: sa.Insert) -> sa.Insert:
    """``WITH guard AS (...) INSERT INTO events SELECT guard.id, e.* FROM guard, unnest(arrays) e``.

    The events (one array per column) are inserted only if ``guard``, a CTE
    returning the session's id, found the session: all in one statement,
    one round trip, atomic on its own.
    """
    table = insert.table
    assert isinstance(table, sa.Table)
    cols = [c for c in table.c if c.key != "session_id"]
    arrays = (
        sa.func.unnest(*(sa.bindparam(f"{c.key}_array", type_=ARRAY(c.type)) for c in cols))
        .table_valued(*(c.key for c in cols))
        .render_derived(name="e")
    )
    rows = sa.select(guard.c.id, *(arrays.c[c.key] for c in cols)).join_from(
        guard, arrays, sa.true()
    )
    return table.insert().from_select([table.c.session_id, *cols], rows).add_cte(guard)


def _update_then_insert(update: sa.Update, insert: sa.Insert) -> sa.Insert:
    """A commit: the guarded row update (``UPDATE ... RETURNING id``), then the events."""
    return _insert_if(update.returning(update.table.c.id).cte("upd"), insert)


def _check_then_insert(check: sa.Select[Any], insert: sa.Insert) -> sa.Insert:
    """An append: the lease check (``SELECT id ... FOR SHARE``: no takeover until the
    statement ends), then the events."""
    return _insert_if(check.with_for_update(read=True).cte("chk"), insert)


class AsyncpgWriter(Writer):
    """PostgreSQL through asyncpg: every commit is one statement on the raw connection.

    A data-modifying CTE updates the row under the lease check and inserts the
    events from arrays only if it matched: ``INSERT 0 n`` for all ``n`` events
    means committed, ``INSERT 0 0`` that the lease was lost, and a duplicate
    ``seq`` fails the whole statement. One round trip instead of four
    (``BEGIN``, update, insert, ``COMMIT``). The server's ``statement_timeout``
    (set below the store's ``op_timeout``) ends a statement the client gave up
    on, so it cannot commit later behind the caller's back.
    """

    def __init__(self, engine: AsyncEngine, statements: Statements) -> None:
        super().__init__(engine, statements)
        # (update alone, update then insert, parameter order), by status_changed
        self._sql: dict[bool, tuple[str, str, tuple[str, ...]]] = {}
        for changed, update in ((True, statements.commit), (False, statements.commit_same_status)):
            update_sql, update_order = _positional(update, engine.dialect)
            both = _update_then_insert(update, statements.insert_events)
            both_sql, order = _positional(both, engine.dialect)
            assert order[: len(update_order)] == update_order, order
            self._sql[changed] = (update_sql, both_sql, update_order)
        append = _check_then_insert(statements.lease_check, statements.insert_events)
        self._append_sql, self._append_order = _positional(append, engine.dialect)
        check_order = _positional(statements.lease_check, engine.dialect)[1]
        assert self._append_order[: len(check_order)] == check_order, self._append_order
        self._check_len = len(check_order)

    async def append(self, params: Mapping[str, Any], rows: Sequence[tuple[Any, ...]]) -> int:
        args = [params[k] for k in self._append_order[: self._check_len]]
        columns = list(zip(*rows, strict=True))[1:]  # one array per column but session_id
        return await self._run(self._append_sql, args, columns, f"INSERT 0 {len(rows)}")

    async def _run(self, sql: str, args: list[Any], columns: list[Any], done: str) -> int:
        """One statement on a raw pooled connection: ``COMMITTED`` if its tag is ``done``."""
        async with self._engine.connect() as conn:
            pg = (await conn.get_raw_connection()).driver_connection
            assert pg is not None
            if pg.is_in_transaction():  # pragma: no cover - Core always ends its transactions
                await conn.invalidate()
                raise RuntimeError("a pooled PostgreSQL connection was left inside a transaction")
            try:
                tag = await pg.execute(sql, *args, *columns)
            except Exception as e:
                state = getattr(e, "sqlstate", None)
                if state == _UNIQUE_VIOLATION:
                    return DUPLICATE
                if state is None:  # not a server error: the connection may be broken
                    await conn.invalidate()
                raise
            except BaseException:
                # Cancelled mid-statement: the connection's state is unknown.
                await conn.invalidate()
                raise
            return COMMITTED if tag == done else LEASE_LOST

    async def commit(
        self,
        params: Mapping[str, Any],
        rows: Sequence[tuple[Any, ...]],
        *,
        status_changed: bool = True,
    ) -> int:
        update_sql, both_sql, update_order = self._sql[status_changed]
        args = [params[k] for k in update_order]
        if not rows:
            return await self._run(update_sql, args, [], "UPDATE 1")
        columns = list(zip(*rows, strict=True))[1:]  # one array per column but session_id
        return await self._run(both_sql, args, columns, f"INSERT 0 {len(rows)}")


class SQLiteWriter(Writer):
    """SQLite: small writes inline on the event loop, everything else on one worker connection.

    A thread hop costs more CPU than the write it carries: measured on the
    development machine, a commit (row update and two events, WAL,
    ``synchronous=NORMAL``) takes ~75 µs of CPU on the calling thread and
    ~230 µs through one hop to a worker thread; through aiosqlite (three hops)
    or SQLAlchemy's adapter (about nine) it is several times that. So
    ``commit``, ``create`` and ``release`` run on a plain :mod:`sqlite3`
    connection on the loop thread, under conditions that keep each one short:

    - ``busy_timeout=0``: the write never waits on a lock. If another process
      holds SQLite's write lock, the statement fails at once with
      ``SQLITE_BUSY`` and the same write is redone on a worker thread, where
      it may wait (``busy_timeout`` = the store's ``op_timeout``).
    - ``wal_autocheckpoint=0``: the inline connection never checkpoints (a
      checkpoint copies pages and fsyncs). Every ``CHECKPOINT_EVERY`` inline
      writes a passive checkpoint runs on a worker thread instead; it does
      not block writers.
    - Foreign keys are off on it (see :meth:`_db` for why that is safe).
    - With ``synchronous=NORMAL`` a WAL commit does not fsync; it appends a
      few pages to the WAL. A commit is durable against a crash of the
      process (the pages are in the OS), and against power loss up to the
      last checkpoint, as SQLite documents for this mode.

    Reads that can be large (``acquire`` loads every event of a session) and
    the rare writes go through SQLAlchemy Core on a dedicated aiosqlite
    connection (:meth:`transaction`). Every write, inline or not, holds one
    ``asyncio.Lock``: SQLite admits one writer at a time anyway, so this
    costs no concurrency and spares in-process writers from contending.
    """

    CHECKPOINT_EVERY: ClassVar[int] = 500

    def __init__(
        self, engine: AsyncEngine, statements: Statements, *, path: str, busy_ms: int
    ) -> None:
        super().__init__(engine, statements)
        self._ops: dict[str, tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]]] = {}
        for name in ("commit", "commit_same_status", "insert_session", "release", "lease_check"):
            sql, order = _positional(getattr(statements, name), engine.dialect)
            self._ops[name] = (sql, _getter(order))
        self._insert_sql, order = _positional(statements.insert_events, engine.dialect)
        assert order == self._insert_keys, order
        self._path = path
        self._busy_ms = busy_ms
        self._lock = asyncio.Lock()
        self._inline: sqlite3.Connection | None = None
        self._conn: AsyncConnection | None = None
        self._driver: Any = None
        self._pending: asyncio.Future[Any] | None = None  # a write still running on a thread
        self._since_checkpoint = 0
        self._checkpointer: asyncio.Task[None] | None = None

    # the inline connection -------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._inline is not None and self._inline.in_transaction:
            # A failed rollback left it mid-transaction: start afresh.
            self._inline.close()
            self._inline = None
        if self._inline is None:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            try:
                for pragma in (
                    "synchronous=NORMAL",
                    "busy_timeout=0",
                    # Foreign keys are not checked here: every event this
                    # connection inserts is guarded by its transaction (the
                    # lease-checked UPDATE of its session matched, or create
                    # inserted the session first), and it never deletes, so the
                    # check (a lookup per event) could never fail. Connections
                    # that delete keep foreign_keys=ON and so the cascade.
                    "foreign_keys=OFF",
                    "wal_autocheckpoint=0",
                ):
                    db.execute(f"PRAGMA {pragma}")
            except BaseException:
                db.close()
                raise
            self._inline = db
        return self._inline

    def _args(self, name: str, values: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """``name``'s SQL and its positional parameters taken from ``values``."""
        sql, getter = self._ops[name]
        return sql, getter(values)

    def _commit_body(self, db: sqlite3.Connection, args: _Args, rows: Sequence[Any]) -> int:
        if db.execute(*args).rowcount != 1:
            return LEASE_LOST
        if rows:
            try:
                db.executemany(self._insert_sql, rows)
            except sqlite3.IntegrityError:
                return DUPLICATE
        return COMMITTED

    def _append_body(self, db: sqlite3.Connection, args: _Args, rows: Sequence[Any]) -> int:
        # BEGIN IMMEDIATE holds the write lock: no takeover between check and insert.
        if db.execute(*args).fetchone() is None:
            return LEASE_LOST
        try:
            db.executemany(self._insert_sql, rows)
        except sqlite3.IntegrityError:
            return DUPLICATE
        return COMMITTED

    def _create_body(self, db: sqlite3.Connection, args: _Args, rows: Sequence[Any]) -> int:
        try:
            db.execute(*args)
            if rows:
                db.executemany(self._insert_sql, rows)
        except sqlite3.IntegrityError:
            return DUPLICATE
        return COMMITTED

    def _release_body(self, db: sqlite3.Connection, args: _Args, _: Sequence[Any]) -> int:
        db.execute(*args)
        return COMMITTED

    def _transact(
        self,
        db: sqlite3.Connection,
        body: _Body,
        args: _Args,
        rows: Sequence[Any],
        abandoned: threading.Event | None = None,
    ) -> int:
        """``body`` in one transaction: committed if it returns ``COMMITTED``."""
        db.execute("BEGIN IMMEDIATE")  # takes the write lock now, or fails with SQLITE_BUSY
        try:
            outcome = body(db, args, rows)
            if outcome == COMMITTED and abandoned is not None and abandoned.is_set():
                raise TimeoutError("the caller gave up on this write")
            db.execute("COMMIT" if outcome == COMMITTED else "ROLLBACK")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcome

    def _waiting(
        self, body: _Body, args: _Args, rows: Sequence[Any], abandoned: threading.Event
    ) -> int:
        """The write on a worker thread, allowed to wait for the lock (``busy_ms``)."""
        db = self._db()
        db.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        try:
            return self._transact(db, body, args, rows, abandoned)
        finally:
            db.execute("PRAGMA busy_timeout=0")

    def _wrote(self) -> None:
        self._since_checkpoint += 1
        if self._since_checkpoint >= self.CHECKPOINT_EVERY and self._checkpointer is None:
            self._since_checkpoint = 0
            self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoint())

    def _now(self, body: _Body, args: _Args, rows: Sequence[Any]) -> int | None:
        """The write, inline, if it can be done without waiting; else ``None``."""
        if self._lock.locked() or self._pending is not None:
            return None  # another write is in progress or must finish first
        try:
            outcome = self._transact(self._db(), body, args, rows)
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode & 0xFF in _BUSY:
                return None  # another process holds the write lock
            raise
        self._wrote()
        return outcome

    async def _write(self, body: _Body, args: _Args, rows: Sequence[Any]) -> int:
        """The write, waiting for whatever holds it up (the slow path)."""
        async with self._lock:
            await self._settle()
            try:
                outcome = self._transact(self._db(), body, args, rows)
            except sqlite3.OperationalError as e:
                if e.sqlite_errorcode & 0xFF not in _BUSY:
                    raise
                # Another process holds the write lock: wait for it, off the loop.
                abandoned = threading.Event()
                pending = asyncio.get_running_loop().run_in_executor(
                    None, self._waiting, body, args, rows, abandoned
                )
                self._pending = pending
                try:
                    outcome = await asyncio.shield(pending)
                except asyncio.CancelledError:
                    # The caller gave up (op_timeout or cancellation): the thread
                    # rolls back instead of committing, unless it already has;
                    # the next write waits for it first.
                    abandoned.set()
                    raise
                self._pending = None
            self._wrote()
            return outcome

    async def _settle(self) -> None:
        """Wait for a write or a rollback a cancelled caller left running (lock held)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)

    async def _checkpoint(self) -> None:
        def run() -> None:
            db = sqlite3.connect(self._path, isolation_level=None)
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                db.close()

        try:
            await asyncio.to_thread(run)
        except Exception as e:  # a checkpoint is housekeeping: the next one retries
            logger.warning("SQLite WAL checkpoint of %s failed: %s", self._path, e)
        finally:
            self._checkpointer = None

    def commit_now(
        self, params: Mapping[str, Any], rows: Sequence[tuple[Any, ...]], *, status_changed: bool
    ) -> int | None:
        args = self._args("commit" if status_changed else "commit_same_status", params)
        return self._now(self._commit_body, args, rows)

    def create_now(self, row: Mapping[str, Any], rows: Sequence[tuple[Any, ...]]) -> int | None:
        return self._now(self._create_body, self._args("insert_session", row), rows)

    def release_now(self, params: Mapping[str, Any]) -> int | None:
        return self._now(self._release_body, self._args("release", params), ())

    def append_now(self, params: Mapping[str, Any], rows: Sequence[tuple[Any, ...]]) -> int | None:
        return self._now(self._append_body, self._args("lease_check", params), rows)

    async def append(self, params: Mapping[str, Any], rows: Sequence[tuple[Any, ...]]) -> int:
        return await self._write(self._append_body, self._args("lease_check", params), rows)

    async def commit(
        self,
        params: Mapping[str, Any],
        rows: Sequence[tuple[Any, ...]],
        *,
        status_changed: bool = True,
    ) -> int:
        args = self._args("commit" if status_changed else "commit_same_status", params)
        return await self._write(self._commit_body, args, rows)

    async def create(self, row: Mapping[str, Any], rows: Sequence[tuple[Any, ...]]) -> int:
        return await self._write(self._create_body, self._args("insert_session", row), rows)

    async def release(self, params: Mapping[str, Any]) -> None:
        await self._write(self._release_body, self._args("release", params), ())

    # the worker connection, through SQLAlchemy Core -------------------------

    async def _connection(self) -> AsyncConnection:
        """The worker connection, clean (call with the lock held)."""
        await self._settle()
        if self._conn is None:
            conn = await self._engine.connect()
            self._driver = (await conn.get_raw_connection()).driver_connection
            self._conn = conn
        return self._conn

    def _abandon(self) -> None:
        """After a cancellation: roll back in the background, or reconnect."""
        conn, driver = self._conn, self._driver

        async def cleanup() -> None:
            if conn is None:
                return
            try:
                await driver.rollback()  # queued behind any statement still running
            except Exception:
                logger.warning("rollback of the SQLite worker connection failed; reconnecting")
                self._conn = self._driver = None
                with contextlib.suppress(Exception):
                    await conn.invalidate()

        self._pending = asyncio.ensure_future(cleanup())

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock:
            conn = await self._connection()
            try:
                async with conn.begin():
                    yield conn
            except asyncio.CancelledError:
                # Core rolls back on errors; a cancelled statement may still be running.
                self._abandon()
                raise

    async def aclose(self) -> None:
        async with self._lock:
            await self._settle()
            if self._checkpointer is not None:
                with contextlib.suppress(Exception):
                    await self._checkpointer
            if self._conn is not None:
                await self._conn.close()
                self._conn = self._driver = None
            if self._inline is not None:
                self._inline.close()
                self._inline = None


def make_writer(engine: AsyncEngine, statements: Statements, *, busy_ms: int) -> Writer:
    """The best writer for ``engine``'s driver (``busy_ms``: SQLite's longest lock wait)."""
    driver = engine.dialect.driver
    if driver == "aiosqlite":
        path = engine.url.database
        assert path, "the SQL store refuses in-memory SQLite"
        return SQLiteWriter(engine, statements, path=path, busy_ms=busy_ms)
    if driver == "asyncpg":
        return AsyncpgWriter(engine, statements)
    return PooledWriter(engine, statements)
