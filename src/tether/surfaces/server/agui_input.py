"""AG-UI 1.0 for Tether, what the client asks: a ``RunAgentInput`` read as one request.

Pure, no I/O: :func:`parse_input` turns a :class:`~ag_ui.core.RunAgentInput`
into an :class:`AguiMessage`, :class:`AguiDecision` or :class:`AguiAnswer`,
and :func:`check_pending` checks it fits what the session waits for. Both
raise :class:`AguiInputError` with a message that says what to send
instead. The events a run sends back are :mod:`~tether.surfaces.server.agui_events`'.

- ``threadId`` is the Tether session id; ``runId`` names one turn (a new
  message, a decision, or an answer).
- A new run's text is the last message of ``messages``, which must be the
  user's (the rest of the history lives in the session). Client-side
  ``tools``, ``state`` and ``forwardedProps`` are not used; ``context``
  entries become the session's context (``description`` -> ``value``).
- A paused run resumes with ``resume``: ``[{"interruptId":
  "approval:<id>", "status": "resolved", "payload": {"approved": true,
  "reason": "..."}}]``, or for a question (``clarify:<call id>``)
  ``"payload": {"answer": "..."}``; ``"status": "cancelled"`` denies the
  action (or tells the agent the question went unanswered). The interrupt
  ids are :data:`APPROVAL_PREFIX` and :data:`CLARIFY_PREFIX` followed by the
  approval id or the call id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from ag_ui.core import ResumeEntry, RunAgentInput, TextPart, UserMessage

from tether.spec.events import SessionStatus
from tether.surfaces.server.models import MAX_MESSAGE_CHARS

__all__ = [
    "APPROVAL_PREFIX",
    "CLARIFY_PREFIX",
    "MAX_REASON",
    "AguiAnswer",
    "AguiDecision",
    "AguiInputError",
    "AguiMessage",
    "AguiRequest",
    "check_pending",
    "parse_input",
]

#: interrupt ids: ``approval:<approval id>`` and ``clarify:<call id>``
APPROVAL_PREFIX: Final = "approval:"
CLARIFY_PREFIX: Final = "clarify:"
#: the longest ``reason`` a decision may carry (as DecisionIn)
MAX_REASON: Final = 2000

#: what a cancelled entry means, in the words the agent reads
_DISMISSED_APPROVAL = "the user dismissed the request without approving it"
_DISMISSED_QUESTION = "(no answer: the user dismissed the question)"
_MAX_ID = 255
_MAX_CONTEXT = 100
_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")  # as SessionIn.session_id


class AguiInputError(ValueError):
    """The ``RunAgentInput`` cannot be run as sent; the message says what to send instead."""


@dataclass(frozen=True, slots=True)
class AguiMessage:
    """A new user message: run a turn with ``text`` (``context``: the run's AG-UI context)."""

    session_id: str
    run_id: str
    text: str
    context: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AguiDecision:
    """Approve or deny the call the session waits on (``Session.decide``).

    ``cancelled``: the client abandoned the interrupt; ``approve`` is then
    ``False`` (the action does not run). ``ignored``: resume entries naming
    interrupts this server never raised (log a warning; they change nothing).
    """

    session_id: str
    run_id: str
    interrupt_id: str
    approval_id: str
    approve: bool
    reason: str | None
    cancelled: bool = False
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AguiAnswer:
    """The user's answer to the question the agent asked (``Session.answer``).

    ``call_id`` is the clarify call the interrupt was raised for;
    ``cancelled``: the client abandoned it, and ``text`` says so to the agent.
    """

    session_id: str
    run_id: str
    interrupt_id: str
    call_id: str
    text: str
    cancelled: bool = False
    ignored: tuple[str, ...] = ()


AguiRequest = AguiMessage | AguiDecision | AguiAnswer


def parse_input(run: RunAgentInput) -> AguiRequest:
    """What ``run`` asks: a new message, a decision on an approval, or an answer.

    A run with ``resume`` entries continues an interrupted one (its
    ``messages`` are the old history and are not read); otherwise the last
    message must be the user's, in text. Raises :class:`AguiInputError`
    for anything that cannot be run as sent.
    """
    session_id = _session_id(run.thread_id)
    run_id = run.run_id.strip()
    if not run_id or len(run_id) > _MAX_ID:
        raise AguiInputError(f"runId must be 1 to {_MAX_ID} characters, not blank")
    if run.resume:
        return _parse_resume(session_id, run_id, run.resume)
    return AguiMessage(session_id, run_id, _user_text(run), _context(run))


def check_pending(
    request: AguiRequest,
    *,
    status: str,
    approval_id: str | None = None,
    clarify_call_id: str | None = None,
) -> None:
    """Raise :class:`AguiInputError` unless ``request`` fits what the session waits for.

    ``status`` is the session's status; ``approval_id`` the approval it
    waits on, ``clarify_call_id`` the clarify call it waits on (when
    known). A paused session takes only the resume of its open interrupt
    (AG-UI: an omitted interrupt is never taken as answered, so a chat
    "yes" does not approve), and a session that waits for nothing takes
    only a new message.
    """
    if status == SessionStatus.AWAITING_APPROVAL:
        wanted = f"{APPROVAL_PREFIX}{approval_id}" if approval_id else f"{APPROVAL_PREFIX}<id>"
        if not isinstance(request, AguiDecision):
            raise AguiInputError(
                f"session {request.session_id} waits for a decision on an approval: resume "
                f'the interrupt {wanted!r} with {{"approved": true}} or {{"approved": false}} '
                "(or cancel it) before sending anything else"
            )
        if approval_id is not None and request.approval_id != approval_id:
            raise AguiInputError(
                f"interrupt {request.interrupt_id!r} is not open (already decided, expired, or "
                f"unknown); session {request.session_id} waits on {wanted!r}"
            )
        return
    if status == SessionStatus.AWAITING_USER:
        if not isinstance(request, AguiAnswer):
            raise AguiInputError(
                f"session {request.session_id} waits for the answer to the agent's question: "
                f"resume the interrupt '{CLARIFY_PREFIX}<call id>' with "
                '{"answer": "..."} (or cancel it) before sending anything else'
            )
        if clarify_call_id is not None and request.call_id != clarify_call_id:
            raise AguiInputError(
                f"interrupt {request.interrupt_id!r} is not open (already answered or unknown); "
                f"session {request.session_id} waits on '{CLARIFY_PREFIX}{clarify_call_id}'"
            )
        return
    if not isinstance(request, AguiMessage):
        raise AguiInputError(
            f"session {request.session_id} waits for no decision or answer (status "
            f"{status!r}): interrupt {request.interrupt_id!r} is no longer open. Send a new "
            "message instead"
        )


def _session_id(thread_id: str) -> str:
    if len(thread_id) > _MAX_ID or not _SESSION_ID.fullmatch(thread_id):
        raise AguiInputError(
            f"threadId {thread_id[:80]!r} cannot name a session: use 1 to {_MAX_ID} letters, "
            "digits and . _ : - (starting with a letter or digit), e.g. a UUID"
        )
    return thread_id


def _user_text(run: RunAgentInput) -> str:
    if not run.messages:
        raise AguiInputError(
            "messages is empty and there is no resume: put the user's message last in messages"
        )
    last = run.messages[-1]
    if not isinstance(last, UserMessage):
        raise AguiInputError(
            f"the last message is a {last.role!r} message, not the user's: a new run needs the "
            "user's message last in messages; a run that answers an interrupt needs resume"
        )
    if isinstance(last.content, str):
        text = last.content
    else:
        texts: list[str] = []
        for part in last.content:
            if not isinstance(part, TextPart):
                raise AguiInputError(
                    f"the user's message carries a {part.type!r} part: this agent takes text "
                    "only. Send the message as text"
                )
            texts.append(part.text)
        text = "\n".join(texts)
    if not text.strip():
        raise AguiInputError("the user's message is empty: send some text")
    if len(text) > MAX_MESSAGE_CHARS:
        raise AguiInputError(
            f"the user's message is {len(text):,} characters; the limit is {MAX_MESSAGE_CHARS:,}"
        )
    return text


def _context(run: RunAgentInput) -> dict[str, str]:
    entries = run.context or []
    if len(entries) > _MAX_CONTEXT:
        raise AguiInputError(
            f"context has {len(entries)} entries; at most {_MAX_CONTEXT} are accepted"
        )
    out: dict[str, str] = {}
    for entry in entries:
        if len(entry.value) > MAX_MESSAGE_CHARS:
            raise AguiInputError(
                f"context entry {entry.description[:80]!r} is {len(entry.value):,} characters; "
                f"the limit is {MAX_MESSAGE_CHARS:,}"
            )
        key = entry.description.strip()[:_MAX_ID] or "context"
        name, n = key, 1
        while name in out:  # the same description twice: keep both
            n += 1
            name = f"{key} ({n})"
        out[name] = entry.value
    return out


def _parse_resume(session_id: str, run_id: str, entries: list[ResumeEntry]) -> AguiRequest:
    seen: set[str] = set()
    ours: list[ResumeEntry] = []
    ignored: list[str] = []
    for entry in entries:
        iid = entry.interrupt_id
        if iid in seen:
            raise AguiInputError(f"resume answers interrupt {iid!r} twice: answer it once")
        seen.add(iid)
        if _interrupt_kind(iid) is None:
            ignored.append(iid)
        else:
            ours.append(entry)
    if not ours:
        raise AguiInputError(
            f"no resume entry answers an interrupt this server raised (got "
            f"{', '.join(repr(i[:80]) for i in ignored)}): its interrupt ids look like "
            f"'{APPROVAL_PREFIX}<id>' or '{CLARIFY_PREFIX}<call id>'"
        )
    if len(ours) > 1:
        raise AguiInputError(
            "resume answers several of this server's interrupts, but a Tether session waits on "
            "one at a time: answer the interrupt of the last run only"
        )
    entry = ours[0]
    iid = entry.interrupt_id
    kind = _interrupt_kind(iid)
    if kind == "approval":
        approval_id = iid[len(APPROVAL_PREFIX) :]
        if entry.status == "cancelled":
            return AguiDecision(
                session_id,
                run_id,
                iid,
                approval_id,
                approve=False,
                reason=_DISMISSED_APPROVAL,
                cancelled=True,
                ignored=tuple(ignored),
            )
        approve, reason = _decision(iid, entry.payload)
        return AguiDecision(
            session_id, run_id, iid, approval_id, approve, reason, ignored=tuple(ignored)
        )
    call_id = iid[len(CLARIFY_PREFIX) :]
    if entry.status == "cancelled":
        return AguiAnswer(
            session_id,
            run_id,
            iid,
            call_id,
            _DISMISSED_QUESTION,
            cancelled=True,
            ignored=tuple(ignored),
        )
    return AguiAnswer(
        session_id, run_id, iid, call_id, _answer(iid, entry.payload), ignored=tuple(ignored)
    )


def _interrupt_kind(interrupt_id: str) -> str | None:
    for kind, prefix in (("approval", APPROVAL_PREFIX), ("clarify", CLARIFY_PREFIX)):
        if interrupt_id.startswith(prefix) and len(interrupt_id) > len(prefix):
            return kind
    return None


def _decision(iid: str, payload: Any) -> tuple[bool, str | None]:
    shape = '{"approved": true|false, "reason": "..." (optional)}'
    if not isinstance(payload, dict):
        raise AguiInputError(f"the resume of {iid!r} needs the payload {shape}")
    if "editedArgs" in payload:
        raise AguiInputError(
            f"the resume of {iid!r} carries editedArgs, but Tether approves the exact call it "
            "showed: approve or deny it as it is, and ask the agent for a changed call"
        )
    extra = sorted(set(payload) - {"approved", "reason"})
    if extra:
        raise AguiInputError(
            f"the resume of {iid!r} has unknown fields {', '.join(map(repr, extra))}: send {shape}"
        )
    approved = payload.get("approved")
    if not isinstance(approved, bool):
        raise AguiInputError(
            f"the resume of {iid!r} needs 'approved' as true or false (got {approved!r}): "
            f"send {shape}"
        )
    reason = payload.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise AguiInputError(f"the 'reason' of the resume of {iid!r} must be a string")
    if reason is not None and len(reason) > MAX_REASON:
        raise AguiInputError(
            f"the 'reason' of the resume of {iid!r} is {len(reason):,} characters; "
            f"the limit is {MAX_REASON:,}"
        )
    return approved, (reason.strip() or None) if reason is not None else None


def _answer(iid: str, payload: Any) -> str:
    shape = '{"answer": "..."}'
    text: Any = payload
    if isinstance(payload, dict):
        extra = sorted(set(payload) - {"answer"})
        if extra:
            raise AguiInputError(
                f"the resume of {iid!r} has unknown fields {', '.join(map(repr, extra))}: "
                f"send {shape}"
            )
        text = payload.get("answer")
    if not isinstance(text, str) or not text.strip():
        raise AguiInputError(f"the resume of {iid!r} needs the user's answer: send {shape}")
    if len(text) > MAX_MESSAGE_CHARS:
        raise AguiInputError(
            f"the answer is {len(text):,} characters; the limit is {MAX_MESSAGE_CHARS:,}"
        )
    return text
