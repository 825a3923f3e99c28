"""Circuit-breaker state shared by every replica, in Redis.

:class:`RedisBreakerBackend` is a :class:`~tether.controls.breaker.BreakerBackend`
with exactly the semantics of
:class:`~tether.controls.breaker.MemoryBreakerBackend`, but its state lives in
Redis, so a breaker that one replica opens is open for all of them, and after
the cool-down exactly one caller *across all replicas* runs the trial.

Keys, per breaker ``key`` (``prefix`` defaults to ``tether:breaker:``):

- ``{prefix}{{key}}``: a hash with ``opened_at`` (present while open or
  half-open), ``trial_at`` (when the current trial was admitted) and ``seq``
  (a counter that keeps failure members unique);
- ``{prefix}{{key}}:f``: a sorted set of failure times (score = the time);
- ``{prefix}{{key}}:a``: a sorted set of the times calls were admitted while
  closed (the failure rate's denominator, as in the in-process backend).

The breaker key sits in a ``{...}`` hash tag, so both keys of one breaker
land on the same Redis Cluster slot, as a script touching both requires.
Both keys get a TTL of three windows plus cool-downs (at least a minute),
refreshed on every write, so breakers of dependencies nobody calls any more
disappear by themselves; an open breaker that expires that way is simply
closed, which is where a breaker with no traffic for that long would be
heading anyway (its trial would long have been due).

Why Lua: ``admit`` and ``record`` are each one script (``register_script``:
``EVALSHA``, loading the script on ``NOSCRIPT``). A script runs atomically on
the server, so "is a trial due? then it is mine" is one check-and-set that no
other replica can interleave with: that is what makes the half-open trial
unique across processes, and what makes the failure count exact under
concurrency. A client-side ``WATCH``/``MULTI`` loop would do the same with
more round trips and retries under contention.

Why the caller's time: times are passed in as arguments (``now``, from
:class:`~tether.controls.breaker.Breakers`' clock), never read from Redis's
``TIME``. One clock drives both backends, so the same tests (with explicit
``now`` values, no sleeping) hold for the in-process and the Redis backend,
and a fake clock in tests reaches Redis unchanged. Replicas read wall time,
so their clocks must agree to within a small fraction of the cool-down (NTP
does). Times travel as ``repr(float)`` strings and are stored verbatim, so
``retry_at`` is bit-for-bit what the in-process backend would return. Only
the idle-expiry TTL uses Redis's own clock.

One deliberate difference: the in-process backend drops failures older than
the window from the front of a queue in arrival order; the sorted set drops
them by time, which is the same when each process's clock moves forward and
more exact when replicas report slightly out of order.

When Redis fails: a connection error or a timeout (the client has a 2 s
socket timeout, so a hung Redis cannot hang a call) raises
:class:`~tether.store.errors.StoreUnavailable`, naming the server (never its
password). It is a :class:`~tether.exceptions.RunError`, so the session stays
intact and resumable, and a ``ConnectionError``, so retry policies treat it as
transient. The client does not retry on its own: a script retried after a
timeout may already have run (a failure would count twice), so the decision
to try again is left to the caller's retry policy. Other Redis errors (a
wrong-type key under the prefix, a script error) are bugs or
misconfiguration and propagate as ``redis.exceptions.RedisError``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tether.controls.breaker import Admission, Breakers, Transition
from tether.exceptions import ConfigError
from tether.spec.policy import BreakerPolicy
from tether.store.errors import StoreUnavailable

__all__ = ["DEFAULT_PREFIX", "RedisBreakerBackend", "open_breakers", "redact_url"]

DEFAULT_PREFIX = "tether:breaker:"
SOCKET_TIMEOUT = 2.0  # seconds: connect, read and write
_MIN_TTL_MS = 60_000


def bad_redis_url(url: str, purpose: str, exc: Exception) -> ConfigError:
    """The error for a Redis URL that cannot be parsed (credentials redacted)."""
    return ConfigError(
        f"invalid Redis URL {redact_url(url)!r} for {purpose} ({exc}); "
        "expected redis://[user:password@]host[:port][/db]"
    )


def redis_client(url: str, purpose: str) -> aioredis.Redis:
    """A client for ``url`` that times out after ``SOCKET_TIMEOUT`` and never retries itself.

    Nothing connects until the first command. A URL that cannot be parsed is
    a :class:`~tether.exceptions.ConfigError` naming ``purpose``.
    """
    try:
        return aioredis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise bad_redis_url(url, purpose, exc) from None


# KEYS[1] state hash, KEYS[2] admitted times. ARGV: now, cooldown, ttl_ms,
# cutoff (now - window). Returns {allowed, trial, base}: base is the stored
# time a refusal waits on (retry_at = base + cooldown, added in Python so it
# is the same float).
_ADMIT = """
local st = redis.call('HMGET', KEYS[1], 'opened_at', 'trial_at')
local opened, trial = st[1], st[2]
if not opened then
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1] .. '#' .. seq)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {1, 0, ''}
end
local now, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2])
if trial then
  if now < tonumber(trial) + cooldown then
    return {0, 0, trial}
  end
elseif now < tonumber(opened) + cooldown then
  return {0, 0, opened}
