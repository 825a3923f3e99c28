"""The server's request and response bodies (pydantic at the edge).

Requests reject unknown fields (a typo is a 422, never silently ignored)
and bound every string and collection. Responses are what the OpenAPI
schema publishes; ``tether.client`` reads them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AgentOut",
    "AgentsOut",
    "AnswerIn",
    "ApprovalOut",
    "ApprovalsOut",
    "DecisionIn",
    "EventOut",
    "EventsOut",
    "HealthOut",
    "MessageIn",
    "MessageOut",
    "Problem",
    "QuestionOut",
    "ReadyOut",
    "SessionIn",
    "SessionOut",
    "SessionSummary",
    "SessionsOut",
    "TurnOut",
    "UsageOut",
]

#: longest message a request may carry (the agent's own ``max_input_chars`` applies too)
MAX_MESSAGE_CHARS = 100_000
_ID = Field(min_length=1, max_length=255)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    # a client built against an older server ignores fields added later
    model_config = ConfigDict(extra="ignore")


class Problem(_Out):
    """An error, as RFC 9457 problem details: no stack trace, a sentence a person can act on."""

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int
    detail: str
    #: extra facts some problems carry (``retry_after`` seconds, ``checks``)
    extra: dict[str, Any] | None = None


class SessionIn(_In):
    """Create a session."""

    agent: str = Field(min_length=1, max_length=255, description="an agent this server serves")
    version: str | None = Field(
        default=None, min_length=1, max_length=255, description="must match the served version"
    )
    context: dict[str, Any] | None = Field(
        default=None, description="application data shown to the model as a data block"
    )
    session_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="the new session's id (default: generated)",
    )


class MessageIn(_In):
    """A user message: runs a turn."""

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    context: dict[str, Any] | None = None


class AnswerIn(_In):
    """The user's answer to the question the agent asked (``awaiting_user``)."""

    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class DecisionIn(_In):
    """Approve or deny the call a session waits on."""

    approve: bool
    reason: str | None = Field(default=None, max_length=2000)


class UsageOut(_Out):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class ApprovalOut(_Out):
    """An action waiting for a person: what it does, every argument, and any warning."""

    id: str
    session_id: str
    tool: str
    call_id: str
    summary: str
    question: str
    explanation: str
    mode: str
    arguments: dict[str, Any]
    expires_at: float
    warning: str = ""
    flagged: list[dict[str, Any]] = Field(default_factory=list)
    tainted: list[str] = Field(default_factory=list)
    user: str | None = None
    tenant: str | None = None
    agent: str | None = None


class QuestionOut(_Out):
    """The question the agent asked the user (the session waits in ``awaiting_user``)."""

    call_id: str
    question: str


class MessageOut(_Out):
    role: Literal["user", "assistant", "tool"]
    text: str
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tool: str | None = None


class SessionSummary(_Out):
    id: str
    agent: str
    version: str
    status: str
    user: str | None
    tenant: str | None
    created_at: float
    updated_at: float
    step: int
    cost: float
    last_error: str | None = None


class SessionOut(SessionSummary):
    usage: UsageOut
    last_seq: int
    messages: list[MessageOut] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)
    pending_approval: ApprovalOut | None = None
    question: QuestionOut | None = None


class SessionsOut(_Out):
    items: list[SessionSummary]
    next_cursor: str | None = None


class EventOut(_Out):
    """One event of the session's log (``seq`` 0: a streamed-only text delta)."""

    seq: int
    type: str
    session_id: str
    step: int
    time: float
    data: dict[str, Any]
    usage: UsageOut | None = None


class EventsOut(_Out):
    items: list[EventOut]
    #: pass as ``after`` to read the next page (``None``: nothing more stored yet)
    next_after: int | None = None


class TurnOut(_Out):
    """What a turn ended with."""

    session_id: str
    status: str
    output: str | None
    error: str | None = None
    stop_reason: str | None = None
    usage: UsageOut
    cost: float
    approval: ApprovalOut | None = None
    question: QuestionOut | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    #: the first and last stored event of the turn (``events?after=first_seq-1`` replays it)
    first_seq: int
    last_seq: int


class ApprovalsOut(_Out):
    items: list[ApprovalOut]


class AgentOut(_Out):
    name: str
    version: str
    description: str
    tools: list[str]


class AgentsOut(_Out):
    items: list[AgentOut]


class HealthOut(_Out):
    status: Literal["ok"]


class ReadyOut(_Out):
    status: Literal["ready", "not_ready"]
    #: one entry per part checked: ``store``, ``agent:<name>``
    checks: dict[str, dict[str, Any]]
