"""The retail tools: policy semantics, authentication enforced in the tools, refusals.

Most tests run on the generated shop (seed 0), whose ids are stable; every
refusal must leave the shop exactly as it was.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pydantic
import pytest
from examples.retail.generate import DEMO, generate
from examples.retail.guards import AUTH_KEY
from examples.retail.shop import Shop
from examples.retail.tools import TOOLS

from tests.examples.conftest import TOOLS_BY_NAME, make_ctx
from tether import ToolContext, ToolFailed

JSON = dict[str, Any]
G = generate()
AVA, PENDING, DELIVERED = DEMO["user_id"], DEMO["pending_order"], DEMO["delivered_order"]
CARD, GIFT = DEMO["credit_card"], DEMO["gift_card"]
OLIVIA, OLIVIA_ORDER, OLIVIA_GIFT = "olivia_kim_7897", "#W6661797", "gift_card_3019126"
RAJ, RAJ_ORDER, RAJ_GIFT = "raj_nguyen_9057", "#W4000415", "gift_card_1086408"
OMAR, OMAR_GIFT, OMAR_CARD = "omar_johnson_4506", "gift_card_0195501", "credit_card_1870505"
ADDRESS = {"address1": "1 New Street", "address2": "", "city": "Boston", "state": "MA"}
ADDRESS |= {"country": "USA", "zip": "02110"}
WRITES = {t.name for t in TOOLS if t.name.startswith(("cancel_", "modify_", "return_", "exch"))}


def items(order_id: str) -> list[str]:
    return [i["item_id"] for i in G["orders"][order_id]["items"]]


def others(order_id: str, index: int = 0, *, available: bool = True) -> list[str]:
    """Variants of the item's product other than the item, cheapest first."""
    item = G["orders"][order_id]["items"][index]
    variants = G["products"][item["product_id"]]["variants"]
    found = [v for v, r in variants.items() if r["available"] is available and v != item["item_id"]]
    return sorted(found, key=lambda v: variants[v]["price"])


async def call(ctx: ToolContext, name: str, **arguments: Any) -> Any:
    return await TOOLS_BY_NAME[name](ctx, arguments)


async def login(shop: Shop, user_id: str = AVA) -> ToolContext:
    ctx = make_ctx(shop)
    email = G["users"][user_id]["email"]
    assert await call(ctx, "find_user_id_by_email", email=email) == user_id
    return ctx


def balance(shop: Shop, user_id: str, method_id: str) -> float:
    user = shop.user(user_id)
    assert user is not None
    return float(user["payment_methods"][method_id]["balance"])


# --- declarations ----------------------------------------------------------------


def test_risk_flags() -> None:
    assert len(WRITES) == 7
    for t in TOOLS:
        if t.name in WRITES:
            assert (t.risk.writes, t.risk.irreversible, t.idempotent) == (True, True, False)
        elif t.name.startswith(("find_", "get_", "list_", "search_")):
            assert (t.risk.names(), t.idempotent) == (("reads",), True), t.name
    send, transfer = TOOLS_BY_NAME["send_email"], TOOLS_BY_NAME["transfer_to_human_agents"]
    assert (send.risk.external_comms, send.idempotent) == (True, False)
    assert (transfer.risk.names(), transfer.idempotent) == ((), False)
    assert TOOLS_BY_NAME["search_help_center"].untrusted_output
    assert TOOLS_BY_NAME["calculate"].risk.names() == ()


def test_schemas_hide_the_context_and_describe_every_argument() -> None:
    for t in TOOLS:
        assert t.description
        for name, prop in t.parameters.get("properties", {}).items():
            assert name != "ctx"
            assert prop.get("description"), f"{t.name}.{name} has no description"


async def test_arguments_are_validated(demo_shop: Shop) -> None:
    ctx = await login(demo_shop)
    with pytest.raises(pydantic.ValidationError):
        await call(ctx, "return_delivered_order_items", order_id=DELIVERED, item_ids="1")


