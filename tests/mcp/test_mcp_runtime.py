"""MCP servers as toolsets, driven through real Runtime sessions against real servers.

Each test starts ``servers/shop.py`` as a subprocess (stdio, or streamable
HTTP under uvicorn) and scripts the model's calls.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.mcp.helpers import alive, calls, no_approvals, shop_agent, stdio_shop
from tether import BreakerPolicy, EventType, Runtime, SessionStatus, mcp_server
from tether.runtime import InMemoryStore
from tether.runtime.taint import marker_for
from tether.testing import ScriptedModel, call


def finished(result: object) -> list[dict[str, object]]:
    return [e.data for e in result.events if e.type == EventType.TOOL_FINISHED]  # type: ignore[attr-defined]


async def test_stdio_lists_and_calls(shop_env: dict[str, str]) -> None:
    model = ScriptedModel([call("lookup_order", order_id="W1"), "Order W1 has shipped."])
    agent = shop_agent(model, stdio_shop(shop_env, trust=True))
    async with Runtime() as rt:
        result = await rt.run(agent, "Where is W1?")
    assert result.status == SessionStatus.IDLE
    assert result.output == "Order W1 has shipped."
    offered = {t.name for t in model.requests[0].tools}
    assert {"lookup_order", "refund", "fetch_review", "note"} <= offered
    (seen,) = model.requests[1].messages[-1].results
    assert seen.content == "order W1: shipped"  # trusted and closed-world: not wrapped
    assert not seen.is_error


async def test_http_lists_and_calls(http_url: str) -> None:
    model = ScriptedModel([call("lookup_order", order_id="W2"), "Shipped."])
    server = mcp_server("http", name="shop", url=http_url, trust=True)
    async with Runtime() as rt:
        result = await rt.run(shop_agent(model, server), "Where is W2?")
    assert result.output == "Shipped."
    assert model.requests[1].messages[-1].results[0].content == "order W2: shipped"


async def test_http_with_headers(http_url: str) -> None:
    model = ScriptedModel([call("lookup_order", order_id="W3"), "Shipped."])
    server = mcp_server("http", name="shop", url=http_url, headers={"X-Api": "k"}, trust=True)
    async with Runtime() as rt:
        await rt.run(shop_agent(model, server), "Where is W3?")
    assert model.requests[1].messages[-1].results[0].content == "order W3: shipped"


async def test_destructive_tool_stops_for_approval(
    shop_env: dict[str, str], calls_file: Path
) -> None:
    model = ScriptedModel([call("refund", order_id="W1", amount=5.0), "Refunded."])
    agent = shop_agent(model, stdio_shop(shop_env, trust=True))
    async with Runtime() as rt:
        first = await rt.run(agent, "Refund W1")
        assert first.status == SessionStatus.AWAITING_APPROVAL
        assert calls(calls_file) == []  # not run yet
        assert first.approval is not None
        done = await rt.decide(agent, first.session_id, first.approval.id, approve=True, by="u")
    assert done.output == "Refunded."
    assert calls(calls_file) == ["refund"]
    assert finished(done)[-1]["content"] == "refunded 5.00 on W1"


async def test_a_tool_without_annotations_asks(shop_env: dict[str, str]) -> None:
    model = ScriptedModel([call("note", text="hi"), "Done."])
    async with Runtime() as rt:
        result = await rt.run(shop_agent(model, stdio_shop(shop_env, trust=True)), "Note hi")
    assert result.status == SessionStatus.AWAITING_APPROVAL


async def test_read_only_hint_of_an_untrusted_server_still_asks(shop_env: dict[str, str]) -> None:
    model = ScriptedModel([call("lookup_order", order_id="W1"), "Shipped."])
    async with Runtime() as rt:
        result = await rt.run(shop_agent(model, stdio_shop(shop_env)), "Where is W1?")
    assert result.status == SessionStatus.AWAITING_APPROVAL
    assert result.approval is not None
    assert result.approval.tool == "lookup_order"


async def test_overrides_win_over_annotations(shop_env: dict[str, str]) -> None:
    flags = {"reads": True, "irreversible": False, "untrusted_output": False, "egress": False}
    server = stdio_shop(shop_env, overrides={"lookup_order": flags})  # untrusted server
    model = ScriptedModel([call("lookup_order", order_id="W1"), "Shipped."])
    async with Runtime() as rt:
        result = await rt.run(shop_agent(model, server), "Where is W1?")
    assert result.status == SessionStatus.IDLE
    assert model.requests[1].messages[-1].results[0].content == "order W1: shipped"


async def test_open_world_output_is_spotlighted_and_taints(shop_env: dict[str, str]) -> None:
    # refund is exempted from approval by the operator; taint must still gate it
    server = stdio_shop(shop_env, trust=True, overrides={"refund": {"needs_approval": False}})
    model = ScriptedModel(
        [call("fetch_review", product="mug"), call("refund", order_id="W1", amount=1.0), "No."]
    )
    async with Runtime() as rt:
        result = await rt.run(shop_agent(model, server), "Reviews of the mug?")
        marker = marker_for(rt.spotlight_secret, result.session_id)
    (review,) = [d for d in finished(result) if d["name"] == "fetch_review"]
    assert review["untrusted"] is True
    seen = model.requests[1].messages[-1].results[0].content
    assert seen.startswith(f'<untrusted-data source="fetch_review" marker="{marker}">')
    assert result.status == SessionStatus.AWAITING_APPROVAL  # the tainted session asks
    assert result.approval is not None
    assert result.approval.tool == "refund"


async def test_without_taint_the_exempted_refund_runs(
    shop_env: dict[str, str], calls_file: Path
) -> None:
    server = stdio_shop(shop_env, trust=True, overrides={"refund": {"needs_approval": False}})
    model = ScriptedModel([call("refund", order_id="W1", amount=1.0), "Refunded."])
    async with Runtime() as rt:
        result = await rt.run(shop_agent(model, server), "Refund W1")
    assert result.output == "Refunded."
    assert calls(calls_file) == ["refund"]


async def test_an_error_result_is_a_tool_failure(shop_env: dict[str, str]) -> None:
    model = ScriptedModel([call("failing", order_id="W9"), "W9 does not exist."])
    async with Runtime() as rt:
        await rt.run(shop_agent(model, stdio_shop(shop_env, trust=True)), "W9?")
    (seen,) = model.requests[1].messages[-1].results
    assert seen.is_error
    assert "order W9 does not exist" in seen.content


async def test_a_server_dying_mid_call_is_reported_then_the_breaker_opens(
    shop_env: dict[str, str], calls_file: Path, pids_file: Path
) -> None:
    policy = BreakerPolicy(failure_threshold=2, failure_rate=0.5, window=60, cooldown=60)
    model = ScriptedModel(
        [
            call("crash", order_id="W1"),
            "The lookup failed.",
            call("crash", order_id="W1"),
            "Failed again.",
            call("crash", order_id="W1"),
            "Unavailable.",
            call("lookup_order", order_id="W1"),
            "Shipped.",
        ]
    )
    agent = shop_agent(model, stdio_shop(shop_env, trust=True), breaker=policy)
    async with Runtime() as rt:
        first = await rt.run(agent, "W1?")
        (seen,) = model.requests[1].messages[-1].results
        assert seen.is_error
        assert "closed the connection" in seen.content
        second = await rt.run(agent, "W1 again?", session_id=first.session_id)
        opened = [e.data for e in second.events if e.type == EventType.BREAKER_OPENED]
        assert opened == [{"key": "tool:shop:crash", "cooldown": 60}]
        third = await rt.run(agent, "and again?", session_id=first.session_id)
        assert "unavailable right now" in str(finished(third)[-1]["content"])
        # another tool of the same server still works: a new server process was started
        fourth = await rt.run(agent, "lookup?", session_id=first.session_id)
        assert fourth.output == "Shipped."
    assert calls(calls_file) == ["crash", "crash"]  # the third call never reached it
    pids = [int(p) for p in calls(pids_file)]
    assert len(pids) == 3
    assert not any(alive(p) for p in pids)


async def test_resume_does_not_repeat_a_non_idempotent_call(
    shop_env: dict[str, str], calls_file: Path
) -> None:
    store = InMemoryStore()
    server = stdio_shop(shop_env, trust=True)
    model = ScriptedModel(
        [call("refund", order_id="W1", amount=2.0, delay=30.0), "I could not confirm it."]
    )
    agent = shop_agent(model, server, approval=no_approvals())
    rt = Runtime(store=store, close_store=False)
    turn = asyncio.create_task(rt.run(agent, "Refund W1"))
    for _ in range(400):
        if calls(calls_file):
            break
        await asyncio.sleep(0.025)
    assert calls(calls_file) == ["refund"]
    await rt.aclose(timeout=0.1)  # the process goes down mid-call: the turn is cancelled
    with pytest.raises(asyncio.CancelledError):
        await turn
    (row,) = await store.list_sessions()
    assert row.status == SessionStatus.RUNNING
    async with Runtime(store=store, close_store=False) as rt2:
        result = await rt2.resume(agent, row.id)
    assert result.status == SessionStatus.IDLE
    assert "outcome unknown" in str(finished(result)[-1]["content"])
    assert calls(calls_file) == ["refund"]  # never run twice


async def test_aclose_stops_the_server(shop_env: dict[str, str], pids_file: Path) -> None:
    model = ScriptedModel([call("lookup_order", order_id="W1"), "Shipped."])
    rt = Runtime()
    await rt.run(shop_agent(model, stdio_shop(shop_env, trust=True)), "W1?")
    (pid,) = [int(p) for p in calls(pids_file)]
    assert alive(pid)
    await rt.aclose()
    assert not alive(pid)


async def test_list_changed_lists_again_and_quarantines_the_new_tool(
    shop_env: dict[str, str],
) -> None:
    model = ScriptedModel(
        [call("grow"), "Grown.", call("extra"), "No such tool.", call("extra"), "Extra."]
    )
    agent = shop_agent(model, stdio_shop(shop_env, trust=True))
    async with Runtime() as rt:
        first = await rt.run(agent, "grow")
        assert "extra" not in {t.name for t in model.requests[0].tools}
        await asyncio.sleep(0.2)  # the notification arrives on its own
        second = await rt.run(agent, "extra", session_id=first.session_id)
        # listed again: the new tool is quarantined (tests/mcp/test_pins.py), not offered
        assert "extra" not in {t.name for t in model.requests[2].tools}
        changed = [e.data for e in second.events if e.type == EventType.TOOL_DEFINITION_CHANGED]
        assert [(d["tool"], d["reason"]) for d in changed] == [("extra", "new")]
        assert second.status == SessionStatus.IDLE
        await rt.store.tool_pins.accept("shop", tool="extra", by="ops", at=0.0)  # type: ignore[attr-defined]
        third = await rt.run(agent, "extra", session_id=first.session_id)
    assert "extra" in {t.name for t in model.requests[4].tools}
    assert third.status == SessionStatus.AWAITING_APPROVAL  # no annotations: gated


async def test_an_unreachable_server_fails_before_the_turn(tmp_path: Path) -> None:
    from tether.spec.toolsource import ToolSourceUnavailable

    server = mcp_server("stdio", name="gone", command=[str(tmp_path / "no-such-server")])
    model = ScriptedModel(["never"])
    async with Runtime() as rt:
        with pytest.raises(ToolSourceUnavailable, match="gone"):
            await rt.run(shop_agent(model, server), "hi")
    assert model.requests == []
