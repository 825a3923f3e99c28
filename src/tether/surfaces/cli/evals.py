"""``tether eval``: run a golden set, report it, compare it with a baseline; capture incidents.

- ``tether eval SUITE [options]``: run the suite's cases (see ``docs/evals.md``),
  print the four questions, pass rate, cost and latency and every failed
  check's message; write reports (``--report x.html``/``x.json``,
  ``--junit x.xml``); compare with an earlier JSON report (``--baseline``);
  with ``--coverage``, a table of the cases that call, fail and expect approval
  of each of the agent's tools (:mod:`tether.surfaces.evals.coverage`).
  Exit status: 0 all passed, 1 a case failed or something regressed, 2 a
  usage error (a bad case file: which file, case and key), 3 every case passed
  but a tool no case covers (``--require-coverage``).
- ``tether eval capture SESSION_ID --suite FILE``: a stored session becomes a
  scripted case appended to FILE (:mod:`tether.surfaces.evals.capture`).
- ``tether eval schema``: the JSON Schema of a case.

Importing this module registers the commands on :data:`tether.surfaces.cli.app.app`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from tether.exceptions import AgentLoadError, ConfigError
from tether.spec.agent import Agent
from tether.spec.events import Event, EventType
from tether.surfaces.cli.app import (
    DbOption,
    _fail,
    _open_store,
    _run_async,
    app,
    err,
    model_chain,
    out,
)
from tether.surfaces.cli.render import visible
from tether.surfaces.evals.capture import append_case, case_from_events
from tether.surfaces.evals.cases import Case, case_schema
from tether.surfaces.evals.coverage import Coverage, agent_tools, coverage_of
from tether.surfaces.evals.report import EvalReport, Regression, failed_checks, pct
from tether.surfaces.evals.runner import (
    AgentSource,
    CaseResult,
    Environment,
    Target,
    agent_factory,
    run_cases,
)
from tether.surfaces.evals.suite import Suite, load_suite
from tether.surfaces.loader import guard_factory, load_agent, load_object
from tether.surfaces.logs import quiet_logs

__all__ = ["EXIT_UNCOVERED", "capture", "eval_app", "run_suite", "schema", "schema_text"]


class _DefaultCommandGroup(TyperGroup):
    """A group whose first argument is a subcommand *or* the default command's argument.

    ``tether eval SUITE`` and ``tether eval capture ID`` must both work, but a
    click/typer group takes its first argument as a subcommand name, and a
    group callback with a SUITE argument would swallow ``capture`` as a suite
    path; neither has a "default subcommand". So this subclass of typer's
    click group does it: when the first argument is no subcommand's name (nor
    ``--help``), parsing goes on as if the hidden default subcommand, ``run``,
    had been named. A suite folder that is called ``capture`` or ``schema`` is still
    reachable as ``tether eval run capture``.
    """

    default_command = "run"

    # ``ctx`` is a click context from the copy of click that typer ships privately
    # (``typer._click``), so it is typed by what is used of it: ``help_option_names``.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_DefaultCommandGroup,
    help=(
        "Run a golden set of eval cases: tether eval SUITE [OPTIONS] "
        "(the options: tether eval run --help). Exit status 0: all passed; 1: a case "
        "failed or regressed; 2: usage error; 3: a tool no case covers (--require-coverage)."
    ),
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")

_EDGE_NOTE = "edge cases: tags edge, mutation, failing-tool, out-of-scope, malformed, adversarial"
#: the exit status of ``--require-coverage`` when every case passed but a tool is uncovered
EXIT_UNCOVERED = 3
#: case ids shown in a coverage cell before ``+N more``
_IDS_SHOWN = 3


# -- building the target -----------------------------------------------------------


def _agent_source(ref: str, failures: list[AgentLoadError]) -> AgentSource:
    """An agent, or a factory of one per case, from a reference (folder or module:attr).

    A factory that raises fails its case; the error is also kept in ``failures``.
    """
    if Path(ref).is_dir():
        return load_agent(ref)
    obj = load_object(ref, what="agent")
    if isinstance(obj, Agent):
        return obj
    if callable(obj):
        return agent_factory(
            guard_factory(obj, what="agent factory", ref=ref, failures=failures), ref
        )
    raise ConfigError(f"{ref!r} is a {type(obj).__name__}, not a tether.Agent or a factory of one")


def _target(
    suite: Suite, agent_ref: str | None, models: list[str] | None, failures: list[AgentLoadError]
) -> Target:
    """What the cases run against; the factories' errors are kept in ``failures``."""
    ref = agent_ref or suite.config.agent
    if not ref:
        raise ConfigError(
            f"{suite.path}: no agent to test: pass --agent REF, or name it in the suite "
            "folder's suite.yaml (agent: module:attr)"
        )
    environment: Callable[[Case], Environment] | None = None
    if suite.config.environment:
        env = load_object(suite.config.environment, what="environment")
        if not callable(env):
            raise ConfigError(f"environment {suite.config.environment!r} is not callable")
        environment = guard_factory(
            env, what="environment", ref=suite.config.environment, failures=failures
        )
    return Target(agent=_agent_source(ref, failures), environment=environment, models=models)


