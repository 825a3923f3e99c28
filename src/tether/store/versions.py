"""Deployed agent versions, in the store's database (migration 0005).

One row per agent and version label holds the version's full definition
(JSON), its content hash, its state and the eval results it was deployed
with. States:

- ``active``: new sessions start on it (one per agent);
- ``canary``: a share of new sessions starts on it (at most one per agent);
- ``previous``: it served and was replaced; its sessions go on, and
  ``rollback`` may make it active again;
- ``rolled_back``: taken back (a canary that failed, or an active version
  rolled back); its sessions go on, but a later rollback never returns to it;
- ``retired``: no new session and no rollback will use it (its sessions
  still run).

Every change is one transaction whose ``UPDATE`` names the state it expects
(``WHERE state = 'canary'``), so two replicas rolling back the same canary
at once do it once. Every change is also written to ``agent_version_log``
with who did it and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tether.exceptions import ConfigError, RunError
from tether.store._engine import is_transient
from tether.store.errors import StoreTimeout, StoreUnavailable
from tether.store.sql import SQLStore
from tether.store.tables import agent_version_log, agent_versions, events, sessions

__all__ = [
    "MIN_RETIRE_AGE",
    "AgentVersion",
    "VersionError",
    "VersionSignals",
    "VersionState",
    "VersionStore",
    "check_label",
]

#: a version that served sessions may not be retired sooner than this after it stopped
#: taking new ones, unless forced
MIN_RETIRE_AGE = 24 * 3600.0


class VersionState(StrEnum):
    ACTIVE = "active"
    CANARY = "canary"
    PREVIOUS = "previous"
    ROLLED_BACK = "rolled_back"
    RETIRED = "retired"


class VersionError(ConfigError):
    """A version operation that cannot be done as asked; the message says what to do."""


@dataclass(frozen=True, slots=True)
class AgentVersion:
    """A deployed version, and (from :meth:`VersionStore.versions`) what it served."""

    agent: str
    version: str
    hash: str
    definition: dict[str, Any]
    state: VersionState
    created_at: float
    ref: str | None = None
    canary_percent: float | None = None
    evals: dict[str, Any] | None = None
    deployed_by: str | None = None
    forced_reason: str | None = None
    activated_at: float | None = None
    deactivated_at: float | None = None
    retired_at: float | None = None
    sessions: int = 0
    cost: float = 0.0

    def to_dict(self, *, definition: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "agent": self.agent,
            "version": self.version,
            "hash": self.hash,
            "state": str(self.state),
            "ref": self.ref,
            "canary_percent": self.canary_percent,
            "evals": self.evals,
            "deployed_by": self.deployed_by,
            "forced_reason": self.forced_reason,
            "created_at": self.created_at,
            "activated_at": self.activated_at,
            "deactivated_at": self.deactivated_at,
            "retired_at": self.retired_at,
            "sessions": self.sessions,
            "cost": self.cost,
        }
        if definition:
            d["definition"] = self.definition
        return d


@dataclass(frozen=True, slots=True)
class VersionSignals:
    """What one version's sessions did since a moment: the canary's live signals.

    ``failed_turns`` counts turns that ended ``failed``; ``denials`` approvals
    a person refused; ``cost`` is the sessions' total (tokens and tools).
    """

    sessions: int = 0
    failed_turns: int = 0
    unacknowledged_failures: int = 0
    unsupported_claims: int = 0
    denials: int = 0
    breaker_openings: int = 0
    cost: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def rate(self, name: str) -> float:
        """``name`` per session (``cost`` gives cost per session); 0 with no session."""
        value = float(getattr(self, name))
        return value / self.sessions if self.sessions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "failed_turns": self.failed_turns,
            "unacknowledged_failures": self.unacknowledged_failures,
            "unsupported_claims": self.unsupported_claims,
            "denials": self.denials,
            "breaker_openings": self.breaker_openings,
            "cost": self.cost,
        }


_SIGNAL_TYPES = {
    "answer.unacknowledged_failure": "unacknowledged_failures",
    "answer.unsupported_claim": "unsupported_claims",
    "breaker.opened": "breaker_openings",
}


def _row_version(row: Any, sessions_: int = 0, cost: float = 0.0) -> AgentVersion:
    return AgentVersion(
        agent=row.agent,
        version=row.version,
        hash=row.hash,
        definition=json.loads(row.definition),
        state=VersionState(row.state),
        created_at=row.created_at,
        ref=row.ref,
        canary_percent=row.canary_percent,
        evals=None if row.evals is None else json.loads(row.evals),
        deployed_by=row.deployed_by,
        forced_reason=row.forced_reason,
        activated_at=row.activated_at,
        deactivated_at=row.deactivated_at,
        retired_at=row.retired_at,
        sessions=sessions_,
        cost=cost,
    )


class VersionStore:
    """Agent versions and their states, shared by every replica and the CLI.

    Every read runs under a timeout, and a database that is down or slow
    raises :class:`~tether.store.StoreUnavailable` or
    :class:`~tether.store.StoreTimeout` (``RunError``), as the session store
    does. Every change runs in one transaction that first takes a lock per
    agent (an advisory lock on PostgreSQL, SQLite's write lock), reads the
    versions inside it, and checks that each ``UPDATE`` changed the row it
    expected; partial unique indexes allow one active version and one
    canary per agent whatever happens. A change that loses a race raises
    :class:`VersionError` and changes nothing.
    """

    def __init__(
        self,
        store: SQLStore,
        *,
        clock: Callable[[], float] = time.time,
        op_timeout: float = 10.0,
    ) -> None:
        self._engine = store.engine
        self.clock = clock
        self.op_timeout = op_timeout

    # --- the connection -----------------------------------------------------------

    def _mapped(self, e: BaseException, op: str) -> BaseException:
        if isinstance(e, TimeoutError):
            return StoreTimeout(
                f"version registry {op} took longer than {self.op_timeout:g}s; the database is "
                "overloaded, locked or unreachable: retry in a moment"
            )
        if is_transient(e) or isinstance(e, DBAPIError):
            return StoreUnavailable(
                f"version registry {op} failed: the database is unavailable or busy "
                f"({getattr(e, 'orig', None) or e}); retry in a moment"
            )
        return e

    @contextlib.asynccontextmanager
    async def _read(self, op: str) -> AsyncIterator[AsyncConnection]:
        try:
            async with asyncio.timeout(self.op_timeout), self._engine.connect() as conn:
                yield conn
        except (VersionError, RunError):
            raise
        except Exception as e:
            mapped = self._mapped(e, op)
            if mapped is e:
                raise
            raise mapped from e

    @contextlib.asynccontextmanager
    async def _change(self, agent: str, op: str) -> AsyncIterator[AsyncConnection]:
        """One transaction holding ``agent``'s lock; a lost race is a ``VersionError``."""
        try:
            async with asyncio.timeout(self.op_timeout), self._engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    await conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                        {"k": f"tether-version:{agent}"},
                    )
                else:  # SQLite: a write first takes the database's write lock for the whole txn
                    await conn.execute(
                        agent_versions.update()
                        .where(agent_versions.c.agent == agent)
                        .values(agent=agent)
                    )
                yield conn
        except (VersionError, RunError):
            raise
        except IntegrityError as e:
            raise VersionError(
                f"{agent}'s versions changed while this {op} ran (another deploy, promote or "
                f"rollback at the same time); nothing was changed: look with `tether versions "
                f"{agent}` and retry"
            ) from e
        except Exception as e:
            mapped = self._mapped(e, op)
            if mapped is e:
                raise
            raise mapped from e

    # --- reading ----------------------------------------------------------------

    @staticmethod
    async def _get(conn: AsyncConnection, agent: str, version: str) -> AgentVersion | None:
        q = sa.select(agent_versions).where(
            agent_versions.c.agent == agent, agent_versions.c.version == version
        )
        row = (await conn.execute(q)).first()
        return None if row is None else _row_version(row)

    @staticmethod
    async def _serving(
        conn: AsyncConnection, agent: str
    ) -> tuple[AgentVersion | None, AgentVersion | None]:
        q = sa.select(agent_versions).where(
            agent_versions.c.agent == agent,
            agent_versions.c.state.in_((VersionState.ACTIVE, VersionState.CANARY)),
        )
        rows = [_row_version(r) for r in (await conn.execute(q)).all()]
        active = next((v for v in rows if v.state == VersionState.ACTIVE), None)
        canary = next((v for v in rows if v.state == VersionState.CANARY), None)
        return active, canary

    @staticmethod
    async def _versions(conn: AsyncConnection, agent: str) -> list[AgentVersion]:
        q = (
            sa.select(agent_versions)
            .where(agent_versions.c.agent == agent)
            .order_by(agent_versions.c.created_at.desc())
        )
        served = (
            sa.select(
                sessions.c.agent_version,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sessions.c.cost), 0.0),
            )
            .where(sessions.c.agent == agent)
            .group_by(sessions.c.agent_version)
        )
        rows = (await conn.execute(q)).all()
        totals = {r[0]: (int(r[1]), float(r[2])) for r in (await conn.execute(served)).all()}
        return [_row_version(r, *totals.get(r.version, (0, 0.0))) for r in rows]

    async def get(self, agent: str, version: str) -> AgentVersion | None:
        async with self._read("get") as conn:
            return await self._get(conn, agent, version)

    async def agents(self) -> list[str]:
        """Agents with at least one deployed version."""
        q = sa.select(agent_versions.c.agent).distinct().order_by(agent_versions.c.agent)
        async with self._read("agents") as conn:
            return [r[0] for r in (await conn.execute(q)).all()]

    async def versions(self, agent: str) -> list[AgentVersion]:
        """``agent``'s versions, newest first, each with its session count and total cost."""
        async with self._read("versions") as conn:
            return await self._versions(conn, agent)

    async def serving(self, agent: str) -> tuple[AgentVersion | None, AgentVersion | None]:
        """``agent``'s active version and its canary (either may be ``None``)."""
        async with self._read("serving") as conn:
            return await self._serving(conn, agent)

    async def history(self, agent: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """What was done to ``agent``'s versions, newest first."""
        log = agent_version_log
        q = sa.select(log).where(log.c.agent == agent).order_by(log.c.id.desc()).limit(limit)
        async with self._read("history") as conn:
            rows = (await conn.execute(q)).all()
        return [
            {
                "version": r.version,
                "action": r.action,
                "at": r.at,
                "by": r.by,
                "detail": None if r.detail is None else json.loads(r.detail),
            }
            for r in rows
        ]

    async def signals(self, agent: str, version: str, *, since: float) -> VersionSignals:
        """What sessions of ``agent`` ``version`` created since ``since`` did."""
        mine = sa.and_(
            sessions.c.agent == agent,
            sessions.c.agent_version == version,
            sessions.c.created_at >= since,
        )
        totals = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(sessions.c.cost), 0.0))
        counted = (
            sa.select(events.c.type, sa.func.count())
            .select_from(events.join(sessions, events.c.session_id == sessions.c.id))
            .where(mine, events.c.type.in_(tuple(_SIGNAL_TYPES)))
            .group_by(events.c.type)
        )
        read = (
            sa.select(events.c.type, events.c.data)
            .select_from(events.join(sessions, events.c.session_id == sessions.c.id))
            .where(mine, events.c.type.in_(("approval.decided", "session.status")))
        )
        async with self._read("signals") as conn:
            n, cost = (await conn.execute(totals.where(mine))).one()
            counts = {t: int(c) for t, c in (await conn.execute(counted)).all()}
            decided = (await conn.execute(read)).all()
        found: Counter[str] = Counter()
        for type_, data in decided:
            d = json.loads(data)
            if type_ == "approval.decided" and d.get("approved") is False:
                found["denials"] += 1
            elif type_ == "session.status" and d.get("status") == "failed":
                found["failed_turns"] += 1
        return VersionSignals(
            sessions=int(n),
            failed_turns=found["failed_turns"],
            denials=found["denials"],
            cost=float(cost),
            counts=counts,
            **{name: counts.get(t, 0) for t, name in _SIGNAL_TYPES.items()},
        )

    # --- changing -----------------------------------------------------------------

    async def _log(
        self,
        conn: AsyncConnection,
        agent: str,
        version: str,
        action: str,
        by: str | None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        await conn.execute(
            agent_version_log.insert().values(
                agent=agent,
                version=version,
                action=action,
                at=self.clock(),
                by=by,
                detail=None if detail is None else json.dumps(detail, sort_keys=True),
            )
        )

    async def _set(
        self,
        conn: AsyncConnection,
        agent: str,
        version: str,
        expect: tuple[VersionState, ...],
        **values: Any,
    ) -> None:
        """Update one version that must be in a state of ``expect``; else ``VersionError``."""
        q = (
            agent_versions.update()
            .where(
                agent_versions.c.agent == agent,
                agent_versions.c.version == version,
                agent_versions.c.state.in_(expect),
            )
            .values(**values)
        )
        if not (await conn.execute(q)).rowcount:
            raise VersionError(
                f"{agent} version {version} changed meanwhile (it is no longer "
                f"{' or '.join(str(e) for e in expect)}); nothing was changed: look again"
            )

    async def _step_down(
        self, conn: AsyncConnection, agent: str, version: str, to: VersionState, now: float
    ) -> None:
        """The active ``version`` stops taking new sessions (``previous`` or ``rolled_back``)."""
        await self._set(conn, agent, version, (VersionState.ACTIVE,), state=to, deactivated_at=now)

    async def register(
        self,
        agent: str,
        version: str,
        *,
        hash: str,
        definition: Mapping[str, Any],
        ref: str | None = None,
        canary_percent: float | None = None,
        evals: Mapping[str, Any] | None = None,
        by: str | None = None,
        forced_reason: str | None = None,
    ) -> AgentVersion:
        """Deploy ``version``: active at once, or a canary taking ``canary_percent`` of new
        sessions. The same label with the same content again is a no-op (or makes a
        previous version active again); the same label with other content is refused, and
        so is a label that was rolled back or retired."""
        check_label(version)
        if canary_percent is not None and not (
            math.isfinite(canary_percent) and 0 < canary_percent < 100
        ):
            raise VersionError(
                f"a canary share is a percentage above 0 and below 100, not {canary_percent}"
            )
        now = self.clock()
        state = VersionState.CANARY if canary_percent is not None else VersionState.ACTIVE
        async with self._change(agent, "deploy") as conn:
            existing = await self._get(conn, agent, version)
            if existing is not None and existing.hash != hash:
                raise VersionError(
                    f"{agent} version {version} is already deployed with other content (hash "
                    f"{existing.hash[:12]}, this one {hash[:12]}); give the new definition a new "
                    "version label (Agent(version=...))"
                )
            active, canary = await self._serving(conn, agent)
            if existing is not None and existing.state in (
                VersionState.ACTIVE,
                VersionState.CANARY,
            ):
                return existing
            if existing is not None and existing.state in (
                VersionState.RETIRED,
                VersionState.ROLLED_BACK,
            ):
                raise VersionError(
                    f"{agent} version {version} was {existing.state.replace('_', ' ')}; deploy "
                    "the fix under a new version label"
                )
            if canary is not None:
                raise VersionError(
                    f"{agent} version {canary.version} is a canary; `tether promote {agent}` or "
                    f"`tether rollback {agent}` before deploying another version"
                )
            if canary_percent is not None and active is None:
                raise VersionError(
                    f"{agent} has no active version to compare a canary with; deploy it "
                    "without --canary first"
                )
            if state == VersionState.ACTIVE and active is not None:
                await self._step_down(conn, agent, active.version, VersionState.PREVIOUS, now)
            if existing is None:
                await conn.execute(
                    agent_versions.insert().values(
                        agent=agent,
                        version=version,
                        hash=hash,
                        definition=json.dumps(definition, sort_keys=True),
                        ref=ref,
                        state=state,
                        canary_percent=canary_percent,
                        evals=None if evals is None else json.dumps(evals, sort_keys=True),
                        deployed_by=by,
                        forced_reason=forced_reason,
                        created_at=now,
                        activated_at=now if state == VersionState.ACTIVE else None,
                    )
                )
            else:  # a previous version made to serve again, through the gate
                values: dict[str, Any] = {"state": state, "canary_percent": canary_percent}
                if state == VersionState.ACTIVE:
                    values["activated_at"] = now
                if evals is not None:
                    values["evals"] = json.dumps(evals, sort_keys=True)
                await self._set(conn, agent, version, (existing.state,), **values)
            detail: dict[str, Any] = {"hash": hash, "state": str(state)}
            if canary_percent is not None:
                detail["canary_percent"] = canary_percent
            if forced_reason:
                detail["forced_reason"] = forced_reason
            if active is not None and state == VersionState.ACTIVE:
                detail["replaces"] = active.version
            await self._log(conn, agent, version, "deploy", by, detail)
            got = await self._get(conn, agent, version)
        assert got is not None
        return got

    async def promote(self, agent: str, *, by: str | None = None) -> AgentVersion:
        """Make ``agent``'s canary its active version."""
        now = self.clock()
        async with self._change(agent, "promote") as conn:
            active, canary = await self._serving(conn, agent)
            if canary is None:
                raise VersionError(f"{agent} has no canary to promote")
            if active is not None:
                await self._step_down(conn, agent, active.version, VersionState.PREVIOUS, now)
            await self._set(
                conn,
                agent,
                canary.version,
                (VersionState.CANARY,),
                state=VersionState.ACTIVE,
                canary_percent=None,
                activated_at=now,
            )
            replaced = None if active is None else active.version
            await self._log(conn, agent, canary.version, "promote", by, {"replaces": replaced})
            got = await self._get(conn, agent, canary.version)
        assert got is not None
        return got

    async def rollback(
        self,
        agent: str,
        *,
        by: str | None = None,
        reason: str | None = None,
        expect: str | None = None,
    ) -> tuple[AgentVersion, AgentVersion | None]:
        """Take back ``agent``'s canary, or else make its previous version active again.

        ``expect``: the version the caller means to take back (the canary monitor
        passes the canary it judged); when another version is the one that would
        be taken back now, nothing changes and ``VersionError`` says so. Returns
        ``(what was taken back, what now serves)``. Sessions stay on the version
        they started on either way.
        """
        now = self.clock()
        async with self._change(agent, "rollback") as conn:
            active, canary = await self._serving(conn, agent)
            target = canary if canary is not None else active
            if target is None:
                raise VersionError(f"{agent} has no active version to roll back")
            if expect is not None and target.version != expect:
                raise VersionError(
                    f"{agent}: version {expect} is no longer the one a rollback takes back "
                    f"(that is {target.version}, {target.state}); nothing was changed"
                )
            if canary is not None:
                await self._set(
                    conn,
                    agent,
                    canary.version,
                    (VersionState.CANARY,),
                    state=VersionState.ROLLED_BACK,
                    deactivated_at=now,
                )
                await self._log(conn, agent, canary.version, "rollback", by, {"reason": reason})
                taken = await self._get(conn, agent, canary.version)
                serving = active
            else:
                assert active is not None
                candidates = [
                    v
                    for v in await self._versions(conn, agent)
                    if v.state == VersionState.PREVIOUS and v.activated_at is not None
                ]
                if not candidates:
                    raise VersionError(
                        f"{agent} has no previous version to roll back to (a retired or "
                        "rolled-back version is never made active again by rollback; deploy it "
                        "under a new label)"
                    )
                back = max(candidates, key=lambda v: (v.deactivated_at or 0.0, v.created_at))
                await self._step_down(conn, agent, active.version, VersionState.ROLLED_BACK, now)
                await self._set(
                    conn,
                    agent,
                    back.version,
                    (VersionState.PREVIOUS,),
                    state=VersionState.ACTIVE,
                    activated_at=now,
                )
                detail = {"reason": reason, "to": back.version}
                await self._log(conn, agent, active.version, "rollback", by, detail)
                taken = await self._get(conn, agent, active.version)
                serving = await self._get(conn, agent, back.version)
        assert taken is not None
        return taken, serving

    async def retire(
        self,
        agent: str,
        version: str,
        *,
        by: str | None = None,
        min_age: float = MIN_RETIRE_AGE,
        force: bool = False,
        reason: str | None = None,
    ) -> AgentVersion:
        """Retire ``version``: no rollback returns to it, no new session starts on it.

        A version that served (it was active, or sessions ran on it) may be
        retired only ``min_age`` (24 hours, never less unless forced) after it
        stopped taking new sessions; a canary taken back before any session
        started on it may go at once.
        """
        if not math.isfinite(min_age) or min_age < 0:
            raise VersionError(
                f"the minimum age before retiring is a number of hours, not {min_age}"
            )
        if min_age < MIN_RETIRE_AGE and not force:
            raise VersionError(
                f"the minimum age before retiring is {MIN_RETIRE_AGE / 3600:g} hours; a shorter "
                "one needs --force"
            )
        if force and not (reason and reason.strip()):
            raise VersionError("retiring with --force needs --reason TEXT")
        async with self._change(agent, "retire") as conn:
            found = [v for v in await self._versions(conn, agent) if v.version == version]
            if not found:
                raise VersionError(f"{agent} has no version {version!r}")
            v = found[0]
            if v.state == VersionState.RETIRED:
                return v
            if v.state in (VersionState.ACTIVE, VersionState.CANARY):
                raise VersionError(
                    f"{agent} version {version} is {v.state}; make another version serve first "
                    f"(`tether rollback {agent}` or `tether promote {agent}`)"
                )
            since = v.deactivated_at or v.created_at
            age = self.clock() - since
            served = bool(v.sessions) or v.activated_at is not None  # a rollback may need it
            early = served and not age >= min_age
            if early and not force:
                hours = (min_age - age) / 3600
                raise VersionError(
                    f"{agent} version {version} served ({v.sessions} session(s)) and stopped "
                    f"taking new ones {age / 3600:.1f} h ago; it may be retired in {hours:.1f} h "
                    "(or with --force --reason TEXT)"
                )
            await self._set(
                conn,
                agent,
                version,
                (v.state,),
                state=VersionState.RETIRED,
                retired_at=self.clock(),
            )
            await self._log(conn, agent, version, "retire", by, {"forced": early, "reason": reason})
            got = await self._get(conn, agent, version)
        assert got is not None
        return got


#: what a version label may be: it is shown in tables, logs and URLs
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def check_label(version: str) -> None:
    """Refuse a version label that could not be shown or stored safely."""
    if not isinstance(version, str) or not _LABEL.fullmatch(version):
        raise VersionError(
            f"version label {version!r} is not allowed: use 1 to 64 letters, digits, '.', '_', "
            "'+' or '-', starting with a letter or digit (Agent(version='2.1'))"
        )
