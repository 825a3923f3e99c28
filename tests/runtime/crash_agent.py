"""An agent for the kill -9 test, run in a child process by test_kill_resume.py.

Usage: python -m tests.runtime.crash_agent DB_URL WORKDIR
It looks something up (counted in WORKDIR/lookups), then charges a card:
the charge writes WORKDIR/charge-started and hangs, so the parent can
kill the process in the middle of a non-idempotent side effect.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import tether
from tether import Agent, ToolContext
from tether.runtime import Runtime
from tether.spec.approval import ApprovalPolicy
from tether.spec.model import ModelRequest
from tether.store import open_store
from tether.testing import FunctionModel, ScriptedResponse, call


def _bump(path: Path) -> None:
    n = int(path.read_text()) if path.exists() else 0
    path.write_text(str(n + 1))


@tether.tool(reads=True)
def lookup(ctx: ToolContext, q: str) -> str:
    """Look up a customer."""
    _bump(Path(ctx.deps) / "lookups")
    return f"customer {q}: card on file"


@tether.tool(writes=True, irreversible=True, timeout=600)
def charge(ctx: ToolContext, amount: int) -> str:
    """Charge the customer's card."""
    workdir = Path(ctx.deps)
    _bump(workdir / "charges")
    (workdir / "charge-started").write_text(ctx.idempotency_key)
    while not (workdir / "release").exists():
        time.sleep(0.05)
    return "charged"


def script(request: ModelRequest) -> ScriptedResponse:
    """Deterministic: look up, then charge, then answer with what the tools said."""
    last = request.messages[-1]
    if last.role == "user":
        return call("lookup", _id="c1", q="ada")
    if last.results and last.results[0].name == "lookup":
        return call("charge", _id="c2", amount=42)
    return f"final: {last.results[0].content}"


def build(workdir: str) -> Agent:
    return Agent(
        name="crashy",
        instructions="Charge the customer.",
        models=(FunctionModel(script, name="scripted-crashy"),),
        tools=(lookup, charge),
        deps=lambda: workdir,
        # exactly-once under kill -9; approvals are tested in test_approvals.py
        approval=ApprovalPolicy(enabled=False),
    )


async def main(db_url: str, workdir: str) -> None:
    async with Runtime(store=await open_store(db_url)) as rt:
        result = await rt.run(build(workdir), "charge ada 42")
        print(result.session_id, result.status)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
