"""``tether deploy``, ``promote``, ``rollback`` and ``versions``: agent versions in the store.

- ``tether deploy AGENT [--canary PERCENT] [--force --reason TEXT]``: run the
  golden set and the red-team battery against the agent as it is now, and
  register it as a version only if both pass and nothing regressed;
- ``tether promote AGENT``: the canary becomes the active version;
- ``tether rollback AGENT``: take the canary back, or else make the
  previous version active again, at once;
- ``tether versions AGENT``: versions with state, age, sessions, cost and
  eval results; ``tether versions diff AGENT A [B]``: what changed (risks
  first); ``tether versions retire AGENT VERSION``; ``tether versions log AGENT``.

Every text from a definition (instructions, tool names) is printed through
the safe console, so terminal escapes in it are shown, never acted on.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from tether.exceptions import ConfigError
from tether.store.versions import MIN_RETIRE_AGE, AgentVersion, VersionError, VersionStore
from tether.surfaces.cli.app import DbOption, _fail, _open_store, _run_async, app, err, out
from tether.surfaces.cli.render import SafeConsole
from tether.surfaces.loader import load_agent
from tether.surfaces.ops.definition import Diff, definition_of, diff
from tether.surfaces.ops.deploy import DeployOutcome, deploy, deployer, find_gate_files

__all__ = ["deploy_cmd", "promote_cmd", "rollback_cmd", "versions_cmd"]

T = TypeVar("T")


def _with_versions(db: str | None, work: Callable[[VersionStore], Awaitable[T]]) -> T:
    refused: list[str] = []

    async def go() -> T | None:
        store = await _open_store(db)
        try:
            return await work(VersionStore(store))
        except VersionError as exc:  # refused, not misused: exit 1
            refused.append(str(exc))
            return None
        finally:
            await store.aclose()

    result = _run_async(go)
    if refused:
        raise _fail(refused[0], 1)
    return result  # type: ignore[return-value]


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _evals(v: AgentVersion) -> str:
    if not v.evals:
        return "-"
    parts = []
    golden = v.evals.get("golden")
    if golden:
        parts.append(f"golden {golden.get('passed')}/{golden.get('cases')}")
    red = v.evals.get("redteam")
    if red:
        parts.append(f"red team {len(red.get('succeeded') or [])}/{red.get('attacks')} harmful")
    if v.forced_reason:
        parts.append("FORCED")
    return ", ".join(parts) or "-"


def _print_gate(outcome: DeployOutcome) -> None:
    gate = outcome.gate
    if gate.golden is not None:
        out.print(Text(f"golden set: {gate.golden['passed']}/{gate.golden['cases']} cases passed"))
    if gate.redteam is not None:
        red = gate.redteam
        out.print(
            Text(
                f"red team: {len(red['succeeded'])} of {red['attacks']} attacks succeeded "
                f"(harm rate {red['harm_rate']:.1%})"
            )
        )
    for line in gate.refusals + gate.regressions:
        out.print(Text(f"  refused: {line}", style="red"))


@app.command("deploy")
def deploy_cmd(
    agent_ref: Annotated[str, typer.Argument(metavar="AGENT", help="module:attr or a folder.")],
    canary: Annotated[
        float | None,
        typer.Option(
            "--canary", metavar="PERCENT", help="Send this share of new sessions to it first."
        ),
    ] = None,
    suite: Annotated[
        Path | None,
        typer.Option("--suite", metavar="PATH", help="Golden set (default: evals/ beside it)."),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--redteam", metavar="FILE", help="Red-team profile (default: redteam.yaml beside it)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Register even if the gate fails (needs --reason).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", metavar="TEXT", help="Why --force (recorded).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    db: DbOption = None,
) -> None:
    """Gate a new agent version on its evals and red team, then make it active (or a canary)."""
    if force and not (reason and reason.strip()):
        raise _fail("--force needs --reason TEXT: why this version skips the gate")
    agent = load_agent(agent_ref)
    if Path(agent_ref).is_dir():  # recorded for servers that load the version later
        agent_ref = str(Path(agent_ref).resolve())
    found_suite, found_profile = find_gate_files(agent_ref)
    suite = suite or found_suite
    profile = profile or found_profile
    err.print(
        Text(
            f"deploying {agent.name} version {agent.version}: golden set "
            f"{suite or '(none)'}, red team {profile or '(generic profile)'}",
            style="dim",
        )
    )
    outcome = _with_versions(
        db,
        lambda vs: deploy(
            vs,
            agent,
            ref=agent_ref,
            suite=suite,
            profile=profile,
            canary_percent=canary,
            force=force,
            reason=reason,
            by=deployer(),
        ),
    )
    if as_json:
        sys.stdout.write(json.dumps(outcome.to_dict(), ensure_ascii=True, default=str) + "\n")
    else:
        _print_gate(outcome)
        v = outcome.version
        if outcome.unchanged and v is not None:
            out.print(Text(f"{v.agent} version {v.version} is already {v.state}; nothing to do"))
        elif v is not None:
            share = f" for {v.canary_percent:g}% of new sessions" if v.canary_percent else ""
            forced = " (FORCED past a failing gate)" if outcome.forced else ""
            out.print(
                Text(
                    f"deployed {v.agent} version {v.version} ({v.hash[:12]}) as {v.state}{share}"
                    f"{forced}",
                    style="green" if not outcome.forced else "yellow",
                )
            )
    if outcome.version is None:
        if not as_json:
            out.print(Text("not deployed: fix the above, or --force --reason TEXT", style="red"))
        raise typer.Exit(1)


@app.command("promote")
def promote_cmd(
    agent: Annotated[str, typer.Argument(metavar="AGENT", help="The agent's name.")],
    db: DbOption = None,
) -> None:
    """Make the agent's canary its active version."""
    v = _with_versions(db, lambda vs: vs.promote(agent, by=deployer()))
    out.print(Text(f"{v.agent} version {v.version} is now active"))


