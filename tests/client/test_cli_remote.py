"""The CLI's ``--server`` mode against scripted answers (httpx.MockTransport: the network edge).

The commands build their client in :func:`tether.surfaces.cli.remote.connect`;
here it gets a transport that answers from a script and keeps the requests.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.client.test_client_unit import (
    SID,
    Script,
    delta,
    event,
    frame,
    problem,
    sse,
    stored,
    turn,
)
from tether.client import Client
from tether.surfaces.cli import app, remote

URL = "http://tether.test"
EVIL = "\x1b[2J\u202eevil"  # clears the screen; turns the text around


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    holder = Script()

    def client(base_url: str, **kw: Any) -> Client:
        return Client(base_url, transport=holder.transport, sleep=lambda _s: None, **kw)

    monkeypatch.setattr(remote, "Client", client)
    monkeypatch.delenv("TETHER_SERVER", raising=False)
    monkeypatch.setenv("TETHER_API_KEY", "tk_env_key")
    return holder


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def summary(**over: Any) -> dict[str, Any]:
    return {
        "id": SID, "agent": "support", "version": "2", "status": "idle", "user": "u1",
        "tenant": "acme", "created_at": 1.7e9, "updated_at": 1.7e9 + 5, "step": 2, "cost": 0.01,
    } | over  # fmt: skip


def session_out(**over: Any) -> dict[str, Any]:
    return summary(usage={"input_tokens": 10, "output_tokens": 4}, last_seq=2) | over


def approval(mode: str = "user") -> dict[str, Any]:
    return {
        "id": f"{SID}.a1", "session_id": SID, "tool": "refund", "call_id": "c1",
        "summary": f"refund $20 to {EVIL}", "question": "ok?", "explanation": "asked",
        "mode": mode, "arguments": {"amount": 20}, "expires_at": 1.7e9 + 600,
        "warning": "", "flagged": [], "tainted": ["read_inbox"],
    }  # fmt: skip


def test_sessions_list_json_has_the_local_keys(script: Script) -> None:
    script.answers.append(httpx.Response(200, json={"items": [summary()], "next_cursor": None}))
    code, out, _ = invoke("sessions", "list", "--json", "--limit", "5", "--server", URL)
    assert code == 0
    (row,) = json.loads(out)
    assert row == {
        "id": SID, "agent": "support", "agent_version": "2", "user_id": "u1", "status": "idle",
        "created_at": 1.7e9, "updated_at": 1.7e9 + 5, "step": 2, "last_error": None,
        "cost": 0.01, "tenant_id": "acme",
    }  # fmt: skip
    (req,) = script.requests
    assert (req.url.path, req.url.params["limit"]) == ("/v1/sessions", "5")
    assert req.headers["authorization"] == "Bearer tk_env_key"


def test_sessions_show_escapes_what_the_server_relays(script: Script) -> None:
    script.answers += [
        httpx.Response(200, json=session_out(id=SID, last_error=EVIL)),
        httpx.Response(200, json={"items": [event(1, "message.user", text=EVIL)], "next_after": 1}),
        httpx.Response(
            200, json={"items": [event(2, "turn.completed", output="ok")], "next_after": None}
        ),
    ]
    code, out, _ = invoke("sessions", "show", SID, "--server", URL)
    assert code == 0
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "\\x1b[2J" in out
    assert [r.url.params.get("after") for r in script.requests[1:]] == ["0", "1"]


def test_sessions_show_json_is_the_local_shape(script: Script) -> None:
    script.answers += [
        httpx.Response(200, json=session_out()),
        httpx.Response(
            200, json={"items": [event(1, "message.user", text="hi")], "next_after": None}
        ),
    ]
    code, out, _ = invoke("sessions", "show", SID, "--json", "--server", URL)
    assert code == 0
    payload = json.loads(out)
    assert payload["session"]["event_count"] == 2
    assert payload["session"]["usage"]["input_tokens"] == 10
    assert payload["events"] == [
        {"type": "message.user", "session_id": SID, "step": 1, "time": 1.0, "seq": 1,
         "data": {"text": "hi"}}
    ]  # fmt: skip


def test_approvals_list(script: Script) -> None:
    script.answers.append(httpx.Response(200, json={"items": [approval()]}))
    code, out, _ = invoke("approvals", "list", "--json", "--server", URL)
    assert code == 0
    (row,) = json.loads(out)
    assert list(row) == list(remote._APPROVAL_KEYS)
    assert row["summary"] == f"refund $20 to {EVIL}"  # JSON escapes it: \u001b, \u202e
    assert "\x1b" not in out

    script.answers.append(httpx.Response(200, json={"items": [approval()]}))
    code, out, _ = invoke("approvals", "list", "--server", URL)
    assert code == 0
    assert "refund" in out
    assert "\x1b" not in out


def test_approve_streams_the_continuation(script: Script) -> None:
    script.answers.append(
        sse(*stored(5), delta("Refunded."), frame("turn.end", turn(output="Refunded.")))
    )
    code, out, err = invoke("approvals", "approve", f"{SID}.a1", "--server", URL)
    assert code == 0
    assert "Refunded." in out
    assert f"session {SID} · idle" in err
    (req,) = script.requests
    assert req.url.path == f"/v1/approvals/{SID}.a1/decision"
    assert json.loads(req.content) == {"approve": True}


def test_deny_reports_the_servers_problem(script: Script) -> None:
    script.answers.append(problem(409, "invalid-state", "approval s1.a1 was already decided"))
    code, _, err = invoke("approvals", "deny", f"{SID}.a1", "--reason", "no", "--server", URL)
    assert code == 1
    assert "error: Nope: approval s1.a1 was already decided" in err


def test_local_only_options_are_refused_with_server(script: Script) -> None:
    code, _, err = invoke("approvals", "approve", "s1.a1", "--model", "local", "--server", URL)
    assert code == 2
    assert "--model cannot be used with --server" in err
    code, _, err = invoke("sessions", "list", "--server", "ftp://x")
    assert code == 2
    assert "--server" in err
    assert script.requests == []


def test_an_unreachable_server_is_one_line(script: Script) -> None:
    script.answers += [httpx.ConnectError("refused")] * 4
    code, _, err = invoke("sessions", "list", "--server", URL)
    assert code == 1
    assert "could not reach the Tether server at http://tether.test" in err
    assert "Traceback" not in err


def test_chat_asks_approvals_and_questions_and_answers_through_the_api(script: Script) -> None:
    agents = {"items": [{"name": "support", "version": "2", "description": "", "tools": []}]}
    waiting = frame("approval.requested", event(3, "approval.requested",
                    approval_id=f"{SID}.a1", summary="refund $20", mode="user"), 3)  # fmt: skip
    asked = frame("clarify.asked", event(6, "clarify.asked", question="Which card?"), 6)
    script.answers += [
        httpx.Response(200, json=agents),
        httpx.Response(201, json=session_out()),
        sse(*stored(1, 2), waiting,
            frame("turn.end", turn("awaiting_approval", None, approval=approval()))),
        sse(*stored(4, 5), asked,
            frame("turn.end", turn("awaiting_user", None,
                                   question={"call_id": "c2", "question": "Which card?"}))),
        sse(*stored(7), delta("Done: "), delta(EVIL), frame("turn.end", turn(output="Done"))),
    ]  # fmt: skip
    code, out, err = invoke(
        "chat", "support", "--server", URL, input="refund me\nmaybe\nyes\nthe visa\n/exit\n"
    )
    assert code == 0, err
    assert "approve: refund $20 (yes/no)" in out
    assert "please answer yes or no" in out
    assert "Which card?" in out
    assert "\x1b" not in out
    assert f"session {SID}" in out
    assert script.lines() == [
        "GET /v1/agents",
        "POST /v1/sessions",
        f"POST /v1/sessions/{SID}/messages",
        f"POST /v1/approvals/{SID}.a1/decision",
        f"POST /v1/sessions/{SID}/answer",
    ]
    assert json.loads(script.requests[1].content) == {"agent": "support"}
    assert json.loads(script.requests[3].content) == {"approve": True}
    assert json.loads(script.requests[4].content) == {"text": "the visa"}


def test_chat_refuses_an_agent_the_server_does_not_serve(script: Script) -> None:
    agents = {"items": [{"name": "support", "version": "2", "description": "", "tools": []}]}
    script.answers.append(httpx.Response(200, json=agents))
    code, _, err = invoke("chat", "./agents/support", "--server", URL, input="")
    assert code == 2
    assert "serves no agent './agents/support' (it serves: support)" in err
