"""``tether cost`` with tool costs: from sessions really run on a SQLite store.

Three sessions of one agent run through the runtime, with a scripted model
priced at $1 / $2 per million input / output tokens and four tools:

========  =================================================================
tool      declared cost
========  =================================================================
search    $0.005 per call
send_sms  $0.0079 per 160-character segment of the text (from its result)
audit     a cost function that raises (recorded at $0 with ``cost_error``)
lookup    none (free: not in the "by tool" section)
========  =================================================================

- s1 (ava): search, then send_sms of 400 characters (3 segments): tools
  $0.005 + $0.0237 = $0.0287.
- s2 (ben): search with a wrong argument (refused before it runs: $0),
  search, audit, lookup: tools $0.005.
- s3 (ava): an answer, no tool: tools $0.

The report must split each session's cost (the row the runtime wrote) into
its model calls and its tools, and show the tools by name.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tether
from tether import Agent, Price, PriceTable, Runtime
from tether.runtime.ports import SessionRecord
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import Event, EventType
from tether.spec.pricing import DEFAULT_PRICES
from tether.store import open_store
from tether.surfaces.cli import app
from tether.surfaces.cost_html import render_html
from tether.surfaces.costs import COST_EVENTS, build_report, money
from tether.testing import ScriptedModel, call

PRICES = PriceTable({"scripted": Price(input=1.0, output=2.0)}, as_of="test")
SEARCH = 0.005
SEGMENT = 0.0079
HAIKU = "anthropic:claude-haiku-4-5"
TOOL_COST = {"s1": SEARCH + 3 * SEGMENT, "s2": SEARCH, "s3": 0.0}


def approx(x: Any) -> Any:
    return pytest.approx(x, rel=1e-9, abs=1e-12)


@tether.tool(reads=True, cost=SEARCH)
def search(q: str) -> list[str]:
    """Search (a paid API).

    Args:
        q: The query.
    """
    return [f"{q} 1"]


@tether.tool(external_comms=True, needs_approval=False, cost=lambda r: SEGMENT * r["segments"])
def send_sms(to: str, text: str) -> dict[str, Any]:
    """Send an SMS.

    Args:
        to: The number.
        text: The message.
    """
    return {"status": "sent", "segments": math.ceil(len(text) / 160)}


def _broken(result: Any) -> float:
    raise ValueError("no price for this plan")


@tether.tool(reads=True, cost=_broken)
def audit(q: str) -> str:
    """Audit.

    Args:
        q: What.
    """
    return q


@tether.tool(reads=True)
def lookup(q: str) -> str:
    """Look up (free).

    Args:
        q: What.
    """
    return q


SCRIPTS: dict[str, tuple[str, list[Any]]] = {
    "s1": (
        "ava",
        [call("search", q="a"), call("send_sms", to="+1555", text="x" * 400), "Sent."],
    ),
    "s2": (
        "ben",
        [
            call("search", query="wrong argument"),
            call("search", q="b"),
            [call("audit", q="b"), call("lookup", q="b")],
            "Done.",
        ],
    ),
    "s3": ("ava", ["Hello."]),
}


async def run_sessions(url: str) -> None:
    store = await open_store(url)
    try:
        async with Runtime(store=store, close_store=False, prices=PRICES) as rt:
            for sid, (user, script) in SCRIPTS.items():
                agent = Agent(
                    name="shop",
                    instructions="Help.",
                    models=(ScriptedModel(script),),
                    tools=(search, send_sms, audit, lookup),
                    approval=ApprovalPolicy(enabled=False),
                )
                result = await rt.run(agent, "hi", user_id=user, new_session_id=sid)
                assert result.ok, result.error
    finally:
        await store.aclose()


async def stored(url: str) -> tuple[dict[str, float], dict[str, float], list[Any]]:
    """Each session's row cost and model-call cost, and the stored events, from the store."""
    store = await open_store(url)
    try:
        rows = {r.id: r.cost for r in await store.list_sessions(limit=None)}
        events = await store.scan_events(list(COST_EVENTS))
    finally:
        await store.aclose()
    model = dict.fromkeys(rows, 0.0)
    for e in events:
        if e.type == EventType.MODEL_RESPONSE:
            model[e.session_id] += e.data["cost"]
    return rows, model, events


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('cost') / 'tools.sqlite'}"
    asyncio.run(run_sessions(url))
    return url


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def cost_json(*args: str) -> dict[str, Any]:
    code, out, err = invoke("cost", *args, "--json")
    assert code == 0, err
    payload = json.loads(out.strip().splitlines()[-1])
    assert isinstance(payload, dict)
    return payload


def test_the_runtime_recorded_what_the_report_reads(db: str) -> None:
    rows, model, _ = asyncio.run(stored(db))
    assert set(rows) == {"s1", "s2", "s3"}
    for sid, tools in TOOL_COST.items():
        assert model[sid] > 0  # the model calls were priced
        assert rows[sid] == approx(model[sid] + tools)  # the row: tokens + tools


