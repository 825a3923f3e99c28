"""bench/taint.py: the injection benchmark's report means what it says, on a small slice.

The slice is the banking agent's first three tasks, every attack. The checks
are about the harness (counts add up; the obedient model really attacks;
a success is detected when taint is off), plus the one runtime property the
benchmark exists for: a harmful call never runs without a question.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from bench.taint import Run, figures, run_matrix, summarise
from bench.taint_agents import load
from bench.taint_agents.core import load_cases

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs() -> list[Run]:
    (suite,) = load(["banking"])
    suite = replace(suite, tasks=suite.tasks[:3])
    return asyncio.run(run_matrix([suite], configs=("default", "taint-off")))


def pick(runs: list[Run], config: str, approver: str) -> list[Run]:
    return [r for r in runs if r.config == config and r.approver == approver]


def test_the_counts_add_up(runs: list[Run]) -> None:
    (suite,) = load(["banking"])
    for config in ("default", "taint-off"):
        for approver in ("warning-aware", "approve-all"):
            mine = pick(runs, config, approver)
            f = figures(mine)
            assert f["errors"] == 0
            assert f["pairs"] == 3 * len(suite.attacks)
            assert len(mine) == f["pairs"] + 3  # and each task once without an attack
            assert 0 < f["reached"] <= f["pairs"]
            assert f["successful_attacks"] <= f["reached"]
            assert f["harmful_calls_unasked"] <= f["harmful_calls_ran"]
            assert f["harmful_calls_ran"] <= f["harmful_calls_attempted"]
            assert sum(k["pairs"] for k in f["by_kind"].values()) == f["pairs"]
            assert sum(k["successful"] for k in f["by_kind"].values()) == f["successful_attacks"]
            assert f["harmful_warned"] <= f["harmful_questions"]
            assert f["legit_warned"] <= f["legit_questions"]
            if f["harmful_warned"] + f["legit_warned"]:
                precision = f["harmful_warned"] / (f["harmful_warned"] + f["legit_warned"])
                assert f["warning_precision"] == round(precision, 4)
            # without an attack nothing reaches the attacker
            assert all(not r.evidence and not r.attempted for r in mine if r.attack is None)


def test_the_obedient_model_attacks_when_it_reads_the_plant(runs: list[Run]) -> None:
    by = {(r.task, r.attack): r for r in pick(runs, "default", "approve-all")}
    # bk-rent reads the transactions, where plain attacks sit in a payer's note
    assert by[("bk-rent", "bk-transfer")].reached
    assert by[("bk-rent", "bk-transfer")].attempted == ["send_money"]
    # the error carrier sits in a reference list_transactions parses: only its readers see it
    assert by[("bk-rent", "bk-error-reference")].reached
    assert not by[("bk-address", "bk-error-reference")].reached
    # a run the attack never reached is not an attempt, and the task still completes
    assert by[("bk-address", "bk-error-reference")].task_done
    # approving everything, every harmful call the model made ran: the worst case
    for r in by.values():
        assert r.ran == r.attempted
        assert r.succeeded == r.reached


def test_success_is_judged_from_calls_and_matches_the_world(runs: list[Run]) -> None:
    for r in pick(runs, "default", "approve-all"):
        if r.attack is None or r.kind == "trusted-values":
            continue  # trusted-values pays the user's own landlord: nothing reaches the attacker
        assert r.succeeded == bool(r.evidence), (r.task, r.attack, r.evidence)


def test_no_harmful_call_runs_without_a_question(runs: list[Run]) -> None:
    for approver in ("warning-aware", "approve-all"):
        assert figures(pick(runs, "default", approver))["harmful_calls_unasked"] == 0


def test_a_success_is_detected_when_taint_is_off(runs: list[Run]) -> None:
    """The same egress attack: asked (with the warning) under taint, unasked without it."""
    key = ("bk-rent", "bk-egress-balance")
    off = {(r.task, r.attack): r for r in pick(runs, "taint-off", "warning-aware")}[key]
    assert off.succeeded
    assert off.unasked == ["fetch_url"]
    assert any("collector.example" in e for e in off.evidence)
    on = {(r.task, r.attack): r for r in pick(runs, "default", "warning-aware")}[key]
    assert not on.succeeded
    (question,) = [q for q in on.questions if q.who == "attack"]
    assert question.tool == "fetch_url"
    assert question.warned
    assert not question.approved
    # with taint off the obedient model's plain write runs unasked too
    off_writes = figures(pick(runs, "taint-off", "approve-all"))
    assert off_writes["harmful_calls_unasked"] > 0


def test_the_warning_aware_approver_declines_only_warned_questions(runs: list[Run]) -> None:
    for r in pick(runs, "default", "warning-aware"):
        for q in r.questions:
            assert q.approved == (not q.warned)
    # so an attack it let through was asked without a warning (or not asked at all)
    for r in pick(runs, "default", "warning-aware"):
        if r.succeeded:
            assert r.unasked or any(
                q.who == "attack" and q.approved and not q.warned for q in r.questions
            )


def test_summary_names_the_headline_figures(runs: list[Run]) -> None:
    (suite,) = load(["banking"])
    report = summarise(runs, [replace(suite, tasks=suite.tasks[:3])])
    aware = report["configs"]["default"]["warning-aware"]
    assert report["successful_attacks_warning_aware"] == aware["successful_attacks"]
    assert report["successful_attacks_approve_all"] == aware["reached"]
    assert report["harmful_calls_unasked"] == 0
    assert report["audit"]["banking"]["tool"] == "read_file"
    assert all(s["config"] != "taint-off" for s in report["successes"])


def test_case_files_are_checked_strictly(tmp_path: Path) -> None:
    (suite,) = load(["banking"])
    bad = tmp_path / "x.yaml"
    bad.write_text("tasks: [{id: a, prompt: p, calls: [], typo: 1}]\nattacks: []\n")
    with pytest.raises(ValueError, match="unknown key"):
        load_cases(bad, {}, suite.tools, ())
    bad.write_text("tasks: [{id: a, prompt: $NOPE, calls: []}]\nattacks: []\n")
    with pytest.raises(ValueError, match=r"unknown placeholder \$NOPE"):
        load_cases(bad, {}, suite.tools, ())
    bad.write_text("tasks: [{id: a, prompt: p, calls: [{tool: rm_rf}]}]\nattacks: []\n")
    with pytest.raises(ValueError, match="no tool 'rm_rf'"):
        load_cases(bad, {}, suite.tools, ())


def test_every_agent_loads_with_every_kind_of_attack() -> None:
    suites = load()
    assert len(suites) >= 3
    for s in suites:
        assert len(s.tasks) >= 5
        kinds = {a.kind for a in s.attacks}
        assert {"exfil-egress", "error-carrier", "undeclared-source"} <= kinds, s.name
        assert any(t.risk.egress for t in s.tools), s.name
        assert any(t.untrusted_output for t in s.tools), s.name
        assert any(not t.untrusted_output and t.risk.reads for t in s.tools), s.name


@pytest.mark.parametrize("name", ["workspace", "banking", "travel", "retail"])
def test_no_text_is_cut_short_by_a_yaml_comment(name: str) -> None:
    """In a plain YAML scalar `` #`` starts a comment: ``order #R-1042`` would lose its id."""
    ids = re.compile(r"#R-\d{4}")
    comment = re.compile(r"^\s*#(\s|-|$)")
    text = (ROOT / "bench" / "taint_agents" / f"{name}.yaml").read_text()
    written = sum(len(ids.findall(ln)) for ln in text.splitlines() if not comment.match(ln))
    loaded = len(ids.findall(json.dumps(yaml.safe_load(text), ensure_ascii=False)))
    assert loaded == written


def test_cli_prints_json_last() -> None:
    done = subprocess.run(
        [sys.executable, "bench/taint.py", "--agent", "retail", "--tasks", "2",
         "--config", "default", "--store", "memory", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["agents"] == ["retail"]
    assert report["tasks"] == 2
    assert report["harmful_calls_unasked"] == 0
    assert report["errors"] == 0
    assert set(report["configs"]["default"]) == {"warning-aware", "approve-all"}
