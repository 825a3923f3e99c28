"""Tool sources: where an agent's tools come from at run time (an MCP server).

An :class:`~tether.spec.agent.Agent` may list a :class:`ToolSource` among
its ``tools``; the agent keeps it apart, in ``Agent.toolsets``. A source is
pure data until the runtime opens it: ``open()`` starts or reaches the
server once per runtime and returns an :class:`OpenToolSource`, whose
``tools()`` are ordinary :class:`~tether.spec.tools.Tool` objects (flags,
timeout, breaker and retries apply as to any tool). The runtime asks for
``tools()`` before each turn, so a source whose tools changed
(``tools/list_changed``) offers the new list on the next turn, and closes
every open source with itself (``Runtime.aclose``).

The one implementation is :func:`tether.providers.mcp.mcp_server`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tether.exceptions import RunError
from tether.spec.tools import Tool

__all__ = ["OpenToolSource", "ToolSource", "ToolSourceUnavailable"]


@runtime_checkable
class ToolSource(Protocol):
    """A declared source of tools. ``name`` says which in logs and errors."""

    @property
    def name(self) -> str: ...

    async def open(self) -> OpenToolSource:
        """Connect (start the server, reach the URL); raise :class:`ToolSourceUnavailable`."""
        ...


class OpenToolSource(Protocol):
    """A connected source: its current tools, and how to close it."""

    async def tools(self) -> tuple[Tool, ...]:
        """The tools it offers now (listed on first use, again after the source says so)."""
        ...

    async def aclose(self) -> None:
        """Disconnect; stop a server process this source started."""
        ...


class ToolSourceUnavailable(RunError):
    """A tool source (an MCP server) could not be started or reached before a turn.

    Nothing of the turn was stored; fix the command or URL (the message says
    what failed) and send the message again.
    """