end
redis.call('HSET', KEYS[1], 'trial_at', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, 1, ''}
"""

# KEYS[1] state hash, KEYS[2] failure times, KEYS[3] admitted times. ARGV: ok
# (1/0), trial (1/0), now, cutoff (now - window: older entries no longer
# count), threshold, ttl_ms, failure rate. Returns 'opened', 'closed' or nil.
_RECORD = """
local ok, trial, now = ARGV[1] == '1', ARGV[2] == '1', ARGV[3]
if redis.call('HEXISTS', KEYS[1], 'opened_at') == 1 then
  if not trial then
    return false
  end
  if ok then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
    return 'closed'
  end
  redis.call('HDEL', KEYS[1], 'trial_at')
  redis.call('HSET', KEYS[1], 'opened_at', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return 'opened'
end
if ok then
  return false
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('ZADD', KEYS[2], now, now .. '#' .. seq)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[4])
local failed = redis.call('ZCARD', KEYS[2])
if failed >= tonumber(ARGV[5]) and failed >= tonumber(ARGV[7]) * redis.call('ZCARD', KEYS[3]) then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HDEL', KEYS[1], 'trial_at')
  redis.call('HSET', KEYS[1], 'opened_at', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return 'opened'
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return false
"""


def redact_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` query) as ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            name = user.split(":", 1)[0]
            netloc = f"{name}:***@{host}"
        query = parts.query
        if "password" in query.lower():
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*"
            )
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "<unparseable Redis URL>"


def _describe(client: aioredis.Redis) -> str:
    """Where ``client`` connects, for error messages (never its password)."""
    kw = client.connection_pool.connection_kwargs
    if "path" in kw:
        return f"unix://{kw['path']}?db={kw.get('db', 0)}"
    return f"redis://{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ttl_ms(policy: BreakerPolicy) -> int:
    return max(_MIN_TTL_MS, math.ceil(3 * (policy.window + policy.cooldown) * 1000))


class RedisBreakerBackend:
    """Breaker state in Redis, shared by every process that uses the same ``prefix``.

    ``client`` should have a socket timeout (:meth:`from_url` sets 2 s);
    :meth:`aclose` closes it, whoever created it. ``where`` names the server
    in error messages (default: the client's host, port and db; never a
    password).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        where: str | None = None,
    ) -> None:
        self._client = client
        self.prefix = prefix
        self._where = where or _describe(client)
        self._admit = client.register_script(_ADMIT)
        self._record = client.register_script(_RECORD)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX) -> RedisBreakerBackend:
        """A backend on a new client for ``url`` (``redis://``, ``rediss://`` or ``unix://``).

        The client times out after 2 s on connect, read and write, and does
        not retry by itself. Nothing connects until the first call.
        """
        return cls(redis_client(url, "circuit breakers"), prefix=prefix, where=redact_url(url))

    def _keys(self, key: str) -> list[str]:
        """The state hash, the failure times and the admission times of ``key``."""
        state = f"{self.prefix}{{{key}}}"
        return [state, f"{state}:f", f"{state}:a"]

    async def _run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[str]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            kind = "timed out" if isinstance(exc, RedisTimeoutError) else "is unreachable"
            raise StoreUnavailable(
                f"Redis at {self._where} {kind} ({exc}); circuit breaker state shared "
                "between replicas cannot be read or updated. Check that Redis is up and "
                "TETHER_REDIS_URL points at it, or unset it to keep breakers in this process"
            ) from exc

    async def ping(self) -> None:
        """Check that Redis answers; :class:`StoreUnavailable` (naming it) if it does not."""
        try:
            await self._client.ping()
        except RedisError as exc:
            raise StoreUnavailable(
                f"cannot use Redis at {self._where} for circuit breakers ({exc}); "
                "check that it is running and that TETHER_REDIS_URL is right, "
                "or unset TETHER_REDIS_URL to keep breakers in this process"
            ) from exc

    async def admit(self, key: str, now: float, policy: BreakerPolicy) -> Admission:
        """Decide whether a call to ``key`` may start now (one atomic script)."""
        args = [repr(now), repr(policy.cooldown), str(_ttl_ms(policy)), repr(now - policy.window)]
        state, _failures, admitted = self._keys(key)
        # The async stubs type script results as Any; the script returns {int, int, str}.
        allowed, trial, base = cast(
            "list[Any]", await self._run(self._admit, [state, admitted], args)
        )
        if allowed:
            return Admission(True, trial=bool(trial))
        return Admission(False, retry_at=float(_text(base)) + policy.cooldown)

    async def record(
        self, key: str, ok: bool, now: float, policy: BreakerPolicy, *, trial: bool
    ) -> Transition | None:
        """Record a call's outcome (one atomic script); ``opened``/``closed`` if it changed."""
        args = [
            "1" if ok else "0",
            "1" if trial else "0",
            repr(now),
            repr(now - policy.window),
            str(policy.failure_threshold),
            str(_ttl_ms(policy)),
            repr(policy.failure_rate),
        ]
        # The script returns 'opened', 'closed' or nil; the stubs say Any.
        result = cast("bytes | str | None", await self._run(self._record, self._keys(key), args))
        if result is None:
            return None
        return cast(Transition, _text(result))

    async def aclose(self) -> None:
        """Close the Redis client and its connections."""
        await self._client.aclose()


async def open_breakers(
    url: str | None = None, *, clock: Callable[[], float] = time.time
) -> Breakers:
    """Breakers shared through Redis at ``url`` or ``$TETHER_REDIS_URL``; else in this process.

    With a URL, Redis must answer a ``PING`` first: if it does not,
    :class:`~tether.store.errors.StoreUnavailable` names the URL (its password
    redacted). Close a Redis-backed result with ``await breakers.backend.aclose()``.
    """
    url = url or os.environ.get("TETHER_REDIS_URL") or None
    if url is None:
        return Breakers(clock=clock)
    backend = RedisBreakerBackend.from_url(url)
    try:
        await backend.ping()
    except BaseException:
        await backend.aclose()
        raise
    return Breakers(backend, clock=clock)
