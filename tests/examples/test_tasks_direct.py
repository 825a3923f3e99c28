"""Every tau2-bench retail training task, replayed directly through the tools.

For each task the expected actions (``evaluation_criteria.actions``) run in
order in one session on a fresh copy of the real shop. Every action must
succeed except the few that fail in the benchmark's own reference replay
(listed in :data:`EXPECTED_FAILURES` with the reason), and the final shop must
differ from the original exactly where the successful writes wrote.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from examples.retail.shop import Shop

from tests.examples.conftest import (
    TAU2_MISSING,
    TOOLS_BY_NAME,
    apply_actions,
    apply_actions_directly,
    tau2_retail_dir,
)

JSON = dict[str, Any]

EXPECTED_FAILURES: dict[str, set[str]] = {
    # The reference trajectory probes a product id that is not in the shop.
    "2": {"2_1"},
    "3": {"3_1"},
    "4": {"4_1"},
    # The user first gives a wrong email / wrong zip codes, then the right ones.
    "35": {"35_0"},
    "37": {"37_0"},
    "54": {"54_0"},
    "67": {"67_0", "67_1"},
    # The user first gives order ids without the 'W' (#9502126, #9502127).
    "46": {"46_1", "46_2"},
    "47": {"47_1", "47_2"},
    # The only payment method is a gift card with $17.00; the price difference
    # is $21.10. Policy: a gift card must cover the difference, so the exchange
    # is refused and the shop stays as it was.
    "105": {"106_0"},
}

ORDER_KEYS: dict[str, tuple[set[str], set[str]]] = {
    # tool: (keys it must change, keys it may change)
    "cancel_pending_order": ({"status", "cancel_reason", "payment_history"}, set()),
    "modify_pending_order_address": (set(), {"address"}),
    "modify_pending_order_payment": ({"payment_history"}, set()),
    "modify_pending_order_items": ({"items", "status"}, {"payment_history"}),
    "return_delivered_order_items": (
        {"status", "return_items", "return_payment_method_id"},
        set(),
    ),
    "exchange_delivered_order_items": (
        {"status", "exchange_items", "exchange_new_items", "exchange_payment_method_id"},
        {"exchange_price_difference"},
    ),
}


def _load_task_ids() -> list[Any]:
    root = tau2_retail_dir()
    if root is None:
        return [pytest.param("absent", marks=pytest.mark.skip(reason=TAU2_MISSING))]
    tasks = json.loads((root / "tasks_train.json").read_text(encoding="utf-8"))
    return [t["id"] for t in tasks]


def changes(before: JSON, after: JSON) -> set[tuple[str, ...]]:
    """Where two shops differ: product ids, user or order fields, gift card fields."""
    found: set[tuple[str, ...]] = set()
    for kind in ("products", "users", "orders"):
        for rid in before[kind].keys() | after[kind].keys():
            old, new = before[kind].get(rid), after[kind].get(rid)
            if old == new:
                continue
            if kind == "products" or old is None or new is None:
                found.add((kind, rid))
                continue
            for key in old.keys() | new.keys():
                if old.get(key) == new.get(key):
                    continue
                if key != "payment_methods":
                    found.add((kind, rid, key))
                    continue
                for mid in old[key].keys() | new[key].keys():
                    a, b = old[key].get(mid, {}), new[key].get(mid, {})
                    found |= {
                        (kind, rid, key, mid, k)
                        for k in a.keys() | b.keys()
                        if a.get(k) != b.get(k)
                    }
    return found


def allowed_changes(
    db: JSON, writes: list[JSON]
) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(changes the successful writes must make, changes they may make)."""
    must: set[tuple[str, ...]] = set()
    may: set[tuple[str, ...]] = set()
    for action in writes:
        name, args = action["name"], action["arguments"]
        if name == "modify_user_address":
            may.add(("users", args["user_id"], "address"))
            continue
        order = db["orders"][args["order_id"]]
        required, optional = ORDER_KEYS[name]
        must |= {("orders", order["order_id"], k) for k in required}
        may |= {("orders", order["order_id"], k) for k in required | optional}
        methods = {p["payment_method_id"] for p in order["payment_history"]}
        methods.add(args.get("payment_method_id", ""))
        gift_cards = {m for m in methods if m.startswith("gift_card_")}
        may |= {("users", order["user_id"], "payment_methods", m, "balance") for m in gift_cards}
    return must, may | must


@pytest.fixture(scope="module")
def tasks_by_id(tau2_tasks: list[JSON]) -> dict[str, JSON]:
    return {t["id"]: t for t in tau2_tasks}


@pytest.mark.parametrize("task_id", _load_task_ids())
async def test_expected_actions_apply(
    task_id: str, tasks_by_id: dict[str, JSON], tau2_template: Shop, tau2_db: JSON
) -> None:
    actions = tasks_by_id[task_id]["evaluation_criteria"]["actions"]
    shop = tau2_template.copy()
    failures: list[tuple[str, str]] = []
    await apply_actions(shop, actions, failures=failures)
    assert {aid for aid, _ in failures} == EXPECTED_FAILURES.get(task_id, set()), failures

    failed = {aid for aid, _ in failures}
    writes = [
        a
        for a in actions
        if a["action_id"] not in failed
        and (TOOLS_BY_NAME[a["name"]].risk.writes and a["name"] != "send_email")
    ]
    must, may = allowed_changes(tau2_db, writes)
    changed = changes(tau2_db, shop.export_json())
    assert changed <= may, f"unexpected changes: {sorted(changed - may)}"
    assert must <= changed, f"missing changes: {sorted(must - changed)}"
    if not writes:
        assert changed == set()


def test_apply_actions_directly_returns_the_final_shop(
    tasks_by_id: dict[str, JSON], tau2_db: JSON
) -> None:
    actions = tasks_by_id["0"]["evaluation_criteria"]["actions"]
    snapshot = json.dumps(tau2_db, sort_keys=True)
    final = apply_actions_directly(tau2_db, actions)
    assert json.dumps(tau2_db, sort_keys=True) == snapshot  # the input is not modified
    order = final["orders"]["#W2378156"]
    assert order["status"] == "exchange requested"
    assert order["exchange_new_items"] == ["7706410293", "7747408585"]
    failures: list[tuple[str, str]] = []
    apply_actions_directly(
        tau2_db, tasks_by_id["67"]["evaluation_criteria"]["actions"], failures=failures
    )
    assert [aid for aid, _ in failures] == ["67_0", "67_1"]


def test_action_arguments_match_the_tool_schemas(tau2_tasks: list[JSON]) -> None:
    for task in tau2_tasks:
        for action in task["evaluation_criteria"]["actions"]:
            schema = TOOLS_BY_NAME[action["name"]].parameters
            assert set(action["arguments"]) == set(schema["properties"]), action["name"]
            assert set(schema.get("required", [])) <= set(action["arguments"])
