"""Resuming an interrupted turn: stored results are reused, unsafe calls are not re-run."""

from __future__ import annotations

from typing import Any

import pytest

import tether
from tether import Agent, ToolContext
from tether.runtime import InMemoryStore, Runtime, SessionStatus
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import EventType
from tether.testing import ScriptedModel, call


class Crash(BaseException):
    """Stands in for the process dying mid-tool (not an Exception: nothing catches it)."""


class Effects:
    def __init__(self) -> None:
        self.charges = 0
        self.lookups = 0
        self.crash_next = True


@tether.tool(writes=True, irreversible=True)
async def charge(ctx: ToolContext, amount: int) -> str:
    """Charge the card."""
    ctx.deps.charges += 1
    if ctx.deps.crash_next:
        ctx.deps.crash_next = False
        raise Crash
    return "charged"


@tether.tool(reads=True)
async def lookup(ctx: ToolContext, q: str) -> str:
    """Look up."""
    ctx.deps.lookups += 1
    if ctx.deps.crash_next:
        ctx.deps.crash_next = False
        raise Crash
    return f"found {q}"


def agent_with(model: ScriptedModel, effects: Effects) -> Agent:
    return Agent(
        name="payments",
        instructions="Take payments.",
        models=(model,),
        tools=(charge, lookup),
        deps=lambda: effects,
        approval=ApprovalPolicy(enabled=False),  # resume semantics, not approvals
    )


async def crash_then_resume(first: Any, answer: str) -> tuple[Effects, Any, ScriptedModel]:
    effects = Effects()
    store = InMemoryStore()
    model = ScriptedModel([first, answer])
    agent = agent_with(model, effects)
    async with Runtime(store=store, close_store=False) as rt:
        with pytest.raises(Crash):
            await rt.run(agent, "go")
        (row,) = await store.list_sessions()
        assert row.status == SessionStatus.RUNNING
    async with Runtime(store=store, close_store=False) as rt2:
        result = await rt2.resume(agent, row.id)
    return effects, result, model


async def test_non_idempotent_call_is_not_rerun_and_reported_unknown() -> None:
    effects, result, model = await crash_then_resume(
        call("charge", amount=10), "I could not confirm the charge; please check."
    )
    assert effects.charges == 1  # never charged twice
    finished = [e for e in result.events if e.type == EventType.TOOL_FINISHED]
    assert finished[0].data["is_error"] is True
    assert "outcome unknown" in finished[0].data["content"]
    assert model.requests[-1].messages[-1].results[0].is_error
    assert result.status == SessionStatus.IDLE


async def test_idempotent_call_is_rerun_on_resume() -> None:
    effects, result, _model = await crash_then_resume(call("lookup", q="x"), "Found x.")
    # The call was recorded as started but left no result; a read is idempotent,
    # so it runs again instead of being reported as unknown.
    assert effects.lookups == 2
    assert result.output == "Found x."


async def test_only_the_unsafe_call_in_flight_is_reported_unknown() -> None:
    """A step with two unsafe calls crashes in the second: the first is not 'unknown'."""
    effects = Effects()
    effects.crash_next = False
    store = InMemoryStore()

    @tether.tool(writes=True)
    async def refund(ctx: ToolContext, amount: int) -> str:
        """Refund."""
        raise Crash

    model = ScriptedModel([[call("charge", amount=1), call("refund", amount=1)], "Checked."])
    agent = Agent(
        name="payments",
        instructions="x",
        models=(model,),
        tools=(charge, lookup, refund),
        deps=lambda: effects,
        approval=ApprovalPolicy(enabled=False),
    )
    async with Runtime(store=store, close_store=False) as rt:
        with pytest.raises(Crash):
            await rt.run(agent, "go")
        (row,) = await store.list_sessions()
    async with Runtime(store=store, close_store=False) as rt2:
        result = await rt2.resume(agent, row.id)
    results = model.requests[-1].messages[-1].results
    assert [r.name for r in results] == ["charge", "refund"]
    assert results[0].content == "charged"
    assert not results[0].is_error
    assert results[1].is_error
    assert "outcome unknown" in results[1].content
    assert effects.charges == 1
    assert result.status == SessionStatus.IDLE