def _select(cases: list[Case], ids: list[str], tags: list[str]) -> list[Case]:
    known = {c.id for c in cases}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ConfigError(f"no case with id {', '.join(map(repr, unknown))} in this suite")
    chosen = [
        c
        for c in cases
        if (not ids or c.id in ids) and (not tags or not set(tags).isdisjoint(c.tags))
    ]
    if not chosen:
        among = f" among the cases {', '.join(ids)}" if ids else ""
        raise ConfigError(f"no case has the tag(s) {', '.join(tags)}{among}")
    return chosen


def _baseline(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the baseline {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"the baseline {path} is not JSON ({exc})") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("cases"), list)
        and isinstance(data.get("summary"), dict)
    ):
        raise ConfigError(
            f"the baseline {path} is not an eval report: write one with "
            "`tether eval SUITE --report baseline.json`"
        )
    return data


# -- running -----------------------------------------------------------------------


def _run(cases: list[Case], target: Target, k: int) -> list[CaseResult]:
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("running cases", total=len(cases))
        failed = 0

        def tick(result: CaseResult) -> None:
            nonlocal failed
            failed += not result.passed
            note = f", {failed} failed" if failed else ""
            bar.update(task, advance=1, description=f"running cases{note}")

        return _run_async(lambda: run_cases(cases, target, k=k, on_result=tick))


# -- printing ----------------------------------------------------------------------


def _summary_tables(report: EvalReport) -> list[Table]:
    s = report.summary()
    figures = Table(title=f"Eval: {report.suite}", show_header=False)
    figures.add_column("what")
    figures.add_column("value", justify="right")
    for what, value in report.figures(s):
        figures.add_row(what, value)
    questions = Table(title="The four questions", caption=_EDGE_NOTE)
    questions.add_column("question")
    questions.add_column("rate", justify="right")
    questions.add_column("passed", justify="right")
    for name, q in s["questions"].items():
        questions.add_row(
            Text(f"{name}: {q['question']}"),
            pct(q["rate"]),
            f"{q['passed']}/{q['total']} {q['counts']}",
        )
    return [figures, questions]


def _print_failures(console: Console, report: EvalReport) -> None:
    failed = [r for r in report.results if not r.passed]
    if not failed:
        return
    table = Table(title=f"Failed cases ({len(failed)})")
    table.add_column("case")
    table.add_column("tags")
    table.add_column("failed checks")
    for r in failed:
        names = ", ".join(dict.fromkeys(c.name for c in failed_checks(r)))
        table.add_row(Text(r.case.id), Text(", ".join(r.case.tags)), Text(names))
    console.print(table)
    # The messages in full, unwrapped: a diff is read line by line, not in a table cell.
    for r in failed:
        tries = f" ({sum(a.passed for a in r.attempts)}/{len(r.attempts)} attempts passed)"
        head = f"FAILED {r.case.id}" + (tries if len(r.attempts) > 1 else "")
        console.print(Text(head, style="bold red"), soft_wrap=True)
        for c in failed_checks(r):
            body = c.message.replace("\n", "\n    ")
            console.print(Text(f"  {c.name}: {body}"), soft_wrap=True, highlight=False)


def _print_regressions(console: Console, regressions: list[Regression], baseline: Path) -> None:
    if not regressions:
        console.print(Text(f"no regression against {baseline}", style="green"))
        return
    console.print(Text(f"{len(regressions)} regression(s) against {baseline}:", style="bold red"))
    for reg in regressions:
        console.print(Text(f"  regression: {reg.message}"), soft_wrap=True, highlight=False)


