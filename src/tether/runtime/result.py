"""What one turn ended with: :class:`TurnResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tether.runtime.approvals import PendingApproval
from tether.spec.events import Event
from tether.spec.messages import Usage

__all__ = ["TurnResult"]


@dataclass(slots=True)
class TurnResult:
    """What one turn ended with.

    ``status`` is the session's status after the turn (``idle`` when the
    agent answered); ``output`` the final answer, if any; ``error`` a
    message a person can act on when the turn failed; ``events`` every
    event of the turn, streamed ones included. ``stop_reason`` says why a
    turn that answered was cut short: ``max_tool_calls``,
    ``max_tool_calls_per_turn`` or ``loop`` (the answer is the summary the
    model gave without tools), or ``budget_exhausted`` (the session has
    ended; the answer is what was said so far and a notice). ``cost`` is
    what the turn spent in dollars: its model calls and its priced tool
    calls (a tool's ``cost``).
    """

    session_id: str
    status: str
    output: str | None
    usage: Usage
    events: list[Event] = field(default_factory=list)
    error: str | None = None
    #: the approval the session waits for (status ``awaiting_approval``)
    approval: PendingApproval | None = None
    stop_reason: str | None = None
    cost: float = 0.0
    #: the parsed final answer when the agent has an ``output_schema``
    data: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None
