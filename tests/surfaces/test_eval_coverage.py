"""Tool coverage (``tether eval --coverage``): which cases call, fail and approve each tool.

A small shop agent with three tools: ``get_order`` (a read the golden set
also breaks on purpose), ``cancel_order`` (irreversible: it stops for
approval) and ``refund_order`` (no case touches it). Its golden set runs on
scripted models; the coverage is computed from the real run, from the case
definitions alone, and printed by the command. The retail golden set's
coverage is pinned too.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from examples.retail.evals import harness
from typer.testing import CliRunner

import tether
from tether import Agent, Model
from tether.surfaces.cli import app
from tether.surfaces.cli.evals import EXIT_UNCOVERED, _print_coverage
from tether.surfaces.cli.render import SafeConsole
from tether.surfaces.evals import (
    Case,
    Coverage,
    EvalReport,
    Target,
    ToolCoverage,
    agent_tools,
    coverage_of,
    coverage_of_cases,
    load_suite,
    run_cases,
)
from tether.testing import ScriptedModel

REPO = Path(__file__).resolve().parents[2]
RETAIL = REPO / "examples" / "retail" / "evals"
AGENT_REF = "tests.surfaces.test_eval_coverage:AGENT"

#: the retail tools no case of the golden set calls (see the last tests): none, since the
#: deploy gate refuses a version with an uncovered tool
RETAIL_GAPS: tuple[str, ...] = ()


@tether.tool(reads=True)
def get_order(order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order id.
    """
    return {"order_id": order_id, "status": "pending"}


@tether.tool(writes=True, irreversible=True, summary="cancel order {order_id}")
def cancel_order(order_id: str) -> dict[str, str]:
    """Cancel a pending order.

    Args:
        order_id: The order id.
    """
    return {"order_id": order_id, "status": "cancelled"}


@tether.tool(writes=True, summary="refund order {order_id}")
def refund_order(order_id: str) -> dict[str, str]:
    """Refund an order.

    Args:
        order_id: The order id.
    """
    return {"order_id": order_id, "status": "refunded"}


AGENT = Agent(
    name="shop",
    instructions="Help with orders.",
    models=(ScriptedModel(["unused"], name="scripted"),),
    tools=(get_order, cancel_order, refund_order),
)

SUITE = """\
cases:
  - id: lookup-ok
    conversation:
      - user: "Where is order #W1?"
        model:
          - tool: get_order
            args: {order_id: "#W1"}
          - text: "Order #W1 is pending."
    expect:
      - tool-used: get_order
  - id: lookup-down
    tags: [failing-tool, edge]
    tools:
      get_order: {error: "the order service is down"}
    conversation:
      - user: "Where is order #W2?"
        model:
          - tool: get_order
            args: {order_id: "#W2"}
          - text: "I could not look up order #W2: the order service is down. Please try later."
    expect:
      - acknowledged-failure: true
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

#: a case whose agent stops for an approval it does not expect, and one that
#: expects a call the agent never makes (it fails: it still says what it is for)
DRIFT = """\
cases:
  - id: cancel-unexpected-approval
    conversation:
      - user: "Cancel order #W4."
        model:
          - tool: cancel_order
            args: {order_id: "#W4"}
          - text: "Order #W4 is cancelled."
        approvals: [yes]
  - id: refund-never-called
    conversation:
      - user: "Refund order #W5."
        model:
          - text: "Let me check."
    expect:
      - tool-used: refund_order
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def flat(text: str) -> str:
    """Text without any whitespace: robust to where a console wrapped a line."""
    return "".join(text.split())


def table_rows(text: str) -> dict[str, list[str]]:
    """The coverage table's rows by tool: each cell's lines joined (no whitespace)."""
    rows: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        cells = line.split("│")[1:-1]
        if len(cells) != 5:
            continue
        if cells[0].strip():
            current = [""] * 5
            rows[flat(cells[0])] = current
        for n, cell in enumerate(cells):
            current[n] += flat(cell)
    return rows


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(SUITE, encoding="utf-8")
    return path


def run(path: Path) -> EvalReport:
    suite = load_suite(path)
    results = asyncio.run(run_cases(suite.cases, Target(agent=AGENT)))
    return EvalReport(suite.name, results)


# -- the rows ------------------------------------------------------------------------


