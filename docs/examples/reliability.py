"""Reliability: retries, an honest fallback, a fallback refused, a tool cut off by its breaker.

Run it from the repository root::

    .venv/bin/python docs/examples/reliability.py

Nothing here touches the network or really waits. The models and the tool
fail on purpose (``tether.testing.FaultyModel`` and ``faulty_tool``), and the
runtime sleeps on a ``FakeClock``, so back-off and cool-downs take no time and
every run prints the same lines (the jitter comes from a seeded generator).

1. The primary model answers 429 (Retry-After: 2 s), then 503 three times: the
   runtime retries it three times, then falls back to the backup model, and
   the answer is marked degraded.
2. The same outage for an agent with a ``critical`` tool: no fallback. The
   turn fails with a message the user can act on; the backup is never asked.
3. A lookup tool that always fails, with a small ``BreakerPolicy``: after two
   failures its breaker opens, and the next call is not run: the model is told
   the tool is unavailable. After the cool-down one trial call goes through.

The runtime also logs each retry (WARNING) and each breaker opening (ERROR) on
the ``tether.*`` loggers, which Python prints to stderr when logging is not
configured.
"""

from __future__ import annotations

import asyncio
import logging
import random

import tether
from tether import Agent, BreakerPolicy, ModelRequest, Runtime, ToolContext, TurnResult
from tether.testing import (
    FakeClock,
    Fault,
    FaultyModel,
    FunctionModel,
    ScriptedResponse,
    call,
    faulty_tool,
)


@tether.tool(reads=True)
def order_status(ctx: ToolContext, order_id: str) -> str:
    """The status of an order.

    Args:
        order_id: The order id, like '#W1'.
    """
    return "pending"


@tether.tool(writes=True, critical=True)
def refund(ctx: ToolContext, order_id: str) -> str:
    """Refund an order in full.

    Args:
        order_id: The order id, like '#W1'.
    """
    return "refunded"


def outage() -> FaultyModel:
    """A primary model that fails four times in a row: 429 with Retry-After, then 503s."""
    healthy = FunctionModel(lambda _r: "never reached", name="primary")
    return FaultyModel(healthy, [Fault.rate_limited(retry_after=2), "503", "503", "503"])


class OneLine(logging.Formatter):
    """Log records on one line each: the traceback of the failing tool is left out."""

    def formatException(self, ei: object) -> str:
        return ""


def events_of(result: TurnResult, type_: str) -> list[dict[str, object]]:
    return [e.data for e in result.events if e.type == type_]


async def fallback_allowed() -> None:
    print("1. primary down, the backup may answer")
    clock = FakeClock()
    primary = outage()
    backup = FunctionModel(lambda _r: "Order #W1 is pending.", name="backup")
    agent = Agent(
        name="support",
        instructions="Answer questions about orders.",
        models=(primary, backup),
        tools=(order_status,),
    )
    async with Runtime(clock=clock, sleep=clock.sleep, rng=random.Random(7)) as rt:
        result = await rt.run(agent, "Where is my order #W1?")
        stored = (await rt.load(result.session_id)).messages[-1]
    for r in events_of(result, "model.retry"):
        print(f"retry: attempt {r['attempt']} failed ({r['reason']}); waited {r['delay']:.2f} s")
    for f in events_of(result, "model.fallback"):
        print(f"fallback: {f['from']} -> {f['to']}")
    print(f"answer: {result.output}")
    (response,) = events_of(result, "model.response")
    print(f"degraded: event={response['degraded']} primary={response['primary']}")
    print(f"stored message: degraded={stored.degraded} model={stored.model}")
    print(f"primary calls: {primary.calls}, waited {sum(clock.sleeps):.2f} s (virtual)")


async def fallback_refused() -> None:
    print("2. the same outage, an agent with a critical tool")
    clock = FakeClock()
    primary = outage()
    backup = FunctionModel(lambda _r: call("refund", order_id="#W1"), name="backup")
    agent = Agent(
        name="refunds",
        instructions="Refund orders when the policy allows it.",
        models=(primary, backup),
        tools=(order_status, refund),
    )
    async with Runtime(clock=clock, sleep=clock.sleep, rng=random.Random(7)) as rt:
        result = await rt.run(agent, "Refund my order #W1.")
    print(f"may downgrade: {agent.may_downgrade}")
    print(f"status: {result.status}")
    print(f"error: {result.error}")
    retries, fallbacks = events_of(result, "model.retry"), events_of(result, "model.fallback")
    print(f"retries: {len(retries)}, fallbacks: {len(fallbacks)}")
    print(f"backup model asked: {len(backup.requests)} times")


def lookup_then_answer(request: ModelRequest) -> ScriptedResponse:
    """The model: look the order up, then answer from what the tool returned."""
    last = request.messages[-1]
    if last.role != "tool":
        return call("order_status", order_id="#W1")
    result = last.results[0]
    if result.is_error:
        return "Sorry, I could not look up order #W1 right now. Please try again later."
    return f"Order #W1 is {result.content}."


async def tool_breaker() -> None:
    print("3. a tool that always fails, behind a breaker")
    clock = FakeClock()
    broken = faulty_tool(order_status, rate=1.0, kind="raise")
    agent = Agent(
        name="lookup",
        instructions="Answer questions about orders.",
        models=(FunctionModel(lookup_then_answer, name="primary"),),
        tools=(broken.tool,),
        breaker=BreakerPolicy(failure_threshold=2, window=60, cooldown=30),
    )
    answers = []
    async with Runtime(clock=clock, sleep=clock.sleep, rng=random.Random(7)) as rt:
        for turn in ("turn 1", "turn 2", "turn 3", "turn 4 (30 s later)"):
            if turn.endswith("later)"):
                clock.advance(30)  # the cool-down passes: one trial call is let through
            result = await rt.run(agent, "Where is my order #W1?")
            (finished,) = events_of(result, "tool.finished")
            print(f"{turn}: {finished['content']}")
            for b in events_of(result, "breaker.opened"):
                print(f"{turn}: breaker.opened {b['key']} for {b['cooldown']:g} s")
            answers.append(result.output)
    same = "the same in every turn" if len(set(answers)) == 1 else "not always the same"
    print(f"answer ({same}): {answers[-1]}")
    print(f"tool really run: {broken.calls} times in 4 turns")


async def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLine("log: %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(handlers=[handler])
    await fallback_allowed()
    await fallback_refused()
    await tool_breaker()


if __name__ == "__main__":
    asyncio.run(main())