def test_json_splits_model_and_tool_cost(db: str) -> None:
    rows, model, _ = asyncio.run(stored(db))
    d = cost_json("--db", db)
    tools = sum(TOOL_COST.values())  # 0.0287 + 0.005
    assert d["tool_cost"] == approx(tools)
    assert d["model_cost"] == approx(sum(model.values()))
    assert d["total_cost"] == approx(sum(rows.values()))  # what the session rows say
    assert d["total_cost"] == approx(d["model_cost"] + d["tool_cost"])
    assert d["calls"] == 8  # model calls, one per step: s1 3, s2 4, s3 1
    assert (d["tool_calls"], d["charged_tool_calls"]) == (5, 3)
    per_session = sorted(rows.values())
    assert d["per_session"]["mean"] == approx(sum(per_session) / 3)
    assert d["per_session"]["p50"] == approx(per_session[1])
    assert d["by_tool"] == [
        {
            "tool": "send_sms",
            "calls": 1,
            "charged_calls": 1,
            "cost": approx(3 * SEGMENT),
            "per_call": approx(3 * SEGMENT),
            "cost_errors": 0,
        },
        {
            "tool": "search",
            "calls": 3,  # one refused for its arguments: recorded at $0
            "charged_calls": 2,
            "cost": approx(2 * SEARCH),
            "per_call": approx(2 * SEARCH / 3),
            "cost_errors": 0,
        },
        {
            "tool": "audit",
            "calls": 1,
            "charged_calls": 0,
            "cost": 0.0,
            "per_call": 0.0,
            "cost_errors": 1,
        },
    ]
    (v,) = d["by_version"]
    assert v["tool_cost"] == approx(tools)
    assert v["cost"] == approx(sum(rows.values()))
    assert v["model_cost"] == approx(sum(model.values()))
    assert v["per_session"] == approx(sum(rows.values()) / 3)
    # a month: users x sessions per user-day x 30 x mean cost per session (tools included)
    assert d["projections"][0]["monthly_cost"] == approx(
        100 * d["sessions_per_user_day"] * 30 * sum(rows.values()) / 3
    )


def test_a_reprice_keeps_the_tool_costs(db: str) -> None:
    _, _, events = asyncio.run(stored(db))
    haiku = DEFAULT_PRICES.lookup(HAIKU)
    assert haiku is not None
    tokens_on_haiku = sum(
        haiku.cost(e.usage) for e in events if e.type == EventType.MODEL_RESPONSE and e.usage
    )
    d = cost_json("--db", db, "--model", HAIKU)
    assert d["reprice"]["total_cost"] == approx(tokens_on_haiku + sum(TOOL_COST.values()))


def test_tables_show_the_split_and_the_tools(db: str) -> None:
    code, out, _ = invoke("cost", "--db", db)
    assert code == 0
    text = " ".join(out.split())
    d = cost_json("--db", db)
    for expected in (
        "model cost (tokens)",
        "tool cost",
        "priced tool calls (charged) │ 5 (3)",
        "By tool (tools that declare a cost)",
        "send_sms │ 1 │ 1 │ $0.0237 │ $0.0237",
        "search │ 3 │ 2 │ $0.0100 │ $0.003333",
        "audit │ 1 │ 0 │ $0.00 │ $0.00",
        "cost function failed: audit: 1 calls counted at $0",
        "model calls",
        "$0.0337",  # tool cost: 0.0287 + 0.005 (in the summary and the version row)
    ):
        assert expected in text, expected
    assert "lookup" not in text  # a free tool is not in the tool section
    assert f"total cost │ {money(d['total_cost'])}" in text


def test_html_has_the_tool_section(db: str, tmp_path: Path) -> None:
    path = tmp_path / "cost.html"
    code, _, err = invoke("cost", "--db", db, "--html", str(path))
    assert code == 0, err
    html = path.read_text(encoding="utf-8")
    assert "<h2>By tool</h2>" in html
    for cell in ("send_sms", "search", "audit", "$0.0237", "$0.003333", "model cost (tokens)"):
        assert f">{cell}<" in html, cell
    assert "Cost functions that failed, calls counted at $0: audit (1 calls)" in html
    assert ">tool cost<" in html  # the version table's column
    assert ">lookup<" not in html


def test_html_escapes_tool_names() -> None:
    rec = SessionRecord("s1", "shop", "1", "ava", "idle", 1_700_000_000.0, 1_700_000_000.0)
    name = "<script>alert(1)</script>\u202e"
    ev = Event(
        EventType.TOOL_FINISHED,
        "s1",
        1,
        1_700_000_001.0,
        {"call_id": "c1", "name": name, "content": "x", "cost": 0.5, "cost_error": "boom"},
        seq=2,
    )
    report = build_report([rec], [ev], prices=DEFAULT_PRICES)
    assert report.tool_cost == 0.5
    html = render_html(report)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\u202e" in html


def test_a_report_without_priced_tools_has_no_tool_section() -> None:
    html = render_html(build_report([], [], prices=DEFAULT_PRICES))
    assert "By tool" not in html
    assert build_report([], [], prices=DEFAULT_PRICES).to_dict()["by_tool"] == []
