"""The retail agent driven through the full runtime by scripted models.

- Every tau2-bench training task, replayed through the runtime (a scripted
  model emits the task's expected actions one step at a time), leaves the
  shop exactly as applying the same actions to the tools directly does.
- Multi-turn flows: authentication carries across turns in the session's
  vars; another customer's order is refused by the tools, not the prompt.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from examples.retail.agent import INSTRUCTIONS
from examples.retail.shop import Shop
from examples.retail.tools import TOOLS

from tests.examples.conftest import apply_actions
from tests.examples.test_tasks_direct import _load_task_ids
from tether import Agent
from tether.runtime import Runtime, SessionStatus
from tether.spec.events import EventType
from tether.spec.model import ModelRequest
from tether.testing import FunctionModel, ScriptedModel, ScriptedResponse, call

JSON = dict[str, Any]


def retail_agent(model: Any, shop: Shop) -> Agent:
    return Agent(
        name="retail",
        instructions=INSTRUCTIONS,
        models=(model,),
        tools=TOOLS,
        deps=lambda: shop,
    )


#: the retail tools that must wait for a person: every write and every email
GATED = {
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_payment",
    "modify_pending_order_items",
    "modify_user_address",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
    "send_email",
}


async def run_deciding(
    rt: Runtime, agent: Agent, message: str, *, approve: bool
) -> tuple[Any, list[Any], list[tuple[str, JSON]]]:
    """Run a turn, answering every approval it stops for; the last result, all
    events, and the (tool, arguments) of each approval asked."""
    result = await rt.run(agent, message)
    events = list(result.events)
    asked: list[tuple[str, JSON]] = []
    while result.status == SessionStatus.AWAITING_APPROVAL:
        pending = result.approval
        assert pending is not None
        asked.append((pending.tool, pending.arguments))
        result = await rt.decide(
            agent, result.session_id, pending.id, approve=approve, by="test-approver"
        )
        events += result.events
    return result, events, asked


def replay_model(calls: list[tuple[str, JSON]]) -> FunctionModel:
    """A model that makes ``calls`` one per step, then answers."""
    pending = list(calls)

    def step(request: ModelRequest) -> ScriptedResponse:
        if pending:
            name, arguments = pending.pop(0)
            return call(name, **arguments)
        return "All done."

    return FunctionModel(step, name="replay")


@pytest.mark.parametrize("task_id", _load_task_ids())
async def test_task_replay_through_runtime_matches_direct(
    task_id: str, tau2_tasks: list[JSON], tau2_template: Shop
) -> None:
    task = next(t for t in tau2_tasks if t["id"] == task_id)
    actions = task["evaluation_criteria"]["actions"]
    failures: list[tuple[str, str]] = []
    calls: list[tuple[str, JSON]] = []
    direct = tau2_template.copy()
    await apply_actions(direct, actions, failures=failures, calls=calls)
    expected = direct.export_json()
    direct.close()

    shop = tau2_template.copy()
    async with Runtime() as rt:
        agent = retail_agent(replay_model(calls), shop)
        result, events, asked = await run_deciding(rt, agent, "replay the task", approve=True)
        final = shop.export_json()  # the runtime closes the deps it opened on exit
    assert result.status == SessionStatus.IDLE, result.error
    started = [
        (e.data["name"], e.data["arguments"]) for e in events if e.type == EventType.TOOL_STARTED
    ]
    assert started == calls
    # every write and every email waited for approval; no read did
    assert asked == [(n, a) for n, a in calls if n in GATED]
    errors = [e for e in events if e.type == EventType.TOOL_FINISHED and e.data["is_error"]]
    assert len(errors) == len(failures)
    assert json.dumps(final, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize("task_id", _load_task_ids())
async def test_task_replay_with_every_approval_denied_changes_nothing(
    task_id: str, tau2_tasks: list[JSON], tau2_template: Shop
) -> None:
    task = next(t for t in tau2_tasks if t["id"] == task_id)
    calls: list[tuple[str, JSON]] = []
    direct = tau2_template.copy()
    await apply_actions(direct, task["evaluation_criteria"]["actions"], failures=[], calls=calls)
    direct.close()
    before = tau2_template.export_json()

    shop = tau2_template.copy()
    async with Runtime() as rt:
        agent = retail_agent(replay_model(calls), shop)
        result, events, asked = await run_deciding(rt, agent, "replay the task", approve=False)
        final = shop.export_json()
    assert result.status == SessionStatus.IDLE, result.error
    assert asked == [(n, a) for n, a in calls if n in GATED]
    ran = {e.data["name"] for e in events if e.type == EventType.TOOL_STARTED}
    assert not ran & GATED  # no gated tool even started
    assert json.dumps(final, sort_keys=True) == json.dumps(before, sort_keys=True)


async def test_multi_turn_cancel_with_confirmation(demo_shop: Shop) -> None:
    model = ScriptedModel(
        [
            call("find_user_id_by_name_zip", first_name="Ava", last_name="Moreno", zip="94107"),
            call("get_order_details", order_id="#W1024001"),
            call("cancel_pending_order", order_id="#W1024001", reason="no longer needed"),
            "Done: order #W1024001 is cancelled.",
        ]
    )
    agent = retail_agent(model, demo_shop)
    async with Runtime() as rt:
        first = await rt.run(agent, "I'm Ava Moreno, zip 94107. Cancel #W1024001 please.")
        # the runtime, not the model, asks, with the summary built from the real arguments
        assert first.status == SessionStatus.AWAITING_APPROVAL
        # (how values are quoted in it is the approval text's business, not this test's)
        question = (first.output or "").replace("'", "")
        assert question == (
            "Please confirm: cancel order #W1024001 (reason: no longer needed); the refund "
            "goes to the original payment method. Reply yes or no."
        )
        assert demo_shop.order("#W1024001")["status"] == "pending"
        unclear = await rt.run(agent, "hmm, what would that cost?", session_id=first.session_id)
        assert unclear.status == SessionStatus.AWAITING_APPROVAL  # asked again, nothing ran
        assert unclear.output == first.output
        assert demo_shop.order("#W1024001")["status"] == "pending"
        second = await rt.run(agent, "yes", session_id=first.session_id)
        state = await rt.load(first.session_id)
        assert demo_shop.order("#W1024001")["status"] == "cancelled"
    model.assert_all_used()
    assert second.output == "Done: order #W1024001 is cancelled."
    assert state.vars.get("authenticated_user_id") == "ava_moreno_1024"
    decided = [e.data for e in second.events if e.type == EventType.APPROVAL_DECIDED]
    assert decided == [
        {
            "approval_id": first.approval.id if first.approval else "",
            "approved": True,
            "by": "user",
            "reason": None,
        }
    ]


async def test_other_customers_order_is_refused_by_the_tool(demo_shop: Shop) -> None:
    other = next(
        oid
        for oid, o in demo_shop.export_json()["orders"].items()
        if o["user_id"] != "ava_moreno_1024" and o["status"] == "pending"
    )
    model = ScriptedModel(
        [
            call("find_user_id_by_email", email="ava.moreno@example.com"),
            call("cancel_pending_order", order_id=other, reason="ordered by mistake"),
            "I can only help with your own orders.",
        ]
    )
    async with Runtime() as rt:
        # even approved, the tool itself refuses another customer's order
        agent = retail_agent(model, demo_shop)
        _, events, asked = await run_deciding(rt, agent, f"cancel {other}", approve=True)
        assert demo_shop.order(other)["status"] == "pending"
    assert [name for name, _ in asked] == ["cancel_pending_order"]
    finished = [e for e in events if e.type == EventType.TOOL_FINISHED]
    assert finished[1].data["is_error"] is True
    assert model.requests[-1].messages[-1].results[0].is_error
