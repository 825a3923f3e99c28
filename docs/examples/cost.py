"""Cost control: a token budget that compresses then ends cleanly, a loop stopped, a user limit.

Run it from the repository root::

    .venv/bin/python docs/examples/cost.py

No network and no API key: the models are scripted, but they carry real
model names (``anthropic:claude-sonnet-4-5`` and ``anthropic:claude-haiku-4-5``)
and report exact token usage, so every call is priced from Tether's price
table exactly as a real call would be.

1. A session with a 10,000-token budget, where every question pastes a long
   document (the scripted models report one token per 4 characters they
   read, as real ones roughly do). Past 80% of the budget, the older turns
   are summarised by the cheaper model of the chain, and later turns cost
   less; when the next call no longer fits, the session ends in
   ``budget_exhausted`` with a clear message.
2. A model that repeats the same search: the third identical call is not
   run; one last call without tools summarises what is known.
3. A per-user limit of 2 sessions per hour: the third session is refused
   before anything is stored, with the limit and when it resets.
"""

from __future__ import annotations

import asyncio

import tether
from tether import (
    Agent,
    Budget,
    Message,
    ModelRequest,
    ModelResponse,
    Quota,
    RateLimited,
    RateLimiter,
    RateLimits,
    Runtime,
    ToolContext,
    Usage,
)
from tether.testing import FunctionModel, call

SONNET = "anthropic:claude-sonnet-4-5"
HAIKU = "anthropic:claude-haiku-4-5"


@tether.tool(reads=True)
def search_help(ctx: ToolContext, query: str) -> str:
    """Search the help center.

    Args:
        query: What to look for.
    """
    return "Returns are free within 30 days of delivery."


def answer(text: str, *, model: str = SONNET, tokens: int = 2_500) -> ModelResponse:
    """A model answer that reports ``tokens`` of usage (90% input, 10% output)."""
    return ModelResponse(
        message=Message(role="assistant", text=text, model=model),
        usage=Usage(input_tokens=tokens * 9 // 10, output_tokens=tokens // 10),
        model=model,
    )


def chatty(request: ModelRequest) -> str:
    turn = sum(1 for m in request.messages if m.role == "user" and m.text.startswith("Q"))
    return f"Answer {turn}: the document looks fine."


def summariser(request: ModelRequest) -> str:
    return "The user pasted several documents and asked about each; all were answered."


async def budget() -> None:
    print("1. a 10,000-token session budget")
    agent = Agent(
        name="support",
        instructions="Answer briefly.",
        models=(FunctionModel(chatty, name=SONNET), FunctionModel(summariser, name=HAIKU)),
        budget=Budget(max_tokens=10_000, keep_turns=1),
        clarify=False,
    )
    document = "Line of a long pasted document. " * 80  # 2,560 characters
    async with Runtime() as rt:
        session = None
        for n in range(1, 12):
            result = await rt.run(agent, f"Q{n}: {document}", session_id=session)
            session = result.session_id
            compressed = [e for e in result.events if e.type == "context.compressed"]
            note = f" (compressed by {compressed[0].data['model']})" if compressed else ""
            print(
                f"turn {n}: {result.status}, {result.usage.total_tokens} tokens, "
                f"${result.cost:.4f}{note}"
            )
            if result.status == "budget_exhausted":
                print(f"the user reads: {result.output}")
                break
        record = await rt.store.get(session)
    print(f"session total: {record.usage.total_tokens} tokens, ${record.cost:.4f}")


def loops(request: ModelRequest) -> ModelResponse | object:
    if request.tool_choice == "none":  # the wrap-up call: no tools allowed
        return answer("Returns are free within 30 days of delivery.", tokens=400)
    return call("search_help", query="return policy")


async def loop_stopped() -> None:
    print("2. a model that repeats the same search")
    agent = Agent(
        name="help",
        instructions="Answer from the help center.",
        models=(FunctionModel(loops, name=SONNET),),
        tools=(search_help,),
        clarify=False,
    )
    async with Runtime() as rt:
        result = await rt.run(agent, "What is the return policy?")
    runs = sum(1 for e in result.events if e.type == "tool.started")
    print(f"stop reason: {result.stop_reason}, searches run: {runs}")
    print(f"answer: {result.output}")


async def per_user_limit() -> None:
    print("3. two sessions per hour per user")
    limiter = RateLimiter(RateLimits(per_user=Quota(sessions_per_hour=2)))
    agent = Agent(
        name="support",
        instructions="Answer briefly.",
        models=(FunctionModel(lambda _r: answer("Hello!", tokens=100), name=SONNET),),
        clarify=False,
    )
    async with Runtime(limiter=limiter) as rt:
        for n in range(1, 4):
            try:
                result = await rt.run(agent, "hi", user_id="ava")
                print(f"session {n}: {result.status}")
            except RateLimited as exc:
                print(
                    f"session {n}: refused ({exc.limit}, {exc.scope} {exc.key}, "
                    f"allowed {exc.allowed}, resets in about an hour: "
                    f"{3500 < (exc.retry_after or 0) <= 3600})"
                )
        print(f"sessions stored: {len(await rt.store.list_sessions())}")


async def main() -> None:
    await budget()
    await loop_stopped()
    await per_user_limit()


if __name__ == "__main__":
    asyncio.run(main())