def test_a_run_gives_each_tool_the_cases_that_call_fail_and_approve_it(suite_file: Path) -> None:
    report = run(suite_file)
    assert report.failed == 0, [(r.case.id, r.failures) for r in report.results]
    coverage = coverage_of(AGENT, report)
    assert coverage.from_run
    assert coverage.cases == ("lookup-ok", "lookup-down", "cancel-confirmed")
    assert [r.tool for r in coverage.tools] == ["get_order", "cancel_order", "refund_order"]
    assert coverage.row("get_order") == ToolCoverage(
        "get_order",
        calls=("lookup-ok", "lookup-down"),
        expected=("lookup-ok", "lookup-down"),
        called=("lookup-ok", "lookup-down"),
        failures=("lookup-down",),
    )
    assert coverage.row("cancel_order") == ToolCoverage(
        "cancel_order",
        calls=("cancel-confirmed",),
        expected=("cancel-confirmed",),
        called=("cancel-confirmed",),
        approvals=("cancel-confirmed",),
    )
    assert coverage.row("refund_order") == ToolCoverage("refund_order")
    assert not coverage.row("refund_order").covered
    assert coverage.uncovered == ("refund_order",)
    # the results alone (what run_cases returns) give the same
    assert coverage_of(AGENT, report.results) == coverage
    problem = coverage.problem()
    assert problem is not None
    assert "1 of 3 tool(s) no eval case covers: refund_order" in problem


def test_the_run_and_the_definitions_each_add_what_the_other_misses(tmp_path: Path) -> None:
    path = tmp_path / "drift.yaml"
    path.write_text(DRIFT, encoding="utf-8")
    report = run(path)
    # the first stopped for an approval nobody expected; the second never called refund_order
    assert [r.case.id for r in report.results if not r.passed] == ["refund-never-called"]
    coverage = coverage_of(AGENT, report)
    cancel, refund = coverage.row("cancel_order"), coverage.row("refund_order")
    assert cancel.approvals == ("cancel-unexpected-approval",)  # from the run only
    assert refund.expected == ("refund-never-called",)  # from the definition only
    assert refund.called == ()
    assert refund.covered  # a case is meant to cover it; that it fails is the eval's verdict
    assert coverage.uncovered == ("get_order",)


def test_the_definitions_alone_give_coverage_without_running(suite_file: Path) -> None:
    cases = load_suite(suite_file).cases
    coverage = coverage_of_cases(AGENT, cases)
    assert not coverage.from_run
    assert coverage.uncovered == ("refund_order",)
    get, cancel = coverage.row("get_order"), coverage.row("cancel_order")
    assert get.calls == get.expected == ("lookup-ok", "lookup-down")
    assert get.called == ()
    assert get.failures == ("lookup-down",)  # the case injects an error into it
    assert cancel.approvals == ("cancel-confirmed",)
    # tools may be given as tools or names; a name no case mentions is uncovered
    by_name = coverage_of_cases(["get_order", "cancel_order", "refund_order", "x"], cases)
    assert by_name.uncovered == ("refund_order", "x")
    assert coverage_of_cases(AGENT.tools, cases) == coverage


def test_not_tool_used_covers_nothing() -> None:
    case = Case.model_validate(
        {
            "id": "no-refund",
            "conversation": [{"user": "hi", "model": [{"text": "Hello."}]}],
            "expect": [{"not-tool-used": "refund_order"}],
        }
    )
    everything = ("get_order", "cancel_order", "refund_order")
    assert coverage_of_cases(AGENT, [case]).uncovered == everything


def test_to_dict_is_json(suite_file: Path) -> None:
    data = coverage_of(AGENT, run(suite_file)).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["uncovered"] == ["refund_order"]
    assert (data["covered"], data["cases"], data["from_run"]) == (2, 3, True)
    (row,) = (r for r in data["tools"] if r["tool"] == "get_order")
    assert row == {
        "tool": "get_order",
        "covered": True,
        "calls": ["lookup-ok", "lookup-down"],
        "expected": ["lookup-ok", "lookup-down"],
        "called": ["lookup-ok", "lookup-down"],
        "failures": ["lookup-down"],
        "approvals": [],
    }


def test_a_factory_agent_has_the_tools_of_every_agent_it_builds() -> None:
    seen: list[Any] = []

    def factory(case: Case, models: Sequence[str | Model] | None) -> Agent:
        seen.append((case.id, models))
        tools = (get_order, refund_order) if case.mode == "live" else (get_order, cancel_order)
        return Agent(name="shop", instructions="x", models=AGENT.models, tools=tools)

    cases = [
        Case.model_validate(
            {"id": "a", "conversation": [{"user": "hi", "model": [{"text": "x"}]}]}
        ),
        Case.model_validate({"id": "b", "mode": "live", "conversation": [{"user": "hi"}]}),
    ]
    tools = agent_tools(factory, cases, models=["local"])
    assert [t.name for t in tools] == ["get_order", "cancel_order", "refund_order"]
    assert seen == [("a", None), ("b", ["local"])]  # live cases get the live chain
    assert agent_tools(AGENT, cases) == AGENT.tools


def test_a_row_for_a_tool_the_agent_lacks_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no tool 'nope'"):
        Coverage(()).row("nope")


# -- the command ---------------------------------------------------------------------


