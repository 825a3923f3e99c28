"""The ``tether`` command line (typer + rich).

Commands: ``chat``, ``run``, ``resume``, ``sessions list``, ``sessions show``,
``approvals list``, ``approvals approve``, ``approvals deny``, and in their
own modules ``cost``, ``eval``, ``redteam``, ``audit`` and ``guard``.
Every command reads the store from ``--db`` or ``TETHER_DATABASE_URL``
(default: SQLite under ``$TETHER_HOME``, ``~/.tether``); given ``--server URL``
(or ``TETHER_SERVER``), ``chat``, ``sessions`` and ``approvals`` work through
that server's API instead (:mod:`tether.surfaces.cli.remote`). Errors print one
actionable line and exit with status 2 (usage: a bad agent, file, option or
setting) or 1 (the turn failed; or a bug, see :mod:`tether.surfaces.cli.errors`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import sqlalchemy.exc
import typer
from rich.text import Text
from sqlalchemy.engine import make_url

from tether.exceptions import ConfigError, RunError, TetherError
from tether.providers.registry import PROVIDERS
from tether.runtime import Runtime, Session, TurnResult
from tether.spec.agent import Agent
from tether.spec.events import EventType
from tether.spec.principal import Principal
from tether.store import SQLStore, open_breakers, open_store, resolve_url
from tether.surfaces.cli.errors import GuardedGroup, one_line, report
from tether.surfaces.cli.render import (
    LiveTurnPrinter,
    SafeConsole,
    approvals_table,
    sessions_table,
    timeline_table,
)
from tether.surfaces.loader import load_agent
from tether.surfaces.logs import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    cls=GuardedGroup,
    name="tether",
    help="Run tool-using LLM agents with durable sessions.",
    no_args_is_help=True,
    add_completion=False,
)
sessions_app = typer.Typer(help="Inspect stored sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
approvals_app = typer.Typer(help="Actions waiting for a person's decision.", no_args_is_help=True)
app.add_typer(approvals_app, name="approvals")

out = SafeConsole()
err = SafeConsole(stderr=True)

T = TypeVar("T")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Store URL (default: $TETHER_DATABASE_URL or ~/.tether SQLite)."),
]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="TETHER_SERVER",
        help="A Tether server's URL (http://HOST:PORT): work through its API, not a local store.",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="TETHER_API_KEY",
        show_default=False,
        help="API key for --server; prefer $TETHER_API_KEY (others can read a command line).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Model chain, comma-separated: anthropic:MODEL, openai:MODEL, local, local:PATH.gguf.",
    ),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as one line on stderr; the exit to raise (status ``code``)."""
    err.print(Text(f"error: {one_line(message)}", style="bold red"), soft_wrap=True)
    return typer.Exit(code)


def _run_async(fn: Callable[[], Coroutine[Any, Any, T]], session: list[Session] | None = None) -> T:
    """Run ``fn``; errors become a message and an exit code, never a traceback.

    ``session`` holds the session the command works on, once known: Ctrl-C
    then says how to go on with it (the turn stopped where it was; what it
    committed is kept).
    """
    try:
        return asyncio.run(fn())
    except TetherError as exc:
        raise _fail(str(exc), 1 if isinstance(exc, RunError) else 2) from None
    except KeyboardInterrupt:
        handle = session[-1] if session else None
        if handle is not None and handle.created:
            sid = handle.id
            err.print(
                Text(
                    f"interrupted: session {sid} kept what it had done; if a turn was under "
                    f"way, continue it with `tether resume {sid}`, else send the next message "
                    f"with --session {sid}",
                    style="yellow",
                )
            )
        else:
            err.print(Text("interrupted (nothing was stored)", style="yellow"))
        raise typer.Exit(130) from None


def model_chain(spec: str | None) -> list[str] | None:
    """A ``--model`` value as a chain of specs (comma-separated), checked for its providers."""
    if spec is None:
        return None
    chain = [m.strip() for m in spec.split(",") if m.strip()]
    for m in chain:
        if m.partition(":")[0].lower() not in PROVIDERS:
            raise ConfigError(
                f"unknown model spec {m!r} in --model: use anthropic:MODEL, openai:MODEL, "
                "local or local:PATH.gguf, comma-separated"
            )
    return chain or None


