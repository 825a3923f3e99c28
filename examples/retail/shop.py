"""The retail shop, kept in SQLite.

The data model is the one of the tau2-bench retail ``db.json`` (products with
variants, users with payment methods, orders with items, fulfillments and a
payment history), in the normalised tables of :mod:`examples.retail.schema`.
:meth:`Shop.load_json` and :meth:`Shop.export_json` convert from and to exactly
that JSON shape: a load followed by an export gives back the original
document, list order and float values included. Beside it, an ``outbox`` of
sent emails and the ``help_articles`` of the help center (not exported).

Tools run in worker threads, so one connection is shared with
``check_same_thread=False`` and every access holds ``Shop.lock``. An action is
one SQL transaction: wrap its checks and writes in ``with shop.transaction():``
so that a failed check leaves the shop unchanged and no other thread sees a
half-done action.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from examples.retail.schema import (
    ADDRESS_KEYS,
    JSON,
    SCHEMA,
    SHOP_TABLES,
    Rows,
    order_records,
    order_rows,
    product_records,
    rows_from_json,
    user_records,
    variant_record,
)

__all__ = ["ADDRESS_KEYS", "JSON", "Shop"]


#: SQL functions an analytics query may call (aggregates, string and date helpers)
_SAFE_FUNCTIONS = frozenset(
    {
        "count", "sum", "avg", "min", "max", "total", "group_concat", "abs", "round",
        "lower", "upper", "length", "substr", "trim", "coalesce", "ifnull", "nullif",
        "date", "datetime", "strftime", "json_extract", "instr", "replace", "cast",
    }
)  # fmt: skip


class Shop:
    """A retail shop in one SQLite database; safe to share between threads."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        self._db.row_factory = sqlite3.Row
        # Re-entrant so that the read helpers, which lock, can run inside a
        # transaction(), which holds the lock for the whole action.
        self.lock = threading.RLock()
        self._depth = 0
        with self.lock:
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.executescript(SCHEMA)

    # --- lifecycle --------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> Shop:
        """Open (creating if needed) the shop stored in the SQLite file ``path``."""
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA busy_timeout = 5000")
        return cls(conn)

    @classmethod
    def memory(cls) -> Shop:
        """An empty shop in memory (tests, one-off runs)."""
        return cls(sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None))

    def copy(self) -> Shop:
        """An independent in-memory copy of this shop (SQLite's backup API: fast)."""
        target = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        with self.lock:
            self._db.backup(target)
        return Shop(target)

    def close(self) -> None:
        """Close the database connection."""
        with self.lock:
            self._db.close()

    def __enter__(self) -> Shop:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Shop]:
        """Hold the lock and one SQL transaction; roll back if the block raises.

        Nested use joins the outer transaction.
        """
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self._db.execute(sql, params).fetchall()

    def query_readonly(
        self, sql: str, *, limit: int = 50
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one reviewed ``SELECT``: column names and at most ``limit`` rows.

        Defence in depth under the SQL guard: SQLite's authorizer lets the
        statement read and select, nothing else (no write, no ATTACH, no
        PRAGMA, no function outside a short list), so even SQL that slipped
        past the review cannot change the shop. Raises ``sqlite3.DatabaseError``
        ("not authorized") otherwise.
        """
        allowed = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE}

        def authorize(action: int, _arg1: str | None, arg2: str | None, *_rest: Any) -> int:
            if action in allowed:
                return sqlite3.SQLITE_OK
            # for a function call SQLite passes its name as the second argument
            if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _SAFE_FUNCTIONS:
                return sqlite3.SQLITE_OK
            return sqlite3.SQLITE_DENY

        with self.lock:
            self._db.set_authorizer(authorize)
            try:
                cur = self._db.execute(sql)
                rows = [tuple(r) for r in cur.fetchmany(limit)]
                names = [d[0] for d in cur.description or ()]
            finally:
                self._db.set_authorizer(None)
        return names, rows

    def _insert(self, rows: Rows, tables: tuple[str, ...]) -> None:
        for table in tables:
            if rows[table]:
                marks = ", ".join("?" * len(rows[table][0]))
                self._db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])

    def _select(self, table: str, where: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        return self._all(f"SELECT * FROM {table} {where} ORDER BY pos", params)

    # --- JSON import / export --------------------------------------------

    def load_json(self, data: JSON) -> None:
        """Replace the shop's products, users and orders with ``data`` (db.json shape).

        Raises ``ValueError`` (and changes nothing) if a record has keys this
        schema does not know, or ``KeyError`` if a required key is missing.
        """
        rows = rows_from_json(data)
        with self.transaction():
            for table in SHOP_TABLES:
                self._db.execute(f"DELETE FROM {table}")
            self._insert(rows, tuple(reversed(SHOP_TABLES)))

    def export_json(self) -> JSON:
        """The whole shop in the db.json shape (products, users, orders)."""
        with self.lock:
            return {
                "products": self._products(),
                "users": self._users(),
                "orders": self._orders(),
            }

    def _products(self, where: str = "", params: tuple[Any, ...] = ()) -> dict[str, JSON]:
        return product_records(
            self._select("products", where, params), self._select("variants", where, params)
        )

    def _users(self, where: str = "", params: tuple[Any, ...] = ()) -> dict[str, JSON]:
        return user_records(
            *(self._select(t, where, params) for t in ("users", "payment_methods", "user_orders"))
        )

    def _orders(self, where: str = "", params: tuple[Any, ...] = ()) -> dict[str, JSON]:
        tables = ("orders", "order_items", "fulfillments", "payment_history")
        return order_records(*(self._select(t, where, params) for t in tables))

    # --- lookups (each returns db.json-shaped records) ----------------------

    def product(self, product_id: str) -> JSON | None:
        """The product record, or ``None``."""
        return self._products("WHERE product_id = ?", (product_id,)).get(product_id)

    def variant(self, item_id: str) -> tuple[str, JSON] | None:
        """``(product_id, variant record)`` for an item id, or ``None``."""
        rows = self._all("SELECT * FROM variants WHERE item_id = ?", (item_id,))
        return (rows[0]["product_id"], variant_record(rows[0])) if rows else None

    def product_types(self) -> dict[str, str]:
        """Product name -> product id, sorted by name."""
        rows = self._all("SELECT name, product_id FROM products ORDER BY name, product_id")
        return {r["name"]: r["product_id"] for r in rows}

    def user(self, user_id: str) -> JSON | None:
        """The user record, or ``None``."""
        return self._users("WHERE user_id = ?", (user_id,)).get(user_id)

    def order(self, order_id: str) -> JSON | None:
        """The order record, or ``None``."""
        return self._orders("WHERE order_id = ?", (order_id,)).get(order_id)

    def user_ids_by_email(self, email: str) -> list[str]:
        """Ids of the users with this email address (compared case-insensitively)."""
        sql = "SELECT user_id FROM users WHERE email = ? COLLATE NOCASE ORDER BY pos"
        return [r["user_id"] for r in self._all(sql, (email.strip(),))]

    def user_ids_by_name_zip(self, first_name: str, last_name: str, zip_code: str) -> list[str]:
        """Ids of the users with this name (case-insensitive) and zip code."""
        sql = (
            "SELECT user_id FROM users WHERE zip = ? AND first_name = ? COLLATE NOCASE"
            " AND last_name = ? COLLATE NOCASE ORDER BY pos"
        )
        params = (zip_code.strip(), first_name.strip(), last_name.strip())
        return [r["user_id"] for r in self._all(sql, params)]

    def is_empty(self) -> bool:
        """True when the shop has no products, users or orders."""
        return not any(
            self._all(f"SELECT 1 FROM {t} LIMIT 1") for t in ("products", "users", "orders")
        )

    # --- writes (one transaction each; join an outer ``transaction()``) --------

    def save_order(self, order: JSON) -> None:
        """Replace a stored order's fields, items, fulfillments and payments with ``order``."""
        oid = order["order_id"]
        children = ("order_items", "fulfillments", "payment_history")
        with self.transaction():
            found = self._all("SELECT pos FROM orders WHERE order_id = ?", (oid,))
            if not found:
                raise KeyError(f"no order {oid!r} to save")
            rows: Rows = {t: [] for t in ("orders", *children)}
            order_rows(oid, order, found[0]["pos"], rows)
            for table in (*children, "orders"):
                self._db.execute(f"DELETE FROM {table} WHERE order_id = ?", (oid,))
            self._insert(rows, ("orders", *children))

    def set_balance(self, user_id: str, payment_method_id: str, balance: float) -> None:
        """Set a gift card's balance."""
        with self.transaction():
            self._db.execute(
                "UPDATE payment_methods SET balance = ? WHERE user_id = ? AND id = ?",
                (balance, user_id, payment_method_id),
            )

    def set_user_address(self, user_id: str, address: JSON) -> None:
        """Replace a user's default address (the six ``ADDRESS_KEYS``)."""
        sets = ", ".join(f"{k} = ?" for k in ADDRESS_KEYS)
        with self.transaction():
            self._db.execute(
                f"UPDATE users SET {sets} WHERE user_id = ?",
                (*(address[k] for k in ADDRESS_KEYS), user_id),
            )

    # --- outbox and help center (not part of the db.json export) -------------

    def send_email(
        self, *, user_id: str, recipient: str, subject: str, body: str, idempotency_key: str
    ) -> int:
        """Queue an email in the outbox; return its id.

        A repeat with the same idempotency key and the same content (a retried
        call) returns the first email's id instead of sending twice.
        """
        with self.transaction():
            same = self._all(
                "SELECT id FROM outbox WHERE idempotency_key = ? AND recipient = ?"
                " AND subject = ? AND body = ?",
                (idempotency_key, recipient, subject, body),
            )
            if same:
                return int(same[0]["id"])
            cur = self._db.execute(
                "INSERT INTO outbox (user_id, recipient, subject, body, idempotency_key)"
                " VALUES (?, ?, ?, ?, ?)",
                (user_id, recipient, subject, body, idempotency_key),
            )
            return int(cur.lastrowid or 0)

    def outbox(self) -> list[JSON]:
        """Every email sent, oldest first (id, user_id, recipient, subject, body)."""
        rows = self._all("SELECT id, user_id, recipient, subject, body FROM outbox ORDER BY id")
        return [dict(r) for r in rows]

    def load_help_articles(self, articles: list[JSON]) -> None:
        """Replace the help center with ``articles`` (dicts with slug, title, body)."""
        with self.transaction():
            self._db.execute("DELETE FROM help_articles")
            self._db.executemany(
                "INSERT INTO help_articles VALUES (?, ?, ?, ?)",
                [(a["slug"], a["title"], a["body"], i) for i, a in enumerate(articles)],
            )

    def help_articles(self) -> list[JSON]:
        """Every help-center article (slug, title, body), in order."""
        rows = self._all("SELECT slug, title, body FROM help_articles ORDER BY pos")
        return [dict(r) for r in rows]
