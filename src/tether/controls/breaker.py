"""Circuit breakers per provider-model and per tool.

A breaker counts the calls of one dependency (``model:anthropic:claude-...``,
``tool:retail:get_order_details``). At least ``failure_threshold`` failures
within ``window`` seconds, making up at least ``failure_rate`` of the calls
admitted in that window, open it: calls then fail fast with
:class:`~tether.exceptions.CircuitOpen` instead of waiting on something that
is down. ``cooldown`` seconds after opening, exactly one caller is admitted
as the *trial* (half-open); its success closes the breaker, its failure
opens it for another cool-down. A trial that never reports (its process
died) is replaced by a new one after a further cool-down.

State lives behind :class:`BreakerBackend`: :class:`MemoryBreakerBackend`
(one process, the default) here, and a Redis backend in
:mod:`tether.store.redis_breakers` so that every replica sees the same
breaker and only one trial runs across all of them.

Why not a library: we looked at purgatory (async, Redis-backed), pybreaker
and aiobreaker. None counts failures within a time window (they count
consecutive failures), none takes an injected clock (breaker tests would
have to sleep through real cool-downs), and purgatory's half-open state
admits every concurrent caller rather than one trial across replicas. The
state machine below is small; the Redis version is one atomic script per
operation.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from tether.spec.policy import BreakerPolicy

__all__ = [
    "ADMITTED",
    "Admission",
    "BreakerBackend",
    "Breakers",
    "MemoryBreakerBackend",
    "Transition",
]

Transition = Literal["opened", "closed"]

log = logging.getLogger("tether.breakers")


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a call may go ahead: ``trial`` marks the one half-open trial;
    a refused call gets ``retry_at``, when the next trial may start."""

    allowed: bool
    trial: bool = False
    retry_at: float | None = None


#: the admission of every call to a closed breaker (one shared, immutable object)
ADMITTED = Admission(True)


class BreakerBackend(Protocol):
    """Where breaker state lives. Both methods are atomic per key."""

    async def admit(self, key: str, now: float, policy: BreakerPolicy) -> Admission:
        """Decide whether a call to ``key`` may start now."""
        ...

    async def record(
        self, key: str, ok: bool, now: float, policy: BreakerPolicy, *, trial: bool
    ) -> Transition | None:
        """Record a call's outcome; return ``opened``/``closed`` if that changed the state."""
        ...


@dataclass(slots=True)
class _State:
    admitted: deque[float] = field(default_factory=deque)  # calls let through, in the window
    failures: deque[float] = field(default_factory=deque)  # failures, in the window
    opened_at: float | None = None  # set while open or half-open
    trial_at: float | None = None  # when the current trial was admitted


def _prune(times: deque[float], since: float) -> None:
    while times and times[0] <= since:
        times.popleft()


class MemoryBreakerBackend:
    """Breaker state in this process (the default).

    The failure rate is failures over calls *admitted* in the window, not
    over calls finished: failures come back fast and successes slowly, so
    a rate over finished calls reads 100% for the first moments of any
    burst of traffic and opens the breaker on a healthy dependency.
    """

    def __init__(self) -> None:
        self._states: dict[str, _State] = {}

    async def admit(self, key: str, now: float, policy: BreakerPolicy) -> Admission:
        return self.admit_now(key, now, policy)

    async def record(
        self, key: str, ok: bool, now: float, policy: BreakerPolicy, *, trial: bool
    ) -> Transition | None:
        return self.record_now(key, ok, now, policy, trial=trial)

    def admit_now(self, key: str, now: float, policy: BreakerPolicy) -> Admission:
        """:meth:`admit` without a coroutine (the state is right here)."""
        st = self._states.get(key)
        if st is None:
            st = self._states[key] = _State()
        if st.opened_at is None:
            st.admitted.append(now)
            _prune(st.admitted, now - policy.window)
            return ADMITTED
        if st.trial_at is not None:  # a trial is out: wait for it, unless it went silent
            if now < st.trial_at + policy.cooldown:
                return Admission(False, retry_at=st.trial_at + policy.cooldown)
        elif now < st.opened_at + policy.cooldown:
            return Admission(False, retry_at=st.opened_at + policy.cooldown)
        st.trial_at = now
        return Admission(True, trial=True)

    def record_now(
        self, key: str, ok: bool, now: float, policy: BreakerPolicy, *, trial: bool
    ) -> Transition | None:
        """:meth:`record` without a coroutine."""
        st = self._states.get(key)
        if st is None:
            st = self._states[key] = _State()
        if st.opened_at is not None:
            if not trial:
                return None  # a call admitted before the breaker opened, finishing late
            st.trial_at = None
            if ok:
                st.opened_at = None
                return "closed"
            st.opened_at = now
            return "opened"
        if ok:
            return None
        st.failures.append(now)
        since = now - policy.window
        _prune(st.failures, since)
        _prune(st.admitted, since)
        failed = len(st.failures)
        if failed >= policy.failure_threshold and failed >= policy.failure_rate * len(st.admitted):
            st.opened_at = now
            st.trial_at = None
            st.admitted.clear()
            st.failures.clear()
            return "opened"
        return None