# --- authentication ------------------------------------------------------------


async def test_authentication_by_email_or_name_and_zip(demo_shop: Shop) -> None:
    ctx = make_ctx(demo_shop)
    assert await call(ctx, "find_user_id_by_email", email=" AVA.Moreno@example.com") == AVA
    assert ctx.vars[AUTH_KEY] == AVA
    ctx = make_ctx(demo_shop)
    found = await call(
        ctx, "find_user_id_by_name_zip", first_name="ava", last_name="MORENO", zip=DEMO["zip"]
    )
    assert found == ctx.vars[AUTH_KEY] == AVA


async def test_unknown_user_is_not_authenticated(demo_shop: Shop) -> None:
    ctx = make_ctx(demo_shop)
    with pytest.raises(ToolFailed, match="No user has the email"):
        await call(ctx, "find_user_id_by_email", email="nobody@example.com")
    with pytest.raises(ToolFailed, match="has zip code 00000"):
        await call(
            ctx, "find_user_id_by_name_zip", first_name="Ava", last_name="Moreno", zip="00000"
        )
    assert AUTH_KEY not in ctx.vars


async def test_one_user_per_conversation(demo_shop: Shop) -> None:
    ctx = await login(demo_shop)
    with pytest.raises(ToolFailed, match="already authenticated as user ava_moreno_1024"):
        await call(ctx, "find_user_id_by_email", email=G["users"][OLIVIA]["email"])
    with pytest.raises(ToolFailed, match="already authenticated"):  # not "no user has..."
        await call(ctx, "find_user_id_by_email", email="nobody@example.com")
    assert ctx.vars[AUTH_KEY] == AVA
    assert await call(ctx, "find_user_id_by_email", email=DEMO["email"]) == AVA  # same user: ok


