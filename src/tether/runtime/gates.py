"""The gates a tool call passes before it runs: ordered, pure checks of one call.

Each gate reads the call, its tool and the session's state and returns a
:class:`Decision`: :data:`RUN` (go on to the next gate, and past the last
one, run it), :class:`Refuse` (do not run it; the model is told why) or
:class:`Pause` (stop the turn: a person must approve it, or the model asked
the user a question). Gates change nothing: the turn acts on the decision.

In order: the per-step cap, clarify, a call whose outcome is unknown after a
crash, the caller's scopes, the tool-call limits, the taint policy, and the
approval policy. A call a person already approved skips the limits, taint
and approval gates (they were applied when it was asked).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tether.runtime.approvals import CLARIFY, needs_approval
from tether.runtime.execute import outcome_unknown
from tether.runtime.spend import LimitHit, over_limit
from tether.runtime.state import SessionState
from tether.runtime.taint import taint_gate
from tether.spec.agent import Agent
from tether.spec.messages import ToolCall, ToolResult
from tether.spec.tools import Tool

__all__ = ["RUN", "CallCheck", "Decision", "Pause", "Refuse", "check_call"]


@dataclass(frozen=True, slots=True)
class _Run:
    pass


RUN = _Run()


@dataclass(frozen=True, slots=True)
class Refuse:
    """Do not run the call; ``result`` is what the model is told."""

    result: ToolResult
    #: the tool-call limit that refused it (the turn then wraps up)
    hit: LimitHit | None = None
    #: for an operator: why a person must check (an ``operator.alert``)
    alert: str | None = None
    #: the call started before a crash and may have run (a priced tool is charged for it)
    started: bool = False


@dataclass(frozen=True, slots=True)
class Pause:
    """Stop the turn: ``approval`` (a person decides) or ``clarify`` (the user answers)."""

    kind: Literal["approval", "clarify"]
    tainted: bool = False
    question: str = ""


Decision = _Run | Refuse | Pause


@dataclass(slots=True)
class CallCheck:
    """What the gates read about one call (one per call: not frozen, which costs more to build)."""

    call: ToolCall
    tool: Tool | None
    position: int
    agent: Agent
    state: SessionState
    #: the tools the caller's scopes allow (``None``: all)
    allowed: frozenset[str] | None


def _refused(call: ToolCall, text: str) -> ToolResult:
    return ToolResult(call.id, call.name, text, is_error=True)


def per_step_cap(c: CallCheck) -> Decision:
    cap = c.agent.limits.max_tool_calls_per_step
    if c.position < cap:
        return RUN
    return Refuse(
        _refused(
            c.call,
            f"not executed: at most {cap} tool calls are run per step; "
            "call the remaining tools one at a time",
        )
    )


def clarify(c: CallCheck) -> Decision:
    if c.tool is not None or c.call.name != CLARIFY or not c.agent.clarify:
        return RUN
    question = str(c.call.arguments.get("question") or "").strip()
    return Pause("clarify", question=question) if question else RUN


def unknown_outcome(c: CallCheck) -> Decision:
    tool = c.tool
    if tool is None or tool.idempotent or c.call.id not in c.state.started:
        return RUN
    return Refuse(
        outcome_unknown(c.call),
        alert="outcome unknown: it started but never reported a result",
        started=True,
    )


def scope(c: CallCheck) -> Decision:
    tool = c.tool
    if tool is None or c.allowed is None or c.call.name in c.allowed:
        return RUN
    need = ", ".join(sorted(tool.scopes))
    return Refuse(
        _refused(
            c.call,
            f"not executed: this user may not use {c.call.name} (it needs: {need}). "
            "Tell them it is not available to them.",
        )
    )


def limits(c: CallCheck) -> Decision:
    if c.tool is None or c.call.id in c.state.approved:
        return RUN
    hit = over_limit(c.state, c.agent.limits, c.call)
    if hit is None:
        return RUN
    return Refuse(_refused(c.call, f"not executed: {hit.to_model}"), hit=hit)


def taint(c: CallCheck) -> Decision:
    st = c.state
    if c.tool is None or not st.untrusted or c.call.id in st.approved:
        return RUN
    verdict = taint_gate(c.agent, c.tool, c.call.arguments, st)
    if verdict.action == "block":
        sources = ", ".join(sorted({u[0] for u in st.untrusted}))
        return Refuse(
            _refused(
                c.call,
                f"not executed: this conversation contains content from outside ({sources}), "
                f"and the policy does not allow {c.call.name} after that. Tell the user a "
                "person must do it.",
            )
        )
    if verdict.action == "approve":
        return Pause("approval", tainted=True)
    return RUN


def approval(c: CallCheck) -> Decision:
    if c.tool is None or c.call.id in c.state.approved:
        return RUN
    if needs_approval(c.agent, c.tool, c.call):
        return Pause("approval")
    return RUN


#: the gates, in the order they apply
GATES: tuple[Callable[[CallCheck], Decision], ...] = (
    per_step_cap,
    clarify,
    unknown_outcome,
    scope,
    limits,
    taint,
    approval,
)


def check_call(c: CallCheck) -> Decision:
    """The first gate's decision that is not :data:`RUN`, or :data:`RUN`."""
    for gate in GATES:
        decision = gate(c)
        if decision is not RUN:
            return decision
    return RUN
