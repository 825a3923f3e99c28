"""One turn of one session: the step loop, tool calls, approvals and clarify.

A :class:`Turn` holds the session's lease for the turn. It folds every event
it emits into the :class:`~tether.runtime.state.SessionState`, queues it for
the next commit, and commits after every step (and before a tool that is not
idempotent runs). :class:`~tether.runtime.runtime.Runtime` opens and closes
turns; this module is the loop inside them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tether.controls.budget import (
    Reservation,
    TokenLedger,
    estimate_fixed,
    estimate_tokens,
)
from tether.controls.honesty import unacknowledged
from tether.exceptions import (
    ModelUnavailable,
    ProviderError,
    RateLimited,
    RunError,
)
from tether.runtime import turn_approvals
from tether.runtime.approvals import (
    CLARIFY,
    PendingApproval,
    needs_approval,
)
from tether.runtime.calls import CallEnv, call_model_chain
from tether.runtime.context import build_request, context_block
from tether.runtime.execute import ToolEnv, execute_tool, outcome_unknown
from tether.runtime.leak import WITHHELD, prompt_leak
from tether.runtime.output import parse_output, reask_text
from tether.runtime.ports import SessionRecord, SessionStatus
from tether.runtime.result import TurnResult
from tether.runtime.spend import (
    LimitHit,
    OutOfBudget,
    over_limit,
)
from tether.runtime.state import SessionState
from tether.runtime.taint import (
    marker_for,
    spotlight_messages,
    tainted_action,
)
from tether.runtime.turn_limits import compress_context, exhaust, wrap_up
from tether.spec.agent import Agent
from tether.spec.events import Event, EventType
from tether.spec.messages import Message, ToolCall, ToolResult, Usage
from tether.spec.model import Model, ModelRequest, ModelResponse, ToolSpec
from tether.spec.tools import Tool

if TYPE_CHECKING:
    from tether.controls.ratelimit import Slots, TokenHold
    from tether.runtime.runtime import Runtime

__all__ = ["AgentServices", "EventSink", "Turn", "TurnResult"]

log = logging.getLogger("tether.runtime")

EventSink = Callable[[Event], None]


@dataclass(slots=True)
class AgentServices:
    """What the runtime built for one agent version: models, tools, deps."""

    models: tuple[Model, ...]
    tools: dict[str, Tool]
    specs: tuple[ToolSpec, ...]
    system: str
    deps: Any
    #: the canary token at the end of ``system`` (see runtime.leak)
    canary: str = ""
    #: names of the tools whose results are untrusted (spotlighted, taint the session)
    untrusted_tools: frozenset[str] = frozenset()
    #: estimated tokens of the system prompt and tool schemas (set at the first call)
    fixed_tokens: int | None = None


def _taint_blocked(call: ToolCall, untrusted: list[tuple[str, str]]) -> ToolResult:
    sources = ", ".join(sorted({source for source, _ in untrusted}))
    return ToolResult(
        call.id,
        call.name,
        f"not executed: this conversation contains content from outside ({sources}), and "
        f"the policy does not allow {call.name} after that. Tell the user a person must do it.",
        is_error=True,
    )


def _last_question(events: list[Event]) -> str | None:
    for ev in reversed(events):
        if ev.type == EventType.CLARIFY_ASKED:
            return str(ev.data["question"])
    return None


class Turn:
    """One turn of one session, holding its lease. Not shared between tasks."""

    __slots__ = (
        "agent",
        "allowed",
        "call_env",
        "compress_failed",
        "cost0",
        "degraded_from",
        "estimates",
        "failed_tools",
        "fixed_tokens",
        "hit",
        "latency_ms",
        "ledger",
        "marker",
        "pending",
        "reasks",
        "record",
        "released",
        "rt",
        "side_usage",
        "sink",
        "slots",
        "specs",
        "spotlit",
        "state",
        "stored",
        "svc",
        "tool_env",
    )

    def __init__(
        self,
        rt: Runtime,
        agent: Agent,
        svc: AgentServices,
        record: SessionRecord,
        state: SessionState,
        sink: EventSink,
    ) -> None:
        self.rt = rt
        self.agent = agent
        self.svc = svc
        self.record = record
        self.state = state
        self.sink = sink
        self.pending: list[Event] = []
        self.latency_ms = 0.0
        #: whether the session row exists in the store yet
        self.stored = True
        #: whether the lease was already given back by the turn's last commit
        self.released = False
        #: the primary model's name when the last answer came from a fallback
        self.degraded_from: str | None = None
        #: tools whose calls ended in an error during this turn
        self.failed_tools: list[str] = []
        #: what the reliability layer needs, built at the first model / tool call
        self.call_env: CallEnv | None = None
        self.tool_env: ToolEnv | None = None
        #: the session's token account, opened at the turn's first model call
        self.ledger: TokenLedger | None = None
        #: the tool-call limit that stopped a call this turn, if any
        self.hit: LimitHit | None = None
        self.compress_failed = False
        self.cost0 = state.cost
        #: usage of calls that are not answers (context summaries), for the turn's total
        self.side_usage = Usage()
        #: answers sent back this turn for not matching the output schema
        self.reasks = 0
        #: tools this turn's caller may trigger (``None``: all of the agent's)
        self.allowed: frozenset[str] | None = None
        #: the tools offered to the model (the agent's, or those the caller's scopes allow)
        self.specs = svc.specs
        #: tokens of system + ``specs`` when they are not the agent's (measured once)
        self.fixed_tokens: int | None = None
        #: the session's spotlight marker (computed once, when untrusted content arrives)
        self.marker: str | None = None
        #: the concurrency slots this turn holds (per-user limits), if any
        self.slots: Slots | None = None
        #: tool messages already spotlighted this turn (original id -> (original, wrapped))
        self.spotlit: dict[int, tuple[Message, Message]] = {}
        #: token estimates of messages already measured this turn
        self.estimates: dict[int, tuple[Message, int]] = {}

    # events ---------------------------------------------------------------

    def emit(
        self,
        type_: str,
        data: dict[str, Any],
        usage: Usage | None = None,
        message: Message | None = None,
    ) -> Event:
        """Create an event, fold it into the state, queue it for the next commit."""
        st = self.state
        st.event_count += 1
        ev = Event(type_, st.session_id, st.step, self.rt.clock(), data, usage, st.event_count)
        st.apply(ev, message)
        self.pending.append(ev)
        self.sink(ev)
        return ev

    def take_pending(self) -> list[Event]:
        out, self.pending = self.pending, []
        return out

    async def commit(self, *, release: bool = False) -> None:
        """Write the queued events and the row in one transaction.

        Renews the lease, or with ``release=True`` (the turn's last commit)
        gives it back in the same transaction.
        """
        st, rec = self.state, self.record
        rec.status = st.status
        rec.step = st.step
        rec.event_count = st.event_count
        rec.usage = st.usage
        rec.cost = st.cost
        rec.last_error = st.last_error
        rec.updated_at = self.rt.clock()
        if not self.stored:
            # A conflict (the id exists) writes nothing: the pending events are
            # dropped with it, so close() does not try to create it again.
            await self.rt.store.create(
                rec, self.take_pending(), owner=self.rt.owner, lease_ttl=self.rt.lease_ttl
            )
            self.stored = True
            return
        await self.rt.store.commit(
            rec,
            self.take_pending(),
            owner=self.rt.owner,
            lease_ttl=self.rt.lease_ttl,
            release=release,
        )
        self.released = release

    async def close(self) -> None:
        """Commit anything left (best effort) and release the lease.

        A new session that was refused before its first commit (its message
        blocked, a rate limit) is not created: its pending events are dropped.
        """
        try:
            if self.pending and self.stored:
                await self.commit()
        except RunError:
            log.exception("session %s: final commit failed", self.state.session_id)
        finally:
            self.rt._active.discard(self.state.session_id)
            if self.slots is not None and self.rt.limiter is not None:
                await self.rt.limiter.release_slots(self.slots)
                self.slots = None
            if self.stored and not self.released:
                await self.rt.store.release(self.state.session_id, owner=self.rt.owner)

    # the turn -------------------------------------------------------------

    async def add_user_message(self, text: str) -> None:
        self.emit(EventType.USER_MESSAGE, {"text": text})
        await self.commit()

    async def run_steps(self, events: list[Event]) -> TurnResult:
        st = self.state
        limits = self.agent.limits
        started_step = st.step
        turn_usage = Usage()
        # A resumed turn may stop between a tool call's intent and its result,
        # and a decided approval leaves the rest of its step to run.
        if st.open_calls and not await self._run_open_calls():
            return await self._pause(events, turn_usage)
        if self.hit is not None:
            return await wrap_up(self, events, turn_usage)
        while st.step - started_step < limits.max_steps_per_turn:
            st.step += 1
            try:
                response = await self._call_model()
            except OutOfBudget:
                return await exhaust(self, events, turn_usage)
            except RateLimited as exc:
                data = {"limit": exc.limit, "scope": exc.scope, "key": exc.key}
                self.emit(EventType.RATE_LIMITED, data | {"reset_at": exc.reset_at})
                return await self._fail(str(exc), events, turn_usage)
            except ModelUnavailable as exc:
                return await self._fail(str(exc), events, turn_usage)
            except ProviderError as exc:
                return await self._fail(f"the model refused the request: {exc}", events, turn_usage)
            turn_usage = turn_usage + response.usage
            if self.side_usage.total_tokens:
                turn_usage, self.side_usage = turn_usage + self.side_usage, Usage()
            msg = response.message
            calls = msg.tool_calls
            self._emit_response(response, msg)
            if not calls:
                missed = unacknowledged(msg.text, self.failed_tools)
                if missed:
                    log.warning(
                        "session %s: the answer does not mention the failure of %s",
                        st.session_id,
                        ", ".join(missed),
                    )
                    self.emit(EventType.UNACKNOWLEDGED_FAILURE, {"tools": missed})
                output = self._withhold_leak(msg.text)
                parsed: Any = None
                schema = self.agent.output_schema
                if schema is not None and output == msg.text:
                    parsed, errors = parse_output(output, schema)
                    if errors:
                        if self.reasks >= self.agent.output_retries:
                            return await self._fail(
                                "the answer did not match the output schema after "
                                f"{self.reasks + 1} tries: {'; '.join(errors)}",
                                events,
                                turn_usage,
                            )
                        self.reasks += 1
                        self.emit(
                            EventType.OUTPUT_REASK,
                            {
                                "errors": errors,
                                "attempt": self.reasks,
                                "text": reask_text(errors, schema),
                            },
                        )
                        await self.commit()
                        continue
                self.emit(EventType.TURN_COMPLETED, {"output": output})
                await self.commit(release=True)
                return TurnResult(
                    st.session_id,
                    st.status,
                    output,
                    turn_usage,
                    events,
                    cost=self._cost(),
                    data=parsed,
                )
            if not await self._run_open_calls():
                return await self._pause(events, turn_usage)
            if self.hit is not None:
                return await wrap_up(self, events, turn_usage)
        return await self._fail(
            f"the agent took {limits.max_steps_per_turn} steps without answering; "
            "the turn was stopped (raise Limits.max_steps_per_turn if that is expected)",
            events,
            turn_usage,
        )

    def _cost(self) -> float:
        return self.state.cost - self.cost0

    def _emit_response(
        self, response: ModelResponse, msg: Message, extra: dict[str, Any] | None = None
    ) -> None:
        data: dict[str, Any] = {
            "message": msg.to_dict(),
            "model": response.model,
            "stop_reason": response.stop_reason,
            "latency_ms": self.latency_ms,
        }
        price = self.rt.price_of(response.model)
        data["cost"] = 0.0 if price is None else price.cost(response.usage)
        if price is None:
            data["priced"] = False
        if self.degraded_from:
            data["degraded"] = True
            data["primary"] = self.degraded_from
        if extra:
            data.update(extra)
        self.emit(EventType.MODEL_RESPONSE, data, response.usage, msg)

    def _ledger(self) -> TokenLedger:
        ledger = self.ledger
        if ledger is None:
            spent = self.state.usage.total_tokens
            ledger = self.ledger = TokenLedger(self.agent.budget.max_tokens, spent)
        return ledger

    async def _call_model(self) -> ModelResponse:
        """One model answer through the reliability layer (retries, breakers, fallback).

        Compresses the context first when the tokens used so far plus this
        call's estimated input reach ``Budget.compress_at`` of the budget;
        raises :class:`OutOfBudget` when the call cannot fit in what is left.
        """
        st = self.state
        request = self._request()
        estimate = self._estimate(request)
        after = self.agent.budget.compress_after
        if (
            after is not None
            and not self.compress_failed
            and st.usage.total_tokens + estimate >= after
            and await compress_context(self)
        ):
            request = self._request()
            estimate = self._estimate(request)
        return await self._ask(request, estimate)

    def _estimate(self, request: ModelRequest) -> int:
        """Estimated input tokens of ``request`` (the agent's fixed part measured once)."""
        svc = self.svc
        if request.system != svc.system:
            return estimate_tokens(request, cache=self.estimates)
        if request.tools is not svc.specs:  # a caller's scopes hide some tools
            if self.fixed_tokens is None:
                self.fixed_tokens = estimate_fixed(request)
            return estimate_tokens(request, fixed=self.fixed_tokens, cache=self.estimates)
        if svc.fixed_tokens is None:
            svc.fixed_tokens = estimate_fixed(request)
        return estimate_tokens(request, fixed=svc.fixed_tokens, cache=self.estimates)

    def _env(self) -> CallEnv:
        st = self.state
        env = self.call_env
        if env is None:
            env = self.call_env = CallEnv(
                breakers=self.rt.breakers,
                sleep=self.rt.sleep,
                rng=self.rt.rng,
                emit=self.emit,
                sink=self.sink,
                session_id=st.session_id,
                step=st.step,
                clock=self.rt.clock,
                prepare=self.rt._prepare_model,
                prepared=self.rt._prepared,
            )
        env.step = st.step
        return env

    async def _reserve(
        self, request: ModelRequest, estimate: int, min_output: int
    ) -> tuple[ModelRequest, Reservation, TokenHold | None] | None:
        """Hold the call's tokens in the session budget and the daily limits.

        Returns the request (its output cap cut to fit) and the holds, or
        ``None`` when it does not fit in the session budget. Raises
        ``RateLimited`` when a daily token limit refuses it.
        """
        ledger = self._ledger()
        held = ledger.reserve(estimate, request.max_tokens, min_output=min_output)
        if held is None:
            return None
        if held.max_output != request.max_tokens:
            request = replace(request, max_tokens=held.max_output)
        limiter = self.rt.limiter
        if limiter is None:
            return request, held, None
        st = self.state
        try:
            daily = await limiter.reserve_tokens(st.user_id, st.tenant_id, held.tokens)
        except BaseException:
            ledger.cancel(held)
            raise
        return request, held, daily

    async def _settle(self, held: Reservation, daily: TokenHold | None, used: int | None) -> None:
        """Replace the holds by what the call used (``None``: it failed, nothing used)."""
        ledger = self._ledger()
        if used is None:
            ledger.cancel(held)
        else:
            ledger.settle(held, used)
        if daily is not None and self.rt.limiter is not None:
            await self.rt.limiter.settle_tokens(daily, used or 0)

    async def _ask(self, request: ModelRequest, estimate: int | None = None) -> ModelResponse:
        """Reserve the call in the budget, call the chain, settle to the reported usage."""
        if estimate is None:
            estimate = self._estimate(request)
        reserved = await self._reserve(request, estimate, self.agent.budget.min_answer_tokens)
        if reserved is None:
            raise OutOfBudget
        request, held, daily = reserved
        try:
            answer = await call_model_chain(self.svc.models, request, self.agent, self._env())
        except BaseException:
            await self._settle(held, daily, None)
            raise
        if daily is None:
            self._ledger().settle(held, answer.response.usage.total_tokens)
        else:
            await self._settle(held, daily, answer.response.usage.total_tokens)
        self.latency_ms = answer.latency_ms
        response = answer.response
        if answer.index > 0:
            msg = response.message
            self.degraded_from = self.svc.models[0].name
            response = ModelResponse(
                message=Message(
                    role=msg.role,
                    text=msg.text,
                    tool_calls=msg.tool_calls,
                    results=msg.results,
                    model=msg.model or answer.model.name,
                    degraded=True,
                    metadata=msg.metadata,
                ),
                usage=response.usage,
                model=response.model,
                stop_reason=response.stop_reason,
            )
        else:
            self.degraded_from = None
        return response

    async def _run_open_calls(self) -> bool:
        """Run the step's calls that have no result yet, in order.

        Returns ``False`` if one of them waits for approval.

        ``tool.started`` is emitted right before each call runs. Before a tool
        that is not idempotent runs, everything so far (its intent included) is
        committed, so after a crash the runtime knows exactly which unsafe call
        may have run and never runs it a second time: such a call, found
        started but without a result, is reported as "outcome unknown" and an
        operator is alerted. A call that needs approval and has none is not
        run: the approval is requested and the turn pauses there.
        """
        st = self.state
        cap = self.agent.limits.max_tool_calls_per_step
        tools = self.svc.tools
        done = st.partial_results
        gate = self.agent.approval.enabled
        for position, call in enumerate(list(st.open_calls.values())):
            if call.id in done:
                continue
            if position >= cap:
                result = ToolResult(
                    call.id,
                    call.name,
                    f"not executed: at most {cap} tool calls are run per step; "
                    "call the remaining tools one at a time",
                    is_error=True,
                )
                self._finish(result, 0.0, None)
                continue
            tool = tools.get(call.name)
            if tool is None and call.name == CLARIFY and self.agent.clarify:
                question = str(call.arguments.get("question") or "").strip()
                if question:
                    self.emit(EventType.CLARIFY_ASKED, {"call_id": call.id, "question": question})
                    self.emit(
                        EventType.SESSION_STATUS,
                        {"status": SessionStatus.AWAITING_USER, "reason": "clarify"},
                    )
                    return False
            if tool is not None and call.id in st.started and not tool.idempotent:
                self._alert(call, "outcome unknown: it started but never reported a result")
                self._finish(outcome_unknown(call), 0.0, None)
                continue
            taint = None
            if tool is not None and self.allowed is not None and call.name not in self.allowed:
                need = ", ".join(sorted(tool.scopes))
                self._finish(
                    ToolResult(
                        call.id,
                        call.name,
                        f"not executed: this user may not use {call.name} (it needs: {need}). "
                        "Tell them it is not available to them.",
                        is_error=True,
                    ),
                    0.0,
                    None,
                )
                continue
            if tool is not None and call.id not in st.approved:
                hit = over_limit(st, self.agent.limits, call)
                if hit is not None:
                    self.hit = self.hit or hit
                    self._finish(
                        ToolResult(
                            call.id, call.name, f"not executed: {hit.to_model}", is_error=True
                        ),
                        0.0,
                        None,
                    )
                    continue
                taint = tainted_action(self.agent, tool) if st.untrusted else None
                if taint == "block":
                    self._finish(_taint_blocked(call, st.untrusted), 0.0, None)
                    continue
            if (
                tool is not None
                and call.id not in st.approved
                and (taint == "approve" or (gate and needs_approval(self.agent, tool, call)))
            ):
                if st.pending_approval is None:
                    turn_approvals.request_approval(self, call, tool, tainted=taint == "approve")
                return False
            if tool is not None:
                self.emit(
                    EventType.TOOL_STARTED,
                    {
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                        "idempotency_key": f"{st.session_id}:{st.step}:{call.id}",
                    },
                )
                if not tool.idempotent:
                    await self.commit()
            await self._execute(call)
        await self.commit()
        return True

    def _running(self, reason: str) -> None:
        self.emit(EventType.SESSION_STATUS, {"status": SessionStatus.RUNNING, "reason": reason})

    async def _pause(self, events: list[Event], usage: Usage) -> TurnResult:
        """End the turn waiting for a decision (an approval) or an answer (clarify)."""
        st = self.state
        await self.commit(release=True)
        if st.pending_approval is None:
            question = _last_question(events) or st.last_output
            return TurnResult(st.session_id, st.status, question, usage, events, cost=self._cost())
        pending = PendingApproval.from_event(st.session_id, st.pending_approval)
        return TurnResult(
            st.session_id,
            st.status,
            pending.question(),
            usage,
            events,
            approval=pending,
            cost=self._cost(),
        )

    def open_clarify(self) -> ToolCall | None:
        """The unanswered ``clarify`` call the session waits on, if any."""
        if self.state.status != SessionStatus.AWAITING_USER:
            return None
        for call in self.state.unanswered_calls():
            if call.name == CLARIFY and call.name not in self.svc.tools:
                return call
        return None

    async def answer_clarify(self, call: ToolCall, text: str, events: list[Event]) -> TurnResult:
        """The user's message is the clarify call's result; the turn goes on."""
        self.emit(EventType.SESSION_STATUS, {"status": SessionStatus.RUNNING, "reason": "answered"})
        self._finish(ToolResult(call.id, call.name, f"The user answered: {text}"), 0.0, None)
        await self.commit()
        return await self.run_steps(events)

    def _alert(self, call: ToolCall, reason: str) -> None:
        sid = self.state.session_id
        log.error("session %s: %s: %s; a person must check", sid, call.name, reason)
        data = {"reason": reason, "call_id": call.id, "tool": call.name}
        self.emit(EventType.OPERATOR_ALERT, data)

    def restrict(self, scopes: Iterable[str] | None) -> None:
        """Limit the turn to the tools a caller holding ``scopes`` may trigger."""
        if scopes is None:
            self.allowed = None
            return
        held = frozenset(scopes)
        self.allowed = allowed = frozenset(t.name for t in self.agent.tools if t.scopes <= held)
        tools = self.svc.tools
        self.specs = tuple(s for s in self.svc.specs if s.name in allowed or s.name not in tools)

    def _withhold_leak(self, text: str) -> str:
        """``text``, or :data:`~tether.runtime.leak.WITHHELD` if it gives the system prompt away."""
        why = prompt_leak(text, self.agent.instructions, self.svc.canary)
        if why is None:
            return text
        log.warning(
            "session %s: the answer repeats the system prompt (%s); withheld",
            self.state.session_id,
            why,
        )
        self.emit(EventType.ANSWER_WITHHELD, {"reason": why})
        return WITHHELD

    def _request(self) -> ModelRequest:
        """The next model request: the history, untrusted results spotlighted."""
        st, svc = self.state, self.svc
        request = build_request(self.agent, st.messages, self.specs, system=svc.system)
        if st.context:
            if st.context_message is None:
                st.context_message = context_block(st.context)
            request = replace(request, messages=(st.context_message, *request.messages))
        if not svc.untrusted_tools or not st.untrusted:
            return request
        if self.marker is None:
            self.marker = marker_for(self.rt.spotlight_secret, st.session_id)
        messages = spotlight_messages(
            request.messages, svc.untrusted_tools, self.marker, self.spotlit
        )
        return replace(request, messages=tuple(messages))

    async def _execute(self, call: ToolCall) -> None:
        st = self.state
        t0 = time.perf_counter()
        run = await execute_tool(
            self.svc.tools,
            call,
            session_id=st.session_id,
            step=st.step,
            user_id=st.user_id,
            vars=st.vars,
            deps=self.svc.deps,
            env=self._tool_env(),
        )
        result, new_vars = run.result, run.vars
        tool = self.svc.tools.get(call.name)
        untrusted = tool is not None and tool.untrusted_output
        raw = result.content
        if untrusted and not result.is_error and self.agent.guard is not None:
            result = self._guard_tool_output(result)
        self._finish(
            result,
            (time.perf_counter() - t0) * 1000,
            new_vars,
            untrusted=untrusted,
            raw=raw if raw != result.content else None,
        )

    def _guard_tool_output(self, result: ToolResult) -> ToolResult:
        """Scan an untrusted result; quarantine or tag it by the agent's guard policy."""
        policy = self.agent.guard
        assert policy is not None
        decision = self.rt.guard(result.content, "tool", policy)
        if decision is None:
            return result
        self.emit(EventType.GUARD_FLAGGED, decision | {"tool": result.name})
        note = str(decision["message"])
        if decision["action"] == "quarantine":
            return ToolResult(result.call_id, result.name, note, result.is_error)
        return ToolResult(result.call_id, result.name, f"{note}\n{result.content}", result.is_error)

    def _tool_env(self) -> ToolEnv:
        env = self.tool_env
        if env is None:
            env = self.tool_env = ToolEnv(
                agent=self.agent.name,
                breakers=self.rt.breakers,
                breaker=self.agent.breaker,
                retry=self.agent.retry,
                sleep=self.rt.sleep,
                rng=self.rt.rng,
                emit=self.emit,
            )
        return env

    def _finish(
        self,
        result: ToolResult,
        ms: float,
        new_vars: dict[str, Any] | None,
        *,
        untrusted: bool = False,
        raw: str | None = None,
    ) -> None:
        data: dict[str, Any] = {
            "call_id": result.call_id,
            "name": result.name,
            "content": result.content,
            "is_error": result.is_error,
            "duration_ms": round(ms, 3),
        }
        if new_vars:
            data["vars"] = new_vars
        if untrusted and not result.is_error:
            data["untrusted"] = True
            if raw is not None:  # what the tool returned, before the guard withheld or tagged it
                data["raw"] = raw
        if result.is_error:
            self.failed_tools.append(result.name)
        self.emit(EventType.TOOL_FINISHED, data)

    async def _fail(self, reason: str, events: list[Event], usage: Usage) -> TurnResult:
        log.error("session %s failed: %s", self.state.session_id, reason)
        self.emit(EventType.SESSION_STATUS, {"status": SessionStatus.FAILED, "reason": reason})
        await self.commit(release=True)
        st = self.state
        return TurnResult(
            st.session_id, st.status, None, usage, events, error=reason, cost=self._cost()
        )
