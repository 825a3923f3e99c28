"""The app uvicorn builds in each worker process, from the environment.

``tether serve`` sets ``TETHER_SERVE_AGENTS`` (agent references, one per
line) and ``TETHER_SERVE_MODEL`` (an optional model chain), then starts
uvicorn with ``tether.surfaces.server.factory:app_from_env`` as a factory,
so one worker or several build the same app. Use it directly with your own
process manager: ``uvicorn --factory tether.surfaces.server.factory:app_from_env``.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from tether.exceptions import ConfigError
from tether.surfaces.loader import load_agent
from tether.surfaces.logs import configure_logging
from tether.surfaces.server.app import create_app
from tether.surfaces.server.config import ServerConfig

__all__ = ["app_from_env", "load_agents"]


def load_agents(refs: list[str], model: str | None = None) -> list:  # type: ignore[type-arg]
    """The agents named by ``refs`` (``module:attr`` or folders), with ``model`` as their chain."""
    if not refs:
        raise ConfigError("name at least one agent to serve (a folder or module:attr)")
    chain = [m.strip() for m in (model or "").split(",") if m.strip()]
    agents = []
    for ref in refs:
        agent = load_agent(ref)
        agents.append(agent.with_models(chain) if chain else agent)
    return agents


def app_from_env() -> FastAPI:
    """The app ``tether serve`` runs in each worker, built from ``TETHER_SERVE_*``.

    A worker is a process of its own: its log lines get the same handler as
    the CLI's (redacted; JSON with ``TETHER_LOG_FORMAT=json``).
    """
    configure_logging(os.environ.get("TETHER_LOG_LEVEL", "INFO"))
    refs = [r for r in os.environ.get("TETHER_SERVE_AGENTS", "").splitlines() if r.strip()]
    agents = load_agents(refs, os.environ.get("TETHER_SERVE_MODEL") or None)
    host = os.environ.get("TETHER_SERVE_HOST") or "127.0.0.1"
    return create_app(agents, ServerConfig.from_env(host=host, gc_freeze=True))
