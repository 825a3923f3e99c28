"""The model caller of one turn: budget reservation and settlement, estimates, degraded answers.

Every model call a turn makes (an answer, a context summary, the wrap-up
after a tool-call limit) goes through :class:`ModelCaller`, which

1. estimates the request's input tokens (the agent's fixed part, its system
   prompt and tool schemas, measured once per agent and per tool set);
2. reserves the call in the session's token budget and in the per-user
   daily limits (:meth:`ModelCaller.ask` raises :class:`~tether.runtime.spend.OutOfBudget`
   when it cannot fit), calls the chain through the reliability layer
   (:func:`~tether.runtime.calls.call_model_chain`), then settles the
   reservation to the usage the provider reported;
3. marks an answer that came from a fallback model as degraded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tether.controls.budget import Reservation, TokenLedger, estimate_fixed, estimate_tokens
from tether.exceptions import RateLimited, RunError
from tether.runtime.calls import CallEnv, call_model_chain
from tether.runtime.journal import Journal
from tether.runtime.spend import OutOfBudget
from tether.spec.agent import Agent
from tether.spec.events import Event, EventType
from tether.spec.messages import Message
from tether.spec.model import Model, ModelRequest, ModelResponse, ToolSpec
from tether.spec.pricing import Price, PriceTable
from tether.spec.tools import Tool

if TYPE_CHECKING:
    from tether.controls.ratelimit import RateLimiter, TokenHold

__all__ = ["AgentServices", "ModelCaller"]

log = logging.getLogger("tether.runtime")


@dataclass(slots=True)
class AgentServices:
    """What the runtime built for one agent version: models, tools, prompt."""

    models: tuple[Model, ...]
    tools: dict[str, Tool]
    specs: tuple[ToolSpec, ...]
    system: str
    #: the canary token at the end of ``system`` (see runtime.leak)
    canary: str = ""
    #: names of the tools whose results are untrusted (spotlighted, taint the session)
    untrusted_tools: frozenset[str] = frozenset()
    #: estimated tokens of the system prompt and tool schemas (set at the first call)
    fixed_tokens: int | None = None


def _discard(_ev: Event) -> None:
    return None


class ModelCaller:
    """Budgeted, reliable model calls for one turn."""

    __slots__ = (
        "agent",
        "degraded_from",
        "env",
        "estimates",
        "fixed_tokens",
        "journal",
        "latency_ms",
        "ledger",
        "limiter",
        "price_of",
        "prices",
        "svc",
    )

    def __init__(
        self,
        agent: Agent,
        svc: AgentServices,
        journal: Journal,
        env: CallEnv,
        limiter: RateLimiter | None,
        prices: PriceTable,
        price_of: Callable[[str], Price | None],
    ) -> None:
        self.prices = prices
        self.price_of = price_of
        self.agent = agent
        self.svc = svc
        self.journal = journal
        self.env = env
        self.limiter = limiter
        #: the primary model's name when the last answer came from a fallback
        self.degraded_from: str | None = None
        self.latency_ms = 0.0
        #: the session's token account, opened at the turn's first model call
        self.ledger: TokenLedger | None = None
        #: tokens of system + tools when they are not the agent's (a caller's scopes)
        self.fixed_tokens: int | None = None
        #: token estimates of messages already measured this turn
        self.estimates: dict[int, tuple[Message, int]] = {}

    # budget -------------------------------------------------------------------

    def _ledger(self) -> TokenLedger:
        ledger = self.ledger
        if ledger is None:
            spent = self.journal.state.usage.total_tokens
            ledger = self.ledger = TokenLedger(self.agent.budget.max_tokens, spent)
        return ledger

    @property
    def remaining(self) -> int | None:
        """Tokens left in the session's budget (``None``: no budget)."""
        return self._ledger().remaining

    def estimate(self, request: ModelRequest) -> int:
        """Estimated input tokens of ``request`` (the fixed part measured once)."""
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

    async def _reserve(
        self, request: ModelRequest, estimate: int, min_output: int
    ) -> tuple[ModelRequest, Reservation, TokenHold | None] | None:
        ledger = self._ledger()
        held = ledger.reserve(estimate, request.max_tokens, min_output=min_output)
        if held is None:
            return None
        if held.max_output != request.max_tokens:
            request = replace(request, max_tokens=held.max_output)
        if self.limiter is None:
            return request, held, None
        st = self.journal.state
        try:
            daily = await self.limiter.reserve_tokens(st.user_id, st.tenant_id, held.tokens)
        except BaseException:
            ledger.cancel(held)
            raise
        return request, held, daily

    async def _settle(self, held: Reservation, daily: TokenHold | None, used: int | None) -> None:
        ledger = self._ledger()
        if used is None:
            ledger.cancel(held)
        else:
            ledger.settle(held, used)
        if daily is not None and self.limiter is not None:
            await self.limiter.settle_tokens(daily, used or 0)

    # calls --------------------------------------------------------------------

    async def ask(self, request: ModelRequest, estimate: int | None = None) -> ModelResponse:
        """The turn's next answer: reserve, call the chain, settle, mark a fallback's answer.

        Raises :class:`OutOfBudget` when the call cannot fit in the budget,
        ``RateLimited`` when a daily token limit refuses it, and the chain's
        ``RunError`` when no model could answer.
        """
        if estimate is None:
            estimate = self.estimate(request)
        reserved = await self._reserve(request, estimate, self.agent.budget.min_answer_tokens)
        if reserved is None:
            raise OutOfBudget(estimate)
        request, held, daily = reserved
        env = self.env
        env.step = self.journal.state.step
        try:
            answer = await call_model_chain(self.svc.models, request, self.agent, env)
        except BaseException:
            await self._settle(held, daily, None)
            raise
        response = answer.response
        used = response.usage.total_tokens
        if daily is None:
            self._ledger().settle(held, used)
        else:
            await self._settle(held, daily, used)
        self.journal.usage = self.journal.usage + response.usage
        self.latency_ms = answer.latency_ms
        if answer.index == 0:
            self.degraded_from = None
            return response
        self.degraded_from = self.svc.models[0].name
        msg = response.message
        marked = replace(msg, model=msg.model or answer.model.name, degraded=True)
        return replace(response, message=marked)

    async def side_call(
        self, model: Model, request: ModelRequest, *, min_output: int
    ) -> ModelResponse | str:
        """A call whose answer is not streamed to the user (a context summary).

        Returns the response, or why there is none (it does not fit in the
        budget, a daily limit refused it, the model failed): a side call
        never fails the turn.
        """
        try:
            reserved = await self._reserve(request, self.estimate(request), min_output)
        except RateLimited as exc:
            return str(exc)
        if reserved is None:
            return "the call does not fit in the token budget"
        request, held, daily = reserved
        quiet = replace(self.env, sink=_discard, step=self.journal.state.step)
        try:
            answer = await call_model_chain((model,), request, self.agent, quiet)
        except RunError as exc:
            await self._settle(held, daily, None)
            return str(exc)
        await self._settle(held, daily, answer.response.usage.total_tokens)
        self.journal.usage = self.journal.usage + answer.response.usage
        return answer.response

    def record(
        self, response: ModelResponse, msg: Message, extra: dict[str, Any] | None = None
    ) -> None:
        """Record an answer (``model.response``): its cost, latency, and whether degraded."""
        data: dict[str, Any] = {
            "message": msg.to_dict(),
            "model": response.model,
            "stop_reason": response.stop_reason,
            "latency_ms": self.latency_ms,
        }
        price = self.price_of(response.model)
        data["cost"] = 0.0 if price is None else price.cost(response.usage)
        if price is None:
            data["priced"] = False
        if self.degraded_from:
            data["degraded"] = True
            data["primary"] = self.degraded_from
        if extra:
            data.update(extra)
        self.journal.emit(EventType.MODEL_RESPONSE, data, response.usage, msg)
