"""The test suite's access to the real services it needs: Redis, and the rule for absent ones.

A test that needs a service it cannot reach skips on a developer's machine
and fails where services are required (``TETHER_REQUIRE_SERVICES``, which
``scripts/test.sh`` sets, or ``CI=true``): there a skip would hide that the
test never ran.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from typing import NoReturn
from urllib.parse import urlsplit

import pytest
from redis import asyncio as aioredis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def services_required() -> bool:
    return bool(os.environ.get("TETHER_REQUIRE_SERVICES")) or (
        os.environ.get("CI", "").lower() == "true"
    )


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test, or fail it where services are required."""
    if services_required():
        pytest.fail(f"{reason}; services are required here, so this test must run, not skip")
    pytest.skip(reason)


def redis_url() -> str:
    return os.environ.get("TETHER_TEST_REDIS_URL") or DEFAULT_REDIS_URL


@cache
def _redis_unreachable() -> str | None:
    u = urlsplit(redis_url())
    host, port = u.hostname or "127.0.0.1", u.port or 6379
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        return (
            f"Redis at {host}:{port} is unreachable ({e}); run scripts/ensure-services.sh "
            "or set TETHER_TEST_REDIS_URL"
        )
    return None


def require_redis() -> None:
    """Skip or fail (see :func:`skip_or_fail`) when Redis cannot be reached."""
    reason = _redis_unreachable()
    if reason is not None:
        skip_or_fail(reason)


async def delete_redis_keys(prefix: str) -> None:
    """Delete every key under ``prefix`` (a test's own namespace)."""
    client = aioredis.Redis.from_url(redis_url())
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