@app.command("rollback")
def rollback_cmd(
    agent: Annotated[str, typer.Argument(metavar="AGENT", help="The agent's name.")],
    reason: Annotated[str | None, typer.Option("--reason", metavar="TEXT")] = None,
    db: DbOption = None,
) -> None:
    """Take back the canary, or make the previous version active again; at once."""
    taken, serving = _with_versions(db, lambda vs: vs.rollback(agent, by=deployer(), reason=reason))
    now = "nothing" if serving is None else f"version {serving.version}"
    out.print(
        Text(
            f"{agent}: version {taken.version} rolled back; new sessions start on {now}. "
            f"Sessions already on {taken.version} continue on it."
        )
    )


def _list(agent: str, db: str | None, as_json: bool) -> None:
    rows = _with_versions(db, lambda vs: vs.versions(agent))
    if not rows:
        raise _fail(f"no deployed version of {agent!r} (tether deploy AGENT registers one)", 1)
    if as_json:
        for v in rows:
            sys.stdout.write(json.dumps(v.to_dict(), ensure_ascii=True, default=str) + "\n")
        return
    now = time.time()
    table = Table(title=f"{agent} versions")
    for col in ("version", "state", "age", "sessions", "cost", "evals", "hash", "by"):
        table.add_column(col)
    for v in rows:
        state = str(v.state) + (f" {v.canary_percent:g}%" if v.canary_percent else "")
        table.add_row(
            Text(v.version),
            Text(state),
            Text(_age(now - v.created_at)),
            Text(str(v.sessions)),
            Text(f"${v.cost:.4f}"),
            Text(_evals(v)),
            Text(v.hash[:12]),
            Text(v.deployed_by or "-"),
        )
    # a pipe or a file gets the whole table, not one squeezed to 80 columns
    (out if out.is_terminal else SafeConsole(width=max(out.width, 160))).print(table)


