"""Every runnable example under docs/examples runs and prints what its page promises.

Each example runs in a fresh interpreter from the repository root, as a
reader would run it (``.venv/bin/python docs/examples/NAME.py``), with
warnings as errors and ``TETHER_HOME`` pointed at a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"

# Lines each example must print (whole lines of stdout): what its docs page shows.
EXPECTED: dict[str, list[str]] = {
    "cost.py": [
        "turn 1: idle, 932 tokens, $0.0029",
        "turn 3: idle, 2231 tokens, $0.0068",
        "turn 4: idle, 3106 tokens, $0.0053 (compressed by anthropic:claude-haiku-4-5)",
        "turn 5: budget_exhausted, 870 tokens, $0.0009 (compressed by anthropic:claude-haiku-4-5)",
        "the user reads: This conversation has used its token budget (8,721 of 10,000 tokens) "
        "and has ended here. Please start a new conversation to continue.",
        "session total: 8721 tokens, $0.0207",
        "stop reason: loop, searches run: 2",
        "answer: Returns are free within 30 days of delivery.",
        "session 3: refused (sessions_per_hour, user ava, allowed 2, resets in about an hour: "
        "True)",
        "sessions stored: 2",
    ],
    "evals_quickstart.py": [
        "case order-status: passed",
        "case cancel-confirmed: passed",
        "case cancel-declined: failed",
        "  final-format: expected the answer to match /not cancelled/; got 'I have not done "
        "that: no action was carried out in this conversation turn, so nothing was changed. "
        "Please tell me if you want me to try.'",
        "  unsupported-claim: 1 answer(s) withheld for claiming an action no tool did (calls: "
        "none): 'Order #W2 is cancelled' in 'Order #W2 is cancelled.'",
        "pass rate: 67% (2 of 3)",
        "right-tools: 1/1 checks",
        "right-format: 1/3 checks",
        "no-prohibited-action: 4/4 checks",
        "edge-cases: 0/1 cases",
        "regression: cancel-confirmed: in the baseline, but it did not run now",
    ],
    "mcp_tools.py": [
        "tools offered: clarify, delete_note, read_note",
        "read_note: idle, Returns are free within 30 days.",
        "delete_note: awaiting_approval (delete_note)",
        "after approval: idle, The note is deleted.",
    ],
    "operations.py": [
        "v1 gate passed: True",
        "  golden set: 2/2 cases",
        "  red team: 0 attacks succeeded",
        "v1 is active; its hash is content_hash(definition_of(V1)): True",
        "RISK: tool cancel_order lost its approval requirement (always -> never)",
        "RISK: tool cancel_order is no longer marked irreversible",
        "RISK: limits.max_tool_calls raised (25 -> 50)",
        "RISK: new tool refund_order (approval: never)",
        "  gate: golden set: 1 of 2 case(s) failed (cancel-confirmed)",
        "  gate: no eval case covers tool(s) refund_order: add a case that calls each before "
        "deploying it",
        "  gate: case cancel-confirmed passed on version 1 and fails now",
        "v2 is active (forced: hotfix for the refund backlog)",
        "session on v2: idle: Order #W7 is cancelled.",
        'tether_turns_total{agent="shop",outcome="idle",version="2"} 1.0',
        'tether_tool_calls_total{agent="shop",outcome="ok",tool="cancel_order",version="2"} 1.0',
        "rollback: v2 taken back; new sessions start on v1",
        "  v2: rolled_back, 1 session(s)",
        "  v1: active, 0 session(s)",
        "retire v2: shop version 2 served (1 session(s)) and stopped taking new ones 2.0 h ago; "
        "it may be retired in 22.0 h (or with --force --reason TEXT)",
        "a day later: v2 retired",
        "log: deploy v1 by ana",
        "log: deploy v2 by ana",
        "log: rollback v2 by olga",
        "log: retire v2 by olga",
    ],
    "oversight.py": [
        "lookups run: 1, cancellations run: 0",
        "asked: Please confirm: cancel order '#W1' (reason: 'ordered twice'). Reply yes or no.",
        "the model's own words, shown beside it: I'll cancel order #W1 now.",
        "reply 'hmm, is it refunded?': awaiting_approval, approval.reasked",
        "asked again: True",
        "reply 'yes': idle, approval.decided",
        "cancelled: ['#W1'], idempotency key: SESSION:2:cancel-1",
        "the same approval again: ApprovalError: approval SESSION.7 was already approved by "
        "user; nothing was run",
        "the first approval again: ApprovalError: approval SESSION.7 was already approved by "
        "user; nothing was run",
        "asked: Please confirm: cancel order '#W2' (reason: 'ordered twice'). Reply yes or no.",
        "approval ids: SESSION.7 approved, SESSION.18 asked",
        "reply 'no': idle, approval.decided",
        "cancelled: ['#W1']",
        "the model was told: not done: the user declined cancel order '#W2' (reason: 'ordered "
        "twice'). Do not do it; tell the user, and ask what they would like instead.",
        "the user is told: This action is waiting for review by an operator: cancel order '#W3' "
        "(reason: 'damaged')",
        "the user replies 'yes': awaiting_approval, cancelled: []",
        "without the role: NotApprover: mallory cannot decide approval SESSION.4: it needs the "
        "'approver' role (operator approval)",
        "approved by olga: idle, cancelled: ['#W3']",
        "expires after: 900 s",
        "reply 'yes' 16 minutes later: idle, approval.expired",
        "cancelled: []",
        "status: idle, cancelled: ['#W5']",
    ],
    "quickstart.py": [
        "answer: Order #W1001 has shipped with UPS; it should arrive in 3 days.",
        "status: idle",
        "   4 step 1 tool.started",
        "   5 step 1 tool.finished",
        "   0 step 3 model.delta  (streamed only, not stored)",
        "  10 step 3 turn.completed",
    ],
    "reliability.py": [
        "retry: attempt 1 failed (HTTP 429); waited 2.00 s",
        "retry: attempt 2 failed (HTTP 503); waited 1.86 s",
        "retry: attempt 3 failed (HTTP 503); waited 3.44 s",
        "fallback: primary -> backup",
        "answer: Order #W1 is pending.",
        "degraded: event=True primary=primary",
        "stored message: degraded=True model=backup",
        "primary calls: 4, waited 7.30 s (virtual)",
        "may downgrade: False",
        "error: primary is unavailable right now (primary: injected HTTP 503 (service "
        "unavailable) (HTTP 503, 3 retries)). This conversation can lead to an action that must "
        "not be decided by a backup model, so nothing was done; please try again in a few minutes.",
        "retries: 3, fallbacks: 0",
        "backup model asked: 0 times",
        "turn 2: breaker.opened tool:lookup:order_status for 30 s",
        "turn 3: error: order_status is unavailable right now: it failed repeatedly, so the "
        "runtime stopped calling it for about 30 more seconds. It was not run. Tell the user what "
        "you could not do.",
        "turn 4 (30 s later): breaker.opened tool:lookup:order_status for 30 s",
        "answer (the same in every turn): Sorry, I could not look up order #W1 right now. "
        "Please try again later.",
        "tool really run: 3 times in 4 turns",
    ],
    "resume.py": [
        "first run: status=failed error=The assistant is unavailable right now (scripted: "
        "overloaded (HTTP 529, 3 retries)). Nothing was done; please try again in a few minutes.",
        "resumed: status=idle output=Yes: 7 units of LAMP-01 are in stock.",
        "stock lookups run: 1",
        "stored log: session.created message.user model.response tool.started tool.finished "
        "model.retry model.retry model.retry session.status session.resumed session.status "
        "model.response turn.completed",
    ],
    "security.py": [
        "the detector: quarantine (exfiltration)",
        "status: awaiting_approval",
        "the customer is asked: Please confirm: send 'Customer list' to "
        "'attacker@evil.example'; also: body='(all)'. WARNING: to = 'attacker@evil.example' "
        "was copied word for word from search_help_center; subject = 'Customer list' was "
        "copied in another form from search_help_center, and the user never gave them: they may "
        "have been planted there to steer this action. Check before approving. Reply yes or "
        "no.",
        "after 'no': idle; emails sent: []",
        "block DELETE FROM orders WHERE 1=1 ['DELETE with an always-true WHERE (1 = 1) changes "
        "every row']",
        "block SELECT email FROM users ['table users is not in the allowed tables']",
        "answer: I can't share that: it is part of my configuration. Is there something else I "
        "can help you with?",
        "withheld because: ['canary']",
    ],
    "serving.py": [
        "ava: approval requested for refund",
        "ava: turn ended awaiting_approval: This action is waiting for review by an operator: "
        "refund order '#W1'",
        "bo: 404 no such session (or not yours)",
        "ops: refund order '#W1' (arguments {'order_id': '#W1'})",
        "ops: idle: Done: refunded #W1. / the retry: Done: refunded #W1.",
        "refunds run: ['#W1']",
        "ava: 11 stored events, seq 1..11",
        "ready: ready",
    ],
    "sessions.py": [
        "tools offered: order_status, cancel_order, clarify",
        "status: awaiting_approval",
        "asked: Please confirm: cancel order '#W1'. Reply yes or no.",
        "stored: user=ava tenant=acme scopes=['orders']",
        "deps built so far: []",
        "olga: idle, deps built: ['acme']",
        "acme cancelled: ['#W1'], refunded: []",
        "ava at the same time: SessionConflict: session SESSION already has a turn in progress "
        "in this process (a second send, decide or resume came while one ran); wait for it to "
        "finish",
        "refund refused: not executed: this user may not use refund (it needs: refunds). Tell "
        "them it is not available to them.",
        "ava, later: ApprovalError: approval SESSION.4 was already approved by olga; nothing was "
        "run",
        "AccessDenied: this session belongs to user 'ava'; a call as user 'mallory' cannot act on "
        "it",
        "bo: Order #W2 is pending. deps built: ['acme', 'globex']",
        "deps closed: acme 1x, globex 1x",
        "after aclose: ShuttingDown: the runtime is shutting down and takes no new turns; retry "
        "on another replica, or after it restarts",
    ],
    "testing_your_agent.py": [
        "ok test_answers_from_the_tool_result",
        "ok test_an_agent_that_calls_its_model_once_too_often_fails",
        "ok test_every_order_gets_its_own_status #W2 delivered",
        "ok test_with_the_plugin_fixtures",
        "7 passed",
    ],
}


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("TETHER_DATABASE_URL", None)
    env["TETHER_HOME"] = str(tmp_path / "tether-home")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    return env


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", *args],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_example_has_expectations() -> None:
    found = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert found == sorted(EXPECTED), "add the new example's promised output to EXPECTED"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_prints_what_it_promises(name: str, tmp_path: Path) -> None:
    proc = _run([f"docs/examples/{name}"], tmp_path)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    for line in EXPECTED[name]:
        assert line in lines, f"{name} did not print {line!r}; it printed:\n{proc.stdout}"
    assert not (tmp_path / "tether-home").exists(), f"{name} wrote to TETHER_HOME"


def test_testing_example_passes_under_pytest(tmp_path: Path) -> None:
    proc = _run(
        ["-m", "pytest", "docs/examples/testing_your_agent.py", "-q", "-p", "no:cacheprovider"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "7 passed" in proc.stdout
