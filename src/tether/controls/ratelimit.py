"""Per-user and per-tenant limits: sessions per hour, tokens per day, concurrent sessions.

Rates are counted by the `limits <https://limits.readthedocs.io>`_ library,
in memory by default or in Redis (``tether.store.open_rate_limiter`` builds
one from ``TETHER_REDIS_URL``), so every replica sees the same counts:

- **sessions per hour**: ``limits``' moving window. Its ``hit`` is one atomic
  check-and-add (a Lua script on Redis), so out of 3N simultaneous attempts
  on three replicas exactly N pass, and a refused attempt adds nothing.
- **tokens per day**: ``limits``' fixed window (24 hours from the first
  spend), used as reserve-then-settle. Before a model call its estimate is
  added with ``hit(cost=estimate)``: an atomic increment compared with the
  limit. A refused reservation is taken back at once; a granted one is
  settled after the call by adding ``used - estimate`` (negative when the
  call used less). Concurrent reservations therefore never add up to more
  than the limit; only calls that use more than they reserved can overshoot,
  each by what its estimate missed.
- **concurrent sessions**: a count of running turns. ``limits`` has no
  semaphore, so this is a small slot table (a dict here; a sorted set in
  Redis, :mod:`tether.store.redis_limits`). A slot held by a process that
  died frees itself after ``RateLimits.slot_ttl`` seconds.

A refused request raises :class:`~tether.exceptions.RateLimited` naming the
limit, whose it is, and when it resets. If the limit store itself fails
(Redis down), requests are let through and the error is logged: a broken
counter must not take the agent down with it (the same choice as the
circuit breakers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerHour
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from tether.exceptions import RateLimited
from tether.spec.budget import Quota, RateLimits

__all__ = ["MemorySlots", "RateLimiter", "SlotBackend", "Slots", "TokenHold"]

log = logging.getLogger("tether.limits")


class SlotBackend(Protocol):
    """Where concurrency slots live (in memory, or a Redis sorted set)."""

    async def acquire(self, key: str, token: str, limit: int, ttl: float) -> bool:
        """Take a slot in ``key`` for ``token`` if fewer than ``limit`` are held."""
        ...

    async def release(self, key: str, token: str) -> None: ...

    async def aclose(self) -> None: ...


class MemorySlots:
    """Concurrency slots in this process (one replica)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._held: dict[str, dict[str, float]] = {}
        self._clock = clock

    async def acquire(self, key: str, token: str, limit: int, ttl: float) -> bool:
        now = self._clock()
        held = self._held.setdefault(key, {})
        for t in [t for t, until in held.items() if until <= now]:
            del held[t]
        if token not in held and len(held) >= limit:  # a holder asking again keeps its slot
            return False
        held[token] = now + ttl
        return True

    async def release(self, key: str, token: str) -> None:
        held = self._held.get(key)
        if held is not None:
            held.pop(token, None)

    async def aclose(self) -> None:
        self._held.clear()


@dataclass(slots=True)
class TokenHold:
    """Tokens reserved against daily limits for one call (settled after it)."""

    keys: list[tuple[str, int]]
    tokens: int


@dataclass(slots=True)
class Slots:
    """Concurrency slots a running turn holds (released when it ends)."""

    keys: list[str]
    token: str


def _ident(key: str | None) -> str:
    # limits joins identifiers with "/": escape it (and "%" first, so that "a/b"
    # and "a%2Fb" stay two different keys).
    return (key or "").replace("%", "%25").replace("/", "%2F")


