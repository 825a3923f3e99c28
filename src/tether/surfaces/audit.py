"""What an agent can do, and what it can do with nobody approving: ``tether audit``.

For each tool: its risk flags, the scopes a caller needs, whether its output
is untrusted, and when a call waits for a person (``always``, ``after
untrusted content`` — the session taint —, or ``never``). Then the one line a
reviewer wants: the worst thing the agent can do without any human
approving it, in a session that has read nothing untrusted (the taint only
adds approvals).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import typing
from dataclasses import dataclass, field
from typing import Any

from tether.runtime.approvals import needs_approval
from tether.runtime.taint import tainted_action
from tether.spec.agent import Agent
from tether.spec.messages import ToolCall
from tether.spec.tools import Tool

__all__ = ["AgentAudit", "ToolAudit", "audit_agent"]

# worst first: what a tool flagged so can do
_SEVERITY = (
    ("critical", "take a critical action"),
    ("high_stakes", "take a high-stakes action"),
    ("irreversible", "make a change that cannot be undone"),
    ("external_comms", "send something outside"),
    ("writes", "change data"),
    ("reads", "read data"),
)


@dataclass(slots=True)
class ToolAudit:
    name: str
    flags: list[str]
    scopes: list[str]
    untrusted_output: bool
    approval: str  # always | after untrusted content | never
    idempotent: bool
    summary_template: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "flags": self.flags,
            "scopes": self.scopes,
            "untrusted_output": self.untrusted_output,
            "approval": self.approval,
            "idempotent": self.idempotent,
            "summary_template": self.summary_template,
        }


@dataclass(slots=True)
class AgentAudit:
    agent: str
    version: str
    tools: list[ToolAudit] = field(default_factory=list)
    worst_unapproved: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "version": self.version,
            "tools": [t.to_dict() for t in self.tools],
            "worst_without_approval": self.worst_unapproved,
            "warnings": self.warnings,
        }


def _approval(agent: Agent, tool: Tool) -> str:
    probe = ToolCall("audit", tool.name, {})
    if agent.approval.enabled and needs_approval(agent, tool, probe):
        return "always"
    action = tainted_action(agent, tool)
    if action == "approve":
        if agent.approval.taint_scope == "arguments":
            return "after untrusted content, for arguments not from the user"
        return "after untrusted content"
    if action == "block":
        return "blocked after untrusted content"
    if tool.risk.egress and agent.approval.taint_egress == "always":
        return "after untrusted content"
    if tool.risk.egress and agent.approval.taint_egress == "planted":
        return "after untrusted content, when it carries planted values"
    return "never"


_NOT_TEXT: tuple[type, ...] = (
    int,
    float,
    bool,
    type(None),
    decimal.Decimal,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    enum.Enum,
)


def _free_text(annotation: Any) -> bool:
    """Whether a return annotation may carry free text (``str``, ``Any``, unannotated...)."""
    if annotation is None or annotation is type(None):
        return False
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return False
    if origin is not None:
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return any(_free_text(a) for a in args) if args else True
    if isinstance(annotation, type):
        if issubclass(annotation, _NOT_TEXT) and not issubclass(annotation, str):
            return False
        hints = getattr(annotation, "__annotations__", None)
        if hints and not issubclass(annotation, str):  # a dataclass, TypedDict, pydantic model
            try:
                resolved = typing.get_type_hints(annotation)
            except Exception:
                return True
            return any(_free_text(h) for h in resolved.values())
    return True


def returns_free_text(tool: Tool) -> bool:
    """Whether ``tool``'s function may return text someone else wrote (by its annotation)."""
    try:
        hints = typing.get_type_hints(tool.fn)
    except Exception:
        return True
    return "return" not in hints or _free_text(hints["return"])


def audit_agent(agent: Agent) -> AgentAudit:
    """The audit of ``agent`` (an approval ``rule`` is probed with empty arguments)."""
    out = AgentAudit(agent.name, agent.version)
    for tool in agent.tools:
        out.tools.append(
            ToolAudit(
                name=tool.name,
                flags=list(tool.risk.names()),
                scopes=sorted(tool.scopes),
                untrusted_output=tool.untrusted_output,
                approval=_approval(agent, tool),
                idempotent=tool.idempotent,
                summary_template=tool.summary is not None,
            )
        )
    free = [t for t in out.tools if t.approval != "always"]
    worst: list[str] = []
    for flag, words in _SEVERITY:
        names = [t.name for t in free if flag in t.flags]
        if names:
            worst.append(f"{words} ({', '.join(names)})")
            if flag != "reads":
                break
    if not worst:
        plain = [t.name for t in free]
        worst = [f"only run tools with no risk flags ({', '.join(plain)})" if plain else "nothing"]
    out.worst_unapproved = "Without anyone approving, it can " + worst[0]
    for t in out.tools:
        if t.approval == "always" and not t.summary_template:
            out.warnings.append(
                f"{t.name} waits for approval but has no summary template: the person approving "
                "reads the raw call; give it @tool(summary=...)"
            )
        if t.untrusted_output:
            out.warnings.append(
                f"{t.name} returns untrusted content: after it, risky calls need approval "
                f"(taint: {agent.approval.taint})"
            )
    for tool in agent.tools:
        if tool.risk.reads and not tool.trust_declared and returns_free_text(tool):
            out.warnings.append(
                f"{tool.name} reads data and may return free text, but does not say whether "
                "anyone outside could have written it: if so (emails, web pages, reviews, "
                "tickets), mark it @tool(untrusted_output=True) (and trusted_fields=... for "
                "the fields your application wrote); if all of it is yours, say "
                "untrusted_output=False"
            )
    if not agent.approval.enabled:
        out.warnings.append("approvals are turned off (ApprovalPolicy(enabled=False))")
    return out
