"""The one event model.

Every thing that happens to a session is an :class:`Event`. The same events
are stored (the session's append-only log), streamed to the CLI and the
server, and read by evals. Session state is a fold over the stored events
(``tether.runtime.state``); the session row only caches it.

Event types (``Event.type``) and their ``data``:

=====================  ==========================================================
``session.created``    ``agent``, ``version``, ``user_id``, ``tenant_id``
``message.user``       ``text``
``model.delta``        ``text`` (streamed only, never stored)
``model.response``     ``message`` (a stored :class:`Message`), ``model``,
                       ``stop_reason``, ``latency_ms``, ``cost`` (dollars);
                       ``usage`` set; ``priced: false`` when the price table
                       does not know the model; ``degraded`` and ``primary``
                       when a fallback answered; ``wrap_up`` when it is the
                       last, tool-less call after a limit
``model.retry``        ``model``, ``attempt`` (the one that failed), ``reason``,
                       ``delay`` (seconds before the next attempt), ``error``
``model.fallback``     ``from``, ``to``, ``reason``
``tool.retry``         ``call_id``, ``name``, ``attempt``, ``reason``, ``delay``
``breaker.opened``     ``key``, ``cooldown`` (an alert: a dependency is failing)
``breaker.closed``     ``key`` (its trial call succeeded)
``tool.started``       ``call_id``, ``name``, ``arguments``, ``idempotency_key``
``tool.finished``      ``call_id``, ``name``, ``content``, ``is_error``,
                       ``duration_ms``, optional ``vars`` (session vars set),
                       ``untrusted: true`` for a result of an
                       ``untrusted_output`` tool, or an error quoting what
                       it raised (it taints the session); ``raw``: what the
                       tool returned when the guard withheld or tagged it;
                       ``cost`` (dollars) for a tool that declares one, 0
                       when not charged (see ``Tool``), with ``cost_error``
                       when its cost function failed (recorded at 0)
``turn.completed``     ``output`` (the final answer text)
``session.status``     ``status``, ``reason``
``session.resumed``    ``from_step``, ``owner``
``answer.unacknowledged_failure``
                       ``tools``: a final answer that does not mention the
                       failure of those tools (a likely fabrication)
``approval.requested`` ``approval_id``, ``call_id``, ``tool``, ``arguments``,
                       ``args_hash``, ``summary``, ``explanation``, ``mode``,
                       ``expires_at``: the call waits for a decision;
                       in a session that read untrusted content,
                       ``tainted`` (its sources) and ``flagged``: argument
                       values planted by it (``arg``, ``value``,
                       ``source``, ``match``: ``exact`` or ``normalised``),
                       with a ``warning`` sentence when there are any
``approval.decided``   ``approval_id``, ``approved``, ``by``, ``reason``
``approval.expired``   ``approval_id``, ``by``: decided too late; the call did not run
``approval.reasked``   ``text``: a chat reply that was neither yes nor no
``operator.alert``     ``reason``, ``call_id``, ``tool``: a person must check
``clarify.asked``      ``call_id``, ``question``: the model asks the user; the
                       session waits in ``awaiting_user``
``context.compressed`` ``upto`` (messages replaced), ``text`` (the summary
                       message), ``digest``, ``tokens_before``,
                       ``tokens_after``, ``model``, ``cost``; ``usage`` set
``context.compression_failed``
                       ``reason``: the summary could not be made; the turn
                       goes on with the full context
``limit.reached``      ``limit`` (``max_tool_calls``,
                       ``max_tool_calls_per_turn`` or ``loop``), ``allowed``,
                       ``count``, ``tool``: the turn ends with a summary
``budget.exhausted``   ``max_tokens``, ``used``, ``partial``: the session
                       ends (status ``budget_exhausted``)
``rate.limited``       ``limit``, ``scope``, ``key``, ``reset_at``: a
                       per-user or per-tenant limit stopped the turn
``answer.withheld``    ``reason`` (``canary`` or ``verbatim``): the answer
                       repeated the system prompt and was not shown;
                       ``where: approval`` when it was the explanation of an
                       approval request
``guard.flagged``      ``source`` (``user`` or ``tool``), ``tool``, ``action``
                       (``warn``, ``tag``, ``quarantine``), ``score``,
                       ``categories``, ``decoded_by``; ``content``: the start
                       of what was withheld or tagged (for the audit)
``answer.unsupported_claim``
                       ``claims`` (the phrases that state an action was
                       done), ``text`` (what the model wrote): the answer
                       said something was done that no tool did this turn;
                       the user read an honest sentence instead
``guard.judged``       ``tool``, ``call_id``, ``verdict`` (``injection``,
                       ``clean``, ``unknown``), ``reason``, ``model``,
                       ``cost``; ``usage`` set: the model judge's opinion
                       on an untrusted result the rules let through
                       (``GuardPolicy(judge="tool")``)
``context.set``        ``values``: context variables the caller passed
                       (``Runtime.run(context=...)``), shown to the model in
                       a delimited data block, never in the system prompt
``output.reask``       ``errors``, ``attempt``, ``text``: the final answer did
                       not match the output schema; ``text`` (the runtime's
                       message to the model) joins the conversation
``tool.definition_changed``
                       ``server``, ``tool``, ``reason`` (``changed``, ``new``,
                       ``injection``), ``old_hash`` (``None`` for a tool never
                       accepted), ``new_hash``, ``diff`` (what differs in
                       ``description``, ``inputSchema``, ``annotations``): a
                       tool source's tool was quarantined, hidden from the
                       model until an operator accepts it (an alert)
=====================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Required, TypedDict

from tether.spec.messages import Usage

__all__ = [
    "EPHEMERAL_TYPES",
    "ApprovalDecidedData",
    "ApprovalRequestedData",
    "Event",
    "EventType",
    "ModelResponseData",
    "SessionCreatedData",
    "SessionStatus",
    "SessionStatusData",
    "ToolFinishedData",
    "ToolStartedData",
]


class EventType(StrEnum):
    """Names of event types. Members are strings: ``Event.type == EventType.X`` holds
    for an event read back from the store as for one just made."""

    SESSION_CREATED = "session.created"
    USER_MESSAGE = "message.user"
    MODEL_DELTA = "model.delta"
    MODEL_RESPONSE = "model.response"
    TOOL_STARTED = "tool.started"
    TOOL_FINISHED = "tool.finished"
    TURN_COMPLETED = "turn.completed"
    SESSION_STATUS = "session.status"
    SESSION_RESUMED = "session.resumed"
    MODEL_RETRY = "model.retry"
    MODEL_FALLBACK = "model.fallback"
    TOOL_RETRY = "tool.retry"
    BREAKER_OPENED = "breaker.opened"
    BREAKER_CLOSED = "breaker.closed"
    UNACKNOWLEDGED_FAILURE = "answer.unacknowledged_failure"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_DECIDED = "approval.decided"
    APPROVAL_EXPIRED = "approval.expired"
    APPROVAL_REASKED = "approval.reasked"
    OPERATOR_ALERT = "operator.alert"
    CLARIFY_ASKED = "clarify.asked"
    CONTEXT_COMPRESSED = "context.compressed"
    COMPRESSION_FAILED = "context.compression_failed"
    LIMIT_REACHED = "limit.reached"
    BUDGET_EXHAUSTED = "budget.exhausted"
    RATE_LIMITED = "rate.limited"
    ANSWER_WITHHELD = "answer.withheld"
    OUTPUT_REASK = "output.reask"
    CONTEXT_SET = "context.set"
    GUARD_FLAGGED = "guard.flagged"
    GUARD_JUDGED = "guard.judged"
    UNSUPPORTED_CLAIM = "answer.unsupported_claim"
    TOOL_DEFINITION_CHANGED = "tool.definition_changed"


class SessionStatus(StrEnum):
    """Session states. ``idle`` waits for the next user message; ``running`` is a
    turn in progress, or one interrupted (a crash, a shutdown) that ``resume``
    continues."""

    RUNNING = "running"
    IDLE = "idle"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_USER = "awaiting_user"
    COMPLETED = "completed"
    FAILED = "failed"
    BUDGET_EXHAUSTED = "budget_exhausted"


# --- the payloads SessionState.apply reads (typed; the rest are documented above) ---


class SessionCreatedData(TypedDict, total=False):
    agent: Required[str]
    version: Required[str]
    user_id: str | None
    tenant_id: str | None
    #: the creating principal (``Principal.to_dict()``); absent in sessions made before 0.2
    principal: dict[str, Any]
    models: list[str]
    metadata: dict[str, Any]


class ModelResponseData(TypedDict, total=False):
    message: Required[dict[str, Any]]
    model: Required[str]
    cost: float


class ToolStartedData(TypedDict, total=False):
    call_id: Required[str]
    name: Required[str]
    arguments: dict[str, Any]
    idempotency_key: str


class ToolFinishedData(TypedDict, total=False):
    call_id: Required[str]
    name: Required[str]
    content: Required[str]
    is_error: bool
    duration_ms: float
    vars: dict[str, Any]
    untrusted: bool
    raw: str
    #: the tool's full output when ``content`` was cut (kept up to the store cap)
    original: str
    original_chars: int
    #: dollars the call cost (only for a tool that declares a ``cost``; 0: not charged)
    cost: float
    #: why the tool's cost function gave no usable answer (``cost`` is then 0)
    cost_error: str


class SessionStatusData(TypedDict, total=False):
    status: Required[str]
    reason: str | None


class ApprovalRequestedData(TypedDict, total=False):
    approval_id: Required[str]
    call_id: Required[str]
    tool: Required[str]
    arguments: dict[str, Any]
    args_hash: str
    summary: str
    explanation: str
    mode: str
    expires_at: float
    tainted: list[str]
    flagged: list[dict[str, Any]]
    warning: str


class ApprovalDecidedData(TypedDict, total=False):
    approval_id: Required[str]
    approved: Required[bool]
    by: str
    reason: str | None


EPHEMERAL_TYPES: Final = frozenset({EventType.MODEL_DELTA})


@dataclass(slots=True)
class Event:
    """One thing that happened in a session.

    Treat an event as immutable once made (its ``data`` included): the same
    object is stored, streamed and folded into the state. It is not frozen
    only because a frozen dataclass costs several times more to build, and
    a turn builds one for everything that happens (``dataclasses.replace``
    makes a changed copy).

    ``step`` is the session's step counter when it happened; ``seq`` the
    event's position in the stored log (0 until stored, and for streamed-only
    events); ``time`` is a Unix timestamp from the runtime's injected clock.
    """

    type: str
    session_id: str
    step: int
    time: float
    data: dict[str, Any] = field(default_factory=dict)
    usage: Usage | None = None
    seq: int = 0

    @property
    def stored(self) -> bool:
        """Whether this event type belongs in the session's log."""
        return self.type not in EPHEMERAL_TYPES

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.type,
            "session_id": self.session_id,
            "step": self.step,
            "time": self.time,
            "seq": self.seq,
            "data": self.data,
        }
        if self.usage is not None:
            d["usage"] = self.usage.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        u = d.get("usage")
        return cls(
            type=d["type"],
            session_id=d["session_id"],
            step=int(d["step"]),
            time=float(d["time"]),
            data=dict(d.get("data") or {}),
            usage=Usage.from_dict(u) if u else None,
            seq=int(d.get("seq", 0)),
        )
