"""The Tether server: sessions, streaming turns and approvals over HTTP (FastAPI + uvicorn).

``tether serve AGENT...`` runs it; :func:`create_app` builds the ASGI app
for your own process manager. See docs/deployment.md.
"""

from __future__ import annotations

from tether.surfaces.server.app import ServerState, create_app
from tether.surfaces.server.config import ServerConfig

__all__ = ["ServerConfig", "ServerState", "create_app"]
