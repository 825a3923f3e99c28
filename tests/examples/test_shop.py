"""The SQLite shop: exact db.json round trips, transactions, copies; the generator, the
agent's shop and the command line."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from examples.retail.__main__ import app
from examples.retail.agent import build_agent, default_shop_path
from examples.retail.generate import DEMO, HELP_ARTICLES, generate, to_json
from examples.retail.shop import Shop
from examples.retail.tools import TOOLS
from typer.testing import CliRunner

JSON = dict[str, Any]


def canonical(data: JSON) -> str:
    return json.dumps(data, sort_keys=True)


def test_real_db_round_trip_is_exact(tau2_db: JSON) -> None:
    shop = Shop.memory()
    shop.load_json(tau2_db)
    exported = shop.export_json()
    assert canonical(exported) == canonical(tau2_db)
    assert exported == tau2_db  # list order too (dict equality ignores key order only)
    assert list(exported["orders"]) == list(tau2_db["orders"])


def test_real_db_round_trip_through_a_file(tau2_db: JSON, tmp_path: Path) -> None:
    with Shop.open(tmp_path / "shop.sqlite") as shop:
        shop.load_json(tau2_db)
    with Shop.open(tmp_path / "shop.sqlite") as shop:
        assert canonical(shop.export_json()) == canonical(tau2_db)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_generated_round_trip_is_exact(seed: int) -> None:
    data = generate(seed)
    shop = Shop.memory()
    shop.load_json(data)
    assert to_json(shop.export_json()) == to_json(data)  # key order preserved as well


def test_action_keys_and_payment_extras_round_trip() -> None:
    data = generate()
    order = next(iter(data["orders"].values()))
    order |= {"exchange_price_difference": -12.5, "exchange_items": ["1", "2"], "note": None}
    user = next(iter(data["users"].values()))
    method = next(iter(user["payment_methods"].values()))
    method["nickname"] = "main card"
    shop = Shop.memory()
    shop.load_json(data)
    assert canonical(shop.export_json()) == canonical(data)


def test_load_replaces_everything_and_rejects_unknown_keys() -> None:
    shop = Shop.memory()
    shop.load_json(generate(1))
    data = generate(0)
    shop.load_json(data)
    assert canonical(shop.export_json()) == canonical(data)
    bad = generate(2)
    next(iter(bad["products"].values()))["colour"] = "red"
    with pytest.raises(ValueError, match="unknown keys"):
        shop.load_json(bad)
    assert canonical(shop.export_json()) == canonical(data)


def test_lookups_return_db_json_records(tau2_shop: Shop, tau2_db: JSON) -> None:
    assert tau2_shop.order("#W2611340") == tau2_db["orders"]["#W2611340"]
    assert tau2_shop.user("noah_brown_6181") == tau2_db["users"]["noah_brown_6181"]
    assert tau2_shop.product("9523456873") == tau2_db["products"]["9523456873"]
    product_id, variant = tau2_shop.variant("9612497925") or ("", {})
    assert product_id == "9523456873"
    assert variant == tau2_db["products"]["9523456873"]["variants"]["9612497925"]
    assert tau2_shop.order("#W0") is None
    assert tau2_shop.variant("0") is None
    assert tau2_shop.user_ids_by_email("NOAH.BROWN7922@example.com") == ["noah_brown_6181"]
    assert tau2_shop.user_ids_by_name_zip("noah", "BROWN", "80279") == ["noah_brown_6181"]
    assert len(tau2_shop.product_types()) == 50


def test_transaction_rolls_back_on_error(demo_shop: Shop) -> None:
    before = demo_shop.export_json()
    order = demo_shop.order(DEMO["pending_order"]) or {}

    def cancel_then_fail() -> None:
        with demo_shop.transaction():
            demo_shop.save_order({**order, "status": "cancelled"})
            demo_shop.set_balance(DEMO["user_id"], DEMO["gift_card"], 0.0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cancel_then_fail()
    assert demo_shop.export_json() == before


def test_copy_is_independent(demo_shop: Shop) -> None:
    copy = demo_shop.copy()
    copy.set_balance(DEMO["user_id"], DEMO["gift_card"], 1.0)
    assert demo_shop.export_json() != copy.export_json()
    gift = (demo_shop.user(DEMO["user_id"]) or {})["payment_methods"][DEMO["gift_card"]]
    assert gift["balance"] == 120.0


def test_outbox_and_help_center_are_not_exported(demo_shop: Shop) -> None:
    before = demo_shop.export_json()
    first = demo_shop.send_email(
        user_id="u", recipient="a@example.com", subject="s", body="b", idempotency_key="k"
    )
    again = demo_shop.send_email(
        user_id="u", recipient="a@example.com", subject="s", body="b", idempotency_key="k"
    )
    assert first == again
    assert len(demo_shop.outbox()) == 1
    assert [a["slug"] for a in demo_shop.help_articles()] == [a["slug"] for a in HELP_ARTICLES]
    assert demo_shop.export_json() == before


def test_shared_between_threads(demo_shop: Shop) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert demo_shop.order(DEMO["pending_order"]) is not None
                with demo_shop.transaction():
                    demo_shop.set_balance(DEMO["user_id"], DEMO["gift_card"], 5.0)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- the generator -------------------------------------------------------------


def test_generator_is_deterministic() -> None:
    assert to_json(generate(0)) == to_json(generate(0))
    assert to_json(generate(5)) == to_json(generate(5))
    assert to_json(generate(0)) != to_json(generate(1))


@pytest.mark.parametrize("seed", [0, 3])
def test_generated_shop_is_consistent(seed: int) -> None:
    data = generate(seed)
    products, users, orders = data["products"], data["users"], data["orders"]
    assert (len(products), len(users), len(orders)) == (10, 20, 40)
    assert all(3 <= len(p["variants"]) <= 8 for p in products.values())
    statuses = Counter(o["status"] for o in orders.values())
    assert {"pending", "processed", "delivered", "cancelled"} <= set(statuses)
    for uid, user in users.items():
        assert [o for o, rec in orders.items() if rec["user_id"] == uid] == user["orders"]
    for order in orders.values():
        methods = users[order["user_id"]]["payment_methods"]
        net = 0.0
        for p in order["payment_history"]:
            assert p["payment_method_id"] in methods
            net += p["amount"] if p["transaction_type"] == "payment" else -p["amount"]
        items_total = sum(i["price"] for i in order["items"])
        expected = 0.0 if order["status"] == "cancelled" else items_total
        assert round(net, 2) == round(expected, 2), order["order_id"]
        shipped = order["status"] not in ("pending", "cancelled", "pending (item modified)")
        assert bool(order["fulfillments"]) == shipped
        for item in order["items"]:
            assert item["item_id"] in products[item["product_id"]]["variants"]
    for method in (m for u in users.values() for m in u["payment_methods"].values()):
        assert ("balance" in method) == (method["source"] == "gift_card")


def test_demo_customer_is_stable() -> None:
    for seed in (0, 9):
        data = generate(seed)
        user = data["users"][DEMO["user_id"]]
        assert user["email"] == DEMO["email"]
        assert user["address"]["zip"] == DEMO["zip"]
        assert user["orders"] == [DEMO["pending_order"], DEMO["delivered_order"]]
        assert data["orders"][DEMO["pending_order"]]["status"] == "pending"
        assert data["orders"][DEMO["delivered_order"]]["status"] == "delivered"


# --- the agent's shop and the command line --------------------------------------------


def test_agent_opens_and_fills_its_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_RETAIL_DB", raising=False)
    monkeypatch.setenv("TETHER_CACHE_DIR", str(tmp_path / "cache"))
    assert default_shop_path() == tmp_path / "cache" / "retail" / "shop.sqlite"
    agent = build_agent(models=["scripted"])
    assert (agent.name, agent.tools) == ("retail", TOOLS)
    assert agent.deps is not None
    with agent.deps() as shop:
        assert (shop.user(DEMO["user_id"]) or {})["email"] == DEMO["email"]
        assert len(shop.help_articles()) == len(HELP_ARTICLES)
    assert default_shop_path().is_file()
    monkeypatch.setenv("TETHER_RETAIL_DB", str(tmp_path / "mine.sqlite"))
    assert default_shop_path() == tmp_path / "mine.sqlite"


def test_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    shop_file, db, out = tmp_path / "shop.json", tmp_path / "shop.sqlite", tmp_path / "out.json"
    result = runner.invoke(app, ["generate", "-o", str(shop_file), "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert shop_file.read_text(encoding="utf-8") == to_json(generate(4))
    result = runner.invoke(app, ["load", "--shop", str(shop_file), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "10 products, 20 users, 40 orders" in result.output
    result = runner.invoke(app, ["export", "--db", str(db), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == shop_file.read_text(encoding="utf-8")
    result = runner.invoke(app, ["demo-info"])
    assert result.exit_code == 0, result.output
    assert f"I'm Ava Moreno, zip {DEMO['zip']}" in result.output
    assert f"Please cancel my order {DEMO['pending_order']}" in result.output
    result = runner.invoke(app, ["export", "--db", str(tmp_path / "none.sqlite"), "-o", str(out)])
    assert result.exit_code != 0
