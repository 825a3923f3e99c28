"""Running eval cases: one conversation per case, on a fresh world, then the checks.

A :class:`Target` says what is tested: the agent (or a function of the case
that builds it) and, optionally, an *environment* factory. An environment
builds the world one case runs in (for the retail agent, a fresh copy of the
shop) and snapshots it as JSON, before and after, for ``db-state`` and
``no-writes``::

    class Environment(Protocol):
        def deps(self) -> Any: ...          # what the agent's tools get as ctx.deps
        def snapshot(self) -> dict: ...     # the world as JSON
        def close(self) -> None: ...

Each case runs on its own in-memory runtime, so cases never share sessions.
In ``scripted`` mode the case's model answers are played by a
:class:`~tether.testing.ScriptedModel` and time is virtual (a
:class:`~tether.testing.FakeClock`: retries and late approvals take no
time); in ``live`` mode the agent's own model chain (or ``--model``)
answers, ``k`` times, and the case passes only if every run passes (pass^k).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tether.exceptions import ConfigError, ProviderError, RunError, TetherError, ToolFailed
from tether.runtime import Runtime, SessionStatus, TurnResult
from tether.spec.agent import Agent
from tether.spec.events import Event, EventType
from tether.spec.messages import Message, ToolCall
from tether.spec.model import Model
from tether.spec.principal import Principal
from tether.spec.tools import Tool
from tether.surfaces.evals.cases import Case, ModelStep, ToolOverride
from tether.surfaces.evals.expect import (
    Check,
    ToolRun,
    Trajectory,
    UnsupportedClaim,
    check,
    unexpected_claims,
)
from tether.testing import FakeClock, ScriptedModel

__all__ = [
    "AgentFactory",
    "AgentSource",
    "CaseResult",
    "Environment",
    "Target",
    "agent_factory",
    "run_case",
    "run_cases",
]


class Environment(Protocol):
    """The world one case runs in (see the module docstring)."""

    def deps(self) -> Any: ...

    def snapshot(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


#: a factory ``(case, models)`` where ``models`` is the live run's model
#: chain (``None``: the agent's own, or a scripted run)
AgentFactory = Callable[[Case, Sequence[str | Model] | None], Agent]
#: an agent, or a factory of one per case
AgentSource = Agent | AgentFactory


def _arity(obj: Callable[..., Any], ref: str) -> int:
    """How many of ``(case, models)`` a factory takes: both, the case, or nothing."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # no signature to read (a builtin): give both
        return 2
    for n in (2, 1, 0):
        try:
            sig.bind(*([None] * n))
        except TypeError:
            continue
        return n
    raise ConfigError(f"{ref!r} must take (case, models), (case) or nothing, and return an Agent")


def agent_factory(obj: Callable[..., Any], ref: str) -> AgentFactory:
    """``obj`` (taking ``(case, models)``, ``(case)`` or nothing) as an :data:`AgentFactory`
    that checks it got an Agent; ``ref`` names it in errors."""
    n = _arity(obj, ref)

    def build(case: Case, models: Sequence[str | Model] | None) -> Agent:
        agent = obj(*(case, models)[:n])
        if not isinstance(agent, Agent):
            raise ConfigError(f"{ref!r} returned a {type(agent).__name__}, not a tether.Agent")
        return agent

    return build


@dataclass(slots=True)
class Target:
    """What the cases run against: the agent, its world, and the models to use."""

    agent: AgentSource
    environment: Callable[[Case], Environment] | None = None
    #: live mode: this model chain instead of the agent's own
    models: Sequence[str | Model] | None = None
    #: runtime options for live mode (real providers are built from spec strings)
    runtime_models: dict[str, Model] | None = None


@dataclass(slots=True)
class Attempt:
    """One run of a case: its trajectory and its checks."""

    checks: list[Check]
    trajectory: Trajectory

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


