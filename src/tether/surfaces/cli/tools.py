"""``tether tools``: check an agent's tools.

- ``tether tools test AGENT``: contract tests
  (:func:`tether.surfaces.toolcheck.check_tools`): each tool called with
  valid, boundary and invalid arguments generated from its schema, against
  the agent's ``test_deps``; a table per tool (calls, ok, refused,
  rejected, findings), then each finding with the smallest arguments that
  showed it. Exits 0 when no tool has a finding, 1 when one has, 2 on a
  usage error (an unknown tool, an agent with ``deps`` but no
  ``test_deps``, a bad option). The tools of the agent's MCP servers are
  tested only with ``--mcp`` (their calls go to the real server, destructive
  tools included: use it against a test server); without it they are
  skipped with a note, and no server is started.
- ``tether tools pins AGENT``: the pinned definitions of the agent's MCP
  tools (per version, server and tool): state, hash, and for a quarantined
  tool why and what differs. ``--json`` prints them as one JSON array.
- ``tether tools accept AGENT``: accept quarantined tools (all of the agent's,
  or of one ``--version``, ``--server``, ``--tool``), recording who
  (``TETHER_DEPLOYED_BY`` or the login name) and when; they are offered to
  the model from the next turn. Exits 1 when nothing matched.

Importing this module registers the commands on :data:`tether.surfaces.cli.app.app`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from tether.runtime.pins import PinState, ToolPin
from tether.store.pins import SQLToolPins
from tether.surfaces.cli.app import (
    DbOption,
    ModelOption,
    _agent,
    _fail,
    _open_store,
    _run_async,
    app,
    out,
)
from tether.surfaces.cli.render import visible
from tether.surfaces.ops.deploy import deployer
from tether.surfaces.toolcheck import Finding, ToolCheckReport, check_tools

__all__ = ["tools_accept", "tools_app", "tools_pins", "tools_test"]

T = TypeVar("T")

tools_app = typer.Typer(help="Check an agent's tools.", no_args_is_help=True)
app.add_typer(tools_app, name="tools")

#: how much of a finding's arguments and detail is printed (``--json`` has all)
_SHOWN_CHARS = 300


@tools_app.command("test")
def tools_test(
    agent_ref: Annotated[str, typer.Argument(metavar="AGENT", help="module:attr or a folder.")],
    tool: Annotated[
        list[str] | None,
        typer.Option("--tool", "-t", help="Check only this tool (repeat; default: all)."),
    ] = None,
    examples: Annotated[
        int, typer.Option("--examples", "-n", min=1, help="Valid arguments drawn per tool.")
    ] = 50,
    seed: Annotated[int, typer.Option(help="The same seed draws the same arguments.")] = 0,
    var: Annotated[
        list[str] | None,
        typer.Option(
            "--var",
            help="KEY=VALUE: a session var every call starts with (VALUE as JSON if it "
            "parses, else text; repeat).",
        ),
    ] = None,
    value: Annotated[
        list[str] | None,
        typer.Option(
            "--value",
            help="NAME=VALUE: a known value to try for arguments called NAME, such as an id "
            "that exists (as text, and as JSON if it parses; repeat).",
        ),
    ] = None,
    user: Annotated[str | None, typer.Option(help="The caller's user id (ctx.user_id).")] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.001, help="At most this many seconds per call (default: the tool's)."),
    ] = None,
    model: ModelOption = None,
    mcp: Annotated[
        bool,
        typer.Option(
            "--mcp",
            help="Also test the tools of AGENT's MCP servers: calls go to the real server, "
            "destructive tools included; only against a test server.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Call AGENT's tools with generated arguments; report every bug; exit 1 on any."""
    agent = _agent(agent_ref, model)
    start_vars = {k: _json_or_text(v) for k, v in _pairs(var or [], "--var")}
    known: dict[str, list[Any]] = {}
    for name, text in _pairs(value or [], "--value"):
        known.setdefault(name, []).extend(_text_and_json(text))
    report = _run_async(
        lambda: check_tools(
            agent,
            tools=tool,
            examples=examples,
            seed=seed,
            vars=start_vars,
            values=known,
            user=user,
            call_timeout=timeout,
            mcp=mcp,
        )
    )
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=True) + "\n")
    else:
        _print(report)
    if not report.clean:
        raise typer.Exit(1)


