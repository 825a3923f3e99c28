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

__all__ = ["DEFAULT_APPROVAL_FLAGS", "DEFAULT_TAINT_FLAGS", "ApprovalPolicy", "arguments_hash"]

DEFAULT_APPROVAL_FLAGS = frozenset({"irreversible", "high_stakes", "external_comms", "critical"})
#: the risk flags whose calls taint gates by default (add ``writes`` to cover plain writes)
DEFAULT_TAINT_FLAGS = DEFAULT_APPROVAL_FLAGS
_RISK_FLAGS = frozenset(
    {"reads", "writes", "irreversible", "high_stakes", "external_comms", "critical", "egress"}
)

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
    - ``taint_flags``: the risk flags ``taint`` covers (add ``"writes"`` to
      gate plain writes too); a tool's own ``taint=`` overrides both.
    - ``taint_scope``: ``session`` (once tainted, every covered call is
      gated) or ``arguments`` (a covered call is gated only when one of its
      argument values is not traced to the user, the caller's context or a
      trusted tool: values copied from untrusted content, and text the model
      composed, are not traced). ``arguments`` asks far less often; the
      approval flags still apply as without taint.
    - ``taint_egress``: after untrusted content, a call to an ``egress`` tool
      (its arguments leave the system) needs approval ``always``, only when
      an argument carries a value ``planted`` by that content (the default),
      or never (``off``).
    """

    mode: str = "user"
    expires_after: float = 900.0
    flags: frozenset[str] = DEFAULT_APPROVAL_FLAGS
    rule: ApprovalRule | None = None
    approver_role: str = "approver"
    enabled: bool = True
    taint: str = "approve"
    taint_flags: frozenset[str] = DEFAULT_TAINT_FLAGS
    taint_scope: str = "session"
    taint_egress: str = "planted"

    def __post_init__(self) -> None:
        object.__setattr__(self, "taint_flags", frozenset(self.taint_flags))
        if self.mode not in ("user", "operator"):
            raise ConfigError(
                f"ApprovalPolicy.mode must be 'user' or 'operator', not {self.mode!r}"
            )
        if self.taint not in ("approve", "block", "off"):
            raise ConfigError(
                f"ApprovalPolicy.taint must be 'approve', 'block' or 'off', not {self.taint!r}"
            )
        if self.taint_scope not in ("session", "arguments"):
            raise ConfigError(
                "ApprovalPolicy.taint_scope must be 'session' or 'arguments', "
                f"not {self.taint_scope!r}"
            )
        if self.taint_egress not in ("always", "planted", "off"):
            raise ConfigError(
                "ApprovalPolicy.taint_egress must be 'always', 'planted' or 'off', "
                f"not {self.taint_egress!r}"
            )
        unknown = sorted(set(self.taint_flags) - _RISK_FLAGS)
        if unknown:
            raise ConfigError(
                f"ApprovalPolicy.taint_flags: unknown risk flag(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(_RISK_FLAGS))}"
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
