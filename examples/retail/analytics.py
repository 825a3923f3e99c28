"""A read-only analytics agent for the shop's staff: questions answered with SQL.

``query_orders(sql)`` runs one ``SELECT`` over orders, their items and
fulfillments, products and variants. Two layers stand between the model's
SQL and the shop: the SQL guard (:func:`tether.controls.sqlguard.review_sql`:
one statement, reads only, the allowed tables, no escaping functions; its
reasons are what the model is told on a refusal), and SQLite's authorizer
on the connection (reads only: see ``Shop.query_readonly``). Customers'
names, emails and payment methods are not in the allowed tables.

This agent is for staff, not customers: it is separate from the support
agent, which has no SQL tool at all (least privilege).
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

import tether.providers
from examples.retail.agent import open_shop
from examples.retail.guards import shop_of
from tether import Agent, SqlPolicy, ToolContext, ToolFailed, review_sql, tool

__all__ = ["ANALYTICS_POLICY", "analyst", "query_orders"]

ANALYTICS_POLICY = SqlPolicy(
    allowed_tables=frozenset({"orders", "order_items", "fulfillments", "products", "variants"}),
    read_only=True,
    dialect="sqlite",
)
MAX_ROWS = 50


# reads + untrusted_output: rows hold text customers wrote (addresses, names of items).
@tool(reads=True, untrusted_output=True, idempotent=True, timeout=10.0)
def query_orders(ctx: ToolContext, sql: str) -> dict[str, Any]:
    """Run one read-only SQL query (SQLite) over the shop's orders.

    Tables: orders (order_id, user_id, status, address fields, extra, pos),
    order_items (order_id, item_id, product_id, name, price, options, pos),
    fulfillments (order_id, tracking_ids, item_ids, pos), products
    (product_id, name, pos), variants (item_id, product_id, options,
    available, price, pos). At most 50 rows come back.

    Args:
        sql: One SELECT statement.
    """
    verdict = review_sql(sql, ANALYTICS_POLICY)
    if verdict.verdict != "allow":
        raise ToolFailed("the query was refused: " + "; ".join(verdict.reasons))
    try:
        columns, rows = shop_of(ctx).query_readonly(sql, limit=MAX_ROWS)
    except sqlite3.Error as exc:
        raise ToolFailed(f"the query failed: {exc}") from None
    return {"columns": columns, "rows": [list(r) for r in rows], "truncated": len(rows) == MAX_ROWS}


ANALYST_INSTRUCTIONS = """\
You answer the shop staff's questions about orders, products and sales with
query_orders (one read-only SQLite SELECT at a time). Say which query you ran
and what it returned; if a query is refused, read the reasons and write a
different one. Never guess figures.
"""


def build_analyst(models: tuple[str, ...] | None = None) -> Agent:
    """The analytics agent on the default shop (see ``examples.retail.agent.open_shop``)."""
    return Agent(
        name="retail-analyst",
        instructions=ANALYST_INSTRUCTIONS,
        models=models or tether.providers.default_models(),
        tools=(query_orders,),
        deps=functools.partial(open_shop, None),
    )


analyst = build_analyst()
