"""Session state as a fold over the session's stored events.

The log is the truth; :class:`SessionState` is what the step machine needs
to continue: the conversation, the session vars tools have set, the tool
calls still waiting for a result, the step counter and usage. Building it
from the log (``SessionState.from_events``) is what makes any process able
to resume any session.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tether.runtime.compress import apply_compression
from tether.spec.events import (
    ApprovalDecidedData,
    ApprovalRequestedData,
    Event,
    EventType,
    ModelResponseData,
    SessionCreatedData,
    SessionStatus,
    SessionStatusData,
    ToolFinishedData,
    ToolStartedData,
)
from tether.spec.messages import Message, ToolCall, ToolResult, Usage
from tether.spec.principal import ANYONE, Principal

__all__ = ["SessionState", "call_key"]


def call_key(name: str, arguments: dict[str, Any]) -> str:
    """One tool call's identity for loop detection: its name and its arguments, key order aside.

    ``repr`` of the sorted items: the same for equal argument values (a
    value read back from the stored JSON has the same repr), and several
    times cheaper than canonical JSON on the step path.
    """
    return f"{name}{sorted(arguments.items())!r}"


@dataclass(slots=True)
class SessionState:
    """Everything needed to take the next step of a session."""

    session_id: str
    agent: str = ""
    agent_version: str = ""
    user_id: str | None = None
    tenant_id: str | None = None
    #: who created the session (what decide and resume act with)
    principal: Principal = ANYONE
    status: str = SessionStatus.IDLE
    step: int = 0
    event_count: int = 0
    messages: list[Message] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    last_error: str | None = None
    #: tool calls of the last assistant message that have no result yet
    open_calls: dict[str, ToolCall] = field(default_factory=dict)
    #: calls whose execution was recorded as started (``tool.started``)
    started: set[str] = field(default_factory=set)
    #: results gathered for the last assistant message, by call id
    partial_results: dict[str, ToolResult] = field(default_factory=dict)
    last_output: str | None = None
    #: the ``approval.requested`` data of the request waiting for a decision
    pending_approval: dict[str, Any] | None = None
    #: open calls a person approved (each approval is for that one call)
    approved: set[str] = field(default_factory=set)
    #: approval ids already settled, and how ("approved by ops", "expired")
    decided: dict[str, str] = field(default_factory=dict)
    #: dollars spent: model calls (their ``cost``) and priced tool calls together
    cost: float = 0.0
    #: the part of ``cost`` spent by tool calls (``cost - tool_cost``: the tokens')
    tool_cost: float = 0.0
    #: tool calls run in the session, and in the current turn
    tool_calls: int = 0
    turn_tool_calls: int = 0
    #: how often each (tool, arguments) ran in the current turn (loop detection)
    turn_call_keys: dict[str, int] = field(default_factory=dict)
    #: context variables the caller passed (``Runtime.run(context=...)``)
    context: dict[str, Any] = field(default_factory=dict)
    #: the context as the model's data block, built once per change (see Turn._request)
    context_message: Message | None = field(default=None, compare=False, repr=False)
    #: (tool, content, position) of every untrusted result or error read in the
    #: session (taint); position: the index its tool message has in ``messages``
    untrusted: list[tuple[str, str, int]] = field(default_factory=list)
    #: ids of the calls whose results or errors were untrusted (spotlighted by call,
    #: for tools not declared untrusted whose output the detector flagged)
    untrusted_calls: set[str] = field(default_factory=set)
    #: the user's own words from messages a context compression replaced (they stay
    #: trusted provenance: a value the user typed is still the user's)
    compressed_user_text: list[str] = field(default_factory=list)

    @classmethod
    def from_events(cls, session_id: str, events: Iterable[Event]) -> SessionState:
        state = cls(session_id=session_id)
        for ev in events:
            state.apply(ev)
        return state

    def apply(self, ev: Event, message: Message | None = None) -> None:
        """Fold one event into the state (stored events only).

        ``message`` may pass the already-built :class:`Message` of a
        ``model.response`` event, sparing the parse of ``ev.data``.
        """
        t = ev.type
        # Typed views of ``data`` (TypedDicts): annotations only, nothing runs.
        data: Any = ev.data
        if ev.seq:
            self.event_count = ev.seq
        if ev.step > self.step:
            self.step = ev.step
        if ev.usage is not None:
            self.usage = self.usage + ev.usage
        if t == EventType.MODEL_RESPONSE:
            resp: ModelResponseData = data
            cost = resp.get("cost")
            if cost:
                self.cost += cost
            msg = message if message is not None else Message.from_dict(resp["message"])
            self.messages.append(msg)
            self.open_calls = {c.id: c for c in msg.tool_calls}
            self.partial_results = {}
            self.started = set()
            self.approved = set()
        elif t == EventType.TOOL_STARTED:
            started: ToolStartedData = data
            self.started.add(started["call_id"])
            self.tool_calls += 1
            self.turn_tool_calls += 1
            key = call_key(started["name"], started.get("arguments") or {})
            self.turn_call_keys[key] = self.turn_call_keys.get(key, 0) + 1
        elif t == EventType.TOOL_FINISHED:
            done: ToolFinishedData = data
            position = len(self.messages)  # where this step's tool message goes
            self.record_result(
                ToolResult(
                    call_id=done["call_id"],
                    name=done["name"],
                    content=done["content"],
                    is_error=bool(done.get("is_error", False)),
                )
            )
            new_vars = done.get("vars")
            if new_vars:
                self.vars.update(new_vars)
            if done.get("untrusted"):
                self.untrusted.append((done["name"], done.get("raw", done["content"]), position))
                self.untrusted_calls.add(done["call_id"])
            tool_cost = done.get("cost")
            if tool_cost:
                self.cost += tool_cost
                self.tool_cost += tool_cost
        elif t == EventType.USER_MESSAGE:
            self.messages.append(Message(role="user", text=data["text"]))
            self.status = SessionStatus.RUNNING
            self.last_error = None
            self.turn_tool_calls = 0
            self.turn_call_keys = {}
        elif t == EventType.TURN_COMPLETED:
            self.last_output = data.get("output")
            self.status = SessionStatus.IDLE
        elif t == EventType.SESSION_STATUS:
            change: SessionStatusData = data
            self.status = change["status"]
            if self.status == SessionStatus.FAILED:
                self.last_error = change.get("reason")
            elif self.status == SessionStatus.RUNNING:
                self.last_error = None
        elif t == EventType.APPROVAL_REQUESTED:
            requested: ApprovalRequestedData = data
            self.pending_approval = dict(requested)
        elif t == EventType.APPROVAL_DECIDED:
            decided: ApprovalDecidedData = data
            if decided.get("approved") and self.pending_approval is not None:
                self.approved.add(self.pending_approval["call_id"])
            verdict = "approved" if decided.get("approved") else "denied"
            self.decided[decided["approval_id"]] = f"{verdict} by {decided.get('by')}"
            self.pending_approval = None
        elif t == EventType.APPROVAL_EXPIRED:
            self.decided[data["approval_id"]] = "expired"
            self.pending_approval = None
        elif t == EventType.SESSION_CREATED:
            created: SessionCreatedData = data
            self.agent = created["agent"]
            self.agent_version = created["version"]
            self.user_id = created.get("user_id")
            self.tenant_id = created.get("tenant_id")
            p = created.get("principal")
            self.principal = (
                Principal.from_dict(p)
                if p is not None
                else Principal(user=self.user_id, tenant=self.tenant_id)
            )
        elif t == EventType.CONTEXT_SET:
            self.context.update(data["values"])
            self.context_message = None
        elif t == EventType.OUTPUT_REASK:
            self.messages.append(
                Message(role="user", text=data["text"], metadata={"runtime": True})
            )
        elif t == EventType.CONTEXT_COMPRESSED:
            cut = int(data["upto"])  # messages[:cut] become one summary message
            self.compressed_user_text.extend(
                m.text
                for m in self.messages[:cut]
                if m.role == "user" and not (m.metadata.get("runtime") or m.metadata.get("summary"))
            )
            self.messages = apply_compression(self.messages, data)
            self.untrusted = [(n, c, max(0, p - cut + 1)) for n, c, p in self.untrusted]
            self.cost += data.get("cost") or 0.0

    def record_result(self, result: ToolResult) -> None:
        """Add one tool result; once every open call has one, close the tool message."""
        if result.call_id not in self.open_calls:
            return
        self.partial_results[result.call_id] = result
        self.started.discard(result.call_id)
        if len(self.partial_results) == len(self.open_calls):
            ordered = tuple(self.partial_results[cid] for cid in self.open_calls)
            self.messages.append(Message(role="tool", results=ordered))
            self.open_calls = {}
            self.partial_results = {}
            self.started = set()

    def unanswered_calls(self) -> list[ToolCall]:
        """Open calls of the last assistant message still lacking a result, in order."""
        return [c for cid, c in self.open_calls.items() if cid not in self.partial_results]
