"""A final answer that claims an action no tool did is withheld, in the real loop."""

from __future__ import annotations

from typing import Any

import pytest

import tether
from tether import Agent
from tether.runtime import Runtime, SessionStatus
from tether.spec.events import EventType
from tether.testing import ScriptedModel, call

CANCELLED: list[str] = []


@tether.tool(reads=True, untrusted_output=False)
def get_order(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order.
    """
    return f"order {order_id}: pending"


@tether.tool(irreversible=True, summary="cancel order {order_id}")
def cancel_order(order_id: str) -> str:
    """Cancel a pending order.

    Args:
        order_id: The order.
    """
    CANCELLED.append(order_id)
    return f"order {order_id}: cancelled"


@tether.tool(reads=True, untrusted_output=True)
def read_page(url: str) -> str:
    """Read a page.

    Args:
        url: The address.
    """
    return "Status update: your order #W1 has been cancelled and refunded."


def agent(model: ScriptedModel, *tools: Any) -> Agent:
    return Agent(
        name="shop",
        instructions="You help customers of Example Shop. " * 4,
        models=(model,),
        tools=tools or (get_order, cancel_order, read_page),
        clarify=False,
        guard=None,
    )


@pytest.fixture(autouse=True)
def _clear() -> None:
    CANCELLED.clear()


def claims(result: Any) -> list[dict[str, Any]]:
    return [e.data for e in result.events if e.type == EventType.UNSUPPORTED_CLAIM]


async def test_a_lookup_then_order_cancelled_is_withheld() -> None:
    model = ScriptedModel([call("get_order", order_id="#W1"), "Order cancelled."])
    async with Runtime() as rt:
        result = await rt.run(agent(model, get_order), "cancel #W1")
        state = await rt.load(result.session_id)
    assert result.status == SessionStatus.IDLE
    assert "Order cancelled" not in (result.output or "")
    assert (result.output or "").startswith("I have not")
    (event,) = claims(result)
    assert event["text"] == "Order cancelled."
    assert event["claims"]
    assert state.last_output == result.output  # the stored answer is the honest one


async def test_a_claim_backed_by_the_tool_that_did_it_is_shown() -> None:
    model = ScriptedModel(
        [call("cancel_order", order_id="#W1"), "Your order #W1 has been cancelled."]
    )
    async with Runtime() as rt:
        first = await rt.run(agent(model), "cancel #W1")
        assert first.approval is not None
        done = await rt.decide(
            agent(model), first.session_id, first.approval.id, approve=True, by="u"
        )
    assert done.output == "Your order #W1 has been cancelled."
    assert claims(done) == []


async def test_a_declined_action_cannot_be_claimed() -> None:
    model = ScriptedModel([call("cancel_order", order_id="#W1"), "I've cancelled your order."])
    async with Runtime() as rt:
        first = await rt.run(agent(model), "cancel #W1")
        assert first.approval is not None
        done = await rt.decide(
            agent(model), first.session_id, first.approval.id, approve=False, by="u"
        )
    assert CANCELLED == []
    assert done.output != "I've cancelled your order."
    assert len(claims(done)) == 1


async def test_untrusted_content_saying_so_does_not_back_a_claim() -> None:
    model = ScriptedModel(
        [call("read_page", url="u"), "Good news: your order #W1 has been cancelled."]
    )
    async with Runtime() as rt:
        result = await rt.run(agent(model), "what does the page say?")
    assert len(claims(result)) == 1


async def test_zero_width_characters_do_not_hide_a_claim() -> None:
    model = ScriptedModel([call("get_order", order_id="#W1"), "Order can\u200bcel\u00adled."])
    async with Runtime() as rt:
        result = await rt.run(agent(model, get_order), "cancel #W1")
    assert len(claims(result)) == 1


async def test_offers_questions_and_negations_pass() -> None:
    for text in [
        "Order #W1 is pending. I can cancel it if you confirm.",
        "Shall I cancel order #W1?",
        "I have not cancelled anything yet.",
    ]:
        model = ScriptedModel([call("get_order", order_id="#W1"), text])
        async with Runtime() as rt:
            result = await rt.run(agent(model, get_order), "status of #W1")
        assert result.output == text
        assert claims(result) == []


def test_idioms_with_action_verbs_are_not_claims() -> None:
    from tether.runtime.claims import unsupported_claims

    for text in [
        "You changed your mind, so nothing happens.",
        "The user declined it (changed my mind).",
        "They sent their regards.",
    ]:
        assert unsupported_claims(text, []) == [], text
    # the idiom does not hide a real claim in the same sentence
    assert unsupported_claims("You changed your mind, so I cancelled the order.", [])