def test_eval_coverage_prints_the_table_and_the_uncovered_tools(suite_file: Path) -> None:
    code, out, _ = invoke("eval", str(suite_file), "--agent", AGENT_REF)
    assert code == 0
    assert "Tool coverage" not in out  # only when asked
    code, out, _ = invoke("eval", str(suite_file), "--agent", AGENT_REF, "--coverage")
    assert code == 0  # --coverage alone does not change the exit status
    assert "Tool coverage: 2/3 tools covered" in out
    assert "uncoveredtools:refund_order" in flat(out)
    rows = table_rows(out)
    assert rows["get_order"] == [
        "get_order", "2:lookup-ok,lookup-down", "1:lookup-down", "-", "yes"
    ]  # fmt: skip
    assert rows["cancel_order"] == [
        "cancel_order", "1:cancel-confirmed", "-", "1:cancel-confirmed", "yes"
    ]  # fmt: skip
    assert rows["refund_order"] == ["refund_order", "-", "-", "-", "no"]


def test_require_coverage_exits_3_when_a_tool_is_uncovered(suite_file: Path) -> None:
    code, out, _ = invoke("eval", str(suite_file), "--agent", AGENT_REF, "--require-coverage")
    assert code == EXIT_UNCOVERED == 3
    assert "uncoveredtools:refund_order" in flat(out)
    code, out, _ = invoke(
        "eval", str(suite_file), "--agent", AGENT_REF, "--require-coverage", "--case", "lookup-ok"
    )
    assert code == 3  # coverage is over the cases that ran
    assert "uncoveredtools:cancel_order,refund_order" in flat(out)


def test_a_failed_case_exits_1_before_coverage_does(tmp_path: Path) -> None:
    path = tmp_path / "drift.yaml"
    path.write_text(DRIFT, encoding="utf-8")
    code, out, _ = invoke("eval", str(path), "--agent", AGENT_REF, "--require-coverage")
    assert code == 1
    assert "FAILED refund-never-called" in out
    assert "uncoveredtools:get_order" in flat(out)


def test_eval_coverage_json_has_the_coverage(suite_file: Path) -> None:
    code, out, err = invoke("eval", str(suite_file), "--agent", AGENT_REF, "--coverage", "--json")
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert len(out.strip().splitlines()) == 1  # the tables went to stderr
    assert "Tool coverage" in err
    assert summary["coverage"]["uncovered"] == ["refund_order"]
    assert [r["tool"] for r in summary["coverage"]["tools"]] == [
        "get_order",
        "cancel_order",
        "refund_order",
    ]
    code, out, _ = invoke("eval", str(suite_file), "--agent", AGENT_REF, "--json")
    assert "coverage" not in json.loads(out.strip().splitlines()[-1])


def test_the_table_shows_hidden_characters_instead_of_obeying_them() -> None:
    evil = "get\x1b]0;owned\x07_order\u202e"
    buf = io.StringIO()
    console = SafeConsole(file=buf, width=200, force_terminal=False)
    many = [
        Case.model_validate(
            {
                "id": f"case-{n}",
                "conversation": [{"user": "hi", "model": [{"tool": evil}, {"text": "ok"}]}],
            }
        )
        for n in range(5)
    ]
    _print_coverage(console, coverage_of_cases([evil, "[bold]x[/bold]"], many))
    shown = buf.getvalue()
    for hidden in ("\x1b", "\x07", "\u202e"):
        assert hidden not in shown
    assert "get\\x1b]0;owned\\x07_order\\u202e" in shown
    assert "uncovered tools: [bold]x[/bold]" in shown  # markup prints as itself
    assert "5: case-0, case-1, case-2, +2 more" in shown  # many ids: the first few


# -- the retail golden set -----------------------------------------------------------


def test_the_retail_golden_set_covers_every_tool() -> None:
    """Every retail tool has a case (pinned: a tool losing its cases shows here); the
    help center, the payment change and the email are covered by handwritten_tools.yaml."""
    suite = load_suite(RETAIL)
    tools = agent_tools(harness.agent, suite.cases)
    assert len(tools) == 18
    coverage = coverage_of_cases(tools, suite.cases)
    assert coverage.uncovered == RETAIL_GAPS
    for name in (
        "cancel_pending_order",
        "return_delivered_order_items",
        "modify_user_address",
        "modify_pending_order_payment",
        "send_email",
    ):
        assert coverage.row(name).approvals, name  # every write has a case expecting approval
    assert coverage.row("get_order_details").failures  # and the reads are broken on purpose


@pytest.mark.slow
def test_a_run_of_the_retail_golden_set_covers_the_same_tools() -> None:
    from tests.examples.conftest import require_tau2_retail

    require_tau2_retail()
    suite = load_suite(RETAIL)
    target = Target(agent=harness.agent, environment=harness.environment)
    results = asyncio.run(run_cases(suite.cases, target))
    coverage = coverage_of(agent_tools(harness.agent, suite.cases), results)
    assert coverage.uncovered == RETAIL_GAPS
    for row in coverage.tools:
        if row.covered:
            assert row.called, f"{row.tool}: expected by {row.expected}, never called"
