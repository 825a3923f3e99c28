"""The offline demo's oversight, end to end through the CLI, on a scripted ``local`` model.

``tether chat examples/retail`` with no API key runs the small variant on
the embedded model. Here the spec ``local`` builds a scripted model instead
(the real one is slow, and absent where its packages are not installed), so
the rest is real: the CLI, the runtime, the approval gate, the tools and the
SQLite shop the example opens from ``TETHER_RETAIL_DB``. The scripted model
makes the call the embedded one makes for "cancel order #W...", and answers
from the tool result it is given.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import examples.retail.agent as retail_agent
import pytest
from examples.retail.generate import DEMO
from examples.retail.shop import Shop
from typer.testing import CliRunner

import tether.providers.local
from tether.spec.model import ModelRequest
from tether.surfaces.cli import app
from tether.testing import FunctionModel, ScriptedResponse, call

AVA = {"first_name": DEMO["first_name"], "last_name": DEMO["last_name"], "zip": DEMO["zip"]}
PENDING, DELIVERED = DEMO["pending_order"], DEMO["delivered_order"]
ORDER_ID = re.compile(r"#?W\d{7}")


def small_model(request: ModelRequest) -> ScriptedResponse:
    """The embedded model's moves on the small variant: one call, then an answer."""
    last = request.messages[-1]
    if last.role == "tool":
        result = last.results[0]
        if result.is_error:
            return f"I could not cancel the order: {result.content}"
        if result.content.startswith("not done"):
            return "As you asked, I have not cancelled the order."
        return str(json.loads(result.content)["message"])
    order_id = ORDER_ID.search(last.text)
    assert order_id is not None, last.text
    if "cancel" in last.text:  # the real model drops the '#' too: the tools accept both
        args = {**AVA, "order_id": order_id.group().lstrip("#"), "reason": "no longer needed"}
        return call("cancel_order", **args)
    return call("check_order", **AVA, order_id=order_id.group())


def hosted_moves(request: ModelRequest) -> ScriptedResponse:
    """A model on the full agent: authenticate, then cancel, then answer."""
    last = request.messages[-1]
    if last.role == "user":
        return call("find_user_id_by_name_zip", **AVA)
    result = last.results[0]
    if result.name == "find_user_id_by_name_zip":
        return call("cancel_pending_order", order_id=PENDING, reason="no longer needed")
    if result.is_error:
        return "I could not cancel it."
    return f"Order {PENDING} is {json.loads(result.content)['status']}."


class LocalModels:
    """Stands in for ``LocalModel``: what the spec ``local`` builds, and every one built."""

    def __init__(self) -> None:
        self.built: list[FunctionModel] = []
        self.moves = small_model

    def __call__(self, path: str | None = None, **_: Any) -> FunctionModel:
        model = FunctionModel(self.moves, name="local")
        self.built.append(model)
        return model

    @property
    def requests(self) -> list[ModelRequest]:
        return [r for m in self.built for r in m.requests]


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> LocalModels:
    models = LocalModels()
    monkeypatch.setattr(tether.providers.local, "LocalModel", models)
    return models


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local: LocalModels) -> Path:
    """No API key, the agent of ``examples/retail`` as it is built without one, and a
    fresh demo shop; yields the shop's file."""
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(retail_agent, "agent", retail_agent.build_agent())
    shop_file = tmp_path / "shop.sqlite"
    monkeypatch.setenv("TETHER_RETAIL_DB", str(shop_file))
    retail_agent.open_shop().close()
    return shop_file


def db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'sessions.sqlite'}"


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def status(shop_file: Path, order_id: str) -> str:
    with Shop.open(shop_file) as shop:
        order = shop.order(order_id)
        assert order is not None
        return str(order["status"])


def flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


CANCEL = f"I'm Ava Moreno, zip 94107. Please cancel my order {PENDING}, I no longer need it."


def test_the_offline_agent_is_the_small_variant_with_a_gated_cancel(offline: Path) -> None:
    agent = retail_agent.agent
    assert (agent.version, agent.models) == ("2-local", ("local",))
    assert [t.name for t in agent.tools] == ["check_order", "cancel_order"]


