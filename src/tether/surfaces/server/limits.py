"""The request body limit, answered as a problem document.

Starlette's own body-limit middleware answers ``text/plain``; every error
of this server is a problem document, so this small ASGI middleware does
the same job: a ``Content-Length`` over the limit is refused before the body
is read, and a body sent in chunks is counted as it arrives (the route then
fails with 413 through the app's handlers).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.surfaces.server.problems import ApiProblem, respond

__all__ = ["BodyLimit"]

_DETAIL = "the request body is larger than this server accepts ({limit} bytes)"


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 (a problem document)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                declared = value
                break
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size < 0:
                problem = ApiProblem(400, "bad-request", "Content-Length is not a number")
                await respond(problem)(scope, receive, send)
                return
            if size > self.max_bytes:
                detail = _DETAIL.format(limit=self.max_bytes)
                await respond(ApiProblem(413, "too-large", detail))(scope, receive, send)
                return
        limit = self.max_bytes
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, _DETAIL.format(limit=limit))
            return message

        await self.app(scope, counted, send)