NEEDS_LOGIN = [
    ("get_user_details", {"user_id": AVA}),
    ("get_order_details", {"order_id": PENDING}),
    ("cancel_pending_order", {"order_id": PENDING, "reason": "no longer needed"}),
    ("modify_pending_order_address", {"order_id": PENDING, **ADDRESS}),
    ("modify_pending_order_payment", {"order_id": PENDING, "payment_method_id": GIFT}),
    ("modify_user_address", {"user_id": AVA, **ADDRESS}),
    ("return_delivered_order_items", {"order_id": DELIVERED, "item_ids": ["1"],
                                      "payment_method_id": GIFT}),
    ("send_email", {"to": DEMO["email"], "subject": "Hi", "body": "Hello"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "arguments"), NEEDS_LOGIN, ids=[n for n, _ in NEEDS_LOGIN])
async def test_user_data_needs_authentication(demo_shop: Shop, name: str, arguments: JSON) -> None:
    before = demo_shop.export_json()
    with pytest.raises(ToolFailed, match="not authenticated"):
        await call(make_ctx(demo_shop), name, **arguments)
    assert demo_shop.export_json() == before


# --- every refusal names the problem and changes nothing ------------------------------

NOT_MINE = "not found among the orders of the authenticated user"
MODIFY, EXCHANGE, RETURN = (
    "modify_pending_order_items",
    "exchange_delivered_order_items",
    "return_delivered_order_items",
)


def swap(order_id: str, old: list[str], new: list[str], method: str) -> JSON:
    return {"order_id": order_id, "item_ids": old, "new_item_ids": new, "payment_method_id": method}


def back(order_id: str, old: list[str], method: str) -> JSON:
    return {"order_id": order_id, "item_ids": old, "payment_method_id": method}


def pay(order_id: str, method: str) -> JSON:
    return {"order_id": order_id, "payment_method_id": method}


def cancel(order_id: str, reason: str = "no longer needed") -> JSON:
    return {"order_id": order_id, "reason": reason}


P1, P2, D1 = items(PENDING)[:1], items(PENDING)[1:], items(DELIVERED)
# fmt: off
REFUSALS = [
    # another customer's data
    (AVA, "get_user_details", "cannot access", {"user_id": OLIVIA}),
    (AVA, "modify_user_address", "cannot access", {"user_id": OLIVIA, **ADDRESS}),
    (AVA, "get_order_details", NOT_MINE, {"order_id": OLIVIA_ORDER}),
    (AVA, "get_order_details", NOT_MINE, {"order_id": "#W0000000"}),
    (AVA, "cancel_pending_order", NOT_MINE, cancel(OLIVIA_ORDER)),
    (AVA, "modify_pending_order_payment", "not on file", pay(PENDING, OLIVIA_GIFT)),
    (AVA, "send_email", "own email", {"to": G["users"][OLIVIA]["email"], "subject": "s",
                                      "body": "b"}),
    # cancel
    (AVA, "cancel_pending_order", "not an accepted reason", cancel(PENDING, "too slow")),
    (AVA, "cancel_pending_order", "only pending", cancel(DELIVERED)),
    # modify a pending order
    (AVA, "modify_pending_order_address", "only pending", {"order_id": DELIVERED, **ADDRESS}),
    (AVA, "modify_pending_order_payment", "already paid with", pay(PENDING, CARD)),
    (AVA, "modify_pending_order_payment", "does not cover", pay(PENDING, GIFT)),
    (AVA, "modify_pending_order_payment", "not on file", pay(PENDING, "paypal_1")),
    (AVA, MODIFY, "only pending", swap(DELIVERED, D1, others(DELIVERED)[:1], CARD)),
    (AVA, MODIFY, "not in order", swap(PENDING, ["1"], others(PENDING)[:1], CARD)),
    (AVA, MODIFY, "not in order", swap(PENDING, P1 * 2, others(PENDING)[:2], CARD)),
    (AVA, MODIFY, "same product", swap(PENDING, P1, others(PENDING, 1)[:1], CARD)),
    (AVA, MODIFY, "out of stock", swap(PENDING, P2, others(PENDING, 1, available=False), CARD)),
    (AVA, MODIFY, "already ordered", swap(PENDING, P1, P1, CARD)),
    (AVA, MODIFY, "one new item id for each", swap(PENDING, P1 + P2, others(PENDING)[:1], CARD)),
    (AVA, MODIFY, "No item ids", swap(PENDING, [], [], CARD)),
    (OMAR, MODIFY, "does not cover",
     swap("#W9981492", items("#W9981492")[1:2], others("#W9981492", 1)[-1:], OMAR_GIFT)),
    # return and exchange
    (AVA, RETURN, "only delivered", back(PENDING, P1, CARD)),
    (RAJ, RETURN, "original payment method", back(RAJ_ORDER, items(RAJ_ORDER)[:1],
                                                  "credit_card_8400652")),
    (RAJ, RETURN, "not in order", back(RAJ_ORDER, ["1"], "paypal_1551702")),
    (AVA, EXCHANGE, "only delivered", swap(PENDING, P1, others(PENDING)[:1], CARD)),
    (RAJ, EXCHANGE, "does not cover",
     swap(RAJ_ORDER, items(RAJ_ORDER)[1:2], others(RAJ_ORDER, 1)[-1:], RAJ_GIFT)),
    (RAJ, EXCHANGE, "same product",
     swap(RAJ_ORDER, items(RAJ_ORDER)[1:2], others(PENDING)[:1], "paypal_1551702")),
]
# fmt: on


@pytest.mark.parametrize(("user_id", "name", "match", "arguments"), REFUSALS)
async def test_refusals_change_nothing(
    demo_shop: Shop, user_id: str, name: str, match: str, arguments: JSON
) -> None:
    ctx = await login(demo_shop, user_id)
    before = demo_shop.export_json()
    with pytest.raises(ToolFailed, match=match):
        await call(ctx, name, **arguments)
    assert demo_shop.export_json() == before
    assert ctx.vars[AUTH_KEY] == user_id


# --- look-ups, catalogue, help center, arithmetic, email, hand-off ------------------------


async def test_lookups_return_records(demo_shop: Shop) -> None:
    ctx = await login(demo_shop)
    assert await call(ctx, "get_user_details", user_id=AVA) == G["users"][AVA]
    assert await call(ctx, "get_order_details", order_id=PENDING) == G["orders"][PENDING]
    assert await call(ctx, "get_order_details", order_id="W1024001") == G["orders"][PENDING]


async def test_catalogue_needs_no_authentication(demo_shop: Shop) -> None:
    ctx = make_ctx(demo_shop)
    types = await call(ctx, "list_all_product_types")
    assert list(types) == sorted(p["name"] for p in G["products"].values())
    product = await call(ctx, "get_product_details", product_id=types["T-Shirt"])
    assert product == G["products"][types["T-Shirt"]]
    item_id = next(iter(product["variants"]))
    assert await call(ctx, "get_item_details", item_id=item_id) == product["variants"][item_id]
    with pytest.raises(ToolFailed, match="No product has id"):
        await call(ctx, "get_product_details", product_id=item_id)
    with pytest.raises(ToolFailed, match="No item has id"):
        await call(ctx, "get_item_details", item_id=types["T-Shirt"])


async def test_help_center(demo_shop: Shop) -> None:
    ctx = make_ctx(demo_shop)
    found = await call(ctx, "search_help_center", query="How do I return an item for a refund?")
    assert 1 <= len(found) <= 3
    assert found[0] == {"title": "Returning delivered items", "body": found[0]["body"]}
    assert await call(ctx, "search_help_center", query="zzz qqq") == []


@pytest.mark.parametrize(
    ("expression", "result"),
    [("3131.1 + 4777.75 + 367.38", "8276.23"), ("(2 - 3.5) * -2 / 3", "1.0"), ("10/4", "2.5")],
)
async def test_calculate(expression: str, result: str) -> None:
    assert await call(make_ctx(Shop.memory()), "calculate", expression=expression) == result


@pytest.mark.parametrize(
    "expression",
    ["__import__('os')", "2 ** 10", "x + 1", "'a' * 3", "1 if 1 else 2", "True + 1", "1/0",
     "[1][0]", "1 +", "(1).real", "9" * 600, "9" * 400 + " * 2",
     "1e308 * 10"],
)  # fmt: skip
async def test_calculate_rejects_anything_but_arithmetic(expression: str) -> None:
    with pytest.raises(ToolFailed):
        await call(make_ctx(Shop.memory()), "calculate", expression=expression)


async def test_email_goes_only_to_the_user_and_once_per_call(demo_shop: Shop) -> None:
    ctx = await login(demo_shop)
    sent = await call(ctx, "send_email", to="Ava.Moreno@example.com", subject="Hi", body="Hello")
    assert sent["status"] == "sent"
    assert await call(ctx, "send_email", to=DEMO["email"], subject="Hi", body="Hello") == sent
    retry_ctx = make_ctx(demo_shop, ctx.vars, key="k2")
    await call(retry_ctx, "send_email", to=DEMO["email"], subject="Hi", body="Hello")
    assert [m["recipient"] for m in demo_shop.outbox()] == [DEMO["email"]] * 2


async def test_transfer(demo_shop: Shop) -> None:
    result = await call(make_ctx(demo_shop), "transfer_to_human_agents", summary="wants a human")
    assert result == "Transfer successful"


# --- writes ------------------------------------------------------------------------


async def test_cancel_refunds_the_original_payment(demo_shop: Shop) -> None:
    ctx = await login(demo_shop)
    order = await call(ctx, "cancel_pending_order", **cancel(PENDING))
    paid = G["orders"][PENDING]["payment_history"][0]
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "no longer needed")
    assert order["payment_history"] == [paid, {**paid, "transaction_type": "refund"}]
    assert demo_shop.order(PENDING) == order
    assert balance(demo_shop, AVA, GIFT) == 120.0


