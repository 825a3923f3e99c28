"""``tether cost``: the unit-economics report of the stored sessions.

Reads the sessions (and their model and tool calls) from the store, computes the
report with :func:`tether.surfaces.costs.build_report` and prints it as rich
tables, one JSON object (``--json``), and/or one HTML file (``--html``).
Importing this module registers the command on :data:`tether.surfaces.cli.app.app`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from tether.exceptions import ConfigError
from tether.runtime.ports import SessionRecord
from tether.spec.events import Event
from tether.spec.pricing import PriceTable, load_prices
from tether.surfaces.cli.app import (
    DbOption,
    _fail,
    _open_store,
    _run_async,
    _setting,
    app,
    err,
    out,
)
from tether.surfaces.cost_html import (
    TOOL_HEAD,
    VERSION_HEAD,
    model_rows,
    projection_rows,
    reprice_rows,
    tool_rows,
    version_rows,
    write_html,
)
from tether.surfaces.costs import (
    COST_EVENTS,
    CostReport,
    build_report,
    money,
    reprice_price,
)

__all__ = ["cost", "report_tables"]

_DAY = 86_400.0


def _prices(path: Path | None, model: str | None) -> PriceTable:
    """The price table in force, checked for ``model`` before the store is read."""
    try:
        prices = load_prices(path)
    except ConfigError as exc:
        raise _fail(str(exc) if path is not None else str(_setting("TETHER_PRICES", exc))) from None
    try:
        if model is not None:
            reprice_price(prices, model)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    return prices


@app.command("cost")
def cost(
    db: DbOption = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent name.")] = None,
    since: Annotated[
        float | None,
        typer.Option("--since", metavar="DAYS", help="Only sessions created in the last DAYS."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="SPEC",
            help="Also price the same token usage on this model (e.g. anthropic:claude-haiku-4-5).",
        ),
    ] = None,
    sessions_per_user: Annotated[
        float | None,
        typer.Option(
            "--sessions-per-user",
            metavar="N",
            help="Sessions per user per day for the projections (default: observed).",
        ),
    ] = None,
    prices_file: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            metavar="FILE",
            help="JSON or TOML price overrides (default: $TETHER_PRICES, else built-in).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON object (last line).")
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", metavar="PATH", help="Also write the report as one HTML file."),
    ] = None,
) -> None:
    """What a session costs, and what a month would cost at 100 to 100,000 daily users."""
    if since is not None and not since > 0:
        raise _fail(f"--since takes a number of days > 0, not {since}")
    if sessions_per_user is not None and not sessions_per_user > 0:
        raise _fail(f"--sessions-per-user takes a number > 0, not {sessions_per_user}")
    prices = _prices(prices_file, model)
    since_ts = None if since is None else time.time() - since * _DAY

    async def go() -> tuple[list[SessionRecord], list[Event]]:
        store = await _open_store(db)
        try:
            sessions = await store.list_sessions(limit=None, agent=agent, since=since_ts)
            # a call happens after its session was created, so `since` cannot drop one we keep
            events = await store.scan_events(list(COST_EVENTS), since=since_ts) if sessions else []
            return sessions, events
        finally:
            await store.aclose()

    sessions, events = _run_async(go)
    try:
        report = build_report(
            sessions,
            events,
            prices=prices,
            reprice_model=model,
            sessions_per_user_day=sessions_per_user,
            filters={"agent": agent, "since_days": since},
        )
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if html is not None:
        try:
            written = write_html(report, html)
        except OSError as exc:
            raise _fail(f"cannot write {html}: {exc.strerror or exc}") from None
        err.print(Text(f"wrote {written}", style="dim"))
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=True) + "\n")
        return
    if not report.sessions:
        scope = [f"agent {agent}" if agent else "", f"the last {since:g} days" if since else ""]
        scope = [s for s in scope if s]
        out.print(
            f"no sessions stored{' for ' + ', '.join(scope) if scope else ''}: "
            "nothing to report (cost $0)"
        )
        return
    for table in report_tables(report):
        out.print(table)
    _notes(report)


def _notes(report: CostReport) -> None:
    out.print(
        Text(
            f"prices as of {report.prices_as_of or 'undated'} ({report.prices_source}); "
            f"a month is 30 days; percentiles interpolate between sessions",
            style="dim",
        )
    )
    for m in report.unpriced:
        out.print(
            Text(
                f"unpriced: {m.model}: {m.calls:,} calls, {m.usage.total_tokens:,} tokens counted "
                "at $0; give it a price with --prices FILE",
                style="bold yellow",
            )
        )
    for t in report.by_tool:
        if t.cost_errors:
            out.print(
                Text(
                    f"cost function failed: {t.tool}: {t.cost_errors:,} calls counted at $0; "
                    "see the cost_error of their tool.finished events",
                    style="bold yellow",
                )
            )


def _num(table: Table, *names: str) -> None:
    for name in names:
        table.add_column(name, justify="right")


def _rows(table: Table, rows: Sequence[Sequence[str]]) -> None:
    for row in rows:  # as Text: a name with [brackets] is shown, not read as rich markup
        table.add_row(*(Text(cell) for cell in row))


def report_tables(report: CostReport) -> Sequence[Table]:
    """The report as rich tables: summary, reprice, projections, by version, by model,
    and by tool (when a tool declared a cost)."""
    r = report
    summary = Table(title="Cost", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    rows = [
        ("sessions", f"{r.sessions:,}"),
        ("model calls", f"{r.calls:,}"),
        ("total cost", money(r.total_cost)),
        ("model cost (tokens)", money(r.model_cost)),
        ("tool cost", money(r.tool_cost)),
        ("priced tool calls (charged)", f"{r.tool_calls:,} ({r.charged_tool_calls:,})"),
        ("per session: mean", money(r.per_session.mean)),
        ("per session: p50", money(r.per_session.p50)),
        ("per session: p95", money(r.per_session.p95)),
        ("successful sessions", f"{r.successful_sessions:,}"),
        ("per successful session", money(r.per_successful_session)),
        ("user-days", f"{r.user_days:,}"),
        ("per user per day", money(r.per_user_day)),
        ("sessions per user per day", f"{r.observed_sessions_per_user_day:.3g} observed"),
        (
            "tokens in / out",
            f"{r.usage.input_tokens:,} / {r.usage.output_tokens:,}",
        ),
        (
            "tokens cache read / write",
            f"{r.usage.cache_read_tokens:,} / {r.usage.cache_write_tokens:,}",
        ),
    ]
    for what, value in rows:
        summary.add_row(what, value)
    tables = [summary]

    if r.reprice is not None:
        alt = Table(title=f"Repriced on {r.reprice.model} (same tokens)")
        alt.add_column("")
        _num(alt, "observed", r.reprice.model)
        _rows(alt, reprice_rows(r))
        tables.append(alt)

    proj = Table(
        title=f"Monthly cost ({r.sessions_per_user_day:.3g} sessions per user per day, 30 days)"
    )
    _num(proj, "daily users", "observed")
    if r.reprice is not None:
        _num(proj, r.reprice.model)
    _rows(proj, projection_rows(r))
    tables.append(proj)

    versions = Table(title="By agent version")
    versions.add_column(VERSION_HEAD[0])
    versions.add_column(VERSION_HEAD[1])
    _num(versions, *VERSION_HEAD[2:])
    _rows(versions, version_rows(r))
    tables.append(versions)

    models = Table(title="By model")
    models.add_column("model")
    _num(models, "calls", "input", "output", "cache read", "cache write", "cost")
    _rows(models, model_rows(r.by_model))
    tables.append(models)

    if r.by_tool:
        tools = Table(title="By tool (tools that declare a cost)")
        tools.add_column(TOOL_HEAD[0])
        _num(tools, *TOOL_HEAD[1:])
        _rows(tools, tool_rows(r.by_tool))
        tables.append(tools)
    return tables
