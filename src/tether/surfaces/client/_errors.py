"""The client's errors, and reading the server's answers into models or into them.

A non-2xx answer becomes a :class:`ServerError` (its problem document, status
and ``Retry-After``); an answer this client cannot read becomes a 502
``ServerError`` that says so; a server out of reach, after the retries,
:class:`ServerUnreachable`.
"""

from __future__ import annotations

from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from tether.exceptions import RunError
from tether.surfaces.server.models import Problem

__all__ = [
    "ServerError",
    "ServerUnreachable",
    "error_of",
    "first_error",
    "invalid",
    "read_body",
]

M = TypeVar("M", bound=BaseModel)


class ServerError(RunError):
    """The server answered with an error: ``status``, its ``problem`` document, and
    ``retry_after`` (seconds, from the ``Retry-After`` header or the problem's extra).

    The message is the problem's title and detail: the server words the detail
    for a person to act on (which key, which state, what to do).
    """

    def __init__(
        self, problem: Problem, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        message = f"{problem.title}: {problem.detail}" if problem.detail else problem.title
        if retry_after is not None:
            message += f" (retry after {retry_after:g} s)"
        super().__init__(message)
        self.problem = problem
        self.status = problem.status if status is None else status
        self.retry_after = retry_after

    @property
    def slug(self) -> str:
        """The problem's kind, the last part of its type URI (``not-found``, ``rate-limited``)."""
        return self.problem.type.rstrip("/").rpartition("/")[2]


class ServerUnreachable(RunError, ConnectionError):
    """The server could not be reached, or a stream kept breaking, through every retry."""


def _problem(status: int, title: str, detail: str) -> Problem:
    return Problem(type="about:blank", title=title, status=status, detail=detail)


def invalid(detail: str) -> ServerError:
    """An answer this client cannot read: a server of another version, or not Tether at all."""
    return ServerError(
        _problem(
            502,
            "Unexpected answer from the server",
            f"{detail}; is --server a Tether server, of a version this client knows?",
        )
    )


def _retry_after(response: httpx.Response, problem: Problem) -> float | None:
    for value in (response.headers.get("retry-after"), (problem.extra or {}).get("retry_after")):
        try:
            seconds = float(value)  # type: ignore[arg-type] # reason: None and junk raise, caught
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return None


def error_of(response: httpx.Response) -> ServerError:
    """The :class:`ServerError` for a non-2xx ``response`` (its body already read)."""
    status = response.status_code
    try:
        problem = Problem.model_validate_json(response.content)
    except ValidationError:
        body = " ".join(response.text.split())[:200]
        problem = _problem(
            status,
            response.reason_phrase or f"HTTP {status}",
            f"the server answered HTTP {status} without a problem document"
            + (f": {body}" if body else ""),
        )
    return ServerError(problem, status=status, retry_after=_retry_after(response, problem))


def read_body(response: httpx.Response, model: type[M]) -> M:
    """A successful ``response``'s body as ``model``."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise invalid(f"its {model.__name__} does not parse ({first_error(exc)})") from None


def first_error(exc: ValidationError) -> str:
    """The first of a validation's errors, where and what, for a one-line message."""
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ())) or "body"
    more = exc.error_count() - 1
    return f"{where}: {err.get('msg', 'invalid')}" + (f" (and {more} more)" if more else "")