def _agent(ref: str, model: str | None) -> Agent:
    try:
        agent = load_agent(ref)
        chain = model_chain(model)
        return agent.with_models(chain) if chain else agent
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _store_origin(db: str | None) -> str:
    """Where the store's location comes from, for error messages."""
    if db:
        return "--db"
    for name in ("TETHER_DATABASE_URL", "TETHER_HOME"):
        if os.environ.get(name):
            return name
    return "the default store (~/.tether)"


def _check_store_path(origin: str, db: str | None) -> None:
    """Refuse, with the setting to fix, a SQLite store whose file cannot be made:
    its folder is a file (``TETHER_HOME`` pointing to one) or it is a folder."""
    if origin == "TETHER_HOME":
        home = os.environ["TETHER_HOME"]
        try:
            folder = Path(home).expanduser()
        except RuntimeError:  # ~user of no known user
            raise ConfigError(f"TETHER_HOME={home}: cannot expand its ~") from None
        if folder.exists() and not folder.is_dir():
            raise ConfigError(
                f"TETHER_HOME={home} is not a folder: point it at a folder (it is created "
                "if missing), or unset it"
            )
    url = make_url(resolve_url(db))  # an invalid URL: ConfigError, from resolve_url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    path = Path(url.database).expanduser()
    if path.is_dir():
        raise ConfigError(f"{origin}: {path} is a folder; give the path of a database file")
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(
            f"{origin}: {above} is a file, so the database {path} cannot be made under it"
        )


async def _open_store(db: str | None) -> SQLStore:
    """The store at ``db`` (or ``$TETHER_DATABASE_URL``, or under ``$TETHER_HOME``);
    a setting that cannot work is a :class:`ConfigError` naming it."""
    origin = _store_origin(db)
    try:
        _check_store_path(origin, db)
        return await open_store(db)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(
            message if message.startswith(origin) else f"{origin}: {message}"
        ) from None
    except OSError as exc:
        if isinstance(exc, TetherError):  # StoreUnavailable is also a ConnectionError
            raise
        raise ConfigError(
            f"{origin}: cannot open the database: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else "")
        ) from None
    except (ValueError, sqlalchemy.exc.DBAPIError) as exc:
        # a URL the driver cannot read (a bad port, an unclosed '['), a file that is not
        # a database, a database that does not exist (asyncpg's error arrives as the
        # DBAPIError parent class): the setting is wrong, nothing will change on retry
        raise ConfigError(
            f"{origin}: cannot open the database: {one_line(str(exc))[:300]}"
        ) from None


async def _runtime(db: str | None) -> Runtime:
    """A runtime on the store at ``db`` (or the default), with breakers shared
    through Redis when ``TETHER_REDIS_URL`` is set."""

    store = await _open_store(db)
    try:
        try:
            breakers = await open_breakers()
        except ConfigError as exc:
            raise _setting("TETHER_REDIS_URL", exc) from None
        try:
            return Runtime(store=store, breakers=breakers)
        except ConfigError as exc:  # the price table
            raise _setting("TETHER_PRICES", exc) from None
    except BaseException:
        await store.aclose()
        raise


def _setting(name: str, exc: ConfigError) -> ConfigError:
    """``exc`` naming the environment variable ``name`` when that is where it comes from."""
    message = str(exc)
    if os.environ.get(name) and name not in message:
        message = f"{name}: {message}"
    return ConfigError(message)


def _result_json(result: TurnResult) -> dict[str, Any]:
    tool_calls = [
        {"name": e.data["name"], "arguments": e.data["arguments"]}
        for e in result.events
        if e.type == EventType.TOOL_STARTED
    ]
    return {
        "session_id": result.session_id,
        "status": result.status,
        "output": result.output,
        "error": result.error,
        "tool_calls": tool_calls,
        "usage": result.usage.to_dict(),
        "cost": round(result.cost, 6),
        "stop_reason": result.stop_reason,
    }


async def _session_agent(
    rt: Runtime, session_id: str, agent_ref: str | None, model: str | None
) -> Agent:
    """The agent a stored session started with (its recorded reference), or ``agent_ref``."""
    ref = agent_ref
    if ref is None:
        await rt.store.get(session_id)  # SessionNotFound, with the id, if absent
        first = await rt.store.events(session_id)
        meta = first[0].data.get("metadata", {}) if first else {}
        ref = meta.get("agent_ref")
        if not ref:
            raise ConfigError(f"session {session_id} does not record its agent; pass --agent REF")
    return _agent(ref, model)


