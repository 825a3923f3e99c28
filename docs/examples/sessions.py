"""Sessions: who acts on a session, who may decide, per-session deps, and a bounded shutdown.

Run it from the repository root::

    .venv/bin/python docs/examples/sessions.py

Nothing here touches the network: the model is scripted
(``tether.testing.ScriptedModel``) and the store is in memory.

1. Ava, of the tenant ``acme``, may look orders up and cancel them (scope
   ``orders``), not refund them (``refunds``). Her session stores that
   principal; the refund tool is not even offered to the model. The cancel is
   irreversible, so the turn stops for approval, before any tool ran: the
   session's deps are not built yet.
2. Olga, an approver who holds every scope, approves. The turn goes on with
   Ava's stored scopes, not Olga's: the cancel runs (and builds the deps for
   ``acme``), the refund the model asks for next is refused.
   Ava presses Approve at the same moment: refused before anything runs.
3. Deciding again later: "already approved by olga".
4. Another user cannot act on Ava's session.
5. Bo, of ``globex``, gets deps of his own.
6. ``aclose``: new turns are refused, and each deps object is closed once.
"""

from __future__ import annotations

import asyncio

import tether
from tether import (
    AccessDenied,
    Agent,
    ApprovalError,
    EventType,
    Message,
    Principal,
    Runtime,
    SessionConflict,
    SessionInfo,
    ShuttingDown,
    ToolContext,
    TurnResult,
)
from tether.testing import ScriptedModel, call


class ShopClient:
    """One tenant's connection to the shop; what the tools see as ``ctx.deps``."""

    def __init__(self, tenant: str | None) -> None:
        self.tenant = tenant or "-"
        self.cancelled: list[str] = []
        self.refunded: list[str] = []
        self.closed = 0
        BUILT.append(self)

    async def aclose(self) -> None:
        self.closed += 1


BUILT: list[ShopClient] = []


def built() -> list[str]:
    return [c.tenant for c in BUILT]


def shop_for(s: SessionInfo) -> ShopClient:
    """Per-session deps: built on the session's first tool call, from its principal."""
    return ShopClient(s.principal.tenant)


@tether.tool(reads=True, scopes={"orders"})
def order_status(ctx: ToolContext, order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order id, like '#W1'.
    """
    return f"{order_id} is pending ({ctx.deps.tenant})"


@tether.tool(irreversible=True, scopes={"orders"}, summary="cancel order {order_id}")
def cancel_order(ctx: ToolContext, order_id: str) -> str:
    """Cancel a pending order. It cannot be undone.

    Args:
        order_id: The order id, like '#W1'.
    """
    ctx.deps.cancelled.append(order_id)
    return f"{order_id} is cancelled"


@tether.tool(high_stakes=True, scopes={"refunds"}, summary="refund order {order_id}")
def refund(ctx: ToolContext, order_id: str) -> str:
    """Refund an order.

    Args:
        order_id: The order id, like '#W1'.
    """
    ctx.deps.refunded.append(order_id)
    return f"{order_id} is refunded"


model = ScriptedModel(
    [
        Message.assistant("I'll cancel #W1.", [call("cancel_order", order_id="#W1")]),
        call("refund", order_id="#W1"),
        "Order #W1 is cancelled. I cannot refund it; a colleague will.",
        call("order_status", order_id="#W2"),
        "Order #W2 is pending.",
    ]
)

agent = Agent(
    name="support",
    instructions="You help customers with their orders.",
    models=(model,),
    tools=(order_status, cancel_order, refund),
    deps=shop_for,
)

AVA = Principal(user="ava", tenant="acme", scopes=frozenset({"orders"}))
OLGA = Principal(user="olga", roles=frozenset({"approver"}))  # scopes=None: every scope
BO = Principal(user="bo", tenant="globex", scopes=frozenset({"orders"}))


def line(exc: Exception, session_id: str) -> str:
    """An error as one line, its random session id written SESSION."""
    return f"{type(exc).__name__}: {exc}".replace(session_id, "SESSION")


async def main() -> None:
    rt = Runtime()  # in memory; pass store=await tether.open_store(url) to keep sessions

    print("1. a session that stores its principal")
    ava = rt.session(agent, principal=AVA)
    first = await ava.send("Cancel order #W1 and refund it, please.")
    print("tools offered:", ", ".join(t.name for t in model.requests[0].tools))
    print(f"status: {first.status}")
    print(f"asked: {first.output}")
    pending = await ava.pending_approval()
    assert pending is not None
    stored = (await ava.state()).principal
    print(f"stored: user={stored.user} tenant={stored.tenant} scopes={sorted(stored.scopes or ())}")
    print(f"deps built so far: {built()}")

    print("2. an approver decides; the turn keeps the session's scopes")
    # Olga and Ava press Approve at the same moment: one decision runs, the other is
    # refused before anything runs (in one process or several).
    done, other = await asyncio.gather(
        ava.decide(pending.id, True, by=OLGA),
        ava.decide(pending.id, True, by=AVA),
        return_exceptions=True,
    )
    assert isinstance(done, TurnResult)
    assert isinstance(other, SessionConflict)
    acme = BUILT[0]
    print(f"olga: {done.status}, deps built: {built()}")
    print(f"acme cancelled: {acme.cancelled}, refunded: {acme.refunded}")
    print(f"ava at the same time: {line(other, ava.id)}")
    (refused,) = (
        e.data["content"]
        for e in done.events
        if e.type == EventType.TOOL_FINISHED and e.data["name"] == "refund"
    )
    print(f"refund refused: {refused}")
    print(f"answer: {done.output}")

    print("3. one decision per approval")
    try:
        await ava.decide(pending.id, True, by=AVA)
    except ApprovalError as exc:
        print(f"ava, later: {line(exc, ava.id)}")

    print("4. another user")
    try:
        await rt.session(agent, ava.id, principal=Principal(user="mallory")).send("yes")
    except AccessDenied as exc:
        print(line(exc, ava.id))

    print("5. per-session deps")
    bo = await rt.session(agent, principal=BO).send("Where is #W2?")
    print(f"bo: {bo.output} deps built: {built()}")

    print("6. shutdown")
    await rt.aclose(timeout=5.0)
    print("deps closed: " + ", ".join(f"{c.tenant} {c.closed}x" for c in BUILT))
    try:
        await rt.session(agent, principal=AVA).send("Hello?")
    except ShuttingDown as exc:
        print(f"after aclose: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    asyncio.run(main())
