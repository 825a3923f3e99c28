"""What a turn does when a limit is reached: tool-call caps, loops, the token budget.

Pure helpers for :mod:`tether.runtime.turn`:

- :func:`over_limit` decides whether one more tool call may run: the
  session's ``Limits.max_tool_calls``, the turn's
  ``Limits.max_tool_calls_per_turn``, and loop detection (the same tool with
  the same arguments ``Limits.loop_threshold`` times in one turn). A call
  over a limit is not run; the turn then ends with one last model call
  without tools (:func:`wrap_up_request`) that summarises what is known.
- :func:`partial_answer` and :func:`exhausted_notice` make the clean ending
  of a session that has spent its token budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tether.runtime.compress import is_user_turn
from tether.runtime.state import SessionState, call_key
from tether.spec.agent import Limits
from tether.spec.budget import Budget
from tether.spec.messages import Message, ToolCall
from tether.spec.model import ModelRequest

__all__ = [
    "LimitHit",
    "OutOfBudget",
    "exhausted_notice",
    "over_limit",
    "partial_answer",
    "wrap_up_fallback",
    "wrap_up_request",
]


class OutOfBudget(Exception):
    """Internal: the next model call does not fit in the session's token budget."""


@dataclass(frozen=True, slots=True)
class LimitHit:
    """A tool-call limit that stopped a call: which, its size, and the count it would reach."""

    limit: str
    allowed: int
    count: int
    tool: str

    def to_dict(self) -> dict[str, object]:
        return {
            "limit": self.limit,
            "allowed": self.allowed,
            "count": self.count,
            "tool": self.tool,
        }

    @property
    def why(self) -> str:
        """For operators: the log line when a limit stops a turn."""
        if self.limit == "loop":
            return (
                f"{self.tool} was called with the same arguments {self.allowed} times in this "
                "turn; the agent is going in circles"
            )
        scope = "session" if self.limit == "max_tool_calls" else "turn"
        return f"this {scope} has made its {self.allowed} allowed tool calls"

    @property
    def to_model(self) -> str:
        """For the model (the refused call's result, the wrap-up note): facts, no verdict.

        (Small models copy a note's words into their answer; "the agent is
        going in circles" ended up in front of a customer.)
        """
        if self.limit == "loop":
            return (
                f"you asked for {self.tool} with the same arguments {self.allowed} times; "
                "another call would return the same result"
            )
        scope = "conversation" if self.limit == "max_tool_calls" else "turn"
        return f"this {scope} has used its {self.allowed} allowed tool calls"

    @property
    def to_user(self) -> str:
        """For the customer, when the wrap-up call itself gave no text."""
        if self.limit == "loop":
            return "I kept repeating the same lookup without getting further"
        return "I reached the number of lookups and actions I may make for one request"


def over_limit(state: SessionState, limits: Limits, call: ToolCall) -> LimitHit | None:
    """The limit running ``call`` would break, or ``None`` if it may run."""
    if state.tool_calls >= limits.max_tool_calls:
        return LimitHit("max_tool_calls", limits.max_tool_calls, state.tool_calls + 1, call.name)
    if state.turn_tool_calls >= limits.max_tool_calls_per_turn:
        return LimitHit(
            "max_tool_calls_per_turn",
            limits.max_tool_calls_per_turn,
            state.turn_tool_calls + 1,
            call.name,
        )
    # no call has run yet this turn: nothing to repeat (spares building the key)
    if not state.turn_call_keys:
        return None
    seen = state.turn_call_keys.get(call_key(call.name, call.arguments), 0)
    if seen + 1 >= limits.loop_threshold:
        return LimitHit("loop", limits.loop_threshold, seen + 1, call.name)
    return None


def wrap_up_request(request: ModelRequest, hit: LimitHit) -> ModelRequest:
    """``request`` turned into the last call of the turn: no tools, a summary asked for."""
    note = Message.user(
        f"[Tether runtime] No more tools can be used now: {hit.to_model}. Do not call any tool. "
        "Reply to the user in a few sentences: what you found out so far (with the exact "
        "facts the tools returned), what you could not finish, and what they can do next."
    )
    return replace(request, messages=(*request.messages, note), tool_choice="none")


def wrap_up_fallback(hit: LimitHit) -> str:
    """What the user reads if the wrap-up call itself produced no text."""
    return (
        f"I had to stop here: {hit.to_user}. I could not finish your request; please tell me "
        "what matters most and I will continue from there, or ask for a person to help."
    )


def _last_user(messages: list[Message]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if is_user_turn(m):
            return i
    return -1


def partial_answer(messages: list[Message]) -> str:
    """What the assistant said in the current turn, so far (may be empty)."""
    start = _last_user(messages) + 1
    texts = [m.text.strip() for m in messages[start:] if m.role == "assistant" and m.text.strip()]
    return "\n".join(texts)


def exhausted_notice(budget: Budget, used: int) -> str:
    return (
        f"This conversation has used its token budget ({used:,} of {budget.max_tokens or 0:,} "
        "tokens) and has ended here. Please start a new conversation to continue."
    )
