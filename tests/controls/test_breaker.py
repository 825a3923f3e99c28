"""The in-process circuit breaker's state machine, on explicit times (no sleeping).

The same scenarios run against Redis in tests/store/test_redis_breakers.py.
"""

from __future__ import annotations

import pytest

from tether.controls.breaker import Breakers, MemoryBreakerBackend
from tether.exceptions import ConfigError
from tether.spec.policy import BreakerPolicy
from tether.testing import FakeClock

P = BreakerPolicy(failure_threshold=3, window=10.0, cooldown=30.0)
K = "tool:shop:get_order"


async def fail(b: MemoryBreakerBackend, now: float, trial: bool = False) -> str | None:
    """A call admitted at ``now`` that fails at once."""
    if not trial:
        await b.admit(K, now, P)
    return await b.record(K, False, now, P, trial=trial)


async def test_threshold_failures_within_the_window_open_it() -> None:
    b = MemoryBreakerBackend()
    assert [await fail(b, t) for t in (0.0, 1.0)] == [None, None]
    assert (await b.admit(K, 2.0, P)).allowed
    assert await fail(b, 2.0) == "opened"
    refused = await b.admit(K, 3.0, P)
    assert not refused.allowed
    assert refused.retry_at == 32.0


async def test_failures_spread_wider_than_the_window_do_not() -> None:
    b = MemoryBreakerBackend()
    assert [await fail(b, t) for t in (0.0, 6.0, 12.0, 18.0)] == [None] * 4
    assert (await b.admit(K, 19.0, P)).allowed


async def test_successes_do_not_hide_failures_in_the_window() -> None:
    b = MemoryBreakerBackend()
    await fail(b, 0.0)
    await b.admit(K, 1.0, P)
    await b.record(K, True, 1.0, P, trial=False)
    await fail(b, 2.0)
    assert await fail(b, 3.0) == "opened"


async def test_one_trial_after_the_cooldown_then_close_or_reopen() -> None:
    b = MemoryBreakerBackend()
    for t in (0.0, 1.0, 2.0):
        await fail(b, t)
    assert not (await b.admit(K, 31.9, P)).allowed
    trial = await b.admit(K, 32.0, P)
    assert (trial.allowed, trial.trial) == (True, True)
    second = await b.admit(K, 32.5, P)
    assert not second.allowed  # only one trial at a time
    assert second.retry_at == 62.0
    # a late non-trial result while open changes nothing
    assert await b.record(K, True, 33.0, P, trial=False) is None
    assert await fail(b, 34.0, trial=True) == "opened"
    assert not (await b.admit(K, 40.0, P)).allowed
    again = await b.admit(K, 64.0, P)
    assert again.trial
    assert await b.record(K, True, 65.0, P, trial=True) == "closed"
    assert (await b.admit(K, 65.5, P)) == (await b.admit(K, 65.6, P))
    assert (await b.admit(K, 66.0, P)).allowed
    assert not (await b.admit(K, 66.0, P)).trial


async def test_a_silent_trial_is_replaced_after_another_cooldown() -> None:
    b = MemoryBreakerBackend()
    for t in (0.0, 1.0, 2.0):
        await fail(b, t)
    assert (await b.admit(K, 32.0, P)).trial  # this trial's process dies: no record
    assert not (await b.admit(K, 50.0, P)).allowed
    assert (await b.admit(K, 62.0, P)).trial


async def test_keys_are_independent_and_disabled_policy_admits_all() -> None:
    clock = FakeClock(0.0)
    breakers = Breakers(clock=clock)
    for _ in range(3):
        await breakers.admit(K, P)
        await breakers.record(K, P, ok=False, trial=False)
    assert not (await breakers.admit(K, P)).allowed
    assert (await breakers.admit("tool:shop:other", P)).allowed
    off = BreakerPolicy(enabled=False)
    assert (await breakers.admit(K, off)).allowed
    clock.advance(30.0)
    assert (await breakers.admit(K, P)).trial


@pytest.mark.parametrize("kwargs", [{"failure_threshold": 0}, {"window": 0}, {"cooldown": -1}])
def test_invalid_breaker_policies(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]


async def test_a_busy_dependency_with_a_few_failures_stays_closed() -> None:
    # 3 failures among 10 calls is 30% < the 50% failure rate: not an outage.
    b = MemoryBreakerBackend()
    for t in range(7):
        await b.admit(K, float(t), P)
        await b.record(K, True, float(t), P, trial=False)
    assert [await fail(b, t) for t in (7.0, 8.0, 9.0)] == [None, None, None]
    assert (await b.admit(K, 9.5, P)).allowed
    # as the successes age out of the window the failures become the majority
    assert await fail(b, 14.0) == "opened"  # 4 failures of the 6 calls since t=4


async def test_the_rate_counts_calls_in_flight_not_only_finished_ones() -> None:
    # 20 calls start together; 6 fail at once while 14 are still running.
    # Over finished calls that reads 100% failures; over admitted calls, 30%.
    b = MemoryBreakerBackend()
    for _ in range(20):
        assert (await b.admit(K, 0.0, P)).allowed
    assert [await b.record(K, False, 0.1, P, trial=False) for _ in range(6)] == [None] * 6
    assert (await b.admit(K, 0.2, P)).allowed


class _DownBackend:
    async def admit(self, key: str, now: float, policy: BreakerPolicy) -> object:
        raise ConnectionError("redis is down")

    async def record(self, *args: object, **kwargs: object) -> object:
        raise TimeoutError("redis timed out")


async def test_breakers_fail_open_when_their_store_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    breakers = Breakers(_DownBackend())  # type: ignore[arg-type]
    assert (await breakers.admit(K, P)).allowed
    assert await breakers.record(K, P, ok=False, trial=False) is None
    assert await breakers.record(K, P, ok=False, trial=False) is None
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1  # said once, not on every call
    assert "letting calls through" in errors[0].getMessage()
