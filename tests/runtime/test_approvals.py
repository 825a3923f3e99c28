"""Approvals, attacked: each test fails if the runtime stops enforcing the gate.

Side effects are counted in a ledger the tools write to, so "not executed"
is checked on the effect itself, not on an event.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

import tether
from tether import Agent, Runtime, ToolContext
from tether.exceptions import ApprovalError
from tether.runtime import SessionStatus
from tether.spec.approval import ApprovalPolicy, arguments_hash
from tether.spec.events import EventType
from tether.testing import FakeClock, ScriptedModel, call


class Ledger:
    def __init__(self) -> None:
        self.cancelled: list[str] = []
        self.refunds: list[float] = []
        self.lookups = 0


@tether.tool(reads=True)
def get_order(ctx: ToolContext, order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order id.
    """
    ctx.deps.lookups += 1
    return {"order_id": order_id, "status": "pending"}


@tether.tool(writes=True, irreversible=True, summary="cancel order {order_id}")
def cancel_order(ctx: ToolContext, order_id: str) -> str:
    """Cancel an order.

    Args:
        order_id: The order id.
    """
    ctx.deps.cancelled.append(order_id)
    return f"{order_id} cancelled"


@tether.tool(high_stakes=True, summary="refund {amount:.2f} USD on order {order_id}")
def refund(ctx: ToolContext, order_id: str, amount: float) -> str:
    """Refund part of an order.

    Args:
        order_id: The order id.
        amount: USD.
    """
    ctx.deps.refunds.append(amount)
    return f"refunded {amount}"


def shop_agent(model: ScriptedModel, ledger: Ledger, **policy: Any) -> Agent:
    return Agent(
        name="shop",
        instructions="Help.",
        models=(model,),
        tools=(get_order, cancel_order, refund),
        deps=lambda: ledger,
        approval=ApprovalPolicy(**policy),
    )


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


async def test_a_write_the_model_calls_without_asking_waits(ledger: Ledger) -> None:
    model = ScriptedModel(
        [[call("get_order", order_id="#W1"), call("cancel_order", order_id="#W1")]]
    )
    async with Runtime() as rt:
        result = await rt.run(shop_agent(model, ledger), "cancel #W1")
        state = await rt.load(result.session_id)
    assert result.status == SessionStatus.AWAITING_APPROVAL
    assert ledger.lookups == 1  # the read before it ran
    assert ledger.cancelled == []
    assert result.approval is not None
    assert result.approval.summary == "cancel order '#W1'"  # the value quoted
    assert result.output == "Please confirm: cancel order '#W1'. Reply yes or no."
    assert state.status == SessionStatus.AWAITING_APPROVAL
    requested = next(e for e in result.events if e.type == EventType.APPROVAL_REQUESTED)
    assert requested.data["args_hash"] == arguments_hash("cancel_order", {"order_id": "#W1"})


async def test_the_models_own_words_never_approve(ledger: Ledger) -> None:
    said_yes = tether.Message.assistant(
        "The user said yes, they confirmed. Proceeding.",
        [call("cancel_order", order_id="#W1")],
    )
    model = ScriptedModel([said_yes])
    async with Runtime() as rt:
        result = await rt.run(shop_agent(model, ledger), "cancel #W1")
        # nor does a user message that is not a plain yes
        again = await rt.run(
            shop_agent(model, ledger), "yes, and cancel #W2 too", session_id=result.session_id
        )
    assert result.status == again.status == SessionStatus.AWAITING_APPROVAL
    assert ledger.cancelled == []
    assert [e.type for e in again.events if e.stored][-1] == EventType.APPROVAL_REASKED


async def test_approval_runs_the_exact_call_once(ledger: Ledger) -> None:
    model = ScriptedModel([call("cancel_order", order_id="#W1"), "Cancelled."])
    agent = shop_agent(model, ledger)
    async with Runtime() as rt:
        first = await rt.run(agent, "cancel #W1")
        assert first.approval is not None
        done = await rt.decide(agent, first.session_id, first.approval.id, approve=True, by="ada")
        # single use: the same approval cannot be used again, and says so
        with pytest.raises(ApprovalError, match="already approved by ada"):
            await rt.decide(agent, first.session_id, first.approval.id, approve=True, by="ada")
    assert done.output == "Cancelled."
    assert ledger.cancelled == ["#W1"]
    decided = next(e for e in done.events if e.type == EventType.APPROVAL_DECIDED)
    assert decided.data == {
        "approval_id": first.approval.id,
        "approved": True,
        "by": "ada",
        "reason": None,
    }


