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
        result = await rt.run(retail_agent(replay_model(calls), shop), "replay the task")
        final = shop.export_json()  # the runtime closes the deps it opened on exit
    assert result.status == SessionStatus.IDLE, result.error
    started = [
        (e.data["name"], e.data["arguments"])
        for e in result.events
        if e.type == EventType.TOOL_STARTED
    ]
    assert started == calls
    errors = [e for e in result.events if e.type == EventType.TOOL_FINISHED and e.data["is_error"]]
    assert len(errors) == len(failures)
    assert json.dumps(final, sort_keys=True) == json.dumps(expected, sort_keys=True)


async def test_multi_turn_cancel_with_confirmation(demo_shop: Shop) -> None:
    model = ScriptedModel(
        [
            call("find_user_id_by_name_zip", first_name="Ava", last_name="Moreno", zip="94107"),
            call("get_order_details", order_id="#W1024001"),
            "Order #W1024001 is pending. Cancel it because it is no longer needed? (yes/no)",
            call("cancel_pending_order", order_id="#W1024001", reason="no longer needed"),
            "Done: order #W1024001 is cancelled.",
        ]
    )
    agent = retail_agent(model, demo_shop)
    async with Runtime() as rt:
        first = await rt.run(agent, "I'm Ava Moreno, zip 94107. Cancel #W1024001 please.")
        assert first.output is not None
        assert first.output.endswith("(yes/no)")
        assert demo_shop.order("#W1024001")["status"] == "pending"
        second = await rt.run(agent, "yes", session_id=first.session_id)
        state = await rt.load(first.session_id)
        assert demo_shop.order("#W1024001")["status"] == "cancelled"
    model.assert_all_used()
    assert second.output == "Done: order #W1024001 is cancelled."
    assert state.vars.get("authenticated_user_id") == "ava_moreno_1024"


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
        result = await rt.run(retail_agent(model, demo_shop), f"cancel {other}")
        assert demo_shop.order(other)["status"] == "pending"
    finished = [e for e in result.events if e.type == EventType.TOOL_FINISHED]
    assert finished[1].data["is_error"] is True
    assert model.requests[-1].messages[-1].results[0].is_error
