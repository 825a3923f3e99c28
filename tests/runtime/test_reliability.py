"""Retries, fallback, breakers and the honesty check, driven through the whole runtime.

Models and tools fail on purpose (``tether.testing.FaultyModel``,
``FaultyTool``); waits run on a ``FakeClock``, so nothing sleeps.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import tether
from tether import Agent, BreakerPolicy, RetryPolicy, Runtime, ToolContext
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import EventType
from tether.spec.model import ModelRequest
from tether.testing import (
    FakeClock,
    Fault,
    FaultyModel,
    FunctionModel,
    ScriptedModel,
    ScriptedResponse,
    call,
    faulty_tool,
)


@tether.tool(reads=True)
def get_order(ctx: ToolContext, order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order id.
    """
    return {"order_id": order_id, "status": "pending"}


@tether.tool(writes=True, critical=True)
def refund(ctx: ToolContext, order_id: str) -> str:
    """Refund an order.

    Args:
        order_id: The order id.
    """
    return "refunded"


@tether.tool(external_comms=True)
def send_email(ctx: ToolContext, to: str) -> str:
    """Email the customer.

    Args:
        to: The address.
    """
    return "sent"


def answer(text: str = "All good.") -> FunctionModel:
    return FunctionModel(lambda _r: text, name="backup")


def agent(*models: object, tools: tuple[tether.Tool, ...] = (get_order,), **kw: object) -> Agent:
    return Agent(
        name="shop",
        instructions="Help.",
        models=models,  # type: ignore[arg-type]
        tools=tools,
        approval=ApprovalPolicy(enabled=False),  # reliability, not approvals
        **kw,  # type: ignore[arg-type]
    )


def events(result: tether.TurnResult, type_: str) -> list[dict[str, object]]:
    return [e.data for e in result.events if e.type == type_]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_transient_errors_are_retried_and_then_answered(clock: FakeClock) -> None:
    primary = FaultyModel(ScriptedModel(["Here you go."]), ["503", Fault.rate_limited(5.0)])
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        result = await rt.run(agent(primary), "hi")
    assert result.output == "Here you go."
    retries = events(result, EventType.MODEL_RETRY)
    assert [(r["attempt"], r["reason"]) for r in retries] == [(1, "HTTP 503"), (2, "HTTP 429")]
    assert retries[1]["delay"] == 5.0
    assert len(clock.sleeps) == 2
    assert 0.8 <= clock.sleeps[0] <= 1.2
    assert clock.sleeps[1] == 5.0


async def test_retry_events_are_stored_for_sessions_show(clock: FakeClock) -> None:
    primary = FaultyModel(ScriptedModel(["ok"]), ["529"])
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        result = await rt.run(agent(primary), "hi")
        stored = [e.type for e in await rt.store.events(result.session_id)]
    assert EventType.MODEL_RETRY in stored


async def test_fallback_only_after_retries_run_out_and_marks_the_answer_degraded(
    clock: FakeClock,
) -> None:
    primary = FaultyModel(ScriptedModel([]), rate=1.0, kinds=["503"], name="anthropic:big")
    backup = answer("From the backup.")
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        result = await rt.run(agent(primary, backup), "hi")
        state = await rt.load(result.session_id)
    assert result.output == "From the backup."
    assert primary.calls == 4  # 1 + 3 retries, then the fallback
    (fallback,) = events(result, EventType.MODEL_FALLBACK)
    assert (fallback["from"], fallback["to"]) == ("anthropic:big", "backup")
    (response,) = events(result, EventType.MODEL_RESPONSE)
    assert response["degraded"] is True
    assert response["primary"] == "anthropic:big"
    assert state.messages[-1].degraded is True
    assert state.messages[-1].model == "backup"


@pytest.mark.parametrize("kind", ["400", "401"])
async def test_no_retry_and_no_fallback_on_a_refused_request(clock: FakeClock, kind: str) -> None:
    primary = FaultyModel(ScriptedModel([]), [kind])
    backup = answer()
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        result = await rt.run(agent(primary, backup), "hi")
    assert result.status == "failed"
    assert primary.calls == 1
    assert backup.requests == []
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "make",
    [
        lambda p, b: agent(p, b, tools=(get_order, refund)),  # exposes a critical tool
        lambda p, b: agent(p, b, no_downgrade=True),
    ],
    ids=["critical-tool", "no-downgrade"],
)
async def test_no_fallback_when_a_critical_action_may_follow(
    clock: FakeClock, make: object
) -> None:
    primary = FaultyModel(ScriptedModel([]), rate=1.0, kinds=["529"], name="anthropic:big")
    backup = answer()
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        result = await rt.run(make(primary, backup), "refund my order")  # type: ignore[operator]
    assert result.status == "failed"
    assert backup.requests == []  # the backup model was never asked
    assert result.error is not None
    assert "anthropic:big is unavailable right now" in result.error
    assert "backup model" in result.error
    assert events(result, EventType.MODEL_FALLBACK) == []


async def test_a_stream_that_already_showed_text_is_not_restarted(clock: FakeClock) -> None:
    inner = FunctionModel(lambda _r: "Your order has shipped.", name="m", chunk=5)
    primary = FaultyModel(inner, [Fault.stream_cut(after_deltas=2)])
    backup = answer()
    shown: list[str] = []
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        result = await rt.run(
            agent(primary, backup),
            "hi",
            on_event=lambda e: shown.append(e.data["text"]) if e.type == "model.delta" else None,
        )
    assert shown == ["Your ", "order"]
    assert result.status == "failed"
    assert primary.calls == 1
    assert backup.requests == []
    assert result.error is not None
    assert "stopped in the middle of its answer" in result.error