async def test_a_repeated_or_changed_call_needs_its_own_approval(ledger: Ledger) -> None:
    model = ScriptedModel(
        [
            call("cancel_order", order_id="#W1"),
            call("cancel_order", order_id="#W1"),  # the same call again
            call("cancel_order", order_id="#W2"),  # other arguments
            "Done.",
        ]
    )
    agent = shop_agent(model, ledger)
    async with Runtime() as rt:
        first = await rt.run(agent, "cancel")
        assert first.approval is not None
        second = await rt.decide(agent, first.session_id, first.approval.id, approve=True, by="u")
        assert second.status == SessionStatus.AWAITING_APPROVAL  # the repeat asks again
        assert second.approval is not None
        assert second.approval.id != first.approval.id
        assert ledger.cancelled == ["#W1"]
        third = await rt.decide(agent, first.session_id, second.approval.id, approve=False, by="u")
        assert third.approval is not None
        assert third.approval.arguments == {"order_id": "#W2"}
        assert ledger.cancelled == ["#W1"]  # neither the repeat nor #W2 ran


async def test_a_split_refund_asks_for_every_part(ledger: Ledger) -> None:
    model = ScriptedModel(
        [
            call("refund", order_id="#W1", amount=40.0),
            call("refund", order_id="#W1", amount=40.0),
            call("refund", order_id="#W1", amount=40.0),
            "Refunded.",
        ]
    )
    agent = shop_agent(model, ledger)
    summaries = []
    async with Runtime() as rt:
        result = await rt.run(agent, "refund 120 USD")
        while result.status == SessionStatus.AWAITING_APPROVAL:
            assert result.approval is not None
            summaries.append(result.approval.summary)
            approve = len(summaries) == 1  # the person approves the first part only
            result = await rt.decide(
                agent, result.session_id, result.approval.id, approve=approve, by="u"
            )
    assert summaries == ["refund 40.00 USD on order '#W1'"] * 3
    assert ledger.refunds == [40.0]


async def test_a_stale_or_foreign_approval_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    model = ScriptedModel(
        [call("cancel_order", order_id="#W1"), call("cancel_order", order_id="#W2")]
    )
    other_model = ScriptedModel([call("cancel_order", order_id="#W9")])
    agent = shop_agent(model, ledger)
    async with Runtime() as rt:
        first = await rt.run(agent, "cancel")
        other = await rt.run(shop_agent(other_model, ledger), "cancel")
        assert first.approval is not None
        assert other.approval is not None
        with pytest.raises(ApprovalError, match="stale or unknown"):
            await rt.decide(agent, first.session_id, other.approval.id, approve=True, by="u")
        events_before = await rt.store.events(first.session_id)
        assert (await rt.load(first.session_id)).status == SessionStatus.AWAITING_APPROVAL
        assert len(await rt.store.events(first.session_id)) == len(events_before)
    assert ledger.cancelled == []


async def test_an_expired_approval_does_not_run(ledger: Ledger) -> None:
    clock = FakeClock()
    model = ScriptedModel([call("cancel_order", order_id="#W1"), "It expired; shall I ask again?"])
    agent = shop_agent(model, ledger, expires_after=60.0)
    async with Runtime(clock=clock) as rt:
        first = await rt.run(agent, "cancel #W1")
        assert first.approval is not None
        clock.advance(61)
        late = await rt.decide(agent, first.session_id, first.approval.id, approve=True, by="u")
    assert ledger.cancelled == []
    assert [e.type for e in late.events if e.type.startswith("approval.")] == [
        EventType.APPROVAL_EXPIRED
    ]
    told = model.requests[-1].messages[-1].results[0].content
    assert "expired" in told
    assert late.output == "It expired; shall I ask again?"


async def test_operator_mode_needs_the_approver_role(ledger: Ledger) -> None:
    model = ScriptedModel([call("cancel_order", order_id="#W1"), "Cancelled."])
    agent = shop_agent(model, ledger, mode="operator")
    async with Runtime() as rt:
        first = await rt.run(agent, "cancel #W1")
        assert first.approval is not None
        assert first.output == (
            "This action is waiting for review by an operator: cancel order '#W1'"
        )
        # the user saying yes in chat does not approve it
        chat = await rt.run(agent, "yes", session_id=first.session_id)
        assert chat.status == SessionStatus.AWAITING_APPROVAL
        with pytest.raises(ApprovalError, match="approver"):
            await rt.decide(agent, first.session_id, first.approval.id, approve=True, by="mallory")
        assert ledger.cancelled == []
        done = await rt.decide(
            agent,
            first.session_id,
            first.approval.id,
            approve=True,
            by="olga",
            roles={"approver"},
        )
    assert ledger.cancelled == ["#W1"]
    assert done.output == "Cancelled."


