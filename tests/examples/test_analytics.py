"""The staff analytics agent: model SQL passes the guard, then a read-only connection."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import pytest
from examples.retail.analytics import analyst, query_orders
from examples.retail.shop import Shop

from tests.examples.conftest import make_ctx
from tether import ToolFailed
from tether.runtime import Runtime
from tether.spec.events import EventType
from tether.testing import ScriptedModel, call


async def test_an_allowed_query_returns_columns_and_rows(demo_shop: Shop) -> None:
    out = await query_orders(
        make_ctx(demo_shop), {"sql": "SELECT status, COUNT(*) AS n FROM orders GROUP BY status"}
    )
    assert out["columns"] == ["status", "n"]
    counts = dict(out["rows"])
    assert counts["pending"] == sum(
        1 for o in demo_shop.export_json()["orders"].values() if o["status"] == "pending"
    )
    assert out["truncated"] is False


async def test_rows_are_capped(demo_shop: Shop) -> None:
    out = await query_orders(make_ctx(demo_shop), {"sql": "SELECT * FROM order_items"})
    assert len(out["rows"]) == 50
    assert out["truncated"] is True


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DROP TABLE orders", "DROP is destructive"),
        ("DELETE FROM orders WHERE 1=1", "always-true WHERE"),
        ("SELECT email FROM users", "table users is not in the allowed tables"),
        ("SELECT * FROM orders; DELETE FROM orders", "2 statements"),
        ("SELECT * FROM payment_methods", "payment_methods"),
    ],
)
async def test_refused_queries_change_nothing_and_say_why(
    demo_shop: Shop, sql: str, reason: str
) -> None:
    before = json.dumps(demo_shop.export_json(), sort_keys=True)
    with pytest.raises(ToolFailed, match="the query was refused") as info:
        await query_orders(make_ctx(demo_shop), {"sql": sql})
    assert reason in str(info.value)
    assert json.dumps(demo_shop.export_json(), sort_keys=True) == before


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM orders",
        "UPDATE orders SET status = 'cancelled'",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "SELECT load_extension('/tmp/evil')",
        "PRAGMA writable_schema = 1",
    ],
)
def test_the_connection_refuses_writes_even_past_the_guard(demo_shop: Shop, sql: str) -> None:
    before = json.dumps(demo_shop.export_json(), sort_keys=True)
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
        demo_shop.query_readonly(sql)
    assert json.dumps(demo_shop.export_json(), sort_keys=True) == before
    # and the connection is back to normal afterwards
    assert demo_shop.order("#W1024001") is not None


async def test_the_analyst_agent_sees_the_refusal_and_rewrites_its_query(demo_shop: Shop) -> None:
    model = ScriptedModel(
        [
            call("query_orders", sql="SELECT email FROM users"),
            call("query_orders", sql="SELECT COUNT(*) FROM orders WHERE status = 'pending'"),
            "There are 15 pending orders.",
        ]
    )
    agent = replace(analyst, models=(model,), deps=lambda: demo_shop)
    async with Runtime() as rt:
        result = await rt.run(agent, "How many pending orders, and who are the customers?")
    finished = [e.data for e in result.events if e.type == EventType.TOOL_FINISHED]
    assert finished[0]["is_error"] is True
    assert "table users is not in the allowed tables" in finished[0]["content"]
    assert finished[1]["is_error"] is False
    assert json.loads(finished[1]["content"])["rows"] == [[15]]
    # what the model read back was refused in plain words, then answered from the data
    assert "refused" in model.requests[1].messages[-1].results[0].content
    assert result.output == "There are 15 pending orders."
