"""The retail tools that change the shop: cancel, modify, return, exchange, address.

Every one is ``writes`` and ``irreversible`` (so the runtime asks for approval
before it runs) and not idempotent. Each does all of its checks first, inside
one ``shop.transaction()``, so a refusal leaves the shop exactly as it was and
no concurrent call sees a half-done action. Each returns the updated record.
"""

from __future__ import annotations

from examples.retail.guards import (
    check_gift_card_covers,
    check_items_in_order,
    check_new_items,
    net_payments,
    payment_method,
    require_order,
    require_status,
    require_user,
    shop_of,
)
from examples.retail.shop import ADDRESS_KEYS, JSON, Shop
from tether import ToolContext, ToolFailed, tool

__all__ = [
    "CANCEL_REASONS",
    "cancel_pending_order",
    "exchange_delivered_order_items",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "modify_pending_order_payment",
    "modify_user_address",
    "return_delivered_order_items",
]

CANCEL_REASONS = ("no longer needed", "ordered by mistake")


def _address(*values: str) -> JSON:
    """An address record from its fields in ``ADDRESS_KEYS`` order."""
    return dict(zip(ADDRESS_KEYS, values, strict=True))


def _add_to_gift_card(shop: Shop, user_id: str, method_id: str, amount: float) -> None:
    """Credit (or, with a negative amount, debit) a gift card; other methods are external."""
    user = shop.user(user_id)
    method = user["payment_methods"].get(method_id) if user else None
    if method is not None and method["source"] == "gift_card":
        shop.set_balance(user_id, method_id, round(method.get("balance", 0.0) + amount, 2))


# writes + irreversible: cancels and refunds; a cancelled order cannot be reinstated.
@tool(
    writes=True,
    irreversible=True,
    summary=(
        "cancel order {order_id} (reason: {reason}); the refund goes to the original payment method"
    ),
)
def cancel_pending_order(ctx: ToolContext, order_id: str, reason: str) -> JSON:
    """Cancel a pending order and refund it to the payment methods it was paid with.

    Gift cards are refunded immediately, other methods in 5 to 7 business
    days. Confirm the order id and the reason with the user first.

    Args:
        order_id: The order id, starting with '#', e.g. "#W0000000".
        reason: Either "no longer needed" or "ordered by mistake".
    """
    shop = shop_of(ctx)
    with shop.transaction():
        order = require_order(ctx, shop, order_id)
        require_status(order, "pending", "cancelled")
        if reason not in CANCEL_REASONS:
            raise ToolFailed(
                f"{reason!r} is not an accepted reason; it must be 'no longer needed' or "
                "'ordered by mistake'."
            )
        for method_id, amount in net_payments(order).items():
            if amount > 0:
                order["payment_history"].append(
                    {"transaction_type": "refund", "amount": amount, "payment_method_id": method_id}
                )
                _add_to_gift_card(shop, order["user_id"], method_id, amount)
        order["status"] = "cancelled"
        order["cancel_reason"] = reason
        shop.save_order(order)
    return order


