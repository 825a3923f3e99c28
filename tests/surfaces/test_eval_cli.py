"""``tether eval`` end to end: the retail golden set, a broken agent, baselines, capture."""

from __future__ import annotations

import asyncio
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from examples.retail.agent import build_agent
from typer.testing import CliRunner

from tether import Message, ProviderError, Runtime
from tether.spec.messages import ToolCall
from tether.store import open_store
from tether.surfaces.cli import app
from tether.surfaces.evals import case_schema, load_suite
from tether.surfaces.evals.capture import TODO
from tether.testing import FakeClock, ScriptedModel, call

REPO = Path(__file__).resolve().parents[2]
RETAIL = REPO / "examples" / "retail" / "evals"
BROKEN = "tests.surfaces.broken_retail:agent"
HARNESS = "examples.retail.evals.harness:agent"
APPROVAL_DIFF = (
    "asked-approval-before: expected cancel_pending_order to stop for approval; it never did "
    "(calls: ['find_user_id_by_name_zip', 'get_order_details', 'cancel_pending_order'])"
)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def last_json(stdout: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return data


def flat(text: str) -> str:
    """Text without any whitespace: robust to where a console wrapped a line."""
    return "".join(text.split())


@pytest.fixture
def small_suite(tmp_path: Path) -> Path:
    """The retail suite's hand-written cases alone (3 cases), with its suite.yaml."""
    folder = tmp_path / "suite"
    folder.mkdir()
    shutil.copy(RETAIL / "suite.yaml", folder / "suite.yaml")
    shutil.copy(RETAIL / "handwritten.yaml", folder / "handwritten.yaml")
    return folder


def test_the_retail_case_passes_with_json_html_and_junit(tmp_path: Path) -> None:
    html, xml = tmp_path / "report.html", tmp_path / "junit.xml"
    code, out, err = invoke(
        "eval", str(RETAIL), "--case", "demo-cancel-confirmed", "--json",
        "--report", str(html), "--junit", str(xml),
    )  # fmt: skip
    assert code == 0, err
    summary = last_json(out)
    assert (summary["cases"], summary["passed"], summary["failed"]) == (1, 1, 0)
    assert summary["pass_rate"] == 1.0
    assert summary["suite"] == "retail"
    assert summary["agent"] == HARNESS  # from suite.yaml
    assert summary["regressions"] == []
    assert summary["questions"]["no-prohibited-action"]["rate"] == 1.0
    assert summary["cost"]["total"] == 0.0  # scripted: no provider was called
    assert len(out.strip().splitlines()) == 1  # stdout is the JSON line; tables go to stderr
    assert "The four questions" in err
    page = html.read_text(encoding="utf-8")
    assert "demo-cancel-confirmed" in page
    assert "all 1 cases passed" in page
    (suite,) = ET.parse(xml).getroot().iter("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")


def test_a_write_tool_without_its_approval_fails_with_a_readable_diff(tmp_path: Path) -> None:
    code, out, _ = invoke(
        "eval", str(RETAIL), "--agent", BROKEN, "--case", "demo-cancel-confirmed",
        "--junit", str(tmp_path / "junit.xml"),
    )  # fmt: skip
    assert code == 1
    assert "FAILED demo-cancel-confirmed" in out
    assert (
        APPROVAL_DIFF
        in out.splitlines()[out.splitlines().index("FAILED demo-cancel-confirmed") + 1]
    )
    (case,) = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    failure = case.find("failure")
    assert failure is not None
    assert APPROVAL_DIFF in (failure.get("message") or "")


def test_a_baseline_turns_a_newly_failing_case_into_a_regression(
    tmp_path: Path, small_suite: Path
) -> None:
    base = tmp_path / "baseline.json"
    code, out, _ = invoke("eval", str(small_suite), "--report", str(base))
    assert code == 0, out
    assert json.loads(base.read_text())["summary"]["passed"] == 3
    # the same agent again: nothing regressed
    code, out, _ = invoke("eval", str(small_suite), "--baseline", str(base))
    assert code == 0
    assert f"no regression against {base}" in " ".join(out.split())

    code, out, err = invoke("eval", str(small_suite), "--agent", BROKEN, "--baseline", str(base),
                            "--json")  # fmt: skip
    assert code == 1
    regressions = {(r["kind"], r["subject"]) for r in last_json(out)["regressions"]}
    assert regressions == {
        ("newly-failing", "demo-cancel-confirmed"),
        ("newly-failing", "demo-cancel-declined"),
        ("question-drop", "no-prohibited-action"),
        ("question-drop", "edge-cases"),
    }
    assert (
        "regression: demo-cancel-confirmed: passed in the baseline, fails now: "
        "asked-approval-before: expected cancel_pending_order to stop for approval"
    ) in err


def test_a_case_gone_from_the_suite_is_a_regression_unless_not_selected(
    tmp_path: Path, small_suite: Path
) -> None:
    base = tmp_path / "baseline.json"
    assert invoke("eval", str(small_suite), "--report", str(base))[0] == 0
    cases = small_suite / "handwritten.yaml"
    text = cases.read_text(encoding="utf-8")
    cases.write_text(text[: text.index("  - id: demo-lookup-tool-down")], encoding="utf-8")
    code, out, _ = invoke("eval", str(small_suite), "--baseline", str(base))
    assert code == 1
    assert "regression: demo-lookup-tool-down: in the baseline, but it did not run now" in out
    # a run of part of the suite only compares that part
    code, out, _ = invoke(
        "eval", str(small_suite), "--case", "demo-cancel-confirmed", "--baseline", str(base)
    )
    assert code == 0, out
    code, out, _ = invoke("eval", str(small_suite), "--tag", "edge", "--baseline", str(base))
    assert code == 1  # demo-lookup-tool-down is an edge case: it was meant to run
    assert "demo-lookup-tool-down: in the baseline" in out


def test_a_live_case_runs_k_times(tmp_path: Path) -> None:
    cases = tmp_path / "live.yaml"
    cases.write_text(
        "cases:\n"
        "  - id: live-status\n"
        "    mode: live\n"
        "    conversation: [{user: 'where is my order?'}]\n"
        "    expect: [{tool-used: order_status}, {final-format: {regex: shipped}}]\n",
        encoding="utf-8",
    )
    report = tmp_path / "r.json"
    code, out, err = invoke(
        "eval", "run", str(cases), "--agent", "tests.surfaces.cli_agent:agent", "-k", "3",
        "--json", "--report", str(report),
    )  # fmt: skip
    assert code == 0, err
    summary = last_json(out)
    assert (summary["k"], summary["pass_k"], summary["pass_at_1"]) == (3, 1.0, 1.0)
    (case,) = json.loads(report.read_text())["cases"]
    assert (case["attempts"], case["attempts_passed"]) == (3, 3)


MALFORMED = """\
cases:
  - id: bad-case
    conversation:
      - user: hi
        model: [{text: hello}]
    expect:
      - tool-usd: get_order
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("eval", "{tmp}/malformed.yaml"),
            "{tmp}/malformed.yaml: case bad-case: expect.0.tool-usd",
        ),
        (("eval", "{tmp}/nowhere"), "no eval suite at {tmp}/nowhere"),
        (("eval", "{suite}", "--case", "nope"), "no case with id 'nope' in this suite"),
        (("eval", "{suite}", "--tag", "nope"), "no case has the tag(s) nope"),
        (("eval", "{suite}", "--report", "{tmp}/r.txt"), "must end in .html or .json"),
        (("eval", "{suite}", "--model", "bogus:x"), "unknown model spec 'bogus:x'"),
        (("eval", "{suite}", "--agent", "no_such_module:agent"), "cannot import"),
        (("eval", "{tmp}/ok.yaml"), "no agent to test: pass --agent REF"),
        (("eval", "{suite}", "--baseline", "{tmp}/ok.yaml"), "is not JSON"),
        (("eval", "{suite}", "--baseline", "{tmp}/list.json"), "is not an eval report"),
        (("eval", "capture", "deadbeef", "--suite", "{tmp}/c.yaml", "--db", "{db}"), "deadbeef"),
    ],
)
def test_errors_are_one_actionable_line_and_usage_errors_exit_2(
    tmp_path: Path, small_suite: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "malformed.yaml").write_text(MALFORMED, encoding="utf-8")
    ok = "id: ok\nconversation: [{user: hi, model: [{text: hello}]}]\n"
    (tmp_path / "ok.yaml").write_text(ok, encoding="utf-8")
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    db = f"sqlite+aiosqlite:///{tmp_path / 'e.sqlite'}"
    filled = [a.format(tmp=tmp_path, db=db, suite=small_suite) for a in args]
    code, _, err = invoke(*filled)
    assert code == (1 if "capture" in args else 2)  # an unknown session is a run error
    assert flat(message.format(tmp=tmp_path)) in flat(err)
    assert "Traceback" not in err


def test_the_group_routes_a_suite_to_run_and_knows_its_subcommands() -> None:
    code, out, _ = invoke("eval", "--help")
    assert code == 0
    assert "capture" in out
    assert "schema" in out
    code, out, _ = invoke("eval", "run", "--help")
    assert "--baseline" in out


def test_the_published_schema_is_the_case_schema() -> None:
    published = (REPO / "schemas" / "eval-case.schema.json").read_text(encoding="utf-8")
    assert json.loads(published) == case_schema()
    code, out, _ = invoke("eval", "schema")
    assert code == 0
    assert out == published  # regenerate: tether eval schema > schemas/eval-case.schema.json
    first = (RETAIL / "handwritten.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../../schemas/eval-case.schema.json"


def test_an_editor_using_the_published_schema_accepts_every_retail_case_file() -> None:
    schema = json.loads((REPO / "schemas" / "eval-case.schema.json").read_text(encoding="utf-8"))
    files = sorted(p for p in RETAIL.glob("*.yaml") if p.name != "suite.yaml")
    assert len(files) >= 6
    for path in files:
        jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)
    # and it still catches a typo
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": "x", "conversation": [{"usr": "hi"}]}, schema)


# -- capture --------------------------------------------------------------------------


async def _incident(db: str, shop: Path) -> str:
    """A session of the retail agent, stored: a 429, a cancellation approved by chat, thanks."""
    model = ScriptedModel(
        [
            ProviderError("HTTP 429 (scripted)", status=429, retryable=True),
            call("find_user_id_by_name_zip", first_name="Ava", last_name="Moreno", zip="94107"),
            call("get_order_details", order_id="#W1024001"),
            Message(
                role="assistant",
                text="I'll cancel order #W1024001 (reason: no longer needed).",
                tool_calls=(
                    ToolCall(
                        "c3",
                        "cancel_pending_order",
                        {"order_id": "#W1024001", "reason": "no longer needed"},
                    ),
                ),
            ),
            "Order #W1024001 is cancelled.",
            "You're welcome!",
        ]
    )
    agent = build_agent(shop_path=shop, models=(model,))
    clock = FakeClock()
    async with Runtime(store=await open_store(db), clock=clock, sleep=clock.sleep) as rt:
        first = await rt.run(
            agent, "I'm Ava Moreno, zip 94107. Cancel #W1024001, I no longer need it.",
            user_id="ava", metadata={"agent_ref": HARNESS},
        )  # fmt: skip
        assert first.status == "awaiting_approval"
        done = await rt.run(agent, "yes", session_id=first.session_id)
        assert done.output == "Order #W1024001 is cancelled."
        thanks = await rt.run(agent, "Thanks!", session_id=first.session_id)
        assert thanks.status == "idle"
        return first.session_id


def test_capture_turns_a_stored_session_into_a_case_that_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'sessions.sqlite'}"
    sid = asyncio.run(_incident(db, tmp_path / "shop-at-the-time.sqlite"))
    cases = tmp_path / "incidents" / "captured.yaml"

    code, out, err = invoke("eval", "capture", sid, "--suite", str(cases), "--db", db)
    assert code == 0, err
    cid = f"captured-{sid[:12]}"
    assert f"wrote case {cid} to {cases}" in out
    assert f"tether eval {cases} --agent {HARNESS}" in out  # the agent the session recorded
    text = cases.read_text(encoding="utf-8")
    assert TODO in text

    (case,) = load_suite(cases).cases
    assert case.id == cid
    assert case.tags == ["captured"]
    assert case.user_id == "ava"
    first, second = case.conversation
    assert [s.error for s in first.model or []][:1] == [429]
    assert [s.tool for s in first.model or []] == [
        None, "find_user_id_by_name_zip", "get_order_details", "cancel_pending_order", None,
    ]  # fmt: skip
    assert [a.approve for a in first.approvals] == [True]  # the chat "yes"
    assert (second.user, [s.text for s in second.model or []]) == ("Thanks!", ["You're welcome!"])
    assert [e.name for e in case.expect] == ["tool-sequence", "asked-approval-before"]

    # replayed on a fresh shop, the incident plays out the same way
    monkeypatch.setenv("TETHER_RETAIL_DB", str(tmp_path / "fresh-shop.sqlite"))
    code, out, err = invoke("eval", str(cases), "--agent", HARNESS, "--json")
    assert code == 0, out + err
    assert last_json(out)["passed"] == 1

    # captured again: a second case, the first kept
    assert invoke("eval", "capture", sid, "--suite", str(cases), "--db", db)[0] == 0
    assert [c.id for c in load_suite(cases).cases] == [cid, f"{cid}-2"]
