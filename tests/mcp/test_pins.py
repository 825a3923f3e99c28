"""Pinned MCP tool definitions, against the real shop server on the SQL store (SQLite).

Each runtime starts ``servers/shop.py`` afresh; ``SHOP_VARIANT`` makes it list
a changed description, a changed schema, a new tool, or an injected
description. The first listing is trusted; what changes later is hidden from
the model, reported (event and alert) once, and offered again once accepted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.mcp.helpers import no_approvals, shop_agent, stdio_shop
from tether import EventType, Runtime, SessionStatus
from tether.runtime.observe import Observer
from tether.runtime.pins import PinState, QuarantineReason, ToolPin, definition_hash, review
from tether.store import SQLStore
from tether.surfaces.cli import app
from tether.surfaces.ops import Alerter
from tether.surfaces.ops.alerts import Alert, AlertKind, Severity
from tether.testing import ScriptedModel, call

CHANGED = EventType.TOOL_DEFINITION_CHANGED


class Recording:
    def __init__(self) -> None:
        self.sent: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.sent.append(alert)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pins.sqlite'}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SQLStore]:
    s = await SQLStore.open(db_url)
    try:
        yield s
    finally:
        await s.aclose()


async def turn(
    store: SQLStore,
    env: dict[str, str],
    variant: str,
    script: Sequence[Any],
    observers: Sequence[Observer] = (),
) -> tuple[Any, ScriptedModel]:
    """One turn of the shop agent in a fresh runtime (and server) listing ``variant``."""
    model = ScriptedModel(list(script))
    server = stdio_shop({**env, "SHOP_VARIANT": variant}, trust=True)
    agent = shop_agent(model, server, approval=no_approvals())
    async with Runtime(store=store, close_store=False, observers=observers) as rt:
        result = await rt.run(agent, "hi")
    return result, model


def offered(model: ScriptedModel, request: int = 0) -> set[str]:
    return {t.name for t in model.requests[request].tools}


def seen(model: ScriptedModel, request: int = 1) -> str:
    (result,) = model.requests[request].messages[-1].results
    return str(result.content)


def changes(result: Any) -> list[dict[str, Any]]:
    return [e.data for e in result.events if e.type == CHANGED]


@pytest.mark.parametrize(
    ("variant", "tool", "reason", "answer"),
    [
        ("description", "lookup_order", "changed", "order W1: shipped"),
        ("schema", "lookup_order", "changed", "order W1: shipped"),
        ("new", "cancel_order", "new", "cancelled W1"),
    ],
)
async def test_a_changed_or_new_tool_is_quarantined_until_accepted(
    store: SQLStore, shop_env: dict[str, str], variant: str, tool: str, reason: str, answer: str
) -> None:
    # first connection: every tool trusted on first use
    first, model = await turn(store, shop_env, "", ["Hello."])
    assert changes(first) == []
    assert {"lookup_order", "refund", "note"} <= offered(model)
    pins = await store.tool_pins.pins("shop", "1")
    assert pins
    assert all(p.state == PinState.ACCEPTED and p.decided_by is None for p in pins)

    # the server changed: the tool is hidden, reported in the session and alerted
    sink = Recording()
    alerter = Alerter([sink])
    second, model = await turn(
        store, shop_env, variant, [call(tool, order_id="W1"), "I cannot."], [alerter]
    )
    await alerter.aclose()
    assert tool not in offered(model)
    assert {"refund", "note"} <= offered(model)  # the others are untouched
    assert "there is no tool named" in seen(model)
    assert second.output == "I cannot."
    (data,) = changes(second)
    assert (data["server"], data["tool"], data["reason"]) == ("shop", tool, reason)
    assert data["new_hash"] != data["old_hash"]
    if reason == "changed":
        assert data["old_hash"] == next(p.hash for p in pins if p.tool == tool)
    else:
        assert data["old_hash"] is None
    if variant == "description":
        assert data["diff"]["description"]["new"].startswith("Look up an order's status and")
        assert "inputSchema" not in data["diff"]
    elif variant == "schema":
        assert data["diff"]["inputSchema"]["added"] == ["with_items"]
        assert "description" not in data["diff"]
    stored = [e.data for e in await store.events(second.session_id) if e.type == CHANGED]
    assert stored == [data]
    (alert,) = sink.sent
    assert (alert.kind, alert.severity) == (AlertKind.TOOL_CHANGED, Severity.WARNING)
    assert alert.details["tool"] == tool
    assert f"tether tools accept shop --version 1 --server shop --tool {tool}" in alert.summary

    # seen again before anyone accepted it: still hidden, not reported twice
    third, model = await turn(store, shop_env, variant, [call(tool, order_id="W1"), "No."])
    assert tool not in offered(model)
    assert changes(third) == []

    # accepted: offered and called
    (ok,) = await store.tool_pins.accept("shop", "1", server="shop", by="ops", at=1.0)
    assert (ok.tool, ok.state, ok.decided_by, ok.hash) == (
        tool,
        PinState.ACCEPTED,
        "ops",
        data["new_hash"],
    )
    fourth, model = await turn(store, shop_env, variant, [call(tool, order_id="W1"), "Done."])
    assert tool in offered(model)
    assert seen(model) == answer
    assert changes(fourth) == []
    assert fourth.status == SessionStatus.IDLE


async def test_an_injected_description_is_quarantined_at_first_sight(
    store: SQLStore, shop_env: dict[str, str]
) -> None:
    result, model = await turn(store, shop_env, "injection", [call("note", text="x"), "No."])
    assert "note" not in offered(model)
    assert "lookup_order" in offered(model)  # trusted on first use
    assert "there is no tool named" in seen(model)
    (data,) = changes(result)
    assert (data["tool"], data["reason"], data["old_hash"]) == ("note", "injection", None)
    assert "Ignore previous instructions" in data["diff"]["description"]["new"]
    (pin,) = [p for p in await store.tool_pins.pins("shop") if p.tool == "note"]
    assert (pin.state, pin.reason, pin.hash) == (PinState.QUARANTINED, "injection", None)


async def test_pins_are_kept_per_agent_version(store: SQLStore, shop_env: dict[str, str]) -> None:
    await turn(store, shop_env, "", ["Hello."])
    model = ScriptedModel(["Hello."])
    server = stdio_shop({**shop_env, "SHOP_VARIANT": "new"}, trust=True)
    agent = shop_agent(model, server, version="2")
    async with Runtime(store=store, close_store=False) as rt:
        result = await rt.run(agent, "hi")
    assert "cancel_order" in offered(model)  # version 2's first listing: trusted
    assert changes(result) == []
    assert {p.version for p in await store.tool_pins.pins("shop")} == {"1", "2"}


def _quarantined(tool: str) -> ToolPin:
    old = {"name": tool, "description": "Old.", "inputSchema": {"type": "object"}}
    new = {**old, "description": "New."}
    return ToolPin(
        agent="shop",
        version="1",
        server="shop",
        tool=tool,
        state=PinState.QUARANTINED,
        first_seen=0.0,
        hash=definition_hash(old),
        definition=old,
        pending_hash=definition_hash(new),
        pending_definition=new,
        reason=QuarantineReason.CHANGED,
    )


def test_cli_lists_pins_and_accepts(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def setup() -> None:
        s = await SQLStore.open(db_url)
        try:
            await s.tool_pins.record([_quarantined("lookup_order"), _quarantined("refund")])
        finally:
            await s.aclose()

    asyncio.run(setup())
    monkeypatch.setenv("TETHER_DEPLOYED_BY", "alice")
    runner = CliRunner()
    listed = runner.invoke(app, ["tools", "pins", "shop", "--db", db_url, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["tool"], r["state"], r["reason"]) for r in rows] == [
        ("lookup_order", "quarantined", "changed"),
        ("refund", "quarantined", "changed"),
    ]
    assert rows[0]["diff"]["description"] == {"old": "Old.", "new": "New."}
    table = runner.invoke(app, ["tools", "pins", "shop", "--db", db_url])
    assert table.exit_code == 0, table.output
    assert "quarantined" in table.stdout
    assert "description" in table.stdout

    one = runner.invoke(app, ["tools", "accept", "shop", "--db", db_url, "--tool", "refund"])
    assert one.exit_code == 0, one.output
    assert "accepted 1 shop/refund" in one.stdout
    assert "alice" in one.stdout
    rest = runner.invoke(app, ["tools", "accept", "shop", "--db", db_url, "--version", "1"])
    assert rest.exit_code == 0, rest.output
    assert "shop/lookup_order" in rest.stdout
    none = runner.invoke(app, ["tools", "accept", "shop", "--db", db_url])
    assert none.exit_code == 1
    assert "nothing to accept" in none.output

    after = json.loads(
        runner.invoke(app, ["tools", "pins", "shop", "--db", db_url, "--json"]).stdout
    )
    assert {(r["state"], r["decided_by"]) for r in after} == {("accepted", "alice")}
    assert after[0]["hash"] == _quarantined("lookup_order").pending_hash


def test_review_offers_a_tool_again_when_the_server_goes_back() -> None:
    old = {"name": "t", "description": "Old.", "inputSchema": {"type": "object"}}
    new = {**old, "description": "New."}
    first = review("a", "1", "s", {"t": old}, {}, flagged=lambda _: False, now=0.0)
    assert first.visible == {"t"}
    pinned = {p.tool: p for p in first.record}
    changed = review("a", "1", "s", {"t": new}, pinned, flagged=lambda _: False, now=1.0)
    assert changed.visible == frozenset()
    assert [q.reason for q in changed.quarantined] == [QuarantineReason.CHANGED]
    pinned = {p.tool: p for p in changed.record}
    back = review("a", "1", "s", {"t": dict(reversed(old.items()))}, pinned, flagged=bool, now=2.0)
    assert back.visible == {"t"}  # key order does not change the hash
    assert back.quarantined == ()
    assert [p.state for p in back.record] == [PinState.ACCEPTED]
