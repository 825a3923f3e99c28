"""``tether tools``: check an agent's tools.

- ``tether tools test AGENT``: contract tests
  (:func:`tether.surfaces.toolcheck.check_tools`): each tool called with
  valid, boundary and invalid arguments generated from its schema, against
  the agent's ``test_deps``; a table per tool (calls, ok, refused,
  rejected, findings), then each finding with the smallest arguments that
  showed it. Exits 0 when no tool has a finding, 1 when one has, 2 on a
  usage error (an unknown tool, an agent with ``deps`` but no
  ``test_deps``, a bad option).

Importing this module registers the commands on :data:`tether.surfaces.cli.app.app`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from tether.surfaces.cli.app import ModelOption, _agent, _fail, _run_async, app, out
from tether.surfaces.cli.render import visible
from tether.surfaces.toolcheck import Finding, ToolCheckReport, check_tools

__all__ = ["tools_app", "tools_test"]

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
