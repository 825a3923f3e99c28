"""Per-user and per-tenant rate limits: sessions per hour, tokens per day, concurrent sessions.

Every contract test runs twice: on the in-process storage (the default) and
on Redis through ``tether.store.open_rate_limiter``. Limiters made in one
test share their counts, as replicas do: in memory they share one storage
and one slot table, on Redis one fresh key prefix (deleted afterwards).

Redis is ``$TETHER_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
When it is unreachable the Redis cases are skipped locally, but fail when
``TETHER_REQUIRE_SERVICES`` is set or ``CI=true``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis
from limits.aio.storage import MemoryStorage, RedisStorage
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.services import delete_redis_keys, redis_url, require_redis
from tether.controls.ratelimit import MemorySlots, RateLimiter, Slots, TokenHold
from tether.exceptions import ConfigError, RateLimited
from tether.spec.budget import Quota, RateLimits
from tether.store.redis_limits import RedisSlots, new_prefix, open_rate_limiter
from tether.testing import FakeClock

Make = Callable[[RateLimits], Awaitable[RateLimiter]]

HOUR = 3600.0
DAY = 86400.0


@asynccontextmanager
async def limiters(backend: str) -> AsyncIterator[Make]:
    """A maker of limiters that share their counts, on ``backend``; all closed afterwards."""
    made: list[RateLimiter] = []
    if backend == "memory":
        storage, slots = MemoryStorage(), MemorySlots()

        async def make_memory(policy: RateLimits) -> RateLimiter:
            limiter = RateLimiter(policy, storage, slots=slots)
            made.append(limiter)
            return limiter

        try:
            yield make_memory
        finally:
            for limiter in made:
                await limiter.aclose()
        return

    require_redis()
    prefix = new_prefix()

    async def make_redis(policy: RateLimits) -> RateLimiter:
        limiter = await open_rate_limiter(policy, redis_url(), prefix=prefix)
        made.append(limiter)
        return limiter

    try:
        yield make_redis
    finally:
        for limiter in made:
            await limiter.aclose()
        await delete_redis_keys(prefix)


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    async with limiters(request.param) as maker:
        yield maker


def per_user(**quota: int) -> RateLimits:
    return RateLimits(per_user=Quota(**quota))


async def refused(awaitable: Awaitable[object]) -> RateLimited:
    with pytest.raises(RateLimited) as info:
        await awaitable
    return info.value


# --- sessions per hour ----------------------------------------------------------------------


async def test_sessions_per_hour_admits_exactly_n_then_refuses(make: Make) -> None:
    limiter = await make(per_user(sessions_per_hour=3))
    for _ in range(3):
        await limiter.admit_session("u1")
    before = time.time()
    exc = await refused(limiter.admit_session("u1"))
    assert (exc.limit, exc.scope, exc.key, exc.allowed) == ("sessions_per_hour", "user", "u1", 3)
    assert exc.reset_at is not None
    assert before < exc.reset_at <= time.time() + HOUR
    assert exc.retry_after is not None
    assert 0 < exc.retry_after <= HOUR
    assert "sessions_per_hour" in str(exc)
    assert "'u1'" in str(exc)
    assert "3 new sessions per hour" in str(exc)
    # refused again, and other users have their own count
    await refused(limiter.admit_session("u1"))
    await limiter.admit_session("u2")


async def test_a_tenant_quota_counts_every_user_of_the_tenant(make: Make) -> None:
    limiter = await make(RateLimits(per_tenant=Quota(sessions_per_hour=2)))
    await limiter.admit_session("u1", "acme")
    await limiter.admit_session("u2", "acme")
    exc = await refused(limiter.admit_session("u3", "acme"))
    assert (exc.limit, exc.scope, exc.key, exc.allowed) == (
        "sessions_per_hour",
        "tenant",
        "acme",
        2,
    )
    assert "tenant 'acme'" in str(exc)
    await limiter.admit_session("u3", "globex")  # another tenant
    await limiter.admit_session("u3")  # no tenant: no tenant quota


async def test_no_limit_set_admits_everything_and_holds_nothing(make: Make) -> None:
    limiter = await make(per_user(sessions_per_hour=1))
    for _ in range(5):
        await limiter.admit_session(None)  # anonymous: no per-user quota applies
    assert await limiter.reserve_tokens("u1", None, 10**9) is None
    await limiter.settle_tokens(None, 10)  # nothing to settle
    await limiter.check_tokens("u1")
    assert await limiter.acquire_slots("u1", None, "a") is None
    await limiter.release_slots(None)


async def test_a_session_refused_by_the_user_quota_does_not_use_up_the_tenant_quota(
    make: Make,
) -> None:
    limiter = await make(
        RateLimits(per_user=Quota(sessions_per_hour=1), per_tenant=Quota(sessions_per_hour=3))
    )
    await limiter.admit_session("u1", "acme")
    for _ in range(3):
        exc = await refused(limiter.admit_session("u1", "acme"))
        assert exc.scope == "user"
    # one session was admitted, so the tenant has two left for its other users
    await limiter.admit_session("u2", "acme")
    await limiter.admit_session("u3", "acme")


async def test_user_ids_that_differ_only_in_escaping_have_their_own_counts(make: Make) -> None:
    limiter = await make(per_user(sessions_per_hour=1))
    await limiter.admit_session("a/b")
    await limiter.admit_session("a%2Fb")


# --- tokens per day ---------------------------------------------------------------------------


async def test_a_refused_reservation_takes_nothing(make: Make) -> None:
    limiter = await make(per_user(tokens_per_day=1000))
    first = await limiter.reserve_tokens("u1", None, 600)
    assert isinstance(first, TokenHold)
    assert first.tokens == 600
    exc = await refused(limiter.reserve_tokens("u1", None, 500))
    assert (exc.limit, exc.scope, exc.key, exc.allowed) == ("tokens_per_day", "user", "u1", 1000)
    assert exc.reset_at is not None
    assert time.time() < exc.reset_at <= time.time() + DAY
    assert "1,000 tokens per day" in str(exc)
    # the 500 were not kept: exactly the 400 left still fit
    assert await limiter.reserve_tokens("u1", None, 400) is not None
    await refused(limiter.reserve_tokens("u1", None, 1))


async def test_settling_below_the_reservation_gives_tokens_back(make: Make) -> None:
    limiter = await make(per_user(tokens_per_day=1000))
    hold = await limiter.reserve_tokens("u1", None, 800)
    await refused(limiter.reserve_tokens("u1", None, 300))
    await limiter.settle_tokens(hold, 100)  # used 100 of 800
    assert await limiter.reserve_tokens("u1", None, 900) is not None
    await refused(limiter.reserve_tokens("u1", None, 1))


async def test_a_failed_call_settled_at_zero_gives_everything_back(make: Make) -> None:
    limiter = await make(per_user(tokens_per_day=1000))
    hold = await limiter.reserve_tokens("u1", None, 1000)
    await refused(limiter.reserve_tokens("u1", None, 1))
    await limiter.settle_tokens(hold, 0)
    assert await limiter.reserve_tokens("u1", None, 1000) is not None


async def test_settling_above_the_reservation_consumes_more(make: Make) -> None:
    limiter = await make(per_user(tokens_per_day=1000))
    hold = await limiter.reserve_tokens("u1", None, 100)
    await limiter.settle_tokens(hold, 300)  # its estimate ran 200 low
    assert await limiter.reserve_tokens("u1", None, 700) is not None
    await refused(limiter.reserve_tokens("u1", None, 1))


async def test_check_tokens_reserves_nothing_and_refuses_once_spent(make: Make) -> None:
    limiter = await make(per_user(tokens_per_day=1000))
    for _ in range(5):
        await limiter.check_tokens("u1")
    hold = await limiter.reserve_tokens("u1", None, 1000)  # all of it: checks took nothing
    await limiter.settle_tokens(hold, 999)
    await limiter.check_tokens("u1")  # one token is left
    second = await limiter.reserve_tokens("u1", None, 1)
    await limiter.settle_tokens(second, 1)
    exc = await refused(limiter.check_tokens("u1"))
    assert (exc.limit, exc.scope, exc.key, exc.allowed) == ("tokens_per_day", "user", "u1", 1000)
    assert exc.reset_at is not None
    assert time.time() < exc.reset_at <= time.time() + DAY
    await limiter.check_tokens("u2")


async def test_a_reservation_refused_for_the_user_gives_back_the_tenants(make: Make) -> None:
    limiter = await make(
        RateLimits(per_user=Quota(tokens_per_day=500), per_tenant=Quota(tokens_per_day=1000))
    )
    hold = await limiter.reserve_tokens("u1", "acme", 400)
    assert hold is not None
    assert len(hold.keys) == 2  # held against the tenant and the user
    exc = await refused(limiter.reserve_tokens("u1", "acme", 200))
    assert exc.scope == "user"
    # the tenant's 200 were given back: 600 are left for the tenant's other users
    assert await limiter.reserve_tokens("u2", "acme", 500) is not None
    assert await limiter.reserve_tokens("u3", "acme", 100) is not None
    exc = await refused(limiter.reserve_tokens("u4", "acme", 1))
    assert exc.scope == "tenant"


async def test_settling_after_the_day_ended_does_not_credit_the_next_day(make: Make) -> None:
    limiter = await make(per_user(tokens_per_day=1000))
    hold = await limiter.reserve_tokens("u1", None, 1000)
    assert hold is not None
    (key, _expiry), *_ = hold.keys
    await limiter.storage.clear(key)  # the day's window ends (its key expires) mid-call
    await limiter.settle_tokens(hold, 0)  # the call failed: it used nothing
    assert await limiter.reserve_tokens("u1", None, 1000) is not None
    await refused(limiter.reserve_tokens("u1", None, 1000))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_50_concurrent_reservations_never_hold_more_than_the_limit(
    make: Make, seed: int
) -> None:
    limit = 10_000
    policy = per_user(tokens_per_day=limit)
    replicas = [await make(policy) for _ in range(5)]
    rng = random.Random(seed)
    sizes = [rng.randrange(300, 1200) for _ in range(50)]
    results = await asyncio.gather(
        *(replicas[i % 5].reserve_tokens("u1", None, n) for i, n in enumerate(sizes)),
        return_exceptions=True,
    )
    granted = [r.tokens for r in results if isinstance(r, TokenHold)]
    refusals = [r for r in results if isinstance(r, RateLimited)]
    assert len(granted) + len(refusals) == 50, results
    assert refusals, "50 reservations of 300+ tokens cannot all fit in 10,000"
    assert all(r.limit == "tokens_per_day" for r in refusals)
    assert granted
    assert sum(granted) <= limit
    # refused reservations left nothing behind: exactly what is left still fits
    left = limit - sum(granted)
    if left:
        assert await replicas[0].reserve_tokens("u1", None, left) is not None
    await refused(replicas[1].reserve_tokens("u1", None, 1))


# --- concurrent sessions ---------------------------------------------------------------------


async def test_concurrent_slots_admit_n_and_a_release_frees_one(make: Make) -> None:
    limiter = await make(per_user(concurrent_sessions=2))
    a = await limiter.acquire_slots("u1", None, "turn-a")
    b = await limiter.acquire_slots("u1", None, "turn-b")
    assert isinstance(a, Slots)
    assert a.token == "turn-a"
    assert b is not None
    exc = await refused(limiter.acquire_slots("u1", None, "turn-c"))
    assert (exc.limit, exc.scope, exc.key, exc.allowed) == ("concurrent_sessions", "user", "u1", 2)
    assert exc.reset_at is None
    assert exc.retry_after is None
    assert "2 conversations at once" in str(exc)
    assert "when one of their running conversations ends" in str(exc)
    assert await limiter.acquire_slots("u2", None, "turn-x") is not None  # other users
    await limiter.release_slots(a)
    c = await limiter.acquire_slots("u1", None, "turn-c")
    assert c is not None
    await refused(limiter.acquire_slots("u1", None, "turn-d"))  # only one was freed


async def test_a_slot_refused_for_the_user_gives_back_the_tenants(make: Make) -> None:
    limiter = await make(
        RateLimits(per_user=Quota(concurrent_sessions=1), per_tenant=Quota(concurrent_sessions=3))
    )
    assert await limiter.acquire_slots("u1", "acme", "a") is not None
    exc = await refused(limiter.acquire_slots("u1", "acme", "b"))
    assert exc.scope == "user"
    # "b" holds no tenant slot: two are left for the tenant's other users
    assert await limiter.acquire_slots("u2", "acme", "c") is not None
    assert await limiter.acquire_slots("u3", "acme", "d") is not None
    exc = await refused(limiter.acquire_slots("u4", "acme", "e"))
    assert (exc.scope, exc.key) == ("tenant", "acme")


async def test_a_slot_past_its_ttl_frees_itself_in_memory() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        RateLimits(per_user=Quota(concurrent_sessions=1), slot_ttl=60.0),
        slots=MemorySlots(clock=clock),
    )
    try:
        assert await limiter.acquire_slots("u1", None, "died") is not None  # never released
        clock.advance(59.9)
        await refused(limiter.acquire_slots("u1", None, "next"))
        clock.advance(0.1)
        assert await limiter.acquire_slots("u1", None, "next") is not None
        await refused(limiter.acquire_slots("u1", None, "third"))  # "next" now holds it
    finally:
        await limiter.aclose()


async def test_a_slot_past_its_ttl_frees_itself_in_redis() -> None:
    async with limiters("redis") as make_redis:
        limiter = await make_redis(per_user(concurrent_sessions=2))
        slots = limiter.slots
        assert isinstance(slots, RedisSlots)
        key = "slots:user:u1"
        assert await slots.acquire(key, "long", 2, 3600.0)
        assert await slots.acquire(key, "short", 2, 0.2)  # its process "dies" holding it
        for _ in range(200):  # bounded: up to about 10 s
            if await slots.acquire(key, "next", 2, 3600.0):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the 0.2 s slot never lapsed")
        assert not await slots.acquire(key, "other", 2, 3600.0)  # "long" did not lapse


async def test_concurrent_slot_grabs_across_replicas_take_exactly_the_limit(make: Make) -> None:
    policy = per_user(concurrent_sessions=3)
    replicas = [await make(policy) for _ in range(5)]
    results = await asyncio.gather(
        *(replicas[i % 5].acquire_slots("u1", None, f"turn-{i}") for i in range(50)),
        return_exceptions=True,
    )
    taken = [r for r in results if isinstance(r, Slots)]
    refusals = [r for r in results if isinstance(r, RateLimited)]
    assert len(taken) == 3, results
    assert len(refusals) == 47
    assert all(r.limit == "concurrent_sessions" for r in refusals)
    await replicas[0].release_slots(taken[0])
    assert await replicas[4].acquire_slots("u1", None, "after") is not None


# --- opening, and a store that fails ---------------------------------------------------------


async def test_unreachable_redis_is_a_config_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TETHER_REDIS_URL", raising=False)
    with pytest.raises(ConfigError) as info:
        await open_rate_limiter(per_user(sessions_per_hour=1), "redis://user:secret@127.0.0.1:1/0")
    message = str(info.value)
    assert "secret" not in message
    assert "redis://user:***@127.0.0.1:1/0" in message
    assert "does not answer" in message


async def test_an_invalid_redis_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        await open_rate_limiter(per_user(sessions_per_hour=1), "http://user:secret@127.0.0.1/0")
    assert "secret" not in str(info.value)
    assert "invalid Redis URL" in str(info.value)


async def test_without_a_url_the_limiter_counts_in_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TETHER_REDIS_URL", raising=False)
    limiter = await open_rate_limiter(per_user(sessions_per_hour=1))
    try:
        assert isinstance(limiter.storage, MemoryStorage)
        assert isinstance(limiter.slots, MemorySlots)
        await limiter.admit_session("u1")
        await refused(limiter.admit_session("u1"))
    finally:
        await limiter.aclose()


async def test_a_failing_store_lets_requests_through_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A limiter whose Redis went away after it opened (nothing listens on port 1).
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", retry=Retry(NoBackoff(), 0))
    storage = RedisStorage(
        "async+redis://127.0.0.1:1/0",
        implementation="redispy",
        # limits types its **options as scalars; redis-py takes a pool here
        connection_pool=client.connection_pool,  # type: ignore[arg-type]
    )
    policy = per_user(sessions_per_hour=1, tokens_per_day=10, concurrent_sessions=1)
    limiter = RateLimiter(policy, storage, slots=RedisSlots(client))
    try:
        with caplog.at_level(logging.ERROR, logger="tether.limits"):
            for _ in range(3):
                await limiter.admit_session("u1")
            await limiter.check_tokens("u1")
            assert await limiter.reserve_tokens("u1", None, 10**6) is None
            assert await limiter.acquire_slots("u1", None, "a") is None
            assert await limiter.acquire_slots("u1", None, "b") is None
    finally:
        await limiter.aclose()
    messages = [r.getMessage() for r in caplog.records if r.name == "tether.limits"]
    assert sum("letting the session through" in m for m in messages) == 3
    assert any("letting the request through" in m for m in messages)
    assert any("letting the call through" in m for m in messages)
    assert sum("letting the turn run" in m for m in messages) == 2
