"""What the Session API tests share, and a second process that acts on their sessions.

The agent (``payments``): ``charge`` is a write that needs approval and is not
idempotent; it counts itself in a :class:`Ledger` (and in ``WORKDIR/charges``
when the ledger has a work directory, so charges made in two processes add
up), then holds until the test releases it. ``lookup`` is a read.

Run as a script, it is the *other process* of a test::

    python -m tests.runtime.session_peer decide URL SCHEMA SID APPROVAL_ID WORKDIR
    python -m tests.runtime.session_peer hold URL SID WORKDIR LEASE_TTL

``decide`` approves ``APPROVAL_ID`` as user ``u1`` and prints one JSON line
saying how that went. ``hold`` starts session ``SID`` with "charge 42"
(approvals off): the charge writes ``WORKDIR/started`` (this process's pid)
and waits for ``WORKDIR/release``, so the lease is held, and renewed, meanwhile.
``SCHEMA`` is ``-`` for none.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tether
from tether import Agent, ToolContext
from tether.runtime import InMemoryStore, Runtime
from tether.runtime.ports import SessionStore
from tether.spec.approval import ApprovalPolicy
from tether.spec.model import ModelRequest
from tether.spec.principal import Principal
from tether.testing import FunctionModel, ScriptedResponse, call

REPO = Path(__file__).resolve().parents[2]
USER = Principal(user="u1")


@dataclass
class Ledger:
    """The side effects of the tools, and the gate the charge holds on."""

    workdir: Path | None = None
    charges: list[int] = field(default_factory=list)
    lookups: int = 0
    #: charges that got past the gate (returned)
    finished: int = 0
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def file_charges(self) -> int:
        """Charges recorded by every process sharing ``workdir``."""
        assert self.workdir is not None
        path = self.workdir / "charges"
        return len(path.read_text().splitlines()) if path.exists() else 0


@tether.tool(writes=True, irreversible=True, timeout=60, summary="charge {amount} USD")
async def charge(ctx: ToolContext, amount: int) -> str:
    """Charge the customer's card.

    Args:
        amount: USD.
    """
    ledger: Ledger = ctx.deps
    ledger.charges.append(amount)
    if ledger.workdir is not None:
        with (ledger.workdir / "charges").open("a") as f:
            f.write(f"{os.getpid()} {amount}\n")
    ledger.entered.set()
    await ledger.release.wait()
    ledger.finished += 1
    return f"charged {amount}"


@tether.tool(reads=True)
async def lookup(ctx: ToolContext, q: str) -> str:
    """Look a customer up.

    Args:
        q: Who.
    """
    ctx.deps.lookups += 1
    return f"customer {q}"


def script(request: ModelRequest) -> ScriptedResponse:
    """ "charge ..." charges 42, "lookup ..." looks up; a tool result is echoed back."""
    last = request.messages[-1]
    if last.role == "tool":
        return f"final: {last.results[0].content}"
    if last.text.startswith("charge"):
        return call("charge", amount=42)
    if last.text.startswith("lookup"):
        return call("lookup", q="ada")
    return f"echo: {last.text}"


def payments_agent(ledger: Ledger, *, approvals: bool = True, model: Any = None) -> Agent:
    return Agent(
        name="payments",
        instructions="Take payments.",
        models=(model if model is not None else FunctionModel(script, name="scripted-payments"),),
        tools=(charge, lookup),
        deps=lambda: ledger,
        approval=ApprovalPolicy(enabled=approvals),
        clarify=False,
    )


# --- stores shared by several runtimes (or processes) ------------------------------


@dataclass
class Shared:
    """One fresh database of a backend; :meth:`open` gives another store on it."""

    backend: str
    url: str | None = None
    schema: str | None = None
    memory: InMemoryStore | None = None
    opened: list[Any] = field(default_factory=list)

    async def open(self) -> SessionStore:
        if self.memory is not None:
            return self.memory
        from tether.store import SQLStore

        store = await SQLStore.open(self.url, schema=self.schema)
        self.opened.append(store)
        return store


@asynccontextmanager
async def shared_store(backend: str, tmp_path: Path) -> AsyncIterator[Shared]:
    """A :class:`Shared` database of ``backend`` (memory, sqlite, postgres), dropped after."""
    if backend == "memory":
        yield Shared(backend, memory=InMemoryStore())
        return
    if backend == "postgres":
        from tests.store.conftest import drop_schema, postgres_url, require_postgres

        require_postgres()
        shared = Shared(backend, postgres_url(), f"tether_test_{uuid.uuid4().hex[:12]}")
    else:
        shared = Shared(backend, f"sqlite+aiosqlite:///{tmp_path / 'sessions.sqlite'}")
    try:
        yield shared
    finally:
        for s in shared.opened:
            await s.aclose()
        if shared.schema is not None:
            await drop_schema(shared.schema)


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``condition()`` holds, at most ``within`` seconds (then ``TimeoutError``)."""
    async with asyncio.timeout(within):
        # it polls a count or a file another task or process changes: no event to wait on
        while not condition():  # noqa: ASYNC110 - reason: see the line above
            await asyncio.sleep(0.01)


def peer_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}


# --- the other process ----------------------------------------------------------------


async def _open(url: str, schema: str | None) -> SessionStore:
    from tether.store import SQLStore

    return await SQLStore.open(url, schema=schema, migrate=False)


async def decide(url: str, schema: str | None, sid: str, approval_id: str, workdir: str) -> None:
    ledger = Ledger(Path(workdir))
    ledger.release.set()  # if this process ever ran the charge, it would not hold
    out: dict[str, Any] = {"pid": os.getpid()}
    async with Runtime(store=await _open(url, schema)) as rt:
        try:
            result = await rt.session(payments_agent(ledger), sid).decide(
                approval_id, True, by=USER
            )
            out |= {"outcome": "ok", "status": str(result.status)}
        except tether.SessionConflict as exc:
            out |= {"outcome": "conflict", "error": str(exc), "holder": exc.holder}
        except tether.exceptions.ApprovalError as exc:
            out |= {"outcome": "approval_error", "error": str(exc)}
        except Exception as exc:
            out |= {"outcome": "error", "error": f"{type(exc).__name__}: {exc}"}
    out["charges_here"] = len(ledger.charges)
    print(json.dumps(out), flush=True)


async def hold(url: str, sid: str, workdir: str, lease_ttl: float) -> None:
    work = Path(workdir)
    ledger = Ledger(work)

    async def release_when_told() -> None:
        ledger.entered.clear()
        await ledger.entered.wait()
        (work / "started").write_text(str(os.getpid()))
        await until((work / "release").exists, within=300)
        ledger.release.set()

    watcher = asyncio.create_task(release_when_told())
    async with Runtime(store=await _open(url, None), lease_ttl=lease_ttl) as rt:
        handle = rt.session(payments_agent(ledger, approvals=False), sid, principal=USER, new=True)
        result = await handle.send("charge 42")
    await watcher
    print(json.dumps({"pid": os.getpid(), "status": str(result.status)}), flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "decide":
        url, schema, sid, approval_id, workdir = args
        asyncio.run(decide(url, None if schema == "-" else schema, sid, approval_id, workdir))
    elif mode == "hold":
        url, sid, workdir, ttl = args
        asyncio.run(hold(url, sid, workdir, float(ttl)))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
