"""A tiny MCP server for docs/examples/mcp_tools.py, written with the ``mcp`` SDK (stdio)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("notes")
NOTES = {"returns": "Returns are free within 30 days."}


@server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
def read_note(topic: str) -> str:
    """Read the team's note on a topic."""
    return NOTES.get(topic, "no note on that topic")


@server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
def delete_note(topic: str) -> str:
    """Delete the note on a topic."""
    return f"deleted the note on {topic}" if NOTES.pop(topic, None) else "no such note"


if __name__ == "__main__":
    server.run("stdio")
