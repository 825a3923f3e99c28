"""Resume: a turn fails when the model provider goes down; another runtime resumes it.

Run it from the repository root::

    .venv/bin/python docs/examples/resume.py

The first runtime's model answers one tool call, then fails with a 529
(``ProviderError``) on every attempt: the runtime retries it (three times,
here 10 ms apart instead of the default 1 s, 2 s, 4 s) and then gives up. The
turn ends with status ``failed``; everything up to the failure, the retries
included, is committed to a SQLite file. A second runtime (in a real
deployment, another process or host) opens the same store and calls
``Runtime.resume``: the stored tool result is reused, not run again.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import tether
from tether import Agent, ProviderError, RetryPolicy, Runtime, ToolContext
from tether.testing import ScriptedModel, call


class Warehouse:
    """Counts real lookups, to show the resumed turn does not repeat them."""

    def __init__(self) -> None:
        self.lookups = 0


WAREHOUSE = Warehouse()


@tether.tool(reads=True)
def stock_level(ctx: ToolContext, sku: str) -> dict[str, object]:
    """How many units of a product are in stock.

    Args:
        sku: The product's stock-keeping unit, like 'LAMP-01'.
    """
    ctx.deps.lookups += 1
    return {"sku": sku, "in_stock": 7}


def build_agent(model: ScriptedModel) -> Agent:
    return Agent(
        name="stock",
        instructions="Answer stock questions.",
        models=(model,),
        tools=(stock_level,),
        deps=lambda: WAREHOUSE,
        retry=RetryPolicy(initial_delay=0.01),
    )


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'sessions.sqlite'}"

        # Process A: the provider goes down after the first step, and stays down.
        overloaded = ProviderError("overloaded", provider="demo", status=529, retryable=True)
        down = ScriptedModel([call("stock_level", sku="LAMP-01"), *[overloaded] * 4])
        async with Runtime(store=await tether.open_store(url)) as rt:
            failed = await rt.run(build_agent(down), "Do you have LAMP-01 in stock?")
        print(f"first run: status={failed.status} error={failed.error}")

        # Process B: same store, a healthy model; resume from the last committed step.
        up = ScriptedModel(["Yes: 7 units of LAMP-01 are in stock."])
        async with Runtime(store=await tether.open_store(url)) as rt:
            resumed = await rt.resume(build_agent(up), failed.session_id)
            stored = await rt.store.events(failed.session_id)
        print(f"resumed: status={resumed.status} output={resumed.output}")
        print(f"stock lookups run: {WAREHOUSE.lookups}")
        print("stored log: " + " ".join(e.type for e in stored))


if __name__ == "__main__":
    asyncio.run(main())
