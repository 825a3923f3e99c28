"""Tool costs: recorded per call on ``tool.finished`` and added to the session's cost.

Each test drives a whole session with a scripted model priced at $1 / $2 per
million input / output tokens, so a session's cost is its model calls'
(summed from the ``model.response`` events) plus its tools'. Whether a
tool's function really ran is counted on the function itself, so "not
charged" is checked against what happened, not only against an event.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest

import tether
from tether import Agent, BreakerPolicy, Price, PriceTable, Runtime, ToolContext, ToolFailed
from tether.exceptions import Retry
from tether.runtime import InMemoryStore, SessionState, SessionStatus, TurnResult
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import Event, EventType
from tether.testing import ScriptedModel, call

PRICES = PriceTable({"scripted": Price(input=1.0, output=2.0)}, as_of="test")
SEARCH = 0.005  # dollars per search
SMS = 0.0079  # dollars per SMS segment
CHARGE = 0.25  # a payment provider's fee per charge


class Calls:
    """How many times each tool's function was entered."""

    def __init__(self) -> None:
        self.ran: dict[str, int] = {}
        #: tools whose next run dies mid-call (the process "crashes")
        self.crash_in: set[str] = set()
        self.fail_next = 0

    def hit(self, name: str) -> None:
        self.ran[name] = self.ran.get(name, 0) + 1
        if name in self.crash_in:
            self.crash_in.discard(name)
            raise Crash


class Crash(BaseException):
    """Stands in for the process dying mid-tool (not an Exception: nothing catches it)."""


@tether.tool(reads=True, cost=SEARCH)
async def search(ctx: ToolContext, q: str) -> list[str]:
    """Search the web (a paid API).

    Args:
        q: The query.
    """
    ctx.deps.hit("search")
    if ctx.deps.fail_next:
        ctx.deps.fail_next -= 1
        raise Retry("429 from the search API")
    if q == "boom":
        raise RuntimeError("the search API returned garbage")
    if q == "refuse":
        raise ToolFailed("that query is not allowed")
    return [f"{q} 1", f"{q} 2"]


@tether.tool(reads=True, idempotent=False, cost=SEARCH, timeout=0.05)  # not retried
async def slow_search(ctx: ToolContext, q: str) -> list[str]:
    """A search that hangs.

    Args:
        q: The query.
    """
    ctx.deps.hit("slow_search")
    await asyncio.sleep(10)
    return []


def _per_segment(result: dict[str, Any]) -> float:
    return SMS * float(result["segments"])


@tether.tool(external_comms=True, needs_approval=False, cost=_per_segment)
def send_sms(ctx: ToolContext, to: str, text: str) -> dict[str, Any]:
    """Send an SMS (billed per 160-character segment).

    Args:
        to: The phone number.
        text: The message.
    """
    ctx.deps.hit("send_sms")
    if to == "nowhere":
        raise RuntimeError("the SMS gateway is down")
    return {"status": "sent", "segments": math.ceil(len(text) / 160)}


@tether.tool(writes=True, irreversible=True, summary="charge {amount} USD", cost=CHARGE)
async def charge(ctx: ToolContext, amount: int) -> str:
    """Charge the customer's card.

    Args:
        amount: Dollars.
    """
    ctx.deps.hit("charge")
    return "charged"


def _bad_cost(result: Any) -> float:
    raise KeyError("segments")


@tether.tool(reads=True, cost=_bad_cost)
def lookup(ctx: ToolContext, q: str) -> str:
    """Look something up (its cost function is broken).

    Args:
        q: The query.
    """
    ctx.deps.hit("lookup")
    return f"found {q}"


@tether.tool(reads=True)
def free_lookup(ctx: ToolContext, q: str) -> str:
    """A lookup that costs nothing extra.

    Args:
        q: The query.
    """
    ctx.deps.hit("free_lookup")
    return q


TOOLS = (search, slow_search, send_sms, charge, lookup, free_lookup)


def make_agent(model: ScriptedModel, calls: Calls, **approval: Any) -> Agent:
    return Agent(
        name="costly",
        instructions="Help.",
        models=(model,),
        tools=TOOLS,
        deps=lambda: calls,
        approval=ApprovalPolicy(**approval),
    )


