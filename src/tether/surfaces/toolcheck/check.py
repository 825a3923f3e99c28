"""``check_tools``: call each tool of an agent with generated arguments and report its bugs.

For each tool: valid arguments drawn from its schema, boundary ones, and
invalid ones (:mod:`~tether.surfaces.toolcheck.inputs`), each called once
(:func:`~tether.surfaces.toolcheck.calls.call_tool`) against a throwaway copy
of the agent's dependencies, ``Agent.test_deps``, built afresh for each tool
(and again after a call hangs, since a hung call may hold them). The real
``deps`` are never built: an agent that has them but no ``test_deps`` is
refused, since the calls include its writes.

The tools of the agent's tool sources (MCP servers) are checked only with
``mcp=True``: each source is opened (:func:`~tether.surfaces.toolsources.open_sources`)
for the run and each call goes to its real server, destructive tools
included, so do that against a test server. Their validation is the JSON
Schema the server listed; they take no deps. Without ``mcp`` they are
skipped, with a note saying so, and no server is started.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema

from tether.exceptions import AgentLoadError, ConfigError
from tether.runtime import SessionInfo
from tether.runtime.deps import DepsCache
from tether.spec.agent import Agent
from tether.spec.jsonsafe import SessionVars, Unstorable, to_jsonable
from tether.spec.principal import Principal
from tether.spec.tools import Tool
from tether.spec.toolsource import ToolSourceUnavailable
from tether.surfaces.loader import describe_exception
from tether.surfaces.toolcheck.calls import CallResult, DaemonThreads, Outcome, call_tool
from tether.surfaces.toolcheck.inputs import ArgumentSchema, canonical
from tether.surfaces.toolcheck.report import (
    Finding,
    FindingKind,
    InputKind,
    ToolCheckReport,
    ToolReport,
)
from tether.surfaces.toolsources import OPEN_TIMEOUT, open_sources, with_source_tools

__all__ = ["MAX_HANGS", "check_tools"]

#: calls of one tool that may hang before the rest of its calls are skipped
MAX_HANGS = 2

_FINDING = {
    Outcome.RAISED: FindingKind.RAISED,
    Outcome.HUNG: FindingKind.HUNG,
    Outcome.UNSTORABLE: FindingKind.UNSTORABLE,
}


async def check_tools(
    agent: Agent,
    *,
    tools: Sequence[str] | None = None,
    examples: int = 50,
    seed: int = 0,
    vars: dict[str, Any] | None = None,
    values: Mapping[str, Sequence[Any]] | None = None,
    user: str | None = None,
    call_timeout: float | None = None,
    mcp: bool = False,
    open_timeout: float = OPEN_TIMEOUT,
) -> ToolCheckReport:
    """Call each of ``agent``'s tools with generated arguments; report every bug found.

    - ``tools``: the names of the tools to check (default: all);
      an unknown name is a :class:`~tether.exceptions.ConfigError`.
    - ``examples``: valid arguments to draw per tool; up to as many boundary
      and as many invalid ones are added.
    - ``seed``: the same seed draws the same arguments (for CI).
    - ``vars``: session vars every call starts with (``{"user_id": "u1"}``
      for tools that need an authenticated session); ``user``: the caller's
      user id (``ctx.user_id``).
    - ``values``: known values by argument name, tried beside the drawn
      ones (``{"order_id": ["#W1024001"]}``): random text never names an
      order that exists, so without them a tool is tested mostly on its
      refusals.
    - ``call_timeout``: at most this many seconds per call (default: each tool's
      own ``timeout``).
    - ``mcp``: also check the tools of the agent's tool sources, calling
      their real servers (only against a test server); ``open_timeout``:
      seconds to open each and list its tools.

    Raises :class:`~tether.exceptions.ConfigError` for an agent with
    ``deps`` but no ``test_deps`` (when one of its own tools is checked),
    :class:`~tether.exceptions.AgentLoadError` when ``test_deps`` fails, and
    :class:`~tether.spec.toolsource.ToolSourceUnavailable` when ``mcp`` is
    set and a tool source cannot be opened.
    """
    if examples < 1:
        raise ConfigError(f"examples must be at least 1, not {examples}")
    if call_timeout is not None and call_timeout <= 0:
        raise ConfigError(f"call_timeout must be positive, not {call_timeout}")
    async with contextlib.AsyncExitStack() as stack:
        all_tools: Sequence[Tool] = agent.tools
        from_sources: frozenset[str] = frozenset()
        if mcp and agent.toolsets:
            listed = await stack.enter_async_context(open_sources(agent, open_timeout=open_timeout))
            for entry in listed:
                if entry.error is not None:
                    raise ToolSourceUnavailable(
                        f"MCP server {entry.name!r} could not be opened ({entry.error}), so "
                        "its tools cannot be tested; check its command or URL, or test "
                        "without --mcp"
                    )
            all_tools = with_source_tools(agent, listed)
            from_sources = frozenset(t.name for entry in listed for t in entry.tools)
        report = await _check(
            agent,
            _chosen(agent, all_tools, tools, sources_listed=mcp),
            from_sources,
            examples=examples,
            seed=seed,
            vars=vars,
            values=values,
            user=user,
            call_timeout=call_timeout,
        )
    if agent.toolsets and not mcp:
        names = ", ".join(s.name for s in agent.toolsets)
        report.notes.append(
            f"the tools of MCP server(s) {names} were not tested: their calls would go to the "
            "real server, destructive tools included; pass --mcp (mcp=True) to test them, "
            "against a test server"
        )
    return report


async def _check(
    agent: Agent,
    chosen: list[Tool],
    from_sources: frozenset[str],
    *,
    examples: int,
    seed: int,
    vars: dict[str, Any] | None,
    values: Mapping[str, Sequence[Any]] | None,
    user: str | None,
    call_timeout: float | None,
) -> ToolCheckReport:
    own = [t for t in chosen if t.name not in from_sources]
    if own and agent.deps is not None and agent.test_deps is None:
        raise ConfigError(
            f"agent {agent.name!r} has deps but no test_deps: the tools would be called "
            "(writes included) on its real dependencies. Declare a throwaway copy, "
            "Agent(test_deps=...): a factory like deps returning, for example, a fresh "
            "demo database in memory or in a temporary file"
        )
    try:
        start_vars = dict(SessionVars(vars or {}))
    except Unstorable as exc:
        raise ConfigError(f"session var {exc.key!r} cannot be stored: {exc}") from None
    report = ToolCheckReport(agent=agent.name, version=agent.version, seed=seed, examples=examples)
    threads = DaemonThreads()
    checker = _Checker(agent, threads, start_vars, values or {}, user, call_timeout, from_sources)
    for tool in chosen:
        report.tools.append(await checker.check(tool, examples, seed))
    if threads.running:
        report.notes.append(
            f"{threads.running} call(s) that hung are still running in their threads "
            "(a thread cannot be stopped)"
        )
    if checker.left_open:
        report.notes.append(
            f"{checker.left_open} copies of the test deps were left open: a call that hung "
            "may still be using them"
        )
    return report


def _chosen(
    agent: Agent, tools: Sequence[Tool], names: Sequence[str] | None, *, sources_listed: bool
) -> list[Tool]:
    if not names:
        return list(tools)
    by_name = {t.name: t for t in tools}
    out = []
    for name in dict.fromkeys(names):
        tool = by_name.get(name)
        if tool is None:
            known = ", ".join(by_name) or "none"
            hint = (
                " (the tools of its MCP servers are listed only with --mcp)"
                if agent.toolsets and not sources_listed
                else ""
            )
            raise ConfigError(
                f"agent {agent.name!r} has no tool {name!r}; its tools: {known}{hint}"
            )
        out.append(tool)
    return out


def _tool_seed(seed: int, name: str) -> int:
    """A seed per tool, stable across runs and Python processes (not ``hash``)."""
    return zlib.crc32(f"{seed}:{name}".encode())


class _Checker:
    """One run's shared pieces: the agent, the threads, the starting vars."""

    def __init__(
        self,
        agent: Agent,
        threads: DaemonThreads,
        vars: dict[str, Any],
        values: Mapping[str, Sequence[Any]],
        user: str | None,
        timeout: float | None,
        from_sources: frozenset[str] = frozenset(),
    ) -> None:
        self.agent = agent
        #: tools of tool sources: they take no deps, so none are built for them
        self.from_sources = from_sources
        self.values = values
        self.threads = threads
        self.vars = vars
        self.user = user
        self.timeout = timeout
        self.builds = 0
        #: test deps not closed, since a hung call's thread may still use them
        self.left_open = 0

    async def deps(self, tool: Tool) -> tuple[DepsCache, Any]:
        """Fresh test deps (and the cache that closes them), or ``None`` without a factory."""
        cache = DepsCache(max_sessions=1, busy=())
        factory = None if tool.name in self.from_sources else self.agent.test_deps
        self.builds += 1
        info = SessionInfo(
            session_id=f"tools-test-{tool.name}-{self.builds}",
            agent=self.agent.name,
            principal=Principal(user=self.user),
        )
        try:
            return cache, await cache.get(factory, info)
        except Exception as exc:
            raise AgentLoadError(
                f"test_deps of agent {self.agent.name!r} raised {describe_exception(exc)}"
            ) from exc

    async def check(self, tool: Tool, examples: int, seed: int) -> ToolReport:
        report = ToolReport(name=tool.name)
        try:
            schema = ArgumentSchema(tool.parameters, self.values)
        except jsonschema.SchemaError as exc:
            report.notes.append(
                f"not tested: its schema is not a valid JSON Schema ({exc.message})"
            )
            return report
        calls = self.inputs(schema, tool.name, examples, seed, report)
        if not calls:
            return report
        timeout = tool.timeout if self.timeout is None else min(tool.timeout, self.timeout)
        found: dict[tuple[FindingKind, str], Finding] = {}
        cache: DepsCache | None
        cache, deps = await self.deps(tool)
        hangs = 0
        try:
            for step, (kind, arguments) in enumerate(calls, start=1):
                result = await call_tool(
                    tool,
                    arguments,
                    deps=deps,
                    vars=self.vars,
                    user_id=self.user,
                    step=step,
                    call_timeout=timeout,
                    threads=self.threads,
                )
                report.calls += 1
                self.record(report, found, tool, schema, kind, arguments, result)
                if result.outcome is Outcome.HUNG:
                    hangs += 1
                    if tool.is_async:  # cancelled: it holds nothing any more
                        await cache.aclose()
                    elif deps is not None:
                        # its thread runs on and may hold the deps (a lock, a
                        # transaction): leave them to it, unclosed
                        self.left_open += 1
                    cache = None
                    if hangs >= MAX_HANGS:
                        left = len(calls) - step
                        if left:
                            report.notes.append(
                                f"stopped after {hangs} calls hung; {left} calls not made"
                            )
                        break
                    cache, deps = await self.deps(tool)  # fresh ones for the next calls
        finally:
            if cache is not None:
                await cache.aclose()
        report.findings = sorted(found.values(), key=lambda f: (str(f.kind), f.detail))
        return report

    def inputs(
        self, schema: ArgumentSchema, name: str, examples: int, seed: int, report: ToolReport
    ) -> list[tuple[InputKind, dict[str, Any]]]:
        """The calls to make: valid, boundary, then invalid arguments."""
        try:
            valid = schema.valid_examples(examples, _tool_seed(seed, name))
        except Exception as exc:  # Unsatisfiable, an unsupported keyword, a broken schema
            report.notes.append(
                f"not tested: no valid arguments could be drawn from its schema "
                f"({describe_exception(exc)})"
            )
            return []
        if not valid:
            report.notes.append("not tested: its schema allows no arguments")
            return []
        seen = {canonical(a) for a in valid}
        base = min(valid, key=lambda a: len(canonical(a)))
        boundary = schema.boundary_examples(base, examples, seen=seen)
        invalid = schema.invalid_examples(valid, examples)
        return [
            *((InputKind.VALID, a) for a in valid),
            *((InputKind.BOUNDARY, a) for a in boundary),
            *((InputKind.INVALID, i.arguments) for i in invalid),
        ]

    def record(
        self,
        report: ToolReport,
        found: dict[tuple[FindingKind, str], Finding],
        tool: Tool,
        schema: ArgumentSchema,
        kind: InputKind,
        arguments: dict[str, Any],
        result: CallResult,
    ) -> None:
        """Count ``result`` and add it to its finding, if it is one."""
        if kind is InputKind.INVALID and result.ran:
            broken = _received_violations(tool, schema, arguments)
            if broken:
                detail = f"its function ran with arguments its schema forbids: {broken[0]}"
                if result.outcome is not Outcome.OK:
                    detail += f" (then: {result.outcome}: {result.detail})"
                _add(found, tool, FindingKind.ACCEPTED_INVALID, "accepted", detail, kind, arguments)
                return
        if result.outcome is Outcome.OK:
            report.ok += 1
        elif result.outcome is Outcome.REFUSED:
            report.refused += 1
        elif result.outcome is Outcome.REJECTED:
            report.rejected += 1
            if kind is not InputKind.INVALID:
                report.rejected_valid += 1
                _note_rejected_valid(report, arguments, result.detail)
        else:
            finding = _FINDING[result.outcome]
            _add(found, tool, finding, result.key, result.detail, kind, arguments)


