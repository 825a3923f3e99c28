"""The shop's SQLite tables, and conversion between their rows and db.json records.

Pure functions, no connection: :mod:`examples.retail.shop` runs the SQL.
Conventions: ``pos`` keeps the order of a list or of a JSON object's keys; a
NULL in an optional column means the key is absent; the keys that actions add
to orders (``cancel_reason``, ``return_items``...) live in the order's
``extra`` JSON column, in the order they were added. Floats are stored as
SQLite REALs (IEEE doubles) and JSON text written by Python, so they come
back bit for bit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

__all__ = [
    "ADDRESS_KEYS",
    "JSON",
    "SCHEMA",
    "SHOP_TABLES",
    "Rows",
    "order_records",
    "order_rows",
    "product_records",
    "rows_from_json",
    "user_records",
    "variant_record",
]

JSON = dict[str, Any]
Rows = dict[str, list[tuple[Any, ...]]]

ADDRESS_KEYS = ("address1", "address2", "city", "country", "state", "zip")
_PAYMENT_OPTIONAL = ("brand", "last_four", "balance")
_ORDER_CORE = (
    "order_id",
    "user_id",
    "address",
    "items",
    "status",
    "fulfillments",
    "payment_history",
)
SHOP_TABLES = (
    "payment_history",
    "fulfillments",
    "order_items",
    "orders",
    "user_orders",
    "payment_methods",
    "users",
    "variants",
    "products",
)
"""The tables of the db.json data, children first (delete in this order, insert reversed)."""

_ADDRESS = ", ".join(k + " TEXT NOT NULL" for k in ADDRESS_KEYS)
_OWNED = "REFERENCES {} ON DELETE CASCADE, pos INTEGER NOT NULL"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS products (
    product_id TEXT PRIMARY KEY, name TEXT NOT NULL, pos INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS variants (
    item_id TEXT PRIMARY KEY, product_id TEXT NOT NULL REFERENCES products ON DELETE CASCADE,
    options TEXT NOT NULL, available INTEGER NOT NULL, price REAL NOT NULL,
    pos INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS variants_by_product ON variants (product_id, pos);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
    email TEXT NOT NULL, {_ADDRESS}, pos INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS users_by_email ON users (email COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS users_by_zip ON users (zip);
CREATE TABLE IF NOT EXISTS payment_methods (
    user_id TEXT NOT NULL REFERENCES users ON DELETE CASCADE, id TEXT NOT NULL,
    source TEXT NOT NULL, brand TEXT, last_four TEXT, balance REAL,
    extra TEXT NOT NULL DEFAULT '{{}}', pos INTEGER NOT NULL, PRIMARY KEY (user_id, id));
CREATE TABLE IF NOT EXISTS user_orders (
    user_id TEXT NOT NULL {_OWNED.format("users")}, order_id TEXT NOT NULL,
    PRIMARY KEY (user_id, pos));
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, {_ADDRESS}, status TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{{}}', pos INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id);
CREATE TABLE IF NOT EXISTS order_items (
    order_id TEXT NOT NULL {_OWNED.format("orders")}, item_id TEXT NOT NULL,
    product_id TEXT NOT NULL, name TEXT NOT NULL, price REAL NOT NULL, options TEXT NOT NULL,
    PRIMARY KEY (order_id, pos));
CREATE TABLE IF NOT EXISTS fulfillments (
    order_id TEXT NOT NULL {_OWNED.format("orders")}, tracking_ids TEXT NOT NULL,
    item_ids TEXT NOT NULL, PRIMARY KEY (order_id, pos));
CREATE TABLE IF NOT EXISTS payment_history (
    order_id TEXT NOT NULL {_OWNED.format("orders")}, transaction_type TEXT NOT NULL,
    amount REAL NOT NULL, payment_method_id TEXT NOT NULL, PRIMARY KEY (order_id, pos));
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, recipient TEXT NOT NULL,
    subject TEXT NOT NULL, body TEXT NOT NULL, idempotency_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS help_articles (
    slug TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL, pos INTEGER NOT NULL);
"""


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _loads_all(rows: Sequence[sqlite3.Row], column: str) -> list[Any]:
    """Decode one JSON column of many rows in a single parse (much faster than one by one)."""
    return json.loads("[" + ",".join(r[column] for r in rows) + "]")  # type: ignore[no-any-return]


def _check_keys(kind: str, record: JSON, allowed: tuple[str, ...]) -> None:
    unknown = [k for k in record if k not in allowed]
    if unknown:
        raise ValueError(f"{kind} {record.get(allowed[0])!r} has unknown keys {unknown}")


def rows_from_json(data: JSON) -> Rows:
    """Every table's rows (in column order) for a whole db.json document.

    Raises ``ValueError`` for a record with keys the schema does not know,
    ``KeyError`` for a missing required key.
    """
    rows: Rows = {t: [] for t in SHOP_TABLES}
    for pos, (pid, p) in enumerate(data["products"].items()):
        _check_keys("product", p, ("product_id", "name", "variants"))
        rows["products"].append((pid, p["name"], pos))
        for i, (item_id, v) in enumerate(p["variants"].items()):
            _check_keys("variant", v, ("item_id", "options", "available", "price"))
            row = (item_id, pid, _dumps(v["options"]), v["available"], v["price"], i)
            rows["variants"].append(row)
    user_keys = ("user_id", "name", "address", "email", "payment_methods", "orders")
    for pos, (uid, u) in enumerate(data["users"].items()):
        _check_keys("user", u, user_keys)
        addr = tuple(u["address"][k] for k in ADDRESS_KEYS)
        name = (u["name"]["first_name"], u["name"]["last_name"])
        rows["users"].append((uid, *name, u["email"], *addr, pos))
        for i, (mid, m) in enumerate(u["payment_methods"].items()):
            extra = {k: x for k, x in m.items() if k not in ("id", "source", *_PAYMENT_OPTIONAL)}
            opt = tuple(m.get(k) for k in _PAYMENT_OPTIONAL)
            rows["payment_methods"].append((uid, mid, m["source"], *opt, _dumps(extra), i))
        rows["user_orders"].extend((uid, i, oid) for i, oid in enumerate(u["orders"]))
    for pos, (oid, o) in enumerate(data["orders"].items()):
        order_rows(oid, o, pos, rows)
    return rows


