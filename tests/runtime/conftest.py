from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import tether
from tether import ToolContext, ToolFailed
from tether.runtime.ports import SessionStore
from tether.store import open_store


class Ledger:
    """A tiny side-effect target: counts how many times each write really ran."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.lookups = 0


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@tether.tool(reads=True)
async def get_order(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    """Look up an order.

    Args:
        order_id: The order id, like '#W1'.
    """
    ctx.deps.lookups += 1
    if order_id == "#missing":
        raise ToolFailed(f"no order {order_id}")
    return {"order_id": order_id, "status": "pending"}


@tether.tool(external_comms=True)
async def send_email(ctx: ToolContext, to: str, body: str) -> str:
    """Send an email.

    Args:
        to: Recipient.
        body: Text.
    """
    ctx.deps.sent.append(f"{to}:{body}")
    return "sent"


@tether.tool(reads=True, timeout=0.05)
async def slow_lookup(q: str) -> str:
    """A lookup that hangs."""
    await asyncio.sleep(10)
    return q


@tether.tool(reads=True)
def broken(q: str) -> str:
    """A lookup with a bug."""
    raise RuntimeError("database cursor closed")


@tether.tool
def login(ctx: ToolContext, user: str) -> str:
    """Authenticate."""
    ctx.vars["user"] = user
    return "ok"


TOOLS = (get_order, send_email, slow_lookup, broken, login)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A SQLite store in ``tmp_path`` (the Session API tests)."""
    s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    yield s
    await s.aclose()
