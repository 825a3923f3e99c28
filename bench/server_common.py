"""Shared plumbing of ``bench/server.py``: the server process, clients, figures, the machine.

The server runs as its own process (uvicorn, one worker, loopback, SQLite in
a temporary folder); the clients are ``httpx.AsyncClient`` in this process,
one per simulated user, each on its own kept-alive connection. Percentiles
are by nearest rank (the p99 of 50 values is the largest).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench.server_agent import ANSWER, QUESTION  # noqa: E402

from tether.spec.principal import Principal  # noqa: E402

__all__ = [
    "JSON",
    "LOCAL",
    "QUESTION",
    "ROOT",
    "SSE",
    "STATUS",
    "TARGET_ADDED_P50_MS",
    "TARGET_ADDED_P99_MS",
    "BenchError",
    "Clients",
    "Server",
    "agent_env",
    "create_session",
    "free_port",
    "have",
    "loop_runner",
    "machine",
    "med",
    "ms",
    "pct",
    "reference_loop",
    "serving",
    "start_server",
    "stream_turn",
]

JSON = dict[str, Any]

#: the question of the retail flow (tests/server/helpers.py's STATUS)
STATUS = "I'm Ava Moreno, zip 94107. What is the status of order #W1024001?"
#: whom the open local server makes every request act as (tether.surfaces.server.auth.LOCAL)
LOCAL = Principal(user="local", roles=frozenset({"user", "approver", "admin"}))
SSE = {"Accept": "text/event-stream"}
TARGET_ADDED_P50_MS = 5.0
TARGET_ADDED_P99_MS = 20.0


class BenchError(RuntimeError):
    """A turn or a request did not do what the bench expects (the figures would be wrong)."""


# --- the server process ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _cpu_of(stat_file: Path) -> float:
    stat = stat_file.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A uvicorn process serving some agents on loopback."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise BenchError("no VmRSS in /proc/PID/status")

    def cpu_s(self) -> float:
        """User + system CPU seconds of the whole process (every thread)."""
        return _cpu_of(Path(f"/proc/{self.pid}/stat"))

    def loop_cpu_s(self) -> float:
        """CPU seconds of the main thread: uvicorn's event loop, where every request's Python
        code runs (the other threads are SQLite's: aiosqlite connections, checkpoints)."""
        return _cpu_of(Path(f"/proc/{self.pid}/task/{self.pid}/stat"))

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(
    folder: Path, agents: list[str], env: dict[str, str] | None = None, *, runner: str = "uvicorn"
) -> Server:
    """Serve ``agents`` (references) from a fresh SQLite store under ``folder``; wait until up.

    ``runner``: the module run with uvicorn's command line (``bench.server_profiled``
    profiles the server's event loop on signals).
    """
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "PYTEST_"))}
    environ.update(
        {
            "TETHER_HOME": str(folder / "home"),
            "TETHER_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'server.sqlite'}",
            "TETHER_SERVE_AGENTS": "\n".join(agents),
            "TETHER_SERVE_HOST": "127.0.0.1",
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
    )
    environ.update(env or {})
    log = folder / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                runner,
                "tether.surfaces.server.factory:app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--timeout-keep-alive",
                "300",
                "--timeout-graceful-shutdown",
                "10",
                "--no-proxy-headers",
            ],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, port, log)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise BenchError(f"the server exited ({proc.returncode}):\n{server.output()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise BenchError(f"the server did not answer within 60 s:\n{server.output()}")
        time.sleep(0.05)


@contextlib.contextmanager
def serving(
    folder: Path, agents: list[str], env: dict[str, str] | None = None, *, runner: str = "uvicorn"
) -> Iterator[Server]:
    server = start_server(folder, agents, env, runner=runner)
    try:
        yield server
    finally:
        server.stop()


class Clients:
    """``n`` HTTP clients of one connection each: ``n`` users, each on a kept-alive connection.

    One ``httpx.AsyncClient`` per simulated user, not one shared pool: a pool
    of hundreds of connections costs its client CPU per request for every
    connection it holds (it checks each idle one), which would be measured
    as the server's latency.
    """

    def __init__(self, n: int) -> None:
        self.all = [
            httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=1, max_keepalive_connections=1, keepalive_expiry=300
                ),
                timeout=httpx.Timeout(120.0),
            )
            for _ in range(n)
        ]

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.aclose() for c in self.all))

    async def fan(
        self, items: list[Any], fn: Callable[[httpx.AsyncClient, Any], Awaitable[Any]]
    ) -> list[Any]:
        """``fn(client, item)`` for each item, a client doing one at a time; results in order."""
        out: list[Any] = [None] * len(items)
        todo = iter(range(len(items)))

        async def worker(client: httpx.AsyncClient) -> None:
            for i in todo:
                out[i] = await fn(client, items[i])

        await asyncio.gather(*(worker(c) for c in self.all))
        return out


