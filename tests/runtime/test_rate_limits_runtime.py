"""Per-user rate limits enforced by the runtime, driven by scripted models.

A request the limits refuse raises ``RateLimited`` before anything of it is
stored; a turn that runs out of daily tokens between model calls fails
cleanly and can be resumed later. The limiter counts in this process.
"""

from __future__ import annotations

import asyncio

import pytest

import tether
from tether import Agent, RateLimited
from tether.controls.ratelimit import RateLimiter
from tether.exceptions import SessionNotFound
from tether.runtime import InMemoryStore, Runtime, SessionStatus
from tether.spec.approval import ApprovalPolicy
from tether.spec.budget import Quota, RateLimits
from tether.spec.events import EventType
from tether.spec.messages import Message, ToolCall, Usage
from tether.spec.model import Model, ModelResponse
from tether.testing import FunctionModel, GatedModel, ScriptedModel, call, capture_events


@tether.tool(reads=True)
def lookup(q: str) -> str:
    """Look something up.

    Args:
        q: What to look up.
    """
    return f"found {q}"


def make_agent(model: Model) -> Agent:
    return Agent(
        name="chat",
        instructions="Answer briefly.",
        models=(model,),
        tools=(lookup,),
        approval=ApprovalPolicy(enabled=False),
        clarify=False,
    )


def limiter(**quota: int) -> RateLimiter:
    return RateLimiter(RateLimits(per_user=Quota(**quota)))


def answer(text: str = "", *calls: ToolCall, inp: int, out: int) -> ModelResponse:
    """A model answer reporting exactly this usage."""
    return ModelResponse(
        message=Message(role="assistant", text=text, tool_calls=calls),
        usage=Usage(input_tokens=inp, output_tokens=out),
        model="scripted",
        stop_reason="tool_use" if calls else "end",
    )


async def test_a_user_over_sessions_per_hour_is_refused_and_nothing_is_stored() -> None:
    model = FunctionModel(lambda _r: "Hello!")
    agent = make_agent(model)
    store = InMemoryStore()
    async with Runtime(store, limiter=limiter(sessions_per_hour=2)) as rt:
        for _ in range(2):
            assert (await rt.run(agent, "hi", user_id="u1")).ok
        before = await store.list_sessions(limit=None)
        assert len(before) == 2
        with pytest.raises(RateLimited) as info:
            await rt.run(agent, "hi", user_id="u1", new_session_id="third")
        exc = info.value
        assert (exc.limit, exc.scope, exc.key, exc.allowed) == (
            "sessions_per_hour",
            "user",
            "u1",
            2,
        )
        assert exc.reset_at is not None
        assert "sessions_per_hour" in str(exc)
        assert [r.id for r in await store.list_sessions(limit=None)] == [r.id for r in before]
        with pytest.raises(SessionNotFound):
            await store.get("third")
        assert len(model.requests) == 2  # the refused request never reached the model
        # the refusal is the user's alone, and their existing sessions go on
        assert (await rt.run(agent, "hi", user_id="u2")).ok
        assert (await rt.run(agent, "more", session_id=before[0].id, user_id="u1")).ok


async def test_a_message_to_an_existing_session_is_refused_once_daily_tokens_are_spent() -> None:
    model = ScriptedModel([answer("Done.", inp=4_000, out=1_000), "Hello again."])
    agent = make_agent(model)
    store = InMemoryStore()
    limits = limiter(tokens_per_day=5_000)
    async with Runtime(store, limiter=limits, close_store=False) as rt:
        first = await rt.run(agent, "hi", user_id="u1")
        assert first.ok
        assert first.usage.total_tokens == 5_000
        sid = first.session_id
        events = await store.events(sid)
        with pytest.raises(RateLimited) as info:
            await rt.run(agent, "one more thing", session_id=sid, user_id="u1")
        exc = info.value
        assert (exc.limit, exc.scope, exc.key, exc.allowed) == (
            "tokens_per_day",
            "user",
            "u1",
            5_000,
        )
        assert "tokens_per_day" in str(exc)
        # the message was not stored, and nothing else was
        assert await store.events(sid) == events
        record = await store.get(sid)
        assert (record.status, record.event_count) == (SessionStatus.IDLE, len(events))
        assert len(model.requests) == 1
    await limits.aclose()
    # the session was left unlocked: a runtime without the limit takes the message
    async with Runtime(store) as other:
        later = await other.run(agent, "one more thing", session_id=sid)
    assert (later.ok, later.output) == (True, "Hello again.")