@dataclass(slots=True)
class CaseResult:
    """A case's verdict over its ``k`` attempts (pass^k: all of them must pass)."""

    case: Case
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.attempts) and all(a.passed for a in self.attempts)

    @property
    def failures(self) -> list[Check]:
        return [c for a in self.attempts for c in a.checks if not c.passed]

    @property
    def claims_withheld(self) -> int:
        """Answers withheld for an unsupported claim, over every attempt."""
        return sum(len(a.trajectory.unsupported_claims) for a in self.attempts)

    def to_dict(self) -> dict[str, Any]:
        t = self.attempts[-1].trajectory if self.attempts else Trajectory()
        return {
            "id": self.case.id,
            "tags": list(self.case.tags),
            "mode": self.case.mode,
            "passed": self.passed,
            "attempts": len(self.attempts),
            "attempts_passed": sum(a.passed for a in self.attempts),
            "checks": [c.to_dict() for c in (self.attempts[-1].checks if self.attempts else [])],
            "failures": [c.to_dict() for c in self.failures],
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in t.calls],
            "final_output": t.final_output,
            "final_status": t.final_status,
            # the last attempt's withheld answers; the count is over every attempt
            "unsupported_claims": [u.to_dict() for u in t.unsupported_claims],
            "claims_withheld": self.claims_withheld,
            "cost": round(sum(a.trajectory.cost for a in self.attempts), 6),
            "latency_s": round(sum(a.trajectory.latency_s for a in self.attempts), 4),
        }


def _scripted(steps: list[ModelStep]) -> list[Any]:
    out: list[Any] = []
    for n, s in enumerate(steps):
        if s.error is not None:
            out.append(
                ProviderError(
                    f"HTTP {s.error} (scripted)",
                    status=s.error,
                    retryable=s.error in (408, 409, 429, 500, 502, 503, 504, 529),
                )
            )
            continue
        calls = (ToolCall(f"eval_{n}", s.tool, dict(s.args)),) if s.tool else ()
        out.append(Message(role="assistant", text=s.text or "", tool_calls=calls))
    return out


def _override(tool: Tool, how: ToolOverride) -> Tool:
    """``tool`` with its behaviour replaced for one case (its schema and flags kept)."""
    if how.fault == "timeout":

        async def hang(**_kw: Any) -> Any:
            await asyncio.sleep(3600)

        return dataclasses.replace(
            tool, fn=hang, is_async=True, context_param=None, timeout=0.05, retry=None
        )

    async def fixed(**_kw: Any) -> Any:
        if how.fault == "raise":
            raise RuntimeError(f"{tool.name}: injected failure (eval case)")
        if how.error is not None:
            raise ToolFailed(how.error)
        return how.result

    return dataclasses.replace(tool, fn=fixed, is_async=True, context_param=None)


class _Clock:
    """Wall time plus the virtual time a case lets pass (late approvals)."""

    def __init__(self, fake: FakeClock | None) -> None:
        self.fake = fake
        self.offset = 0.0

    def __call__(self) -> float:
        return self.fake() if self.fake is not None else time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if self.fake is not None:
            self.fake.advance(seconds)
        else:
            self.offset += seconds


def _agent_for(case: Case, target: Target, env: Environment | None) -> Agent:
    src = target.agent
    live_models = target.models if case.mode == "live" else None
    agent = src if isinstance(src, Agent) else src(case, live_models)
    changes: dict[str, Any] = {}
    if case.tools:
        unknown = sorted(set(case.tools) - {t.name for t in agent.tools})
        if unknown:
            raise TetherError(f"case {case.id}: overrides unknown tool(s) {unknown}")
        changes["tools"] = tuple(
            _override(t, case.tools[t.name]) if t.name in case.tools else t for t in agent.tools
        )
    if env is not None:
        deps = env.deps()
        changes["deps"] = lambda: deps
    if case.mode == "scripted":
        steps = [s for turn in case.conversation for s in (turn.model or [])]
        changes["models"] = (ScriptedModel(_scripted(steps), name="scripted"),)
    elif target.models:
        changes["models"] = tuple(target.models)
    return dataclasses.replace(agent, **changes) if changes else agent


def _trajectory(events: list[Event], agent: Agent) -> Trajectory:
    t = Trajectory()
    tools = {x.name: x for x in agent.tools}
    by_call: dict[str, ToolRun] = {}
    for ev in events:
        t.event_types.append(ev.type)
        d = ev.data
        if ev.type == EventType.TOOL_STARTED:
            tool = tools.get(d["name"])
            run = ToolRun(
                d["name"],
                dict(d.get("arguments") or {}),
                writes=bool(tool and (tool.risk.writes or tool.risk.irreversible)),
            )
            by_call[d["call_id"]] = run
            t.calls.append(run)
        elif ev.type == EventType.TOOL_FINISHED and d["call_id"] in by_call:
            run = by_call[d["call_id"]]
            run.ok = not d.get("is_error")
            run.content = str(d.get("content", ""))
        elif ev.type == EventType.APPROVAL_REQUESTED:
            t.approvals.append((d["tool"], len(t.calls)))
        elif ev.type == EventType.MODEL_RESPONSE:
            t.cost += float(d.get("cost") or 0.0)
        elif ev.type == EventType.UNACKNOWLEDGED_FAILURE:
            t.unacknowledged.extend(d.get("tools", []))
        elif ev.type == EventType.UNSUPPORTED_CLAIM:
            claims = [str(c) for c in d.get("claims") or []]
            t.unsupported_claims.append(UnsupportedClaim(claims, str(d.get("text") or "")))
    return t


