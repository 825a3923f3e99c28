"""Tool coverage: which eval cases exercise each of an agent's tools.

"Add capabilities one at a time; cover each with eval cases before adding
the next." A tool no case calls is a capability nothing tests: a regression
in it (a lost approval, a wrong argument, a failure the answer hides) ships
unnoticed. :class:`Coverage` has one row per tool of the agent, including
tools no case touches, and says, per tool, which cases

- **call** it: the case *expects* a call (a scripted model step calls it, or
  an expectation names it: ``tool-used``, ``tool-sequence``, ``tool-args``,
  ``asked-approval-before``) or the agent *called* it in the run (the call
  ran, or stopped for approval). ``not-tool-used`` does not count: a case
  that forbids a call does not exercise the tool;
- **fail** it: in the run, a call of it returned an error (an injected fault,
  or the tool refusing); from the case definitions alone, the case injects
  an ``error`` or a ``fault`` into it (``tools:`` overrides);
- **approve** it: the case expects it to stop for approval
  (``asked-approval-before``), or in the run it did.

A tool is *covered* when at least one case calls it or expects a call.

Two ways to build it:

- :func:`coverage_of` from the results of a run (an
  :class:`~tether.surfaces.evals.report.EvalReport` or the
  :class:`~tether.surfaces.evals.runner.CaseResult` list
  :func:`~tether.surfaces.evals.runner.run_cases` returns), combined with
  what the cases expect: what ``tether eval --coverage`` prints;
- :func:`coverage_of_cases` from the case definitions alone, without running
  anything: cheap enough for a deploy gate to refuse a version with an
  uncovered tool before spending on a run.

An agent given as a factory (one agent per case, as a suite's ``agent:`` may
be) has its tools collected over the cases by :func:`agent_tools`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tether.spec.agent import Agent
from tether.spec.model import Model
from tether.spec.tools import Tool
from tether.surfaces.evals.cases import Case
from tether.surfaces.evals.report import EvalReport
from tether.surfaces.evals.runner import AgentSource, CaseResult

__all__ = [
    "Coverage",
    "ToolCoverage",
    "agent_tools",
    "coverage_of",
    "coverage_of_cases",
]


@dataclass(frozen=True, slots=True)
class ToolCoverage:
    """One tool's row: the ids of the cases that exercise it, each tuple in case order."""

    tool: str
    #: cases that expect a call or in which it was called (``expected`` and ``called``)
    calls: tuple[str, ...] = ()
    #: cases whose definition expects a call: a scripted step, or an expectation naming it
    expected: tuple[str, ...] = ()
    #: cases in which the agent called it in the run (it ran, or stopped for approval)
    called: tuple[str, ...] = ()
    #: cases in which a call of it returned an error (from definitions: an injected fault)
    failures: tuple[str, ...] = ()
    #: cases that expect it to stop for approval, or in which it did
    approvals: tuple[str, ...] = ()

    @property
    def covered(self) -> bool:
        """Whether at least one case calls it or expects a call."""
        return bool(self.calls)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "covered": self.covered,
            "calls": list(self.calls),
            "expected": list(self.expected),
            "called": list(self.called),
            "failures": list(self.failures),
            "approvals": list(self.approvals),
        }


@dataclass(frozen=True, slots=True)
class Coverage:
    """Every tool of an agent and the cases that exercise it (see the module docstring)."""

    #: one row per tool of the agent, in the agent's order
    tools: tuple[ToolCoverage, ...]
    #: the ids of the cases it was computed over, in order
    cases: tuple[str, ...] = ()
    #: ``True``: from a run's results (and the cases); ``False``: from the cases alone
    from_run: bool = False

    @property
    def uncovered(self) -> tuple[str, ...]:
        """The names of the tools no case calls nor expects a call of."""
        return tuple(row.tool for row in self.tools if not row.covered)

    def row(self, tool: str) -> ToolCoverage:
        """The row of ``tool``; :class:`KeyError` if the agent has no tool of that name."""
        for r in self.tools:
            if r.tool == tool:
                return r
        raise KeyError(f"no tool {tool!r} in this coverage (tools: {[r.tool for r in self.tools]})")

    def problem(self) -> str | None:
        """Why a version with these tools should not be deployed; ``None`` if every tool
        is covered."""
        if not self.uncovered:
            return None
        names = ", ".join(self.uncovered)
        return (
            f"{len(self.uncovered)} of {len(self.tools)} tool(s) no eval case covers: {names}; "
            "add a case that calls each (a scripted model step, or a tool-used expectation) "
            "before deploying"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_run": self.from_run,
            "cases": len(self.cases),
            "tools": [r.to_dict() for r in self.tools],
            "covered": sum(r.covered for r in self.tools),
            "uncovered": list(self.uncovered),
        }


# -- what a case definition says ---------------------------------------------------


def _expected_calls(case: Case) -> set[str]:
    """The tools ``case`` expects to be called: scripted steps and expectations."""
    names = {s.tool for turn in case.conversation for s in turn.model or () if s.tool}
    for e in case.expect:
        if e.tool_used is not None:
            names.add(e.tool_used)
        elif e.tool_sequence is not None:
            names.update(e.tool_sequence.tools)
        elif e.tool_args is not None:
            names.add(e.tool_args.tool)
        elif e.asked_approval_before is not None:
            names.add(e.asked_approval_before)
    return names


