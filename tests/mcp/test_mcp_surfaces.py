"""`tether audit` and `tether tools test` on an agent with MCP servers (the real shop server)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tether
from tests.mcp.helpers import SHOP, calls, stdio_shop
from tether import Agent, mcp_server
from tether.runtime.pins import InMemoryToolPins, PinState, ToolPin, definition_hash
from tether.surfaces.audit import audit_live
from tether.surfaces.cli import app
from tether.surfaces.cli.app import out
from tether.surfaces.toolcheck import check_tools

SHOP_SERVER = mcp_server("stdio", name="shop", command=[sys.executable, SHOP])
GONE = mcp_server("stdio", name="gone", command=["/no/such/mcp-server"])


@tether.tool(reads=True, untrusted_output=False)
def greet(name: str) -> str:
    """Greet someone.

    Args:
        name: Who.
    """
    return f"hello {name}"


agent = Agent(name="shop", instructions="Help.", models=("scripted",), tools=(greet, SHOP_SERVER))
broken = Agent(name="shop", instructions="Help.", models=("scripted",), tools=(SHOP_SERVER, GONE))


async def hashes(env: dict[str, str]) -> dict[str, str]:
    """Each shop tool's pin hash, from a connection of its own."""
    conn = await stdio_shop(env).open()
    try:
        return {name: definition_hash(d) for name, d in conn.definitions().items()}
    finally:
        await conn.aclose()


def shop_with(server: tether.providers.mcp.McpServer) -> Agent:
    return Agent(name="shop", instructions="Help.", models=("scripted",), tools=(server,))


async def test_audit_lists_each_mcp_tool_with_its_server_hash_and_flags(
    shop_env: dict[str, str],
) -> None:
    report = await audit_live(shop_with(stdio_shop(shop_env)), pins=InMemoryToolPins())
    rows = {t.name: t for t in report.tools}
    assert {"lookup_order", "refund", "note", "stock"} <= set(rows)
    expected = await hashes(shop_env)
    for name in ("lookup_order", "refund"):
        assert rows[name].server == "shop"
        assert rows[name].hash == expected[name]
        assert rows[name].pin == "not pinned yet: accepted on first use"
    # destructive: approval always; read-only but from an untrusted server: approval still
    assert "irreversible" in rows["refund"].flags
    assert rows["refund"].approval == "always"
    assert "irreversible" in rows["lookup_order"].flags
    assert "reads" not in rows["lookup_order"].flags
    assert rows["lookup_order"].approval == "always"
    assert rows["lookup_order"].untrusted_output is True
    assert [s.to_dict() for s in report.servers] == [
        {"name": "shop", "tools": len(rows), "error": None}
    ]
    assert report.worst_unapproved == "Without anyone approving, it can do nothing"


async def test_a_trusted_servers_read_only_tool_is_the_worst_unapproved_act(
    shop_env: dict[str, str],
) -> None:
    report = await audit_live(shop_with(stdio_shop(shop_env, trust=True)))
    rows = {t.name: t for t in report.tools}
    assert rows["lookup_order"].flags == ["reads"]
    assert rows["lookup_order"].approval == "never"
    assert rows["lookup_order"].pin is None  # no pins given: not read
    assert rows["refund"].approval == "always"
    assert report.worst_unapproved.startswith("Without anyone approving, it can read data (")
    assert "lookup_order" in report.worst_unapproved
    assert "refund" not in report.worst_unapproved


