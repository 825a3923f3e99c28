"""AG-UI 1.0 for Tether, what the client reads: a turn's Tether events as AG-UI events.

Pure, no I/O: feed every :class:`~tether.spec.events.Event` of a turn to an
:class:`AguiTranslator` and write what comes back with :func:`encode`
(server-sent events); :func:`reject` is the stream that refuses its input.
What the client asks is :mod:`~tether.surfaces.server.agui_input`'s.

- Text deltas stream as ``TEXT_MESSAGE_*``; each tool call of a model
  response as ``TOOL_CALL_START``/``ARGS``/``END`` (ids are Tether's call
  ids, so a result in a later run names the same call); each result as
  ``TOOL_CALL_RESULT``. A final answer the runtime withheld or replaced
  (system-prompt leak, unsupported claim) is shown as the runtime's
  replacement, never as what the model wrote, unless it was already
  streamed (then the replacement follows it).
- A turn that pauses ends with ``RUN_FINISHED`` carrying the interrupt
  outcome: one :class:`~ag_ui.core.Interrupt` per pause, with id
  ``approval:<approval id>`` (reason ``tool_call``, or
  ``tether:operator_review`` when only an operator may decide) or
  ``clarify:<call id>`` (reason ``input_required``). Its ``metadata.tether``
  holds the whole request: tool, summary, question, every argument, the
  warning, what was flagged.
- Before the end, ``STATE_SNAPSHOT`` says ``{session_id, status,
  pending_approval, question}``. A failed turn ends with ``RUN_ERROR`` and a
  one-line message: never a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from ag_ui.core import (
    PROTOCOL_VERSION,
    BaseEvent,
    Interrupt,
    RunErrorEvent,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    StateSnapshotEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    TokenUsage,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)

from tether.runtime.approvals import PendingApproval
from tether.spec.events import Event, EventType, SessionStatus
from tether.spec.messages import Usage
from tether.surfaces.server.agui_input import APPROVAL_PREFIX, CLARIFY_PREFIX, MAX_REASON
from tether.surfaces.server.models import MAX_MESSAGE_CHARS

__all__ = ["CONTENT_TYPE", "AguiTranslator", "encode", "reject"]

#: the media type of :func:`encode`'s output
CONTENT_TYPE: Final = "text/event-stream"

_MAX_ERROR = 1000
_SPACES = re.compile(r"\s+")
_MAX_SAFE_INT = 9007199254740991

#: statuses of a turn that answered (``budget_exhausted``: with what was said and a notice)
_ANSWERED = frozenset({SessionStatus.IDLE, SessionStatus.COMPLETED, SessionStatus.BUDGET_EXHAUSTED})


def reject(message: str, *, code: str = "invalid_input") -> list[BaseEvent]:
    """A stream that refuses its input: one ``RUN_ERROR`` (AG-UI allows it to open a stream)."""
    return [RunErrorEvent(message=_safe_message(message), code=code)]


def encode(events: Iterable[BaseEvent]) -> str:
    """``events`` as server-sent events (``data: {...}\\n\\n`` each, camelCase JSON).

    The frames are the package's ``EventEncoder``'s (the same JSON), with
    every non-ASCII character escaped: text a model or tool wrote may hold a
    lone surrogate, which UTF-8 cannot carry, and a frame that cannot be
    encoded would cut the run off with no end.
    """
    return "".join(f"data: {_ascii(ev)}\n\n" for ev in events)


def _ascii(ev: BaseEvent) -> str:
    return json.dumps(
        ev.model_dump(mode="json", by_alias=True), ensure_ascii=True, separators=(",", ":")
    )


class AguiTranslator:
    """One run's Tether events as AG-UI events.

    Call :meth:`start` once, :meth:`feed` with every event of the turn (text
    deltas included, in order), then :meth:`finish` with how the turn
    ended. Each returns the AG-UI events to send now. Message ids are
    ``<run id>:m<n>``; tool call ids are Tether's call ids (a call id the
    run already used gets ``#<n>`` appended), so ids are stable and unique
    within the run, and a result in a later run names the call it answers.
    """

    def __init__(self, thread_id: str, run_id: str) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self._started = False
        self._finished = False
        self._messages = 0
        #: the assistant message being streamed (``None``: none open)
        self._open: str | None = None
        self._streamed: list[str] = []
        #: what the user has read of the current final answer (``None``: nothing yet)
        self._answer_shown: str | None = None
        self._answered = False
        self._call_ids: dict[str, str] = {}
        self._used_ids: set[str] = set()
        self._approval: PendingApproval | None = None
        self._clarify: tuple[str, str] | None = None  # (call id, question)
        self._usage: dict[str, Usage] = {}

    # the stream ---------------------------------------------------------------

    def start(self) -> list[BaseEvent]:
        """``RUN_STARTED`` (once)."""
        if self._started:
            return []
        self._started = True
        return [
            RunStartedEvent(
                thread_id=self.thread_id, run_id=self.run_id, protocol_version=PROTOCOL_VERSION
            )
        ]

    def feed(self, ev: Event) -> list[BaseEvent]:
        """The AG-UI events for one Tether event (none for most types)."""
        if self._finished:
            return []
        out = self.start()
        if ev.usage is not None:
            model = ev.data.get("model")
            key = model if isinstance(model, str) and model else "unknown"
            self._usage[key] = self._usage.get(key, Usage()) + ev.usage
        t = ev.type
        ts = _millis(ev.time)
        if t == EventType.MODEL_DELTA:
            out += self._delta(str(ev.data.get("text") or ""), ts)
        elif t == EventType.MODEL_RESPONSE:
            out += self._response(ev.data, ts)
        elif t == EventType.TOOL_FINISHED:
            out += self._result(ev.data, ts)
        elif t == EventType.TURN_COMPLETED:
            output = ev.data.get("output")
            self._answered = True
            if isinstance(output, str):
                out += self._show_answer(output, ts)
        elif t == EventType.OUTPUT_REASK:
            self._answer_shown = None  # the answer goes back to the model; the next one counts
        elif t == EventType.APPROVAL_REQUESTED:
            try:
                self._approval = PendingApproval.from_event(ev.session_id, ev.data)
            except (KeyError, TypeError, ValueError):
                self._approval = None
        elif t in (EventType.APPROVAL_DECIDED, EventType.APPROVAL_EXPIRED):
            if self._approval is not None and self._approval.id == ev.data.get("approval_id"):
                self._approval = None
        elif t == EventType.CLARIFY_ASKED:
            self._clarify = (str(ev.data.get("call_id", "")), str(ev.data.get("question", "")))
        return out

    def finish(
        self,
        status: str,
        *,
        output: str | None = None,
        approval: PendingApproval | None = None,
        question: str | None = None,
        error: str | None = None,
    ) -> list[BaseEvent]:
        """The run's end: the state, then ``RUN_FINISHED`` (success or interrupt) or ``RUN_ERROR``.

        ``status`` is the session's status after the turn (``TurnResult.status``),
        ``output`` its answer, ``approval`` the approval it waits on,
        ``question`` the question it asked, ``error`` why it failed (a sentence
        for a person; it is cut to one line). An ``error``, ``failed``, or any
        status that is neither answered nor paused ends with ``RUN_ERROR``.
        """
        if self._finished:
            return []
        out = self.start()
        out += self._close()
        approval = approval or self._approval
        if status == SessionStatus.AWAITING_APPROVAL and approval is None:
            error = error or "the run paused for an approval that could not be read"
        clarify: tuple[str, str] | None = None
        if status == SessionStatus.AWAITING_USER and error is None:
            call_id = self._clarify[0] if self._clarify else ""
            asked = question or (self._clarify[1] if self._clarify else "")
            if not asked:
                error = "the run paused for a question that could not be read"
            clarify = (call_id, asked)
        failed = error is not None or status not in (
            _ANSWERED | {SessionStatus.AWAITING_APPROVAL, SessionStatus.AWAITING_USER}
        )
        if not failed and status in _ANSWERED and not self._answered and output:
            out += self._show_answer(output, None)
        waiting = approval if status == SessionStatus.AWAITING_APPROVAL and not failed else None
        asked_now = clarify if not failed else None
        out.append(
            StateSnapshotEvent(
                snapshot={
                    "session_id": self.thread_id,
                    "status": str(status),
                    "pending_approval": _approval_info(waiting) if waiting else None,
                    "question": (
                        {"call_id": asked_now[0], "question": asked_now[1]} if asked_now else None
                    ),
                }
            )
        )
        self._finished = True
        usage = self._token_usage()
        if failed:
            out.append(
                RunErrorEvent(
                    message=_safe_message(error or _status_error(status)),
                    code=_error_code(status),
                    usage=usage,
                )
            )
            return out
        interrupt: Interrupt | None = None
        if waiting is not None:
            interrupt = self._approval_interrupt(waiting)
        elif asked_now is not None:
            interrupt = self._clarify_interrupt(*asked_now)
        outcome: RunFinishedInterruptOutcome | RunFinishedSuccessOutcome
        if interrupt is not None:
            outcome = RunFinishedInterruptOutcome(interrupts=[interrupt])
        else:
            outcome = RunFinishedSuccessOutcome()
        out.append(
            RunFinishedEvent(
                thread_id=self.thread_id, run_id=self.run_id, outcome=outcome, usage=usage
            )
        )
        return out

    # text ---------------------------------------------------------------------

    def _new_message_id(self) -> str:
        self._messages += 1
        return f"{self.run_id}:m{self._messages}"

    def _delta(self, text: str, ts: int | None) -> list[BaseEvent]:
        if not text:
            return []  # a keep-alive: it opens no message
        out: list[BaseEvent] = []
        if self._open is None:
            self._open = self._new_message_id()
            self._streamed = []
            out.append(TextMessageStartEvent(message_id=self._open, role="assistant", timestamp=ts))
        self._streamed.append(text)
        out.append(TextMessageContentEvent(message_id=self._open, delta=text, timestamp=ts))
        return out

    def _close(self, ts: int | None = None) -> list[BaseEvent]:
        if self._open is None:
            return []
        mid, self._open = self._open, None
        return [TextMessageEndEvent(message_id=mid, timestamp=ts)]

    def _whole(self, text: str, ts: int | None) -> tuple[str, list[BaseEvent]]:
        mid = self._new_message_id()
        return mid, [
            TextMessageStartEvent(message_id=mid, role="assistant", timestamp=ts),
            TextMessageContentEvent(message_id=mid, delta=text, timestamp=ts),
            TextMessageEndEvent(message_id=mid, timestamp=ts),
        ]

    def _response(self, data: dict[str, Any], ts: int | None) -> list[BaseEvent]:
        msg = data.get("message")
        msg = msg if isinstance(msg, dict) else {}
        text = msg.get("text") if isinstance(msg.get("text"), str) else ""
        calls = [c for c in msg.get("tool_calls") or () if isinstance(c, dict)]
        streamed = self._open is not None
        shown = "".join(self._streamed) if streamed else None
        parent = self._open
        out = self._close(ts)
        self._streamed = []
        if not calls:
            # A final answer: the runtime may still withhold or replace it, so
            # unstreamed text waits for turn.completed (what the user reads).
            self._answer_shown = shown
            return out
        self._answer_shown = None
        if parent is None:
            if text:
                parent, whole = self._whole(text, ts)
                out += whole
            else:
                parent = self._new_message_id()
        for call in calls:
            out += self._tool_call(call, parent, ts)
        return out

    def _show_answer(self, output: str, ts: int | None) -> list[BaseEvent]:
        out = self._close(ts)
        if not output or output == self._answer_shown:
            return out
        self._answer_shown = output
        return out + self._whole(output, ts)[1]

    # tools --------------------------------------------------------------------

    def _tool_call(self, call: dict[str, Any], parent: str, ts: int | None) -> list[BaseEvent]:
        call_id = str(call.get("id") or "")
        tcid = call_id or f"{self.run_id}:call"
        n = 1
        while tcid in self._used_ids:
            n += 1
            tcid = f"{call_id or self.run_id + ':call'}#{n}"
        self._used_ids.add(tcid)
        self._call_ids[call_id] = tcid
        args = call.get("arguments")
        return [
            ToolCallStartEvent(
                tool_call_id=tcid,
                tool_call_name=str(call.get("name") or ""),
                parent_message_id=parent,
                timestamp=ts,
            ),
            ToolCallArgsEvent(tool_call_id=tcid, delta=_json(args or {}), timestamp=ts),
            ToolCallEndEvent(tool_call_id=tcid, timestamp=ts),
        ]

    def _tool_id(self, call_id: str) -> str:
        return self._call_ids.get(call_id, call_id)

    def _result(self, data: dict[str, Any], ts: int | None) -> list[BaseEvent]:
        call_id = str(data.get("call_id") or "")
        content = data.get("content", "")
        out = self._close(ts)
        return [
            *out,
            ToolCallResultEvent(
                message_id=self._new_message_id(),
                tool_call_id=self._tool_id(call_id),
                # what the model read: never ``raw`` (what a guard withheld) nor ``original``
                content=content if isinstance(content, str) else _json(content),
                metadata={"tether": {"is_error": True}} if data.get("is_error") else None,
                timestamp=ts,
            ),
        ]

    # the end ------------------------------------------------------------------

    def _approval_interrupt(self, a: PendingApproval) -> Interrupt:
        operator = a.mode == "operator"
        return Interrupt(
            id=f"{APPROVAL_PREFIX}{a.id}",
            reason="tether:operator_review" if operator else "tool_call",
            message=a.question(),
            tool_call_id=self._tool_id(a.call_id),
            response_schema=_approval_schema(),
            expires_at=_iso(a.expires_at),
            metadata={"tether": {"kind": "approval", **_approval_info(a)}},
        )

    def _clarify_interrupt(self, call_id: str, question: str) -> Interrupt:
        return Interrupt(
            id=f"{CLARIFY_PREFIX}{call_id or self.run_id}",
            reason="input_required",
            message=question,
            tool_call_id=self._tool_id(call_id) if call_id else None,
            response_schema={
                "type": "object",
                "properties": {
                    "answer": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_CHARS}
                },
                "required": ["answer"],
                "additionalProperties": False,
            },
            metadata={
                "tether": {
                    "kind": "clarify",
                    "session_id": self.thread_id,
                    "call_id": call_id,
                    "question": question,
                }
            },
        )

    def _token_usage(self) -> list[TokenUsage] | None:
        if not self._usage:
            return None
        return [
            TokenUsage(
                model=model,
                # AG-UI counts cache reads and writes inside inputTokens; Tether apart
                input_tokens=u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
                output_tokens=u.output_tokens,
                total_tokens=u.total_tokens,
                cached_input_tokens=u.cache_read_tokens or None,
                cache_write_input_tokens=u.cache_write_tokens or None,
            )
            for model, u in self._usage.items()
        ]


def _approval_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "approved": {"type": "boolean"},
            "reason": {"type": "string", "maxLength": MAX_REASON},
        },
        "required": ["approved"],
        "additionalProperties": False,
    }


def _approval_info(a: PendingApproval) -> dict[str, Any]:
    """Everything a front end shows for an approval (as ``ApprovalOut``, JSON-safe)."""
    return {
        "id": a.id,
        "session_id": a.session_id,
        "tool": a.tool,
        "call_id": a.call_id,
        "summary": a.summary,
        "question": a.question(),
        "explanation": a.explanation,
        "mode": a.mode,
        "arguments": json.loads(_json(a.arguments)),
        "expires_at": a.expires_at,
        "warning": a.warning,
        "flagged": json.loads(_json(list(a.flagged))),
        "tainted": list(a.tainted),
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _millis(t: float) -> int | None:
    try:
        ms = int(t * 1000)
    except (TypeError, ValueError, OverflowError):
        return None
    return ms if 0 <= ms <= _MAX_SAFE_INT else None


def _iso(t: float) -> str | None:
    try:
        return datetime.fromtimestamp(t, tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def _status_error(status: str) -> str:
    if status == SessionStatus.RUNNING:
        return (
            "The run was interrupted before it finished (the server may be restarting). "
            "Try again in a moment."
        )
    return "The run failed."


def _error_code(status: str) -> str:
    if status == SessionStatus.RUNNING:
        return "interrupted"
    return "failed" if status == SessionStatus.FAILED else "error"


def _safe_message(text: str) -> str:
    """One line for a person: no traceback, no newlines, at most ``_MAX_ERROR`` characters."""
    cut = text.split("Traceback (most recent call last)", 1)[0]
    line = _SPACES.sub(" ", cut).strip()
    if len(line) > _MAX_ERROR:
        line = line[: _MAX_ERROR - 1].rstrip() + "…"
    return line or "The run failed."