def _ids(ids: Sequence[str]) -> Text:
    """A coverage cell: how many cases, and the first few ids (``+N more``)."""
    if not ids:
        return Text("-", style="dim")
    shown = ", ".join(visible(i, one_line=True) for i in ids[:_IDS_SHOWN])
    more = f", +{len(ids) - _IDS_SHOWN} more" if len(ids) > _IDS_SHOWN else ""
    return Text(f"{len(ids)}: {shown}{more}")


def _print_coverage(console: Console, coverage: Coverage) -> None:
    """The coverage table and the uncovered tools' names; names and ids are shown with their
    hidden characters escaped (:func:`visible`) before the table is laid out."""
    covered = sum(r.covered for r in coverage.tools)
    table = Table(title=f"Tool coverage: {covered}/{len(coverage.tools)} tools covered")
    table.add_column("tool", overflow="fold")
    for title in ("cases calling it", "failed in", "approval in"):
        table.add_column(title, overflow="fold")
    table.add_column("covered")
    for r in coverage.tools:
        table.add_row(
            Text(visible(r.tool, one_line=True)),
            _ids(r.calls),
            _ids(r.failures),
            _ids(r.approvals),
            Text("yes", style="green") if r.covered else Text("no", style="bold red"),
        )
    console.print(table)
    if coverage.uncovered:
        names = ", ".join(visible(t, one_line=True) for t in coverage.uncovered)
        line = f"uncovered tools: {names}"
        console.print(Text(line, style="bold red"), soft_wrap=True, highlight=False)
    else:
        console.print(Text("every tool is covered by a case", style="green"))


def _coverage(target: Target, cases: list[Case], report: EvalReport) -> Coverage:
    """The coverage of the tested agent's tools (every agent a factory builds for the cases)."""
    try:
        tools = agent_tools(target.agent, cases, models=target.models)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    return coverage_of(tools, report)


def _write(what: str, path: Path, write: Callable[[Path], Path]) -> None:
    try:
        written = write(path)
    except OSError as exc:
        raise _fail(f"cannot write the {what} {path}: {exc.strerror or exc}") from None
    err.print(Text(f"wrote {written}", style="dim"))


# -- commands ----------------------------------------------------------------------