def _print_diff(d: Diff) -> None:
    if d.same_content:
        out.print(Text(f"versions {d.a} and {d.b} have the same content"))
        return
    for risk in d.risks:
        out.print(Text(f"RISK: {risk}", style="bold red"))
    for name in d.added_tools:
        out.print(Text(f"+ tool {name}", style="green"))
    for name in d.removed_tools:
        out.print(Text(f"- tool {name}", style="red"))
    for c in d.changes:
        line = f"~ {c.path}: {json.dumps(c.old, default=str)} -> {json.dumps(c.new, default=str)}"
        out.print(Text(line, style="yellow" if c.risk else ""), soft_wrap=True)
    if d.instructions:
        out.print(Text("instructions:", style="bold"))
        for line in d.instructions:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            out.print(Text(line, style=style), soft_wrap=True)


async def _diff(vs: VersionStore, agent: str, a: str, b: str | None) -> Diff:
    left = await vs.get(agent, a)
    if left is None:
        raise VersionError(f"{agent} has no version {a!r}")
    if b is None:
        active, _canary = await vs.serving(agent)
        if active is None:
            raise VersionError(f"{agent} has no active version; name both versions")
        right = active
    elif ":" in b or "/" in b:  # code not yet deployed (a REF): what would change
        loaded = load_agent(b)
        return diff(left.definition, definition_of(loaded))
    else:
        found = await vs.get(agent, b)
        if found is None:
            raise VersionError(f"{agent} has no version {b!r}")
        right = found
    return diff(left.definition, right.definition)


@app.command(
    "versions",
    context_settings={"allow_interspersed_args": True},
)
def versions_cmd(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="AGENT | diff AGENT A [B|REF] | retire AGENT VERSION | log AGENT",
            help="What to show or do.",
        ),
    ],
    force: Annotated[bool, typer.Option("--force", help="retire: before 24 hours.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", metavar="TEXT")] = None,
    min_age_hours: Annotated[
        float,
        typer.Option("--min-age-hours", help="retire: the minimum age (24 unless --force)."),
    ] = MIN_RETIRE_AGE / 3600,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    db: DbOption = None,
) -> None:
    """List an agent's versions, diff two, retire one, or show what was done to them."""
    verb, rest = args[0], args[1:]
    if verb == "diff":
        if len(rest) not in (2, 3):
            raise _fail("usage: tether versions diff AGENT A [B]  (B: a version, or an agent REF)")
        d = _with_versions(
            db, lambda vs: _diff(vs, rest[0], rest[1], rest[2] if len(rest) > 2 else None)
        )
        if as_json:
            sys.stdout.write(json.dumps(d.to_dict(), ensure_ascii=True, default=str) + "\n")
        else:
            _print_diff(d)
        return
    if verb == "retire":
        if len(rest) != 2:
            raise _fail("usage: tether versions retire AGENT VERSION [--force --reason TEXT]")
        if force and not (reason and reason.strip()):
            raise _fail("--force needs --reason TEXT: why this version goes early")
        v = _with_versions(
            db,
            lambda vs: vs.retire(
                rest[0],
                rest[1],
                by=deployer(),
                min_age=min_age_hours * 3600,
                force=force,
                reason=reason,
            ),
        )
        out.print(Text(f"{v.agent} version {v.version} is retired; its sessions continue on it"))
        return
    if verb == "log":
        if len(rest) != 1:
            raise _fail("usage: tether versions log AGENT")
        rows: list[dict[str, Any]] = _with_versions(db, lambda vs: vs.history(rest[0]))
        if not rows:
            raise _fail(f"nothing was ever deployed for {rest[0]!r}", 1)
        for row in rows:
            if as_json:
                sys.stdout.write(json.dumps(row, ensure_ascii=True, default=str) + "\n")
            else:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"]))
                out.print(
                    Text(
                        f"{when}  {row['action']:<8} {row['version']}  by {row['by']}  "
                        f"{json.dumps(row['detail'], ensure_ascii=True)}"
                    ),
                    soft_wrap=True,
                )
        return
    if rest:
        raise _fail(f"unexpected {' '.join(rest)!r}; see tether versions --help")
    try:
        _list(verb, db, as_json)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
