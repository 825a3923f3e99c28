"""Oversight: an irreversible call waits for a person, who approves, denies or is too late.

Run it from the repository root::

    .venv/bin/python docs/examples/oversight.py

Nothing here touches the network or really waits: the model is scripted
(``tether.testing.ScriptedModel``), the store is in memory, and the last part
runs on a ``FakeClock``, so every run prints the same lines.

1. The model looks an order up (a read: it runs) and calls ``cancel_order``
   (``irreversible``): the call does not run. The turn stops with the
   question the runtime built from the tool's ``summary`` template and the
   real arguments. A reply that is neither yes nor no is asked again; "yes"
   runs the call, once, with its idempotency key.
2. Next turn, the model cancels another order: other arguments, so another
   approval. The user says "no": the call does not run, and the model is
   told the user declined.
3. The same agent in ``operator`` mode: the user is told the action awaits
   review, their "yes" does not count, a decision without the approver role
   raises ``ApprovalError``, and one with it runs the call.
4. An approval decided after it expired (15 minutes by default) does not
   run the call; the model is told it expired.
5. ``ApprovalPolicy(enabled=False)``: nothing waits.
"""

from __future__ import annotations

import asyncio
from typing import Any

import tether
from tether import (
    Agent,
    ApprovalError,
    ApprovalPolicy,
    Message,
    Runtime,
    ToolContext,
    TurnResult,
    arguments_hash,
)
from tether.testing import FakeClock, ScriptedModel, call


class Shop:
    """The side effects, counted: what really ran, not what an event says."""

    def __init__(self) -> None:
        self.lookups = 0
        self.cancelled: list[str] = []
        self.keys: list[str] = []