# --- figures -------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank (p99 of 50 values is the largest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[min(len(ordered), rank) - 1]


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def agent_env(
    first_ms: float, gap_ms: float, deltas: int, *, paced: bool = False
) -> dict[str, str]:
    """The environment that shapes ``bench/server_agent.py``'s model in the server process."""
    env = {
        "TETHER_BENCH_FIRST_MS": str(first_ms),
        "TETHER_BENCH_GAP_MS": str(gap_ms),
        "TETHER_BENCH_DELTAS": str(deltas),
    }
    if paced:
        env["TETHER_BENCH_PACED"] = "1"
    return env


# --- one request, one streamed turn ------------------------------------------------------


async def create_session(client: httpx.AsyncClient, url: str, agent: str) -> str:
    r = await client.post(f"{url}/v1/sessions", json={"agent": agent})
    if r.status_code != 201:
        raise BenchError(f"POST /v1/sessions: {r.status_code} {r.text[:300]}")
    return str(r.json()["id"])


def _frame_event(block: bytes) -> bytes:
    for line in block.split(b"\n"):
        if line.startswith(b"event:"):
            return line[6:].strip()
    return b""


def _frame_data(block: bytes) -> bytes:
    return b"\n".join(line[5:].lstrip() for line in block.split(b"\n") if line.startswith(b"data:"))


async def stream_turn(
    client: httpx.AsyncClient, url: str, sid: str, message: str, deltas: int | None
) -> tuple[float, float]:
    """POST a message as SSE; (time to the first ``model.delta``, time to ``turn.end``).

    ``deltas``: how many ``model.delta`` frames must come (``None``: any number; a turn
    that ends before its stream starts sends only its stored events, so none may come).
    """
    t0 = time.perf_counter()
    first: float | None = None
    seen = 0
    end: JSON | None = None
    async with client.stream(
        "POST", f"{url}/v1/sessions/{sid}/messages", json={"message": message}, headers=SSE
    ) as r:
        if r.status_code != 200:
            raise BenchError(f"POST messages: {r.status_code} {(await r.aread())[:300]!r}")
        buf = b""
        async for chunk in r.aiter_raw():
            buf += chunk
            if b"\r" in buf:
                buf = buf.replace(b"\r\n", b"\n")
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                event = _frame_event(block)
                if event == b"model.delta":
                    seen += 1
                    if first is None:
                        first = time.perf_counter() - t0
                elif event == b"turn.end":
                    total = time.perf_counter() - t0
                    end = json.loads(_frame_data(block))
                elif event == b"error":
                    raise BenchError(f"error frame: {_frame_data(block)[:300]!r}")
    if end is None or (deltas is not None and first is None):
        raise BenchError(f"session {sid}: the stream ended without a delta and turn.end")
    if end.get("status") != "idle" or (deltas is not None and end.get("output") != ANSWER):
        raise BenchError(f"session {sid}: unexpected turn.end {end}")
    if deltas is not None and seen != deltas:
        raise BenchError(f"session {sid}: {seen} deltas, expected {deltas}")
    return (math.nan if first is None else first), total


# --- the machine -------------------------------------------------------------------------


def reference_loop() -> JSON:
    """A fixed pure-Python loop (``bench/overhead.py``'s): CPU ms (about 200 on an idle core)
    and wall ms (more than the CPU when other processes had the core: a shared machine)."""
    best: tuple[float, float] | None = None
    for _ in range(3):
        c0, w0 = time.process_time(), time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i
        sample = ((time.process_time() - c0) * 1000, (time.perf_counter() - w0) * 1000)
        if best is None or sample[0] < best[0]:
            best = sample
    assert best is not None
    return {"cpu_ms": round(best[0], 1), "wall_ms": round(best[1], 1)}


def machine() -> JSON:
    load = os.getloadavg()
    return {
        "reference_loop": reference_loop(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in load],
        "server_loop": "uvloop" if have("uvloop") else "asyncio",
        "server_http": "httptools" if have("httptools") else "h11",
        "client_loop": "uvloop" if have("uvloop") else "asyncio",
        "client": f"httpx {httpx.__version__}",
    }


def loop_runner() -> Callable[..., Any]:
    """``uvloop.run`` where uvicorn uses uvloop too (the same loop in both processes)."""
    if have("uvloop"):
        import uvloop

        return uvloop.run
    return asyncio.run