def order_rows(oid: str, o: JSON, pos: int, rows: Rows) -> None:
    """Append the rows of one order (orders, items, fulfillments, payments) to ``rows``."""
    extra = {k: v for k, v in o.items() if k not in _ORDER_CORE}
    addr = tuple(o["address"][k] for k in ADDRESS_KEYS)
    rows["orders"].append((oid, o["user_id"], *addr, o["status"], _dumps(extra), pos))
    for i, it in enumerate(o["items"]):
        _check_keys("order item", it, ("item_id", "name", "product_id", "price", "options"))
        rows["order_items"].append(
            (
                oid,
                i,
                it["item_id"],
                it["product_id"],
                it["name"],
                it["price"],
                _dumps(it["options"]),
            )
        )
    for i, f in enumerate(o["fulfillments"]):
        _check_keys("fulfillment", f, ("tracking_id", "item_ids"))
        rows["fulfillments"].append((oid, i, _dumps(f["tracking_id"]), _dumps(f["item_ids"])))
    for i, p in enumerate(o["payment_history"]):
        _check_keys("payment", p, ("transaction_type", "amount", "payment_method_id"))
        rows["payment_history"].append(
            (oid, i, p["transaction_type"], p["amount"], p["payment_method_id"])
        )


def _address(row: sqlite3.Row) -> JSON:
    return {k: row[k] for k in ADDRESS_KEYS}


def variant_record(r: sqlite3.Row) -> JSON:
    """A variant record from its ``variants`` row."""
    return {
        "item_id": r["item_id"],
        "options": json.loads(r["options"]),
        "available": bool(r["available"]),
        "price": r["price"],
    }


def product_records(
    products: Sequence[sqlite3.Row], variants: Sequence[sqlite3.Row]
) -> dict[str, JSON]:
    """Product records, each with its variants, from rows sorted by ``pos``."""
    out = {r["product_id"]: {"name": r["name"], "product_id": r["product_id"]} for r in products}
    for p in out.values():
        p["variants"] = {}
    for r, options in zip(variants, _loads_all(variants, "options"), strict=True):
        out[r["product_id"]]["variants"][r["item_id"]] = {
            "item_id": r["item_id"],
            "options": options,
            "available": bool(r["available"]),
            "price": r["price"],
        }
    return out


def user_records(
    users: Sequence[sqlite3.Row],
    methods: Sequence[sqlite3.Row],
    user_orders: Sequence[sqlite3.Row],
) -> dict[str, JSON]:
    """User records, with payment methods and order ids, from rows sorted by ``pos``."""
    out: dict[str, JSON] = {}
    for r in users:
        out[r["user_id"]] = {
            "user_id": r["user_id"],
            "name": {"first_name": r["first_name"], "last_name": r["last_name"]},
            "address": _address(r),
            "email": r["email"],
            "payment_methods": {},
            "orders": [],
        }
    for r, extra in zip(methods, _loads_all(methods, "extra"), strict=True):
        method: JSON = {"source": r["source"], "id": r["id"]}
        method.update({k: r[k] for k in _PAYMENT_OPTIONAL if r[k] is not None})
        method.update(extra)
        out[r["user_id"]]["payment_methods"][r["id"]] = method
    for r in user_orders:
        out[r["user_id"]]["orders"].append(r["order_id"])
    return out


def order_records(
    orders: Sequence[sqlite3.Row],
    items: Sequence[sqlite3.Row],
    fulfillments: Sequence[sqlite3.Row],
    payments: Sequence[sqlite3.Row],
) -> dict[str, JSON]:
    """Order records from the rows of their four tables, sorted by ``pos``."""
    out: dict[str, JSON] = {}
    for r, extra in zip(orders, _loads_all(orders, "extra"), strict=True):
        out[r["order_id"]] = {
            "order_id": r["order_id"],
            "user_id": r["user_id"],
            "address": _address(r),
            "items": [],
            "status": r["status"],
            "fulfillments": [],
            "payment_history": [],
            **extra,
        }
    for r, options in zip(items, _loads_all(items, "options"), strict=True):
        out[r["order_id"]]["items"].append(
            {
                "name": r["name"],
                "product_id": r["product_id"],
                "item_id": r["item_id"],
                "price": r["price"],
                "options": options,
            }
        )
    tracking, shipped = (
        _loads_all(fulfillments, "tracking_ids"),
        _loads_all(fulfillments, "item_ids"),
    )
    for r, tracking_ids, item_ids in zip(fulfillments, tracking, shipped, strict=True):
        out[r["order_id"]]["fulfillments"].append(
            {"tracking_id": tracking_ids, "item_ids": item_ids}
        )
    for r in payments:
        out[r["order_id"]]["payment_history"].append(
            {
                "transaction_type": r["transaction_type"],
                "amount": r["amount"],
                "payment_method_id": r["payment_method_id"],
            }
        )
    return out
