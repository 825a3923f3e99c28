"""An agent's tool sources, opened once per runtime: :class:`ToolSets`.

An agent with ``toolsets`` (MCP servers) is turned, before each turn, into
the agent the turn runs: the same agent with each source's current tools
added to ``tools``. Sources are opened on first use, one connection per
source object per runtime, and closed with the runtime. The effective agent
is kept while no source's tool list (and no tool's pin) changed, so the
runtime's per-agent services are built once, not once a turn.

A source that gives its tools' definitions (``definitions()``, as
:class:`~tether.providers.mcp.McpConnection` does) has them pinned per agent
name and version (:mod:`tether.runtime.pins`): before each turn its listing
is reviewed against the pins, a changed or new tool is quarantined (hidden
from the model) and reported back to the caller, who records the
``tool.definition_changed`` event in the turn's session.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from tether.exceptions import ConfigError
from tether.runtime.pins import InMemoryToolPins, Quarantine, ToolPin, ToolPins, review
from tether.spec.agent import Agent
from tether.spec.tools import Tool
from tether.spec.toolsource import OpenToolSource, ToolSource

__all__ = ["ToolSets"]

log = logging.getLogger("tether.runtime")


class ToolSets:
    """The open tool sources of one runtime, and the agents built from them.

    - ``pins``: where tool definitions are pinned (default: in this process);
    - ``flagged``: whether the injection detector flags a tool's description
      (default: never);
    - ``clock``: Unix time, for when a pin was first seen.
    """

    def __init__(
        self,
        *,
        pins: ToolPins | None = None,
        flagged: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pins: ToolPins = pins if pins is not None else InMemoryToolPins()
        self._flagged = flagged if flagged is not None else (lambda _text: False)
        self._clock = clock
        # Keyed by id() with the object kept in the entry, so the id cannot be reused.
        self._open: dict[int, tuple[ToolSource, OpenToolSource]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._agents: dict[int, tuple[Agent, tuple[tuple[Tool, ...], ...], Agent]] = {}
        #: one review at a time per agent version, so a quarantine is reported once
        self._reviews: dict[tuple[str, str], asyncio.Lock] = {}

    async def agent_for(self, agent: Agent) -> tuple[Agent, tuple[Quarantine, ...]]:
        """``agent`` with its sources' current, accepted tools added (itself when it has none),
        and the tools this call quarantined (to report in the turn's session).

        Raises :class:`~tether.spec.toolsource.ToolSourceUnavailable` when a
        source cannot be opened, and ``ConfigError`` when one of its tools has
        the name of another tool of the agent.
        """
        if not agent.toolsets:
            return agent, ()
        opened = [(s, await self._source(s)) for s in agent.toolsets]
        listed = [await conn.tools() for _, conn in opened]
        lock = self._reviews.setdefault((agent.name, agent.version), asyncio.Lock())
        async with lock:
            lists, quarantined = await self._reviewed(agent, opened, listed)
        entry = self._agents.get(id(agent))
        if entry is not None and entry[0] is agent and _same(entry[1], lists):
            return entry[2], quarantined
        tools = agent.tools + tuple(t for offered in lists for t in offered)
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
        return effective, quarantined

    async def _reviewed(
        self,
        agent: Agent,
        opened: list[tuple[ToolSource, OpenToolSource]],
        listed: list[tuple[Tool, ...]],
    ) -> tuple[tuple[tuple[Tool, ...], ...], tuple[Quarantine, ...]]:
        """Each source's tools the pins let the model see; the tools newly quarantined."""
        by_server: dict[str, dict[str, ToolPin]] | None = None
        out: list[tuple[Tool, ...]] = []
        record: list[ToolPin] = []
        quarantined: list[Quarantine] = []
        now = self._clock()
        for (source, conn), tools in zip(opened, listed, strict=True):
            definitions = getattr(conn, "definitions", None)
            if definitions is None:  # a source that cannot be pinned offers what it lists
                out.append(tools)
                continue
            if by_server is None:  # one read of the agent version's pins a turn
                by_server = {}
                for pin in await self.pins.pins(agent.name, agent.version):
                    by_server.setdefault(pin.server, {})[pin.tool] = pin
            r = review(
                agent.name,
                agent.version,
                source.name,
                definitions(),
                by_server.get(source.name, {}),
                flagged=self._flagged,
                now=now,
            )
            record.extend(r.record)
            quarantined.extend(r.quarantined)
            out.append(tuple(t for t in tools if t.name in r.visible))
        if record:
            await self.pins.record(record)
        for q in quarantined:
            log.warning(
                "tool %s of server %s quarantined for agent %s version %s (%s): hidden from "
                "the model until accepted with `tether tools accept %s --version %s "
                "--server %s --tool %s`",
                q.tool,
                q.server,
                agent.name,
                agent.version,
                q.reason,
                agent.name,
                agent.version,
                q.server,
                q.tool,
            )
        return tuple(out), tuple(quarantined)

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
