"""One turn of one session: the step loop that ties the journal, the model caller and the gates.

A turn is a user message (or a decision, an answer, a resume) followed by
steps until the agent answers, pauses or stops. One step is one model call
(:class:`~tether.runtime.caller.ModelCaller`) plus the tool calls it asked
for, each passed through the gates (:mod:`tether.runtime.gates`) and then
run or refused; the :class:`~tether.runtime.journal.Journal` records every
event and commits after every step (and before a tool that is not
idempotent runs, so a crash never leaves an unsafe call that might run
twice).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tether.controls.honesty import unacknowledged
from tether.exceptions import ModelUnavailable, ProviderError, RateLimited
from tether.runtime import turn_approvals
from tether.runtime.caller import AgentServices, ModelCaller
from tether.runtime.claims import Done, honest_reply, unsupported_claims
from tether.runtime.compress import cheapest
from tether.runtime.context import build_request, context_block
from tether.runtime.execute import ToolEnv, ToolRun, call_cost, execute_tool
from tether.runtime.gates import RUN, CallCheck, Pause, Refuse, check_call
from tether.runtime.journal import Journal
from tether.runtime.leak import WITHHELD, prompt_leak
from tether.runtime.output import parse_output, reask_text
from tether.runtime.result import TurnResult
from tether.runtime.spend import LimitHit, OutOfBudget
from tether.runtime.taint import carries_untrusted, marker_for, spotlight_messages
from tether.runtime.turn_limits import compress_context, exhaust, too_long, wrap_up
from tether.spec.agent import Agent
from tether.spec.events import EventType, SessionStatus
from tether.spec.guard import GuardPolicy
from tether.spec.messages import Message, ToolCall, ToolResult
from tether.spec.model import ModelRequest, ModelResponse

if TYPE_CHECKING:  # the guards package builds its detector on import: load it when used
    from tether.controls.guards.judge import JudgeVerdict

__all__ = ["Interrupted", "Turn", "TurnKit"]

log = logging.getLogger("tether.runtime")


class Interrupted(Exception):
    """Internal: the runtime is shutting down; the turn stops at this step boundary."""


@dataclass(frozen=True, slots=True)
class TurnKit:
    """What a turn uses from its runtime besides the journal and the model caller."""

    tool_env: ToolEnv
    #: the agent's deps for this session, built on first use (``None``: it has none)
    deps: Callable[[], Awaitable[Any]] | None
    #: scan ``text`` from ``source`` by a guard policy: ``None`` or the decision as event data
    guard: Callable[[str, str, GuardPolicy, JudgeVerdict | None], dict[str, Any] | None]
    spotlight_secret: bytes
    #: whether the runtime is shutting down (turns stop at the next step boundary)
    closing: Callable[[], bool]


class Turn:
    """One turn of one session. Not shared between tasks."""

    __slots__ = (
        "agent",
        "allowed",
        "caller",
        "compress_failed",
        "failed_tools",
        "hit",
        "journal",
        "kit",
        "marker",
        "reasks",
        "specs",
        "spotlit",
        "state",
        "svc",
    )

    def __init__(
        self,
        agent: Agent,
        svc: AgentServices,
        journal: Journal,
        caller: ModelCaller,
        kit: TurnKit,
        *,
        allowed: frozenset[str] | None,
    ) -> None:
        self.agent = agent
        self.svc = svc
        self.journal = journal
        self.caller = caller
        self.kit = kit
        self.state = journal.state
        #: tools this turn's caller may trigger (``None``: all of the agent's)
        self.allowed = allowed
        #: the tools offered to the model (the agent's, or those the scopes allow)
        self.specs = svc.specs
        if allowed is not None:
            tools = svc.tools
            self.specs = tuple(s for s in svc.specs if s.name in allowed or s.name not in tools)
        #: tools whose calls ended in an error during this turn
        self.failed_tools: list[str] = []
        #: the tool-call limit that stopped a call this turn, if any
        self.hit: LimitHit | None = None
        self.compress_failed = False
        #: answers sent back this turn for not matching the output schema
        self.reasks = 0
        #: the session's spotlight marker (computed once, when untrusted content arrives)
        self.marker: str | None = None
        #: tool messages already spotlighted this turn (original id -> (original, wrapped))
        self.spotlit: dict[int, tuple[Message, Message]] = {}

    # the loop -----------------------------------------------------------------

    async def run_steps(self) -> TurnResult:
        """Steps until the agent answers, pauses, fails or reaches a limit."""
        st, limits = self.state, self.agent.limits
        started_step = st.step
        if st.open_calls and not await self.run_open_calls():
            return await self.pause()
        while self.hit is None:
            if st.step - started_step >= limits.max_steps_per_turn:
                return await self.fail(
                    f"the agent took {limits.max_steps_per_turn} steps without answering; the "
                    "turn was stopped (raise Limits.max_steps_per_turn if that is expected)"
                )
            if self.kit.closing():
                raise Interrupted
            if self.journal.lease_lost:
                self.journal.check_lease()
            st.step += 1
            try:
                response = await self.next_answer()
            except OutOfBudget as exc:
                return await self.out_of_budget(int(exc.args[0]) if exc.args else 0)
            except (RateLimited, ModelUnavailable, ProviderError) as exc:
                return await self.model_failed(exc)
            msg = response.message
            self.caller.record(response, msg)
            if not msg.tool_calls:
                done = await self.answer(msg.text)
                if done is not None:
                    return done
                continue
            if not await self.run_open_calls():
                return await self.pause()
        return await wrap_up(self, self.hit)

    async def next_answer(self) -> ModelResponse:
        """The model's next answer, compressing the context first at ``Budget.compress_at``."""
        request = self.request()
        estimate = self.caller.estimate(request)
        after = self.agent.budget.compress_after
        if (
            after is not None
            and not self.compress_failed
            and self.state.usage.total_tokens + estimate >= after
        ):
            if await compress_context(self):
                request = self.request()
                estimate = self.caller.estimate(request)
            else:
                self.compress_failed = True
        return await self.caller.ask(request, estimate)

    async def answer(self, text: str) -> TurnResult | None:
        """A final answer: checked, parsed, recorded; ``None`` when it is sent back (schema)."""
        missed = unacknowledged(text, self.failed_tools)
        if missed:
            log.warning(
                "session %s: the answer does not mention the failure of %s",
                self.state.session_id,
                ", ".join(missed),
            )
            self.journal.emit(EventType.UNACKNOWLEDGED_FAILURE, {"tools": missed})
        output = self.withhold_claims(self.withhold_leak(text))
        parsed: Any = None
        schema = self.agent.output_schema
        if schema is not None and output == text:
            parsed, errors = parse_output(output, schema)
            if errors:
                if self.reasks >= self.agent.output_retries:
                    return await self.fail(
                        "the answer did not match the output schema after "
                        f"{self.reasks + 1} tries: {'; '.join(errors)}"
                    )
                self.reasks += 1
                self.journal.emit(
                    EventType.OUTPUT_REASK,
                    {"errors": errors, "attempt": self.reasks, "text": reask_text(errors, schema)},
                )
                await self.journal.commit()
                return None
        self.journal.emit(EventType.TURN_COMPLETED, {"output": output})
        await self.journal.commit(release=True)
        return self.journal.result(output, data=parsed)

    async def model_failed(self, exc: RateLimited | ModelUnavailable | ProviderError) -> TurnResult:
        if isinstance(exc, RateLimited):
            data = {"limit": exc.limit, "scope": exc.scope, "key": exc.key}
            self.journal.emit(EventType.RATE_LIMITED, data | {"reset_at": exc.reset_at})
            return await self.fail(str(exc))
        if isinstance(exc, ProviderError) and not isinstance(exc, ModelUnavailable):
            return await self.fail(f"the model refused the request: {exc}")
        return await self.fail(str(exc))

    async def out_of_budget(self, estimate: int) -> TurnResult:
        """The next call does not fit in the budget.

        The session ends (``budget_exhausted``) when its tokens are spent. A
        request larger than the whole budget (a huge message; tool outputs
        are capped) fails only this turn: no tokens were spent on it, and the
        session takes the next message.
        """
        budget = self.agent.budget.max_tokens
        if budget is not None and estimate > budget:
            return await too_long(self, estimate, budget)
        return await exhaust(self)

    # tool calls ---------------------------------------------------------------

    async def run_open_calls(self) -> bool:
        """Run the step's calls that have no result yet, in order; ``False`` if one pauses.

        ``tool.started`` is recorded right before each call runs; before a
        tool that is not idempotent runs, everything so far (its intent
        included) is committed, so after a crash the runtime knows exactly
        which unsafe call may have run and never runs it again.
        """
        st = self.state
        done = st.partial_results
        for position, call in enumerate(list(st.open_calls.values())):
            if call.id in done:
                continue
            tool = self.svc.tools.get(call.name)
            decision = check_call(CallCheck(call, tool, position, self.agent, st, self.allowed))
            if isinstance(decision, Refuse):
                if decision.alert is not None:
                    self.alert(call, decision.alert)
                if decision.hit is not None:
                    self.hit = self.hit or decision.hit
                run = ToolRun(decision.result)
                if decision.started and tool is not None and tool.cost is not None:
                    run.cost = call_cost(tool, runs=1)[0]  # it may have run: its fixed price
                self.finish(run)
                continue
            if isinstance(decision, Pause):
                if decision.kind == "clarify":
                    self.journal.emit(
                        EventType.CLARIFY_ASKED, {"call_id": call.id, "question": decision.question}
                    )
                    self.journal.status(SessionStatus.AWAITING_USER, "clarify")
                elif st.pending_approval is None:
                    assert tool is not None
                    turn_approvals.request_approval(self, call, tool, tainted=decision.tainted)
                return False
            assert decision is RUN
            if self.journal.lease_lost:
                self.journal.check_lease()
            if tool is not None:
                self.journal.emit(
                    EventType.TOOL_STARTED,
                    {
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                        "idempotency_key": f"{st.session_id}:{st.step}:{call.id}",
                    },
                )
                if not tool.idempotent:
                    await self.journal.commit()
            await self.execute(call)
        await self.journal.commit()
        return True

    async def execute(self, call: ToolCall) -> None:
        st = self.state
        t0 = time.perf_counter()
        try:
            deps = None if self.kit.deps is None else await self.kit.deps()
        except Exception as exc:  # the app's factory: the tool cannot run without it
            log.exception("session %s: building the agent's deps failed", st.session_id)
            reason = f"{type(exc).__name__}: {exc}"[:500]
            text = (
                f"error: {call.name} could not be run: what it needs (its connection or "
                f"client) could not be set up ({reason}). It did not run; tell the user."
            )
            self.finish(ToolRun(ToolResult(call.id, call.name, text, is_error=True)))
            return
        run = await execute_tool(
            self.svc.tools,
            call,
            session_id=st.session_id,
            step=st.step,
            user_id=st.user_id,
            vars=st.vars,
            deps=deps,
            env=self.kit.tool_env,
        )
        tool = self.svc.tools.get(call.name)
        untrusted = tool is not None and carries_untrusted(tool, run.result, raised=run.raised)
        # A read tool whose author never said whether its output is trusted is
        # scanned too, and what the detector flags in it taints like untrusted
        # content (``tether audit`` asks the author to declare it).
        undeclared = (
            tool is not None
            and not untrusted
            and not tool.trust_declared
            and tool.risk.reads
            and not run.result.is_error
        )
        raw: str | None = None
        if (untrusted or undeclared) and self.agent.guard is not None:
            guarded = self.guard_tool_output(run.result)
            if guarded is None and untrusted and self.agent.guard.judge == "tool":
                guarded = await self.judge_tool_output(run.result)
            if guarded is not None:
                raw = run.result.content
                run.result = guarded
                untrusted = True
        self.finish(run, (time.perf_counter() - t0) * 1000, untrusted=untrusted, raw=raw)

    def guard_tool_output(
        self, result: ToolResult, verdict: JudgeVerdict | None = None
    ) -> ToolResult | None:
        """Scan an untrusted result: ``None`` if it passes, else it quarantined or tagged.

        ``verdict``: the model judge's, folded into the rules' scan.
        """
        policy = self.agent.guard
        assert policy is not None
        decision = self.kit.guard(result.content, "tool", policy, verdict)
        if decision is None:
            return None
        self.journal.emit(EventType.GUARD_FLAGGED, decision | {"tool": result.name})
        note = str(decision["message"])
        if decision["action"] == "quarantine":
            return ToolResult(result.call_id, result.name, note, result.is_error)
        return ToolResult(result.call_id, result.name, f"{note}\n{result.content}", result.is_error)

    async def judge_tool_output(self, result: ToolResult) -> ToolResult | None:
        """Ask the cheapest model whether an untrusted result the rules passed addresses an AI.

        One side call (within the token budget, never failing the turn),
        recorded as ``guard.judged`` with its usage and cost; a yes is acted on
        like a flag from the rules. See :mod:`tether.controls.guards.judge`.
        """
        # imported here: the guards package builds its detector on import
        from tether.controls.guards.judge import (
            MAX_ANSWER_TOKENS,
            JudgeVerdict,
            judge_request,
            verdict_of,
        )

        policy = self.agent.guard
        assert policy is not None
        caller = self.caller
        model = self.svc.models[cheapest(self.svc.models, caller.prices)]
        request = judge_request(result.content, max_chars=policy.judge_max_chars)
        try:
            async with asyncio.timeout(policy.judge_timeout):
                response = await caller.side_call(model, request, min_output=MAX_ANSWER_TOKENS)
        except TimeoutError:
            response = "timeout"
        except Exception as exc:  # a broken judge must not fail the turn: the rules already ran
            log.warning("session %s: the guard's judge failed: %r", self.state.session_id, exc)
            response = f"error: {type(exc).__name__}: {exc}"
        if isinstance(response, str):
            verdict = JudgeVerdict("unknown", response[:200], model.name)
        else:
            verdict = verdict_of(response)
        data: dict[str, Any] = {"tool": result.name, "call_id": result.call_id}
        data |= {"verdict": verdict.verdict, "reason": verdict.reason, "model": verdict.model}
        usage = None if isinstance(response, str) else response.usage
        if usage is not None:
            price = caller.price_of(verdict.model)
            data["cost"] = 0.0 if price is None else price.cost(usage)
        self.journal.emit(EventType.GUARD_JUDGED, data, usage)
        if not verdict.flagged:
            return None
        return self.guard_tool_output(result, verdict)

    def finish(
        self, run: ToolRun, ms: float = 0.0, *, untrusted: bool = False, raw: str | None = None
    ) -> None:
        """Record a call's result (``tool.finished``).

        A call of a tool with a ``cost`` carries ``cost`` (dollars; 0 when it
        was not charged: it did not run) and, when its cost function failed,
        ``cost_error``.
        """
        result = run.result
        data: dict[str, Any] = {
            "call_id": result.call_id,
            "name": result.name,
            "content": result.content,
            "is_error": result.is_error,
            "duration_ms": round(ms, 3),
        }
        if run.cost is not None:
            data["cost"] = run.cost
            if run.cost_error is not None:
                data["cost_error"] = run.cost_error
        else:
            tool = self.svc.tools.get(result.name)
            if tool is not None and tool.cost is not None:
                data["cost"] = 0.0
        if run.vars:
            data["vars"] = run.vars
        if run.original is not None:
            data["original"] = run.original
            data["original_chars"] = run.original_chars
        if untrusted:
            data["untrusted"] = True
            if raw is not None:  # what the tool returned, before the guard withheld or tagged it
                data["raw"] = raw
        if result.is_error:
            self.failed_tools.append(result.name)
        self.journal.emit(EventType.TOOL_FINISHED, data)

    def alert(self, call: ToolCall, reason: str) -> None:
        sid = self.state.session_id
        log.error("session %s: %s: %s; a person must check", sid, call.name, reason)
        data = {"reason": reason, "call_id": call.id, "tool": call.name}
        self.journal.emit(EventType.OPERATOR_ALERT, data)

    # pauses, clarify, failure -------------------------------------------------

    async def pause(self) -> TurnResult:
        """End the turn waiting for a decision (an approval) or an answer (clarify)."""
        await self.journal.commit(release=True)
        st = self.state
        question = None if st.pending_approval is not None else self.last_question()
        return self.journal.result(question or st.last_output)

    def last_question(self) -> str | None:
        for ev in reversed(self.journal.events):
            if ev.type == EventType.CLARIFY_ASKED:
                return str(ev.data["question"])
        return None

    def open_clarify(self) -> ToolCall | None:
        """The unanswered ``clarify`` call the session waits on, if any."""
        if self.state.status != SessionStatus.AWAITING_USER:
            return None
        for call in self.state.unanswered_calls():
            if call.name == "clarify" and call.name not in self.svc.tools:
                return call
        return None

    async def answer_clarify(self, call: ToolCall, text: str) -> TurnResult:
        """The user's message is the clarify call's result; the turn goes on."""
        self.journal.status(SessionStatus.RUNNING, "answered")
        self.finish(ToolRun(ToolResult(call.id, call.name, f"The user answered: {text}")))
        await self.journal.commit()
        return await self.run_steps()

    async def fail(self, reason: str) -> TurnResult:
        log.error("session %s failed: %s", self.state.session_id, reason)
        self.journal.status(SessionStatus.FAILED, reason)
        await self.journal.commit(release=True)
        return self.journal.result(None, error=reason)

    # context ------------------------------------------------------------------

    def withhold_claims(self, text: str) -> str:
        """``text``, or an honest sentence if it says an action was done that no tool did.

        What supports a claim: the calls that succeeded in this session (an
        answer may restate an earlier turn's action), declined and expired
        approvals excluded, and results of untrusted tools counting as
        actions only, never as evidence (a planted page cannot say "your
        order is cancelled" for the agent). See :mod:`tether.runtime.claims`.
        """
        if not unsupported_claims(text):  # no claim at all (most answers): no history walk
            return text
        done = self.succeeded()
        claims = unsupported_claims(text, done)
        if not claims:
            return text
        log.warning(
            "session %s: the answer claims %s, which no tool did; withheld",
            self.state.session_id,
            "; ".join(repr(c) for c in claims),
        )
        self.journal.emit(EventType.UNSUPPORTED_CLAIM, {"claims": claims, "text": text})
        return honest_reply(claims, done)

    def succeeded(self) -> list[Done]:
        """(tool, result) of every call that succeeded in the session, oldest first."""
        tools = self.svc.tools
        done: list[Done] = []
        for m in self.state.messages:
            if m.role != "tool":
                continue
            for r in m.results:
                tool = tools.get(r.name)
                if tool is None or r.is_error:  # declines are left out by the claims check
                    continue
                done.append((tool, "" if tool.untrusted_output else r.content))
        return done

    def withhold_leak(self, text: str, *, where: str = "answer") -> str:
        """``text``, or :data:`~tether.runtime.leak.WITHHELD` if it gives the system prompt away.

        ``where``: ``answer`` (a final answer) or ``approval`` (the model's
        explanation shown with an approval request)."""
        why = prompt_leak(text, self.agent.instructions, self.svc.canary)
        if why is None:
            return text
        log.warning(
            "session %s: the %s repeats the system prompt (%s); withheld",
            self.state.session_id,
            "answer" if where == "answer" else "approval explanation",
            why,
        )
        data = {"reason": why} if where == "answer" else {"reason": why, "where": where}
        self.journal.emit(EventType.ANSWER_WITHHELD, data)
        return WITHHELD

    def request(self) -> ModelRequest:
        """The next model request: the history, untrusted results spotlighted."""
        st, svc = self.state, self.svc
        request = build_request(self.agent, st.messages, self.specs, system=svc.system)
        if st.context:
            if st.context_message is None:
                st.context_message = context_block(st.context)
            request = replace(request, messages=(st.context_message, *request.messages))
        if not st.untrusted:
            return request
        if self.marker is None:
            self.marker = marker_for(self.kit.spotlight_secret, st.session_id)
        messages = spotlight_messages(
            request.messages, svc.untrusted_tools, self.marker, self.spotlit, st.untrusted_calls
        )
        return replace(request, messages=tuple(messages))
