"""`tether tools test`: contract tests of an agent's tools find planted bugs, and only those."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from typing import Any

import pytest
from typer.testing import CliRunner

import tether
from tether import Agent, ConfigError, ToolContext, ToolFailed
from tether.surfaces.cli import app
from tether.surfaces.toolcheck import MAX_HANGS, FindingKind, InputKind, check_tools

ITEMS = {"a1": {"name": "lamp", "price": 20}}


@tether.tool(reads=True)
def lookup_item(item_id: str) -> dict[str, Any]:
    """Look an item up (planted bug: a KeyError on an unknown id).

    Args:
        item_id: The item id.
    """
    return ITEMS[item_id]


@tether.tool(reads=True)
def find_item(item_id: str) -> dict[str, Any]:
    """Look an item up, refusing an unknown id (the fix of lookup_item).

    Args:
        item_id: The item id.
    """
    if item_id not in ITEMS:
        raise ToolFailed(f"no item {item_id!r}")
    return ITEMS[item_id]


@tether.tool(timeout=0.3)
def count_to(n: int) -> int:
    """Count to n (planted bug: it hangs past its timeout for large n).

    Args:
        n: Where to stop.
    """
    if n > 1000:
        time.sleep(3)  # stands for a loop that takes forever
    return n


@tether.tool(timeout=0.3)
async def wait_for(seconds: int) -> str:
    """Wait (planted bug: an async hang for any positive number).

    Args:
        seconds: How long.
    """
    if seconds > 0:
        await asyncio.sleep(30)
    return "done"


@tether.tool
def describe(name: str) -> Any:
    """Describe something (planted bug: a result the store cannot keep).

    Args:
        name: What to describe.
    """
    return {"name": name, "handle": object()}


@tether.tool
def remember(ctx: ToolContext, note: str) -> str:
    """Remember a note (planted bug: a session var the store cannot keep).

    Args:
        note: The note.
    """
    ctx.vars["note"] = note.encode()
    return "ok"


@tether.tool
def add(a: int, b: int, scale: float = 1.0) -> float:
    """Add two numbers, scaled (correct).

    Args:
        a: First.
        b: Second.
        scale: A factor.
    """
    if scale == 0:
        raise ToolFailed("scale must not be 0")
    total = (a + b) * scale
    # without this check the contract test finds `inf` (not JSON) for huge arguments
    if not math.isfinite(total):
        raise ToolFailed("the result is too large")
    return total


#: add without its validation: invalid arguments reach its function
unchecked_add = dataclasses.replace(add, name="unchecked_add", validator=None)

buggy = Agent(
    name="buggy",
    instructions="x",
    models=("scripted",),
    tools=(lookup_item, find_item, count_to, wait_for, describe, remember, add, unchecked_add),
)


@tether.tool
def shout(text: str) -> str:
    """Shout (planted bug: it raises, quoting control characters).

    Args:
        text: What to shout.
    """
    raise ValueError(f"\x1b[2J\u202e{text}")


loud = Agent(name="loud", instructions="x", models=("scripted",), tools=(shout,))


class Store:
    """A tiny database; ``REAL`` counts the real ones ever made."""

    made: list[Store] = []  # noqa: RUF012 - a test's record of every store built

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rows: dict[str, str] = {}
        self.closed = False
        Store.made.append(self)

    def close(self) -> None:
        self.closed = True


@tether.tool(writes=True, irreversible=True)
def save_row(ctx: ToolContext, key: str, value: str) -> dict[str, str]:
    """Save a row (correct).

    Args:
        key: The key.
        value: The value.
    """
    ctx.deps.rows[key] = value
    return {"saved": key}


with_deps = Agent(
    name="writer",
    instructions="x",
    models=("scripted",),
    tools=(save_row,),
    deps=lambda: Store("real"),
    test_deps=lambda: Store("test"),
)
no_test_deps = dataclasses.replace(with_deps, name="writer_untested", test_deps=None)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


async def test_each_planted_bug_is_found_and_the_correct_tools_are_clean() -> None:
    report = await check_tools(buggy, examples=20, seed=1)
    by_tool = {t.name: t for t in report.tools}
    kinds = {t.name: sorted(str(f.kind) for f in t.findings) for t in report.tools}
    assert kinds == {
        "lookup_item": ["raised"],
        "find_item": [],
        "count_to": ["hung"],
        "wait_for": ["hung"],
        "describe": ["unstorable"],
        "remember": ["unstorable"],
        "add": [],
        "unchecked_add": ["accepted_invalid"],
    }
    (keyerror,) = by_tool["lookup_item"].findings
    assert keyerror.detail.startswith("KeyError: ")
    assert "test_tools_test.py" in keyerror.detail  # the line that raised
    assert keyerror.calls > 1
    assert keyerror.arguments.keys() == {"item_id"}
    assert keyerror.arguments["item_id"] not in ITEMS
    # the shortest arguments that showed it: the empty id
    assert keyerror.arguments == {"item_id": ""}

    (unstorable,) = by_tool["describe"].findings
    assert "returned a value that cannot be stored" in unstorable.detail
    assert "$.handle" in unstorable.detail
    (var,) = by_tool["remember"].findings
    assert "session var 'note'" in var.detail

    (accepted,) = by_tool["unchecked_add"].findings
    assert accepted.inputs is InputKind.INVALID
    assert "its function ran with arguments its schema forbids" in accepted.detail

    # a refusal is the tool working: counted, not a finding
    assert by_tool["find_item"].refused > 0
    assert by_tool["add"].ok > 0
    assert by_tool["add"].rejected > 0
    assert by_tool["add"].rejected_valid == 0
    assert not report.clean
    assert len(report.findings) == 6


async def test_a_hanging_tool_is_given_up_after_a_few_hangs() -> None:
    started = time.perf_counter()
    report = await check_tools(buggy, tools=["wait_for", "count_to"], examples=20)
    took = time.perf_counter() - started
    for t in report.tools:
        (hung,) = t.findings
        assert hung.kind is FindingKind.HUNG
        assert hung.detail == "did not finish within 0.3 s"
        assert hung.calls == MAX_HANGS
        assert any(n.startswith(f"stopped after {MAX_HANGS} calls hung") for n in t.notes)
    assert took < 5  # 2 tools x 2 hangs x 0.3 s, not 30 s sleeps
    # the sync hang's threads are still sleeping; said so, not waited for
    assert any("still running in their threads" in n for n in report.notes)


async def test_the_same_seed_draws_the_same_arguments() -> None:
    one = await check_tools(buggy, tools=["lookup_item", "add"], examples=15, seed=7)
    two = await check_tools(buggy, tools=["lookup_item", "add"], examples=15, seed=7)
    assert one.to_dict() == two.to_dict()


async def test_a_write_tool_runs_on_test_deps_never_the_real_ones() -> None:
    Store.made.clear()
    report = await check_tools(with_deps, examples=10)
    assert report.clean
    assert [s.kind for s in Store.made] == ["test"]  # one per tool; the real one never built
    (test_store,) = Store.made
    assert test_store.rows  # the writes happened, there
    assert test_store.closed  # and it was closed after use


@tether.tool(writes=True, timeout=0.2)
def lock_rows(ctx: ToolContext, key: str) -> str:
    """Lock the rows (planted bug: it never lets go).

    Args:
        key: The key.
    """
    ctx.deps.rows[key] = "locked"
    time.sleep(2)
    return "done"


async def test_a_sync_hang_leaves_its_deps_open_and_goes_on_with_fresh_ones() -> None:
    Store.made.clear()
    agent = dataclasses.replace(with_deps, tools=(lock_rows,))
    report = await check_tools(agent, examples=5)
    (hung,) = report.findings
    assert hung.kind is FindingKind.HUNG
    # the first copy was held by the first hung call; the second by the next one
    assert [(s.kind, s.closed, len(s.rows)) for s in Store.made] == [
        ("test", False, 1),
        ("test", False, 1),
    ]
    assert f"{MAX_HANGS} copies of the test deps were left open" in " ".join(report.notes)


async def test_an_agent_with_deps_but_no_test_deps_is_refused() -> None:
    Store.made.clear()
    with pytest.raises(ConfigError, match="has deps but no test_deps"):
        await check_tools(no_test_deps)
    assert Store.made == []


async def test_a_per_session_test_deps_factory_gets_the_session_info() -> None:
    seen: list[Any] = []

    def per_session(info: Any) -> Store:
        seen.append(info)
        return Store("test")

    agent = dataclasses.replace(with_deps, test_deps=per_session)
    report = await check_tools(agent, examples=5, user="u1")
    assert report.clean
    assert [(i.agent, i.principal.user) for i in seen] == [("writer", "u1")]


async def test_known_values_and_vars_reach_past_the_refusals() -> None:
    report = await check_tools(buggy, tools=["find_item"], examples=10, values={"item_id": ["a1"]})
    (t,) = report.tools
    assert t.ok >= 1
    assert t.refused >= 1
    assert t.clean


async def test_an_unknown_tool_is_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="has no tool 'nope'; its tools: lookup_item"):
        await check_tools(buggy, tools=["nope"])


def test_cli_exits_1_and_shows_each_finding() -> None:
    code, out, _ = invoke("tools", "test", "tests.surfaces.test_tools_test:buggy", "-n", "10")
    assert code == 1
    assert "✗ lookup_item raised: KeyError: ''" in out
    assert 'e.g. (valid) {"item_id": ""}' in out
    assert "✗ describe unstorable: returned a value that cannot be stored" in out
    assert "✗ count_to hung: did not finish within 0.3 s" in out
    assert "✗ unchecked_add accepted_invalid:" in out
    assert "6 findings in 6 tools" in out


def test_cli_exits_0_on_clean_tools_and_prints_json() -> None:
    code, out, _ = invoke(
        "tools", "test", "tests.surfaces.test_tools_test:buggy",
        "--tool", "add", "--tool", "find_item", "--value", "item_id=a1", "-n", "10", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["clean"] is True
    assert data["findings"] == 0
    assert [t["name"] for t in data["tools"]] == ["add", "find_item"]
    assert data["tools"][1]["ok"] >= 1


def test_cli_usage_errors_exit_2() -> None:
    code, _, err = invoke("tools", "test", "tests.surfaces.test_tools_test:no_test_deps")
    assert code == 2
    assert "has deps but no test_deps" in err
    assert "Agent(test_deps=...)" in err
    code, _, err = invoke("tools", "test", "tests.surfaces.test_tools_test:buggy", "-t", "nope")
    assert code == 2
    assert "has no tool 'nope'" in err
    code, _, err = invoke("tools", "test", "tests.surfaces.test_tools_test:buggy", "--var", "x")
    assert code == 2
    assert "--var takes KEY=VALUE" in err


def test_findings_are_printed_escaped() -> None:
    code, out, _ = invoke("tools", "test", "tests.surfaces.test_tools_test:loud", "-n", "3")
    assert code == 1
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "ValueError: \\x1b[2J\\u202e" in out


def test_retail_runs_clean() -> None:
    code, out, _ = invoke("tools", "test", "examples/retail", "-n", "20")
    assert code == 0, out
    assert "no findings" in out


def test_the_full_retail_agent_runs_clean_with_an_authenticated_session() -> None:
    from examples.retail.generate import DEMO

    code, out, _ = invoke(
        "tools", "test", "examples.retail.agent:hosted_agent", "-n", "15", "--json",
        "--var", f"authenticated_user_id={DEMO['user_id']}",
        "--value", f"user_id={DEMO['user_id']}",
        "--value", f"order_id={DEMO['pending_order']}",
        "--value", f"order_id={DEMO['delivered_order']}",
        "--value", f"payment_method_id={DEMO['gift_card']}",
        "--value", f"to={DEMO['email']}",
        "--value", "reason=no longer needed",
    )  # fmt: skip
    data = json.loads(out)
    assert code == 0, [t["findings"] for t in data["tools"] if t["findings"]]
    assert len(data["tools"]) == 18
    ok = {t["name"]: t["ok"] for t in data["tools"]}
    # the known values reach past the authentication and ownership checks
    assert ok["get_user_details"] >= 1
    assert ok["get_order_details"] >= 1
    assert ok["modify_user_address"] >= 1
    assert ok["send_email"] >= 1
