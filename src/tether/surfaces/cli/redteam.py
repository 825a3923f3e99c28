"""``tether redteam``: run the adversarial battery against an agent and report it by category.

``tether redteam AGENT [--model SPEC] [--json] [--threshold RATE]
[--profile FILE] [--report PATH] [--category C ...] [--limit-per-category N]
[--attack ID ...] [--battery FILE]``

Without ``--model`` every attack meets the worst-case obedient model, so
the run measures what the runtime guarantees; with ``--model`` the agent's
real chain answers (model plus runtime). The harm rate (attacks that did
harm, or crashed the runtime, over attacks run) above ``--threshold``
(default 0: any harm fails) exits 1; usage errors exit 2. ``--json`` prints
the summary as one JSON object, the last line of stdout. See
``docs/redteam.md``. Importing this module registers the command on
:data:`tether.surfaces.cli.app.app`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tether.exceptions import ConfigError
from tether.spec.agent import Agent
from tether.surfaces.cli.app import _agent, _fail, _run_async, app, err, model_chain, out
from tether.surfaces.cli.render import SafeConsole
from tether.surfaces.evals.redteam import (
    BLOCKS,
    AttackResult,
    Profile,
    RedTeamReport,
    RedTeamTarget,
    find_profile,
    load_battery,
    load_profile,
    run_redteam,
    select,
    target_for,
)
from tether.surfaces.html_pages import environment
from tether.surfaces.loader import guard_factory
from tether.surfaces.logs import quiet_logs

__all__ = ["redteam", "report_html", "report_table"]

T = TypeVar("T")

_BLOCK_LABELS = {
    "guard": "injection guard",
    "approval": "approval",
    "tool_refused": "tool refused",
    "runtime_rejected": "runtime rejected",
    "withheld": "answer withheld",
    "input_rejected": "input rejected",
    "not_attempted": "not attempted",
    "no_harm": "ran, no harm",
}


def _safe(text: str) -> str:
    """``text`` writable as UTF-8: a lone surrogate (the battery sends some) becomes ``\\udXXX``,
    which inside a JSON string is a valid escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


