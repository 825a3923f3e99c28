"""Fixtures and helpers for the retail example's tests.

The tau2-bench retail data stays outside the repository, in the ``shared``
folder beside the checkout (``<repo>/../shared/data/tau2-retail``, or
``$TETHER_TAU2_DIR``); tests that need it are skipped, with the reason, when
it is absent.

:func:`apply_actions_directly` replays a task's expected actions through the
tools (no model, no runtime) and returns the final shop: the reference that a
replay through the full runtime can be compared with.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from examples.retail.evals import harness
from examples.retail.evals._tau2 import PUBLIC as PUBLIC_TOOLS
from examples.retail.evals._tau2 import TOOLS_BY_NAME
from examples.retail.generate import HELP_ARTICLES, generate
from examples.retail.guards import AUTH_KEY
from examples.retail.shop import Shop

from tether import ToolContext, ToolFailed

JSON = dict[str, Any]


TAU2_MISSING = (
    "tau2-bench retail data not found: put ../shared/data/tau2-retail beside the "
    "checkout or set TETHER_TAU2_DIR"
)


def tau2_retail_dir() -> Path | None:
    """The tau2-bench retail data folder (as the evals find it), or ``None`` if absent."""
    path = harness.tau2_dir()
    ok = (path / "db.json").is_file() and (path / "tasks_train.json").is_file()
    return path.resolve() if ok else None


def require_tau2_retail() -> Path:
    """The data folder; skip the calling test with a clear reason if it is absent.

    A skip, not a failure, even where services are required: the README's
    test command must pass on a clone without the shared data beside it.
    """
    path = tau2_retail_dir()
    if path is None:
        pytest.skip(TAU2_MISSING)
    return path


def make_ctx(shop: Shop, vars: dict[str, Any] | None = None, *, key: str = "k") -> ToolContext:
    """A tool context serving ``shop``, as the runtime would build it."""
    return ToolContext(
        session_id="t",
        step=1,
        call_id="c1",
        idempotency_key=key,
        user_id=None,
        vars={} if vars is None else vars,
        deps=shop,
    )


def _owner(shop: Shop, arguments: JSON) -> str | None:
    if "user_id" in arguments:
        return str(arguments["user_id"])
    order = shop.order(str(arguments.get("order_id", "")))
    return None if order is None else str(order["user_id"])


async def apply_actions(
    shop: Shop,
    actions: list[JSON],
    *,
    failures: list[tuple[str, str]] | None = None,
    calls: list[tuple[str, JSON]] | None = None,
) -> None:
    """Run ``actions`` (tau2 ``{"name", "arguments"}`` dicts) in order on ``shop``.

    All actions share one session (one ``vars``). Many tasks list only the
    actions that matter and leave out the authentication the conversation
    starts with: when an action needs an authenticated user and none is, the
    session first authenticates, through ``find_user_id_by_email``, as the
    owner of the order (or the user) the action names. A ``ToolFailed`` is
    recorded in ``failures`` as ``(action id or name, message)`` and the replay
    goes on, as a model would; with ``failures=None`` it is raised instead.
    ``calls``, if given, receives every ``(tool name, arguments)`` made, the
    added authentication included: the exact trajectory a model would take.
    """
    ctx = make_ctx(shop)
    for action in actions:
        name, arguments = action["name"], action["arguments"]
        if name not in PUBLIC_TOOLS and AUTH_KEY not in ctx.vars:
            owner = _owner(shop, arguments)
            user = shop.user(owner) if owner else None
            if user is not None:
                login = {"email": user["email"]}
                await TOOLS_BY_NAME["find_user_id_by_email"](ctx, login)
                if calls is not None:
                    calls.append(("find_user_id_by_email", login))
        if calls is not None:
            calls.append((name, arguments))
        try:
            await TOOLS_BY_NAME[name](ctx, arguments)
        except ToolFailed as exc:
            if failures is None:
                raise
            failures.append((str(action.get("action_id") or name), str(exc)))


def apply_actions_directly(
    db: JSON,
    actions: list[JSON],
    *,
    failures: list[tuple[str, str]] | None = None,
    calls: list[tuple[str, JSON]] | None = None,
) -> JSON:
    """The shop ``db`` after ``actions`` ran through the tools, as an exported dict.

    ``db`` is not modified. See :func:`apply_actions` for authentication and
    ``failures``. Call it from synchronous code (it runs its own event loop).
    """
    shop = Shop.memory()
    shop.load_json(db)
    asyncio.run(apply_actions(shop, actions, failures=failures, calls=calls))
    return shop.export_json()


# --- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def tau2_db() -> JSON:
    """The tau2-bench retail db.json (skips if absent)."""
    data: JSON = json.loads((require_tau2_retail() / "db.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def tau2_tasks() -> list[JSON]:
    """The tau2-bench retail training tasks (skips if absent)."""
    path = require_tau2_retail() / "tasks_train.json"
    tasks: list[JSON] = json.loads(path.read_text(encoding="utf-8"))
    return tasks


@pytest.fixture(scope="session")
def tau2_template(tau2_db: JSON) -> Iterator[Shop]:
    """The real shop, loaded once; tests take copies (see ``tau2_shop``)."""
    shop = Shop.memory()
    shop.load_json(tau2_db)
    yield shop
    shop.close()


@pytest.fixture
def tau2_shop(tau2_template: Shop) -> Iterator[Shop]:
    """A fresh copy of the real shop, private to the test."""
    shop = tau2_template.copy()
    yield shop
    shop.close()


@pytest.fixture
def demo_shop() -> Iterator[Shop]:
    """The generated shop (seed 0) with the help center."""
    shop = Shop.memory()
    shop.load_json(generate())
    shop.load_help_articles(HELP_ARTICLES)
    yield shop
    shop.close()
