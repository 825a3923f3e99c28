"""The injection guard's policy as plain data (on :class:`~tether.spec.agent.Agent`).

The detector and the function that applies this policy live in
:mod:`tether.controls.guards`; the policy is here so an agent can carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tether.exceptions import ConfigError

__all__ = ["GuardPolicy", "ToolAction", "UserAction"]

UserAction = Literal["block", "warn", "tag"]
ToolAction = Literal["quarantine", "tag"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardPolicy:
    """What happens to flagged content, per source.

    ``user``: ``block`` (default), ``warn`` or ``tag``. ``tool``:
    ``quarantine`` (default) or ``tag``. ``user_threshold`` and
    ``tool_threshold`` override the detector's thresholds when set.
    """

    user: UserAction = "block"
    tool: ToolAction = "quarantine"
    user_threshold: float | None = None
    tool_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.user not in ("block", "warn", "tag"):
            raise ConfigError(f"GuardPolicy.user must be block, warn or tag, not {self.user!r}")
        if self.tool not in ("quarantine", "tag"):
            raise ConfigError(f"GuardPolicy.tool must be quarantine or tag, not {self.tool!r}")
        for name in ("user_threshold", "tool_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ConfigError(f"GuardPolicy.{name} must be in (0, 1], got {value}")
