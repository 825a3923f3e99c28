"""What a client is told for each failure: status, kind, and never the internals."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from tether.exceptions import (
    AccessDenied,
    ApprovalError,
    InputRejected,
    InvalidSessionState,
    ModelUnavailable,
    NotApprover,
    RateLimited,
    SessionConflict,
    SessionNotFound,
    ShuttingDown,
)
from tether.surfaces.server.problems import problem_body, problem_of


@pytest.mark.parametrize(
    ("exc", "status", "slug"),
    [
        (SessionNotFound("s1"), 404, "not-found"),
        (SessionConflict("busy"), 409, "session-busy"),
        (InvalidSessionState("done"), 409, "invalid-state"),
        (ApprovalError("stale"), 409, "invalid-state"),
        (NotApprover("needs the role"), 403, "forbidden"),
        (AccessDenied("not yours"), 403, "forbidden"),
        (InputRejected("too long"), 422, "input-rejected"),
        (ShuttingDown("closing"), 503, "shutting-down"),
        (ModelUnavailable("down"), 503, "model-unavailable"),
        (
            sa_exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached"),
            503,
            "store-unavailable",
        ),
        (
            sa_exc.OperationalError("SELECT 1", {}, OSError("connection reset")),
            503,
            "store-unavailable",
        ),
    ],
)
def test_each_failure_has_its_status(exc: Exception, status: int, slug: str) -> None:
    p = problem_of(exc)
    assert (p.status, p.slug) == (status, slug)
    body = problem_body(p)
    assert set(body) >= {"type", "title", "status", "detail"}
    if status == 503:
        assert p.headers["Retry-After"].isdigit()


def test_a_rate_limit_says_when_to_come_back_in_whole_seconds() -> None:
    exc = RateLimited(
        "too many sessions",
        limit="sessions_per_hour",
        scope="user",
        key="u1",
        allowed=2,
        reset_at=None,
        retry_after=0.2,
    )
    p = problem_of(exc)
    assert p.status == 429
    assert p.headers["Retry-After"] == "1"  # never 0: "retry at once" would be a lie
    assert p.extra == {"limit": "sessions_per_hour", "scope": "user", "retry_after": 1}


def test_an_unexpected_error_says_nothing_about_itself() -> None:
    p = problem_of(KeyError("/srv/app/secret_config.py: token=abc"))
    assert p.status == 500
    assert "secret" not in p.detail
    assert "KeyError" not in p.detail
