"""What a turn does at a cost limit: compress the context, wrap up after a cap, end on the budget.

Functions of a :class:`~tether.runtime.turn.Turn` (split from it to keep the
step loop readable): :func:`compress_context` replaces older turns by a
summary (see :mod:`tether.runtime.compress`), :func:`wrap_up` makes the last,
tool-less call after a tool-call cap or a loop, and :func:`exhaust` ends a
session whose budget cannot pay for another call.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from tether.controls.budget import estimate_messages
from tether.exceptions import RateLimited, RunError
from tether.runtime.calls import call_model_chain
from tether.runtime.compress import (
    cheapest,
    digest,
    split_point,
    summary_message,
    summary_request,
)
from tether.runtime.ports import SessionStatus
from tether.runtime.result import TurnResult
from tether.runtime.spend import (
    OutOfBudget,
    exhausted_notice,
    partial_answer,
    wrap_up_fallback,
    wrap_up_request,
)
from tether.spec.events import Event, EventType
from tether.spec.messages import Message, Usage

if TYPE_CHECKING:
    from tether.runtime.turn import Turn

__all__ = ["compress_context", "exhaust", "wrap_up"]

log = logging.getLogger("tether.runtime")


def _discard(_ev: Event) -> None:
    return None


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
    pick = cheapest(turn.svc.models, turn.rt.prices)
    model = turn.svc.models[pick]
    request = summary_request(old, max_tokens=budget.summary_tokens)
    reason: str | None = None
    try:
        reserved = await turn._reserve(request, turn._estimate(request), 16)
    except RateLimited as exc:
        reserved, reason = None, str(exc)
    if reserved is None:
        reason = reason or "the summary call does not fit in the token budget"
    else:
        request, held, daily = reserved
        env = turn._env()
        quiet = replace(env, sink=_discard)  # the summary is not streamed to the user
        try:
            answer = await call_model_chain((model,), request, turn.agent, quiet)
        except RunError as exc:
            await turn._settle(held, daily, None)
            reason = str(exc)
        else:
            await turn._settle(held, daily, answer.response.usage.total_tokens)
    if reason is not None:
        log.warning("session %s: context not compressed: %s", st.session_id, reason)
        turn.compress_failed = True
        turn.emit(EventType.COMPRESSION_FAILED, {"reason": reason})
        return False
    response = answer.response
    turn.side_usage = turn.side_usage + response.usage
    before = estimate_messages(st.messages)
    calls = digest(old)
    text = summary_message(response.message.text, st.vars, calls)
    after = estimate_messages([Message.user(text), *st.messages[cut:]])
    price = turn.rt.price_of(response.model)
    turn.emit(
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


async def wrap_up(turn: Turn, events: list[Event], usage: Usage) -> TurnResult:
    """A tool-call limit was reached: one last call without tools, and the turn ends."""
    st = turn.state
    hit = turn.hit
    assert hit is not None
    log.warning("session %s: %s; ending the turn with a summary", st.session_id, hit.why)
    turn.emit(EventType.LIMIT_REACHED, hit.to_dict())
    st.step += 1
    request = turn._request()
    try:
        response = await turn._ask(wrap_up_request(request, hit))
    except OutOfBudget:
        return await exhaust(turn, events, usage)
    except RunError as exc:
        log.warning("session %s: the wrap-up call failed: %s", st.session_id, exc)
        text = wrap_up_fallback(hit)
    else:
        usage = usage + response.usage
        text = turn._withhold_leak(response.message.text.strip()) or wrap_up_fallback(hit)
        # Calls the model asked for anyway are dropped: the turn is over.
        msg = Message(role="assistant", text=text, model=response.message.model)
        turn._emit_response(response, msg, {"wrap_up": hit.limit})
    turn.emit(EventType.TURN_COMPLETED, {"output": text, "stopped": hit.limit})
    await turn.commit(release=True)
    return TurnResult(
        st.session_id,
        st.status,
        text,
        usage,
        events,
        stop_reason=hit.limit,
        cost=turn._cost(),
    )


async def exhaust(turn: Turn, events: list[Event], usage: Usage) -> TurnResult:
    """The budget cannot pay for another call: end the session cleanly."""
    st = turn.state
    budget = turn.agent.budget
    usage, turn.side_usage = usage + turn.side_usage, Usage()  # a summary made this turn
    partial = partial_answer(st.messages)
    notice = exhausted_notice(budget, st.usage.total_tokens)
    log.warning("session %s: token budget spent; the session ends", st.session_id)
    turn.emit(
        EventType.BUDGET_EXHAUSTED,
        {"max_tokens": budget.max_tokens, "used": st.usage.total_tokens, "partial": partial},
    )
    turn.emit(
        EventType.SESSION_STATUS,
        {"status": SessionStatus.BUDGET_EXHAUSTED, "reason": notice},
    )
    await turn.commit(release=True)
    output = f"{partial}\n\n{notice}" if partial else notice
    return TurnResult(
        st.session_id,
        st.status,
        output,
        usage,
        events,
        stop_reason=SessionStatus.BUDGET_EXHAUSTED,
        cost=turn._cost(),
    )
