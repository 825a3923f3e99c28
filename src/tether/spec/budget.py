"""Cost policies as plain data: a session's token budget, per-user and per-tenant quotas.

- :class:`Budget` (on :class:`~tether.spec.agent.Agent`): how many tokens one
  session may spend, when to compress its context, and how.
- :class:`Quota` and :class:`RateLimits` (given to the
  :class:`~tether.runtime.runtime.Runtime`, because they are a deployment's
  choice, not an agent's): sessions per hour, tokens per day and concurrent
  sessions, per user and per tenant.

Tool-call caps are per turn and per session bounds, so they live with the
others in :class:`~tether.spec.agent.Limits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.exceptions import ConfigError

__all__ = ["Budget", "Quota", "RateLimits"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """A session's token budget.

    - ``max_tokens``: every token the session's model calls may use, input
      and output together, as the providers report them (cache reads and
      writes included). ``None`` means no budget. Before each call the
      runtime reserves the call's estimated input plus its output cap; the
      call must fit in what is left, and its output cap shrinks to fit. A
      call never pushes the session past the budget by more than what its
      estimate missed. When no call fits any more the session ends in
      ``budget_exhausted``, with a clear message and the partial answer.
    - ``compress_at``: the share of ``max_tokens`` (default 80%) at which
      the older part of the conversation is replaced by a summary, written by
      the cheapest model of the chain: checked before each call, against the
      tokens used so far plus the call's estimated input.
    - ``keep_turns``: the latest user turns kept word for word (with their
      tool calls and results) when compressing.
    - ``min_answer_tokens``: the smallest output a call may be left with;
      a call that cannot have that many ends the session instead.
    - ``summary_tokens``: the output cap of the summarising call.
    """

    max_tokens: int | None = 200_000
    compress_at: float = 0.8
    keep_turns: int = 2
    min_answer_tokens: int = 64
    summary_tokens: int = 512

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError("Budget.max_tokens must be at least 1 (or None for no budget)")
        if not 0.0 < self.compress_at <= 1.0:
            raise ConfigError("Budget.compress_at must be in (0, 1]; 1.0 turns compression off")
        if self.keep_turns < 1:
            raise ConfigError("Budget.keep_turns must be at least 1")
        if self.min_answer_tokens < 1 or self.summary_tokens < 16:
            raise ConfigError(
                "Budget.min_answer_tokens must be at least 1 and summary_tokens at least 16"
            )

    @property
    def compress_after(self) -> int | None:
        """Tokens used after which context is compressed (``None``: never)."""
        if self.max_tokens is None or self.compress_at >= 1.0:
            return None
        return int(self.max_tokens * self.compress_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class Quota:
    """Limits for one user (or one tenant). ``None`` leaves a limit off.

    - ``sessions_per_hour``: new sessions started in any 60-minute window
      (a moving window: no burst at the top of the hour).
    - ``tokens_per_day``: tokens spent by model calls in a day (a fixed
      window that starts with the first spend and lasts 24 hours). Each call
      reserves its estimate first and settles to the reported usage after.
    - ``concurrent_sessions``: sessions with a turn running at once.
    """

    sessions_per_hour: int | None = None
    tokens_per_day: int | None = None
    concurrent_sessions: int | None = None

    def __post_init__(self) -> None:
        for name in ("sessions_per_hour", "tokens_per_day", "concurrent_sessions"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ConfigError(f"Quota.{name} must be a positive integer or None, not {v!r}")

    @property
    def empty(self) -> bool:
        return (
            self.sessions_per_hour is None
            and self.tokens_per_day is None
            and self.concurrent_sessions is None
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """Per-user and per-tenant quotas. A request must pass both."""

    per_user: Quota = field(default_factory=Quota)
    per_tenant: Quota = field(default_factory=Quota)
    #: how long a concurrency slot outlives a process that died holding it (seconds)
    slot_ttl: float = 900.0

    def __post_init__(self) -> None:
        if self.slot_ttl <= 0:
            raise ConfigError("RateLimits.slot_ttl must be positive")