async def test_cancel_credits_a_gift_card_at_once(demo_shop: Shop) -> None:
    ctx = await login(demo_shop, OLIVIA)
    before = balance(demo_shop, OLIVIA, OLIVIA_GIFT)
    order = await call(ctx, "cancel_pending_order", **cancel(OLIVIA_ORDER, "ordered by mistake"))
    refund = order["payment_history"][-1]
    assert refund["transaction_type"] == "refund"
    assert balance(demo_shop, OLIVIA, OLIVIA_GIFT) == round(before + refund["amount"], 2)


async def test_modify_order_address_and_user_address(demo_shop: Shop) -> None:
    ctx = await login(demo_shop)
    order = await call(ctx, "modify_pending_order_address", order_id=PENDING, **ADDRESS)
    assert (order["address"], order["status"]) == (ADDRESS, "pending")
    user = await call(ctx, "modify_user_address", user_id=AVA, **ADDRESS)
    assert user["address"] == ADDRESS
    assert (demo_shop.order(DELIVERED) or {})["address"] == G["orders"][DELIVERED]["address"]


async def test_modify_payment_moves_money(demo_shop: Shop) -> None:
    user, oid, gift, card = (
        "omar_johnson_4506",
        "#W3522195",
        "gift_card_0195501",
        "credit_card_1870505",
    )
    ctx = await login(demo_shop, user)
    before = balance(demo_shop, user, gift)
    order = await call(ctx, "modify_pending_order_payment", **pay(oid, gift))
    amount = order["payment_history"][0]["amount"]
    assert order["status"] == "pending"
    assert order["payment_history"][1:] == [
        {"transaction_type": "payment", "amount": amount, "payment_method_id": gift},
        {"transaction_type": "refund", "amount": amount, "payment_method_id": card},
    ]
    assert balance(demo_shop, user, gift) == round(before - amount, 2)
    back_again = await call(ctx, "modify_pending_order_payment", **pay(oid, card))
    assert balance(demo_shop, user, gift) == before
    assert len(back_again["payment_history"]) == 5


