"""The Tether server: sessions, streaming turns and approvals over HTTP (FastAPI + uvicorn).

``tether serve AGENT...`` runs it; :func:`create_app` builds the ASGI app
for your own process manager. See docs/deployment.md.

Names load on first use: ``tether.client`` imports this package's
``models`` without pulling in FastAPI, uvicorn or the store.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.surfaces.server.app import ServerState, create_app
    from tether.surfaces.server.config import ServerConfig

__all__ = ["ServerConfig", "ServerState", "create_app"]

_WHERE = {
    "ServerConfig": "tether.surfaces.server.config",
    "ServerState": "tether.surfaces.server.app",
    "create_app": "tether.surfaces.server.app",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
