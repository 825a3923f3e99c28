"""Authentication and ownership checks shared by the retail tools.

The tools enforce the policy themselves, whatever the model was told: a
session authenticates as one user (``ctx.vars["authenticated_user_id"]``,
set by the two lookup tools) and may then touch only that user's profile,
orders and payment methods. Every refusal is a :class:`~tether.ToolFailed`
whose message says what to do next.
"""

from __future__ import annotations

from collections import Counter

from examples.retail.shop import JSON, Shop
from tether import ToolContext, ToolFailed

__all__ = [
    "AUTH_KEY",
    "authenticate",
    "check_gift_card_covers",
    "check_items_in_order",
    "check_new_items",
    "net_payments",
    "payment_method",
    "require_order",
    "require_status",
    "require_user",
    "shop_of",
]

AUTH_KEY = "authenticated_user_id"


def shop_of(ctx: ToolContext) -> Shop:
    """The shop the agent's ``deps`` factory built."""
    if not isinstance(ctx.deps, Shop):
        raise TypeError(
            f"the retail tools need a Shop as ctx.deps, got {type(ctx.deps).__name__}; "
            "run them through examples.retail.agent (its deps factory opens the shop)"
        )
    return ctx.deps


def authenticate(ctx: ToolContext, found: list[str], not_found: str) -> str:
    """Bind the session to the one user in ``found``; return their id.

    Refuses no match (with ``not_found``), several matches, and, once the
    session is authenticated, any look-up that does not find that same user,
    whether it found someone else or nobody: the answer must not tell which
    other customers exist.
    """
    current = ctx.vars.get(AUTH_KEY)
    if current is not None and found != [current]:
        raise ToolFailed(
            f"This conversation is already authenticated as user {current}. Only one "
            "user can be helped per conversation; anyone else must contact us in a "
            "separate conversation."
        )
    if not found:
        raise ToolFailed(not_found)
    if len(found) > 1:
        raise ToolFailed("Several users match; ask for the user's email address instead.")
    ctx.vars[AUTH_KEY] = found[0]
    return found[0]


def require_user(ctx: ToolContext, user_id: str | None = None) -> str:
    """The authenticated user id; refuse if none, or if ``user_id`` is someone else."""
    current = ctx.vars.get(AUTH_KEY)
    if not isinstance(current, str):
        raise ToolFailed(
            "The user is not authenticated yet. Ask for their email address, or their "
            "first name, last name and zip code, and look up their user id with "
            "find_user_id_by_email or find_user_id_by_name_zip first."
        )
    if user_id is not None and user_id != current:
        raise ToolFailed(
            f"This conversation is authenticated as user {current}; it cannot access "
            f"or change the data of user {user_id}."
        )
    return current


def require_order(ctx: ToolContext, shop: Shop, order_id: str) -> JSON:
    """The order, if it belongs to the authenticated user.

    An unknown order and another customer's order get the same answer, so the
    tool cannot be used to probe which order ids exist.
    """
    user_id = require_user(ctx)
    oid = order_id.strip()
    if oid and not oid.startswith("#"):
        oid = "#" + oid
    order = shop.order(oid)
    if order is None or order["user_id"] != user_id:
        raise ToolFailed(
            f"Order {order_id} was not found among the orders of the authenticated user "
            f"{user_id}. Check the order id with the user (order ids look like '#W' "
            "followed by 7 digits) or look it up with get_user_details."
        )
    return order


def require_status(order: JSON, status: str, action: str) -> None:
    """Refuse unless the order has exactly ``status``."""
    if order["status"] != status:
        raise ToolFailed(
            f"Order {order['order_id']} is '{order['status']}'; only {status} orders can be "
            f"{action}."
        )


def payment_method(shop: Shop, user_id: str, payment_method_id: str) -> JSON:
    """The user's payment method with this id; refuse an id not on file."""
    user = shop.user(user_id) or {"payment_methods": {}}
    methods: dict[str, JSON] = user["payment_methods"]
    if payment_method_id not in methods:
        raise ToolFailed(
            f"Payment method {payment_method_id} is not on file for user {user_id}. "
            f"Their payment methods are: {', '.join(methods) or 'none'}."
        )
    return methods[payment_method_id]


def check_gift_card_covers(method: JSON, amount: float, what: str) -> None:
    """Refuse if ``method`` is a gift card whose balance is below ``amount``."""
    if method["source"] == "gift_card" and method.get("balance", 0.0) < amount:
        raise ToolFailed(
            f"Gift card {method['id']} has a balance of ${method.get('balance', 0.0):.2f}, "
            f"which does not cover {what} of ${amount:.2f}. Choose another payment method."
        )


def check_items_in_order(order: JSON, item_ids: list[str]) -> None:
    """Refuse unless every item id is in the order (as many times as it is listed)."""
    if not item_ids:
        raise ToolFailed("No item ids were given; list the item ids to act on.")
    have = Counter(item["item_id"] for item in order["items"])
    for item_id, wanted in Counter(item_ids).items():
        if have[item_id] < wanted:
            raise ToolFailed(
                f"Item {item_id} is not in order {order['order_id']}"
                + (f" {wanted} times" if have[item_id] else "")
                + f". The order's item ids are: {', '.join(have)}."
            )


def check_new_items(shop: Shop, order: JSON, item_ids: list[str], new_item_ids: list[str]) -> float:
    """Check each replacement; return the price difference (new minus old), rounded.

    Each new item must be an available variant of the same product as the item
    it replaces, with different options.
    """
    if len(item_ids) != len(new_item_ids):
        raise ToolFailed(
            f"{len(item_ids)} item ids but {len(new_item_ids)} new item ids were given; "
            "give one new item id for each item id, in the same order."
        )
    check_items_in_order(order, item_ids)
    product_of = {item["item_id"]: item["product_id"] for item in order["items"]}
    price_of = {item["item_id"]: item["price"] for item in order["items"]}
    diff = 0.0
    for old, new in zip(item_ids, new_item_ids, strict=True):
        found = shop.variant(new)
        if found is None or found[0] != product_of[old]:
            raise ToolFailed(
                f"Item {new} is not a variant of the same product as item {old} (product "
                f"{product_of[old]}); use get_product_details to see its variants."
            )
        if not found[1]["available"]:
            raise ToolFailed(f"Item {new} is out of stock; choose another available variant.")
        if new == old:
            raise ToolFailed(f"Item {new} is the item already ordered; choose different options.")
        diff += found[1]["price"] - price_of[old]
    return round(diff, 2)


def net_payments(order: JSON) -> dict[str, float]:
    """Amount paid and not refunded, per payment method, in order of first use."""
    net: dict[str, float] = {}
    for p in order["payment_history"]:
        sign = 1.0 if p["transaction_type"] == "payment" else -1.0
        net[p["payment_method_id"]] = net.get(p["payment_method_id"], 0.0) + sign * p["amount"]
    return {k: round(v, 2) for k, v in net.items()}