async def test_modify_items_once(demo_shop: Shop) -> None:
    ctx = await login(demo_shop)
    old = G["orders"][PENDING]["items"][1]
    new_id = others(PENDING, 1)[0]
    new = G["products"][old["product_id"]]["variants"][new_id]
    diff = round(new["price"] - old["price"], 2)
    order = await call(ctx, MODIFY, **swap(PENDING, [old["item_id"]], [new_id], GIFT))
    assert order["status"] == "pending (item modified)"
    assert order["items"][0] == G["orders"][PENDING]["items"][0]
    assert order["items"][1] == {**old, "item_id": new_id, "price": new["price"],
                                 "options": new["options"]}  # fmt: skip
    kind = "payment" if diff > 0 else "refund"
    assert order["payment_history"][-1] == {"transaction_type": kind, "amount": abs(diff),
                                            "payment_method_id": GIFT}  # fmt: skip
    assert balance(demo_shop, AVA, GIFT) == round(120.0 - diff, 2)
    for name, arguments in [(MODIFY, swap(PENDING, [new_id], [old["item_id"]], GIFT)),
                            ("cancel_pending_order", cancel(PENDING))]:  # fmt: skip
        with pytest.raises(ToolFailed, match="only pending"):
            await call(ctx, name, **arguments)