def finished(events: list[Event], name: str | None = None) -> list[dict[str, Any]]:
    return [
        e.data
        for e in events
        if e.type == EventType.TOOL_FINISHED and (name is None or e.data["name"] == name)
    ]


async def no_wait(_: float) -> None:
    """Retries without waiting."""


def token_cost(events: list[Event]) -> float:
    return sum(
        float(e.data.get("cost") or 0.0) for e in events if e.type == EventType.MODEL_RESPONSE
    )


async def run_session(
    script: list[Any], calls: Calls | None = None, **approval: Any
) -> tuple[TurnResult, list[Event], Any, Calls]:
    """Run one turn; return its result, the session's stored events and its row."""
    calls = calls if calls is not None else Calls()
    store = InMemoryStore()
    model = ScriptedModel(script)
    async with Runtime(store=store, close_store=False, prices=PRICES, sleep=no_wait) as rt:
        result = await rt.run(make_agent(model, calls, **approval), "go")
    events = await store.events(result.session_id)
    row = await store.get(result.session_id)
    return result, events, row, calls


def check_totals(result: TurnResult, events: list[Event], row: Any, tools: float) -> None:
    """Session cost = the model calls' + the tools' (row, turn, and the state folded again)."""
    tokens = token_cost(events)
    assert tokens > 0  # the model calls are priced: the sum below is not tools alone
    assert result.cost == pytest.approx(tokens + tools)
    assert row.cost == pytest.approx(tokens + tools)
    state = SessionState.from_events(result.session_id, events)
    assert state.cost == pytest.approx(tokens + tools)
    assert state.tool_cost == pytest.approx(tools)
    assert state.cost - state.tool_cost == pytest.approx(tokens)  # the tokens' part, derivable


async def test_a_fixed_price_is_recorded_and_added_to_the_session_cost() -> None:
    result, events, row, calls = await run_session(
        [call("search", q="shoes"), call("free_lookup", q="x"), "Found shoes."]
    )
    assert result.status == SessionStatus.IDLE
    assert calls.ran == {"search": 1, "free_lookup": 1}
    (done,) = finished(events, "search")
    assert done["cost"] == SEARCH
    assert "cost_error" not in done
    (free,) = finished(events, "free_lookup")
    assert "cost" not in free  # a tool without a cost never carries one
    check_totals(result, events, row, SEARCH)


async def test_a_price_from_the_result_is_computed_from_what_the_tool_returned() -> None:
    text = "x" * 400  # three segments
    result, events, row, _ = await run_session(
        [call("send_sms", to="+15550100", text=text), "Sent."]
    )
    (done,) = finished(events, "send_sms")
    assert done["cost"] == pytest.approx(3 * SMS)
    check_totals(result, events, row, 3 * SMS)


async def test_a_call_that_ran_and_failed_is_charged_a_fixed_price_only() -> None:
    script = [
        [
            call("search", q="boom"),  # raised
            call("search", q="refuse"),  # refused (ToolFailed): it answered
            call("slow_search", q="hang"),  # timed out
            call("send_sms", to="nowhere", text="hi"),  # priced by result: raised, so $0
        ],
        "Nothing worked; sorry: search, slow_search and send_sms failed.",
    ]
    result, events, row, calls = await run_session(script)
    assert calls.ran == {"search": 2, "slow_search": 1, "send_sms": 1}
    assert all(d["is_error"] for d in finished(events))
    assert [d["cost"] for d in finished(events, "search")] == [SEARCH, SEARCH]
    assert [d["cost"] for d in finished(events, "slow_search")] == [SEARCH]
    assert [d["cost"] for d in finished(events, "send_sms")] == [0.0]
    check_totals(result, events, row, 3 * SEARCH)


async def test_each_attempt_that_ran_is_charged() -> None:
    calls = Calls()
    calls.fail_next = 2  # two 429s, then an answer: three requests to the paid API
    store = InMemoryStore()
    model = ScriptedModel([call("search", q="shoes"), "Found shoes."])
    async with Runtime(store=store, close_store=False, prices=PRICES, sleep=no_wait) as rt:
        result = await rt.run(make_agent(model, calls), "go")
    events = await store.events(result.session_id)
    assert calls.ran == {"search": 3}
    (done,) = finished(events, "search")
    assert not done["is_error"]
    assert done["cost"] == pytest.approx(3 * SEARCH)
    check_totals(result, events, await store.get(result.session_id), 3 * SEARCH)