class RateLimiter:
    """Checks :class:`~tether.spec.budget.RateLimits` for the runtime.

    ``storage`` is a ``limits.aio.storage`` object (default: in memory);
    ``slots`` the concurrency slot backend (default: in memory). Build a
    shared one with ``tether.store.open_rate_limiter``.
    """

    def __init__(
        self,
        policy: RateLimits,
        storage: Storage | None = None,
        *,
        slots: SlotBackend | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.storage: Storage = storage if storage is not None else MemoryStorage()
        self.slots: SlotBackend = slots if slots is not None else MemorySlots()
        self._moving = MovingWindowRateLimiter(self.storage)
        self._fixed = FixedWindowRateLimiter(self.storage)
        self._clock = clock
        #: whether any daily token limit is set (if not, a model call costs nothing here)
        self._daily = any(
            q.tokens_per_day is not None for q in (policy.per_user, policy.per_tenant)
        )

    async def aclose(self) -> None:
        await self.slots.aclose()
        closer = getattr(self.storage, "aclose", None)
        if closer is not None:
            await closer()

    def _quotas(self, user_id: str | None, tenant_id: str | None) -> list[tuple[str, str, Quota]]:
        out: list[tuple[str, str, Quota]] = []
        if tenant_id is not None and not self.policy.per_tenant.empty:
            out.append(("tenant", tenant_id, self.policy.per_tenant))
        if user_id is not None and not self.policy.per_user.empty:
            out.append(("user", user_id, self.policy.per_user))
        return out

    async def _refuse(
        self,
        limit: str,
        scope: str,
        key: str,
        item: RateLimitItem | None,
        allowed: int,
        identifiers: tuple[str, ...] = (),
    ) -> RateLimited:
        reset_at: float | None = None
        if item is not None:
            try:
                strategy = self._moving if limit == "sessions_per_hour" else self._fixed
                stats = await strategy.get_window_stats(item, *identifiers)
                reset_at = float(stats.reset_time)
            except Exception:  # the refusal stands; only its reset time is unknown
                log.exception("could not read when %s resets", limit)
        now = self._clock()
        retry = None if reset_at is None else max(0.0, reset_at - now)
        when = (
            "when one of their running conversations ends"
            if limit == "concurrent_sessions"
            else f"in {_human(retry)}"
            if retry is not None
            else "later"
        )
        what = {
            "sessions_per_hour": f"{allowed} new sessions per hour",
            "tokens_per_day": f"{allowed:,} tokens per day",
            "concurrent_sessions": f"{allowed} conversations at once",
        }[limit]
        return RateLimited(
            f"rate limit reached: {scope} {key!r} may have {what} ({limit}); try again {when}",
            limit=limit,
            scope=scope,
            key=key,
            allowed=allowed,
            reset_at=reset_at,
            retry_after=retry,
        )

    # sessions per hour ------------------------------------------------------

    async def admit_session(self, user_id: str | None, tenant_id: str | None = None) -> None:
        """Count a new session against sessions-per-hour; raise ``RateLimited`` if over.

        Every scope is tested before any is counted, so a session refused by
        the user's quota does not use up the tenant's (a moving window cannot
        take a hit back). Only two requests racing for the last slot of
        different scopes can leave one hit counted for a refused session:
        the error is on the side of admitting fewer, never more.
        """
        checks: list[tuple[str, str, int, RateLimitItem, tuple[str, ...]]] = []
        for scope, key, quota in self._quotas(user_id, tenant_id):
            n = quota.sessions_per_hour
            if n is not None:
                ident: tuple[str, ...] = ("sessions", scope, _ident(key))
                checks.append((scope, key, n, RateLimitItemPerHour(n), ident))
        try:
            for scope, key, n, item, ids in checks:
                if not await self._moving.test(item, *ids):
                    raise await self._refuse("sessions_per_hour", scope, key, item, n, ids)
            for scope, key, n, item, ids in checks:
                if not await self._moving.hit(item, *ids):
                    raise await self._refuse("sessions_per_hour", scope, key, item, n, ids)
        except RateLimited:
            raise
        except Exception:
            log.exception("the rate-limit store failed; letting the session through")

    # tokens per day -----------------------------------------------------------

    def _token_limits(
        self, user_id: str | None, tenant_id: str | None
    ) -> list[tuple[str, str, int, RateLimitItem, tuple[str, str, str]]]:
        """The daily token limits that apply: scope, key, size, window and its ids."""
        if not self._daily:
            return []
        return [
            (scope, key, n, RateLimitItemPerDay(n), ("tokens", scope, _ident(key)))
            for scope, key, quota in self._quotas(user_id, tenant_id)
            if (n := quota.tokens_per_day) is not None
        ]

    async def check_tokens(self, user_id: str | None, tenant_id: str | None = None) -> None:
        """Raise ``RateLimited`` if a daily token limit is already spent (nothing reserved)."""
        for scope, key, n, item, ids in self._token_limits(user_id, tenant_id):
            try:
                ok = await self._fixed.test(item, *ids)
            except Exception:
                log.exception("the rate-limit store failed; letting the request through")
                return
            if not ok:
                raise await self._refuse("tokens_per_day", scope, key, item, n, ids)

    async def reserve_tokens(
        self, user_id: str | None, tenant_id: str | None, tokens: int
    ) -> TokenHold | None:
        """Reserve ``tokens`` against every daily token limit, or raise ``RateLimited``.

        Returns ``None`` when no daily token limit applies.
        """
        if not self._daily:
            return None
        hold = TokenHold([], tokens)
        for scope, key, n, item, ids in self._token_limits(user_id, tenant_id):
            storage_key = item.key_for(*ids)
            try:
                ok = await self._fixed.hit(item, *ids, cost=tokens)
            except Exception:
                log.exception("the rate-limit store failed; letting the call through")
                continue
            if not ok:
                # hit() added the tokens before comparing: take them back, and
                # the reservations already made for the other scopes.
                await self._add(storage_key, item.get_expiry(), -tokens)
                await self.settle_tokens(hold, 0)
                raise await self._refuse("tokens_per_day", scope, key, item, n, ids)
            hold.keys.append((storage_key, item.get_expiry()))
        return hold if hold.keys else None

    async def settle_tokens(self, hold: TokenHold | None, used: int) -> None:
        """Replace a reservation by what the call used (``used`` may be 0: it failed).

        Tokens given back (``used`` below the reservation) are taken only from
        the window the reservation is in: if that window has ended meanwhile,
        there is nothing to give back, and the next day does not start in
        credit. Tokens used beyond the reservation are always counted.
        """
        if hold is None:
            return
        delta = used - hold.tokens
        if delta > 0:
            for key, expiry in hold.keys:
                await self._add(key, expiry, delta)
        elif delta < 0:
            for key, expiry in hold.keys:
                await self._give(key, expiry, -delta)

    async def _give(self, key: str, expiry: int, amount: int) -> None:
        try:
            current = await self.storage.get(key)
        except Exception:
            log.exception("the rate-limit store failed to settle %s", key)
            return
        if current > 0:  # 0: the window this reservation was in has ended
            await self._add(key, expiry, -min(amount, current))

    async def _add(self, key: str, expiry: int, amount: int) -> None:
        try:
            await self.storage.incr(key, expiry, amount=amount)
        except Exception:
            log.exception("the rate-limit store failed to settle %s", key)

    # concurrent sessions ----------------------------------------------------

    async def acquire_slots(
        self, user_id: str | None, tenant_id: str | None, token: str
    ) -> Slots | None:
        """Take a concurrency slot per scope for one running turn, or raise ``RateLimited``."""
        taken = Slots([], token)
        for scope, key, quota in self._quotas(user_id, tenant_id):
            n = quota.concurrent_sessions
            if n is None:
                continue
            slot_key = f"slots:{scope}:{key}"
            try:
                ok = await self.slots.acquire(slot_key, token, n, self.policy.slot_ttl)
            except Exception:
                log.exception("the rate-limit store failed; letting the turn run")
                continue
            if not ok:
                await self.release_slots(taken)
                raise await self._refuse("concurrent_sessions", scope, key, None, n)
            taken.keys.append(slot_key)
        return taken if taken.keys else None

    async def release_slots(self, slots: Slots | None) -> None:
        if slots is None:
            return
        for key in slots.keys:
            try:
                await asyncio.shield(self.slots.release(key, slots.token))
            except Exception:
                log.exception("could not release concurrency slot %s", key)


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
