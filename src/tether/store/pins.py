"""Pinned tool definitions in the store's database (migration 0006): :class:`SQLToolPins`.

The SQL implementation of :class:`~tether.runtime.pins.ToolPins`; a
:class:`~tether.store.SQLStore` exposes one as ``store.tool_pins``, which
the runtime uses to pin its agents' MCP tools (``Runtime`` looks for the
attribute: the runtime layer does not import this one). One row per agent,
version, server and tool (``tool_pins``); definitions are canonical JSON.
Every call runs under the store's operation timeout and maps a database
that is down or slow to ``StoreUnavailable`` or ``StoreTimeout``, as the
session store does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tether.runtime.pins import (
    PinState,
    QuarantineReason,
    ToolPin,
    accepted,
    canonical_json,
)
from tether.store.tables import tool_pins

__all__ = ["SQLToolPins"]

Guard = Callable[[str, str | None], AbstractAsyncContextManager[None]]

_KEY = ("agent", "version", "server", "tool")


def _json(value: Any) -> str | None:
    return None if value is None else canonical_json(value)


def _params(p: ToolPin) -> dict[str, Any]:
    return {
        "agent": p.agent,
        "version": p.version,
        "server": p.server,
        "tool": p.tool,
        "state": str(p.state),
        "hash": p.hash,
        "definition": _json(p.definition),
        "pending_hash": p.pending_hash,
        "pending_definition": _json(p.pending_definition),
        "reason": None if p.reason is None else str(p.reason),
        "first_seen": p.first_seen,
        "decided_by": p.decided_by,
        "decided_at": p.decided_at,
    }


def _pin(row: Any) -> ToolPin:
    return ToolPin(
        agent=row.agent,
        version=row.version,
        server=row.server,
        tool=row.tool,
        state=PinState(row.state),
        first_seen=row.first_seen,
        hash=row.hash,
        definition=None if row.definition is None else json.loads(row.definition),
        pending_hash=row.pending_hash,
        pending_definition=None
        if row.pending_definition is None
        else json.loads(row.pending_definition),
        reason=None if row.reason is None else QuarantineReason(row.reason),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
    )


class SQLToolPins:
    """Tool pins in the ``tool_pins`` table; ``guard`` maps timeouts and outages (the store's)."""

    def __init__(self, engine: AsyncEngine, guard: Guard) -> None:
        self._engine = engine
        self._guard = guard

    @staticmethod
    def _select(agent: str, version: str | None) -> sa.Select[Any]:
        q = sa.select(tool_pins).where(tool_pins.c.agent == agent)
        if version is not None:
            q = q.where(tool_pins.c.version == version)
        return q.order_by(tool_pins.c.version, tool_pins.c.server, tool_pins.c.tool)

    async def pins(self, agent: str, version: str | None = None) -> list[ToolPin]:
        async with self._guard("tool_pins", None), self._engine.connect() as conn:
            rows = (await conn.execute(self._select(agent, version))).all()
        return [_pin(r) for r in rows]

    async def record(self, pins: Sequence[ToolPin]) -> None:
        if not pins:
            return
        async with self._guard("record tool_pins", None), self._engine.begin() as conn:
            await self._upsert(conn, [_params(p) for p in pins])

    async def _upsert(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(tool_pins)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={c.name: stmt.excluded[c.name] for c in tool_pins.c if c.name not in _KEY},
        )
        await conn.execute(stmt, rows)

    async def accept(
        self,
        agent: str,
        version: str | None = None,
        *,
        server: str | None = None,
        tool: str | None = None,
        by: str,
        at: float,
    ) -> list[ToolPin]:
        q = self._select(agent, version).where(tool_pins.c.state == str(PinState.QUARANTINED))
        if server is not None:
            q = q.where(tool_pins.c.server == server)
        if tool is not None:
            q = q.where(tool_pins.c.tool == tool)
        done: list[ToolPin] = []
        async with self._guard("accept tool_pins", None), self._engine.begin() as conn:
            for row in (await conn.execute(q)).all():
                ok = accepted(_pin(row), by=by, at=at)
                p = _params(ok)
                # only the definition that was read: a newer quarantine waits for its own accept
                changed = await conn.execute(
                    tool_pins.update()
                    .where(
                        *(tool_pins.c[k] == p[k] for k in _KEY),
                        tool_pins.c.state == str(PinState.QUARANTINED),
                        tool_pins.c.pending_hash == row.pending_hash,
                    )
                    .values({k: v for k, v in p.items() if k not in _KEY})
                )
                if changed.rowcount == 1:
                    done.append(ok)
        return done
