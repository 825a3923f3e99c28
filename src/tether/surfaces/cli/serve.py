"""``tether serve``, ``tether keys`` and ``tether health``: running the server and its keys.

- ``tether serve AGENT... [--host] [--port] [--workers]``: the HTTP server
  (uvicorn), configured by ``TETHER_*`` variables (docs/deployment.md).
- ``tether keys create|list|revoke``: API keys in the store (hashed).
- ``tether health AGENT``: the readiness probe ``/readyz`` runs, from here.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer
from rich.text import Text

from tether.exceptions import ConfigError
from tether.runtime import Runtime
from tether.store import open_bus
from tether.store.server import ROLES, KeyStore
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
from tether.surfaces.logs import configure_logging
from tether.surfaces.server.config import ServerConfig, is_loopback
from tether.surfaces.server.health import probe_agent

__all__ = ["keys_app"]

keys_app = typer.Typer(help="API keys for the server (stored hashed).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.command()
def serve(
    agents: Annotated[list[str], typer.Argument(help="Agents to serve: folders or module:attr.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each a replica).")] = 1,
    model: ModelOption = None,
    db: DbOption = None,
) -> None:
    """Serve agents over HTTP: sessions, streaming turns (SSE), approvals, AG-UI.

    The store is --db or TETHER_DATABASE_URL (default: SQLite under
    TETHER_HOME); TETHER_REDIS_URL shares events, breakers and limits
    between replicas. With no API keys stored and --host on loopback,
    requests act as the user 'local'; create keys with `tether keys create`.
    """
    import uvicorn

    from tether.surfaces.server.factory import load_agents

    if workers < 1:
        raise _fail("--workers must be 1 or more")
    try:
        load_agents(agents, model)  # fail here, in one line, not in every worker
        cfg = ServerConfig.from_env(host=host, port=port)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if db:
        os.environ["TETHER_DATABASE_URL"] = db
    _run_async(lambda: _check_services(db, cfg.redis_url))  # one line, not a worker's traceback
    os.environ["TETHER_SERVE_AGENTS"] = "\n".join(agents)
    os.environ["TETHER_SERVE_HOST"] = host
    if model:
        os.environ["TETHER_SERVE_MODEL"] = model
    if workers > 1 and not cfg.redis_url:
        out.print(
            Text(
                f"{workers} workers without TETHER_REDIS_URL: a stream hears another worker's "
                f"turn by polling the store (every {cfg.stream_poll:g} s), and breakers and "
                "rate limits are per worker; set TETHER_REDIS_URL to share them",
                style="yellow",
            ),
            soft_wrap=True,
        )
    if not is_loopback(host):
        out.print(Text(f"serving on {host}:{port}: every request needs an API key", style="yellow"))
    # uvicorn's own lines (start-up, access log) go through our handler: redacted, and
    # JSON with TETHER_LOG_FORMAT=json, like every other line of the server
    configure_logging(os.environ.get("TETHER_LOG_LEVEL", "INFO"))
    uvicorn.run(
        "tether.surfaces.server.factory:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=int(cfg.shutdown_grace) + 5,
        log_level=os.environ.get("TETHER_LOG_LEVEL", "info").lower(),
        log_config=None,
        proxy_headers=False,
    )


async def _check_services(db: str | None, redis_url: str | None) -> None:
    """The store opens (and is migrated) and Redis answers, before any worker starts."""
    store = await _open_store(db)
    await store.aclose()
    if redis_url:
        try:
            bus = await open_bus(redis_url)
        except ConfigError as exc:
            raise ConfigError(f"TETHER_REDIS_URL: {exc}") from None
        await bus.aclose()


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option("--user", help="The user id the key acts as.")],
    tenant: Annotated[str | None, typer.Option(help="The user's tenant.")] = None,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help=f"A role ({', '.join(ROLES)}); repeatable. Default: user."),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="A tool scope (repeatable). Default: every tool."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    db: DbOption = None,
) -> None:
    """Create a key and print it once (it is stored only as a hash)."""

    async def go() -> tuple[str, str]:
        store = await _open_store(db)
        try:
            key, token = await KeyStore(store).create(
                user=user,
                tenant=tenant,
                roles=frozenset(role or ["user"]),
                scopes=None if scope is None else frozenset(scope),
                name=name,
            )
            return key.id, token
        finally:
            await store.aclose()

    key_id, token = _run_async(go)
    sys.stdout.write(token + "\n")
    out.print(
        Text(f"key {key_id} for user {user!r}: shown once, keep it secret", style="dim"),
        soft_wrap=True,
    )


@keys_app.command("list")
def keys_list(
    all_: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    db: DbOption = None,
) -> None:
    """List keys (never their secrets)."""

    async def go() -> list[dict[str, object]]:
        store = await _open_store(db)
        try:
            return [k.to_dict() for k in await KeyStore(store).list(include_revoked=all_)]
        finally:
            await store.aclose()

    rows = _run_async(go)
    for row in rows:
        if as_json:
            sys.stdout.write(json.dumps(row, ensure_ascii=True) + "\n")
        else:
            state = "revoked" if row["revoked_at"] else "live"
            roles = ",".join(row["roles"])  # type: ignore[arg-type]
            scopes = "*" if row["scopes"] is None else ",".join(row["scopes"])  # type: ignore[arg-type]
            out.print(
                Text(
                    f"{row['id']}  {state}  user={row['user']!r} tenant={row['tenant']!r} "
                    f"roles={roles} scopes={scopes}  {row['name']!r}"
                ),
                soft_wrap=True,
            )
    if not rows and not as_json:
        out.print(Text("no keys (the server is open to this machine only)", style="dim"))


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (or the whole key).")],
    db: DbOption = None,
) -> None:
    """Revoke a key: refused from the next request on."""

    async def go() -> bool:
        store = await _open_store(db)
        try:
            return await KeyStore(store).revoke(key_id)
        finally:
            await store.aclose()

    if not _run_async(go):
        raise _fail(f"no live key {key_id!r} (tether keys list shows them)", 1)
    out.print(Text(f"revoked {key_id}"))


@app.command()
def health(
    agent_ref: Annotated[str, typer.Argument(metavar="AGENT", help="A folder or module:attr.")],
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Ask the agent's model chain its health question (as /readyz does); exit 1 if not ready."""
    agent = _agent(agent_ref, model)

    async def go() -> dict[str, object]:
        async with Runtime() as rt:
            return await probe_agent(rt, agent)

    result = _run_async(go)
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=True) + "\n")
    else:
        mark = "ready" if result["ok"] else "NOT READY"
        out.print(
            Text(f"{agent.name}: {mark}: {result.get('detail')} (model {result.get('model')})"),
            soft_wrap=True,
        )
    if not result["ok"]:
        raise typer.Exit(1)
