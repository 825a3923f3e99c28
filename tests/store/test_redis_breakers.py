"""Circuit breakers shared through Redis: the same contract as the in-process backend.

The contract tests run every scenario on :class:`MemoryBreakerBackend` and on
:class:`RedisBreakerBackend`, driving time with explicit ``now`` values (no
sleeping). The Redis-only tests check atomicity (one trial among 50 racing
callers), sharing between two processes, and what happens when Redis is down.

Redis is ``$TETHER_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``);
each test works under its own random key prefix and deletes its keys. When
Redis is unreachable these tests are skipped locally, but fail when
``TETHER_REQUIRE_SERVICES`` is set (``scripts/test.sh``, CI) or ``CI=true``:
CI must never skip them quietly.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.services import delete_redis_keys, redis_url, require_redis
from tether.controls.breaker import Admission, BreakerBackend, Breakers, MemoryBreakerBackend
from tether.spec.policy import BreakerPolicy
from tether.store import RedisBreakerBackend, StoreUnavailable, open_breakers
from tether.store.redis_breakers import redact_url
from tether.store.redis_limits import new_prefix

PEER = Path(__file__).with_name("breaker_peer.py")

MakeBackend = Callable[..., RedisBreakerBackend]  # (**redis client kwargs) -> a new backend

T = 1_700_000_000.25  # a fractional start time: retry_at must come back bit-for-bit
POLICY = BreakerPolicy(failure_threshold=3, window=10.0, cooldown=30.0)
KEY = "model:test:flaky"


@asynccontextmanager
async def redis_backends() -> AsyncIterator[tuple[str, MakeBackend]]:
    """A fresh key prefix and a maker of backends on it (each with its own client).

    Afterwards the backends are closed and every key under the prefix deleted.
    """
    require_redis()
    prefix = new_prefix()
    made: list[RedisBreakerBackend] = []

    def make(**client_kwargs: Any) -> RedisBreakerBackend:
        client = aioredis.Redis.from_url(redis_url(), socket_timeout=5, **client_kwargs)
        backend = RedisBreakerBackend(client, prefix=prefix)
        made.append(backend)
        return backend

    try:
        yield prefix, make
    finally:
        for b in made:
            await b.aclose()
        await delete_redis_keys(prefix)


@pytest.fixture
async def redis_env() -> AsyncIterator[tuple[str, MakeBackend]]:
    """``(prefix, make)``: see :func:`redis_backends`."""
    async with redis_backends() as env:
        yield env


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[BreakerBackend]:
    """Each backend, fresh."""
    if request.param == "memory":
        yield MemoryBreakerBackend()
        return
    async with redis_backends() as (_, make):
        yield make()


async def open_breaker(b: BreakerBackend, at: float = T, key: str = KEY) -> float:
    """Open ``key`` with threshold failures at ``at``, ``at + 1``, ``at + 2``; when it opened."""
    assert await b.record(key, False, at, POLICY, trial=False) is None
    assert await b.record(key, False, at + 1, POLICY, trial=False) is None
    assert await b.record(key, False, at + 2, POLICY, trial=False) == "opened"
    return at + 2


# --- the contract, on both backends ---------------------------------------------------


async def test_closed_admits_and_success_changes_nothing(backend: BreakerBackend) -> None:
    assert await backend.admit(KEY, T, POLICY) == Admission(True)
    assert await backend.record(KEY, True, T, POLICY, trial=False) is None
    assert await backend.admit(KEY, T + 1, POLICY) == Admission(True)


async def test_threshold_failures_within_window_open(backend: BreakerBackend) -> None:
    opened = await open_breaker(backend)
    assert await backend.admit(KEY, opened, POLICY) == Admission(
        False, retry_at=opened + POLICY.cooldown
    )
    # other breakers are not affected
    assert await backend.admit("tool:other", opened, POLICY) == Admission(True)


async def test_failures_spread_wider_than_window_do_not_open(backend: BreakerBackend) -> None:
    for now in (T, T + 6, T + 12, T + 18, T + 24):  # never 3 within 10 s
        assert await backend.record(KEY, False, now, POLICY, trial=False) is None
    assert await backend.admit(KEY, T + 25, POLICY) == Admission(True)


async def test_failure_exactly_one_window_old_no_longer_counts(backend: BreakerBackend) -> None:
    assert await backend.record(KEY, False, T, POLICY, trial=False) is None
    assert await backend.record(KEY, False, T + 5, POLICY, trial=False) is None
    # at T + 10 the failure at T is a full window old: dropped, so only two count
    assert await backend.record(KEY, False, T + 10, POLICY, trial=False) is None
    assert await backend.record(KEY, False, T + 11, POLICY, trial=False) == "opened"


async def test_open_refuses_until_cooldown(backend: BreakerBackend) -> None:
    opened = await open_breaker(backend)
    retry_at = opened + POLICY.cooldown
    for now in (opened + 1, opened + 15, retry_at - 0.001):
        assert await backend.admit(KEY, now, POLICY) == Admission(False, retry_at=retry_at)


async def test_one_trial_after_cooldown(backend: BreakerBackend) -> None:
    opened = await open_breaker(backend)
    trial_at = opened + POLICY.cooldown
    assert await backend.admit(KEY, trial_at, POLICY) == Admission(True, trial=True)
    refused = Admission(False, retry_at=trial_at + POLICY.cooldown)
    assert await backend.admit(KEY, trial_at, POLICY) == refused
    assert await backend.admit(KEY, trial_at + 5, POLICY) == refused


async def test_trial_success_closes(backend: BreakerBackend) -> None:
    opened = await open_breaker(backend)
    trial_at = opened + POLICY.cooldown
    assert (await backend.admit(KEY, trial_at, POLICY)).trial
    assert await backend.record(KEY, True, trial_at + 1, POLICY, trial=True) == "closed"
    for _ in range(3):  # a closed breaker admits everyone, none as a trial
        assert await backend.admit(KEY, trial_at + 2, POLICY) == Admission(True)
    # the failures before it opened are forgotten: counting starts afresh
    assert await backend.record(KEY, False, trial_at + 3, POLICY, trial=False) is None
    assert await backend.record(KEY, False, trial_at + 4, POLICY, trial=False) is None
    assert await backend.admit(KEY, trial_at + 5, POLICY) == Admission(True)


async def test_trial_failure_reopens_for_another_cooldown(backend: BreakerBackend) -> None:
    opened = await open_breaker(backend)
    trial_at = opened + POLICY.cooldown
    assert (await backend.admit(KEY, trial_at, POLICY)).trial
    failed_at = trial_at + 2.5
    assert await backend.record(KEY, False, failed_at, POLICY, trial=True) == "opened"
    reopened = Admission(False, retry_at=failed_at + POLICY.cooldown)
    assert await backend.admit(KEY, failed_at, POLICY) == reopened
    assert await backend.admit(KEY, failed_at + POLICY.cooldown - 0.5, POLICY) == reopened
    second = failed_at + POLICY.cooldown
    assert await backend.admit(KEY, second, POLICY) == Admission(True, trial=True)
    assert await backend.admit(KEY, second, POLICY) == Admission(
        False, retry_at=second + POLICY.cooldown
    )


async def test_silent_trial_is_replaced_after_a_further_cooldown(
    backend: BreakerBackend,
) -> None:
    opened = await open_breaker(backend)
    trial_at = opened + POLICY.cooldown
    assert (await backend.admit(KEY, trial_at, POLICY)).trial  # ...and never reports
    replaced_at = trial_at + POLICY.cooldown
    assert await backend.admit(KEY, replaced_at - 1, POLICY) == Admission(
        False, retry_at=replaced_at
    )
    assert await backend.admit(KEY, replaced_at, POLICY) == Admission(True, trial=True)
    assert await backend.admit(KEY, replaced_at, POLICY) == Admission(
        False, retry_at=replaced_at + POLICY.cooldown
    )
    # the replacement's report decides
    assert await backend.record(KEY, True, replaced_at + 1, POLICY, trial=True) == "closed"
    assert await backend.admit(KEY, replaced_at + 1, POLICY) == Admission(True)


async def test_non_trial_record_while_open_is_ignored(backend: BreakerBackend) -> None:
    opened = await open_breaker(backend)
    retry_at = opened + POLICY.cooldown
    # calls admitted before it opened, finishing late: neither closes nor re-opens it
    assert await backend.record(KEY, True, opened + 1, POLICY, trial=False) is None
    assert await backend.record(KEY, False, opened + 2, POLICY, trial=False) is None
    assert await backend.admit(KEY, opened + 3, POLICY) == Admission(False, retry_at=retry_at)
    # nor while the trial is out (half-open)
    assert (await backend.admit(KEY, retry_at, POLICY)).trial
    assert await backend.record(KEY, True, retry_at + 1, POLICY, trial=False) is None
    assert await backend.admit(KEY, retry_at + 1, POLICY) == Admission(
        False, retry_at=retry_at + POLICY.cooldown
    )


async def test_breakers_pass_their_clock_and_disabled_policy_admits(
    backend: BreakerBackend,
) -> None:
    now = [T]
    breakers = Breakers(backend, clock=lambda: now[0])
    for _ in range(POLICY.failure_threshold):
        now[0] += 1
        change = await breakers.record(KEY, POLICY, ok=False, trial=False)
    assert change == "opened"
    opened = now[0]
    assert await breakers.admit(KEY, POLICY) == Admission(False, retry_at=opened + 30)
    off = BreakerPolicy(failure_threshold=3, window=10.0, cooldown=30.0, enabled=False)
    assert await breakers.admit(KEY, off) == Admission(True)
    assert await breakers.record(KEY, off, ok=True, trial=True) is None  # does not close it
    assert await breakers.admit(KEY, POLICY) == Admission(False, retry_at=opened + 30)


# --- Redis only -------------------------------------------------------------------------


async def test_keys_are_per_breaker_and_expire_when_idle(
    redis_env: tuple[str, MakeBackend],
) -> None:
    redis_prefix, make = redis_env
    b = make()
    assert await b.record(KEY, False, T, POLICY, trial=False) is None
    client = aioredis.Redis.from_url(redis_url())
    try:
        state, failures = f"{redis_prefix}{{{KEY}}}", f"{redis_prefix}{{{KEY}}}:f"
        keys = [k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")]
        assert sorted(keys) == [state, failures]
        ttl_ms = 3 * (POLICY.window + POLICY.cooldown) * 1000
        for k in (state, failures):
            assert 0 < await client.pttl(k) <= ttl_ms
        await open_breaker(b, at=T + 20)  # the failure at T is a window old by then
        assert 0 < await client.pttl(state) <= ttl_ms
        assert await client.exists(failures) == 0  # cleared when it opened
    finally:
        await client.aclose()


async def test_decoded_responses_client_works(redis_env: tuple[str, MakeBackend]) -> None:
    b = redis_env[1](decode_responses=True)
    opened = await open_breaker(b)
    assert await b.admit(KEY, opened, POLICY) == Admission(False, retry_at=opened + 30)
    assert await b.admit(KEY, opened + 30, POLICY) == Admission(True, trial=True)
    assert await b.record(KEY, True, opened + 31, POLICY, trial=True) == "closed"


async def test_exactly_one_trial_among_50_concurrent_admits(
    redis_env: tuple[str, MakeBackend],
) -> None:
    replicas = [redis_env[1]() for _ in range(5)]  # five clients, five connection pools
    opened = await open_breaker(replicas[0])
    now = opened + POLICY.cooldown
    results = await asyncio.gather(*(replicas[i % 5].admit(KEY, now, POLICY) for i in range(50)))
    assert sum(a.trial for a in results) == 1
    assert sum(a.allowed for a in results) == 1
    assert all(a.retry_at == now + POLICY.cooldown for a in results if not a.allowed)


async def test_concurrent_failures_open_exactly_once(
    redis_env: tuple[str, MakeBackend],
) -> None:
    replicas = [redis_env[1]() for _ in range(5)]
    policy = BreakerPolicy(failure_threshold=20, window=10.0, cooldown=30.0)
    changes = await asyncio.gather(
        *(replicas[i % 5].record(KEY, False, T, policy, trial=False) for i in range(50))
    )
    # 20 failures at the same instant open it; the 30 after that find it open and are ignored
    assert changes.count("opened") == 1
    assert changes.count(None) == 49


class Peer:
    """The other process (``breaker_peer.py``), driven one JSON line at a time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, prefix: str) -> Peer:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PEER),
            redis_url(),
            prefix,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        peer = cls(proc)
        assert await peer._read() == {"ready": True}
        return peer

    async def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=30)
        assert line, f"breaker_peer.py exited with {await self.proc.wait()}"
        return json.loads(line)

    async def call(self, **cmd: Any) -> Any:
        assert self.proc.stdin is not None
        policy = {
            "failure_threshold": POLICY.failure_threshold,
            "window": POLICY.window,
            "cooldown": POLICY.cooldown,
        }
        self.proc.stdin.write((json.dumps({"key": KEY, "policy": policy, **cmd}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read()

    async def admit(self, now: float) -> Admission:
        r = await self.call(op="admit", now=now)
        return Admission(r["allowed"], trial=r["trial"], retry_at=r["retry_at"])

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            assert await asyncio.wait_for(self.proc.wait(), timeout=30) == 0
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()


async def test_two_processes_share_one_breaker_and_one_trial(
    redis_env: tuple[str, MakeBackend],
) -> None:
    redis_prefix, make = redis_env
    here = make()
    peer = await Peer.start(redis_prefix)
    try:
        # the other process fails until its breaker opens ...
        now, change = T, None
        while change is None:
            now += 1
            change = (await peer.call(op="record", now=now, ok=False, trial=False))["transition"]
        assert change == "opened"
        opened = now
        # ... and this process sees it open
        retry_at = opened + POLICY.cooldown
        assert await here.admit(KEY, opened + 1, POLICY) == Admission(False, retry_at=retry_at)
        assert await peer.admit(opened + 1) == Admission(False, retry_at=retry_at)

        # after the cool-down both race for the trial at the same instant: one wins
        theirs, mine = await asyncio.gather(peer.admit(retry_at), here.admit(KEY, retry_at, POLICY))
        assert [theirs.trial, mine.trial].count(True) == 1
        loser = mine if theirs.trial else theirs
        assert loser == Admission(False, retry_at=retry_at + POLICY.cooldown)

        # the winner's success closes it for both
        if theirs.trial:
            closed = await peer.call(op="record", now=retry_at + 1, ok=True, trial=True)
            assert closed == {"transition": "closed"}
        else:
            assert await here.record(KEY, True, retry_at + 1, POLICY, trial=True) == "closed"
        assert await here.admit(KEY, retry_at + 2, POLICY) == Admission(True)
        assert await peer.admit(retry_at + 2) == Admission(True)
    finally:
        await peer.close()


# --- opening, and Redis being down ------------------------------------------------------


async def test_open_breakers_without_url_is_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_REDIS_URL", raising=False)
    clock = lambda: T  # noqa: E731 - a fixed clock
    breakers = await open_breakers(clock=clock)
    assert isinstance(breakers.backend, MemoryBreakerBackend)
    assert breakers.clock is clock


async def test_open_breakers_uses_tether_redis_url(
    monkeypatch: pytest.MonkeyPatch, redis_env: tuple[str, MakeBackend]
) -> None:
    redis_prefix = redis_env[0]
    monkeypatch.setenv("TETHER_REDIS_URL", redis_url())
    breakers = await open_breakers(clock=lambda: T)
    assert isinstance(breakers.backend, RedisBreakerBackend)
    try:
        assert await breakers.admit(f"{redis_prefix}probe", POLICY) == Admission(True)
    finally:
        await breakers.backend.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "redis://breakers:s3cret-pw@127.0.0.1:1/0",
        "redis://:s3cret-pw@127.0.0.1:1",
        "redis://127.0.0.1:1/0?password=s3cret-pw",
    ],
)
async def test_open_breakers_unreachable_fails_fast_without_password(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_REDIS_URL", url)
    with pytest.raises(StoreUnavailable) as info:
        async with asyncio.timeout(30):  # a hang guard, not a speed target
            await open_breakers()
    message = str(info.value)
    assert "s3cret" not in message
    assert "127.0.0.1:1" in message
    assert "TETHER_REDIS_URL" in message


async def test_redis_going_away_raises_store_unavailable() -> None:
    b = RedisBreakerBackend.from_url("redis://breakers:s3cret-pw@127.0.0.1:1/0")
    try:
        with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1/0 is unreachable") as info:
            await b.admit(KEY, T, POLICY)
        assert "s3cret" not in str(info.value)
        with pytest.raises(StoreUnavailable):
            await b.record(KEY, False, T, POLICY, trial=False)
    finally:
        await b.aclose()


async def test_hung_redis_times_out_instead_of_hanging() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, reads, never answers
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    b = RedisBreakerBackend.from_url(f"redis://127.0.0.1:{port}/0")
    kwargs = b._client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 2.0
    try:
        with pytest.raises(StoreUnavailable, match="timed out"):
            async with asyncio.timeout(30):  # a hang guard: the client's own timeout must fire
                await b.admit(KEY, T, POLICY)
    finally:
        await b.aclose()
        server.close()
        await server.wait_closed()


def test_redact_url() -> None:
    assert redact_url("redis://u:pw@h:1/2") == "redis://u:***@h:1/2"
    assert redact_url("rediss://:pw@h") == "rediss://:***@h"
    assert redact_url("redis://h:1/0?password=pw&db=3") == "redis://h:1/0?password=***&db=3"
    assert redact_url("redis://h:6379") == "redis://h:6379"


async def test_the_failure_rate_is_over_admitted_calls(backend: BreakerBackend) -> None:
    # 20 calls admitted together, 6 fail at once while 14 are still running:
    # 6 of 20 is under the 50% rate, so the breaker stays closed.
    for _ in range(20):
        assert await backend.admit(KEY, T, POLICY) == Admission(True)
    for i in range(6):
        assert await backend.record(KEY, False, T + 0.1 * i, POLICY, trial=False) is None
    assert await backend.admit(KEY, T + 1, POLICY) == Admission(True)
    # once those admissions age out of the window, the failures are the majority
    later = T + POLICY.window + 0.5
    assert await backend.admit(KEY, later, POLICY) == Admission(True)
    assert await backend.record(KEY, False, later, POLICY, trial=False) is None  # 1 of 1, < 3
    assert await backend.record(KEY, False, later + 1, POLICY, trial=False) is None
    assert await backend.record(KEY, False, later + 2, POLICY, trial=False) == "opened"