@tether.tool(reads=True)
def get_order(ctx: ToolContext, order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order id, like '#W1'.
    """
    ctx.deps.lookups += 1
    return {"order_id": order_id, "status": "pending"}


@tether.tool(irreversible=True, summary="cancel order {order_id} (reason: {reason})")
def cancel_order(ctx: ToolContext, order_id: str, reason: str) -> str:
    """Cancel a pending order. It cannot be undone.

    Args:
        order_id: The order id, like '#W1'.
        reason: Why the customer cancels.
    """
    ctx.deps.cancelled.append(order_id)
    ctx.deps.keys.append(ctx.idempotency_key.replace(ctx.session_id, "SESSION"))
    return f"order {order_id} is cancelled"


def support(model: ScriptedModel, shop: Shop, **policy: Any) -> Agent:
    return Agent(
        name="support",
        instructions="You help customers with their orders.",
        models=(model,),
        tools=(get_order, cancel_order),
        deps=lambda: shop,
        approval=ApprovalPolicy(**policy),
    )


def approval_events(result: TurnResult) -> str:
    return " ".join(e.type for e in result.events if e.type.startswith("approval."))


def error_line(exc: Exception, result: TurnResult) -> str:
    """An error, its random session id written SESSION so every run prints the same."""
    return f"{type(exc).__name__}: {exc}".replace(result.session_id, "SESSION")


def told(model: ScriptedModel) -> str:
    """The tool result the model saw in its last request."""
    return model.requests[-1].messages[-1].results[0].content


async def user_mode() -> None:
    print("1. a risky call waits for the user")
    shop = Shop()
    model = ScriptedModel(
        [
            call("get_order", _id="look-1", order_id="#W1"),
            Message.assistant(
                "I'll cancel order #W1 now.",
                [call("cancel_order", _id="cancel-1", order_id="#W1", reason="ordered twice")],
            ),
            "Order #W1 is cancelled.",
            # the next turn
            call("cancel_order", _id="cancel-2", order_id="#W2", reason="ordered twice"),
            "All right, order #W2 stays as it is.",
        ]
    )
    agent = support(model, shop)
    async with Runtime() as rt:
        first = await rt.run(agent, "I ordered #W1 twice, please cancel it.")
        pending = first.approval
        assert pending is not None
        print(f"lookups run: {shop.lookups}, cancellations run: {len(shop.cancelled)}")
        print(f"status: {first.status}")
        print(f"asked: {first.output}")
        print(f"tool: {pending.tool} {pending.arguments}")
        print(f"the model's own words, shown beside it: {pending.explanation}")

        unclear = await rt.run(agent, "hmm, is it refunded?", session_id=first.session_id)
        print(f"reply 'hmm, is it refunded?': {unclear.status}, {approval_events(unclear)}")
        print(f"asked again: {unclear.output == first.output}")

        yes = await rt.run(agent, "yes", session_id=first.session_id)
        print(f"reply 'yes': {yes.status}, {approval_events(yes)}")
        print(f"cancelled: {shop.cancelled}, idempotency key: {shop.keys[0]}")
        print(f"answer: {yes.output}")
        try:  # single use: once decided, that approval is spent
            await rt.decide(agent, first.session_id, pending.id, approve=True, by="ada")
        except ApprovalError as exc:
            print(f"the same approval again: {error_line(exc, first)}")

        print("2. other arguments, another approval; the user says no")
        second = await rt.run(agent, "And #W2 as well.", session_id=first.session_id)
        other = second.approval
        assert other is not None
        print(f"status: {second.status}")
        print(f"asked: {second.output}")
        ids = f"{pending.id} approved, {other.id} asked".replace(first.session_id, "SESSION")
        print(f"approval ids: {ids}")
        old = arguments_hash("cancel_order", pending.arguments)[:12]
        new = arguments_hash("cancel_order", other.arguments)[:12]
        print(f"arguments hash: {old} approved, {new} asked")
        try:  # the first approval cannot be reused for this call
            await rt.decide(agent, first.session_id, pending.id, approve=True, by="ada")
        except ApprovalError as exc:
            print(f"the first approval again: {error_line(exc, first)}")
        no = await rt.run(agent, "no", session_id=first.session_id)
        print(f"reply 'no': {no.status}, {approval_events(no)}")
        print(f"cancelled: {shop.cancelled}")
        print(f"the model was told: {told(model)}")
        print(f"answer: {no.output}")
    model.assert_all_used()


async def operator_mode() -> None:
    print("3. operator mode: only an approver decides")
    shop = Shop()
    model = ScriptedModel(
        [
            call("cancel_order", _id="cancel-3", order_id="#W3", reason="damaged"),
            "Order #W3 is cancelled.",
        ]
    )
    agent = support(model, shop, mode="operator")
    async with Runtime() as rt:
        first = await rt.run(agent, "Cancel #W3, it arrived damaged.")
        pending = first.approval
        assert pending is not None
        print(f"the user is told: {first.output}")
        chat = await rt.run(agent, "yes", session_id=first.session_id)
        print(f"the user replies 'yes': {chat.status}, cancelled: {shop.cancelled}")
        try:
            await rt.decide(agent, first.session_id, pending.id, approve=True, by="mallory")
        except ApprovalError as exc:
            print(f"without the role: {error_line(exc, first)}")
        done = await rt.decide(
            agent, first.session_id, pending.id, approve=True, by="olga", roles={"approver"}
        )
        decided = next(e.data for e in done.events if e.type == "approval.decided")
        print(f"approved by {decided['by']}: {done.status}, cancelled: {shop.cancelled}")
        print(f"answer: {done.output}")


async def expired() -> None:
    print("4. an approval decided too late")
    shop = Shop()
    clock = FakeClock()
    model = ScriptedModel(
        [
            call("cancel_order", _id="cancel-4", order_id="#W4", reason="too slow"),
            "That request expired, so order #W4 was not cancelled. Shall I ask again?",
        ]
    )
    agent = support(model, shop)
    async with Runtime(clock=clock) as rt:
        first = await rt.run(agent, "Cancel #W4.")
        pending = first.approval
        assert pending is not None
        print(f"expires after: {pending.expires_at - clock():.0f} s")
        clock.advance(16 * 60)  # the user comes back 16 minutes later
        late = await rt.run(agent, "yes", session_id=first.session_id)
        print(f"reply 'yes' 16 minutes later: {late.status}, {approval_events(late)}")
        print(f"cancelled: {shop.cancelled}")
        print(f"the model was told: {told(model)}")
        print(f"answer: {late.output}")


async def approvals_off() -> None:
    print("5. approvals turned off (a batch job with its own review)")
    shop = Shop()
    model = ScriptedModel(
        [call("cancel_order", _id="cancel-5", order_id="#W5", reason="batch"), "Done."]
    )
    async with Runtime() as rt:
        result = await rt.run(support(model, shop, enabled=False), "Cancel #W5.")
    print(f"status: {result.status}, cancelled: {shop.cancelled}")


async def main() -> None:
    await user_mode()
    await operator_mode()
    await expired()
    await approvals_off()


if __name__ == "__main__":
    asyncio.run(main())
