"""The eval report: its figures, the four questions, pass^k, JUnit, HTML and regressions."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tether.exceptions import ConfigError
from tether.surfaces.evals import Case, CaseResult, Check, Trajectory
from tether.surfaces.evals.report import EvalReport
from tether.surfaces.evals.runner import Attempt


def case(cid: str, *tags: str) -> Case:
    return Case.model_validate(
        {
            "id": cid,
            "tags": list(tags),
            "conversation": [{"user": "hi", "model": [{"text": "hello"}]}],
        }
    )


def attempt(*checks: Check, cost: float = 0.0, latency: float = 0.1) -> Attempt:
    return Attempt(list(checks), Trajectory(final_output="hello", cost=cost, latency_s=latency))


def ok(question: str, name: str = "tool-used") -> Check:
    return Check(name, True, "", question)


def bad(question: str, message: str, name: str = "tool-used") -> Check:
    return Check(name, False, message, question)


APPROVAL_MSG = "expected cancel_order to stop for approval; it never did (calls: ['cancel_order'])"
DB_MSG = 'the final state differs from the expected one:\n  orders.#W1.status: expected "pending"'


def four_cases() -> list[CaseResult]:
    """Two pass and two fail; two are edge cases (one of each)."""
    return [
        CaseResult(
            case("status"),
            [attempt(ok("right-tools"), ok("right-format", "final-format"), cost=0.01, latency=1)],
        ),
        CaseResult(
            case("cancel", "writes"),
            [
                attempt(
                    ok("right-tools"),
                    bad("no-prohibited-action", APPROVAL_MSG, "asked-approval-before"),
                    bad("no-prohibited-action", DB_MSG, "db-state"),
                    cost=0.02,
                    latency=2,
                )
            ],
        ),
        CaseResult(
            case("tool-down", "failing-tool"),
            [attempt(ok("right-format", "acknowledged-failure"), cost=0.03, latency=3)],
        ),
        CaseResult(
            case("typo", "malformed"),
            [
                attempt(
                    bad("right-tools", "expected a call to get_order; got calls: none"),
                    ok("no-prohibited-action", "no-writes"),
                    cost=0.04,
                    latency=4,
                )
            ],
        ),
    ]


def test_figures_and_the_four_questions() -> None:
    report = EvalReport("shop", four_cases(), agent="pkg.agent:agent")
    s = report.summary()
    assert (s["cases"], s["passed"], s["failed"], s["pass_rate"]) == (4, 2, 2, 0.5)
    assert s["failed_cases"] == ["cancel", "typo"]
    q = s["questions"]
    # checks over all cases: right-tools 2 of 3, right-format 2 of 2, prohibited 1 of 3
    assert (q["right-tools"]["passed"], q["right-tools"]["total"]) == (2, 3)
    assert q["right-tools"]["rate"] == pytest.approx(2 / 3)
    assert (q["right-format"]["passed"], q["right-format"]["total"]) == (2, 2)
    assert (q["no-prohibited-action"]["passed"], q["no-prohibited-action"]["total"]) == (1, 3)
    # edge cases: the cases tagged failing-tool and malformed, one of which passed
    assert (q["edge-cases"]["passed"], q["edge-cases"]["total"], q["edge-cases"]["rate"]) == (
        1,
        2,
        0.5,
    )
    assert q["edge-cases"]["counts"] == "cases"
    # cost and latency per case: inclusive percentiles of 1,2,3,4 (cents and seconds)
    assert s["cost"] == {"total": 0.1, "p50": 0.025, "p95": pytest.approx(0.0385)}
    assert s["latency_s"] == {"total": 10.0, "p50": 2.5, "p95": pytest.approx(3.85)}
    assert "pass_k" not in s  # k = 1: nothing was repeated
    json.dumps(report.to_dict())  # the whole report is JSON as it is


def test_a_question_nothing_speaks_to_is_not_a_flattering_100_percent() -> None:
    report = EvalReport("shop", [CaseResult(case("a"), [attempt(ok("right-tools"))])])
    q = report.summary()["questions"]
    assert q["right-format"] == {
        "question": "Does its answer have the right form?",
        "passed": 0,
        "total": 0,
        "rate": None,
        "counts": "checks",
    }
    assert q["edge-cases"]["rate"] is None


def test_pass_hat_k_needs_every_attempt_and_pass_at_1_is_the_mean() -> None:
    steady = CaseResult(case("steady"), [attempt(ok("right-tools")) for _ in range(3)])
    flaky = CaseResult(
        case("flaky"),
        [
            attempt(ok("right-tools")),
            attempt(bad("right-tools", "expected a call to get_order; got calls: none")),
            attempt(ok("right-tools")),
        ],
    )
    s = EvalReport("shop", [steady, flaky], k=3, model="anthropic:claude-haiku-4-5").summary()
    assert s["k"] == 3
    assert s["pass_rate"] == s["pass_k"] == 0.5  # flaky failed 1 of its 3 attempts
    assert s["pass_at_1"] == pytest.approx((1 + 2 / 3) / 2)
    # the questions count every attempt's checks
    assert (s["questions"]["right-tools"]["passed"], s["questions"]["right-tools"]["total"]) == (
        5,
        6,
    )
    (flaky_dict,) = [c for c in EvalReport("shop", [flaky], k=3).to_dict()["cases"]]
    assert (flaky_dict["attempts"], flaky_dict["attempts_passed"]) == (3, 2)


def test_junit_xml_parses_with_counts_and_failure_messages(tmp_path: Path) -> None:
    results = four_cases()
    nasty = 'got <b>&amp; "quotes" and a \x1b[31mcolour\x1b[0m'
    results.append(CaseResult(case("nasty"), [attempt(bad("right-format", nasty, "final-format"))]))
    path = EvalReport("shop", results).write_junit(tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    (suite,) = root.iter("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("shop", "5", "3")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == ["status", "cancel", "tool-down", "typo", "nasty"]
    assert {c.get("classname") for c in cases.values()} == {"shop"}
    assert cases["cancel"].get("time") == "2.000"
    assert cases["status"].find("failure") is None
    failure = cases["cancel"].find("failure")
    assert failure is not None
    message = failure.get("message") or ""
    assert "asked-approval-before: expected cancel_order to stop for approval" in message
    assert "db-state: the final state differs from the expected one:" in message
    assert "\n" not in message  # the attribute holds each check's first line
    assert DB_MSG in (failure.text or "")  # the body holds the whole diff
    nasty_failure = cases["nasty"].find("failure")
    assert nasty_failure is not None
    assert 'got <b>&amp; "quotes" and a' in (nasty_failure.text or "")  # escaped, read back
    assert "\x1b" not in path.read_text(encoding="utf-8")  # not allowed in XML at all


def test_html_is_one_self_contained_escaped_page(tmp_path: Path) -> None:
    results = four_cases()
    evil = "answer was <script>alert(1)</script> <img src=x>"
    results.append(CaseResult(case("evil"), [attempt(bad("right-format", evil, "final-format"))]))
    page = EvalReport("shop", results, agent="pkg:agent").write_html(tmp_path / "r.html")
    html = page.read_text(encoding="utf-8")
    low = html.lower()
    for external in ("http", "<script", "<link", "<img", "<iframe", "@import", "url("):
        assert external not in low, external
    # no tag fetches anything: the only "src=" is the escaped text of the message
    assert not re.search(r"<[^>]*\b(?:src|href)\s*=", html, re.IGNORECASE)
    assert "&lt;img src=x&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "3 of 5 cases failed" in html
    assert "The four questions" in html
    assert "no-prohibited-action" in html
    # each failed check's message, readable, in a <pre>
    # (quotes as Jinja2's autoescape writes them: &#39; and &#34;)
    assert f"<pre>{APPROVAL_MSG.replace(chr(39), '&#39;')}</pre>" in html
    assert "orders.#W1.status: expected &#34;pending&#34;" in html
    for cid in ("status", "cancel", "tool-down", "typo", "evil"):
        assert f"<td>{cid}</td>" in html


def baseline_of(report: EvalReport) -> dict[str, Any]:
    """What --baseline reads: the JSON report, written and read back."""
    loaded: dict[str, Any] = json.loads(json.dumps(report.to_dict()))
    return loaded


def test_compare_finds_a_newly_failing_case_a_missing_case_and_a_question_drop() -> None:
    before = baseline_of(EvalReport("shop", four_cases()))
    now = four_cases()
    # "status" now fails its format check; "tool-down" is gone; "cancel" still fails (no news)
    now[0] = CaseResult(
        case("status"),
        [attempt(ok("right-tools"), bad("right-format", "expected /shipped/", "final-format"))],
    )
    del now[2]
    regressions = EvalReport("shop", now).compare(before)
    found = {(r.kind, r.subject) for r in regressions}
    assert found == {
        ("newly-failing", "status"),
        ("missing", "tool-down"),
        ("question-drop", "right-format"),
        # without the passing edge case, 0 of the 1 left passes
        ("question-drop", "edge-cases"),
    }
    text = {r.subject: r.message for r in regressions}
    assert text["status"] == (
        "status: passed in the baseline, fails now: final-format: expected /shipped/"
    )
    assert text["tool-down"] == "tool-down: in the baseline, but it did not run now"
    assert text["right-format"] == "right-format: 100.0% in the baseline (2/2), 0.0% now (0/1)"
    assert text["edge-cases"] == "edge-cases: 50.0% in the baseline (1/2), 0.0% now (0/1)"


def test_compare_sees_an_edge_case_rate_drop_and_nothing_when_all_is_the_same() -> None:
    before = baseline_of(EvalReport("shop", four_cases()))
    assert EvalReport("shop", four_cases()).compare(before) == []
    now = four_cases()
    now[2] = CaseResult(
        case("tool-down", "failing-tool"),
        [attempt(bad("right-format", "2 of 2 failed, but the answer does not say so"))],
    )
    kinds = {(r.kind, r.subject) for r in EvalReport("shop", now).compare(before)}
    assert ("question-drop", "edge-cases") in kinds
    assert ("newly-failing", "tool-down") in kinds


def test_compare_over_part_of_the_suite_compares_only_the_selected_cases() -> None:
    before = baseline_of(EvalReport("shop", four_cases()))
    only_status = [r for r in four_cases() if r.case.id == "status"]
    report = EvalReport("shop", only_status)
    assert report.compare(before, selected=lambda cid, tags: cid == "status") == []
    # unselected, every other baseline case would be "missing"
    missing = {r.subject for r in report.compare(before) if r.kind == "missing"}
    assert missing == {"cancel", "tool-down", "typo"}


@pytest.mark.parametrize(
    "baseline", [{}, {"cases": "x", "summary": {}}, {"cases": [{}], "summary": {}}]
)
def test_a_baseline_that_is_no_report_is_a_config_error(baseline: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="eval report"):
        EvalReport("shop", four_cases()).compare(baseline)
