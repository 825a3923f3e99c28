"""`tether keys` and `tether health` (the server's commands; `tether serve` itself runs in
tests/server through real processes)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.store import KeyStore, open_store
from tether.surfaces.cli import app


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


async def _authenticate(db: str, token: str) -> object:
    store = await open_store(db)
    try:
        return await KeyStore(store).authenticate(token)
    finally:
        await store.aclose()


def test_keys_create_prints_a_key_once_that_authenticates_as_its_principal(db: str) -> None:
    code, out, _ = invoke(
        "keys", "create", "--user", "ops1", "--tenant", "acme", "--role", "approver",
        "--scope", "orders", "--db", db,
    )  # fmt: skip
    assert code == 0
    token = out.strip().splitlines()[0]
    assert token.startswith("tk_")
    key = asyncio.run(_authenticate(db, token))
    assert key is not None
    p = key.principal  # type: ignore[attr-defined]
    assert (p.user, p.tenant, p.roles, p.scopes) == (
        "ops1", "acme", frozenset({"approver"}), frozenset({"orders"}),
    )  # fmt: skip
    # the secret is not stored: listing shows the id and principal, never the token
    code, out, _ = invoke("keys", "list", "--json", "--db", db)
    assert code == 0
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["user"] == "ops1"
    assert row["roles"] == ["approver"]
    assert token.split("_")[2] not in out


def test_a_revoked_key_no_longer_authenticates(db: str) -> None:
    _code, out, _ = invoke("keys", "create", "--user", "u1", "--db", db)
    token = out.strip().splitlines()[0]
    key_id = token.split("_")[1]
    assert invoke("keys", "revoke", key_id, "--db", db)[0] == 0
    assert asyncio.run(_authenticate(db, token)) is None
    code, _out, err = invoke("keys", "revoke", key_id, "--db", db)  # already revoked
    assert code == 1
    assert "no live key" in err
    code, out, _ = invoke("keys", "list", "--all", "--json", "--db", db)
    assert json.loads(out.splitlines()[0])["revoked_at"] is not None


def test_an_unknown_role_is_refused_and_nothing_is_stored(db: str) -> None:
    code, _out, err = invoke("keys", "create", "--user", "u1", "--role", "root", "--db", db)
    assert code == 2
    assert "unknown role" in err
    _code, out, _ = invoke("keys", "list", "--json", "--db", db)
    assert out.strip() == ""


def test_health_asks_the_model_chain_and_says_ready() -> None:
    code, out, _ = invoke("health", "tests.server.agents:retail", "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["ok"] is True
    assert result["model"] == "local-scripted"


def test_health_fails_when_the_model_chain_is_down() -> None:
    # every call to this agent's only model fails as a provider outage does
    code, out, _err = invoke("health", "tests.surfaces.test_cli_serve:down", "--json")
    assert code == 1
    result = json.loads(out)
    assert result["ok"] is False
    assert result["detail"]


def test_health_shows_a_providers_words_escaped() -> None:
    code, out, _err = invoke("health", "tests.surfaces.test_cli_serve:down")
    assert code == 1
    assert "NOT READY" in out
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "\\x1b" in out  # shown, as an escape


def _down(_request: object) -> str:
    from tether import ProviderError

    # a provider's error may quote anything, terminal escapes included
    raise ProviderError("the provider is down (503) \x1b[2J\u202e", status=503, retryable=True)


def _make_down() -> object:
    from tether import Agent
    from tether.testing import FunctionModel

    return Agent(name="down", instructions="x", models=(FunctionModel(_down, name="down"),))


down = _make_down()


def test_serve_refuses_in_one_line_when_the_store_is_unreachable() -> None:
    code, _out, err = invoke(
        "serve", "tests.server.agents:retail", "--db", "postgresql+asyncpg://x@127.0.0.1:1/x"
    )
    assert code == 1
    assert err.startswith("error: store open failed")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3  # one message (wrapped), not a stack
