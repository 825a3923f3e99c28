"""Approvals inside a turn: asking, deciding, expiry, and a chat reply read as yes or no.

Who may decide: in ``operator`` mode only a principal holding the policy's
``approver_role``; in ``user`` mode also the session's own user (any
decider when the session has no user). The decision is recorded with who
gave it; a second decision on the same request is refused as already
decided, before anything runs. These functions use only the turn's public
methods and its journal.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tether.exceptions import ApprovalError, InvalidSessionState, NotApprover
from tether.runtime.approvals import NOT_DONE, PendingApproval, parse_reply, summarize
from tether.runtime.execute import ToolRun
from tether.runtime.result import TurnResult
from tether.runtime.taint import Sources
from tether.spec.approval import arguments_hash
from tether.spec.events import EventType, SessionStatus
from tether.spec.messages import ToolCall, ToolResult
from tether.spec.principal import Principal
from tether.spec.tools import Tool

if TYPE_CHECKING:
    from tether.runtime.turn import Turn

__all__ = ["decide", "expire", "reply_to_approval", "request_approval"]


def request_approval(turn: Turn, call: ToolCall, tool: Tool, *, tainted: bool = False) -> None:
    """Store the request for ``call`` and wait: the summary, every argument, their provenance.

    ``explanation`` (the model's text before the call, which applications
    show) passes the same leak check as a final answer. In a session that
    read untrusted content, ``tainted`` names its sources and ``flagged`` the
    argument values planted by it (see :mod:`tether.runtime.taint`), with a
    ``warning`` sentence when there are any.
    """
    st = turn.state
    policy = turn.agent.approval
    last = st.messages[-1] if st.messages else None
    explanation = last.text if last is not None and last.role == "assistant" else ""
    if explanation:
        explanation = turn.withhold_leak(explanation, where="approval")
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
        "expires_at": turn.journal.lease.clock() + policy.expires_after,
    }
    if st.untrusted:
        flagged = Sources.of(turn.agent, st).planted(call.arguments)
        data["tainted"] = sorted({u[0] for u in st.untrusted})
        data["flagged"] = flagged
        if flagged:
            found = "; ".join(
                f"{_arg_name(f['arg'])} = {f['value']!r} was copied "
                f"{'word for word' if f['match'] == 'exact' else 'in another form'} "
                f"from {f['source']}"
                for f in flagged
            )
            it, they = ("it", "it") if len(flagged) == 1 else ("them", "they")
            data["warning"] = (
                f"WARNING: {found}, and the user never gave {it}: {they} may have been "
                "planted there to steer this action. Check before approving."
            )
    turn.journal.emit(EventType.APPROVAL_REQUESTED, data)
    turn.journal.status(SessionStatus.AWAITING_APPROVAL, f"{call.name} needs approval")


_PLAIN_PATH = re.compile(r"[A-Za-z_][\w.\[\]]{0,80}(?: \(key\))?")


def _arg_name(path: str) -> str:
    """An argument path as the warning shows it: plain, or quoted when a key made it odd."""
    return path if _PLAIN_PATH.fullmatch(path) else repr(path)


def may_decide(turn: Turn, pending: dict[str, Any], by: Principal) -> str | None:
    """Why ``by`` may not decide ``pending`` (``None``: they may)."""
    role = turn.agent.approval.approver_role
    st = turn.state
    if by.tenant is not None and st.tenant_id is not None and by.tenant != st.tenant_id:
        return f"the session belongs to another tenant ({st.tenant_id!r}, not {by.tenant!r})"
    if role in by.roles:
        return None
    if pending.get("mode") == "operator":
        return f"it needs the {role!r} role (operator approval)"
    if st.user_id is None:
        return None
    # The same user id in another tenant is another person. A decider that
    # names no tenant is taken as the application's word for this session's
    # user (a multi-tenant application should always pass the tenant).
    if by.user == st.user_id and by.tenant in (None, st.tenant_id):
        return None
    return f"only the session's user or a principal with the {role!r} role may decide it"


def decided_already(turn: Turn, approval_id: str) -> str | None:
    """How ``approval_id`` was already settled (decided or expired), if it was."""
    done = turn.state.decided.get(approval_id)
    if done is None:
        return None
    return done


async def decide(
    turn: Turn,
    approval_id: str,
    *,
    approve: bool,
    by: Principal,
    reason: str | None,
    by_label: str | None = None,
) -> TurnResult:
    st = turn.state
    pending = st.pending_approval
    if pending is None or pending["approval_id"] != approval_id:
        done = decided_already(turn, approval_id)
        if done is not None:
            raise ApprovalError(f"approval {approval_id} was already {done}; nothing was run")
    if st.status != SessionStatus.AWAITING_APPROVAL or pending is None:
        raise InvalidSessionState(
            f"session {st.session_id} is '{st.status}' and waits for no approval"
        )
    if pending["approval_id"] != approval_id:
        raise ApprovalError(
            f"approval {approval_id} is not the one session {st.session_id} waits for "
            f"({pending['approval_id']}): it is stale or unknown. Decide on the pending one"
        )
    who = by_label or (by.user or "anonymous")
    refused = may_decide(turn, pending, by)
    if refused is not None:
        raise NotApprover(f"{who} cannot decide approval {approval_id}: {refused}")
    call = st.open_calls.get(pending["call_id"])
    if call is None or arguments_hash(call.name, call.arguments) != pending["args_hash"]:
        raise ApprovalError(  # the log itself would have to be inconsistent
            f"approval {approval_id} does not match the call it was requested for"
        )
    if turn.journal.lease.clock() > float(pending["expires_at"]):
        expire(turn, pending, call, who)
    else:
        turn.journal.emit(
            EventType.APPROVAL_DECIDED,
            {"approval_id": approval_id, "approved": approve, "by": who, "reason": reason},
        )
        turn.journal.status(SessionStatus.RUNNING, "approval decided")
        if not approve:
            why = f" ({reason})" if reason else ""
            whom = "the operator reviewing it" if pending.get("mode") == "operator" else "the user"
            turn.finish(
                ToolRun(
                    ToolResult(
                        call.id,
                        call.name,
                        f"{NOT_DONE} {whom} declined {pending['summary']}{why}. Do not do it; "
                        "tell the user, and ask what they would like instead.",
                    )
                )
            )
    await turn.journal.commit()
    return await turn.run_steps()


def expire(turn: Turn, pending: dict[str, Any], call: ToolCall, by: str) -> None:
    """The request lapsed: the call does not run and the model is told."""
    turn.journal.emit(EventType.APPROVAL_EXPIRED, {"approval_id": pending["approval_id"], "by": by})
    turn.journal.status(SessionStatus.RUNNING, "approval expired")
    turn.finish(
        ToolRun(
            ToolResult(
                call.id,
                call.name,
                f"{NOT_DONE} the request to approve {pending['summary']} expired before "
                "anyone decided, so it did not run. Ask the user again if it is still wanted.",
            )
        )
    )


async def reply_to_approval(turn: Turn, text: str) -> TurnResult:
    """A chat message while an approval is pending: a strict yes or no decides; else re-ask."""
    st = turn.state
    assert st.pending_approval is not None
    pending = PendingApproval.from_event(st.session_id, st.pending_approval)
    call = st.open_calls.get(pending.call_id)
    if call is not None and turn.journal.lease.clock() > pending.expires_at:
        # Too late to ask again: the request lapses now, and the turn goes on.
        expire(turn, st.pending_approval, call, "user")
        await turn.journal.commit()
        return await turn.run_steps()
    answer = parse_reply(text) if pending.mode == "user" else None
    if answer is None:
        turn.journal.emit(EventType.APPROVAL_REASKED, {"text": text})
        return await turn.pause()
    label = f"user:{st.user_id}" if st.user_id else "user"
    return await decide(
        turn,
        pending.id,
        approve=answer,
        by=Principal(user=st.user_id, tenant=st.tenant_id),
        reason=None,
        by_label=label,
    )
