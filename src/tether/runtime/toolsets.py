"""An agent's tool sources, opened once per runtime: :class:`ToolSets`.

An agent with ``toolsets`` (MCP servers) is turned, before each turn, into
the agent the turn runs: the same agent with each source's current tools
added to ``tools``. Sources are opened on first use, one connection per
source object per runtime, and closed with the runtime. The effective agent
is kept while no source's tool list changed, so the runtime's per-agent
services are built once, not once a turn.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from tether.exceptions import ConfigError
from tether.spec.agent import Agent
from tether.spec.tools import Tool
from tether.spec.toolsource import OpenToolSource, ToolSource

__all__ = ["ToolSets"]

log = logging.getLogger("tether.runtime")


class ToolSets:
    """The open tool sources of one runtime, and the agents built from them."""

    def __init__(self) -> None:
        # Keyed by id() with the object kept in the entry, so the id cannot be reused.
        self._open: dict[int, tuple[ToolSource, OpenToolSource]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._agents: dict[int, tuple[Agent, tuple[tuple[Tool, ...], ...], Agent]] = {}

    async def agent_for(self, agent: Agent) -> Agent:
        """``agent`` with its sources' current tools added (itself when it has none).

        Raises :class:`~tether.spec.toolsource.ToolSourceUnavailable` when a
        source cannot be opened, and ``ConfigError`` when one of its tools has
        the name of another tool of the agent.
        """
        if not agent.toolsets:
            return agent
        lists = tuple([await (await self._source(s)).tools() for s in agent.toolsets])
        entry = self._agents.get(id(agent))
        if entry is not None and entry[0] is agent and _same(entry[1], lists):
            return entry[2]
        tools = agent.tools + tuple(t for listed in lists for t in listed)
        seen: set[str] = set()
        for t in tools:
            if t.name in seen:
                raise ConfigError(
                    f"agent {agent.name!r}: two tools are named {t.name!r} (a tool source offers "
                    "a tool with the name of another); rename one, or drop one of the sources"
                )
            seen.add(t.name)
        effective = dataclasses.replace(agent, tools=tools, toolsets=())
        self._agents[id(agent)] = (agent, lists, effective)
        return effective

    async def _source(self, source: ToolSource) -> OpenToolSource:
        entry = self._open.get(id(source))
        if entry is not None:
            return entry[1]
        lock = self._locks.setdefault(id(source), asyncio.Lock())
        async with lock:  # two turns starting at once open the source once
            entry = self._open.get(id(source))
            if entry is None:
                opened = await source.open()
                entry = self._open[id(source)] = (source, opened)
            return entry[1]

    async def aclose(self) -> None:
        """Close every open source (stopping the servers this runtime started)."""
        opened, self._open = self._open, {}
        self._agents.clear()
        for source, conn in opened.values():
            try:
                await conn.aclose()
            except Exception:
                log.exception("closing tool source %s failed", source.name)


def _same(a: tuple[tuple[Tool, ...], ...], b: tuple[tuple[Tool, ...], ...]) -> bool:
    """Whether two snapshots of the sources' tools are the same objects."""
    return len(a) == len(b) and all(
        len(x) == len(y) and all(s is t for s, t in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True)
    )