async def test_modify_items_ordered_twice(tau2_shop: Shop) -> None:
    order = tau2_shop.order("#W7208030") or {}  # the same item ordered twice
    ctx = make_ctx(tau2_shop)
    user = tau2_shop.user(order["user_id"]) or {}
    await call(ctx, "find_user_id_by_email", email=user["email"])
    product = tau2_shop.product(order["items"][0]["product_id"]) or {}
    new = next(v for v, r in product["variants"].items() if r["available"] and v != "5753502325")
    method = order["payment_history"][0]["payment_method_id"]
    result = await call(ctx, MODIFY, **swap("#W7208030", ["5753502325"] * 2, [new] * 2, method))
    assert [i["item_id"] for i in result["items"]] == [new, new]


async def test_return(demo_shop: Shop) -> None:
    ctx = await login(demo_shop, RAJ)
    chosen = items(RAJ_ORDER)[2::-1]
    order = await call(ctx, RETURN, **back(RAJ_ORDER, chosen, RAJ_GIFT))
    assert order["status"] == "return requested"
    assert order["return_items"] == sorted(chosen)
    assert order["return_payment_method_id"] == RAJ_GIFT
    assert order["payment_history"] == G["orders"][RAJ_ORDER]["payment_history"]
    assert balance(demo_shop, RAJ, RAJ_GIFT) == 24.0  # refunded once the items are back
    with pytest.raises(ToolFailed, match="only delivered"):
        await call(ctx, RETURN, **back(RAJ_ORDER, chosen, RAJ_GIFT))


async def test_exchange(demo_shop: Shop) -> None:
    ctx = await login(demo_shop, RAJ)
    old = items(RAJ_ORDER)[:2]
    new = [others(RAJ_ORDER, 0)[0], others(RAJ_ORDER, 1)[0]]
    order = await call(ctx, EXCHANGE, **swap(RAJ_ORDER, old[::-1], new[::-1], RAJ_GIFT))
    prices = {v: r["price"] for p in G["products"].values() for v, r in p["variants"].items()}
    assert order["status"] == "exchange requested"
    assert (order["exchange_items"], order["exchange_new_items"]) == (sorted(old), sorted(new))
    assert order["exchange_payment_method_id"] == RAJ_GIFT
    diff = sum(prices[n] for n in new) - sum(prices[o] for o in old)
    assert order["exchange_price_difference"] == round(diff, 2)
    assert order["items"] == G["orders"][RAJ_ORDER]["items"]  # replaced when the items are back
    assert balance(demo_shop, RAJ, RAJ_GIFT) == 24.0
    with pytest.raises(ToolFailed, match="only delivered"):
        await call(ctx, EXCHANGE, **swap(RAJ_ORDER, old, new, RAJ_GIFT))


async def test_concurrent_cancels_apply_once(demo_shop: Shop) -> None:
    ctx = await login(demo_shop)
    calls = [call(ctx, "cancel_pending_order", **cancel(PENDING)) for _ in range(4)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, ToolFailed) for r in results if isinstance(r, BaseException))
    order = demo_shop.order(PENDING) or {}
    assert [p["transaction_type"] for p in order["payment_history"]] == ["payment", "refund"]


async def test_check_order_authenticates_then_looks_up(demo_shop: Shop) -> None:
    # The local variant's one tool: who-are-you and which-order in one call,
    # with the same refusals as the two tools it combines.
    from examples.retail.tools import check_order

    ava = G["users"][AVA]
    first, last = ava["name"]["first_name"], ava["name"]["last_name"]
    zip_code = ava["address"]["zip"]

    ctx = make_ctx(demo_shop)
    with pytest.raises(ToolFailed, match="No user named"):
        await check_order(
            ctx, {"first_name": "John", "last_name": "Doe", "zip": "12345", "order_id": PENDING}
        )
    assert AUTH_KEY not in ctx.vars
    found = await check_order(
        ctx, {"first_name": first, "last_name": last, "zip": zip_code, "order_id": PENDING}
    )
    assert found["order_id"] == PENDING
    assert found["user_id"] == AVA
    assert ctx.vars[AUTH_KEY] == AVA
    # another customer's order gets the not-found answer, not the order
    with pytest.raises(ToolFailed, match="was not found among the orders"):
        await check_order(
            ctx, {"first_name": first, "last_name": last, "zip": zip_code, "order_id": RAJ_ORDER}
        )
    # and the conversation stays bound to Ava
    raj = G["users"][RAJ]
    with pytest.raises(ToolFailed, match="already authenticated"):
        await check_order(
            ctx,
            {
                "first_name": raj["name"]["first_name"],
                "last_name": raj["name"]["last_name"],
                "zip": raj["address"]["zip"],
                "order_id": RAJ_ORDER,
            },
        )


