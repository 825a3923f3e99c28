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
    code, out, _ = invoke("run", AGENT, "-m", "where is my order?", "--json", "--db", db)
    assert code == 0
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["status"] == "idle"
    assert payload["output"] == 'Order status: {"order_id":"#W7","status":"shipped"}'
    assert payload["tool_calls"] == [{"name": "order_status", "arguments": {"order_id": "#W7"}}]
    sid = payload["session_id"]

    code, out, _ = invoke("sessions", "list", "--json", "--db", db)
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [sid]
    assert rows[0]["step"] == 2

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
    from tests.store.test_redis_breakers import redis_url, require_redis

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
