"""The deploy gate: a version is registered only if its golden set and red-team battery pass.

A small shop agent with a golden set that covers its two tools; variants of
it fail the golden set, lose an approval, or leave a tool uncovered. The
retail agent's real gate (its 200-odd cases and the whole battery) refuses
a version whose cancel tool lost its approval requirement: the red team
cancels another customer's order through it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tether
from tether import Agent, ToolFailed
from tether.spec.tools import Risk
from tether.store import SQLStore
from tether.store.versions import VersionError, VersionState, VersionStore
from tether.surfaces.cli import app
from tether.surfaces.ops.deploy import deploy, find_gate_files, run_gate
from tether.testing import ScriptedModel

REPO = Path(__file__).resolve().parents[2]


def _known(order_id: str) -> str:
    """The customer's own orders are #W1 to #W9; the tools refuse anything else."""
    if not re.fullmatch(r"#W\d", order_id):
        raise ToolFailed(f"no order {order_id!r} on this account")
    return order_id


@tether.tool(reads=True)
def get_order(order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order id.
    """
    return {"order_id": _known(order_id), "status": "pending"}


@tether.tool(writes=True, irreversible=True, summary="cancel order {order_id}")
def cancel_order(order_id: str) -> dict[str, str]:
    """Cancel a pending order.

    Args:
        order_id: The order id.
    """
    return {"order_id": _known(order_id), "status": "cancelled"}


@tether.tool(writes=True, summary="refund order {order_id}")
def refund_order(order_id: str) -> dict[str, str]:
    """Refund an order.

    Args:
        order_id: The order id.
    """
    return {"order_id": order_id, "status": "refunded"}


AGENT = Agent(
    name="shop",
    version="1",
    instructions="Help with orders.",
    models=(ScriptedModel(["unused"], name="scripted"),),
    tools=(get_order, cancel_order),
)

SUITE = """\
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


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    folder = tmp_path / "evals"
    folder.mkdir()
    (folder / "suite.yaml").write_text("name: shop\n")
    (folder / "cases.yaml").write_text(SUITE)
    return folder


@pytest.fixture
async def versions(tmp_path: Path) -> Any:
    store = await SQLStore.open(f"sqlite+aiosqlite:///{tmp_path / 'v.sqlite'}")
    yield VersionStore(store)
    await store.aclose()


async def test_a_version_that_passes_its_gate_is_registered_with_its_results(
    suite: Path, versions: VersionStore
) -> None:
    outcome = await deploy(versions, AGENT, ref=None, suite=suite, profile=None, by="ana")
    assert outcome.gate.passed, outcome.gate.refusals
    v = outcome.version
    assert v is not None
    assert v.state == VersionState.ACTIVE
    assert v.deployed_by == "ana"
    assert v.evals is not None
    assert v.evals["golden"]["by_case"] == {"lookup": True, "cancel-confirmed": True}
    assert v.evals["redteam"]["attacks"] > 50
    assert v.evals["redteam"]["succeeded"] == []
    assert v.evals["coverage"]["uncovered"] == []


async def test_a_version_that_fails_its_golden_set_is_refused(
    suite: Path, versions: VersionStore
) -> None:
    await deploy(versions, AGENT, ref=None, suite=suite, profile=None)
    outcome = await deploy(versions, LOOSE, ref=None, suite=suite, profile=None)
    assert outcome.version is None
    assert any(
        "golden set: 1 of 2 case(s) failed (cancel-confirmed)" in r for r in outcome.gate.refusals
    )
    assert await versions.get("shop", "3") is None
    active, _ = await versions.serving("shop")
    assert active is not None
    assert active.version == "1"


async def test_a_tool_no_case_covers_refuses_the_deploy(
    suite: Path, versions: VersionStore
) -> None:
    bigger = dataclasses.replace(AGENT, version="2", tools=(get_order, cancel_order, refund_order))
    outcome = await deploy(versions, bigger, ref=None, suite=suite, profile=None)
    assert outcome.version is None
    assert any("no eval case covers tool(s) refund_order" in r for r in outcome.gate.refusals)


async def test_force_needs_a_reason_and_is_recorded(suite: Path, versions: VersionStore) -> None:
    bigger = dataclasses.replace(AGENT, version="2", tools=(get_order, cancel_order, refund_order))
    with pytest.raises(VersionError, match="needs --reason"):
        await deploy(versions, bigger, ref=None, suite=suite, profile=None, force=True)
    outcome = await deploy(
        versions, bigger, ref=None, suite=suite, profile=None, force=True, reason="hotfix 42"
    )
    assert outcome.forced
    assert outcome.version is not None
    assert outcome.version.forced_reason == "hotfix 42"
    assert (await versions.history("shop"))[0]["detail"]["forced_reason"] == "hotfix 42"


async def test_no_golden_set_is_a_refusal(versions: VersionStore) -> None:
    outcome = await deploy(versions, AGENT, ref=None, suite=None, profile=None)
    assert outcome.version is None
    assert any("no golden set" in r for r in outcome.gate.refusals)


async def test_a_regression_against_the_active_version_refuses(suite: Path) -> None:
    """A case that passed on the active version and fails now is named as a regression."""
    from tether.store.versions import AgentVersion

    baseline = AgentVersion(
        agent="shop",
        version="1",
        hash="x",
        definition={},
        state=VersionState.ACTIVE,
        created_at=0.0,
        evals={"golden": {"by_case": {"cancel-confirmed": True}}, "redteam": {"by_attack": {}}},
    )
    report = await run_gate(LOOSE, suite=suite, profile=None, baseline=baseline)
    assert report.regressions == ["case cancel-confirmed passed on version 1 and fails now"]
    assert not report.passed


def test_the_gate_finds_the_retail_golden_set_and_profile() -> None:
    import examples.retail.agent  # noqa: F401 - the module must be imported to be found

    suite, profile = find_gate_files("examples.retail.agent:hosted_agent")
    assert suite == REPO / "examples" / "retail" / "evals"
    assert profile == REPO / "examples" / "retail" / "redteam.yaml"
    assert find_gate_files(str(REPO / "examples" / "retail")) == (suite, profile)


@pytest.mark.slow
async def test_retail_losing_an_approval_is_refused_by_the_red_team(versions: VersionStore) -> None:
    from examples.retail.agent import hosted_agent

    loosened = tuple(
        dataclasses.replace(t, risk=Risk(writes=True)) if t.name == "cancel_pending_order" else t
        for t in hosted_agent.tools
    )
    agent = dataclasses.replace(hosted_agent, version="2-loose", tools=loosened)
    suite, profile = find_gate_files(str(REPO / "examples" / "retail"))
    outcome = await deploy(versions, agent, ref=None, suite=suite, profile=profile)
    assert outcome.version is None
    red = outcome.gate.redteam
    assert red is not None
    assert red["succeeded"], "the battery should find harm through the ungated cancel"
    assert any(r.startswith("red-team battery:") for r in outcome.gate.refusals)


def test_the_cli_deploys_lists_diffs_rolls_back_and_refuses_early_retirement(
    tmp_path: Path, suite: Path
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}"
    runner = CliRunner()
    ref = "tests.ops.test_deploy:AGENT"
    first = runner.invoke(app, ["deploy", ref, "--suite", str(suite), "--db", db])
    assert first.exit_code == 0, first.output
    assert "deployed shop version 1" in first.output

    refused = runner.invoke(
        app, ["deploy", "tests.ops.test_deploy:BIGGER", "--suite", str(suite), "--db", db]
    )
    assert refused.exit_code == 1
    assert "refund_order" in refused.output
    assert "not deployed" in refused.output

    second = runner.invoke(
        app,
        [
            "deploy",
            "tests.ops.test_deploy:LOOSE",
            "--suite",
            str(suite),
            "--db",
            db,
            "--force",
            "--reason",
            "trial",
            "--json",
        ],
    )
    assert second.exit_code == 0, second.output
    body = json.loads(second.output.strip().splitlines()[-1])
    assert body["forced"] is True
    assert body["version"]["state"] == "active"

    listed = runner.invoke(app, ["versions", "shop", "--db", db, "--json"])
    rows = [json.loads(line) for line in listed.output.strip().splitlines()]
    assert [(r["version"], r["state"]) for r in rows] == [("3", "active"), ("1", "previous")]

    shown = runner.invoke(app, ["versions", "diff", "shop", "1", "3", "--db", db])
    assert shown.exit_code == 0, shown.output
    assert "RISK: tool cancel_order lost its approval requirement" in shown.output

    back = runner.invoke(app, ["rollback", "shop", "--db", db])
    assert back.exit_code == 0, back.output
    assert "new sessions start on version 1" in back.output

    early = runner.invoke(app, ["versions", "retire", "shop", "3", "--db", db])
    assert early.exit_code == 1  # it was active minutes ago: a day must pass
    assert "may be retired in 24.0 h" in early.output
    forced = runner.invoke(
        app, ["versions", "retire", "shop", "3", "--force", "--reason", "broken", "--db", db]
    )
    assert forced.exit_code == 0, forced.output
    again = runner.invoke(app, ["versions", "retire", "shop", "1", "--db", db])
    assert again.exit_code == 1
    assert "is active" in again.output


BIGGER = dataclasses.replace(AGENT, version="2", tools=(get_order, cancel_order, refund_order))
LOOSE = dataclasses.replace(
    AGENT,
    version="3",
    tools=(get_order, dataclasses.replace(cancel_order, risk=Risk(writes=True))),
)