async def test_a_turn_that_runs_out_of_daily_tokens_mid_turn_fails_cleanly_and_resumes() -> None:
    model = ScriptedModel(
        [
            answer("", call("lookup", q="order"), inp=2_000, out=500),  # 2,500 of 3,000
            "It is on its way.",
        ]
    )
    agent = make_agent(model)
    store = InMemoryStore()
    limits = limiter(tokens_per_day=3_000)
    async with Runtime(store, limiter=limits, close_store=False) as rt:
        with capture_events() as log:
            result = await rt.run(agent, "Where is my order?", user_id="u1", on_event=log)
        assert result.status == SessionStatus.FAILED
        assert result.error is not None
        assert "tokens_per_day" in result.error
        assert result.output is None
        [limited] = log.of(EventType.RATE_LIMITED)
        assert limited.data["limit"] == "tokens_per_day"
        assert (limited.data["scope"], limited.data["key"]) == ("user", "u1")
        assert limited.data["reset_at"] is not None
        # the tool ran once, and the second call was never made
        assert log.tool_calls() == [("lookup", {"q": "order"})]
        assert len(model.requests) == 1
        sid = result.session_id
        record = await store.get(sid)
        assert record.status == SessionStatus.FAILED
        assert "tokens_per_day" in (record.last_error or "")
        stored = [e.type for e in await store.events(sid)]
        assert stored[-2:] == [EventType.RATE_LIMITED, EventType.SESSION_STATUS]
    # the refused call took none of the day's tokens: exactly the 500 left still fit
    assert await limits.reserve_tokens("u1", None, 500) is not None
    with pytest.raises(RateLimited):
        await limits.reserve_tokens("u1", None, 1)
    await limits.aclose()
    # once tokens are available again (here: a runtime without the limit) it resumes
    async with Runtime(store) as later:
        with capture_events() as log:
            resumed = await later.resume(agent, sid, on_event=log)
    assert resumed.ok
    assert (resumed.status, resumed.output) == (SessionStatus.IDLE, "It is on its way.")
    assert log.tool_calls() == []  # the step before the failure is not run again
    model.assert_all_used()
    assert model.requests[1].messages[-1].results[0].content == "found order"


async def test_concurrent_sessions_refuses_a_second_overlapping_turn_until_the_first_ends() -> None:
    # a call whose last message is "slow" waits for model.gate
    model = GatedModel(
        FunctionModel(lambda r: f"re: {r.messages[-1].text}"),
        when=lambda r: r.messages[-1].text == "slow",
    )
    agent = make_agent(model)
    store = InMemoryStore()
    async with Runtime(store, limiter=limiter(concurrent_sessions=1)) as rt:
        a = (await rt.run(agent, "hi", user_id="u1")).session_id
        b = (await rt.run(agent, "hi", user_id="u1")).session_id  # one at a time: fine
        b_events = await store.events(b)
        first = asyncio.create_task(rt.run(agent, "slow", session_id=a, user_id="u1"))
        try:
            await asyncio.wait_for(model.entered.wait(), timeout=30)
            with pytest.raises(RateLimited) as info:
                await rt.run(agent, "meanwhile", session_id=b, user_id="u1")
            exc = info.value
            assert (exc.limit, exc.scope, exc.key, exc.allowed) == (
                "concurrent_sessions",
                "user",
                "u1",
                1,
            )
            assert exc.reset_at is None
            assert await store.events(b) == b_events
            # a new session is refused too, and not created
            with pytest.raises(RateLimited):
                await rt.run(agent, "new", user_id="u1")
            assert len(await store.list_sessions(limit=None)) == 2
            # another user is not affected
            assert (await rt.run(agent, "hi", user_id="u2")).ok
            assert not first.done()
        finally:
            model.gate.set()
        done = await asyncio.wait_for(first, timeout=30)
        assert (done.ok, done.output) == (True, "re: slow")
        # the first turn's slot was released when it ended
        after = await rt.run(agent, "meanwhile", session_id=b, user_id="u1")
        assert (after.ok, after.output) == (True, "re: meanwhile")