async def test_a_call_that_never_ran_is_not_charged() -> None:
    script = [
        [
            call("search", wrong="argument"),  # invalid arguments: refused before running
            call("send_sms", to="+15550100"),  # a missing argument
        ],
        "I could not search.",
    ]
    result, events, row, calls = await run_session(script)
    assert calls.ran == {}
    assert [(d["name"], d["is_error"], d["cost"]) for d in finished(events)] == [
        ("search", True, 0.0),
        ("send_sms", True, 0.0),
    ]
    check_totals(result, events, row, 0.0)


async def test_a_call_stopped_by_an_open_breaker_is_not_charged() -> None:
    calls = Calls()
    store = InMemoryStore()
    model = ScriptedModel(
        [call("search", q="boom"), call("search", q="shoes"), "Search is down; sorry."]
    )
    agent = Agent(
        name="costly",
        instructions="Help.",
        models=(model,),
        tools=TOOLS,
        deps=lambda: calls,
        breaker=BreakerPolicy(failure_threshold=1, failure_rate=1.0, cooldown=600),
    )
    async with Runtime(store=store, close_store=False, prices=PRICES) as rt:
        result = await rt.run(agent, "go")
    events = await store.events(result.session_id)
    assert calls.ran == {"search": 1}  # the second call failed fast: never ran
    assert any(e.type == EventType.BREAKER_OPENED for e in events)
    first, second = finished(events, "search")
    assert first["cost"] == SEARCH  # ran, raised: charged
    assert "unavailable right now" in second["content"]
    assert second["cost"] == 0.0
    check_totals(result, events, await store.get(result.session_id), SEARCH)


async def test_a_call_awaiting_approval_then_denied_is_not_charged() -> None:
    calls = Calls()
    store = InMemoryStore()
    model = ScriptedModel([call("charge", amount=40), "OK, I did not charge you."])
    agent = make_agent(model, calls)
    async with Runtime(store=store, close_store=False, prices=PRICES) as rt:
        first = await rt.run(agent, "charge me")
        assert first.status == SessionStatus.AWAITING_APPROVAL
        assert first.approval is not None
        assert finished(first.events) == []  # waiting: nothing recorded, nothing charged
        row = await store.get(first.session_id)
        assert row.cost == pytest.approx(token_cost(await store.events(first.session_id)))
        done = await rt.decide(agent, first.session_id, first.approval.id, approve=False, by="u")
    assert done.status == SessionStatus.IDLE
    assert calls.ran == {}
    events = await store.events(first.session_id)
    (denied,) = finished(events, "charge")
    assert denied["cost"] == 0.0
    row = await store.get(first.session_id)
    state = SessionState.from_events(first.session_id, events)
    assert state.tool_cost == 0.0
    assert row.cost == pytest.approx(token_cost(events))


async def test_an_approved_call_is_charged_once_it_runs() -> None:
    calls = Calls()
    store = InMemoryStore()
    model = ScriptedModel([call("charge", amount=40), "Charged."])
    agent = make_agent(model, calls)
    async with Runtime(store=store, close_store=False, prices=PRICES) as rt:
        first = await rt.run(agent, "charge me")
        assert first.approval is not None
        done = await rt.decide(agent, first.session_id, first.approval.id, approve=True, by="u")
    assert calls.ran == {"charge": 1}
    events = await store.events(first.session_id)
    assert [d["cost"] for d in finished(events, "charge")] == [CHARGE]
    assert done.cost == pytest.approx(token_cost(done.events) + CHARGE)  # this turn's share
    row = await store.get(first.session_id)
    assert row.cost == pytest.approx(token_cost(events) + CHARGE)


async def test_a_broken_cost_function_records_zero_and_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tether.tools"):
        result, events, row, calls = await run_session([call("lookup", q="x"), "Found x."])
    assert result.ok
    assert result.status == SessionStatus.IDLE
    assert result.output == "Found x."
    assert calls.ran == {"lookup": 1}
    (done,) = finished(events, "lookup")
    assert not done["is_error"]
    assert done["content"] == "found x"  # the model still got its result
    assert done["cost"] == 0.0
    assert done["cost_error"] == "its cost function raised KeyError: 'segments'"
    assert "cost function raised KeyError" in caplog.text
    check_totals(result, events, row, 0.0)