class Breakers:
    """The breakers of one runtime: a backend plus the clock (wall time, shared by replicas).

    If the backend itself fails (Redis down: a ``ConnectionError`` or
    ``TimeoutError``), breakers *fail open*: the call is let through and the
    outcome not recorded, with an error logged at most once a minute. A
    broken breaker store must not take down the calls it protects, nor be
    blamed on them.
    """

    def __init__(
        self, backend: BreakerBackend | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.backend: BreakerBackend = backend if backend is not None else MemoryBreakerBackend()
        self.clock = clock
        self._complained_at: float | None = None
        # The in-process backend is called directly: a coroutine per call
        # would cost more than its bookkeeping (two per model and tool call).
        self._local = self.backend if isinstance(self.backend, MemoryBreakerBackend) else None

    def _backend_failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._complained_at is None or now - self._complained_at >= 60:
            self._complained_at = now
            log.error("circuit breakers unavailable, letting calls through: %s", exc)

    @property
    def local(self) -> bool:
        """Whether the state is in this process (then the ``_now`` methods always answer)."""
        return self._local is not None

    def admit_now(self, key: str, policy: BreakerPolicy) -> Admission | None:
        """:meth:`admit` without awaiting when the state is in this process, else ``None``."""
        if not policy.enabled:
            return ADMITTED
        if self._local is not None:
            return self._local.admit_now(key, self.clock(), policy)
        return None

    def record_now(
        self, key: str, policy: BreakerPolicy, *, ok: bool, trial: bool
    ) -> Transition | None:
        """:meth:`record` without awaiting; only for a :attr:`local` breaker store."""
        if not policy.enabled or self._local is None:
            return None
        return self._local.record_now(key, ok, self.clock(), policy, trial=trial)

    async def admit(self, key: str, policy: BreakerPolicy) -> Admission:
        """May a call to ``key`` start now? Always yes when ``policy.enabled`` is false."""
        if not policy.enabled:
            return ADMITTED
        if self._local is not None:
            return self._local.admit_now(key, self.clock(), policy)
        try:
            return await self.backend.admit(key, self.clock(), policy)
        except (ConnectionError, TimeoutError) as exc:
            self._backend_failed(exc)
            return Admission(True)

    async def record(
        self, key: str, policy: BreakerPolicy, *, ok: bool, trial: bool
    ) -> Transition | None:
        """Record an outcome; the state change it caused, if any."""
        if not policy.enabled:
            return None
        if self._local is not None:
            return self._local.record_now(key, ok, self.clock(), policy, trial=trial)
        try:
            return await self.backend.record(key, ok, self.clock(), policy, trial=trial)
        except (ConnectionError, TimeoutError) as exc:
            self._backend_failed(exc)
            return None

    async def aclose(self) -> None:
        """Close the backend's connections, if it has any."""
        aclose = getattr(self.backend, "aclose", None)
        if aclose is not None:
            await aclose()
