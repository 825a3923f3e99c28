"""``tether approvals approve/deny`` continue a session on the models it ran on.

By default the session's own chain (``session.created`` records it) is built
again, so a session started with ``--model local`` is decided on ``local``
without a flag; ``--model`` overrides it. A chain that cannot run (no API
key) is refused before anything is recorded: the session still waits, and
can be decided later.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tether.providers.local
from tests.surfaces import cli_agent
from tether.runtime import Runtime
from tether.store import open_store
from tether.surfaces.cli import app
from tether.testing import FunctionModel

AGENT = "tests.surfaces.cli_agent:agent"  # its own chain: one scripted model, "scripted-cli"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    return f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}"


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> list[FunctionModel]:
    """The spec ``local`` builds the CLI test agent's scripted model; every one built."""
    built: list[FunctionModel] = []

    def make(path: str | None = None, **_: Any) -> FunctionModel:
        built.append(FunctionModel(cli_agent.reply, name="local"))
        return built[-1]

    monkeypatch.setattr(tether.providers.local, "LocalModel", make)
    return built


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def waiting(db: str) -> list[dict[str, Any]]:
    code, out, _ = invoke("approvals", "list", "--json", "--db", db)
    assert code == 0
    pending: list[dict[str, Any]] = json.loads(out)
    return pending


def session_status(db: str, session_id: str) -> str:
    code, out, _ = invoke("sessions", "show", session_id, "--json", "--db", db)
    assert code == 0
    return str(json.loads(out)["session"]["status"])


def started_on(db: str, model_name: str) -> str:
    """A session of the CLI test agent that ran on a model named ``model_name`` (a
    scripted stand-in) and waits for approval of ``cancel order #W7``; its id."""

    async def go() -> str:
        agent = cli_agent.agent.with_models([FunctionModel(cli_agent.reply, name=model_name)])
        async with Runtime(store=await open_store(db)) as rt:
            session = rt.session(agent)
            result = await session.send("please cancel my order", metadata={"agent_ref": AGENT})
            assert result.status == "awaiting_approval"
            return session.id

    return asyncio.run(go())


def test_a_chain_without_its_key_is_one_line_exit_2_and_the_session_still_waits(
    db: str, local: list[FunctionModel]
) -> None:
    sid = started_on(db, "anthropic:claude-haiku-4-5")
    (pending,) = waiting(db)
    cli_agent.CANCELLED.clear()

    for decide in ("approve", "deny"):
        code, out, err = invoke("approvals", decide, pending["id"], "--db", db)
        assert code == 2
        assert out == ""
        text = " ".join(err.split())  # rich wraps long lines
        assert text.count("error:") == 1
        assert "Traceback" not in err
        assert "anthropic:claude-haiku-4-5 needs an API key: set ANTHROPIC_API_KEY" in text
        assert f"Nothing was run: approval {pending['id']} still waits" in text
        assert "--model" in text
        # as it was: waiting for the same approval, never 'running'
        assert session_status(db, sid) == "awaiting_approval"
        assert waiting(db) == [pending]
    assert cli_agent.CANCELLED == []

    # decidable later, on another chain
    code, out, err = invoke("approvals", "approve", pending["id"], "--model", "local", "--db", db)
    assert code == 0, err
    assert "#W7 cancelled" in out
    assert cli_agent.CANCELLED == ["#W7"]
    assert session_status(db, sid) == "idle"
    assert len(local) == 1
    cli_agent.CANCELLED.clear()


def test_the_recorded_chain_is_used_without_model_and_model_overrides_it(
    db: str, local: list[FunctionModel]
) -> None:
    code, out, _ = invoke(
        "run", AGENT, "-m", "please cancel my order", "--model", "local", "--json", "--db", db
    )
    assert code == 0
    sid = json.loads(out)["session_id"]
    code, out, _ = invoke("sessions", "show", sid, "--json", "--db", db)
    assert json.loads(out)["events"][0]["data"]["models"] == ["local"]
    (pending,) = waiting(db)
    built = len(local)

    # --model wins over the recorded chain (here: one with no key, refused)
    code, _, err = invoke(
        "approvals", "deny", pending["id"], "--model", "openai:gpt-4.1-mini", "--db", db
    )
    assert code == 2
    assert "OPENAI_API_KEY" in " ".join(err.split())
    code, _, err = invoke("approvals", "deny", pending["id"], "--model", "bogus:x", "--db", db)
    assert code == 2
    assert "unknown model spec 'bogus:x'" in " ".join(err.split())
    assert waiting(db) == [pending]
    assert len(local) == built

    # no flag: the recorded "local", not the agent's own scripted model
    code, out, err = invoke("approvals", "deny", pending["id"], "--reason", "not now", "--db", db)
    assert code == 0, err
    assert len(local) == built + 1
    assert local[-1].requests  # the continuation ran on it
    told = " ".join(out.split())
    assert "the user declined cancel order" in told
    assert "#W7" in told
    assert "(not now)" in told
    assert session_status(db, sid) == "idle"


def test_a_chain_that_is_not_specs_falls_back_to_the_agents_own(
    db: str, local: list[FunctionModel]
) -> None:
    # "scripted-cli" names a model object, not a spec: the agent's own chain is used
    code, out, _ = invoke("run", AGENT, "-m", "please cancel my order", "--json", "--db", db)
    assert json.loads(out)["status"] == "awaiting_approval"
    (pending,) = waiting(db)
    cli_agent.CANCELLED.clear()
    code, out, err = invoke("approvals", "approve", pending["id"], "--db", db)
    assert code == 0, err
    assert "#W7 cancelled" in out
    assert local == []
    cli_agent.CANCELLED.clear()


def test_approvals_list_json_carries_provenance(tmp_path: Path) -> None:
    from tether.surfaces.cli.app import app

    db = f"sqlite:///{tmp_path / 't.db'}"
    runner = CliRunner()
    agent = "tests.surfaces.cli_agent:planted_agent"
    ran = runner.invoke(app, ["run", agent, "-m", "what does note n1 say?", "--db", db])
    assert ran.exit_code == 0, ran.output
    listed = runner.invoke(app, ["approvals", "list", "--json", "--db", db])
    assert listed.exit_code == 0, listed.output
    (pending,) = json.loads(listed.output)
    assert pending["tainted"] == ["read_note"]
    assert [f["value"] for f in pending["flagged"]] == ["#W-PLANTED-991"]
    assert "read_note" in pending["warning"]
