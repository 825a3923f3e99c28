"""The CLI end to end: run, sessions list/show, resume, and its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.surfaces.cli import app

AGENT = "tests.surfaces.cli_agent:agent"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_run_json_then_list_and_show(db: str) -> None:
    code, out, _ = invoke(
        "run", AGENT, "-m", "where is my order?", "--user", "u1", "--tenant", "acme", "--json",
        "--db", db,
    )  # fmt: skip
    assert code == 0
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["status"] == "idle"
    assert payload["output"] == 'Order status: {"order_id":"#W7","status":"shipped"}'
    assert payload["tool_calls"] == [{"name": "order_status", "arguments": {"order_id": "#W7"}}]
    assert payload["cost"] == 0.0  # a scripted model is free
    assert payload["stop_reason"] is None
    sid = payload["session_id"]

    code, out, _ = invoke("sessions", "list", "--json", "--db", db)
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [sid]
    assert rows[0]["step"] == 2
    assert (rows[0]["user_id"], rows[0]["tenant_id"], rows[0]["cost"]) == ("u1", "acme", 0.0)

    code, out, _ = invoke("sessions", "show", sid, "--json", "--db", db)
    events = json.loads(out)["events"]
    assert [e["type"] for e in events] == [
        "session.created",
        "message.user",
        "model.response",
        "tool.started",
        "tool.finished",
        "model.response",
        "turn.completed",
    ]
    assert events[0]["data"]["metadata"] == {"agent_ref": AGENT}

    code, out, _ = invoke("sessions", "show", sid, "--db", db)
    assert code == 0
    assert "order_status" in out
    assert "turn.completed" in out


def test_run_continues_a_session_and_prints_plain_answer(db: str) -> None:
    code, out, _ = invoke("run", AGENT, "-m", "hello", "--json", "--db", db)
    sid = json.loads(out)["session_id"]
    code, out, err = invoke("run", AGENT, "-m", "again", "--session", sid, "--db", db)
    assert code == 0
    assert out.strip() == "You said: again"
    assert sid in err


def test_failed_turn_exits_1_and_resume_recovers(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_AGENT_DOWN", "1")
    code, out, _ = invoke("run", AGENT, "-m", "outage please", "--json", "--db", db)
    assert code == 1
    payload = json.loads(out)
    assert payload["status"] == "failed"
    assert "503 from upstream" in payload["error"]
    monkeypatch.setenv("CLI_AGENT_DOWN", "0")
    code, out, _ = invoke("resume", payload["session_id"], "--json", "--db", db)
    assert code == 0
    assert json.loads(out)["output"] == "You said: outage please"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "no_such_module:agent", "-m", "hi"), "cannot import 'no_such_module'"),
        (("run", "tests.surfaces.cli_agent:nope", "-m", "hi"), "has no attribute 'nope'"),
        (("run", "not-a-ref", "-m", "hi"), "neither a folder nor 'module:attribute'"),
        (("run", AGENT, "-m", "   "), "the message is empty"),
        (("run", AGENT, "-m", "hi", "--model", "bogus:x"), "unknown model spec 'bogus:x'"),
        (("sessions", "show", "deadbeef"), "no session with id 'deadbeef'"),
        (("resume", "deadbeef"), "no session with id 'deadbeef'"),
    ],
)
def test_errors_are_one_actionable_line(db: str, args: tuple[str, ...], message: str) -> None:
    code, _, err = invoke(*args, "--db", db)
    assert code in (1, 2)
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_breakers_are_shared_through_redis_when_the_url_is_set(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.services import redis_url, require_redis

    require_redis()
    monkeypatch.setenv("TETHER_REDIS_URL", redis_url())
    code, out, _ = invoke("run", AGENT, "-m", "where is my order?", "--json", "--db", db)
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1])["status"] == "idle"
    # an unreachable Redis is a clear error before anything runs, password not shown
    monkeypatch.setenv("TETHER_REDIS_URL", "redis://:s3cret-pw@127.0.0.1:1/0")
    code, out, err = invoke("run", AGENT, "-m", "hello", "--db", db)
    assert code == 1
    assert "TETHER_REDIS_URL" in err
    assert "s3cret-pw" not in err + out


def test_approvals_list_deny_and_approve(db: str) -> None:
    code, out, _ = invoke("run", AGENT, "-m", "please cancel my order", "--json", "--db", db)
    assert code == 0
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["status"] == "awaiting_approval"
    assert payload["output"] == "Please confirm: cancel order '#W7'. Reply yes or no."

    code, out, _ = invoke("approvals", "list", "--json", "--db", db)
    assert code == 0
    (pending,) = json.loads(out)
    assert (pending["tool"], pending["summary"]) == ("cancel_order", "cancel order '#W7'")
    assert pending["session_id"] == payload["session_id"]

    code, out, err = invoke(
        "approvals", "deny", pending["id"], "--reason", "changed my mind", "--db", db
    )
    assert code == 0
    assert "declined" in out  # the model was told, and said so
    assert "cancel order '#W7' (changed my mind)" in out
    code, out, _ = invoke("approvals", "list", "--db", db)
    assert "nothing is waiting for approval" in out

    # a new request, approved from the CLI: it runs once
    code, out, _ = invoke(
        "run",
        AGENT,
        "-m",
        "cancel it after all",
        "--session",
        payload["session_id"],
        "--json",
        "--db",
        db,
    )
    again = json.loads(out.strip().splitlines()[-1])
    assert again["status"] == "awaiting_approval"
    code, out, _ = invoke("approvals", "list", "--json", "--db", db)
    (second,) = json.loads(out)
    assert second["id"] != pending["id"]
    code, out, _ = invoke("approvals", "approve", second["id"], "--by", "ada", "--db", db)
    assert code == 0
    assert "#W7 cancelled" in out
    # an approval id that is not pending any more is refused with a clear error
    code, _, err = invoke("approvals", "approve", second["id"], "--db", db)
    assert code == 1
    assert "was already approved by ada" in " ".join(err.split())  # rich wraps long lines
    code, _, err = invoke("approvals", "approve", "not-an-id", "--db", db)
    assert code == 2
    assert "is not an approval id" in err


SCOPED = "tests.surfaces.cli_agent:scoped_agent"


def test_run_as_a_scoped_user_records_the_principal_and_withholds_other_tools(db: str) -> None:
    args = ("--user", "u1", "--tenant", "acme", "--json", "--db", db)
    code, out, _ = invoke("run", SCOPED, "-m", "where is #W7?", "--scope", "billing", *args)
    payload = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    # the model asked for order_lookup anyway: refused, not run, and it says why
    assert "may not use order_lookup" in payload["output"]
    code, out, _ = invoke("sessions", "show", payload["session_id"], "--json", "--db", db)
    created = json.loads(out)["events"][0]["data"]
    assert created["principal"] == {
        "user": "u1",
        "tenant": "acme",
        "roles": [],
        "scopes": ["billing"],
    }
    # the same user holding the scope gets the answer
    code, out, _ = invoke("run", SCOPED, "-m", "where is #W7?", "--scope", "orders", *args)
    assert json.loads(out.strip().splitlines()[-1])["output"].startswith("Result: {")
    # a later message cannot widen the session's scopes
    sid = payload["session_id"]
    more = ("--session", sid, "--scope", "orders", "--scope", "billing")
    code, out, _ = invoke("run", SCOPED, "-m", "and now?", *more, *args)
    assert "may not use order_lookup" in json.loads(out.strip().splitlines()[-1])["output"]


def test_ctrl_c_says_how_to_resume_and_the_session_resumes(db: str, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    marker = tmp_path / "started"
    tether_cli = Path(sys.executable).parent / "tether"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(repo)])}
    proc = subprocess.Popen(
        [str(tether_cli), "run", SCOPED, "-m", f"slow {marker}", "--db", db],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():  # the turn is inside its tool
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the tool never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    flat = " ".join(err.split())
    assert "interrupted: session" in flat
    sid = flat.split("interrupted: session ", 1)[1].split()[0]
    assert f"tether resume {sid}" in flat
    # the interrupted turn stopped in its tool, committed: resume finishes it
    code, out, _ = invoke("sessions", "show", sid, "--json", "--db", db)
    assert json.loads(out)["session"]["status"] == "running"
    code, out, _ = invoke("resume", sid, "--json", "--db", db)
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["output"] == "Result: found it"


def test_ctrl_c_at_the_chat_prompt_exits_at_once(db: str) -> None:
    """The prompt reads on a daemon thread: Ctrl-C does not wait for a line nobody types."""
    import os
    import signal
    import subprocess
    import sys
    import time

    tether_cli = Path(sys.executable).parent / "tether"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(repo)])}
    proc = subprocess.Popen(
        [str(tether_cli), "chat", AGENT, "--db", db],
        cwd=repo,
        env=env,
        stdin=subprocess.PIPE,  # kept open: the prompt waits for a line
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write("where is my order?\n")
        proc.stdin.flush()
        answered = ""
        deadline = time.monotonic() + 30
        while "agent>" not in answered:  # the turn ran; the next prompt is waiting
            assert time.monotonic() < deadline, answered
            answered += proc.stdout.readline()
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)  # not 'forever, until stdin closes'
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    flat = " ".join(err.split())
    assert "interrupted: session" in flat
    assert "--session" in flat
    assert "Traceback" not in err
