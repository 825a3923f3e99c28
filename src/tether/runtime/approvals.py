"""Approvals: which calls stop for a person, what they are shown, and how a chat reply is read.

The built-in ``clarify`` tool (:data:`CLARIFY_SPEC`, offered to the model
unless ``Agent(clarify=False)`` or the agent has its own tool of that name)
lets the model ask the user a question; the session waits in
``awaiting_user`` and the user's next message is the call's result.

The step machine (:mod:`tether.runtime.runtime`) calls these: a call that
:func:`needs_approval` is not run; the runtime stores an
``approval.requested`` event carrying :func:`summarize`'s plain-language
summary (built from the tool's template and the real arguments, never from
the model's words), the hash of the exact arguments and an expiry, and the
session waits in ``awaiting_approval``. A decision arrives through
:meth:`Runtime.decide` (structured: the CLI, an API) or, in ``user`` mode,
as a chat reply that :func:`parse_reply` reads strictly: yes or no, nothing
else.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from tether.spec.agent import Agent
from tether.spec.messages import ToolCall
from tether.spec.model import ToolSpec
from tether.spec.tools import Tool

__all__ = [
    "CLARIFY",
    "CLARIFY_SPEC",
    "PendingApproval",
    "needs_approval",
    "parse_reply",
    "summarize",
]

logger = logging.getLogger("tether.approvals")

#: the built-in tool the model calls to ask the user a question
CLARIFY = "clarify"
CLARIFY_SPEC = ToolSpec(
    CLARIFY,
    "Ask the user a question when you are not sure what they want (for example "
    '"cancel the order, not change it - right?"). The conversation waits for their '
    "answer, which comes back as this tool's result. Ask one short question.",
    {
        "type": "object",
        "properties": {"question": {"type": "string", "description": "The question for the user."}},
        "required": ["question"],
        "additionalProperties": False,
    },
)

_YES = re.compile(r"^\s*(?:yes|y|yes please|approve|approved|confirm|confirmed)\s*[.!]?\s*$", re.I)
# Not "cancel": asked to confirm "cancel order #W1", "cancel" would mean yes.
_NO = re.compile(r"^\s*(?:no|n|no thanks|deny|denied|decline|stop|don't)\s*[.!]?\s*$", re.I)


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """An approval request waiting for a decision (as the caller sees it)."""

    id: str
    session_id: str
    call_id: str
    tool: str
    arguments: dict[str, Any]
    summary: str
    explanation: str
    mode: str
    expires_at: float

    @classmethod
    def from_event(cls, session_id: str, data: dict[str, Any]) -> PendingApproval:
        return cls(
            id=data["approval_id"],
            session_id=session_id,
            call_id=data["call_id"],
            tool=data["tool"],
            arguments=dict(data.get("arguments") or {}),
            summary=data["summary"],
            explanation=data.get("explanation", ""),
            mode=data.get("mode", "user"),
            expires_at=float(data["expires_at"]),
        )

    def question(self) -> str:
        """What the user is asked (``user`` mode) or told (``operator`` mode)."""
        if self.mode == "operator":
            return f"This action is waiting for review by an operator: {self.summary}"
        return f"Please confirm: {self.summary}. Reply yes or no."


def needs_approval(agent: Agent, tool: Tool, call: ToolCall) -> bool:
    """Whether ``call`` must wait for a person's decision before it runs."""
    policy = agent.approval
    if not policy.enabled:
        return False
    if tool.needs_approval is not None:
        flagged = tool.needs_approval
    else:
        flagged = any(getattr(tool.risk, flag, False) for flag in policy.flags)
    if flagged:
        return True
    if policy.rule is None:
        return False
    try:
        return bool(policy.rule(tool.name, call.arguments))
    except Exception:
        # A rule that cannot decide must not let the call through unasked.
        logger.exception("approval rule failed on %s; asking for approval", tool.name)
        return True


def summarize(tool: Tool, call: ToolCall) -> str:
    """The action in plain words, from the tool's template and the real arguments."""
    if tool.summary:
        try:
            return tool.summary.format(**call.arguments)
        except Exception:
            pass  # say it plainly instead: the person must still see the real arguments
    args = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
    return f"run {tool.name}({args})"


def parse_reply(text: str) -> bool | None:
    """``True`` for a clear yes, ``False`` for a clear no, ``None`` for anything else."""
    if _YES.match(text):
        return True
    if _NO.match(text):
        return False
    return None