@app.command("redteam")
def redteam(
    agent_ref: Annotated[str, typer.Argument(metavar="AGENT", help="module:attr or a folder.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="SPEC",
            help="Run the agent's real model chain (e.g. local) instead of the worst-case model.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object (last line).")
    ] = False,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold", metavar="RATE", help="Highest harm rate that passes, 0 to 1 (default 0)."
        ),
    ] = 0.0,
    profile_file: Annotated[
        Path | None,
        typer.Option(
            "--profile", metavar="FILE", help="What harm means (default: AGENT/redteam.yaml)."
        ),
    ] = None,
    report_path: Annotated[
        Path | None,
        typer.Option("--report", metavar="PATH", help="Write every verdict: .json or .html."),
    ] = None,
    category: Annotated[
        list[str],
        typer.Option("--category", metavar="C", help="Only this category (repeatable)."),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    limit_per_category: Annotated[
        int | None,
        typer.Option(
            "--limit-per-category",
            metavar="N",
            help="At most N attacks per category, spread over it (a stratified subset).",
        ),
    ] = None,
    attack_ids: Annotated[
        list[str], typer.Option("--attack", metavar="ID", help="Only this attack (repeatable).")
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    battery_file: Annotated[
        Path | None,
        typer.Option(
            "--battery", metavar="FILE", help="Another battery (default: the shipped one)."
        ),
    ] = None,
    show_logs: Annotated[
        bool,
        typer.Option(
            "--show-logs", help="Show the runtime's log records (the attacks cause many)."
        ),
    ] = False,
) -> None:
    """Attack an agent with the red-team battery; report attack success by category."""
    if not 0.0 <= threshold <= 1.0:
        raise _fail(f"--threshold is a rate between 0 and 1, not {threshold}")
    if report_path is not None and report_path.suffix.lower() not in (".json", ".html"):
        raise _fail(f"--report writes .json or .html, not {report_path.name}")
    agent = _agent(agent_ref, None)
    try:
        models = model_chain(model)
        battery = _read(load_battery, battery_file)
        attacks = select(
            battery.attacks,
            categories=category,
            ids=attack_ids,
            limit_per_category=limit_per_category,
        )
        path = profile_file or find_profile(agent_ref)
        profile: Profile | None = _read(load_profile, path) if path is not None else None
        target = _guarded(target_for(agent, profile, models), profile)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if not attacks:
        raise _fail("no attack matches the filters")
    if profile is None:
        err.print(
            Text(
                f"no red-team profile for {agent_ref}: harmful calls are synthesised from the "
                "tools' risk flags and schemas, and the agent's own deps are used (point them "
                "at a test copy). Give one with --profile FILE.",
                style="yellow",
            )
        )
    live = models is not None
    done = [0]

    def progress(r: AttackResult) -> None:
        done[0] += 1
        if live:
            err.print(
                Text(
                    f"[{done[0]}/{len(attacks)}] {r.attack.id}: {r.outcome} ({r.duration_s:.1f} s)",
                    style="dim",
                )
            )

    with quiet_logs(not show_logs):
        report = _run_async(
            lambda: run_redteam(
                attacks,
                target,
                markers=battery.markers,
                threshold=threshold,
                agent_name=agent.name,
                profile_name=str(path) if path is not None else "(generic)",
                battery_name=battery.source,
                on_result=progress,
            )
        )
    if report_path is not None:
        _write(report, report_path)
    if as_json:
        sys.stdout.write(_safe(json.dumps(report.to_dict(), ensure_ascii=True)) + "\n")
    else:
        # a pipe or a file gets the whole table, not one squeezed to 80 columns
        console = out if out.is_terminal else SafeConsole(width=max(out.width, _WIDE))
        console.print(report_table(report))
        _summary(report, console)
    if not report.ok:
        raise typer.Exit(1)


def _read(load: Callable[[Any], T], path: Path | None) -> T:
    """``load(path)``, with the file's read errors (unreadable, not UTF-8) as ConfigError."""
    try:
        return load(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None


def _guarded(target: RedTeamTarget, profile: Profile | None) -> RedTeamTarget:
    """``target`` with the profile's agent and environment factories raising
    AgentLoadError (a one-line usage error) when they fail."""
    if profile is None:
        return target
    changes: dict[str, Any] = {}
    if not isinstance(target.agent, Agent) and profile.agent:
        changes["agent"] = guard_factory(target.agent, what="red-team agent", ref=profile.agent)
    if target.environment is not None and profile.environment:
        changes["environment"] = guard_factory(
            target.environment, what="red-team environment", ref=profile.environment
        )
    return dataclasses.replace(target, **changes) if changes else target


def _write(report: RedTeamReport, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".html":
            path.write_text(_safe(report_html(report)), encoding="utf-8")
        else:
            data = json.dumps(report.to_dict(attacks=True), ensure_ascii=False, indent=1)
            path.write_text(_safe(data) + "\n", encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or exc}") from None
    err.print(Text(f"wrote {path}", style="dim"))


_COLUMNS = ("attacks", "reached", "attempted", "harmful", "crashes", "disclosures")


def _row(d: dict[str, Any]) -> list[str]:
    """A category's (or the run's) figures, in :data:`_COLUMNS` then :data:`BLOCKS` order."""
    cells = [
        str(d["attacks"]),
        str(d["reached"]),
        str(d["attempted"]),
        str(d["harmful_actions"]),
        str(d["crashes"]),
        str(d["disclosures"]),
    ]
    return cells + [str(d["blocked"][b]) for b in BLOCKS]


_SHORT = {
    "guard": "guard",
    "approval": "approval",
    "tool_refused": "tool",
    "runtime_rejected": "runtime",
    "withheld": "withheld",
    "input_rejected": "input",
    "not_attempted": "none",
    "no_harm": "no harm",
}
_CAPTION = (
    "stopped by: guard (the injection guard quarantined it), approval (declined, or the "
    "attacker had to confirm it), tool (the tool itself refused), runtime (invalid arguments, "
    "no such tool, a limit), withheld (the answer gave the instructions away), input (the "
    "message was refused), none (no harmful call made), no harm (probes ran, no harm found)"
)
_WIDE = 160


def report_table(report: RedTeamReport) -> Table:
    """Attack outcomes by category: harm done, and what stopped the rest."""
    table = Table(
        title=f"Red team: {report.agent} against the {report.model} model", caption=_CAPTION
    )
    table.add_column("category", no_wrap=True)
    for name in ("attacks", "reached", "tried", "harmful", "crashes", "disclosed"):
        table.add_column(name, justify="right")
    for b in BLOCKS:
        table.add_column(_SHORT[b], justify="right")
    for cat, d in [*report.by_category().items(), ("all", report.totals())]:
        if cat == "all":
            table.add_section()
        bad = d["harmful_actions"] or d["crashes"]
        style = "bold red" if bad else "bold" if cat == "all" else None
        table.add_row(cat, *_row(d), style=style)
    return table


def _summary(report: RedTeamReport, console: Console) -> None:
    verdict = "PASS" if report.ok else "FAIL"
    flagged = sum(r.flagged for r in report.results)
    line = (
        f"{report.cases} attacks · {report.harmful_actions} harmful actions · "
        f"{report.crashes} crashes · harm rate {_pct(report.harm_rate)} "
        f"(threshold {_pct(report.threshold)}) · {report.disclosures} disclosures of the "
        f"system prompt · {flagged} flagged by the injection guard · "
        f"{report.duration_s:.1f} s · {verdict}"
    )
    console.print(Text(line, style="bold green" if report.ok else "bold red"))
    if report.skipped:
        console.print(
            Text(
                f"skipped {len(report.skipped)} tool-output attacks: the agent has no tool "
                "the profile plants them in",
                style="yellow",
            )
        )
    for r in report.results:
        if r.succeeded:
            why = "; ".join(r.harms) or r.crash or r.disclosure or ""
            console.print(Text(_safe(f"  {r.attack.id} ({r.attack.category}): {r.outcome}: {why}")))


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
td.l{text-align:left;max-width:48em;word-break:break-word}
tr.bad td{background:#fde2e2} .ok{color:#176f2c} .fail{color:#b00020}
"""


# The page's template (Jinja2, autoescaped); a backslash at the end of a line here
# joins it to the next.
_PAGE = (
    """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Red team: {{ agent }}</title>
<style>"""
    + _CSS
    + """</style></head><body>
<h1>Red team: {{ agent }} against the {{ model }} model</h1>
<p>{{ cases }} attacks · {{ harmful }} harmful actions · {{ crashes }} crashes ·
harm rate {{ harm_rate }} (threshold {{ threshold }}) · {{ disclosures }}
disclosures · {{ duration }} s · {% if ok %}<b class="ok">PASS</b>\
{% else %}<b class="fail">FAIL</b>{% endif %}</p>
<p>profile {{ profile }} · battery {{ battery }}</p>
<table><tr>{% for h in head %}<th>{{ h }}</th>{% endfor %}</tr>\
{% for cat, cells, bad in categories %}<tr{% if bad %} class="bad"{% endif %}><td>{{ cat }}</td>\
{% for x in cells %}<td>{{ x }}</td>{% endfor %}</tr>{% endfor %}\
<tr><td><b>all</b></td>{% for x in totals %}<td><b>{{ x }}</b></td>{% endfor %}</tr></table>
<h2>Attacks</h2>
<table><tr><th>id</th><th>category</th><th>goal</th><th>where</th><th>outcome</th>
<th>harmful calls tried</th><th>harm</th></tr>{% for a in attacks %}\
<tr{% if a.bad %} class="bad"{% endif %}>{% for x in a.cells %}<td class="l">{{ x }}</td>\
{% endfor %}</tr>{% endfor %}</table>
</body></html>
"""
)
#: every text (attack goals, tool names, harms) on one line, hidden characters shown
_ENV = environment({"page.html": _PAGE})


def report_html(report: RedTeamReport) -> str:
    """The report as one self-contained HTML page (no scripts, no external files).

    Rendered from :data:`_PAGE` with autoescape on, every text with its hidden
    characters (a newline too) made visible first: see
    :mod:`tether.surfaces.html_pages`.
    """
    attacks = []
    for r in report.results:
        why = "; ".join(r.harms) or r.crash or r.disclosure or ""
        tries = "; ".join(f"{t.tool}: {t.fate}" for t in r.tries)
        about = [r.attack.id, r.attack.category, r.attack.goal, r.attack.where, r.outcome]
        attacks.append({"bad": r.succeeded, "cells": [*about, tries, why]})
    return _ENV.get_template("page.html").render(
        agent=report.agent,
        model=report.model,
        cases=report.cases,
        harmful=report.harmful_actions,
        crashes=report.crashes,
        harm_rate=_pct(report.harm_rate),
        threshold=_pct(report.threshold),
        disclosures=report.disclosures,
        duration=f"{report.duration_s:.1f}",
        ok=report.ok,
        profile=report.profile,
        battery=report.battery,
        head=["category", *_COLUMNS, *(_BLOCK_LABELS[b] for b in BLOCKS)],
        categories=[
            (cat, _row(c), bool(c["harmful_actions"] or c["crashes"]))
            for cat, c in report.by_category().items()
        ],
        totals=_row(report.totals()),
        attacks=attacks,
    )