async def test_cancel_order_authenticates_then_cancels_a_pending_order(demo_shop: Shop) -> None:
    # The local variant's write: who-are-you and cancel in one call, with the
    # checks of cancel_pending_order; the shop changes, the answer is short.
    from examples.retail.tools import cancel_order

    ava = G["users"][AVA]
    who = {
        "first_name": ava["name"]["first_name"],
        "last_name": ava["name"]["last_name"],
        "zip": ava["address"]["zip"],
    }
    ctx = make_ctx(demo_shop)
    before = demo_shop.export_json()
    with pytest.raises(ToolFailed, match=r"could not be cancelled\. No user named"):
        await cancel_order(
            ctx, {**who, "zip": "00000", "order_id": PENDING, "reason": "no longer needed"}
        )
    with pytest.raises(ToolFailed) as refused:
        await cancel_order(ctx, {**who, "order_id": DELIVERED, "reason": "ordered by mistake"})
    assert str(refused.value) == (
        f"Order {DELIVERED} could not be cancelled. Order {DELIVERED} is 'delivered'; only "
        "pending orders can be cancelled."
    )
    with pytest.raises(ToolFailed, match="was not found among the orders"):
        await cancel_order(ctx, {**who, "order_id": RAJ_ORDER, "reason": "no longer needed"})
    with pytest.raises(pydantic.ValidationError):  # the schema offers only the two reasons
        await cancel_order(ctx, {**who, "order_id": PENDING, "reason": "too expensive"})
    assert demo_shop.export_json() == before  # every refusal left the shop as it was

    paid = G["orders"][PENDING]["payment_history"][0]
    result = await cancel_order(
        ctx, {**who, "order_id": PENDING.removeprefix("#"), "reason": "no longer needed"}
    )
    assert result == {
        "cancelled": True,
        "message": f"Order {PENDING} is cancelled; ${paid['amount']:.2f} goes back to "
        f"{paid['payment_method_id']} in 5 to 7 business days.",
    }
    order = demo_shop.order(PENDING) or {}
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "no longer needed")
    assert order["payment_history"][-1] == {
        "transaction_type": "refund",
        "amount": paid["amount"],
        "payment_method_id": paid["payment_method_id"],
    }
    with pytest.raises(ToolFailed, match="is 'cancelled'; only pending"):
        await cancel_order(ctx, {**who, "order_id": PENDING, "reason": "no longer needed"})


def test_the_local_variant_looks_up_or_cancels_once_per_turn() -> None:
    from examples.retail.agent import LOCAL_TOOLS, build_agent
    from examples.retail.tools import cancel_order, check_order

    local = build_agent(models=("local",))
    hosted = build_agent(models=("anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5"))
    assert (local.version, local.tool_choice) == ("2-local", "once")
    assert local.retry.max_retries == 0
    assert hosted.retry.max_retries == 3
    assert local.tools == LOCAL_TOOLS == (check_order, cancel_order)
    assert check_order.risk.names() == ("reads",)
    # the one write is irreversible, so the runtime holds it for the customer's yes
    assert (cancel_order.risk.writes, cancel_order.risk.irreversible) == (True, True)
    assert not cancel_order.idempotent
    assert (hosted.version, hosted.tool_choice, hosted.tools) == ("1", "auto", TOOLS)
