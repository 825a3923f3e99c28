"""Chaos: retail sessions under injected faults, and what the runtime made of them.

Each session is the retail agent's usual errand on the generated demo shop
(authenticate Ava by email, look up her order, answer), driven by a scripted
model that answers from what the tools really returned: it states the order's
status only if the lookup succeeded, and apologises otherwise. The real
retail tools run on a real SQLite shop; models and tools fail on purpose
(``tether.testing.FaultyModel`` / ``faulty_tool``); waits run on a
``FakeClock``, so the whole run takes seconds.

Scenarios (``--sessions`` each, 1,000 by default):

- ``transient``: 30% of the primary model's calls fail (503, 529, 429 with
  Retry-After, timeouts, resets), a healthy fallback model. Expect every
  session to complete.
- ``critical``: the primary is down for good and the agent exposes a
  ``critical`` tool (cancelling an order). Expect every session to end with
  an explicit failure, and no action taken on the fallback model (it is never
  even asked).
- ``dead_tool``: the order lookup always fails; one session starts every
  virtual second. Expect the breaker to open and then let through at most one
  trial call per cool-down.

Across all of them, ``fabricated_answers`` counts final answers that state an
order status although the lookup failed in that session, and
``unacknowledged_events`` the runtime's own ``answer.unacknowledged_failure``
flags. Run::

    .venv/bin/python bench/chaos.py            # a table
    .venv/bin/python bench/chaos.py --json     # last line: one JSON object
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.retail.agent import open_shop
from examples.retail.generate import DEMO
from examples.retail.tools import TOOLS

from tether import Agent, BreakerPolicy, Runtime, Tool, TurnResult
from tether.spec.events import EventType
from tether.spec.model import ModelRequest
from tether.testing import (
    FakeClock,
    FaultyModel,
    FunctionModel,
    ScriptedResponse,
    call,
    faulty_tool,
)

BY_NAME = {t.name: t for t in TOOLS}
ORDER = DEMO["pending_order"]
TRANSIENT = ["503", "529", "429", "read_timeout", "connect_timeout", "reset", "502"]


def errand(*, cancel: bool = False) -> Any:
    """The scripted model: authenticate, look up (or cancel), answer from the results."""

    def script(request: ModelRequest) -> ScriptedResponse:
        last = request.messages[-1]
        if last.role == "user":
            return call("find_user_id_by_email", email=DEMO["email"])
        result = last.results[0]
        if result.is_error:
            return f"Sorry, I could not complete {result.name}: it failed. Please try again later."
        if result.name == "find_user_id_by_email":
            if cancel:
                return call("cancel_pending_order", order_id=ORDER, reason="no longer needed")
            return call("get_order_details", order_id=ORDER)
        if result.name == "get_order_details":
            status = json.loads(result.content)["status"]
            return f"Your order {ORDER} is {status}."
        return f"Your order {ORDER} is cancelled."

    return script


def critical(tool: Tool) -> Tool:
    return dataclasses.replace(tool, risk=dataclasses.replace(tool.risk, critical=True))


def fabricated(result: TurnResult) -> bool:
    """An answer that states a status although the lookup failed in this session."""
    failed = any(
        e.type == EventType.TOOL_FINISHED
        and e.data["is_error"]
        and e.data["name"] == "get_order_details"
        for e in result.events
    )
    return failed and bool(result.output) and " is pending" in (result.output or "")


async def transient(n: int, shop_path: Path, seed: int) -> dict[str, Any]:
    clock = FakeClock()
    primary = FaultyModel(
        FunctionModel(errand(), name="primary"), rate=0.3, kinds=TRANSIENT, seed=seed
    )
    backup = FunctionModel(errand(), name="backup")
    agent = Agent(
        name="retail",
        instructions="Help.",
        models=(primary, backup),
        tools=(BY_NAME["find_user_id_by_email"], BY_NAME["get_order_details"]),
        deps=lambda: open_shop(shop_path),
    )
    results = await _run(agent, n, clock)
    return {
        "complete": sum(r.ok and r.output is not None for r in results),
        "degraded": sum(_count(r, EventType.MODEL_FALLBACK) > 0 for r in results),
        "breaker_opened": sum(_count(r, EventType.BREAKER_OPENED) for r in results),
        "retries": sum(_count(r, EventType.MODEL_RETRY) for r in results),
        "injected": len(primary.injected),
        "results": results,
    }


async def critical_down(n: int, shop_path: Path, seed: int) -> dict[str, Any]:
    clock = FakeClock()
    primary = FaultyModel(
        FunctionModel(errand(cancel=True), name="primary"), rate=1.0, kinds=TRANSIENT, seed=seed
    )
    backup = FunctionModel(errand(cancel=True), name="backup")
    cancel = critical(BY_NAME["cancel_pending_order"])
    agent = Agent(
        name="retail",
        instructions="Help.",
        models=(primary, backup),
        tools=(BY_NAME["find_user_id_by_email"], cancel),
        deps=lambda: open_shop(shop_path),
    )
    results = await _run(agent, n, clock)
    actions = sum(
        1
        for r in results
        for e in r.events
        if e.type == EventType.TOOL_FINISHED and e.data["name"] == "cancel_pending_order"
    )
    return {
        "explicit_fail": sum(r.status == "failed" and bool(r.error) for r in results),
        "backup_calls": len(backup.requests),
        "actions_on_fallback": actions if backup.requests else 0,
        "results": results,
    }


async def dead_tool(n: int, shop_path: Path, seed: int) -> dict[str, Any]:
    clock = FakeClock()
    policy = BreakerPolicy()
    lookup = faulty_tool(BY_NAME["get_order_details"], rate=1.0, kind="raise", seed=seed)
    agent = Agent(
        name="retail",
        instructions="Help.",
        models=(FunctionModel(errand(), name="primary"),),
        tools=(BY_NAME["find_user_id_by_email"], lookup.tool),
        deps=lambda: open_shop(shop_path),
        breaker=policy,
    )
    start = clock()
    results = await _run(agent, n, clock)
    opened = next((i for i, r in enumerate(results) if _count(r, EventType.BREAKER_OPENED)), None)
    calls_at_open = 0 if opened is None else opened + 1  # one lookup per session until then
    opened_at = start + (opened if opened is not None else n)
    elapsed = clock() - opened_at
    return {
        "calls": lookup.calls,
        "calls_after_open": lookup.calls - calls_at_open,
        "cooldowns": int(elapsed // policy.cooldown),
        "results": results,
    }


async def _run(agent: Agent, n: int, clock: FakeClock) -> list[TurnResult]:
    """``n`` sessions, one starting every virtual second (so breakers see time pass)."""
    async with Runtime(clock=clock, sleep=clock.sleep, rng=random.Random(1)) as rt:
        out: list[TurnResult] = []
        for _ in range(n):
            out.append(await rt.run(agent, "What's the status of my order?"))
            clock.advance(1.0)
        return out


def _count(result: TurnResult, type_: str) -> int:
    return sum(1 for e in result.events if e.type == type_)


async def measure(n: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        shop_path = Path(tmp) / "shop.sqlite"
        open_shop(shop_path).close()
        t0 = time.perf_counter()
        tr = await transient(n, shop_path, seed)
        cr = await critical_down(n, shop_path, seed)
        dt = await dead_tool(n, shop_path, seed)
        wall = time.perf_counter() - t0
    everything = tr["results"] + cr["results"] + dt["results"]
    return {
        "sessions": n,
        "complete_rate_transient": round(tr["complete"] / n, 4),
        "transient_faults_injected": tr["injected"],
        "transient_retries": tr["retries"],
        "transient_degraded_sessions": tr["degraded"],
        "transient_breaker_openings": tr["breaker_opened"],
        "explicit_fail_rate_critical": round(cr["explicit_fail"] / n, 4),
        "critical_actions_on_fallback": cr["actions_on_fallback"],
        "fallback_calls_critical": cr["backup_calls"],
        "dead_tool_calls": dt["calls"],
        "dead_tool_calls_after_open": dt["calls_after_open"],
        "cooldowns": dt["cooldowns"],
        "fabricated_answers": sum(fabricated(r) for r in everything),
        "unacknowledged_events": sum(
            _count(r, EventType.UNACKNOWLEDGED_FAILURE) for r in everything
        ),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000, help="sessions per scenario")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    # The runtime logs every injected failure (errors with tracebacks); the table says it all.
    logging.disable(logging.CRITICAL)
    r = asyncio.run(measure(args.sessions, args.seed))
    rows = [
        ("transient: sessions completed", f"{r['complete_rate_transient']:.1%}", "100%"),
        (
            "  faults injected / retries",
            f"{r['transient_faults_injected']} / {r['transient_retries']}",
            "",
        ),
        ("  sessions answered by the fallback", str(r["transient_degraded_sessions"]), ""),
        ("  primary breaker openings", str(r["transient_breaker_openings"]), ""),
        ("critical: explicit failures", f"{r['explicit_fail_rate_critical']:.1%}", "100%"),
        ("  actions on the fallback model", str(r["critical_actions_on_fallback"]), "0"),
        (
            "dead tool: calls after the breaker opened",
            str(r["dead_tool_calls_after_open"]),
            f"<= {r['cooldowns']} (one per cool-down)",
        ),
        ("all: answers claiming a failed lookup's result", str(r["fabricated_answers"]), "0"),
    ]
    print(f"{r['sessions']} sessions per scenario, {r['wall_s']} s wall")
    for what, got, want in rows:
        print(f"{what:<48} {got:>12}   {want}")
    if args.json:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
