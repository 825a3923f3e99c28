"""GatedModel: a model call that waits until the test opens its gate."""

from __future__ import annotations

import asyncio

import pytest

import tether
from tether import Agent, Runtime
from tether.spec.approval import ApprovalPolicy
from tether.spec.messages import Message
from tether.spec.model import ModelRequest, ModelResponse, ModelStreamEvent, TextDelta
from tether.testing import FunctionModel, GatedModel, ScriptedModel

HI = ModelRequest(system="sys", messages=(Message.user("hi"),))
SLOW = ModelRequest(system="sys", messages=(Message.user("slow"),))


async def collect_into(
    model: GatedModel, request: ModelRequest, got: list[ModelStreamEvent]
) -> None:
    async for event in model.stream(request):
        got.append(event)


def texts(events: list[ModelStreamEvent]) -> list[str]:
    return [e.text if isinstance(e, TextDelta) else f"<{e.message.text}>" for e in events]


async def settle(task: asyncio.Task[None]) -> None:
    """Let ``task`` run until it blocks; fail if it finished instead."""
    for _ in range(10):
        await asyncio.sleep(0)
    assert not task.done()


async def test_a_call_waits_for_the_gate_then_answers() -> None:
    model = GatedModel(ScriptedModel(["Hello."], name="inner"))
    assert model.name == "inner"
    got: list[ModelStreamEvent] = []
    task = asyncio.create_task(collect_into(model, HI, got))
    await asyncio.wait_for(model.entered.wait(), timeout=30)
    await settle(task)
    assert (got, model.waiting, model.held) == ([], 1, 1)
    model.gate.set()
    await asyncio.wait_for(task, timeout=30)
    assert texts(got) == ["Hello.", "<Hello.>"]
    assert model.waiting == 0


async def test_an_open_gate_lets_calls_through_and_only_chosen_calls_wait() -> None:
    model = GatedModel(
        FunctionModel(lambda r: f"re: {r.messages[-1].text}"),
        when=lambda r: r.messages[-1].text == "slow",
    )
    got: list[ModelStreamEvent] = []
    await collect_into(model, HI, got)  # not chosen: answers at once
    assert texts(got) == ["re: hi", "<re: hi>"]
    assert not model.entered.is_set()
    model.gate.set()
    got.clear()
    await collect_into(model, SLOW, got)  # chosen, but the gate is open
    assert texts(got) == ["re: slow", "<re: slow>"]
    assert (model.entered.is_set(), model.held) == (True, 1)


async def test_after_deltas_holds_the_rest_of_the_stream() -> None:
    model = GatedModel(ScriptedModel(["abcdef"], chunk=2), after_deltas=2)
    got: list[ModelStreamEvent] = []
    task = asyncio.create_task(collect_into(model, HI, got))
    await asyncio.wait_for(model.entered.wait(), timeout=30)
    await settle(task)
    assert texts(got) == ["ab", "cd"]
    model.gate.set()
    await asyncio.wait_for(task, timeout=30)
    assert texts(got) == ["ab", "cd", "ef", "<abcdef>"]


async def test_an_answer_with_fewer_deltas_is_held_before_its_response() -> None:
    model = GatedModel(ScriptedModel(["ab"], chunk=1), after_deltas=5)
    got: list[ModelStreamEvent] = []
    task = asyncio.create_task(collect_into(model, HI, got))
    await asyncio.wait_for(model.entered.wait(), timeout=30)
    await settle(task)
    assert texts(got) == ["a", "b"]
    model.gate.set()
    await asyncio.wait_for(task, timeout=30)
    assert isinstance(got[-1], ModelResponse)


async def test_one_gate_holds_several_models() -> None:
    gate = asyncio.Event()
    first = GatedModel(FunctionModel(lambda r: "one"), gate=gate)
    second = GatedModel(FunctionModel(lambda r: "two"), gate=gate)
    got: list[ModelStreamEvent] = []
    tasks = [asyncio.create_task(collect_into(m, HI, got)) for m in (first, second)]
    await asyncio.wait_for(first.entered.wait(), timeout=30)
    await asyncio.wait_for(second.entered.wait(), timeout=30)
    assert got == []
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    assert sorted(texts(got)) == ["<one>", "<two>", "one", "two"]


async def test_a_held_call_can_be_cancelled() -> None:
    model = GatedModel(ScriptedModel(["never"]))
    task = asyncio.create_task(collect_into(model, HI, []))
    await asyncio.wait_for(model.entered.wait(), timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.waiting == 0


def test_after_deltas_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="after_deltas must be >= 0"):
        GatedModel(ScriptedModel([]), after_deltas=-1)


async def test_a_gate_never_opened_mid_answer_ends_in_the_runtime_s_timeout() -> None:
    # Text is shown, then the model stalls: the turn fails on the total
    # deadline and says the answer was cut off.
    model = GatedModel(ScriptedModel(["Your order is"], name="stalls"), after_deltas=1)
    agent = Agent(
        name="shop",
        instructions="Help.",
        models=(model,),
        approval=ApprovalPolicy(enabled=False),
        limits=tether.Limits(first_token_timeout=5, model_timeout=0.2),
        retry=tether.RetryPolicy(max_retries=0),
    )
    async with Runtime() as rt:
        result = await rt.run(agent, "Where is #W1?")
    assert result.status == "failed"
    assert "stalls stopped in the middle of its answer" in (result.error or "")
    assert (model.held, model.waiting) == (1, 0)