async def test_first_token_timeout(clock: FakeClock) -> None:
    slow = FunctionModel(lambda _r: "late", name="slow", delay=5.0)
    limits = tether.Limits(first_token_timeout=0.05)
    no_retry = RetryPolicy(max_retries=0)
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        result = await rt.run(agent(slow, limits=limits, retry=no_retry), "hi")
    assert result.status == "failed"
    assert result.error is not None
    assert "did not start answering within 0.05 s" in result.error


async def test_model_breaker_opens_then_skips_the_primary_until_a_trial(clock: FakeClock) -> None:
    policy = BreakerPolicy(failure_threshold=2, window=60, cooldown=30)
    # two 503s, then the provider is healthy again
    primary = FaultyModel(ScriptedModel(["primary is back"]), ["503", "503"], name="p")
    backup = answer("backup")
    shop = agent(primary, backup, breaker=policy, retry=RetryPolicy(max_retries=1))
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        first = await rt.run(shop, "one")
        assert primary.calls == 2
        assert len(events(first, EventType.BREAKER_OPENED)) == 1
        second = await rt.run(shop, "two")
        assert primary.calls == 2  # not called at all: the breaker is open
        assert second.output == "backup"
        clock.advance(31)
        third = await rt.run(shop, "three")
    assert primary.calls == 3  # exactly one trial call
    assert third.output == "primary is back"
    assert len(events(third, EventType.BREAKER_CLOSED)) == 1


async def test_dead_tool_is_cut_off_and_the_model_is_told(clock: FakeClock) -> None:
    dead = faulty_tool(get_order, rate=1.0, kind="raise")
    policy = BreakerPolicy(failure_threshold=3, window=60, cooldown=30)

    def script(request: ModelRequest) -> ScriptedResponse:
        last = request.messages[-1]
        if last.role == "tool":
            return "Sorry, I could not look that up right now."
        return call("get_order", order_id="#W1")

    shop = agent(FunctionModel(script, name="m"), tools=(dead.tool,), breaker=policy)
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        results = [await rt.run(shop, f"try {i}") for i in range(6)]
        assert dead.calls == 3  # the breaker opened at the third failure
        last = next(e for e in results[-1].events if e.type == EventType.TOOL_FINISHED)
        assert "unavailable right now" in last.data["content"]
        assert "It was not run" in last.data["content"]
        clock.advance(31)
        await rt.run(shop, "after the cool-down")
        await rt.run(shop, "and again")
    assert dead.calls == 4  # one trial per cool-down


async def test_only_idempotent_tools_are_retried(clock: FakeClock) -> None:
    email = faulty_tool(send_email, ["retry"])
    lookup = faulty_tool(get_order, ["retry"])
    model = ScriptedModel(
        [
            call("send_email", to="a@example.com"),
            call("get_order", order_id="#W1"),
            "Sorry: the email could not be sent; your order is pending.",
        ]
    )
    shop = agent(model, tools=(email.tool, lookup.tool))
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        result = await rt.run(shop, "hi")
    assert email.calls == 1  # not idempotent: never repeated
    assert lookup.calls == 2  # a read: retried once, then it worked
    retried = events(result, EventType.TOOL_RETRY)
    assert [r["name"] for r in retried] == ["get_order"]


async def test_an_answer_that_hides_a_failed_tool_is_flagged(clock: FakeClock) -> None:
    broken = faulty_tool(send_email, rate=1.0, kind="raise")
    for text, flagged in (
        ("Done! I emailed you the details.", True),
        ("Sorry, I could not send the email.", False),
    ):
        model = ScriptedModel([call("send_email", to="a@example.com"), text])
        async with Runtime(clock=clock, sleep=clock.sleep) as rt:
            result = await rt.run(agent(model, tools=(broken.tool,)), "email me")
            stored = [e.type for e in await rt.store.events(result.session_id)]
        marks = events(result, EventType.UNACKNOWLEDGED_FAILURE)
        assert (marks == [{"tools": ["send_email"]}]) is flagged
        assert (EventType.UNACKNOWLEDGED_FAILURE in stored) is flagged


def test_agent_may_downgrade() -> None:
    assert agent(answer()).may_downgrade
    assert not agent(answer(), no_downgrade=True).may_downgrade
    assert not agent(answer(), tools=(get_order, refund)).may_downgrade
    assert not replace(agent(answer()), no_downgrade=True).may_downgrade


async def test_deadline_timer_is_gone_after_a_failed_call(clock: FakeClock) -> None:
    # A provider error must not leave the call's deadline armed: it would
    # cancel whatever the task does next, long after the call.
    import asyncio

    primary = FaultyModel(ScriptedModel([]), ["401"])
    limits = tether.Limits(first_token_timeout=0.05, model_timeout=0.1)
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        result = await rt.run(agent(primary, limits=limits), "hi")
        assert result.status == "failed"
        await asyncio.sleep(0.2)  # past both deadlines: nothing gets cancelled
    assert result.error is not None


async def test_total_timeout_after_the_first_event(clock: FakeClock) -> None:
    # Text arrives at once, then the stream stalls: the first-event deadline
    # is met, the total one is not.
    stalls = FaultyModel(FunctionModel(lambda _r: "late", name="stalls"), [Fault.stalled(5)])

    limits = tether.Limits(first_token_timeout=0.05, model_timeout=0.2)
    async with Runtime(clock=clock, sleep=clock.sleep) as rt:
        result = await rt.run(agent(stalls, limits=limits, retry=RetryPolicy(max_retries=0)), "hi")
    assert result.status == "failed"
    assert result.error is not None
    assert "did not finish answering within 0.2 s" in result.error
