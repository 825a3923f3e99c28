"""Evals: a tiny golden set for a small agent, run through the Python API.

Run it from the repository root::

    .venv/bin/python docs/examples/evals_quickstart.py

It writes three cases to a temporary folder, loads them with ``load_suite``,
runs them against the agent (each on a fresh copy of its world) with
``run_cases``, and reports with ``EvalReport``: what ``tether eval`` does.
The cases are *scripted*: the model's answers are in the case file, so no
key, no network, and every run prints the same lines. The third case fails
on purpose, to show what a failure says: its script has the model claim a
cancellation the user had declined.
"""

from __future__ import annotations

import asyncio
import copy
import tempfile
from pathlib import Path
from typing import Any

import tether
from tether import Agent, ToolContext
from tether.surfaces.evals import Case, EvalReport, Target, load_suite, run_cases

CASES = """\
defaults:
  tags: [quickstart]
cases:
  - id: order-status
    conversation:
      - user: "Where is order #W1?"
        model:
          - tool: get_order
            args: {order_id: "#W1"}
          - text: "Order #W1 has shipped."
    expect:
      - tool-used: get_order
      - no-writes: true
      - final-format: {regex: shipped}

  - id: cancel-confirmed
    tags: [writes]
    conversation:
      - user: "Cancel order #W2, please."
        model:
          - tool: cancel_order
            args: {order_id: "#W2"}
          - text: "Order #W2 is cancelled."
        approvals: [yes]
    expect:
      - asked-approval-before: cancel_order
      - db-state:
          patch: {orders: {"#W2": {status: cancelled}}}

  - id: cancel-declined
    tags: [writes, edge]
    conversation:
      - user: "Cancel order #W2."
        model:
          - tool: cancel_order
            args: {order_id: "#W2"}
          - text: "Order #W2 is cancelled."   # wrong: the user said no
        approvals: [no]
    expect:
      - db-state: unchanged
      - final-format: {regex: not cancelled}
"""


class Orders:
    """The agent's world for one case: its tools read and change it; evals snapshot it."""

    def __init__(self, case: Case) -> None:
        self.orders = {"#W1": {"status": "shipped"}, "#W2": {"status": "pending"}}

    def deps(self) -> Orders:
        return self

    def snapshot(self) -> dict[str, Any]:
        return {"orders": copy.deepcopy(self.orders)}

    def close(self) -> None:
        pass


@tether.tool(reads=True)
def get_order(ctx: ToolContext, order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order id, like '#W1'.
    """
    return {"order_id": order_id, **ctx.deps.orders[order_id]}


@tether.tool(irreversible=True, summary="cancel order {order_id}")
def cancel_order(ctx: ToolContext, order_id: str) -> str:
    """Cancel a pending order. It cannot be undone.

    Args:
        order_id: The order id, like '#W1'.
    """
    ctx.deps.orders[order_id]["status"] = "cancelled"
    return f"order {order_id} is cancelled"


agent = Agent(
    name="orders",
    instructions="You help customers with their orders.",
    # never called here: scripted cases bring their own answers
    models=("anthropic:claude-haiku-4-5",),
    tools=(get_order, cancel_order),
)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.yaml"
        path.write_text(CASES, encoding="utf-8")
        suite = load_suite(path)
        results = await run_cases(suite.cases, Target(agent=agent, environment=Orders))
        for r in results:
            print(f"case {r.case.id}: {'passed' if r.passed else 'failed'}")
            for c in r.failures:
                print(f"  {c.name}: {c.message}")

        report = EvalReport(suite.name, results, agent="docs/examples/evals_quickstart.py")
        s = report.summary()
        print(f"pass rate: {s['pass_rate']:.0%} ({s['passed']} of {s['cases']})")
        for name, q in s["questions"].items():
            print(f"{name}: {q['passed']}/{q['total']} {q['counts']}")

        report.write_html(Path(tmp) / "report.html")
        report.write_junit(Path(tmp) / "junit.xml")
        # a later run compared with this one (what --baseline does): a case went missing
        baseline = report.to_dict()  # what --report baseline.json writes
        later = [r for r in results if r.case.id != "cancel-confirmed"]
        for regression in EvalReport(suite.name, later).compare(baseline):
            print(f"regression: {regression.message}")


if __name__ == "__main__":
    asyncio.run(main())
