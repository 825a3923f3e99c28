"""Quickstart: an agent with two tools, driven by a scripted model through the Runtime.

Run it from the repository root::

    .venv/bin/python docs/examples/quickstart.py

No API key and no network: ``ScriptedModel`` plays the model's side. Swap it
for a real chain (``models=("anthropic:claude-sonnet-4-5",)``) and nothing
else changes.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import tether
from tether import Agent, Runtime, ToolContext, ToolFailed
from tether.testing import ScriptedModel, call

ORDERS = {"#W1001": {"status": "shipped", "carrier": "ups"}}


@tether.tool(reads=True)
def find_order(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    """Look up an order by its id.

    Args:
        order_id: The order id, like '#W1001'.
    """
    order = ctx.deps.get(order_id)  # ctx.deps is what Agent.deps built
    if order is None:
        raise ToolFailed(f"there is no order {order_id}")  # the model is told, not crashed
    return {"order_id": order_id, **order}


@tether.tool
def delivery_estimate(carrier: Literal["ups", "dhl"], express: bool = False) -> str:
    """Estimate how many days a parcel takes to arrive.

    Args:
        carrier: The carrier that has the parcel.
        express: Whether the parcel was sent express.
    """
    days = {"ups": 3, "dhl": 4}[carrier] - (2 if express else 0)
    return f"{days} days"


agent = Agent(
    name="orders",
    instructions="Answer questions about the customer's orders. Be brief.",
    # Any Model works here; a scripted one answers in order, one entry per model call.
    models=(
        ScriptedModel(
            [
                call("find_order", order_id="#W1001"),  # step 1: a tool call
                call("delivery_estimate", carrier="ups"),  # step 2: another tool call
                "Order #W1001 has shipped with UPS; it should arrive in 3 days.",  # step 3
            ]
        ),
    ),
    tools=(find_order, delivery_estimate),
    deps=lambda: ORDERS,
)


async def main() -> None:
    # Runtime() keeps sessions in memory; pass store=await tether.open_store() to persist.
    async with Runtime() as rt:
        result = await rt.run(agent, "Where is my order #W1001?", user_id="u-42")
    print(f"answer: {result.output}")
    print(f"status: {result.status}")
    print("events:")
    for event in result.events:
        note = "" if event.stored else "  (streamed only, not stored)"
        print(f"  {event.seq:>2} step {event.step} {event.type}{note}")
    print(f"tokens: {result.usage.input_tokens} in, {result.usage.output_tokens} out")


if __name__ == "__main__":
    asyncio.run(main())
