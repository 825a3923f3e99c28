"""The retail agent's golden set (``examples/retail/evals``): complete, current, passing.

- The suite has at least 150 cases: every tau2-bench training task, and the
  mutation, failing-tool, out-of-scope and malformed families, each tagged.
- Every case passes in scripted mode against the suite's own target (the
  retail agent on a fresh copy of the shop for each case).
- The committed case files are exactly what the generator writes from the
  data (``python -m examples.retail.evals.build_cases``).
- The set catches a regression: with ``cancel_pending_order`` no longer
  stopping for approval, every case that cancels fails, on the approval.

Running the cases needs the tau2-bench retail data beside the checkout (or
``$TETHER_TAU2_DIR``); without it those tests are skipped, with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from examples.retail.evals import build_cases, harness

from tests.examples.conftest import require_tau2_retail
from tether import Agent, Model
from tether.surfaces.evals import Case, CaseResult, Suite, Target, load_suite, run_cases

REPO = Path(__file__).resolve().parents[2]

EVALS = Path(build_cases.__file__).resolve().parent

MUTATION_KINDS = ("no-confirmation", "expired-approval", "wrong-user", "swapped-items")


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(EVALS)


def tagged(suite: Suite, *tags: str) -> list[Case]:
    return [c for c in suite.cases if set(tags) <= set(c.tags)]


def report(results: list[CaseResult]) -> str:
    return "\n".join(
        f"{r.case.id}:\n" + "\n".join(f"  {c.name}: {c.message}" for c in r.failures)
        for r in results
    )


def test_the_suite_has_every_family(suite: Suite) -> None:
    assert len(suite.cases) >= 150
    assert suite.config.agent == "examples.retail.evals.harness:agent"
    assert len(tagged(suite, "tau2")) >= 74
    mutations = tagged(suite, "mutation")
    assert len(mutations) >= 40
    kinds = Counter(k for c in mutations for k in c.tags if k in MUTATION_KINDS)
    assert set(kinds) == set(MUTATION_KINDS), kinds
    assert all(n >= 10 for n in kinds.values()), kinds
    assert len(tagged(suite, "failing-tool", "edge")) >= 15
    assert len(tagged(suite, "out-of-scope", "edge")) >= 10
    assert len(tagged(suite, "malformed", "edge")) >= 10
    for case in tagged(suite, "failing-tool"):
        assert case.tools, case.id  # a tool really is broken in each
    for case in tagged(suite, "out-of-scope"):
        assert {e.name for e in case.expect} >= {"tool-used", "no-writes", "final-format"}


def test_every_training_task_has_its_case(suite: Suite) -> None:
    tasks = json.loads((require_tau2_retail() / "tasks_train.json").read_text(encoding="utf-8"))
    ids = {c.id for c in tagged(suite, "tau2")}
    assert {f"tau2-task-{t['id']}" for t in tasks} <= ids


@pytest.mark.slow
def test_tether_eval_passes_the_whole_suite_and_writes_its_reports(tmp_path: Path) -> None:
    """What CI runs: the command, the whole suite, scripted, with the HTML and JUnit reports."""
    require_tau2_retail()
    html, junit = tmp_path / "eval.html", tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable, "-c", "from tether.surfaces.cli import main; main()",
            "eval", "examples/retail/evals",
            "--report", str(html), "--junit", str(junit), "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["cases"] >= 150
    assert summary["failed"] == 0
    page = html.read_text(encoding="utf-8")
    assert "<html" in page.lower()
    assert "tau2-task-0" in page
    assert junit.read_text(encoding="utf-8").count("<testcase") == summary["cases"]


def test_the_case_files_are_up_to_date(tmp_path: Path) -> None:
    root = require_tau2_retail()
    assert build_cases.main(["--data", str(root), "--out", str(tmp_path)]) == 0
    for name in build_cases.FAMILIES:
        fresh = (tmp_path / name).read_bytes()
        assert fresh == (EVALS / name).read_bytes(), (
            f"{name} is out of date: run python -m examples.retail.evals.build_cases"
        )


def cancel_without_approval(case: Case, models: Sequence[str | Model] | None = None) -> Agent:
    """The retail agent, broken: cancelling an order no longer asks the customer.

    The taint is turned off too: otherwise a session that read a product's
    (untrusted) details would still have the cancellation approved.
    """
    agent = harness.agent(case, models)
    tools = tuple(
        dataclasses.replace(t, needs_approval=False) if t.name == "cancel_pending_order" else t
        for t in agent.tools
    )
    approval = dataclasses.replace(agent.approval, taint="off")
    return dataclasses.replace(agent, tools=tools, approval=approval)


async def test_a_cancel_without_approval_fails_the_cancel_cases(suite: Suite) -> None:
    require_tau2_retail()
    cancels = [
        c
        for c in suite.cases
        if any(
            e.name == "asked-approval-before" and e.value == "cancel_pending_order"
            for e in c.expect
        )
    ]
    assert len(cancels) >= 10
    target = Target(agent=cancel_without_approval, environment=harness.environment)
    results = await run_cases(cancels, target)
    missed = [
        r.case.id for r in results if "asked-approval-before" not in {c.name for c in r.failures}
    ]
    assert not missed, f"these cases do not notice the missing approval: {missed}"
    # where the customer said no or answered too late, the order was cancelled anyway
    undone = [r for r in results if {"no-confirmation", "expired-approval"} & set(r.case.tags)]
    assert undone
    assert all("db-state" in {c.name for c in r.failures} for r in undone), report(undone)
