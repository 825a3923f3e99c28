"""An agent's tool sources (MCP servers), opened for ``tether audit`` and ``tether tools test``.

:func:`open_sources` opens each of ``agent.toolsets`` the public way
(``await source.open()``, then ``tools()``), each within a time limit, and
closes every one it opened on exit. A source that cannot be opened in time
is not an error here: its :class:`Listed` says why (``error``), and the
caller decides (the audit reports it; ``tools test --mcp`` fails).

A source that gives its tools' definitions (``definitions()``, as
:class:`~tether.providers.mcp.McpConnection` does) also gives each tool's
pin hash, :func:`tether.runtime.pins.definition_hash`, the one the runtime
pins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.exceptions import ConfigError
from tether.runtime.pins import definition_hash
from tether.spec.agent import Agent
from tether.spec.tools import Tool
from tether.spec.toolsource import OpenToolSource, ToolSource, ToolSourceUnavailable

__all__ = ["OPEN_TIMEOUT", "Listed", "open_sources", "with_source_tools"]

log = logging.getLogger("tether.surfaces")

#: seconds to open one source and list its tools
OPEN_TIMEOUT = 15.0


@dataclass(slots=True)
class Listed:
    """One source as a command saw it: its tools, their definitions and hashes, or ``error``."""

    source: ToolSource
    tools: tuple[Tool, ...] = ()
    #: each tool's definition as the source listed it (empty for a source that gives none)
    definitions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: why the source could not be opened (``None``: it was)
    error: str | None = None

    @property
    def name(self) -> str:
        return self.source.name

    def hash_of(self, tool: str) -> str | None:
        """The pin hash of ``tool`` (``None`` when the source gives no definitions)."""
        definition = self.definitions.get(tool)
        return None if definition is None else definition_hash(definition)


@contextlib.asynccontextmanager
async def open_sources(
    agent: Agent, *, open_timeout: float = OPEN_TIMEOUT
) -> AsyncIterator[list[Listed]]:
    """Open each of ``agent``'s tool sources (at most ``open_timeout`` seconds each); close on exit.

    The tools stay callable inside the ``async with`` (a call goes to the
    source's server). A source that did not open in time is one that failed:
    its :attr:`Listed.error` says how.
    """
    opened: list[OpenToolSource] = []
    listed: list[Listed] = []
    try:
        for source in agent.toolsets:
            entry = Listed(source)
            listed.append(entry)
            try:
                async with asyncio.timeout(open_timeout):
                    conn = await source.open()
                    opened.append(conn)
                    entry.tools = await conn.tools()
            except TimeoutError:
                entry.error = f"did not open and list its tools within {open_timeout:g} s"
                continue
            except ToolSourceUnavailable as exc:  # it says which source and why
                entry.error = str(exc)
                continue
            except Exception as exc:
                entry.error = f"{type(exc).__name__}: {exc}"
                continue
            definitions = getattr(conn, "definitions", None)
            if callable(definitions):
                entry.definitions = dict(definitions())
        yield listed
    finally:
        for conn in opened:
            try:
                await conn.aclose()
            except Exception:
                log.exception("closing a tool source failed")


def with_source_tools(agent: Agent, listed: list[Listed]) -> tuple[Tool, ...]:
    """``agent``'s own tools, then the tools of each source that opened.

    A tool with the name of another is a ``ConfigError``, as at run time.
    """
    tools = agent.tools + tuple(t for entry in listed for t in entry.tools)
    seen: set[str] = set()
    for t in tools:
        if t.name in seen:
            raise ConfigError(
                f"agent {agent.name!r}: two tools are named {t.name!r} (a tool source offers "
                "a tool with the name of another); rename one, or drop one of the sources"
            )
        seen.add(t.name)
    return tools
