"""Cost: fill a store with retail-like sessions whose usage is priced, for ``tether cost``.

Each session is an errand of the retail support agent on the generated demo
shop (the real tools on a real SQLite shop): an order-status question
(authenticate by email, look the order up, answer), a return-policy
question (search the help center, answer), sometimes a second turn ("thanks"),
and now and then a call the provider rejects (a 400: the session fails after
the calls it already paid for). The model is scripted but carries a real,
priced model name, and reports usage the way a caching provider does: the
system prompt is a cache write on a session's first call and a cache read
after; the rest of the input (one token per four characters) and the output
are billed as such. So every call is priced from the real price table.

Sessions are spread over ``--days`` days (a ``FakeClock`` injected into the
runtime sets each session's time) and ``--users`` users, some busier than
others. Version 1 of the agent runs on Claude Sonnet 4.5; from the middle
day on, version 2 runs on Claude Haiku 4.5, so the report has two versions
and two models to compare. Run::

    .venv/bin/python bench/cost.py                       # 200 sessions into a temp SQLite file
    .venv/bin/python bench/cost.py --db sqlite+aiosqlite:////tmp/bench.db --sessions 1000
    .venv/bin/tether cost --db sqlite+aiosqlite:////tmp/bench.db

``--json`` prints one JSON object last (the store URL, sessions, wall time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.retail.agent import INSTRUCTIONS, open_shop
from examples.retail.generate import DEMO
from examples.retail.tools import TOOLS

from tether import Agent, ProviderError, Runtime
from tether.spec.messages import Message, Usage
from tether.spec.model import ModelRequest, ModelResponse
from tether.store import open_store
from tether.testing import FakeClock, FunctionModel, ScriptedResponse, call, unwrap

SONNET = "anthropic:claude-sonnet-4-5"
HAIKU = "anthropic:claude-haiku-4-5"
BY_NAME = {t.name: t for t in TOOLS}
ORDER = DEMO["pending_order"]
DAY = 86_400.0

# (first message, share of sessions)
ERRANDS = [
    ("What's the status of my order?", 0.55),
    ("What is your return policy for shoes?", 0.35),
    ("Where is my refund?", 0.10),  # the provider rejects the second call: the session fails
]


def _tokens(chars: int) -> int:
    return max(1, chars // 4)


def script(model: str) -> Callable[[ModelRequest], ScriptedResponse]:
    """The scripted ``model``: answers from what the tools returned, bills like a cache."""

    def respond(message: Message, request: ModelRequest) -> ModelResponse:
        system = _tokens(len(request.system))
        rest = sum(len(m.text) + sum(len(r.content) for r in m.results) for m in request.messages)
        first = len(request.messages) == 1
        out = _tokens(len(message.text)) + 12 * len(message.tool_calls)
        usage = Usage(
            input_tokens=_tokens(rest) + 40 * len(request.tools),  # tool schemas are input too
            output_tokens=out,
            cache_read_tokens=0 if first else system,
            cache_write_tokens=system if first else 0,
        )
        stop = "tool_use" if message.tool_calls else "end"
        return ModelResponse(message=message, usage=usage, model=model, stop_reason=stop)

    def answer(request: ModelRequest) -> ScriptedResponse:
        last = request.messages[-1]
        first_text = request.messages[0].text
        if last.role == "user":
            if last.text.startswith("Thanks"):
                reply = "You're welcome! Is there anything else I can help you with?"
                return respond(Message(role="assistant", text=reply, model=model), request)
            if "return policy" in last.text:
                tool = call("search_help_center", query="return policy shoes")
            else:
                tool = call("find_user_id_by_email", email=DEMO["email"])
            return respond(Message(role="assistant", tool_calls=(tool,), model=model), request)
        result = last.results[0]
        if result.name == "find_user_id_by_email":
            if "refund" in first_text:
                return ProviderError("400 invalid request", status=400, retryable=False)
            tool = call("get_order_details", order_id=ORDER)
            return respond(Message(role="assistant", tool_calls=(tool,), model=model), request)
        if result.name == "get_order_details":
            status = json.loads(result.content)["status"]
            text = f"Your order {ORDER} is {status}. It contains the items you ordered."
        else:
            articles = json.loads(unwrap(result.content))  # help articles are spotlighted
            title = articles[0]["title"] if articles else "our help center"
            text = f"According to '{title}': delivered items can be returned within 30 days."
        return respond(Message(role="assistant", text=text, model=model), request)

    return answer


def agents(shop_path: Path) -> tuple[Agent, Agent]:
    tools = tuple(
        BY_NAME[n] for n in ("find_user_id_by_email", "get_order_details", "search_help_center")
    )

    def deps() -> Any:
        return open_shop(shop_path)

    v1 = Agent(
        name="retail",
        version="1",
        instructions=INSTRUCTIONS,
        models=(SONNET,),
        tools=tools,
        deps=deps,
    )
    v2 = Agent(
        name="retail",
        version="2",
        instructions=INSTRUCTIONS,
        models=(HAIKU,),
        tools=tools,
        deps=deps,
    )
    return v1, v2


def plan(n: int, days: int, users: int, start: float, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` sessions: when (sorted), who (some users busier), which errand, a second turn?"""
    weights = [1.0 / (i + 1) for i in range(users)]  # a few heavy users, a long tail
    people = [f"user-{i:03d}" for i in range(users)]
    texts, shares = zip(*ERRANDS, strict=True)
    out = []
    for _ in range(n):
        day = rng.randrange(days)
        out.append(
            {
                "at": start + day * DAY + rng.uniform(8 * 3600, 22 * 3600),
                "day": day,
                "user": rng.choices(people, weights)[0],
                "text": rng.choices(texts, shares)[0],
                "thanks": rng.random() < 0.3,
            }
        )
    return sorted(out, key=lambda s: s["at"])


