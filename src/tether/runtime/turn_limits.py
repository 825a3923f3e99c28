"""What a turn does at a cost limit: compress the context, wrap up after a cap, end on the budget.

:func:`compress_context` replaces older turns by a summary (see
:mod:`tether.runtime.compress`), :func:`wrap_up` makes the last, tool-less
call after a tool-call cap or a loop, :func:`exhaust` ends a session whose
budget is spent, and :func:`too_long` fails a turn whose context does not
fit in what is left of a budget that is not spent (the session goes on).
Each uses only the public methods of the turn's journal and model caller.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tether.controls.budget import estimate_messages
from tether.exceptions import RunError
from tether.runtime.compress import (
    cheapest,
    digest,
    split_point,
    summary_message,
    summary_request,
)
from tether.runtime.result import TurnResult
from tether.runtime.spend import (
    LimitHit,
    OutOfBudget,
    exhausted_notice,
    partial_answer,
    wrap_up_fallback,
    wrap_up_request,
)
from tether.spec.events import EventType, SessionStatus
from tether.spec.messages import Message

if TYPE_CHECKING:
    from tether.runtime.turn import Turn

__all__ = ["compress_context", "exhaust", "too_long", "wrap_up"]

log = logging.getLogger("tether.runtime")


async def compress_context(turn: Turn) -> bool:
    """Replace the older part of the conversation by a summary (``context.compressed``).

    Never fails the turn: if no summary can be made (the model is down, or
    the summary call does not fit in the budget), a
    ``context.compression_failed`` event says why and the turn goes on
    with the full context.
    """
    st = turn.state
    budget = turn.agent.budget
    cut = split_point(st.messages, budget.keep_turns)
    if cut is None:
        return False
    old = st.messages[:cut]
    caller = turn.caller
    model = turn.svc.models[cheapest(turn.svc.models, caller.prices)]
    request = summary_request(old, max_tokens=budget.summary_tokens)
    response = await caller.side_call(model, request, min_output=16)
    if isinstance(response, str):
        log.warning("session %s: context not compressed: %s", st.session_id, response)
        turn.journal.emit(EventType.COMPRESSION_FAILED, {"reason": response})
        return False
    before = estimate_messages(st.messages)
    calls = digest(old, turn.svc.untrusted_tools)
    text = summary_message(response.message.text, st.vars, calls)
    after = estimate_messages([Message.user(text), *st.messages[cut:]])
    price = caller.price_of(response.model)
    turn.journal.emit(
        EventType.CONTEXT_COMPRESSED,
        {
            "upto": cut,
            "text": text,
            "digest": calls,
            "tokens_before": before,
            "tokens_after": after,
            "model": response.model,
            "cost": 0.0 if price is None else price.cost(response.usage),
        },
        response.usage,
    )
    log.info(
        "session %s: compressed %d messages (~%d -> ~%d tokens)",
        st.session_id,
        cut,
        before,
        after,
    )
    return True


async def wrap_up(turn: Turn, hit: LimitHit) -> TurnResult:
    """A tool-call limit was reached: one last call without tools, and the turn ends."""
    st = turn.state
    log.warning("session %s: %s; ending the turn with a summary", st.session_id, hit.why)
    turn.journal.emit(EventType.LIMIT_REACHED, hit.to_dict())
    st.step += 1
    try:
        response = await turn.caller.ask(wrap_up_request(turn.request(), hit))
    except OutOfBudget:
        return await exhaust(turn)
    except RunError as exc:
        log.warning("session %s: the wrap-up call failed: %s", st.session_id, exc)
        text = wrap_up_fallback(hit)
    else:
        said = response.message.text.strip()
        text = turn.withhold_claims(turn.withhold_leak(said)) if said else wrap_up_fallback(hit)
        # Calls the model asked for anyway are dropped: the turn is over.
        msg = Message(role="assistant", text=text, model=response.message.model)
        turn.caller.record(response, msg, {"wrap_up": hit.limit})
    turn.journal.emit(EventType.TURN_COMPLETED, {"output": text, "stopped": hit.limit})
    await turn.journal.commit(release=True)
    return turn.journal.result(text, stop_reason=hit.limit)


async def exhaust(turn: Turn) -> TurnResult:
    """The budget is spent: end the session cleanly, with what was said so far."""
    st = turn.state
    budget = turn.agent.budget
    partial = partial_answer(st.messages)
    if partial:  # what the user reads passes the same checks as a final answer
        partial = turn.withhold_claims(turn.withhold_leak(partial))
    notice = exhausted_notice(budget, st.usage.total_tokens)
    log.warning("session %s: token budget spent; the session ends", st.session_id)
    turn.journal.emit(
        EventType.BUDGET_EXHAUSTED,
        {"max_tokens": budget.max_tokens, "used": st.usage.total_tokens, "partial": partial},
    )
    turn.journal.status(SessionStatus.BUDGET_EXHAUSTED, notice)
    await turn.journal.commit(release=True)
    output = f"{partial}\n\n{notice}" if partial else notice
    return turn.journal.result(output, stop_reason=SessionStatus.BUDGET_EXHAUSTED)


async def too_long(turn: Turn, estimate: int, budget: int) -> TurnResult:
    """The request is larger than the whole token budget: fail the turn, not the session.

    Nothing was sent to the model and no tokens were spent; the session
    stays usable (``failed`` takes a new message).
    """
    return await turn.fail(
        f"this request (about {estimate:,} tokens) is larger than the session's whole token "
        f"budget ({budget:,}); nothing was sent to the model. Send a shorter message, or "
        "start a new session"
    )