async def test_audit_says_which_tools_the_pins_accept_or_quarantine(
    shop_env: dict[str, str],
) -> None:
    real = await hashes(shop_env)
    pins = InMemoryToolPins()

    def pin(tool: str, **kw: object) -> ToolPin:
        return ToolPin(agent="shop", version="1", server="shop", tool=tool, first_seen=0.0, **kw)  # type: ignore[arg-type]

    await pins.record(
        [
            pin("refund", state=PinState.ACCEPTED, hash=real["refund"]),
            pin("lookup_order", state=PinState.ACCEPTED, hash="0" * 64),
            pin(
                "note",
                state=PinState.QUARANTINED,
                hash="1" * 64,
                pending_hash=real["note"],
                reason="changed",
            ),
        ]
    )
    report = await audit_live(shop_with(stdio_shop(shop_env)), pins=pins)
    states = {t.name: t.pin for t in report.tools}
    assert states["refund"] == "accepted"
    assert states["lookup_order"] == "quarantined on the next turn (changed)"
    assert states["note"] == "quarantined (changed)"
    assert states["stock"] == "quarantined on the next turn (new)"


def test_the_cli_reports_an_unreachable_server_as_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TETHER_DATABASE_URL", raising=False)
    monkeypatch.setenv("TETHER_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(
        app, ["audit", "tests.mcp.test_mcp_surfaces:broken", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    servers = {s["name"]: s for s in data["servers"]}
    assert servers["shop"]["error"] is None
    assert servers["gone"]["tools"] == 0
    assert "/no/such/mcp-server" in servers["gone"]["error"]
    assert any(w.startswith("MCP server gone could not be reached") for w in data["warnings"])
    assert "not counting the tools of gone" in data["worst_without_approval"]
    assert data["pins_from"] is None  # the default store does not exist: not created
    assert not (tmp_path / "home").exists()
    first = data["tools"][0]
    assert (first["server"], first["pin"]) == ("shop", None)


def test_the_cli_table_shows_server_hash_and_pins_from_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(out, "width", 250)
    db = f"sqlite:///{tmp_path / 'pins.sqlite'}"
    result = CliRunner().invoke(
        app, ["audit", "tests.mcp.test_mcp_surfaces:broken", "--db", db], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "(unreachable)" in result.stdout
    assert "pins: --db" in result.stdout
    assert "not pinned yet" in result.stdout
    assert "! MCP server gone could not be reached" in result.stdout


async def test_tools_test_with_mcp_calls_the_real_servers_tools(
    shop_env: dict[str, str], calls_file: Path
) -> None:
    report = await check_tools(
        shop_with(stdio_shop(shop_env)),
        tools=["lookup_order", "stock"],
        examples=5,
        values={"sku": ["lamp"]},
        mcp=True,
    )
    rows = {t.name: t for t in report.tools}
    # the planted KeyError comes back from the server as isError: the tool saying no
    assert report.clean, report.to_dict()
    assert rows["stock"].refused > 0
    assert rows["stock"].ok > 0  # the known sku
    assert rows["lookup_order"].ok > 0
    assert rows["stock"].rejected > 0  # invalid arguments stop at the server's schema
    assert report.notes == []
    assert calls(calls_file) == []  # refund and crash were not called


def test_tools_test_without_mcp_skips_the_servers_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = tmp_path / "pids"
    monkeypatch.setenv("SHOP_PIDS", str(pids))
    result = CliRunner().invoke(
        app,
        ["tools", "test", "tests.mcp.test_mcp_surfaces:agent", "-n", "3", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [t["name"] for t in data["tools"]] == ["greet"]
    assert any("pass --mcp" in n and "shop" in n for n in data["notes"])
    assert not pids.exists()  # no server was started


def test_tools_test_cli_with_mcp_and_an_unreachable_server_fails() -> None:
    result = CliRunner().invoke(
        app,
        ["tools", "test", "tests.mcp.test_mcp_surfaces:broken", "--mcp", "-t", "stock"],
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    assert "MCP server 'gone' could not be opened" in result.output


def test_tools_test_cli_with_mcp_tests_one_server_tool() -> None:
    result = CliRunner().invoke(
        app,
        ["tools", "test", "tests.mcp.test_mcp_surfaces:agent", "--mcp", "-t", "stock", "-n", "3"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "stock" in result.stdout
    assert "clean:" in result.stdout
