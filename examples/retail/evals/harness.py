"""What `tether eval examples/retail/evals` runs the cases against.

- :func:`agent`: the full retail agent (its policy and all 18 tools); on a
  live run with only local models, the small variant the embedded model
  gets (look up an order, cancel a pending one; see ``examples/retail/agent.py``).
- :class:`ShopEnvironment`: a fresh in-memory copy of a shop for every case,
  and its snapshot (products, users, orders and the outbox of sent emails)
  for ``db-state`` and ``no-writes``. ``state: {shop: tau2}`` (the default)
  is the real tau2-bench retail shop, read from ``../shared/data/tau2-retail``
  beside the checkout (or ``$TETHER_TAU2_DIR``); ``state: {shop: demo}`` is
  the generated demo shop (Ava Moreno and friends).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from examples.retail.agent import build_agent
from examples.retail.generate import HELP_ARTICLES, generate
from examples.retail.shop import Shop
from tether import Agent, ConfigError, Model
from tether.surfaces.evals import Case

__all__ = ["ShopEnvironment", "agent", "environment", "tau2_dir"]

#: the chain the full agent is declared with (never called in scripted mode)
HOSTED = ("anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5")


def tau2_dir() -> Path:
    """The tau2-bench retail data: ``$TETHER_TAU2_DIR`` or ``../shared/data/tau2-retail``."""
    explicit = os.environ.get("TETHER_TAU2_DIR")
    if explicit:
        return Path(explicit)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "tau2-retail"


@cache
def _template(name: str) -> Shop:
    shop = Shop.memory()
    if name == "tau2":
        path = tau2_dir() / "db.json"
        if not path.exists():
            raise ConfigError(
                f"the tau2 retail shop is not at {path}: put the shared data beside the "
                "checkout or set TETHER_TAU2_DIR"
            )
        shop.load_json(json.loads(path.read_text(encoding="utf-8")))
    elif name == "demo":
        shop.load_json(generate())
    else:
        raise ConfigError(f"unknown shop {name!r}: use 'tau2' or 'demo'")
    shop.load_help_articles(HELP_ARTICLES)
    return shop


@cache
def _pristine(name: str) -> dict[str, Any]:
    """The export of an untouched template (read-only: callers never mutate snapshots)."""
    shop = _template(name)
    data = shop.export_json()
    data["outbox"] = shop.outbox()
    return data


class ShopEnvironment:
    """A fresh copy of a shop for one case."""

    def __init__(self, case: Case) -> None:
        self.name = str(case.state.get("shop", "tau2"))
        self.shop = _template(self.name).copy()
        articles = case.state.get("help_articles")
        if articles:
            self.shop.load_help_articles(list(articles))
        # the first snapshot is taken before anything ran: the template's own
        self._untouched = True

    def deps(self) -> Shop:
        self._untouched = False
        return self.shop

    def snapshot(self) -> dict[str, Any]:
        if self._untouched:
            return _pristine(self.name)
        data = self.shop.export_json()
        data["outbox"] = self.shop.outbox()
        return data

    def close(self) -> None:
        self.shop.close()


def environment(case: Case) -> ShopEnvironment:
    return ShopEnvironment(case)


def agent(case: Case, models: Sequence[str | Model] | None = None) -> Agent:
    """The retail agent for ``case`` (the local variant on an all-local live chain)."""
    return build_agent(models=tuple(models) if models else HOSTED)