def _received_violations(
    tool: Tool, schema: ArgumentSchema, arguments: dict[str, Any]
) -> list[str]:
    """What breaks the schema in the arguments ``tool``'s function received for ``arguments``.

    They are what its validation made of them (``"5"`` for an integer becomes
    ``5``: the function received a valid value), less the defaults it filled
    in (the author's values, not the caller's). Empty when they are valid or
    cannot be told apart from valid ones.
    """
    try:
        received = tool.validate(arguments)
    except Exception:  # it ran, so its own validation let them through some other way
        received = arguments
    try:
        plain = to_jsonable({k: v for k, v in received.items() if k in arguments})
    except Unstorable:
        return []
    return schema.violations(plain)


def _note_rejected_valid(report: ToolReport, arguments: dict[str, Any], why: str) -> None:
    if report.rejected_valid == 1:
        report.notes.append(
            f"its validation refused arguments its schema allows (the model is told they are "
            f"fine): {_short(canonical(arguments))} ({_short(why)})"
        )


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _add(
    found: dict[tuple[FindingKind, str], Finding],
    tool: Tool,
    kind: FindingKind,
    key: str,
    detail: str,
    inputs: InputKind,
    arguments: dict[str, Any],
) -> None:
    have = found.get((kind, key))
    if have is None:
        found[(kind, key)] = Finding(
            tool=tool.name, kind=kind, detail=detail, arguments=arguments, inputs=inputs
        )
        return
    have.calls += 1
    if len(canonical(arguments)) < len(canonical(have.arguments)):
        have.arguments, have.inputs, have.detail = arguments, inputs, detail
