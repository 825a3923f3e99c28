"""Approvals inside a turn: asking, deciding, expiry, and a chat reply read as yes or no.

Functions of a :class:`~tether.runtime.turn.Turn` (split from it to keep the
step loop readable; the Turn keeps thin methods that call these).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.exceptions import ApprovalError, InvalidSessionState
from tether.runtime.approvals import PendingApproval, parse_reply, summarize
from tether.runtime.ports import SessionStatus
from tether.runtime.result import TurnResult
from tether.runtime.taint import flagged_arguments
from tether.spec.approval import arguments_hash
from tether.spec.events import Event, EventType
from tether.spec.messages import ToolCall, ToolResult, Usage
from tether.spec.tools import Tool

if TYPE_CHECKING:
    from tether.runtime.turn import Turn

__all__ = ["decide", "expire", "reply_to_approval", "request_approval"]


def request_approval(turn: Turn, call: ToolCall, tool: Tool, *, tainted: bool = False) -> None:
    st = turn.state
    policy = turn.agent.approval
    last = st.messages[-1] if st.messages else None
    explanation = last.text if last is not None and last.role == "assistant" else ""
    summary = summarize(tool, call)
    data: dict[str, Any] = {
        "approval_id": f"{st.session_id}.{st.event_count + 1}",
        "call_id": call.id,
        "tool": call.name,
        "arguments": call.arguments,
        "args_hash": arguments_hash(call.name, call.arguments),
        "summary": summary,
        "explanation": explanation,
        "mode": policy.mode,
        "expires_at": turn.rt.clock() + policy.expires_after,
    }
    if st.untrusted and tainted:
        flagged = flagged_arguments(call.arguments, st.untrusted)
        data["tainted"] = sorted({source for source, _ in st.untrusted})
        data["flagged"] = flagged
        if flagged:
            found = "; ".join(f"{f['value']!r} ({f['arg']}) is in {f['source']}" for f in flagged)
            data["summary"] = (
                f"{summary}. WARNING: text from outside this conversation was read, "
                f"and {found}: check it was not planted there"
            )
    turn.emit(EventType.APPROVAL_REQUESTED, data)
    turn.emit(
        EventType.SESSION_STATUS,
        {"status": SessionStatus.AWAITING_APPROVAL, "reason": f"{call.name} needs approval"},
    )


async def decide(
    turn: Turn,
    approval_id: str,
    *,
    approve: bool,
    by: str,
    roles: frozenset[str],
    reason: str | None,
    events: list[Event],
) -> TurnResult:
    st = turn.state
    pending = st.pending_approval
    if st.status != SessionStatus.AWAITING_APPROVAL or pending is None:
        raise InvalidSessionState(
            f"session {st.session_id} is {st.status!r} and waits for no approval"
        )
    if pending["approval_id"] != approval_id:
        raise ApprovalError(
            f"approval {approval_id} is not the one session {st.session_id} waits for "
            f"({pending['approval_id']}): it is stale or unknown. Decide on the pending one"
        )
    policy = turn.agent.approval
    if pending.get("mode") == "operator" and policy.approver_role not in roles:
        raise ApprovalError(
            f"{by} cannot decide approval {approval_id}: it needs the "
            f"{policy.approver_role!r} role (operator approval)"
        )
    call = st.open_calls.get(pending["call_id"])
    if call is None or arguments_hash(call.name, call.arguments) != pending["args_hash"]:
        raise ApprovalError(  # the log itself would have to be inconsistent
            f"approval {approval_id} does not match the call it was requested for"
        )
    if turn.rt.clock() > float(pending["expires_at"]):
        expire(turn, pending, call, by)
    else:
        turn.emit(
            EventType.APPROVAL_DECIDED,
            {"approval_id": approval_id, "approved": approve, "by": by, "reason": reason},
        )
        turn._running("approval decided")
        if not approve:
            why = f" ({reason})" if reason else ""
            who = "the operator reviewing it" if pending.get("mode") == "operator" else "the user"
            turn._finish(
                ToolResult(
                    call.id,
                    call.name,
                    f"not done: {who} declined {pending['summary']}{why}. Do not do it; "
                    "tell the user, and ask what they would like instead.",
                ),
                0.0,
                None,
            )
    await turn.commit()
    return await turn.run_steps(events)


def expire(turn: Turn, pending: dict[str, Any], call: ToolCall, by: str) -> None:
    """The request lapsed: the call does not run and the model is told."""
    turn.emit(EventType.APPROVAL_EXPIRED, {"approval_id": pending["approval_id"], "by": by})
    turn._running("approval expired")
    turn._finish(
        ToolResult(
            call.id,
            call.name,
            f"not done: the request to approve {pending['summary']} expired before "
            "anyone decided, so it did not run. Ask the user again if it is still wanted.",
        ),
        0.0,
        None,
    )


async def reply_to_approval(turn: Turn, text: str, events: list[Event]) -> TurnResult:
    """A chat message while an approval is pending: a strict yes or no decides; else re-ask."""
    st = turn.state
    assert st.pending_approval is not None
    pending = PendingApproval.from_event(st.session_id, st.pending_approval)
    call = st.open_calls.get(pending.call_id)
    if call is not None and turn.rt.clock() > pending.expires_at:
        # Too late to ask again: the request lapses now, and the turn goes on.
        expire(turn, st.pending_approval, call, "user")
        await turn.commit()
        return await turn.run_steps(events)
    answer = parse_reply(text) if pending.mode == "user" else None
    if answer is None:
        turn.emit(EventType.APPROVAL_REASKED, {"text": text})
        return await turn._pause(events, Usage())
    by = f"user:{st.user_id}" if st.user_id else "user"
    return await decide(
        turn, pending.id, approve=answer, by=by, roles=frozenset(), reason=None, events=events
    )