async def _attempt(case: Case, target: Target) -> Attempt:
    env = target.environment(case) if target.environment is not None else None
    events: list[Event] = []
    outputs: list[str] = []
    errors: list[str] = []
    status = ""
    t0 = time.perf_counter()
    try:
        before = env.snapshot() if env is not None else None
        agent = _agent_for(case, target, env)
        fake = FakeClock() if case.mode == "scripted" else None
        clock = _Clock(fake)
        rt = Runtime(
            clock=clock,
            sleep=fake.sleep if fake is not None else asyncio.sleep,
            models=dict(target.runtime_models or {}),
        )
        sid: str | None = None
        after = None
        unused_approvals = 0
        try:
            for turn in case.conversation:
                answers = list(turn.approvals)
                try:
                    result: TurnResult = await rt.run(
                        agent, turn.user, session_id=sid, user_id=case.user_id,
                        on_event=events.append,
                    )  # fmt: skip
                    sid = result.session_id
                    while result.status == SessionStatus.AWAITING_APPROVAL and answers:
                        answer = answers.pop(0)
                        clock.advance(answer.after_s)
                        assert result.approval is not None
                        # The case's user answers in their own session (an operator-mode
                        # answer carries the approver role in ``roles``).
                        decider = Principal(
                            user=case.user_id or answer.by, roles=frozenset(answer.roles)
                        )
                        result = await rt.decide(
                            agent, sid, result.approval.id, approve=answer.approve,
                            by=decider, on_event=events.append,
                        )  # fmt: skip
                except RunError as exc:  # a refused input, a conflict: the case goes on
                    errors.append(f"{type(exc).__name__}: {exc}")
                    outputs.append(str(exc))
                    status = "rejected"
                    continue
                unused_approvals += len(answers)
                status = result.status
                outputs.append(result.output or result.error or "")
            if env is not None:
                after = env.snapshot()  # before the runtime closes the deps it opened
        finally:
            await rt.aclose()
        script_left = 0
        if case.mode == "scripted":
            model = agent.models[0]
            assert isinstance(model, ScriptedModel)
            script_left = model.remaining
    finally:
        if env is not None:
            env.close()
    traj = _trajectory(events, agent)
    traj.outputs = outputs
    traj.final_output = outputs[-1] if outputs else None
    traj.final_status = status
    traj.errors = errors
    traj.before, traj.after = before, after
    traj.script_left = script_left
    traj.latency_s = time.perf_counter() - t0
    checks = [check(e, traj) for e in case.expect]
    withheld = unexpected_claims(case.expect, traj)
    if withheld is not None:
        checks.append(withheld)
    if unused_approvals:
        checks.append(
            Check(
                "script-used",
                False,
                f"{unused_approvals} scripted approval answer(s) were never asked for: the "
                "agent did not stop for approval where the case expects it "
                f"(calls {[c.name for c in traj.calls]})",
                "no-prohibited-action",
            )
        )
    if script_left:
        checks.append(
            Check(
                "script-used",
                False,
                f"the agent stopped asking its model with {script_left} scripted answer(s) "
                "unused: the conversation went another way than the case expects "
                f"(final status '{status}', calls {[c.name for c in traj.calls]})",
            )
        )
    return Attempt(checks, traj)


async def run_case(case: Case, target: Target, *, k: int = 1) -> CaseResult:
    """Run ``case`` (``k`` times in live mode; once when scripted) and check it."""
    result = CaseResult(case)
    runs = 1 if case.mode == "scripted" else max(1, k)
    for _ in range(runs):
        try:
            result.attempts.append(await _attempt(case, target))
        except (TetherError, AssertionError) as exc:
            trajectory = Trajectory(final_status="error", errors=[str(exc)])
            crash = Check("ran", False, f"the case could not run: {type(exc).__name__}: {exc}")
            result.attempts.append(Attempt([crash], trajectory))
    return result


async def run_cases(
    cases: Sequence[Case],
    target: Target,
    *,
    k: int = 1,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run every case in order; ``on_result`` is told after each (for a progress bar)."""
    out: list[CaseResult] = []
    for case in cases:
        r = await run_case(case, target, k=k)
        out.append(r)
        if on_result is not None:
            on_result(r)
    return out
