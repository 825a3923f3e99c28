"""``tether audit AGENT``: each tool's flags, scopes and approval; the worst unapproved act.

An agent with MCP servers among its tools has them opened (each within
``--timeout`` seconds, then closed) and their tools audited like its own,
each row naming its server and pin hash. Pins are read from ``--db`` when
given, else from ``$TETHER_DATABASE_URL``, else from the default store only
when its file exists (the audit never creates a store); the output says
which. A server that cannot be reached is a warning; the exit status stays 0.

Importing this module registers the command on :data:`tether.surfaces.cli.app.app`.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url

from tether.spec.agent import Agent
from tether.store import resolve_url
from tether.surfaces.audit import AgentAudit, audit_agent, audit_live
from tether.surfaces.cli.app import DbOption, _agent, _open_store, _run_async, app, out
from tether.surfaces.cli.render import visible
from tether.surfaces.toolsources import OPEN_TIMEOUT

__all__ = ["audit"]


@app.command()
def audit(
    agent_ref: Annotated[str, typer.Argument(metavar="AGENT", help="module:attr or a folder.")],
    model: Annotated[
        str | None, typer.Option("--model", help="Audit the agent as built for this chain.")
    ] = None,
    db: DbOption = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.1, help="Seconds to open each MCP server and list its tools."
        ),
    ] = OPEN_TIMEOUT,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show what AGENT can do, what needs approval, and the worst it can do unapproved."""
    agent = _agent(agent_ref, model)
    report = audit_agent(agent) if not agent.toolsets else _live(agent, db, timeout)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=True) + "\n")
        return
    table = Table(title=f"{report.agent} v{report.version}", title_justify="left")
    columns = ["tool", "flags", "scopes", "output", "approval"]
    if report.servers:
        columns += ["server", "hash", "pin"]
    for col in columns:
        table.add_column(col)
    for t in report.tools:
        row: list[str | Text] = [
            Text(visible(t.name, one_line=True)),
            ", ".join(t.flags) or "-",
            ", ".join(t.scopes) or "any caller",
            "untrusted" if t.untrusted_output else "",
            t.approval,
        ]
        if report.servers:
            row += [
                Text(visible(t.server or "-", one_line=True)),
                (t.hash or "-")[:12],
                t.pin or "-",
            ]
        table.add_row(*row)
    for s in report.servers:
        if s.error is not None:
            table.add_row(
                Text("(unreachable)", style="bold yellow"),
                "-",
                "-",
                "",
                "-",
                Text(visible(s.name, one_line=True)),
                "-",
                "-",
            )
    out.print(table)
    out.print(Text(report.worst_unapproved, style="bold"))
    if report.servers:
        where = report.pins_from or "not read (no store; pass --db)"
        out.print(Text(f"pins: {visible(where, one_line=True)}", style="dim"), soft_wrap=True)
    for w in report.warnings:
        out.print(Text(f"! {visible(w, one_line=True)}", style="yellow"), soft_wrap=True)


def _pins_store(db: str | None) -> str | None:
    """Where to read pins: ``--db``, ``$TETHER_DATABASE_URL``, or the default store if it exists."""
    if db or os.environ.get("TETHER_DATABASE_URL"):
        return db or os.environ["TETHER_DATABASE_URL"]
    url = make_url(resolve_url(None))
    if url.database and os.path.exists(url.database):
        return str(url)
    return None


def _live(agent: Agent, db: str | None, timeout: float) -> AgentAudit:
    where = _pins_store(db)

    async def go() -> AgentAudit:
        if where is None:
            return await audit_live(agent, open_timeout=timeout)
        store = await _open_store(db)
        try:
            report = await audit_live(agent, pins=store.tool_pins, open_timeout=timeout)
        finally:
            await store.aclose()
        report.pins_from = "--db" if db else _origin(where)
        return report

    return _run_async(go)


def _origin(url: str) -> str:
    if os.environ.get("TETHER_DATABASE_URL"):
        return "$TETHER_DATABASE_URL"
    return f"the default store ({make_url(url).database})"