async def fill(url: str, n: int, days: int, users: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    # whole UTC days ending today, so `tether cost --since DAYS` finds them
    start = (time.time() // DAY - days + 1) * DAY
    clock = FakeClock(start)
    store = await open_store(url)
    statuses: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        shop_path = Path(tmp) / "shop.sqlite"
        open_shop(shop_path).close()
        v1, v2 = agents(shop_path)
        models = {m: FunctionModel(script(m), name=m) for m in (SONNET, HAIKU)}
        async with Runtime(
            store=store, clock=clock, sleep=clock.sleep, rng=random.Random(seed), models=models
        ) as rt:
            for s in plan(n, days, users, start, rng):
                clock.advance(max(0.0, s["at"] - clock()))
                agent = v1 if s["day"] < days // 2 else v2
                result = await rt.run(agent, s["text"], user_id=s["user"])
                if s["thanks"] and result.ok:
                    clock.advance(45.0)
                    result = await rt.run(
                        agent, "Thanks!", session_id=result.session_id, user_id=s["user"]
                    )
                statuses[result.status] = statuses.get(result.status, 0) + 1
    return {"sessions": n, "statuses": dict(sorted(statuses.items()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="store URL (default: a new temporary SQLite file)")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    if args.sessions < 1 or args.days < 1 or args.users < 1:
        parser.error("--sessions, --days and --users must be at least 1")
    url = args.db
    if url is None:
        path = Path(tempfile.mkdtemp(prefix="tether-cost-")) / "sessions.sqlite"
        url = f"sqlite+aiosqlite:///{path}"  # the store creates (and migrates) it
    # the refused calls are logged as errors, with tracebacks; the summary says it all
    logging.disable(logging.CRITICAL)
    t0 = time.perf_counter()
    r = asyncio.run(fill(url, args.sessions, args.days, args.users, args.seed))
    r["db"] = url
    r["wall_s"] = round(time.perf_counter() - t0, 2)
    statuses = ", ".join(f"{v} {k}" for k, v in r["statuses"].items())
    print(f"stored {r['sessions']} sessions ({statuses}) in {r['wall_s']} s: {url}")
    print(f"next: tether cost --db {url}")
    if args.json:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
