"""What the Session API tests share: stores, a principal with the approver role, and a
small shop (an order lookup, a cancel that needs approval, a refund that needs its own
scope)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tether
from tether import Agent, ToolContext
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import Event, EventType
from tether.spec.model import ModelRequest
from tether.spec.principal import Principal

WAIT = 10.0
OPS = Principal(user="ops", roles=frozenset({"approver"}), scopes=None)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 's.db'}"


# --- the shop: an order tool, and a refund that needs another scope ------------------------------


@dataclass
class Shop:
    lookups: int = 0
    cancelled: list[str] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@tether.tool(reads=True, scopes=("orders",))
async def order_status(ctx: ToolContext, order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order.
    """
    ctx.deps.lookups += 1
    return "pending"


@tether.tool(writes=True, irreversible=True, scopes=("orders",), summary="cancel {order_id}")
async def cancel_order(ctx: ToolContext, order_id: str) -> str:
    """Cancel an order.

    Args:
        order_id: The order.
    """
    shop: Shop = ctx.deps
    shop.cancelled.append(order_id)
    shop.entered.set()
    await shop.release.wait()
    return f"{order_id} cancelled"


@tether.tool(high_stakes=True, scopes=("refunds",), summary="refund {order_id}")
async def refund(ctx: ToolContext, order_id: str) -> str:
    """Refund an order.

    Args:
        order_id: The order.
    """
    ctx.deps.refunds.append(order_id)
    return f"{order_id} refunded"


def shop_agent(model: Any, shop: Shop, **policy: Any) -> Agent:
    return Agent(
        name="shop",
        instructions="Help with orders.",
        models=(model,),
        tools=(order_status, cancel_order, refund),
        deps=lambda: shop,
        approval=ApprovalPolicy(**policy),
        clarify=False,
    )


def offered(request: ModelRequest) -> list[str]:
    return [t.name for t in request.tools]


def finished(events: list[Event], name: str) -> list[dict[str, Any]]:
    return [e.data for e in events if e.type == EventType.TOOL_FINISHED and e.data["name"] == name]
