"""Agent declarations: a versioned, frozen description of what an agent is.

An :class:`Agent` is pure data: instructions, a model chain, tools and
limits. The runtime turns model spec strings into providers at the edge, so
an agent can be declared, imported and inspected without any API key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.exceptions import ConfigError
from tether.spec.approval import ApprovalPolicy
from tether.spec.budget import Budget
from tether.spec.guard import GuardPolicy
from tether.spec.health import HealthCheck
from tether.spec.model import Model
from tether.spec.policy import BreakerPolicy, RetryPolicy
from tether.spec.tools import Tool
from tether.spec.toolsource import ToolSource

__all__ = ["Agent", "Limits"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Per-turn and per-call bounds. Every field has a safe default.

    - ``max_steps_per_turn``: model calls in one user turn before the turn
      fails cleanly (guards against an agent that never answers).
    - ``max_tool_calls_per_step``: tool calls honoured from one model response.
    - ``max_output_tokens``: the output cap passed to every model call.
    - ``model_timeout``: seconds one model call may take in total.
    - ``first_token_timeout``: seconds until a model call's first streamed
      event (text, or the whole answer); a model that has not started by then
      is treated as unavailable (retried, then the next model of the chain).
    - ``max_input_chars``: longest user message accepted.
    - ``max_tool_calls``: tool calls one session may make (default 25), and
      ``max_tool_calls_per_turn`` in one turn (default 15). On reaching
      either, the runtime makes one last model call without tools, asking for
      a summary of what is known so far, and ends the turn with it.
    - ``loop_threshold``: the same tool called with the same arguments this
      many times in one turn is a loop; it ends the turn the same way.
    """

    max_steps_per_turn: int = 25
    max_tool_calls_per_step: int = 8
    max_output_tokens: int = 1024
    model_timeout: float = 120.0
    first_token_timeout: float = 60.0
    max_input_chars: int = 32_000
    max_tool_calls: int = 25
    max_tool_calls_per_turn: int = 15
    loop_threshold: int = 3

    def __post_init__(self) -> None:
        if self.loop_threshold < 2:
            raise ConfigError("Limits.loop_threshold must be at least 2")
        for name in (
            "max_tool_calls",
            "max_tool_calls_per_turn",
            "max_steps_per_turn",
            "max_tool_calls_per_step",
            "max_output_tokens",
            "max_input_chars",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"Limits.{name} must be at least 1")
        if self.model_timeout <= 0 or self.first_token_timeout <= 0:
            raise ConfigError("Limits.model_timeout and first_token_timeout must be positive")


ModelRef = str | Model


