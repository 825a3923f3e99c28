"""Durable sessions: the ``SessionStore`` protocol and its implementations.

- :class:`InMemoryStore`: in process, for tests and benchmarks.
- :class:`SQLStore`: SQLite (default, a file under ``~/.tether``) or
  PostgreSQL, through SQLAlchemy's async Core; migrated on open.
- :func:`open_breakers`: circuit breakers shared between replicas through
  Redis (:class:`RedisBreakerBackend`) when ``TETHER_REDIS_URL`` is set, else
  in this process.
- :func:`open_rate_limiter`: per-user and per-tenant rate limits, shared the
  same way.
- :func:`open_bus`: the server's event fan-out (:class:`RedisBus` across
  replicas, else in this process).
- :class:`KeyStore`, :class:`IdempotencyStore`: the server's API keys
  (hashed) and idempotency records, in the store's database.

The protocol itself lives in :mod:`tether.runtime.ports` (the layer that
uses it) and is re-exported here.
"""

from __future__ import annotations

from tether.runtime.memory import InMemoryStore
from tether.runtime.ports import SessionRecord, SessionStatus, SessionStore
from tether.store.errors import StoreTimeout, StoreUnavailable
from tether.store.redis_breakers import RedisBreakerBackend, open_breakers
from tether.store.redis_bus import RedisBus, open_bus
from tether.store.redis_limits import RedisSlots, open_rate_limiter
from tether.store.server import ApiKey, IdempotencyStore, KeyStore
from tether.store.sql import SQLStore, resolve_url
from tether.store.versions import AgentVersion, VersionError, VersionState, VersionStore

__all__ = [
    "AgentVersion",
    "ApiKey",
    "IdempotencyStore",
    "InMemoryStore",
    "KeyStore",
    "RedisBreakerBackend",
    "RedisBus",
    "RedisSlots",
    "SQLStore",
    "SessionRecord",
    "SessionStatus",
    "SessionStore",
    "StoreTimeout",
    "StoreUnavailable",
    "VersionError",
    "VersionState",
    "VersionStore",
    "open_breakers",
    "open_bus",
    "open_rate_limiter",
    "open_store",
    "resolve_url",
]


async def open_store(url: str | None = None) -> SQLStore:
    """Open (and migrate) the SQL store at ``url``, ``$TETHER_DATABASE_URL`` or the default.

    The default is a SQLite file under ``$TETHER_HOME`` (``~/.tether``).
    """
    return await SQLStore.open(url)
