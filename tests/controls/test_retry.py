"""The retry policy's table, its waits, and the one retry loop built on tenacity."""

from __future__ import annotations

import random

import pytest

from tether.controls.retry import RetryInfo, call_with_retries, describe
from tether.exceptions import ConfigError, ModelTimeout, ProviderError, Retry, ToolFailed
from tether.spec.policy import RetryPolicy
from tether.testing import FakeClock

POLICY = RetryPolicy()


def http(status: int, retry_after: float | None = None) -> ProviderError:
    return ProviderError(f"HTTP {status}", status=status, retryable=True, retry_after=retry_after)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (http(408), True),
        (http(409), True),
        (http(429), True),
        (http(500), True),
        (http(502), True),
        (http(503), True),
        (http(504), True),
        (http(529), True),
        (http(400), False),
        (http(401), False),
        (http(403), False),
        (http(404), False),
        (http(413), False),
        (http(422), False),
        (ModelTimeout("no answer"), True),
        (ProviderError("connection reset", retryable=True), True),
        (ProviderError("no status, not retryable", retryable=False), False),
        (TimeoutError(), True),
        (ConnectionError(), True),
        (Retry("busy"), True),
        (ToolFailed("no such order"), False),
        (ValueError("bad input"), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_what_is_transient(error: BaseException, transient: bool) -> None:
    assert POLICY.is_transient(error) is transient


def test_a_4xx_marked_retryable_by_mistake_is_still_not_retried() -> None:
    # The status decides when there is one: a provider adapter cannot make a 400 retryable.
    assert not POLICY.is_transient(ProviderError("x", status=400, retryable=True))


def test_backoff_is_1_2_4_seconds_within_the_jitter() -> None:
    rng = random.Random(7)
    for retry, base in ((1, 1.0), (2, 2.0), (3, 4.0)):
        waits = [POLICY.backoff(retry, rng) for _ in range(200)]
        assert min(waits) >= base * 0.8
        assert max(waits) <= base * 1.2
        assert max(waits) - min(waits) > base * 0.2  # there is jitter
    assert RetryPolicy(jitter=0).backoff(3, rng) == 4.0
    assert RetryPolicy(max_delay=3, jitter=0).backoff(5, rng) == 3.0


def test_retry_after_replaces_the_backoff_up_to_the_cap() -> None:
    assert POLICY.delay(1, http(429, retry_after=2)) == 2.0
    assert POLICY.delay(3, http(429, retry_after=0)) == 0.0
    assert POLICY.delay(1, http(429, retry_after=600)) == 30.0
    assert RetryPolicy(retry_after_cap=5).delay(1, http(503, retry_after=60)) == 5.0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"multiplier": 0.5}, {"jitter": 1.0}, {"initial_delay": -1}],
)
def test_invalid_policies_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


async def test_retries_until_success_and_reports_each_retry() -> None:
    clock = FakeClock()
    errors = [http(503), http(429, retry_after=3)]
    seen: list[RetryInfo] = []

    async def flaky() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    policy = RetryPolicy(jitter=0)
    assert await call_with_retries(flaky, policy, sleep=clock.sleep, on_retry=seen.append) == "ok"
    assert clock.sleeps == [1.0, 3.0]  # backoff, then the server's Retry-After
    assert [(i.attempt, i.delay, i.reason) for i in seen] == [
        (1, 1.0, "HTTP 503"),
        (2, 3.0, "HTTP 429"),
    ]


async def test_gives_up_after_max_retries_with_the_last_error() -> None:
    clock = FakeClock()
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise http(503)

    with pytest.raises(ProviderError) as info:
        await call_with_retries(down, RetryPolicy(jitter=0), sleep=clock.sleep)
    assert info.value.status == 503
    assert calls == 4  # the first attempt and 3 retries
    assert clock.sleeps == [1.0, 2.0, 4.0]


async def test_never_retries_a_permanent_error_or_a_vetoed_one() -> None:
    clock = FakeClock()
    calls = 0

    async def refuse() -> None:
        nonlocal calls
        calls += 1
        raise http(401)

    with pytest.raises(ProviderError):
        await call_with_retries(refuse, POLICY, sleep=clock.sleep)
    assert (calls, clock.sleeps) == (1, [])

    async def cut() -> None:
        nonlocal calls
        calls += 1
        raise http(503)

    calls = 0
    with pytest.raises(ProviderError):
        await call_with_retries(cut, POLICY, sleep=clock.sleep, can_retry=lambda _e: False)
    assert (calls, clock.sleeps) == (1, [])


def test_describe() -> None:
    assert describe(http(529)) == "HTTP 529"
    assert describe(ModelTimeout("m did not answer within 5 s")) == "timeout"
    assert describe(TimeoutError()) == "timeout"
    assert describe(ProviderError("connection reset by peer", retryable=True)) == "connection error"
