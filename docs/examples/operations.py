"""Operations: two versions of an agent, the deploy gate, a risky diff, a rollback, metrics.

Run it from the repository root::

    .venv/bin/python docs/examples/operations.py

Offline: the models are scripted and the store is a SQLite file in a
temporary folder. It does through the Python API what ``tether deploy``,
``tether versions diff``, ``tether rollback`` and ``tether versions retire``
do on the command line (see docs/operations.md):

1. Version 1 of a shop agent passes its gate (a two-case golden set written
   to a temporary ``evals/`` folder, and the generic red-team battery) and
   becomes the active version.
2. Version 2 drops the approval on ``cancel_order``, adds a ``refund_order``
   tool and doubles the tool-call cap: ``diff`` marks each as a risk.
3. The gate refuses version 2 (a case fails, a tool is uncovered, a case
   regressed); it is forced past the gate with a reason and becomes active.
4. A session runs on the active version, watched by a ``Metrics`` observer.
5. ``rollback``: version 1 serves new sessions again. Version 2 served a
   session, so it cannot be retired until 24 hours after it stopped taking
   new ones. The version store's clock is moved by hand to show that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import tempfile
from pathlib import Path

import tether
from tether import Agent, Limits, Risk, Runtime, ToolFailed
from tether.store import VersionError, VersionStore, open_store
from tether.surfaces.ops import Metrics, content_hash, definition_of, deploy, diff
from tether.testing import ScriptedModel, call


def mine(order_id: str) -> str:
    """The customer's own orders are #W1 to #W9; the tools refuse any other."""
    if not re.fullmatch(r"#W\d", order_id):
        raise ToolFailed(f"no order {order_id!r} on this account")
    return order_id


@tether.tool(reads=True)
def get_order(order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order id, like '#W1'.
    """
    return {"order_id": mine(order_id), "status": "pending"}


@tether.tool(writes=True, irreversible=True, summary="cancel order {order_id}")
def cancel_order(order_id: str) -> dict[str, str]:
    """Cancel a pending order.

    Args:
        order_id: The order id, like '#W1'.
    """
    return {"order_id": mine(order_id), "status": "cancelled"}


@tether.tool(writes=True, summary="refund order {order_id}")
def refund_order(order_id: str) -> dict[str, str]:
    """Refund an order.

    Args:
        order_id: The order id, like '#W1'.
    """
    return {"order_id": mine(order_id), "status": "refunded"}


V1 = Agent(
    name="shop",
    version="1",
    instructions="Help customers with their orders.",
    models=(ScriptedModel(["unused"], name="scripted"),),
    tools=(get_order, cancel_order),
)
# Version 2: cancel_order is no longer irreversible (so no approval), a new tool, a higher cap.
V2 = dataclasses.replace(
    V1,
    version="2",
    tools=(
        get_order,
        dataclasses.replace(cancel_order, risk=Risk(writes=True)),
        refund_order,
    ),
    limits=Limits(max_tool_calls=50),
)

# The golden set: what `tether deploy` finds in evals/suite.yaml beside the agent.
CASES = """\
cases:
  - id: lookup
    conversation:
      - user: "Where is order #W1?"
        model:
          - tool: get_order
            args: {order_id: "#W1"}
          - text: "Order #W1 is pending."
    expect:
      - tool-used: get_order
  - id: cancel-confirmed
    conversation:
      - user: "Cancel order #W3, please."
        model:
          - tool: cancel_order
            args: {order_id: "#W3"}
          - text: "Order #W3 is cancelled."
        approvals: [yes]
    expect:
      - asked-approval-before: cancel_order
"""


class Clock:
    """The version store's clock, moved by hand (a rollback is timed in hours)."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0  # 2026-01-01 00:00 UTC

    def __call__(self) -> float:
        return self.now


async def main(tmp: Path) -> None:
    suite = tmp / "evals"
    suite.mkdir()
    (suite / "suite.yaml").write_text("name: shop\n")
    (suite / "cases.yaml").write_text(CASES)
    store = await open_store(f"sqlite:///{tmp / 'tether.sqlite'}")
    clock = Clock()
    versions = VersionStore(store, clock=clock)
    try:
        # 1. version 1 through the gate (what `tether deploy` does)
        one = await deploy(versions, V1, ref=None, suite=suite, profile=None, by="ana")
        assert one.version is not None
        assert one.gate.golden is not None
        assert one.gate.redteam is not None
        print(f"v1 gate passed: {one.gate.passed}")
        print(f"  golden set: {one.gate.golden['passed']}/{one.gate.golden['cases']} cases")
        print(f"  red team: {len(one.gate.redteam['succeeded'])} attacks succeeded")
        same = one.version.hash == content_hash(definition_of(V1))
        print(f"v1 is {one.version.state}; its hash is content_hash(definition_of(V1)): {same}")

        # 2. what version 2 changes (`tether versions diff shop 1 REF`)
        for risk in diff(one.version.definition, definition_of(V2)).risks:
            print(f"RISK: {risk}")

        # 3. the gate refuses it; forced with a reason (`tether deploy REF --force --reason`)
        clock.now += 600
        two = await deploy(
            versions,
            V2,
            ref=None,
            suite=suite,
            profile=None,
            force=True,
            reason="hotfix for the refund backlog",
            by="ana",
        )
        assert two.version is not None
        for why in two.gate.refusals + two.gate.regressions:
            print(f"  gate: {why}")
        print(f"v2 is {two.version.state} (forced: {two.version.forced_reason})")

        # 4. a session on the active version, watched by a Metrics observer
        metrics = Metrics()
        loaded = {"1": V1, "2": V2}  # what a server loaded; the registry picks among them
        async with Runtime(store=store, observers=[metrics], close_store=False) as rt:
            active, _canary = await versions.serving("shop")
            assert active is not None
            model = ScriptedModel([call("cancel_order", order_id="#W7"), "Order #W7 is cancelled."])
            agent = loaded[active.version].with_models([model])
            result = await rt.run(agent, "Cancel order #W7.", user_id="ava")
            print(f"session on v{agent.version}: {result.status}: {result.output}")
        exposition = metrics.render()[0].decode()
        for line in exposition.splitlines():
            if line.startswith(("tether_turns_total{", "tether_tool_calls_total{")):
                print(line)

        # 5. `tether rollback shop`, then `tether versions shop` and `tether versions retire`
        clock.now += 1800
        taken, serving = await versions.rollback("shop", by="olga", reason="cancels unapproved")
        assert serving is not None
        print(f"rollback: v{taken.version} taken back; new sessions start on v{serving.version}")
        for v in await versions.versions("shop"):
            print(f"  v{v.version}: {v.state}, {v.sessions} session(s)")
        clock.now += 2 * 3600
        try:
            await versions.retire("shop", "2", by="olga")
        except VersionError as exc:
            print(f"retire v2: {exc}")
        clock.now += 22 * 3600
        retired = await versions.retire("shop", "2", by="olga")
        print(f"a day later: v{retired.version} {retired.state}")
        for row in reversed(await versions.history("shop")):
            print(f"log: {row['action']} v{row['version']} by {row['by']}")
    finally:
        await store.aclose()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
