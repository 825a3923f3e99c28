"""Real servers on loopback for the server tests.

- :func:`inprocess`: a uvicorn server in a thread of this process, serving
  agent objects (fast; for the API's behaviour).
- :class:`Spawned` / :func:`spawn`: ``tether serve`` in a subprocess (for
  signals, kills, restarts and several replicas), serving
  ``tests.server.agents:retail``.
- :func:`fresh_pg_database`: a PostgreSQL database of its own, dropped after
  (replicas share it; nothing else sees its keys or sessions).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.store.conftest import postgres_url, require_postgres
from tether.spec.agent import Agent
from tether.store import SQLStore, resolve_url
from tether.store.server import KeyStore
from tether.surfaces.server import ServerConfig, create_app

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class InProcess:
    url: str
    server: uvicorn.Server
    app: Any
    db_url: str

    @property
    def state(self) -> Any:
        return self.app.state.tether


@contextlib.contextmanager
def inprocess(
    agents: Sequence[Agent],
    tmp_path: Path,
    *,
    config: ServerConfig | None = None,
    runtime_options: dict[str, Any] | None = None,
    **settings: Any,
) -> Iterator[InProcess]:
    """Serve ``agents`` with uvicorn in a thread on a free loopback port."""
    port = free_port()
    db_url = (
        settings.pop("database_url", None) or f"sqlite+aiosqlite:///{tmp_path / 'server.sqlite'}"
    )
    cfg = config or ServerConfig(database_url=db_url, port=port, **settings)
    app = create_app(list(agents), cfg, runtime_options=runtime_options)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield InProcess(f"http://127.0.0.1:{port}", server, app, cfg.database_url or db_url)
    finally:
        server.should_exit = True
        thread.join(30)


async def make_key(db_url: str, **kwargs: Any) -> str:
    """A new API key in the store at ``db_url``: ``make_key(url, user="u1", roles={"user"})``."""
    store = await SQLStore.open(db_url)
    try:
        _key, token = await KeyStore(store).create(**kwargs)
        return token
    finally:
        await store.aclose()


def tether_bin() -> str:
    found = Path(sys.executable).with_name("tether")
    return str(found) if found.exists() else (shutil.which("tether") or "tether")


@dataclass
class Spawned:
    """``tether serve`` in a subprocess; its output goes to ``log``."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"tether serve exited ({self.proc.returncode}):\n{self.output()}"
                )
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"tether serve did not answer within {timeout} s:\n{self.output()}")

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def spawn(
    tmp_path: Path,
    *,
    db_url: str,
    shop: Path,
    redis_url: str | None = None,
    model_delay: float = 0.0,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
    agent_ref: str = "tests.server.agents:retail",
) -> Spawned:
    """Start ``tether serve`` on a free port (not yet ready: call ``wait_ready``)."""
    port = port or free_port()
    log = tmp_path / f"serve-{port}-{uuid.uuid4().hex[:6]}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "PYTEST_", "COV_"))}
    env.update(
        {
            "TETHER_HOME": str(tmp_path / "home"),
            "TETHER_DATABASE_URL": db_url,
            "TETHER_RETAIL_DB": str(shop),
            "TETHER_TEST_MODEL_DELAY": str(model_delay),
            "TETHER_LEASE_TTL": "3",
            "TETHER_RECOVER_INTERVAL": "1",
            "TETHER_STREAM_POLL": "0.5",
            "TETHER_LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT),
        }
    )
    if redis_url:
        env["TETHER_REDIS_URL"] = redis_url
    env.update(extra_env or {})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [tether_bin(), "serve", agent_ref, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Spawned(port, proc, log, env)


@contextlib.asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A new PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    require_postgres()
    base = make_url(resolve_url(postgres_url()))
    name = f"tether_srv_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with contextlib.suppress(Exception):
            async with admin.connect() as conn:
                await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A fresh demo shop file for the served retail agent."""
    return tmp_path / "shop.sqlite"


async def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:  # noqa: ASYNC109 - reason: a polling deadline, not an await timeout
    """Poll ``predicate()`` (sync or async) until truthy; its value, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
