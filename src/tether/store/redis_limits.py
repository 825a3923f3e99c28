"""Rate limits shared by every replica, in Redis.

:func:`open_rate_limiter` builds a :class:`~tether.controls.ratelimit.RateLimiter`
whose counts live in Redis when ``TETHER_REDIS_URL`` (or ``url``) is set,
and in this process otherwise:

- sessions per hour and tokens per day: ``limits``' own Redis storage
  (``async+redis://``, through the ``redis`` client this project already
  uses), whose windows are updated by Lua scripts, atomically;
- concurrent sessions: :class:`RedisSlots`, below, because ``limits`` has no
  semaphore.

:class:`RedisSlots` keeps one sorted set per user or tenant: member = the
running turn's token, score = when its slot lapses if never released (a
process that died holding it). ``acquire`` is one Lua script: drop lapsed
members, count, add if under the limit. One script is one atomic step on
the server, so two replicas cannot both take the last slot. Scores use
Redis's own clock (``TIME``), so replicas need not agree on theirs.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from tether.controls.ratelimit import RateLimiter
from tether.exceptions import ConfigError
from tether.spec.budget import RateLimits
from tether.store.redis_breakers import bad_redis_url, redact_url, redis_client

__all__ = ["RedisSlots", "open_rate_limiter"]

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(ttl) + 60)
return 1
"""


class RedisSlots:
    """Concurrency slots in Redis sorted sets (see the module docstring)."""

    def __init__(self, client: Any, *, prefix: str = "tether:") -> None:
        self._client = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)

    async def acquire(self, key: str, token: str, limit: int, ttl: float) -> bool:
        got = await self._acquire(keys=[self.prefix + key], args=[token, limit, ttl])
        return bool(int(got))

    async def release(self, key: str, token: str) -> None:
        await self._client.zrem(self.prefix + key, token)

    async def aclose(self) -> None:
        await self._client.aclose()


async def open_rate_limiter(
    policy: RateLimits, url: str | None = None, *, prefix: str | None = None
) -> RateLimiter:
    """A rate limiter on Redis at ``url`` or ``$TETHER_REDIS_URL``; else in this process.

    ``prefix`` namespaces the keys (default ``tether:``; tests use a fresh
    one). With a URL, Redis must answer a ``PING`` first, or
    :class:`~tether.store.errors.StoreUnavailable`-style errors name the URL
    with its password redacted. Close the result with ``await limiter.aclose()``.
    """
    url = url or os.environ.get("TETHER_REDIS_URL") or None
    if url is None:
        return RateLimiter(policy)
    from limits.aio.storage import RedisStorage

    prefix = prefix or "tether:"
    where = redact_url(url)
    client = redis_client(url, "rate limits")
    try:
        # One connection pool for both: closing our client closes it.
        storage = RedisStorage(
            "async+" + url,
            implementation="redispy",
            key_prefix=f"{prefix}limits",
            # limits types its **options as scalars; redis-py takes a pool here
            connection_pool=client.connection_pool,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise bad_redis_url(url, "rate limits", exc) from None
    slots = RedisSlots(client, prefix=prefix)
    limiter = RateLimiter(policy, storage, slots=slots)
    try:
        await client.ping()
    except Exception as exc:
        await limiter.aclose()
        raise ConfigError(
            f"Redis at {where} does not answer ({type(exc).__name__}); start it, or unset "
            "TETHER_REDIS_URL to keep rate limits in this process"
        ) from None
    return limiter


def new_prefix() -> str:
    """A fresh key prefix (tests and benchmarks that must not share counts)."""
    return f"tether-test-{uuid.uuid4().hex[:12]}:"
