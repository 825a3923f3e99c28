"""The injection guard's policy as plain data (on :class:`~tether.spec.agent.Agent`).

The detector and the function that applies this policy live in
:mod:`tether.controls.guards`; the policy is here so an agent can carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tether.exceptions import ConfigError

__all__ = ["GuardPolicy", "JudgeMode", "ToolAction", "UserAction"]

UserAction = Literal["block", "warn", "tag"]
ToolAction = Literal["quarantine", "tag"]
JudgeMode = Literal["off", "tool"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardPolicy:
    """What happens to flagged content, per source.

    ``user``: ``block`` (default), ``warn`` or ``tag``. ``tool``:
    ``quarantine`` (default) or ``tag``. ``user_threshold`` and
    ``tool_threshold`` override the detector's thresholds when set.

    ``judge``: ``off`` (default) or ``tool``: untrusted tool output that the
    rules let through is also shown to a model (the cheapest of the agent's
    chain), which answers whether it holds instructions aimed at an AI
    assistant (:mod:`tether.controls.guards.judge`); a yes is treated like a
    flag. It costs one extra model call per such tool result: by the
    runtime's estimate, 342 input tokens plus one per 3 characters shown.
    ``judge_timeout`` (seconds, default 10) bounds that call; a timeout, an
    error or an unclear answer lets the content through as the rules
    decided. ``judge_max_chars`` (default 4000) is how much of the content
    the model sees: the first and last halves of a longer text.
    """

    user: UserAction = "block"
    tool: ToolAction = "quarantine"
    user_threshold: float | None = None
    tool_threshold: float | None = None
    judge: JudgeMode = "off"
    judge_timeout: float = 10.0
    judge_max_chars: int = 4000

    def __post_init__(self) -> None:
        if self.user not in ("block", "warn", "tag"):
            raise ConfigError(f"GuardPolicy.user must be block, warn or tag, not {self.user!r}")
        if self.tool not in ("quarantine", "tag"):
            raise ConfigError(f"GuardPolicy.tool must be quarantine or tag, not {self.tool!r}")
        for name in ("user_threshold", "tool_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ConfigError(f"GuardPolicy.{name} must be in (0, 1], got {value}")
        if self.judge not in ("off", "tool"):
            raise ConfigError(
                f"GuardPolicy.judge must be off or tool, not {self.judge!r}: 'tool' asks a model "
                "about untrusted tool output the rules let through"
            )
        timeout = self.judge_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigError(
                f"GuardPolicy.judge_timeout must be a positive number of seconds, got {timeout!r}"
            )
        chars = self.judge_max_chars
        if isinstance(chars, bool) or not isinstance(chars, int) or chars < 200:
            raise ConfigError(
                f"GuardPolicy.judge_max_chars must be a whole number >= 200, got {chars!r}"
            )
