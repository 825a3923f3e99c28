"""The server: :func:`create_app` builds the FastAPI application for some agents.

What it holds (``app.state.tether``, a :class:`ServerState`) is built in
the lifespan: the session store, the runtime (breakers and rate limits
shared through Redis when configured), the event bus, the key and
idempotency stores, the turns in flight and the readiness probe. Routes
live in :mod:`tether.surfaces.server.routes`.

Shutdown, in order (SIGTERM or SIGINT): new turns are refused (503), streams
end with a frame telling the client to reconnect elsewhere, turns in flight
stop at their next step boundary with everything committed (resumable by
any replica: :meth:`Runs.recover`), then the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from tether.runtime import Runtime
from tether.runtime.bus import EventBus
from tether.spec.agent import Agent
from tether.store import SQLStore, open_breakers, open_rate_limiter
from tether.store.redis_bus import open_bus
from tether.store.server import IdempotencyStore, KeyStore
from tether.store.versions import VersionStore
from tether.surfaces.server import problems
from tether.surfaces.server.auth import Gatekeeper
from tether.surfaces.server.config import ServerConfig, is_loopback
from tether.surfaces.server.health import Readiness
from tether.surfaces.server.limits import BodyLimit
from tether.surfaces.server.metrics_route import metrics_router
from tether.surfaces.server.operations import Operations
from tether.surfaces.server.problems import AsciiJSON
from tether.surfaces.server.runs import Runs
from tether.surfaces.server.versions import VersionRouter

__all__ = ["ServerState", "create_app"]

log = logging.getLogger("tether.server")


@dataclass(slots=True)
class ServerState:
    """Everything a request needs, built once per process."""

    config: ServerConfig
    rt: Runtime
    agents: dict[str, Agent]
    runs: Runs
    bus: EventBus
    keys: KeyStore
    idem: IdempotencyStore
    gate: Gatekeeper
    ready: Readiness
    closing: asyncio.Event
    #: which agent version serves a session (the registry's choice among the loaded code)
    versions: VersionRouter
    #: metrics, traces, alerts and the background loops around them
    ops: Operations

    def begin_shutdown(self) -> None:
        """Stop taking turns and let the ones in flight reach a step boundary."""
        if self.closing.is_set():
            return
        log.info("shutting down: no new turns; draining those in flight")
        self.closing.set()
        task = asyncio.get_running_loop().create_task(self.rt.aclose(self.config.shutdown_grace))
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[asyncio.Task[Any]] = set()


def create_app(
    agents: Sequence[Agent],
    config: ServerConfig | None = None,
    *,
    runtime_options: dict[str, Any] | None = None,
    operations: Operations | None = None,
) -> FastAPI:
    """The FastAPI app serving ``agents`` (by name) with ``config`` (default: from the environment).

    Several versions of one agent may be given (same name, different
    ``version``): the version registry picks which serves new sessions
    (:mod:`tether.surfaces.server.versions`). ``runtime_options`` go to
    :class:`~tether.runtime.Runtime` (``models``, ``clock``,
    ``tool_workers``...); ``operations`` (default: from the environment)
    gives metrics, traces, alerts and the canary policy.
    """
    from tether.surfaces.server import routes  # routes import this module's ServerState

    cfg = config if config is not None else ServerConfig.from_env()
    ops = operations if operations is not None else Operations.from_env()
    VersionRouter(agents)  # two objects of one name and version: refused now, not at start-up

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await _start(cfg, agents, runtime_options or {}, ops)
        app.state.tether = state
        restore = _on_signals(state)
        state.runs.start_sweeping()
        ops.start(state.rt, state.versions, VersionStore(state.rt.store))  # type: ignore[arg-type]
        if cfg.gc_freeze:
            gc.collect()
            gc.freeze()
        chores = [
            # load each agent's models now (a local model takes seconds), not on the first turn
            asyncio.get_running_loop().create_task(_warm_up(state), name="tether-warm-up"),
            asyncio.get_running_loop().create_task(_purge_forever(state), name="tether-purge"),
        ]
        try:
            yield
        finally:
            for chore in chores:
                chore.cancel()
            restore()
            state.begin_shutdown()
            await state.runs.aclose(cfg.shutdown_grace)
            await state.bus.aclose()
            await ops.aclose()

    app = FastAPI(
        title="Tether",
        version="1",
        summary="Durable, supervised LLM agents: sessions, streaming turns, approvals.",
        lifespan=lifespan,
        default_response_class=AsciiJSON,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
        )
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)
    problems.install(app)
    app.include_router(routes.router)
    if ops.metrics is not None:
        app.include_router(metrics_router(ops.metrics))
    return app


async def _start(
    cfg: ServerConfig, loaded: Sequence[Agent], options: dict[str, Any], ops: Operations
) -> ServerState:
    store = await SQLStore.open(cfg.database_url, pool_size=10)
    options = dict(options)
    observers = [*ops.observers(), *options.pop("observers", ())]
    try:
        breakers = await open_breakers(cfg.redis_url)
        limiter = None
        if cfg.rate_limits is not None:
            limiter = await open_rate_limiter(cfg.rate_limits, cfg.redis_url)
        bus = await open_bus(cfg.redis_url)
        rt = Runtime(
            store=store,
            breakers=breakers,
            limiter=limiter,
            bus=bus,
            lease_ttl=cfg.lease_ttl,
            observers=observers,
            **options,
        )
    except BaseException:
        await store.aclose()
        raise
    keys = KeyStore(store)
    gate = Gatekeeper(keys, open_local=cfg.open_local and is_loopback(cfg.host))
    if await gate.is_open():
        log.warning(
            "no API keys: anyone on this machine acts as user 'local' with every role; "
            "create a key with `tether keys create` to require keys"
        )
    elif cfg.open_local and not is_loopback(cfg.host) and await keys.count() == 0:
        log.warning("no API keys and not on loopback: every request is refused until one exists")
    router = VersionRouter(
        loaded,
        registry=VersionStore(store),
        poll=ops.versions_poll,
        on_missing=ops.version_missing,
    )
    await router.refresh(force=True)
    agents = router.primary
    return ServerState(
        config=cfg,
        rt=rt,
        agents=agents,
        runs=Runs(rt, router, recover_interval=cfg.recover_interval),
        bus=bus,
        keys=keys,
        idem=IdempotencyStore(store, ttl=cfg.idempotency_ttl),
        gate=gate,
        ready=Readiness(
            rt, router.serving_agents, problems=router.problems, on_failure=ops.readiness_failed
        ),
        closing=asyncio.Event(),
        versions=router,
        ops=ops,
    )


async def _warm_up(state: ServerState) -> None:
    """Run the readiness check once at start: models load before the first request needs them."""
    try:
        ok, checks = await state.ready.check()
    except Exception:
        log.exception("the start-up readiness check failed")
        return
    if not ok:
        failed = {k: v.get("detail") for k, v in checks.items() if not v.get("ok")}
        log.warning("not ready at start-up: %s", failed)


async def _purge_forever(state: ServerState, every: float = 600.0) -> None:
    """Forget idempotency records past their time to live."""
    while True:
        try:
            await state.idem.purge()
        except Exception as exc:  # the store is down: try again later
            log.warning("could not purge idempotency records: %s", exc)
        await asyncio.sleep(every)


def _on_signals(state: ServerState) -> Any:
    """Start draining as soon as SIGTERM/SIGINT arrives, before uvicorn waits for connections.

    uvicorn handles the signal itself (stops accepting, waits for open
    connections, then runs the lifespan's shutdown). Streams stay open until
    told to end, so the drain must start at the signal, not at the lifespan's
    end: the handler chains to uvicorn's. Only possible from the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(sig: int, frame: Any) -> None:
        loop.call_soon_threadsafe(state.begin_shutdown)
        prev = previous.get(sig)
        if callable(prev):
            prev(sig, frame)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, prev in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, prev)

    return restore
