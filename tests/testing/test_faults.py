"""The fault-injection kit: FakeClock, FaultyModel and faulty_tool."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tether import tool
from tether.exceptions import ModelTimeout, ProviderError, Retry, ToolFailed
from tether.spec.messages import Message
from tether.spec.model import ModelRequest, ModelResponse, ModelStreamEvent, TextDelta
from tether.spec.tools import Risk, ToolContext
from tether.testing import (
    MODEL_FAULT_KINDS,
    FakeClock,
    Fault,
    FaultyModel,
    FunctionModel,
    ScriptedModel,
    ToolFault,
    faulty_tool,
)

REQUEST = ModelRequest(system="sys", messages=(Message.user("hi"),))
CTX = ToolContext(
    session_id="s1", step=1, call_id="c1", idempotency_key="k1", user_id=None, vars={}
)


async def collect(model: FaultyModel) -> list[ModelStreamEvent]:
    return [event async for event in model.stream(REQUEST)]


async def collect_into(model: FaultyModel, got: list[ModelStreamEvent]) -> None:
    """Stream one call into ``got``, so events seen before an error are kept."""
    async for event in model.stream(REQUEST):
        got.append(event)


async def outcome(model: FaultyModel) -> str:
    """``"ok"`` or the status of the error of one call."""
    try:
        await collect(model)
    except ProviderError as exc:
        return str(exc.status)
    return "ok"


def endless() -> FunctionModel:
    """A model that always answers "fine"."""
    return FunctionModel(lambda _request: "fine")


# --- FakeClock -----------------------------------------------------------------


async def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(100.0)
    assert clock() == 100.0
    assert clock.time() == 100.0
    await clock.sleep(2.5)
    clock.advance(10)
    await clock.sleep(0)
    assert clock() == 112.5
    assert clock.sleeps == [2.5, 0]
    assert FakeClock()() == 1_700_000_000.0


async def test_fake_clock_rejects_going_back() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="negative"):
        await clock.sleep(-1)
    with pytest.raises(ValueError, match="back in time"):
        clock.advance(-1)
    assert clock() == 1_700_000_000.0
    assert clock.sleeps == []


async def test_fake_clock_sleep_lets_other_tasks_run() -> None:
    clock = FakeClock()
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    task = asyncio.create_task(other())
    await clock.sleep(5)
    assert ran == ["other"]
    await task


# --- FaultyModel -----------------------------------------------------------------


async def test_pass_through_returns_the_inner_response() -> None:
    inner = ScriptedModel(["hello there"], name="scripted:a")
    model = FaultyModel(inner, [None])
    events = await collect(model)
    assert model.name == "scripted:a"
    assert events[0] == TextDelta("hello there")
    final = events[-1]
    assert isinstance(final, ModelResponse)
    assert final.message.text == "hello there"
    assert final.model == "scripted:a"
    assert (model.calls, model.passed, model.injected) == (1, 1, [])
    inner.assert_all_used()


@pytest.mark.parametrize(
    ("kind", "status", "retryable"),
    [
        ("429", 429, True),
        ("500", 500, True),
        ("502", 502, True),
        ("503", 503, True),
        ("529", 529, True),
        ("400", 400, False),
        ("401", 401, False),
    ],
)
async def test_status_faults(kind: str, status: int, retryable: bool) -> None:
    inner = ScriptedModel(["after"])
    model = FaultyModel(inner, [kind, None], name="wrapped")
    with pytest.raises(ProviderError) as info:
        await collect(model)
    err = info.value
    assert not isinstance(err, ModelTimeout)
    assert (err.status, err.retryable) == (status, retryable)
    assert (err.provider, err.model) == ("", "wrapped")
    assert str(status) in str(err)
    assert inner.remaining == 1  # the inner model was not called
    final = (await collect(model))[-1]
    assert isinstance(final, ModelResponse)
    assert final.message.text == "after"
    assert (model.calls, model.passed, model.injected) == (2, 1, [kind])


async def test_rate_limited_carries_retry_after() -> None:
    model = FaultyModel(ScriptedModel([]), [Fault.rate_limited(retry_after=2.0), "429"])
    with pytest.raises(ProviderError) as first:
        await collect(model)
    with pytest.raises(ProviderError) as second:
        await collect(model)
    assert (first.value.status, first.value.retry_after) == (429, 2.0)
    assert second.value.retry_after is None


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.server_error(), "500"),
        (Fault.bad_gateway(), "502"),
        (Fault.unavailable(), "503"),
        (Fault.overloaded(), "529"),
        (Fault.bad_request(), "400"),
        (Fault.unauthorized(), "401"),
        (Fault.connect_timeout(), "connect_timeout"),
        (Fault.read_timeout(), "read_timeout"),
        (Fault.reset(), "reset"),
        (Fault.stream_cut(3), "stream_cut"),
    ],
)
def test_fault_helpers_name_their_kind(fault: Fault, kind: str) -> None:
    assert fault.kind == kind
    assert fault == Fault(kind, after_deltas=fault.after_deltas)


@pytest.mark.parametrize("kind", ["connect_timeout", "read_timeout"])
async def test_timeouts_raise_model_timeout(kind: str) -> None:
    model = FaultyModel(ScriptedModel([]), [kind])
    with pytest.raises(ModelTimeout) as info:
        await collect(model)
    assert info.value.retryable
    assert info.value.status is None
    assert kind.split("_")[0] + " timeout" in str(info.value)
    assert model.injected == [kind]


async def test_reset_is_retryable_without_status() -> None:
    model = FaultyModel(ScriptedModel([]), [Fault.reset()])
    with pytest.raises(ProviderError, match="connection reset by peer") as info:
        await collect(model)
    assert not isinstance(info.value, ModelTimeout)
    assert (info.value.status, info.value.retryable) == (None, True)


@pytest.mark.parametrize("after", [1, 2])
async def test_stream_cut_delivers_the_first_deltas_then_fails(after: int) -> None:
    model = FaultyModel(ScriptedModel(["abcdefgh"], chunk=2), [Fault.stream_cut(after)])
    got: list[ModelStreamEvent] = []
    with pytest.raises(ProviderError, match="stream cut") as info:
        await collect_into(model, got)
    assert got == [TextDelta("ab"), TextDelta("cd")][:after]
    assert info.value.retryable
    assert model.injected == ["stream_cut"]


async def test_stream_cut_before_the_response_when_few_deltas() -> None:
    model = FaultyModel(ScriptedModel(["short"]), [Fault.stream_cut(5)])
    got: list[ModelStreamEvent] = []
    with pytest.raises(ProviderError, match="stream cut"):
        await collect_into(model, got)
    assert got == [TextDelta("short")]  # every delta, but never the response


async def test_list_used_up_then_pass_through_without_rate() -> None:
    model = FaultyModel(endless(), ["503"])
    assert [await outcome(model) for _ in range(4)] == ["503", "ok", "ok", "ok"]
    assert (model.calls, model.passed, model.injected) == (4, 3, ["503"])


async def test_rate_uses_the_given_kinds() -> None:
    model = FaultyModel(endless(), rate=1.0, kinds=("429", "502"), seed=7)
    results = {await outcome(model) for _ in range(40)}
    assert results == {"429", "502"}
    assert model.passed == 0


async def test_same_seed_same_faults_other_seed_differs() -> None:
    async def run(seed: int) -> list[str]:
        model = FaultyModel(endless(), rate=0.3, seed=seed)
        return [await outcome(model) for _ in range(200)]

    first, again, other = await run(1), await run(1), await run(2)
    assert first == again
    assert first != other
    assert "503" in first
    assert "ok" in first


async def test_rate_is_roughly_honoured() -> None:
    model = FaultyModel(endless(), rate=0.3, seed=3)
    for _ in range(1000):
        await outcome(model)
    assert model.calls == 1000
    assert 250 <= len(model.injected) <= 350
    assert model.passed + len(model.injected) == 1000


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown model fault kind"):
        Fault("418")
    with pytest.raises(ValueError, match="unknown model fault kind"):
        FaultyModel(endless(), rate=0.5, kinds=("404",))
    with pytest.raises(ValueError, match="rate"):
        FaultyModel(endless(), rate=1.5)
    with pytest.raises(ValueError, match="unknown tool fault kind"):
        ToolFault("explode")
    assert len(set(MODEL_FAULT_KINDS)) == 12  # the statuses, two timeouts, reset, stream_cut, stall


# --- faulty_tool --------------------------------------------------------------


@tool(reads=True, writes=True, idempotent=True, timeout=0.05)
async def lookup(order_id: str, ctx: ToolContext) -> str:
    """Look up an order.

    Args:
        order_id: The order id.
    """
    return f"{order_id}@{ctx.session_id}"


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def test_wrapped_tool_keeps_its_declaration() -> None:
    wrapped = faulty_tool(lookup, ["raise"]).tool
    assert wrapped is not lookup
    assert wrapped.fn is not lookup.fn
    for field in ("name", "description", "parameters", "risk", "idempotent", "timeout"):
        assert getattr(wrapped, field) == getattr(lookup, field), field
    assert wrapped.risk == Risk(reads=True, writes=True)
    assert wrapped.context_param == "ctx"
    assert wrapped.is_async


async def test_pass_through_runs_the_real_tool_async_and_sync() -> None:
    ft = faulty_tool(lookup, [None])
    assert await ft.tool(CTX, {"order_id": "#W1"}) == "#W1@s1"
    fa = faulty_tool(add)
    assert await fa.tool(CTX, {"a": 2, "b": "3"}) == 5
    assert (ft.calls, ft.passed, ft.injected) == (1, 1, [])
    assert (fa.calls, fa.passed) == (1, 1)


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("raise", RuntimeError, "injected failure"),
        ("fail", ToolFailed, "the service refused"),
        ("retry", Retry, "try again"),
    ],
)
async def test_raising_tool_faults(kind: str, error: type[Exception], message: str) -> None:
    ft = faulty_tool(add, [kind, None])
    with pytest.raises(error, match=message):
        await ft.tool(CTX, {"a": 1, "b": 1})
    assert await ft.tool(CTX, {"a": 1, "b": 1}) == 2
    assert (ft.calls, ft.passed, ft.injected) == (2, 1, [kind])


async def test_hang_is_ended_only_by_a_timeout() -> None:
    ft = faulty_tool(lookup, [ToolFault("hang")])
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await ft.tool(CTX, {"order_id": "#W1"})
    assert ft.injected == ["hang"]


async def test_slow_on_a_fake_clock_does_not_really_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_waits: list[float] = []
    real_sleep = asyncio.sleep

    async def spy(delay: float, *args: object) -> None:
        real_waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", spy)
    clock = FakeClock()
    ft = faulty_tool(add, ["slow", ToolFault("slow", delay=5.0)], delay=60.0, clock=clock)
    assert await ft.tool(CTX, {"a": 1, "b": 2}) == 3
    assert await ft.tool(CTX, {"a": 1, "b": 3}) == 4
    assert [w for w in real_waits if w] == []  # only the fake clock's yields, no real wait
    assert clock.sleeps == [60.0, 5.0]
    assert clock() == 1_700_000_000.0 + 65.0
    assert ft.injected == ["slow", "slow"]


async def test_slow_without_a_clock_sleeps_then_runs_the_tool() -> None:
    ft = faulty_tool(lookup, ["slow"], delay=0.01)
    assert await ft.tool(CTX, {"order_id": "#W2"}) == "#W2@s1"
    assert (ft.injected, ft.passed) == (["slow"], 0)


async def test_a_plain_function_still_runs_in_a_worker_thread() -> None:
    @tool
    def where() -> int:
        """Say which thread runs this."""
        return threading.get_ident()

    assert await faulty_tool(where).tool(CTX, {}) != threading.get_ident()


async def test_tool_rate_is_seeded_and_flaky() -> None:
    async def run(seed: int) -> list[bool]:
        ft = faulty_tool(add, rate=0.3, seed=seed)
        out = []
        for _ in range(200):
            try:
                await ft.tool(CTX, {"a": 1, "b": 1})
                out.append(True)
            except RuntimeError:
                out.append(False)
        assert ft.injected == ["raise"] * out.count(False)
        return out

    first, again, other = await run(5), await run(5), await run(6)
    assert first == again
    assert first != other
    assert 30 <= first.count(False) <= 90


async def test_tool_rate_with_another_kind() -> None:
    ft = faulty_tool(add, rate=1.0, kind="fail")
    with pytest.raises(ToolFailed):
        await ft.tool(CTX, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="unknown tool fault kind"):
        faulty_tool(add, rate=0.5, kind="flaky")


async def test_a_stall_starts_the_stream_then_goes_silent() -> None:
    model = FaultyModel(FunctionModel(lambda _r: "late", name="m"), [Fault.stalled(0.01)])
    events = [ev async for ev in model.stream(ModelRequest(system="", messages=()))]
    assert events[0] == TextDelta("")
    assert events[-1].message.text == "late"  # type: ignore[union-attr]
    assert model.injected == ["stall"]
