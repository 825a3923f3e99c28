"""Testing your own agent deterministically with ``tether.testing``.

Run the tests with pytest (they need pytest-asyncio) or as a plain script::

    .venv/bin/python -m pytest docs/examples/testing_your_agent.py -q
    .venv/bin/python docs/examples/testing_your_agent.py

The agent below is declared the way production code declares it, with a real
model chain. Declaring it needs no API key; each test swaps the chain for a
scripted model with ``Agent.with_models``, so no test touches the network.
The last test takes its runtime and event log from the fixtures of tether's
pytest plugin (loaded by pytest whenever tether is installed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

import pytest

import tether
from tether import Agent, ModelRequest, Runtime, ScriptExhausted, ToolContext, ToolFailed
from tether.testing import (
    EventLog,
    FakeClock,
    FunctionModel,
    ScriptedModel,
    ScriptedResponse,
    call,
    capture_events,
)

pytestmark = pytest.mark.asyncio

# --- the agent under test (in a real project: imported from your package) ----

ORDERS = {"#W1": "pending", "#W2": "delivered"}


@tether.tool(reads=True)
def order_status(ctx: ToolContext, order_id: str) -> str:
    """The status of an order.

    Args:
        order_id: The order id, like '#W1'.
    """
    status = ctx.deps.get(order_id)
    if status is None:
        raise ToolFailed(f"there is no order {order_id}")
    return status


support_agent = Agent(
    name="support",
    instructions="Answer questions about orders.",
    models=("anthropic:claude-sonnet-4-5",),
    tools=(order_status,),
    deps=lambda: ORDERS,
)


# --- the tests ---------------------------------------------------------------


async def test_answers_from_the_tool_result() -> None:
    model = ScriptedModel([call("order_status", order_id="#W1"), "Order #W1 is pending."])
    async with Runtime() as rt:
        with capture_events() as log:
            result = await rt.run(support_agent.with_models([model]), "Where is #W1?", on_event=log)

    assert result.ok
    assert result.status == "idle"
    assert result.output == "Order #W1 is pending."
    assert log.tool_calls() == [("order_status", {"order_id": "#W1"})]
    # What the model saw on its second call: the tool's result, not an error.
    (tool_result,) = model.requests[1].messages[-1].results
    assert (tool_result.content, tool_result.is_error) == ("pending", False)
    model.assert_all_used()  # every scripted response was needed


async def test_a_failed_lookup_reaches_the_model_as_an_error() -> None:
    model = ScriptedModel([call("order_status", order_id="#W9"), "I could not find #W9."])
    async with Runtime() as rt:
        result = await rt.run(support_agent.with_models([model]), "Where is #W9?")

    (finished,) = [e for e in result.events if e.type == "tool.finished"]
    assert finished.data["is_error"] is True
    assert "there is no order #W9" in finished.data["content"]
    assert model.requests[1].messages[-1].results[0].is_error


async def test_an_agent_that_calls_its_model_once_too_often_fails() -> None:
    model = ScriptedModel([call("order_status", order_id="#W1")])  # no final answer scripted
    async with Runtime() as rt:
        with pytest.raises(ScriptExhausted, match="only 1 scripted responses"):
            await rt.run(support_agent.with_models([model]), "Where is #W1?")


def reply(request: ModelRequest) -> ScriptedResponse:
    """A FunctionModel answers from the request: here, from the last message."""
    last = request.messages[-1]
    if last.role == "tool":
        return f"Status: {last.results[0].content}."
    order_id = last.text.split()[-1].rstrip("?")
    return call("order_status", order_id=order_id)


CASES = [("#W1", "pending"), ("#W2", "delivered")]


@pytest.mark.parametrize(("order_id", "status"), CASES)
async def test_every_order_gets_its_own_status(order_id: str, status: str) -> None:
    agent = support_agent.with_models([FunctionModel(reply)])
    async with Runtime() as rt:
        result = await rt.run(agent, f"Where is {order_id}?")
    assert result.output == f"Status: {status}."


async def test_the_tool_alone() -> None:
    # A tool is callable on its own: arguments are validated exactly as in a run.
    ctx = ToolContext(
        session_id="s1",
        step=1,
        call_id="c1",
        idempotency_key="s1:1:c1",
        user_id=None,
        vars={},
        deps=ORDERS,
    )
    assert await order_status(ctx, {"order_id": "#W2"}) == "delivered"


async def test_with_the_plugin_fixtures(tether_runtime: Runtime, tether_events: EventLog) -> None:
    # tether_runtime: a Runtime on an in-memory store and a FakeClock, closed
    # after the test; tether_events: an EventLog to pass as on_event.
    model = ScriptedModel([call("order_status", order_id="#W2"), "Order #W2 was delivered."])
    agent = support_agent.with_models([model])
    result = await tether_runtime.run(agent, "Where is #W2?", on_event=tether_events)

    assert result.output == "Order #W2 was delivered."
    assert tether_events.tool_calls() == [("order_status", {"order_id": "#W2"})]
    assert tether_events.types()[-1] == "turn.completed"


# --- run as a script: call each test in turn -------------------------------


async def with_plugin_fixtures(test: Callable[[Runtime, EventLog], Awaitable[None]]) -> None:
    """Outside pytest: build what the tether_runtime and tether_events fixtures give a test."""
    clock = FakeClock()
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        with capture_events() as log:
            await test(rt, log)


def main() -> None:
    plain = [
        test_answers_from_the_tool_result,
        test_a_failed_lookup_reaches_the_model_as_an_error,
        test_an_agent_that_calls_its_model_once_too_often_fails,
    ]
    cases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        *((test.__name__, test) for test in plain),
        *(
            (
                f"test_every_order_gets_its_own_status {o} {s}",
                partial(test_every_order_gets_its_own_status, o, s),
            )
            for o, s in CASES
        ),
        (test_the_tool_alone.__name__, test_the_tool_alone),
        (
            test_with_the_plugin_fixtures.__name__,
            partial(with_plugin_fixtures, test_with_the_plugin_fixtures),
        ),
    ]
    for name, test in cases:
        asyncio.run(test())
        print(f"ok {name}")
    print(f"{len(cases)} passed")


if __name__ == "__main__":
    main()