def _expected_approvals(case: Case) -> set[str]:
    return {e.asked_approval_before for e in case.expect if e.asked_approval_before is not None}


def _injected_failures(case: Case) -> set[str]:
    return {name for name, o in case.tools.items() if o.error is not None or o.fault is not None}


# -- what a run did ----------------------------------------------------------------


def _run_calls(result: CaseResult) -> tuple[set[str], set[str], set[str]]:
    """The tools called, failed and stopped for approval, over every attempt of a case."""
    called: set[str] = set()
    failed: set[str] = set()
    asked: set[str] = set()
    for attempt in result.attempts:
        t = attempt.trajectory
        for run in t.calls:
            called.add(run.name)
            if run.ok is False:
                failed.add(run.name)
        for tool, _ in t.approvals:
            asked.add(tool)
    return called | asked, failed, asked


# -- building ----------------------------------------------------------------------


def _names(agent: Agent | Iterable[Tool | str]) -> list[str]:
    tools = agent.tools if isinstance(agent, Agent) else agent
    return list(dict.fromkeys(t if isinstance(t, str) else t.name for t in tools))


def _build(
    tools: list[str],
    ids: list[str],
    marks: dict[str, dict[str, set[str]]],
    *,
    from_run: bool,
) -> Coverage:
    """Rows from ``marks[kind][case id]``: the tool names each case touches that way."""
    ids = list(dict.fromkeys(ids))

    def which(kind: str, tool: str) -> tuple[str, ...]:
        return tuple(cid for cid in ids if tool in marks[kind].get(cid, ()))

    rows = []
    for tool in tools:
        expected, called = which("expected", tool), which("called", tool)
        calls = tuple(cid for cid in ids if cid in expected or cid in called)
        rows.append(
            ToolCoverage(
                tool,
                calls=calls,
                expected=expected,
                called=called,
                failures=which("failures", tool),
                approvals=which("approvals", tool),
            )
        )
    return Coverage(tuple(rows), tuple(ids), from_run=from_run)


def coverage_of_cases(agent: Agent | Iterable[Tool | str], cases: Iterable[Case]) -> Coverage:
    """The coverage of ``agent``'s tools by the definitions of ``cases``, nothing run.

    ``agent`` is an :class:`~tether.Agent`, or its tools (or their names).
    A case calls a tool if it expects a call (scripted steps, expectations);
    it fails one it injects an ``error`` or ``fault`` into; it expects an
    approval with ``asked-approval-before``. A live case with no
    expectation naming a tool covers nothing here: run it (:func:`coverage_of`).
    """
    cases = list(cases)
    ids = [c.id for c in cases]
    marks: dict[str, dict[str, set[str]]] = {
        "expected": {c.id: _expected_calls(c) for c in cases},
        "called": {},
        "failures": {c.id: _injected_failures(c) for c in cases},
        "approvals": {c.id: _expected_approvals(c) for c in cases},
    }
    return _build(_names(agent), ids, marks, from_run=False)


def coverage_of(
    agent: Agent | Iterable[Tool | str], results: EvalReport | Iterable[CaseResult]
) -> Coverage:
    """The coverage of ``agent``'s tools by the cases of a run and what they did.

    ``results`` is what ``tether eval`` builds after running the cases (an
    :class:`~tether.surfaces.evals.report.EvalReport`) or the list
    :func:`~tether.surfaces.evals.runner.run_cases` returns. From each
    case's attempts (every one, with ``-k``): the tools called (the call ran,
    or stopped for approval), those whose call returned an error, those that
    stopped for approval; from each case's definition: the calls it expects
    and the approvals it expects (``asked-approval-before``), so a case whose
    agent did not do what it expects still shows what it is meant to cover.
    """
    items = list(results.results if isinstance(results, EvalReport) else results)
    ids = [r.case.id for r in items]
    marks: dict[str, dict[str, set[str]]] = {k: {} for k in ("expected", "called", "failures")}
    marks["approvals"] = {}
    for r in items:
        called, failed, asked = _run_calls(r)
        cid = r.case.id
        marks["expected"].setdefault(cid, set()).update(_expected_calls(r.case))
        marks["called"].setdefault(cid, set()).update(called)
        marks["failures"].setdefault(cid, set()).update(failed)
        marks["approvals"].setdefault(cid, set()).update(asked | _expected_approvals(r.case))
    return _build(_names(agent), ids, marks, from_run=True)


def agent_tools(
    source: AgentSource, cases: Iterable[Case], *, models: Sequence[str | Model] | None = None
) -> tuple[Tool, ...]:
    """The tools of ``source``: an agent's own, or, for a factory of one agent per case,
    every tool of the agents it builds for ``cases`` (first seen first).

    ``models`` is the live model chain a factory is given for live cases
    (``--model``), as the runner gives it; scripted cases get ``None``.
    """
    if isinstance(source, Agent):
        return source.tools
    seen: dict[str, Tool] = {}
    for case in cases:
        agent = source(case, models if case.mode == "live" else None)
        for t in agent.tools:
            seen.setdefault(t.name, t)
    return tuple(seen.values())
