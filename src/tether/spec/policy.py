"""Reliability policies as plain data: which failures to retry, how long to wait, when to trip.

These are small frozen strategy objects (the shape of tenacity's ``stop``,
``wait`` and ``retry``): they decide, and :mod:`tether.controls` acts. One
:class:`RetryPolicy` serves model calls and tool calls alike; an agent has
one, and a tool may carry its own.

What is transient, by default (DESIGN.md, guarantee 1):

- HTTP 408, 409, 429, 500, 502, 503, 504 and 529 (Anthropic's "overloaded");
  a provider error with no status that says it is retryable (a timeout, a
  reset connection);
- ``TimeoutError`` and ``ConnectionError`` from anywhere (tools included), and
  a tool's own :class:`~tether.exceptions.Retry` signal.

Never retried: 400, 401, 403, 404, 422 and every other 4xx, validation
errors, a tool's clean refusal (:class:`~tether.exceptions.ToolFailed`),
and any other exception (a bug does not get better by repeating it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tether.exceptions import ConfigError, ProviderError, Retry

__all__ = ["DEFAULT_RETRY_STATUSES", "BreakerPolicy", "RetryPolicy"]

DEFAULT_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """When and how long to wait before trying a failed call again.

    - ``max_retries``: retries after the first attempt (0 turns retrying off).
    - ``initial_delay``, ``multiplier``, ``max_delay``: exponential backoff,
      1 s, 2 s, 4 s by default, never more than ``max_delay``.
    - ``jitter``: each backoff is scaled by a random factor in
      ``[1 - jitter, 1 + jitter]`` so that many clients do not retry in step.
    - ``retry_after_cap``: a provider's ``Retry-After`` is honoured (it
      replaces the backoff) up to this many seconds; a longer wait is cut to
      the cap.
    - ``retry_statuses``: the HTTP statuses that are transient.
    """

    max_retries: int = 3
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.2
    retry_after_cap: float = 30.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError("RetryPolicy.max_retries must be 0 or more")
        if self.initial_delay < 0 or self.max_delay < 0 or self.retry_after_cap < 0:
            raise ConfigError("RetryPolicy delays must be 0 or more seconds")
        if self.multiplier < 1:
            raise ConfigError("RetryPolicy.multiplier must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ConfigError("RetryPolicy.jitter must be in [0, 1)")

    def is_transient(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a failure that trying again may cure."""
        if isinstance(exc, ProviderError):
            if exc.status is not None:
                return exc.status in self.retry_statuses
            return exc.retryable
        return isinstance(exc, Retry | TimeoutError | ConnectionError)

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based), jitter included."""
        base = min(self.initial_delay * self.multiplier ** (retry - 1), self.max_delay)
        if self.jitter and rng is not None:
            base *= rng.uniform(1 - self.jitter, 1 + self.jitter)
        return base

    def delay(self, retry: int, exc: BaseException, rng: random.Random | None = None) -> float:
        """The wait before retry ``retry`` after ``exc``: its Retry-After (capped), or backoff."""
        after = getattr(exc, "retry_after", None)
        if isinstance(after, int | float) and after >= 0:
            return min(float(after), self.retry_after_cap)
        return self.backoff(retry, rng)


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerPolicy:
    """When a circuit breaker opens, and for how long.

    It opens when, within the last ``window`` seconds, at least
    ``failure_threshold`` calls failed *and* they were at least
    ``failure_rate`` of all calls. The count alone would open a busy
    breaker on a 1% error rate (5 failures a minute is nothing at 1,000
    calls a minute); the rate alone would open a quiet one on its first
    failure. While open every call fails fast; ``cooldown`` seconds after
    opening, one trial call is let through (half-open): its success closes
    the breaker, its failure opens it for another cool-down.
    ``enabled=False`` turns breakers off.
    """

    failure_threshold: int = 5
    failure_rate: float = 0.5
    window: float = 60.0
    cooldown: float = 30.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ConfigError("BreakerPolicy.failure_threshold must be at least 1")
        if not 0 < self.failure_rate <= 1:
            raise ConfigError("BreakerPolicy.failure_rate must be in (0, 1]")
        if self.window <= 0 or self.cooldown <= 0:
            raise ConfigError("BreakerPolicy.window and cooldown must be positive seconds")