# writes + irreversible: the previous shipping address is overwritten.
@tool(
    writes=True,
    irreversible=True,
    summary="ship order {order_id} to {address1} {address2}, {city}, {state} {zip}, {country}",
)
def modify_pending_order_address(
    ctx: ToolContext,
    order_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> JSON:
    """Change the shipping address of a pending order.

    Args:
        order_id: The order id, starting with '#', e.g. "#W0000000".
        address1: The first line of the address, e.g. "123 Main St".
        address2: The second line of the address, e.g. "Apt 1" (empty if none).
        city: The city, e.g. "San Francisco".
        state: The state, e.g. "CA".
        country: The country, e.g. "USA".
        zip: The zip code, e.g. "12345".
    """
    shop = shop_of(ctx)
    address = _address(address1, address2, city, country, state, zip)
    with shop.transaction():
        order = require_order(ctx, shop, order_id)
        require_status(order, "pending", "modified")
        order["address"] = address
        shop.save_order(order)
    return order


# writes + irreversible: moves money between payment methods.
@tool(
    writes=True,
    irreversible=True,
    summary=(
        "pay order {order_id} with {payment_method_id} instead (the difference is charged"
        " or refunded)"
    ),
)
def modify_pending_order_payment(ctx: ToolContext, order_id: str, payment_method_id: str) -> JSON:
    """Pay a pending order with another of the user's payment methods.

    The new method is charged the order total and the original one refunded
    (immediately if it is a gift card). A gift card must cover the total.

    Args:
        order_id: The order id, starting with '#', e.g. "#W0000000".
        payment_method_id: The new payment method's id, e.g. "credit_card_0000000";
            it must differ from the one the order is paid with.
    """
    shop = shop_of(ctx)
    with shop.transaction():
        order = require_order(ctx, shop, order_id)
        require_status(order, "pending", "modified")
        paid = {m: a for m, a in net_payments(order).items() if a > 0}
        if len(paid) != 1:
            raise ToolFailed(
                f"Order {order['order_id']} is paid with {len(paid)} payment methods; its "
                "payment can only be changed when one method pays the whole total."
            )
        ((old_id, amount),) = paid.items()
        method = payment_method(shop, order["user_id"], payment_method_id)
        if payment_method_id == old_id:
            raise ToolFailed(
                f"Order {order['order_id']} is already paid with {old_id}; choose a "
                "different payment method."
            )
        check_gift_card_covers(method, amount, "the order total")
        order["payment_history"] += [
            {"transaction_type": "payment", "amount": amount, "payment_method_id": method["id"]},
            {"transaction_type": "refund", "amount": amount, "payment_method_id": old_id},
        ]
        _add_to_gift_card(shop, order["user_id"], method["id"], -amount)
        _add_to_gift_card(shop, order["user_id"], old_id, amount)
        shop.save_order(order)
    return order


# writes + irreversible: can be done only once per order; the order can no longer be changed.
@tool(
    writes=True,
    irreversible=True,
    summary=(
        "in order {order_id}, replace items {item_ids} with {new_item_ids}; "
        "{payment_method_id} pays or receives the difference (items can be changed only "
        "once)"
    ),
)
def modify_pending_order_items(
    ctx: ToolContext,
    order_id: str,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> JSON:
    """Swap items of a pending order for other options of the same products.

    This can be done only once per order: collect every item to change first.
    Afterwards the order can no longer be modified or cancelled. The price
    difference is charged to, or refunded to, the given payment method.

    Args:
        order_id: The order id, starting with '#', e.g. "#W0000000".
        item_ids: The item ids to replace, e.g. ["1008292230"]; an item ordered twice
            may be listed twice.
        new_item_ids: The replacement item ids, one per item id and in the same order;
            each an available variant of the same product, e.g. ["1008292231"].
        payment_method_id: The payment method to charge or refund the price
            difference, e.g. "gift_card_0000000".
    """
    shop = shop_of(ctx)
    with shop.transaction():
        order = require_order(ctx, shop, order_id)
        require_status(order, "pending", "modified")
        diff = check_new_items(shop, order, item_ids, new_item_ids)
        method = payment_method(shop, order["user_id"], payment_method_id)
        check_gift_card_covers(method, diff, "the price difference")
        replaced: set[int] = set()
        for old, new in zip(item_ids, new_item_ids, strict=True):
            i = next(
                i
                for i, item in enumerate(order["items"])
                if item["item_id"] == old and i not in replaced
            )
            _product_id, variant = shop.variant(new) or ("", {})
            order["items"][i].update(
                item_id=new, price=variant["price"], options=variant["options"]
            )
            replaced.add(i)
        if diff:
            kind = "payment" if diff > 0 else "refund"
            order["payment_history"].append(
                {"transaction_type": kind, "amount": abs(diff), "payment_method_id": method["id"]}
            )
            _add_to_gift_card(shop, order["user_id"], method["id"], -diff)
        order["status"] = "pending (item modified)"
        shop.save_order(order)
    return order


# writes + irreversible: the previous default address is overwritten.
@tool(
    writes=True,
    irreversible=True,
    summary=(
        "change the default address of {user_id} to {address1} {address2}, {city}, "
        "{state} {zip}, {country}"
    ),
)
def modify_user_address(
    ctx: ToolContext,
    user_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> JSON:
    """Change the authenticated user's default address (not the address of existing orders).

    Args:
        user_id: The authenticated user's id, e.g. "sara_doe_496".
        address1: The first line of the address, e.g. "123 Main St".
        address2: The second line of the address, e.g. "Apt 1" (empty if none).
        city: The city, e.g. "San Francisco".
        state: The state, e.g. "CA".
        country: The country, e.g. "USA".
        zip: The zip code, e.g. "12345".
    """
    shop = shop_of(ctx)
    address = _address(address1, address2, city, country, state, zip)
    with shop.transaction():
        require_user(ctx, user_id)
        shop.set_user_address(user_id, address)
        user = shop.user(user_id)
    if user is None:
        raise ToolFailed(f"User {user_id} no longer exists.")
    return user


# writes + irreversible: starts a return and its refund; cannot be undone by the agent.
@tool(
    writes=True,
    irreversible=True,
    summary="return items {item_ids} of order {order_id}; the refund goes to {payment_method_id}",
)
def return_delivered_order_items(
    ctx: ToolContext, order_id: str, item_ids: list[str], payment_method_id: str
) -> JSON:
    """Request the return of items of a delivered order.

    The user then receives an email on how to send the items back. The refund
    goes to the original payment method or to one of the user's gift cards.

    Args:
        order_id: The order id, starting with '#', e.g. "#W0000000".
        item_ids: The item ids to return, e.g. ["1008292230"]; an item ordered twice may
            be listed twice.
        payment_method_id: Where the refund goes: the order's original payment method
            or a gift card of the user, e.g. "gift_card_0000000".
    """
    shop = shop_of(ctx)
    with shop.transaction():
        order = require_order(ctx, shop, order_id)
        require_status(order, "delivered", "returned")
        check_items_in_order(order, item_ids)
        method = payment_method(shop, order["user_id"], payment_method_id)
        original = order["payment_history"][0]["payment_method_id"]
        if method["id"] != original and method["source"] != "gift_card":
            raise ToolFailed(
                f"The refund must go to the original payment method ({original}) or to a "
                "gift card of the user."
            )
        order["status"] = "return requested"
        order["return_items"] = sorted(item_ids)
        order["return_payment_method_id"] = method["id"]
        shop.save_order(order)
    return order


# writes + irreversible: starts an exchange and its payment; cannot be undone by the agent.
@tool(
    writes=True,
    irreversible=True,
    summary=(
        "exchange items {item_ids} of order {order_id} for {new_item_ids}; "
        "{payment_method_id} pays or receives the difference (one exchange per order)"
    ),
)
def exchange_delivered_order_items(
    ctx: ToolContext,
    order_id: str,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> JSON:
    """Exchange items of a delivered order for other options of the same products.

    This can be done only once per order: collect every item to exchange
    first. The user then receives an email on how to send the items back; no
    new order is needed. The price difference is charged to, or refunded to,
    the given payment method.

    Args:
        order_id: The order id, starting with '#', e.g. "#W0000000".
        item_ids: The item ids to exchange, e.g. ["1008292230"]; an item ordered twice
            may be listed twice.
        new_item_ids: The new item ids, one per item id and in the same order; each an
            available variant of the same product, e.g. ["1008292231"].
        payment_method_id: The payment method to charge or refund the price
            difference, e.g. "gift_card_0000000".
    """
    shop = shop_of(ctx)
    with shop.transaction():
        order = require_order(ctx, shop, order_id)
        require_status(order, "delivered", "exchanged")
        diff = check_new_items(shop, order, item_ids, new_item_ids)
        method = payment_method(shop, order["user_id"], payment_method_id)
        check_gift_card_covers(method, diff, "the price difference")
        order["status"] = "exchange requested"
        order["exchange_items"] = sorted(item_ids)
        order["exchange_new_items"] = sorted(new_item_ids)
        order["exchange_payment_method_id"] = method["id"]
        order["exchange_price_difference"] = diff
        shop.save_order(order)
    return order
