"""How a server is configured: :class:`ServerConfig`, from arguments or the environment.

Every setting has a safe default; ``from_env`` reads ``TETHER_*`` variables
at the edge (strings become types here, and a value that cannot be read is
a :class:`~tether.exceptions.ConfigError` naming the variable).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from tether.exceptions import ConfigError
from tether.spec.budget import Quota, RateLimits

__all__ = ["ServerConfig", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Settings of one server process (every replica of a deployment uses the same).

    - ``database_url``: the session store (``TETHER_DATABASE_URL``; default:
      SQLite under ``TETHER_HOME``). PostgreSQL for several replicas.
    - ``redis_url``: events fan out, breakers and rate limits are shared
      through it (``TETHER_REDIS_URL``); without it, one process.
    - ``host``, ``port``: where to listen.
    - ``max_body_bytes``: the largest request body (413 beyond).
    - ``cors_origins``: origins allowed by CORS (``TETHER_CORS_ORIGINS``,
      comma-separated); empty: CORS off.
    - ``shutdown_grace``: seconds a SIGTERM lets turns reach a step boundary.
    - ``lease_ttl``: seconds a session's lease lasts without renewal; a dead
      replica's sessions are resumed elsewhere within about this long.
    - ``recover_interval``: seconds between sweeps for sessions whose
      holder died (0: never sweep).
    - ``open_local``: with no API keys stored, let requests from this
      machine act as one local user (only when bound to loopback).
    - ``idempotency_ttl``: seconds an idempotency key's outcome is kept.
    - ``keepalive``: seconds between SSE keep-alive comments.
    - ``stream_poll``: seconds a quiet stream waits before checking the
      store (pub/sub may drop a message; the store never does).
    - ``rate_limits``: per-user and per-tenant quotas
      (``TETHER_LIMIT_USER_SESSIONS_PER_HOUR``, ``..._TOKENS_PER_DAY``,
      ``..._CONCURRENT``, and the same with ``TENANT``); a refused request
      is answered 429 with ``Retry-After``.
    - ``gc_freeze``: after start-up, move everything built so far out of
      the garbage collector's reach (``gc.freeze()``), so that the full
      collections a busy server sets off skip it. For a process the server
      owns (``tether serve`` sets it); leave it off inside your own app.
    """

    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_000_000
    cors_origins: tuple[str, ...] = ()
    shutdown_grace: float = 20.0
    lease_ttl: float = 15.0
    recover_interval: float = 5.0
    open_local: bool = True
    idempotency_ttl: float = 24 * 3600.0
    keepalive: float = 15.0
    stream_poll: float = 2.0
    rate_limits: RateLimits | None = None
    gc_freeze: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1 to 65535, got {self.port}")
        for name in ("max_body_bytes", "shutdown_grace", "lease_ttl", "keepalive", "stream_poll"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.recover_interval < 0:
            raise ConfigError("recover_interval must be 0 or more")

    def replace(self, **changes: object) -> ServerConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **given: object) -> ServerConfig:
        """Settings from ``TETHER_*`` variables; arguments in ``given`` win."""
        e = os.environ if env is None else env
        values: dict[str, object] = {}
        if e.get("TETHER_DATABASE_URL"):
            values["database_url"] = e["TETHER_DATABASE_URL"]
        if e.get("TETHER_REDIS_URL"):
            values["redis_url"] = e["TETHER_REDIS_URL"]
        if e.get("TETHER_CORS_ORIGINS"):
            values["cors_origins"] = tuple(
                o.strip() for o in e["TETHER_CORS_ORIGINS"].split(",") if o.strip()
            )
        numbers = {
            "TETHER_MAX_BODY_BYTES": ("max_body_bytes", int),
            "TETHER_SHUTDOWN_GRACE": ("shutdown_grace", float),
            "TETHER_LEASE_TTL": ("lease_ttl", float),
            "TETHER_RECOVER_INTERVAL": ("recover_interval", float),
            "TETHER_STREAM_POLL": ("stream_poll", float),
        }
        for var, (name, kind) in numbers.items():
            if e.get(var):
                try:
                    values[name] = kind(e[var])
                except ValueError:
                    raise ConfigError(f"{var} must be a number, got {e[var]!r}") from None
        quotas: dict[str, dict[str, int]] = {"user": {}, "tenant": {}}
        for who in quotas:
            for var, field in (
                ("SESSIONS_PER_HOUR", "sessions_per_hour"),
                ("TOKENS_PER_DAY", "tokens_per_day"),
                ("CONCURRENT", "concurrent_sessions"),
            ):
                name = f"TETHER_LIMIT_{who.upper()}_{var}"
                if e.get(name):
                    try:
                        quotas[who][field] = int(e[name])
                    except ValueError:
                        raise ConfigError(
                            f"{name} must be a whole number, got {e[name]!r}"
                        ) from None
        if quotas["user"] or quotas["tenant"]:
            values["rate_limits"] = RateLimits(
                per_user=Quota(**quotas["user"]), per_tenant=Quota(**quotas["tenant"])
            )
        if e.get("TETHER_OPEN_LOCAL"):
            values["open_local"] = e["TETHER_OPEN_LOCAL"].strip().lower() in ("1", "true", "yes")
        values.update({k: v for k, v in given.items() if v is not None})
        try:
            return cls(**values)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ConfigError(f"server settings: {exc}") from None
