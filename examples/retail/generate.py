"""A small, deterministic shop in the tau2-bench retail schema, and the help center.

``generate(seed)`` builds 10 products (3 to 8 variants each), 20 users and
40 orders in every status, with payment histories that add up, gift card
balances and fulfillments for shipped orders. The same seed always gives the
same shop (``to_json`` of it is byte-identical), so examples and tests can
name ids. One user, :data:`DEMO`, is always the same, for the README's demo.
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

from examples.retail.shop import JSON

__all__ = ["DEMO", "HELP_ARTICLES", "generate", "to_json"]

DEMO: dict[str, str] = {
    "user_id": "ava_moreno_1024",
    "first_name": "Ava",
    "last_name": "Moreno",
    "email": "ava.moreno@example.com",
    "zip": "94107",
    "credit_card": "credit_card_1024001",
    "gift_card": "gift_card_1024002",
    "pending_order": "#W1024001",
    "delivered_order": "#W1024002",
}
"""The demo customer: a pending order (headphones, t-shirt) and a delivered one (shoes)."""

_CATALOGUE: list[tuple[str, dict[str, list[str]], tuple[float, float]]] = [
    ("T-Shirt", {"color": ["black", "blue", "red", "white"], "size": ["S", "M", "L", "XL"]},
     (19.0, 35.0)),
    ("Running Shoes", {"size": ["8", "9", "10", "11"], "color": ["black", "grey", "orange"],
                       "material": ["mesh", "leather"]}, (80.0, 160.0)),
    ("Headphones", {"type": ["over-ear", "on-ear", "in-ear"], "connectivity": ["wired", "wireless"],
                    "color": ["black", "white"]}, (60.0, 350.0)),
    ("Coffee Maker", {"capacity": ["4 cups", "8 cups", "12 cups"], "type": ["drip", "espresso"],
                      "color": ["black", "stainless steel"]}, (40.0, 300.0)),
    ("Backpack", {"color": ["black", "green", "navy"], "size": ["small", "medium", "large"],
                  "material": ["nylon", "polyester"]}, (35.0, 120.0)),
    ("Desk Lamp", {"color": ["black", "silver", "white"], "brightness": ["low", "medium", "high"],
                   "power source": ["USB", "AC adapter"]}, (20.0, 90.0)),
    ("Water Bottle", {"capacity": ["500ml", "750ml", "1000ml"], "material": ["glass", "steel"],
                      "color": ["blue", "green", "red"]}, (12.0, 45.0)),
    ("Smart Watch", {"color": ["black", "gold", "silver"], "band material": ["leather", "silicone"],
                     "display": ["AMOLED", "LCD"]}, (150.0, 420.0)),
    ("Yoga Mat", {"thickness": ["4mm", "6mm", "8mm"], "material": ["PVC", "TPE", "natural rubber"],
                  "color": ["blue", "pink", "purple"]}, (20.0, 110.0)),
    ("Mechanical Keyboard", {"switch type": ["linear", "tactile", "clicky"],
                             "backlight": ["none", "white", "RGB"],
                             "size": ["full size", "TKL", "60%"]}, (70.0, 250.0)),
]  # fmt: skip

_FIRST = [
    "Liam",
    "Olivia",
    "Noah",
    "Emma",
    "Mason",
    "Sofia",
    "Ethan",
    "Mia",
    "Lucas",
    "Chen",
    "Yusuf",
    "Aarav",
    "Fatima",
    "Omar",
    "Isabella",
    "Daiki",
    "Amelia",
    "Raj",
    "Lei",
    "Ivan",
]
_LAST = [
    "Smith",
    "Garcia",
    "Kim",
    "Nguyen",
    "Patel",
    "Rossi",
    "Silva",
    "Ito",
    "Brown",
    "Lopez",
    "Khan",
    "Muller",
    "Johnson",
    "Santos",
    "Wilson",
    "Ahmed",
    "Lee",
    "Martin",
    "Sato",
    "Cohen",
]
_PLACES = [
    ("New York", "NY", "100"),
    ("Chicago", "IL", "606"),
    ("Houston", "TX", "770"),
    ("Denver", "CO", "802"),
    ("Seattle", "WA", "981"),
    ("Austin", "TX", "787"),
    ("Boston", "MA", "021"),
    ("Phoenix", "AZ", "850"),
    ("Columbus", "OH", "432"),
]
_STREETS = [
    "Main Street",
    "Oak Avenue",
    "Maple Drive",
    "Cedar Lane",
    "Park Avenue",
    "Hillcrest Drive",
    "River Road",
    "Elm Street",
    "Lakeview Drive",
    "Sunset Drive",
]
_STATUSES = ["pending"] * 14 + ["processed"] * 6 + ["delivered"] * 12 + ["cancelled"] * 3 + [
    "return requested", "exchange requested", "pending (item modified)"]  # fmt: skip

HELP_ARTICLES: list[JSON] = [
    {"slug": "returns", "title": "Returning delivered items",
     "body": "Items of a delivered order can be returned. Tell the agent the order id and the "
             "items to return. The refund goes to the original payment method or to one of "
             "your gift cards. You will receive an email explaining how to send the items "
             "back. Gift card refunds are immediate; other refunds take 5 to 7 business days."},
    {"slug": "exchanges", "title": "Exchanging items for another size or colour",
     "body": "Items of a delivered order can be exchanged for another option of the same "
             "product, for example another size or colour, if it is in stock. A product "
             "cannot be exchanged for a different product. Any price difference is charged "
             "or refunded to a payment method you choose. All items of an order must be "
             "exchanged in one request."},
    {"slug": "shipping", "title": "Shipping and tracking",
     "body": "Orders are processed and shipped after they are placed. Once an order is "
             "shipped, its tracking number appears in the order details. The shipping address "
             "of an order can be changed while the order is still pending."},
    {"slug": "cancellations", "title": "Cancelling an order",
     "body": "An order can be cancelled while it is pending, that is before it is processed. "
             "The reason must be that the order is no longer needed or was ordered by "
             "mistake. The total is refunded to the original payment method: immediately for "
             "a gift card, in 5 to 7 business days otherwise."},
    {"slug": "payment-methods", "title": "Payment methods and gift cards",
     "body": "We accept credit cards, PayPal and gift cards. The payment method of a pending "
             "order can be changed to another method on file; a gift card must have enough "
             "balance to cover the order total. Gift card balances are shown in your profile."},
    {"slug": "contact", "title": "Contacting a human agent",
     "body": "Our virtual assistant handles orders, returns, exchanges and address changes. "
             "For anything else, ask to be transferred to a human agent, who will continue "
             "the conversation."},
]  # fmt: skip
"""The help center: plain articles consistent with the support policy."""


class _Ids:
    """Random, never-repeated numeric ids."""

    def __init__(self, rng: random.Random, taken: set[str]) -> None:
        self.rng = rng
        self.taken = set(taken)

    def digits(self, n: int, prefix: str = "") -> str:
        while True:
            value = prefix + "".join(str(self.rng.randrange(10)) for _ in range(n))
            if value not in self.taken:
                self.taken.add(value)
                return value


def _products(rng: random.Random, ids: _Ids) -> dict[str, JSON]:
    products: dict[str, JSON] = {}
    for name, options, (low, high) in _CATALOGUE:
        combos = list(itertools.product(*options.values()))
        variants: dict[str, JSON] = {}
        for i, combo in enumerate(rng.sample(combos, rng.randint(3, 8))):
            item_id = ids.digits(10)
            variants[item_id] = {
                "item_id": item_id,
                "options": dict(zip(options, combo, strict=True)),
                "available": i < 2 or rng.random() < 0.75,
                "price": round(rng.uniform(low, high), 2),
            }
        product_id = ids.digits(10)
        products[product_id] = {"name": name, "product_id": product_id, "variants": variants}
    return products


def _address(rng: random.Random) -> JSON:
    city, state, zip_prefix = rng.choice(_PLACES)
    return {
        "address1": f"{rng.randint(10, 999)} {rng.choice(_STREETS)}",
        "address2": f"Suite {rng.randint(100, 999)}",
        "city": city,
        "country": "USA",
        "state": state,
        "zip": f"{zip_prefix}{rng.randint(10, 99)}",
    }


def _users(rng: random.Random, ids: _Ids) -> dict[str, JSON]:
    users: dict[str, JSON] = {}
    demo: JSON = {
        "user_id": DEMO["user_id"],
        "name": {"first_name": DEMO["first_name"], "last_name": DEMO["last_name"]},
        "address": {
            "address1": "500 Harbor Street",
            "address2": "Apt 12",
            "city": "San Francisco",
            "country": "USA",
            "state": "CA",
            "zip": DEMO["zip"],
        },
        "email": DEMO["email"],
        "payment_methods": {
            DEMO["credit_card"]: {
                "source": "credit_card",
                "id": DEMO["credit_card"],
                "brand": "visa",
                "last_four": "4242",
            },
            DEMO["gift_card"]: {"source": "gift_card", "id": DEMO["gift_card"], "balance": 120.0},
        },
        "orders": [],
    }
    users[DEMO["user_id"]] = demo
    for first, last in zip(_FIRST[:19], rng.sample(_LAST, 19), strict=True):
        number = ids.digits(4)
        methods: dict[str, JSON] = {}
        for source in rng.sample(["credit_card", "paypal", "gift_card"], rng.randint(1, 3)):
            mid = ids.digits(7, f"{source}_")
            method: JSON = {"source": source, "id": mid}
            if source == "credit_card":
                method |= {"brand": rng.choice(["visa", "mastercard"]), "last_four": ids.digits(4)}
            elif source == "gift_card":
                method["balance"] = float(rng.randint(0, 250))
            methods[mid] = method
        user_id = f"{first}_{last}_{number}".lower()
        users[user_id] = {
            "user_id": user_id,
            "name": {"first_name": first, "last_name": last},
            "address": _address(rng),
            "email": f"{first}.{last}{number}@example.com".lower(),
            "payment_methods": methods,
            "orders": [],
        }
    return users


def _line(product: JSON, item_id: str) -> JSON:
    variant = product["variants"][item_id]
    return {
        "name": product["name"],
        "product_id": product["product_id"],
        "item_id": item_id,
        "price": variant["price"],
        "options": dict(variant["options"]),
    }


def _other_variant(rng: random.Random, product: JSON, item_id: str) -> str:
    choices: list[str] = [
        v for v, rec in product["variants"].items() if rec["available"] and v != item_id
    ]
    return rng.choice(choices)


def _order(
    rng: random.Random,
    ids: _Ids,
    order_id: str,
    user: JSON,
    lines: list[JSON],
    method: str,
    status: str,
    products: dict[str, JSON],
) -> JSON:
    total = round(sum(line["price"] for line in lines), 2)
    order: JSON = {
        "order_id": order_id,
        "user_id": user["user_id"],
        "address": dict(user["address"]),
        "items": lines,
        "status": status,
        "fulfillments": [],
        "payment_history": [
            {"transaction_type": "payment", "amount": total, "payment_method_id": method}
        ],
    }
    item_ids = [line["item_id"] for line in lines]
    if status in ("processed", "delivered", "return requested", "exchange requested"):
        order["fulfillments"].append({"tracking_id": [ids.digits(12)], "item_ids": item_ids})
    history = order["payment_history"]
    if status == "cancelled":
        history.append({"transaction_type": "refund", "amount": total, "payment_method_id": method})
        order["cancel_reason"] = rng.choice(["no longer needed", "ordered by mistake"])
    elif status == "return requested":
        order["return_items"] = sorted(item_ids[:1])
        order["return_payment_method_id"] = method
    elif status in ("exchange requested", "pending (item modified)"):
        line = lines[0]
        product = products[line["product_id"]]
        new = _other_variant(rng, product, line["item_id"])
        diff = round(product["variants"][new]["price"] - line["price"], 2)
        if status == "exchange requested":
            order |= {
                "exchange_items": [line["item_id"]],
                "exchange_new_items": [new],
                "exchange_payment_method_id": method,
                "exchange_price_difference": diff,
            }
        else:
            lines[0] = _line(product, new)
            history.append(
                {
                    "transaction_type": "payment" if diff > 0 else "refund",
                    "amount": abs(diff),
                    "payment_method_id": method,
                }
            )
    user["orders"].append(order_id)
    return order


def generate(seed: int = 0) -> JSON:
    """A shop (db.json shape) made only from ``seed``."""
    rng = random.Random(seed)
    ids = _Ids(rng, {DEMO["pending_order"][2:], DEMO["delivered_order"][2:]})
    products = _products(rng, ids)
    users = _users(rng, ids)
    by_name = {p["name"]: p for p in products.values()}

    def first_available(name: str) -> JSON:
        product = by_name[name]
        item_id = next(v for v, rec in product["variants"].items() if rec["available"])
        return _line(product, item_id)

    demo = users[DEMO["user_id"]]
    orders: dict[str, JSON] = {}
    pending = [first_available("Headphones"), first_available("T-Shirt")]
    delivered = [first_available("Running Shoes")]
    for oid, lines, method, status in (
        (DEMO["pending_order"], pending, DEMO["credit_card"], "pending"),
        (DEMO["delivered_order"], delivered, DEMO["gift_card"], "delivered"),
    ):
        orders[oid] = _order(rng, ids, oid, demo, lines, method, status, products)
    others = [u for uid, u in users.items() if uid != DEMO["user_id"]]
    for status in _STATUSES[: 40 - len(orders)]:
        user = rng.choice(others)
        lines = []
        for product in rng.sample(list(products.values()), rng.randint(1, 4)):
            lines.append(_line(product, rng.choice(list(product["variants"]))))
        method = rng.choice(list(user["payment_methods"]))
        oid = "#W" + ids.digits(7)
        orders[oid] = _order(rng, ids, oid, user, lines, method, status, products)
    return {"products": products, "users": users, "orders": orders}


def to_json(data: Any) -> str:
    """The canonical text of a shop file (stable across runs and platforms)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
