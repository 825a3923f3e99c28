"""``GET /metrics``: the Prometheus exposition of a :class:`~tether.surfaces.ops.metrics.Metrics`.

Mount it with ``app.include_router(metrics_router(metrics))``. When
``TETHER_METRICS_TOKEN`` is set (read when the router is built) a scrape
must send ``Authorization: Bearer <that token>``; otherwise the route is
open, and the port serving it belongs on an internal network only (the
metrics name agents, models and tools, and show traffic). The route is left
out of the OpenAPI schema: it is for Prometheus, not for API clients.
"""

from __future__ import annotations

import hmac
import os

from fastapi import APIRouter, Request, Response

from tether.surfaces.ops.metrics import Metrics
from tether.surfaces.server.problems import ApiProblem, respond

__all__ = ["TOKEN_ENV", "metrics_router"]

#: the environment variable holding the bearer token a scrape must send
TOKEN_ENV = "TETHER_METRICS_TOKEN"


def metrics_router(metrics: Metrics, *, token: str | None = None) -> APIRouter:
    """A router serving ``metrics`` at ``GET /metrics``.

    ``token``: the bearer token to require (default: ``$TETHER_METRICS_TOKEN``;
    unset or empty leaves the route open).
    """
    required = token if token is not None else os.environ.get(TOKEN_ENV, "")
    expected = f"Bearer {required}".encode() if required else None
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def scrape(request: Request) -> Response:  # sync: a multi-process render reads files
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return respond(
                    ApiProblem(
                        401,
                        "metrics-token",
                        f"send the metrics token as 'Authorization: Bearer ...' ({TOKEN_ENV})",
                        headers={"WWW-Authenticate": "Bearer"},
                    )
                )
        body, content_type = metrics.render()
        return Response(content=body, media_type=content_type)

    return router
