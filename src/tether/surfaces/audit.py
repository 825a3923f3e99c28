"""What an agent can do, and what it can do with nobody approving: ``tether audit``.

For each tool: its risk flags, the scopes a caller needs, whether its output
is untrusted, and when a call waits for a person (``always``, ``after
untrusted content`` — the session taint —, or ``never``). Then the one line a
reviewer wants: the worst thing the agent can do without any human
approving it, in a session that has read nothing untrusted (the taint only
adds approvals).

:func:`audit_agent` reads the agent as declared, offline. An agent with
tool sources (MCP servers) is audited with :func:`audit_live`: it opens each
source (:func:`~tether.surfaces.toolsources.open_sources`, bounded), audits
its tools like the agent's own, each row also naming its ``server``, its
pin ``hash`` (:func:`~tether.runtime.pins.definition_hash`) and, when pins
are given, its ``pin`` state as the runtime would see it on the next turn
(:func:`~tether.runtime.pins.review`). A source that cannot be opened is a
warning, and its tools are missing from the worst unapproved act.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.runtime.approvals import needs_approval
from tether.runtime.pins import PinState, ToolPin, ToolPins, review
from tether.runtime.taint import tainted_action
from tether.spec.agent import Agent
from tether.spec.messages import ToolCall
from tether.spec.tools import Tool
from tether.surfaces.toolsources import OPEN_TIMEOUT, Listed, open_sources

__all__ = ["AgentAudit", "ServerAudit", "ToolAudit", "audit_agent", "audit_live"]

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
    #: the tool source (MCP server) it comes from; ``None``: declared in code
    server: str | None = None
    #: its pin hash (a source's tool that gives its definition)
    hash: str | None = None
    #: what the pins say of it (``accepted``, ``quarantined (changed)``...); ``None``: not read
    pin: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "flags": self.flags,
            "scopes": self.scopes,
            "untrusted_output": self.untrusted_output,
            "approval": self.approval,
            "idempotent": self.idempotent,
            "summary_template": self.summary_template,
        }
        if self.server is not None:
            d.update(server=self.server, hash=self.hash, pin=self.pin)
        return d


@dataclass(slots=True)
class ServerAudit:
    """One tool source: how many tools it listed, or why it could not be opened."""

    name: str
    tools: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tools": self.tools, "error": self.error}


@dataclass(slots=True)
class AgentAudit:
    agent: str
    version: str
    tools: list[ToolAudit] = field(default_factory=list)
    worst_unapproved: str = ""
    warnings: list[str] = field(default_factory=list)
    #: the agent's tool sources, when they were opened (:func:`audit_live`)
    servers: list[ServerAudit] = field(default_factory=list)
    #: where pins were read from (``None``: not read)
    pins_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "agent": self.agent,
            "version": self.version,
            "tools": [t.to_dict() for t in self.tools],
            "worst_without_approval": self.worst_unapproved,
            "warnings": self.warnings,
        }
        if self.servers:
            d["servers"] = [s.to_dict() for s in self.servers]
            d["pins_from"] = self.pins_from
        return d


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


def audit_agent(
    agent: Agent,
    listed: Sequence[Listed] = (),
    pins: Sequence[ToolPin] | None = None,
) -> AgentAudit:
    """The audit of ``agent`` (an approval ``rule`` is probed with empty arguments).

    ``listed``: its tool sources as opened (:func:`audit_live` does that);
    without them only the tools declared in code are audited. ``pins``: the
    pins of the agent's version, to say of each source's tool whether it is
    accepted or quarantined (``None``: not read).
    """
    out = AgentAudit(agent.name, agent.version)
    sourced: list[tuple[Tool, Listed | None]] = [(t, None) for t in agent.tools]
    for entry in listed:
        out.servers.append(ServerAudit(entry.name, len(entry.tools), entry.error))
        sourced.extend((t, entry) for t in entry.tools)
    states = _pin_states(agent, listed, pins)
    for tool, origin in sourced:
        out.tools.append(
            ToolAudit(
                name=tool.name,
                flags=list(tool.risk.names()),
                scopes=sorted(tool.scopes),
                untrusted_output=tool.untrusted_output,
                approval=_approval(agent, tool),
                idempotent=tool.idempotent,
                summary_template=tool.summary is not None,
                server=None if origin is None else origin.name,
                hash=None if origin is None else origin.hash_of(tool.name),
                pin=None if origin is None else states.get((origin.name, tool.name)),
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
        worst = [
            f"only run tools with no risk flags ({', '.join(plain)})" if plain else "do nothing"
        ]
    out.worst_unapproved = "Without anyone approving, it can " + worst[0]
    missing = [s.name for s in out.servers if s.error is not None]
    if missing:
        out.worst_unapproved += (
            f" (not counting the tools of {', '.join(missing)}, which could not be reached)"
        )
    for server in out.servers:
        if server.error is not None:
            out.warnings.append(
                f"MCP server {server.name} could not be reached, so its tools are not audited "
                f"(and at run time the agent's turns fail until it is): {server.error}"
            )
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
    for tool, _ in sourced:
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


def _pin_states(
    agent: Agent, listed: Sequence[Listed], pins: Sequence[ToolPin] | None
) -> dict[tuple[str, str], str]:
    """What the pins say of each source's tool on the next turn, by (server, tool).

    The runtime's own decision (:func:`~tether.runtime.pins.review`), made
    without recording anything and without the injection detector (which
    the audit does not have).
    """
    if pins is None:
        return {}
    by_server: dict[str, dict[str, ToolPin]] = {}
    for pin in pins:
        by_server.setdefault(pin.server, {})[pin.tool] = pin
    states: dict[tuple[str, str], str] = {}
    for entry in listed:
        if not entry.definitions:
            continue
        pinned = by_server.get(entry.name, {})
        r = review(
            agent.name,
            agent.version,
            entry.name,
            entry.definitions,
            pinned,
            flagged=lambda _text: False,
            now=0.0,
        )
        upcoming = {q.tool: q.reason for q in r.quarantined}
        for name in entry.definitions:
            held = pinned.get(name)
            if name in r.visible:
                state = "accepted" if pinned else "not pinned yet: accepted on first use"
            elif name in upcoming:
                state = f"quarantined on the next turn ({upcoming[name]})"
            elif held is not None and held.state == PinState.QUARANTINED:
                state = f"quarantined ({held.reason})"
            else:  # pragma: no cover - review hides a tool only for one of the above
                state = "hidden"
            states[(entry.name, name)] = state
    return states


async def audit_live(
    agent: Agent, *, pins: ToolPins | None = None, open_timeout: float = OPEN_TIMEOUT
) -> AgentAudit:
    """The audit of ``agent`` with its tool sources opened (each within ``open_timeout`` s).

    ``pins``: where the agent's pins are kept, to tell accepted tools from
    quarantined ones. Without tool sources this is :func:`audit_agent`,
    opening nothing.
    """
    if not agent.toolsets:
        return audit_agent(agent)
    async with open_sources(agent, open_timeout=open_timeout) as listed:
        pinned = None if pins is None else await pins.pins(agent.name, agent.version)
        return audit_agent(agent, listed, pinned)