@dataclass(frozen=True, slots=True, kw_only=True)
class Agent:
    """A versioned agent.

    - ``name``, ``version``: identify it; sessions remember both.
    - ``instructions``: the fixed system prompt for this version. It is never
      built from user data; per-session data goes into session vars.
    - ``models``: the chain, primary first, as spec strings (``anthropic:MODEL``,
      ``openai:MODEL``, ``local``, ``local:PATH.gguf``, ``scripted``) or
      :class:`~tether.spec.model.Model` objects.
    - ``tools``: the only tools this agent can call: :class:`~tether.spec.tools.Tool`
      objects, and tool sources (``tether.mcp_server(...)``: an MCP server's
      tools). A source is moved out of ``tools`` into ``toolsets`` when the
      agent is built, so ``tools`` holds only the tools declared in code; the
      runtime connects each source on the agent's first turn and adds its tools
      to the ones the agent may call (a name clash with a declared tool is a
      :class:`~tether.exceptions.ConfigError` then).
    - ``toolsets``: the tool sources taken from ``tools`` (or given here).
    - ``deps``: a factory whose result tools receive as ``ctx.deps`` (a
      database handle, a client). With no argument it is called once per
      runtime; with one (``deps=lambda s: Shop(tenant=s.principal.tenant)``)
      once per session, given a :class:`~tether.runtime.SessionInfo` (the
      session id, its principal, its context), so each user or tenant gets
      its own. Either may be async; what it returns is closed (``aclose``
      or ``close``) when the runtime closes, or when a per-session one is
      evicted (``Runtime(max_session_deps=...)``).
    - ``test_deps``: a factory like ``deps`` (no argument, or the
      :class:`~tether.runtime.SessionInfo`; sync or async) returning a
      throwaway copy of the dependencies, for ``tether tools test``, which
      calls every tool with generated arguments (writes included): a fresh
      demo database in memory or in a temporary file, never the real one.
      What it returns is closed after use like ``deps``. The runtime never
      calls it; an agent with ``deps`` but without ``test_deps`` is refused
      by ``tether tools test``.
    - ``temperature``: passed to the model; ``None`` keeps the provider's default.
    - ``tool_choice``: ``auto`` (default: the model decides) or ``required``:
      the model must call a tool before it may answer. While no tool result
      has come in since the user's last message, each request demands a
      call; after one, the choice is back to ``auto`` so the model can reply
      (without that reset a required choice loops forever). Use it for small
      models that otherwise answer from memory. ``once``: one round of tool
      calls per turn, then an answer. The first request of a turn demands a
      call, and once the tools have answered the next request allows none,
      so a small model cannot call the same lookup again and again. For an
      agent whose every question needs exactly one lookup.
    - ``retry``: the :class:`~tether.spec.policy.RetryPolicy` for model calls
      and for idempotent tools without their own.
    - ``breaker``: the :class:`~tether.spec.policy.BreakerPolicy` for the
      breakers on each model of the chain and each tool.
    - ``no_downgrade``: never answer from a backup model. An agent that
      exposes a tool marked ``critical`` never does either; when its primary
      model is unavailable the turn fails with a message the user can act on.
    - ``approval``: the :class:`~tether.spec.approval.ApprovalPolicy`: which
      calls stop for a person's decision, who decides, and for how long a
      request stays valid.
    - ``clarify``: offer the model the built-in ``clarify`` tool, to ask the
      user a question when it is unsure; the session then waits in
      ``awaiting_user`` and the next message is the answer.
    - ``budget``: the session's token :class:`~tether.spec.budget.Budget`
      (compression at 80%, a clean end at 100%).
    - ``guard``: the prompt-injection :class:`~tether.spec.guard.GuardPolicy`
      for user input (``block``, ``warn``, ``tag``) and the output of
      ``untrusted_output`` tools (``quarantine``, ``tag``); default: warn on
      user input, quarantine tool output. ``None`` turns scanning off.
    - ``output_schema``: a JSON Schema (dict) or a pydantic model class the
      final answer must match (JSON); a mismatch is sent back to the model
      with the errors, at most ``output_retries`` times, then the turn fails.
    - ``health``: the :class:`~tether.spec.health.HealthCheck` a readiness
      probe sends through the model chain (``GET /readyz``, ``tether health``).
    """

    name: str
    instructions: str
    version: str = "1"
    description: str = ""
    models: tuple[ModelRef, ...] = ("local",)
    tools: tuple[Tool, ...] = ()
    toolsets: tuple[ToolSource, ...] = ()
    limits: Limits = field(default_factory=Limits)
    deps: Callable[..., Any] | None = None
    test_deps: Callable[..., Any] | None = None
    temperature: float | None = None
    tool_choice: str = "auto"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    no_downgrade: bool = False
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    clarify: bool = True
    budget: Budget = field(default_factory=Budget)
    output_schema: Any = None
    output_retries: int = 2
    guard: GuardPolicy | None = field(default_factory=lambda: GuardPolicy(user="warn"))
    health: HealthCheck = field(default_factory=HealthCheck)

    def __post_init__(self) -> None:
        if self.output_retries < 0:
            raise ConfigError(f"agent {self.name!r}: output_retries must be 0 or more")
        if self.output_schema is not None and not isinstance(self.output_schema, (dict, type)):
            raise ConfigError(
                f"agent {self.name!r}: output_schema must be a JSON Schema dict or a pydantic "
                "model class"
            )
        if self.tool_choice not in ("auto", "required", "once"):
            raise ConfigError(
                f"agent {self.name!r}: tool_choice must be 'auto', 'required' or 'once', "
                f"not {self.tool_choice!r}"
            )
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(
                f"agent name {self.name!r} must be non-empty letters, digits, '-' or '_'"
            )
        if not self.models:
            raise ConfigError(f"agent {self.name!r} has an empty model chain; name one model")
        if isinstance(self.models, (str, list)) or isinstance(self.tools, list):
            object.__setattr__(
                self,
                "models",
                (self.models,) if isinstance(self.models, str) else tuple(self.models),
            )
            object.__setattr__(self, "tools", tuple(self.tools))
        if not isinstance(self.toolsets, tuple):
            object.__setattr__(self, "toolsets", tuple(self.toolsets))
        sources = tuple(t for t in self.tools if _is_source(t))
        if sources:
            object.__setattr__(self, "tools", tuple(t for t in self.tools if not _is_source(t)))
            object.__setattr__(self, "toolsets", self.toolsets + sources)
        for s in self.toolsets:
            if not _is_source(s):
                raise ConfigError(
                    f"agent {self.name!r}: toolsets holds {s!r}, which is not a tool source; "
                    "pass tether.mcp_server(...) objects there"
                )
        seen: set[str] = set()
        for t in self.tools:
            if not isinstance(t, Tool):
                raise ConfigError(
                    f"agent {self.name!r}: {t!r} is not a Tool; decorate it with @tether.tool"
                )
            if t.name in seen:
                raise ConfigError(f"agent {self.name!r}: two tools are named {t.name!r}")
            seen.add(t.name)

    def tool(self, name: str) -> Tool | None:
        """The agent's tool called ``name``, or ``None``."""
        for t in self.tools:
            if t.name == name:
                return t
        return None

    def with_models(self, models: Sequence[ModelRef]) -> Agent:
        """A copy of this agent with another model chain (same name and version)."""
        return dataclasses.replace(self, models=tuple(models))

    @property
    def may_downgrade(self) -> bool:
        """Whether a backup model may answer: not ``no_downgrade``, no ``critical`` tool."""
        return not self.no_downgrade and not any(t.risk.critical for t in self.tools)


def _is_source(obj: object) -> bool:
    return not isinstance(obj, Tool) and isinstance(obj, ToolSource)
