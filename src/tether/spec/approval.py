"""Which tool calls need a person's approval, and how an approval is bound to one exact call.

A call needs approval when its tool carries one of ``ApprovalPolicy.flags``
(by default ``irreversible``, ``high_stakes``, ``external_comms`` and
``critical``), when the tool says so (``@tool(needs_approval=True)``), or
when the agent's ``rule`` (a plain function of the tool and the arguments)
says so; ``@tool(needs_approval=False)`` exempts a tool from the flags.

An approval is bound to the session, the tool and :func:`arguments_hash` of
the exact arguments (canonical JSON, sorted keys): a call with other
arguments is another call and needs its own approval.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.exceptions import ConfigError

__all__ = ["DEFAULT_APPROVAL_FLAGS", "ApprovalPolicy", "arguments_hash"]

DEFAULT_APPROVAL_FLAGS = frozenset({"irreversible", "high_stakes", "external_comms", "critical"})

ApprovalRule = Callable[[str, Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalPolicy:
    """How an agent's risky calls are approved.

    - ``mode``: ``user`` (the person in the conversation decides: a
      structured approve/deny, or a strict yes/no reply in chat) or
      ``operator`` (only a principal with ``approver_role`` decides; the user
      is told the action awaits review).
    - ``expires_after``: seconds an approval request stays valid (15 minutes).
    - ``flags``: the risk flags that need approval.
    - ``rule``: ``rule(tool_name, arguments) -> bool``; true also requires
      approval (for example a refund above an amount).
    - ``enabled``: ``False`` turns approvals off (tests, batch jobs that have
      their own review).
    - ``taint``: once the session has read untrusted content (a tool marked
      ``untrusted_output``), calls to ``high_stakes``, ``irreversible``,
      ``external_comms`` or ``critical`` tools ``approve`` (need approval
      even when the flags or ``enabled=False`` would not ask), ``block``
      (are not run), or ``off``. See :mod:`tether.runtime.taint`.
    """

    mode: str = "user"
    expires_after: float = 900.0
    flags: frozenset[str] = DEFAULT_APPROVAL_FLAGS
    rule: ApprovalRule | None = None
    approver_role: str = "approver"
    enabled: bool = True
    taint: str = "approve"

    def __post_init__(self) -> None:
        if self.mode not in ("user", "operator"):
            raise ConfigError(
                f"ApprovalPolicy.mode must be 'user' or 'operator', not {self.mode!r}"
            )
        if self.taint not in ("approve", "block", "off"):
            raise ConfigError(
                f"ApprovalPolicy.taint must be 'approve', 'block' or 'off', not {self.taint!r}"
            )
        if self.expires_after <= 0:
            raise ConfigError("ApprovalPolicy.expires_after must be positive (seconds)")


def arguments_hash(tool: str, arguments: Mapping[str, Any]) -> str:
    """SHA-256 of the tool name and its arguments as canonical JSON (hex)."""
    canonical = json.dumps(
        {"tool": tool, "arguments": arguments},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