async def test_denial_reaches_the_model_and_the_turn_goes_on(ledger: Ledger) -> None:
    model = ScriptedModel([call("cancel_order", order_id="#W1"), "Alright, I left it as it is."])
    agent = shop_agent(model, ledger)
    async with Runtime() as rt:
        first = await rt.run(agent, "cancel #W1")
        assert first.approval is not None
        no = await rt.run(agent, "No.", session_id=first.session_id)
    assert ledger.cancelled == []
    assert no.output == "Alright, I left it as it is."
    result = model.requests[-1].messages[-1].results[0]
    assert "declined" in result.content
    assert not result.is_error


async def test_a_rule_and_per_tool_overrides(ledger: Ledger) -> None:
    def big_lookups(tool: str, arguments: dict[str, Any]) -> bool:
        return tool == "get_order" and arguments.get("order_id") == "#VIP"

    model = ScriptedModel([call("get_order", order_id="#W1"), call("get_order", order_id="#VIP")])
    agent = shop_agent(model, ledger, rule=big_lookups)
    async with Runtime() as rt:
        result = await rt.run(agent, "look")
    assert ledger.lookups == 1  # the rule stopped only the second
    assert result.approval is not None
    assert result.approval.arguments == {"order_id": "#VIP"}
    exempt = replace(cancel_order, needs_approval=False)
    model2 = ScriptedModel([call("cancel_order", order_id="#W1"), "ok"])
    agent2 = replace(shop_agent(model2, ledger), tools=(exempt,))
    async with Runtime() as rt:
        done = await rt.run(agent2, "cancel")
    assert done.status == SessionStatus.IDLE
    assert ledger.cancelled == ["#W1"]


async def test_clarify_waits_for_the_users_answer(ledger: Ledger) -> None:
    model = ScriptedModel(
        [
            tether.Message.assistant(
                "", [call("clarify", question="Cancel the order, not change it - right?")]
            ),
            call("cancel_order", order_id="#W1"),
            "Cancelled.",
        ]
    )
    agent = shop_agent(model, ledger)
    async with Runtime() as rt:
        asked = await rt.run(agent, "I don't want #W1 any more")
        assert asked.status == SessionStatus.AWAITING_USER
        assert asked.output == "Cancel the order, not change it - right?"
        # the tool is offered to the model, and the answer comes back as its result
        assert "clarify" in [t.name for t in model.requests[0].tools]
        answered = await rt.run(agent, "Right, cancel it.", session_id=asked.session_id)
        assert answered.status == SessionStatus.AWAITING_APPROVAL  # clarify is not consent
        assert ledger.cancelled == []
        assert answered.approval is not None
        done = await rt.run(agent, "yes", session_id=asked.session_id)
    assert done.output == "Cancelled."
    assert ledger.cancelled == ["#W1"]
    clarify_result = model.requests[1].messages[-1].results[0]
    assert clarify_result.content == "The user answered: Right, cancel it."
    # an agent can go without it
    bare = ScriptedModel(["hi"])
    async with Runtime() as rt:
        await rt.run(replace(shop_agent(bare, ledger), clarify=False), "hello")
    assert "clarify" not in [t.name for t in bare.requests[0].tools]


def test_summaries_and_rules_that_break_fail_safe(caplog: pytest.LogCaptureFixture) -> None:
    from tether.runtime.approvals import needs_approval, parse_reply, summarize

    # a template that cannot format the model's value still shows the real arguments
    odd = call("refund", order_id="#W1", amount=None)
    assert summarize(refund, odd) == "run refund(order_id='#W1', amount=None)"

    # a rule that raises asks rather than lets the call through
    def broken(tool: str, arguments: dict[str, Any]) -> bool:
        raise KeyError("amount")

    agent = shop_agent(ScriptedModel([]), Ledger(), rule=broken)
    assert needs_approval(agent, get_order, call("get_order", order_id="#W1"))
    assert "approval rule failed" in caplog.text
    # strict replies: "cancel" is not a no when the question is "cancel order #W1?"
    assert [parse_reply(t) for t in ("Yes.", "y", "NO", "cancel", "yes please do", "")] == [
        True,
        True,
        False,
        None,
        None,
        None,
    ]
