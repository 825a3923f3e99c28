"""MCP servers as toolsets: a stdio server's tools, with risk from its annotations.

Run it from the repository root::

    .venv/bin/python docs/examples/mcp_tools.py

The runtime starts ``mcp_servers/notes.py`` as a subprocess on the agent's
first turn and lists its tools. The server is marked trusted, so the
read-only ``read_note`` runs at once; ``delete_note`` says it is
destructive, so it waits for a person's approval. Closing the runtime stops
the server.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tether import Agent, Runtime, mcp_server
from tether.testing import ScriptedModel, call

NOTES = mcp_server(
    "stdio",
    name="notes",
    command=[sys.executable, str(Path(__file__).parent / "mcp_servers" / "notes.py")],
    trust=True,  # believe its readOnlyHint and openWorldHint: false
)


async def main() -> None:
    model = ScriptedModel(
        [
            call("read_note", topic="returns"),
            "Returns are free within 30 days.",
            call("delete_note", topic="returns"),
            "The note is deleted.",
        ]
    )
    agent = Agent(
        name="notes", instructions="Answer from the notes.", models=(model,), tools=(NOTES,)
    )
    async with Runtime() as rt:
        first = await rt.run(agent, "What is the returns policy?")
        print("tools offered:", ", ".join(sorted(t.name for t in model.requests[0].tools)))
        print(f"read_note: {first.status}, {first.output}")
        second = await rt.run(agent, "Delete that note.", session_id=first.session_id)
        assert second.approval is not None
        print(f"delete_note: {second.status} ({second.approval.tool})")
        done = await rt.decide(agent, first.session_id, second.approval.id, approve=True, by="ops")
        print(f"after approval: {done.status}, {done.output}")


if __name__ == "__main__":
    asyncio.run(main())