@eval_app.command("run", hidden=True)
def run_suite(
    suite_path: Annotated[
        Path,
        typer.Argument(
            metavar="SUITE", help="A case file (YAML, JSONL), or a folder of them with suite.yaml."
        ),
    ],
    agent_ref: Annotated[
        str | None,
        typer.Option(
            "--agent",
            metavar="REF",
            help="The agent to test (module:attr of an Agent or of a factory (case, models), "
            "or a folder); default: the suite.yaml's agent.",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="SPEC",
            help="Model chain for live cases, comma-separated (anthropic:MODEL, openai:MODEL, "
            "local). Scripted cases stay scripted: their answers are in the case.",
        ),
    ] = None,
    k: Annotated[
        int,
        typer.Option(
            "-k",
            "--attempts",
            min=1,
            help="Run each live case k times; it passes only if all k pass (pass^k).",
        ),
    ] = 1,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            metavar="FILE",
            help="A JSON report of an earlier run: exit 1 on any regression against it.",
        ),
    ] = None,
    report_path: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="PATH",
            help="Write the report: HTML if PATH ends in .html, JSON if .json.",
        ),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", metavar="PATH", help="Write JUnit XML (for CI test tabs)."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the summary as one JSON object, the last line of stdout."
        ),
    ] = False,
    tags: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", metavar="TAG", help="Only cases with this tag (repeat: any of them)."
        ),
    ] = None,
    case_ids: Annotated[
        list[str] | None,
        typer.Option("--case", metavar="ID", help="Only this case (repeat for more)."),
    ] = None,
    show_logs: Annotated[
        bool,
        typer.Option(
            "--show-logs",
            help="Show the runtime's log records (hidden: injected faults log errors).",
        ),
    ] = False,
    show_coverage: Annotated[
        bool,
        typer.Option(
            "--coverage",
            help="Show, per tool of the agent, the cases that call it, make it fail and "
            "expect its approval, and name the tools no case covers.",
        ),
    ] = False,
    require_coverage: Annotated[
        bool,
        typer.Option(
            "--require-coverage",
            help="As --coverage, and exit 3 when a tool is covered by no case (and every "
            "case passed).",
        ),
    ] = False,
) -> None:
    """Run a suite of eval cases and report; exit 1 if a case failed or regressed."""
    started = time.time()
    failures: list[AgentLoadError] = []
    if report_path is not None and report_path.suffix.lower() not in (".html", ".htm", ".json"):
        raise _fail(f"--report {report_path}: the name must end in .html or .json")
    try:
        suite = load_suite(suite_path)
        cases = _select(suite.cases, case_ids or [], tags or [])
        base = _baseline(baseline)
        chain = model_chain(model)
        target = _target(suite, agent_ref, chain, failures)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if chain and all(c.mode == "scripted" for c in cases):
        err.print(Text("note: --model is unused: every case run is scripted", style="yellow"))
    with quiet_logs(not show_logs):
        results = _run(cases, target, k)
    if failures:  # the suite's own code is broken: no case result means anything
        raise _fail(str(failures[0]))
    report = EvalReport(
        suite.name,
        results,
        k=k,
        model=",".join(chain) if chain else None,
        agent=agent_ref or suite.config.agent,
        started_at=started,
    )
    regressions: list[Regression] = []
    if base is not None:
        narrowed = bool(case_ids or tags)

        def selected(cid: str, case_tags: Sequence[str]) -> bool:
            return (not case_ids or cid in case_ids) and (
                not tags or not set(tags).isdisjoint(case_tags)
            )

        try:
            regressions = report.compare(base, selected=selected if narrowed else None)
        except ConfigError as exc:
            raise _fail(str(exc)) from None
    if report_path is not None:
        html = report_path.suffix.lower() in (".html", ".htm")
        _write("report", report_path, report.write_html if html else report.write_json)
    if junit is not None:
        _write("JUnit report", junit, report.write_junit)
    console = err if as_json else out
    for table in _summary_tables(report):
        console.print(table)
    _print_failures(console, report)
    if baseline is not None:
        _print_regressions(console, regressions, baseline)
    coverage = None
    if show_coverage or require_coverage:
        coverage = _coverage(target, cases, report)
        _print_coverage(console, coverage)
    if as_json:
        summary = report.summary()
        summary["regressions"] = [r.to_dict() for r in regressions]
        if coverage is not None:
            summary["coverage"] = coverage.to_dict()
        sys.stdout.write(json.dumps(summary, ensure_ascii=True) + "\n")
    if report.failed or regressions:
        raise typer.Exit(1)
    if require_coverage and coverage is not None and coverage.uncovered:
        raise typer.Exit(EXIT_UNCOVERED)


@eval_app.command("capture")
def capture(
    session_id: Annotated[str, typer.Argument(metavar="SESSION_ID")],
    suite_file: Annotated[
        Path,
        typer.Option(
            "--suite",
            metavar="FILE",
            help="The case file to add it to (YAML with cases:, or JSONL); created if missing.",
        ),
    ],
    db: DbOption = None,
) -> None:
    """Turn a stored session (an incident) into a scripted eval case appended to FILE."""

    async def go() -> list[Event]:
        store = await _open_store(db)
        try:
            await store.get(session_id)  # SessionNotFound, with the id, if absent
            return await store.events(session_id)
        finally:
            await store.aclose()

    events = _run_async(go)
    try:
        case = append_case(suite_file, case_from_events(events, session_id=session_id))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write {suite_file}: {exc.strerror or exc}") from None
    first = events[0] if events and events[0].type == EventType.SESSION_CREATED else None
    ref = (first.data.get("metadata") or {}).get("agent_ref") if first is not None else None
    out.print(Text(f"wrote case {case['id']} to {suite_file}"), soft_wrap=True)
    out.print(
        Text(
            f"next: state what should have happened under its expect: (marked TODO), then run "
            f"tether eval {suite_file} --agent {ref or 'REF'}",
            style="dim",
        ),
        soft_wrap=True,
    )


@eval_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of an eval case (as in schemas/eval-case.schema.json)."""
    sys.stdout.write(schema_text())


def schema_text() -> str:
    """The published schema file's exact text."""
    return json.dumps(case_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
