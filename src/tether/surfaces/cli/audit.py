"""``tether audit AGENT``: each tool's flags, scopes and approval; the worst unapproved act.

Importing this module registers the command on :data:`tether.surfaces.cli.app.app`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from tether.surfaces.audit import audit_agent
from tether.surfaces.cli.app import _agent, app, out

__all__ = ["audit"]


@app.command()
def audit(
    agent_ref: Annotated[str, typer.Argument(metavar="AGENT", help="module:attr or a folder.")],
    model: Annotated[
        str | None, typer.Option("--model", help="Audit the agent as built for this chain.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show what AGENT can do, what needs approval, and the worst it can do unapproved."""
    report = audit_agent(_agent(agent_ref, model))
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=True) + "\n")
        return
    table = Table(title=f"{report.agent} v{report.version}", title_justify="left")
    for col in ("tool", "flags", "scopes", "output", "approval"):
        table.add_column(col)
    for t in report.tools:
        table.add_row(
            t.name,
            ", ".join(t.flags) or "-",
            ", ".join(t.scopes) or "any caller",
            "untrusted" if t.untrusted_output else "",
            t.approval,
        )
    out.print(table)
    out.print(Text(report.worst_unapproved, style="bold"))
    for w in report.warnings:
        out.print(Text(f"! {w}", style="yellow"))