def test_chat_yes_cancels_the_order_in_the_shop(
    offline: Path, local: LocalModels, tmp_path: Path
) -> None:
    code, out, err = invoke(
        "chat", "examples/retail", "--db", db(tmp_path), input=f"{CANCEL}\nyes\n"
    )
    assert code == 0, err
    text = flat(out)
    assert "retail v2-local" in text
    # the question, built from the real arguments, before anything ran
    question = text.index("? approve: cancel order")
    assert PENDING.lstrip("#") in text[question : question + 60]
    ran = text.index("→ cancel_order(")
    assert question < ran
    assert f"Order {PENDING} is cancelled; $349.92 goes back to credit_card_1024001" in text
    assert status(offline, PENDING) == "cancelled"
    # "once": a call is required on the customer's message, none after the result
    assert [r.tool_choice for r in local.requests] == ["required", "none"]
    assert {s.name for s in local.requests[0].tools} == {"check_order", "cancel_order"}


def test_chat_no_leaves_the_order_and_says_so(
    offline: Path, local: LocalModels, tmp_path: Path
) -> None:
    code, out, err = invoke(
        "chat", "examples/retail", "--db", db(tmp_path), input=f"{CANCEL}\nno\n"
    )
    assert code == 0, err
    text = flat(out)
    assert "? approve: cancel order" in text
    assert "→ cancel_order(" not in text  # it never ran
    assert "not done: the user declined cancel order" in text  # what the model was told
    assert "I have not cancelled the order" in text
    assert status(offline, PENDING) == "pending"


def test_chat_a_delivered_order_is_refused_by_the_tool(
    offline: Path, local: LocalModels, tmp_path: Path
) -> None:
    message = f"I'm Ava Moreno, zip 94107. Please cancel order {DELIVERED}."
    code, out, err = invoke(
        "chat", "examples/retail", "--db", db(tmp_path), input=f"{message}\nyes\n"
    )
    assert code == 0, err
    text = flat(out)
    assert "→ cancel_order(" in text  # approved, so it ran, and refused
    assert (
        f"Order {DELIVERED} could not be cancelled. Order {DELIVERED} is 'delivered'; only "
        "pending orders can be cancelled."
    ) in text
    assert "the answer does not mention the failure" not in text + err
    assert status(offline, DELIVERED) == "delivered"


def test_approvals_approve_and_deny_continue_on_the_local_model(
    offline: Path, local: LocalModels, tmp_path: Path
) -> None:
    store = db(tmp_path)
    code, out, _ = invoke("run", "examples/retail", "-m", CANCEL, "--json", "--db", store)
    assert code == 0
    first = json.loads(out)
    assert first["status"] == "awaiting_approval"
    assert PENDING.lstrip("#") in first["output"]
    code, out, _ = invoke("approvals", "list", "--json", "--db", store)
    (pending,) = json.loads(out)

    code, out, err = invoke("approvals", "deny", pending["id"], "--db", store)
    assert code == 0, err
    assert "I have not cancelled the order" in out
    assert status(offline, PENDING) == "pending"

    code, out, _ = invoke(
        "run", "examples/retail", "-m", CANCEL, "--session", first["session_id"], "--json",
        "--db", store,
    )  # fmt: skip
    assert json.loads(out)["status"] == "awaiting_approval"
    code, out, _ = invoke("approvals", "list", "--json", "--db", store)
    (again,) = json.loads(out)
    code, out, err = invoke("approvals", "approve", again["id"], "--db", store)
    assert code == 0, err
    assert f"Order {PENDING} is cancelled" in flat(out)
    assert status(offline, PENDING) == "cancelled"


def test_the_full_agent_started_on_local_is_approved_on_local_without_model(
    offline: Path, local: LocalModels, tmp_path: Path
) -> None:
    # The route the issue reported: the full agent (a hosted chain by default) run
    # with --model local. Deciding must not fall back to the hosted chain, which
    # has no key here.
    local.moves = hosted_moves
    store, ref = db(tmp_path), "examples.retail.agent:hosted_agent"
    code, out, err = invoke("run", ref, "-m", CANCEL, "--model", "local", "--json", "--db", store)
    assert code == 0, err
    first = json.loads(out)
    assert first["status"] == "awaiting_approval"
    code, out, _ = invoke("sessions", "show", first["session_id"], "--json", "--db", store)
    created = json.loads(out)["events"][0]["data"]
    assert (created["version"], created["models"]) == ("1", ["local"])
    code, out, _ = invoke("approvals", "list", "--json", "--db", store)
    (pending,) = json.loads(out)
    built = len(local.built)

    code, out, err = invoke("approvals", "approve", pending["id"], "--db", store)
    assert code == 0, err
    assert len(local.built) == built + 1  # the recorded chain, built again
    assert status(offline, PENDING) == "cancelled"
    assert f"Order {PENDING} is cancelled." in out