def _print_answer(result: TurnResult, printer: LiveTurnPrinter | None) -> None:
    """The answer on stdout (so ``> file`` and pipes get it), unless the live
    printer already showed that very text on the same terminal."""
    if result.output is None:
        return
    shown = printer is not None and printer.last_streamed.strip() == result.output.strip()
    if shown and out.is_terminal and err.is_terminal:
        return
    out.print(result.output, markup=False, highlight=False)


@app.callback()
def _setup(
    log_level: Annotated[str, typer.Option(help="Log level for stderr.")] = "WARNING",
) -> None:
    try:
        configure_logging(log_level)
    except ValueError:
        env = os.environ.get("TETHER_LOG_LEVEL")
        given = f"TETHER_LOG_LEVEL={env}" if env else f"--log-level {log_level}"
        raise _fail(
            f"{given} is not a log level: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        ) from None


TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="The user's tenant (organisation).")
]
ScopeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--scope",
        help="A scope the user holds (repeatable); tools needing others are not offered. "
        "Default: every tool.",
    ),
]


def _principal(user: str | None, tenant: str | None, scope: list[str] | None) -> Principal | None:
    try:
        if user is None and tenant is None and scope is None:
            return None
        return Principal(
            user=user, tenant=tenant, scopes=None if scope is None else frozenset(scope)
        )
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@app.command()
def run(
    agent_ref: Annotated[str, typer.Argument(metavar="AGENT", help="module:attr or a folder.")],
    message: Annotated[str, typer.Option("-m", "--message", help="The user message.")],
    model: ModelOption = None,
    session: Annotated[str | None, typer.Option("--session", help="Continue this session.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="The end user's id.")] = None,
    tenant: TenantOption = None,
    scope: ScopeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    db: DbOption = None,
) -> None:
    """Run one turn non-interactively and print the answer."""
    agent = _agent(agent_ref, model)
    printer = None if as_json else LiveTurnPrinter(err)
    principal = _principal(user, tenant, scope)
    current: list[Session] = []

    async def go() -> TurnResult:
        async with await _runtime(db) as rt:
            handle = rt.session(agent, session, principal=principal)
            current.append(handle)
            return await handle.send(message, on_event=printer, metadata={"agent_ref": agent_ref})

    result = _run_async(go, current)
    if as_json:
        sys.stdout.write(json.dumps(_result_json(result), ensure_ascii=True) + "\n")
    else:
        _print_answer(result, printer)
    if not as_json:
        line = f"session {result.session_id} · {result.status}"
        if result.cost:
            line += f" · ${result.cost:.4f}"
        if result.stop_reason:
            line += f" · stopped: {result.stop_reason}"
        err.print(Text(line, style="dim"))
    if result.error:
        if not as_json:
            err.print(Text(f"error: {result.error}", style="bold red"))
        raise typer.Exit(1)


async def _read_line(prompt: str) -> str:
    """``input(prompt)`` without blocking the loop, on a daemon thread.

    Not ``asyncio.to_thread``: at Ctrl-C, ``asyncio.run`` joins the default
    executor's threads, so the process would wait for a line nobody types.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()

    def read() -> None:
        try:
            text = input(prompt)
        except BaseException as exc:  # EOFError, KeyboardInterrupt: handed to the loop
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, done, None, exc)
        else:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, done, text, None)

    threading.Thread(target=read, name="tether-chat-input", daemon=True).start()
    return await done


def _settle(done: asyncio.Future[str], text: str | None, exc: BaseException | None) -> None:
    if done.done():
        return
    if exc is not None:
        done.set_exception(exc if isinstance(exc, Exception) else EOFError())
    else:
        assert text is not None
        done.set_result(text)


@app.command()
def chat(
    agent_ref: Annotated[
        str,
        typer.Argument(
            metavar="AGENT", help="module:attr or a folder; with --server, a served agent's name."
        ),
    ],
    model: ModelOption = None,
    session: Annotated[str | None, typer.Option("--session", help="Continue this session.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="The end user's id.")] = None,
    tenant: TenantOption = None,
    scope: ScopeOption = None,
    db: DbOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Talk to an agent interactively; tokens stream, tool calls show as they run."""
    if server:
        from tether.surfaces.cli import remote

        local = {"--model": model, "--user": user, "--tenant": tenant, "--scope": scope}
        remote.refuse_local(local | {"--db": db})
        remote.chat(remote.connect(server, api_key), agent_ref, session, server)
        return
    agent = _agent(agent_ref, model)
    printer = LiveTurnPrinter(out)
    principal = _principal(user, tenant, scope)
    current: list[Session] = []

    async def go() -> None:
        async with await _runtime(db) as rt:
            handle = rt.session(agent, session, principal=principal)
            current.append(handle)
            sid = session
            out.print(
                Text(f"{agent.name} v{agent.version} · type /exit or Ctrl-D to leave", style="dim")
            )
            while True:
                try:
                    line = await _read_line("you> ")
                except (EOFError, KeyboardInterrupt):
                    out.print()
                    break
                if line.strip() in {"/exit", "/quit"}:
                    break
                if not line.strip():
                    continue
                try:
                    result = await handle.send(
                        line, on_event=printer, metadata={"agent_ref": agent_ref}
                    )
                except RunError as exc:
                    err.print(Text(f"error: {exc}", style="bold red"))
                    continue
                sid = result.session_id
            if sid or handle.created:
                out.print(Text(f"session {handle.id}", style="dim"))

    _run_async(go, current)


@app.command()
def resume(
    session_id: Annotated[str, typer.Argument(metavar="ID")],
    agent_ref: Annotated[
        str | None,
        typer.Option(
            "--agent", help="Agent reference (default: the one the session started with)."
        ),
    ] = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    db: DbOption = None,
) -> None:
    """Continue a session that was interrupted or failed, from its last committed step."""

    async def go() -> TurnResult:
        async with await _runtime(db) as rt:
            agent = await _session_agent(rt, session_id, agent_ref, model)
            handle = rt.session(agent, session_id)
            current.append(handle)
            return await handle.resume(on_event=printer)

    printer = None if as_json else LiveTurnPrinter(err)
    current: list[Session] = []
    result = _run_async(go, current)
    if as_json:
        sys.stdout.write(json.dumps(_result_json(result), ensure_ascii=True) + "\n")
    else:
        _print_answer(result, printer)
    if result.error:
        if not as_json:
            err.print(Text(f"error: {result.error}", style="bold red"))
        raise typer.Exit(1)


@sessions_app.command("list")
def sessions_list(
    limit: Annotated[int, typer.Option(help="How many to show.")] = 20,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent name.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    db: DbOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List stored sessions, newest first."""
    if server:
        from tether.surfaces.cli import remote

        remote.refuse_local({"--db": db})
        client = remote.connect(server, api_key)
        remote.sessions_list(client, limit=limit, status=status, agent=agent, as_json=as_json)
        return

    async def go() -> list[Any]:
        store = await _open_store(db)
        try:
            return await store.list_sessions(limit=limit, status=status, agent=agent)
        finally:
            await store.aclose()

    records = _run_async(go)
    if as_json:
        rows = [asdict(r) for r in records]
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
    else:
        out.print(sessions_table(records))


@sessions_app.command("show")
def sessions_show(
    session_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    db: DbOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show a session's timeline: every event, with tokens and timing."""
    if server:
        from tether.surfaces.cli import remote

        remote.refuse_local({"--db": db})
        remote.sessions_show(remote.connect(server, api_key), session_id, as_json=as_json)
        return

    async def go() -> tuple[Any, list[Any]]:
        store = await _open_store(db)
        try:
            return await store.get(session_id), await store.events(session_id)
        finally:
            await store.aclose()

    record, events = _run_async(go)
    if as_json:
        payload = {"session": asdict(record), "events": [e.to_dict() for e in events]}
        sys.stdout.write(json.dumps(payload, default=str, ensure_ascii=True) + "\n")
    else:
        out.print(timeline_table(record, events))


def main() -> None:
    """Console-script entry point: never a traceback (see :mod:`tether.surfaces.cli.errors`)."""
    try:
        app()
    except Exception as exc:  # escaped the group itself (argument parsing...)
        sys.exit(report(exc))


def _session_of(approval_id: str) -> str:
    session_id, dot, _ = approval_id.rpartition(".")
    if not dot or not session_id:
        raise _fail(f"{approval_id!r} is not an approval id (tether approvals list shows them)")
    return session_id


@approvals_app.command("list")
def approvals_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List the actions waiting for approval, oldest session first."""
    if server:
        from tether.surfaces.cli import remote

        remote.refuse_local({"--db": db})
        remote.approvals_list(remote.connect(server, api_key), as_json=as_json)
        return

    async def go() -> list[Any]:
        async with await _runtime(db) as rt:
            rows = await rt.store.list_sessions(limit=1000, status="awaiting_approval")
            found = [await rt.pending_approval(r.id) for r in reversed(rows)]
            return [p for p in found if p is not None]

    pending = _run_async(go)
    if as_json:
        sys.stdout.write(
            json.dumps(
                [
                    {
                        "id": p.id,
                        "session_id": p.session_id,
                        "tool": p.tool,
                        "arguments": p.arguments,
                        "summary": p.summary,
                        "explanation": p.explanation,
                        "mode": p.mode,
                        "expires_at": p.expires_at,
                        "tainted": list(p.tainted),
                        "flagged": list(p.flagged),
                        "warning": p.warning,
                    }
                    for p in pending
                ],
                ensure_ascii=True,
            )
            + "\n"
        )
        return
    if not pending:
        out.print("nothing is waiting for approval")
        return
    out.print(approvals_table(pending))


def _decide(
    approval_id: str,
    approve: bool,
    by: str | None,
    roles: list[str],
    reason: str | None,
    agent_ref: str | None,
    model: str | None,
    db: str | None,
    server: str | None = None,
    api_key: str | None = None,
) -> None:
    """Decide ``approval_id``, then continue its session on the models it ran on.

    With ``server``, the server decides it (as the API key's user) and runs the
    continuation on its own models: the local-only options are refused.

    The chain is ``model`` if given, else the one the session was created
    with (its ``session.created`` event's ``models``) when those are specs
    this command can build and differ from the loaded agent's own, else the
    agent's own. A model that cannot be used (no API key, no model file) is
    refused before anything is recorded: the session still waits.
    """
    if server:
        from tether.surfaces.cli import remote

        given = {"--by": by, "--role": roles, "--agent": agent_ref, "--model": model, "--db": db}
        remote.refuse_local(given)
        remote.decide(remote.connect(server, api_key), approval_id, approve, reason)
        return
    session_id = _session_of(approval_id)
    try:
        override = model_chain(model)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    printer = LiveTurnPrinter(err)

    async def go() -> TurnResult:
        async with await _runtime(db) as rt:
            agent = await _session_agent(rt, session_id, agent_ref, model)
            if override is None:
                first = await rt.store.events(session_id)
                ran_on = [str(m) for m in first[0].data.get("models") or []] if first else []
                own = [m if isinstance(m, str) else m.name for m in agent.models]
                buildable = all(m.partition(":")[0].lower() in PROVIDERS for m in ran_on)
                if ran_on and buildable and ran_on != own:
                    agent = agent.with_models(ran_on)
            try:
                return await rt.decide(
                    agent,
                    session_id,
                    approval_id,
                    approve=approve,
                    by=by or f"cli:{os.environ.get('USER', 'unknown')}",
                    roles=set(roles),
                    reason=reason,
                    on_event=printer,
                )
            except ConfigError as exc:
                pending = await rt.pending_approval(session_id)
                if pending is None or pending.id != approval_id:
                    raise
                raise ConfigError(
                    f"{exc} Nothing was run: approval {approval_id} still waits; decide it "
                    "again once that is fixed, or on another model chain with --model."
                ) from None

    result = _run_async(go)
    _print_answer(result, printer)
    err.print(Text(f"session {result.session_id} · {result.status}", style="dim"))
    if result.error:
        err.print(Text(f"error: {result.error}", style="bold red"))
        raise typer.Exit(1)


ByOption = Annotated[str | None, typer.Option("--by", help="Who decides (recorded).")]
RoleOption = Annotated[
    list[str], typer.Option("--role", help="A role of the decider (operator mode: approver).")
]
AgentOption = Annotated[
    str | None, typer.Option("--agent", help="Agent reference (default: the session's own).")
]


@approvals_app.command("approve")
def approvals_approve(
    approval_id: Annotated[str, typer.Argument(metavar="ID")],
    by: ByOption = None,
    role: RoleOption = [],  # noqa: B006 - typer reads the default, never mutates it
    agent_ref: AgentOption = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model chain to continue on, as for run (default: the session's own).",
        ),
    ] = None,
    db: DbOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Approve a waiting action: it runs (once) and the session continues."""
    _decide(approval_id, True, by, role, None, agent_ref, model, db, server, api_key)


@approvals_app.command("deny")
def approvals_deny(
    approval_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str | None, typer.Option("--reason", help="Told to the model.")] = None,
    by: ByOption = None,
    role: RoleOption = [],  # noqa: B006 - typer reads the default, never mutates it
    agent_ref: AgentOption = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model chain to continue on, as for run (default: the session's own).",
        ),
    ] = None,
    db: DbOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Deny a waiting action: it does not run, and the model is told why."""
    _decide(approval_id, False, by, role, reason, agent_ref, model, db, server, api_key)