def _pairs(items: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise _fail(f"{option} takes KEY=VALUE, not {item!r}")
        pairs.append((key.strip(), text))
    return pairs


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _text_and_json(text: str) -> list[Any]:
    parsed = _json_or_text(text)
    return [text] if parsed == text else [text, parsed]


def _print(report: ToolCheckReport) -> None:
    table = Table(
        title=f"{report.agent} v{report.version}: tool contract tests (seed {report.seed})",
        title_justify="left",
    )
    table.add_column("tool")
    for col in ("calls", "ok", "refused", "rejected", "findings"):
        table.add_column(col, justify="right")
    for t in report.tools:
        table.add_row(
            Text(visible(t.name, one_line=True)),
            str(t.calls),
            str(t.ok),
            str(t.refused),
            str(t.rejected),
            Text(str(len(t.findings)), style="bold red" if t.findings else "green"),
        )
    out.print(table)
    for t in report.tools:
        for note in t.notes:
            line = f"! {visible(t.name, one_line=True)}: {_short(note)}"
            out.print(Text(line, style="yellow"), soft_wrap=True)
    for note in report.notes:
        out.print(Text(f"! {_short(note)}", style="yellow"), soft_wrap=True)
    for finding in report.findings:
        _print_finding(finding)
    if report.clean:
        out.print(
            Text(
                f"clean: {report.calls} calls to {len(report.tools)} tools, no findings",
                style="bold green",
            )
        )
    else:
        n = len(report.findings)
        tools = len({f.tool for f in report.findings})
        out.print(
            Text(
                f"{n} finding{'s' * (n != 1)} in {tools} tool{'s' * (tools != 1)}",
                style="bold red",
            )
        )


def _print_finding(finding: Finding) -> None:
    calls = f"{finding.calls} call{'s' * (finding.calls != 1)}"
    head = Text("✗ ", style="bold red")
    head.append(visible(finding.tool, one_line=True), style="bold")
    head.append(f" {finding.kind}: ", style="red")
    head.append(_short(finding.detail))
    head.append(f" ({calls})", style="dim")
    out.print(head, soft_wrap=True)
    arguments = json.dumps(finding.arguments, ensure_ascii=False, sort_keys=True)
    out.print(Text(f"    e.g. ({finding.inputs}) {_short(arguments)}", style="dim"), soft_wrap=True)


def _short(text: str) -> str:
    """``text`` on one line, escaped (control and bidi characters shown), cut to a few lines."""
    shown = visible(text, one_line=True)
    return shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 1] + "…"


# --- pinned definitions -------------------------------------------------------------

AgentName = Annotated[str, typer.Argument(metavar="AGENT", help="The agent's name.")]
VersionOption = Annotated[
    str | None, typer.Option("--version", "-v", help="Only this version (default: all).")
]


def _with_pins(db: str | None, work: Callable[[SQLToolPins], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await _open_store(db)
        try:
            return await work(store.tool_pins)
        finally:
            await store.aclose()

    return _run_async(go)


@tools_app.command("pins")
def tools_pins(
    agent: AgentName,
    version: VersionOption = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """List AGENT's pinned MCP tool definitions: state, hash, and what a quarantine is about."""
    pins = _with_pins(db, lambda p: p.pins(agent, version))
    if as_json:
        sys.stdout.write(json.dumps([p.to_dict() for p in pins], ensure_ascii=True) + "\n")
        return
    if not pins:
        out.print(f"no pinned tools for agent {visible(agent, one_line=True)}")
        return
    table = Table(title=f"{agent}: pinned tool definitions", title_justify="left")
    for col in ("version", "server", "tool", "state", "hash", "decided"):
        table.add_column(col)
    for p in pins:
        quarantined = p.state == PinState.QUARANTINED
        state = f"quarantined ({p.reason})" if quarantined else "accepted"
        decided = (
            "-" if p.decided_at is None else f"{p.decided_by or 'first use'} {_when(p.decided_at)}"
        )
        table.add_row(
            Text(visible(p.version, one_line=True)),
            Text(visible(p.server, one_line=True)),
            Text(visible(p.tool, one_line=True)),
            Text(state, style="bold yellow" if quarantined else "green"),
            (p.hash or "-")[:12],
            Text(visible(decided, one_line=True)),
        )
    out.print(table)
    for p in pins:
        if p.state == PinState.QUARANTINED:
            _print_quarantine(p)


def _print_quarantine(p: ToolPin) -> None:
    head = Text("! ", style="bold yellow")
    head.append(visible(f"{p.version} {p.server}/{p.tool}", one_line=True), style="bold")
    head.append(f" {p.reason}: {(p.hash or 'none')[:12]} -> {(p.pending_hash or '')[:12]}")
    out.print(head, soft_wrap=True)
    for part, change in p.to_dict().get("diff", {}).items():
        shown = json.dumps(change, ensure_ascii=False, sort_keys=True)
        out.print(Text(f"    {part}: {_short(shown)}", style="dim"), soft_wrap=True)


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


@tools_app.command("accept")
def tools_accept(
    agent: AgentName,
    version: VersionOption = None,
    server: Annotated[str | None, typer.Option("--server", help="Only this server's.")] = None,
    tool: Annotated[str | None, typer.Option("--tool", "-t", help="Only this tool.")] = None,
    db: DbOption = None,
) -> None:
    """Accept AGENT's quarantined MCP tools: offered to the model from the next turn."""
    by = deployer()
    done = _with_pins(
        db,
        lambda p: p.accept(agent, version, server=server, tool=tool, by=by, at=time.time()),
    )
    if not done:
        what = " ".join(
            f"{k} {v}" for k, v in (("version", version), ("server", server), ("tool", tool)) if v
        )
        raise _fail(
            f"nothing to accept: agent {agent}{' ' + what if what else ''} has no quarantined "
            f"tool (see `tether tools pins {agent}`)",
            1,
        )
    for p in done:
        line = f"accepted {p.version} {p.server}/{p.tool} ({(p.hash or '')[:12]}) by {by}"
        out.print(Text(visible(line, one_line=True), style="green"), soft_wrap=True)
