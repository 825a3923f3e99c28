"""Least privilege: a caller's scopes limit which of the agent's tools it can trigger."""

from __future__ import annotations

import tether
from tether import Agent
from tether.runtime import Runtime
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import EventType
from tether.testing import ScriptedModel, call

REFUNDS: list[str] = []


@tether.tool(reads=True)
def order_status(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order.
    """
    return "delivered"


@tether.tool(writes=True, scopes=("refunds:write",))
def refund(order_id: str) -> str:
    """Refund an order.

    Args:
        order_id: The order.
    """
    REFUNDS.append(order_id)
    return "refunded"


def agent(model: ScriptedModel) -> Agent:
    return Agent(
        name="support",
        instructions="Help.",
        models=(model,),
        tools=(order_status, refund),
        approval=ApprovalPolicy(enabled=False),
        clarify=False,
    )


async def test_a_caller_without_the_scope_neither_sees_nor_triggers_the_tool() -> None:
    REFUNDS.clear()
    model = ScriptedModel([call("refund", order_id="#W1"), "I cannot refund it myself."])
    async with Runtime() as rt:
        result = await rt.run(agent(model), "refund #W1", scopes=["orders:read"])
    offered = [s.name for s in model.requests[0].tools]
    assert offered == ["order_status"]
    assert REFUNDS == []
    finished = [e.data for e in result.events if e.type == EventType.TOOL_FINISHED]
    assert finished[0]["is_error"] is True
    assert "may not use refund (it needs: refunds:write)" in finished[0]["content"]


async def test_a_caller_with_the_scope_and_a_trusted_caller_may_refund() -> None:
    REFUNDS.clear()
    for scopes in (["refunds:write"], None):
        model = ScriptedModel([call("refund", order_id="#W1"), "Refunded."])
        async with Runtime() as rt:
            result = await rt.run(agent(model), "refund #W1", scopes=scopes)
        assert [s.name for s in model.requests[0].tools] == ["order_status", "refund"]
        assert result.output == "Refunded."
    assert REFUNDS == ["#W1", "#W1"]


def test_tool_scopes_are_declared_data() -> None:
    assert refund.scopes == frozenset({"refunds:write"})
    assert order_status.scopes == frozenset()