@pytest.mark.parametrize(
    ("returned", "why"),
    [
        (-1.0, "returned -1.0, not a finite number"),
        (math.nan, "returned nan, not a finite number"),
        (math.inf, "returned inf, not a finite number"),
        ("0.01", "returned '0.01', not a finite number"),
        (None, "returned None, not a finite number"),
        (True, "returned True, not a finite number"),
    ],
)
async def test_a_bad_value_from_a_cost_function_records_zero(returned: Any, why: str) -> None:
    @tether.tool(reads=True, cost=lambda result: returned)
    def lookup(ctx: ToolContext, q: str) -> str:
        """Look up.

        Args:
            q: The query.
        """
        return q

    store = InMemoryStore()
    model = ScriptedModel([call("lookup", q="x"), "Found x."])
    agent = Agent(name="a", instructions="Help.", models=(model,), tools=(lookup,))
    async with Runtime(store=store, close_store=False, prices=PRICES) as rt:
        result = await rt.run(agent, "go")
    assert result.ok
    events = await store.events(result.session_id)
    (done,) = finished(events, "lookup")
    assert done["cost"] == 0.0
    assert why in done["cost_error"]
    assert result.cost == pytest.approx(token_cost(events))


async def test_resume_does_not_charge_a_stored_result_again() -> None:
    """A step runs a priced search (stored), then a charge that dies mid-call.

    On resume the search is not run or charged again; the charge, which
    started and may have gone through, is reported as outcome unknown and
    charged once (its fixed price)."""
    calls = Calls()
    store = InMemoryStore()
    model = ScriptedModel(
        [[call("search", q="shoes"), call("charge", amount=40)], "I could not confirm it."]
    )
    agent = make_agent(model, calls, enabled=False)
    calls.crash_in = {"charge"}
    async with Runtime(store=store, close_store=False, prices=PRICES) as rt:
        with pytest.raises(Crash):
            await rt.run(agent, "buy shoes")
        (row,) = await store.list_sessions()
        assert row.status == SessionStatus.RUNNING
    before = await store.events(row.id)
    assert [d["cost"] for d in finished(before, "search")] == [SEARCH]  # stored before the crash
    async with Runtime(store=store, close_store=False, prices=PRICES) as rt2:
        result = await rt2.resume(agent, row.id)
    assert result.status == SessionStatus.IDLE
    assert calls.ran == {"search": 1, "charge": 1}  # neither ran again
    events = await store.events(row.id)
    assert [d["cost"] for d in finished(events, "search")] == [SEARCH]  # charged once
    (unknown,) = finished(events, "charge")
    assert "outcome unknown" in unknown["content"]
    assert unknown["cost"] == CHARGE
    state = SessionState.from_events(row.id, events)
    assert state.tool_cost == pytest.approx(SEARCH + CHARGE)
    final = await store.get(row.id)
    assert final.cost == pytest.approx(token_cost(events) + SEARCH + CHARGE)
    assert result.cost == pytest.approx(CHARGE + token_cost(result.events))  # the resumed turn's


async def test_an_idempotent_call_rerun_after_a_crash_is_charged_once() -> None:
    """The crashed run left no result (nothing to charge); the re-run reported one."""
    calls = Calls()
    calls.crash_in = {"search"}
    store = InMemoryStore()
    model = ScriptedModel([call("search", q="shoes"), "Found shoes."])
    agent = make_agent(model, calls)
    async with Runtime(store=store, close_store=False, prices=PRICES) as rt:
        with pytest.raises(Crash):
            await rt.run(agent, "go")
        (row,) = await store.list_sessions()
    async with Runtime(store=store, close_store=False, prices=PRICES) as rt2:
        result = await rt2.resume(agent, row.id)
    assert result.output == "Found shoes."
    assert calls.ran == {"search": 2}  # the crashed run left no record; the re-run did
    events = await store.events(row.id)
    assert [d["cost"] for d in finished(events, "search")] == [SEARCH]
    final = await store.get(row.id)
    assert final.cost == pytest.approx(token_cost(events) + SEARCH)
