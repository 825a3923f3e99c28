"""Every error the server answers is a problem document (RFC 9457), never a stack trace.

:class:`ApiProblem` is raised by handlers; :func:`problem_of` maps Tether's
own exceptions (a session in the wrong state, a rate limit, a conflict) to
the status a client can act on; :func:`install` registers the handlers,
including the last-resort one that logs the traceback and answers a plain
500 whose detail names nothing internal.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.exceptions import (
    AccessDenied,
    ApprovalError,
    ConfigError,
    InputRejected,
    InvalidSessionState,
    ModelUnavailable,
    NotApprover,
    RateLimited,
    SessionConflict,
    SessionNotFound,
    ShuttingDown,
    TetherError,
)

__all__ = [
    "PROBLEM_JSON",
    "ApiProblem",
    "AsciiJSON",
    "Shield",
    "install",
    "problem_body",
    "problem_of",
    "respond",
]

log = logging.getLogger("tether.server")

PROBLEM_JSON = "application/problem+json"
_BASE = "https://tether.dev/problems/"

_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


class AsciiJSON(JSONResponse):
    """JSON with every non-ASCII character escaped.

    Text a model, tool or user wrote may hold a lone surrogate (Python
    strings can; UTF-8 cannot encode one): Starlette's ``JSONResponse``
    would fail to encode such a body, a 500 for a session whose log is
    fine. Escaped (``\\ud800``), every body encodes, and what the text
    says reaches the client unchanged.
    """

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode("ascii")


class ApiProblem(Exception):
    """An error to answer as a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers or {}
        self.extra = extra


def problem_body(p: ApiProblem) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": _BASE + p.slug,
        "title": p.title,
        "status": p.status,
        "detail": p.detail,
    }
    if p.extra:
        body["extra"] = p.extra
    return body


def respond(p: ApiProblem) -> JSONResponse:
    return AsciiJSON(
        problem_body(p), status_code=p.status, headers=p.headers, media_type=PROBLEM_JSON
    )


def problem_of(exc: BaseException) -> ApiProblem:
    """The problem a client is told for ``exc``, raised by the runtime or the store."""
    if isinstance(exc, ApiProblem):
        return exc
    text = str(exc)
    if isinstance(exc, SessionNotFound):
        return ApiProblem(404, "not-found", "no such session (or not yours)")
    if isinstance(exc, RateLimited):
        wait = max(1, math.ceil(exc.retry_after)) if exc.retry_after is not None else 1
        return ApiProblem(
            429,
            "rate-limited",
            text,
            headers={"Retry-After": str(wait)},
            extra={"limit": exc.limit, "scope": exc.scope, "retry_after": wait},
        )
    if isinstance(exc, SessionConflict):
        return ApiProblem(409, "session-busy", text, headers={"Retry-After": "1"})
    if isinstance(exc, NotApprover):
        return ApiProblem(403, "forbidden", text)
    if isinstance(exc, (InvalidSessionState, ApprovalError)):
        return ApiProblem(409, "invalid-state", text)
    if isinstance(exc, AccessDenied):
        return ApiProblem(403, "forbidden", text)
    if isinstance(exc, InputRejected):
        return ApiProblem(422, "input-rejected", text)
    if isinstance(exc, ShuttingDown):
        return ApiProblem(503, "shutting-down", text, headers={"Retry-After": "1"})
    if isinstance(exc, ModelUnavailable):
        return ApiProblem(503, "model-unavailable", text, headers={"Retry-After": "5"})
    if isinstance(exc, ConfigError):
        return ApiProblem(422, "invalid-request", text)
    if isinstance(exc, (TimeoutError, ConnectionError)) and isinstance(exc, TetherError):
        return ApiProblem(503, "store-unavailable", text, headers={"Retry-After": "1"})
    if isinstance(exc, TetherError):
        return ApiProblem(500, "run-failed", text)
    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.OperationalError, sa_exc.InterfaceError)):
        # the database is overloaded or unreachable (a pool timeout, a lost connection)
        log.warning("the store failed a request: %s", str(exc)[:300])
        return ApiProblem(
            503,
            "store-unavailable",
            "the session store is busy or unreachable; retry in a moment",
            headers={"Retry-After": "1"},
        )
    log.error("unhandled error answering a request", exc_info=exc)
    return ApiProblem(
        500, "internal", "the server failed on this request; it was logged. Retry, or report it"
    )


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request does not match the schema"


def install(app: FastAPI) -> None:
    """Answer every error as a problem document."""

    async def on_problem(_req: Request, exc: Exception) -> JSONResponse:
        return respond(problem_of(exc))

    async def on_validation(_req: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return respond(ApiProblem(422, "invalid-request", _validation_detail(exc)))

    async def on_http(_req: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not UTF-8 JSON: invalid, like any bad JSON
            return respond(ApiProblem(422, "invalid-request", "the body is not JSON (UTF-8 text)"))
        slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(
            exc.status_code, "http-error"
        )
        return respond(ApiProblem(exc.status_code, slug, detail, headers=dict(exc.headers or {})))

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(TetherError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # Not add_exception_handler(Exception, ...): Starlette runs that one in its outermost
    # middleware, which sends the answer and then re-raises, so uvicorn logs a traceback
    # and drops the keep-alive connection. Shield answers and stops there.
    app.add_middleware(Shield)


class Shield:
    """The last resort: an unexpected error is a 500 problem document, logged once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            problem = problem_of(exc)  # logs what it does not expect
            if started:  # a stream broke after its first byte: nothing more can be said
                log.warning("a response failed after it started: %s", type(exc).__name__)
                return
            await respond(problem)(scope, receive, send)
