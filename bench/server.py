"""The HTTP server's cost: latency it adds to a streaming turn, memory per session, throughput.

The server runs as its own process (uvicorn, one worker, loopback, SQLite in
a temporary folder: ``python -m uvicorn --factory
tether.surfaces.server.factory:app_from_env``, what ``tether serve`` runs,
with a longer keep-alive so the client's pooled connections survive between
phases); the clients are ``httpx.AsyncClient`` in this process, one per
simulated user, each on its own kept-alive connection. On a 2-core machine
the clients, the server's event loop and its SQLite threads share the two
cores: the figures include the clients' share of them. Percentiles are by
nearest rank (the p99 of 50 values is the largest).

1. **Latency added to a streaming turn.** The agent (``bench/server_agent.py``)
   has no tools and one model: a ``FunctionModel`` that waits ``--first-ms``
   (200) before its first delta and streams ``--deltas`` (4) deltas
   ``--gap-ms`` (25) apart. N sessions (``--concurrency``: 1, 50, 200) are
   created, then all N send a message at once with ``Accept:
   text/event-stream``; per session: time to first token (the first
   ``model.delta`` frame after the POST) and total (the ``turn.end`` frame).
   The same turns driven in this process (``Runtime.session(...).stream``,
   same store type, same concurrency, the server's runtime wiring) give the
   model's intrinsic latency on this machine; *added* is the server's
   percentile minus the in-process one. Each configuration runs
   ``--repeats`` (7) times, alternating; each figure is the median over repeats.
   This is the *burst* mode: N starts at the same instant, a thundering herd.
1b. **Latency under a steady load** (the *steady* mode). N users
   (``--concurrency``; 50, 200 by default), each with its own session and
   client, run a closed loop: send a message (SSE), read to ``turn.end``,
   send the next at once, so N streams are open at any moment. The users'
   starts are spread over one turn (not a burst); ``--steady-warmup`` (3) s
   are not measured, then the turns begun in the next ``--steady-seconds``
   (20) are, each with its time to first token and total; users keep going
   until every user's measured turns are over, so none runs with fewer
   streams open. The model is a hosted LLM's shape: ``--steady-first-ms``
   (500) to the first delta, then ``--steady-deltas`` (40) deltas
   ``--steady-gap-ms`` (25) apart, each due at a fixed time from the model
   call's start (a late wake-up of the server's loop delays one delta, not
   all later ones: ``paced`` in ``bench/server_agent.py``). The same loops
   run in-process (the burst mode's baseline wiring); added = server minus
   in-process per percentile, paired by run; ``--steady-repeats`` (3) runs,
   alternating order, medians.
   Reported beside the latency: the load (turns/s through the server, and
   what N users would make with no overhead), the server's CPU per turn and
   utilisation (process and event-loop thread, as a share of one core: the
   loop cannot go past 100%), the client's, and how late this process's own
   event loop woke (its lateness is counted as the server's). Also: the
   highest N where the target holds. ``--mode burst|steady|both`` (both)
   picks the latency measurement(s); memory and rps follow ``--only``.
2. **Memory per idle session.** A fresh server's RSS (``VmRSS``) before and
   after creating ``--idle`` sessions (``POST /v1/sessions``) and after one
   streamed turn each (a zero-latency model), ``--memory-rounds`` (2) times:
   a later round tells a per-session residue (grows again) from a high-water
   mark (does not).
3. **Requests per second on the retail flow.** The scripted retail agent of
   ``tests/server/agents.py`` (model delay 0) on a fresh server:
   ``--rps-clients`` clients each loop "create a session, ask an order's
   status (JSON)" for ``--rps-seconds``; completed flows/s, HTTP requests/s
   and per-request p50/p99; median of ``--rps-repeats`` runs.

Run::

    .venv/bin/python bench/server.py                    # tables
    .venv/bin/python bench/server.py --json             # last line: one JSON object
    .venv/bin/python bench/server.py --quick            # a smoke run (small N, short)
    .venv/bin/python bench/server.py --concurrency 50,200,500 --only latency
    .venv/bin/python bench/server.py --mode steady --only latency --concurrency 50,100,200
    .venv/bin/python bench/server_profile.py           # where the event loop's CPU goes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench.server_agent import ANSWER, QUESTION, plain_agent  # noqa: E402

from tether.runtime import Runtime  # noqa: E402
from tether.spec.principal import Principal  # noqa: E402
from tether.store import SQLStore, open_breakers  # noqa: E402
from tether.store.redis_bus import open_bus  # noqa: E402

JSON = dict[str, Any]

#: the question of the retail flow (tests/server/helpers.py's STATUS)
STATUS = "I'm Ava Moreno, zip 94107. What is the status of order #W1024001?"
#: whom the open local server makes every request act as (tether.surfaces.server.auth.LOCAL)
LOCAL = Principal(user="local", roles=frozenset({"user", "approver", "admin"}))
SSE = {"Accept": "text/event-stream"}
TARGET_ADDED_P50_MS = 5.0
TARGET_ADDED_P99_MS = 20.0
PARTS = ("latency", "memory", "rps")


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


# --- 1. latency --------------------------------------------------------------------------


@dataclass
class Round:
    """One configuration run once: per-session times (seconds) and CPU spent."""

    ttft: list[float]
    total: list[float]
    wall: float
    cpu_here: float  # this process: the client (server mode) or the runtime (in-process)
    cpu_server: float = 0.0
    cpu_server_loop: float = 0.0


async def _create_http(client: httpx.AsyncClient, url: str, agent: str) -> str:
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


async def server_round(server: Server, clients: Clients, n: int, deltas: int) -> Round:
    """``n`` users (the first ``n`` clients) each create a session, then all stream a turn."""
    users = clients.all[:n]
    sids = await asyncio.gather(*(_create_http(c, server.url, "plain") for c in users))
    gc.collect()
    cpu0, loop0 = server.cpu_s(), server.loop_cpu_s()
    here0, t0 = time.process_time(), time.perf_counter()
    times = await asyncio.gather(
        *(
            stream_turn(c, server.url, sid, QUESTION, deltas)
            for c, sid in zip(users, sids, strict=True)
        )
    )
    wall = time.perf_counter() - t0
    return Round(
        ttft=[t[0] for t in times],
        total=[t[1] for t in times],
        wall=wall,
        cpu_here=time.process_time() - here0,
        cpu_server=server.cpu_s() - cpu0,
        cpu_server_loop=server.loop_cpu_s() - loop0,
    )


class InProcess:
    """The same agent and store type, driven through ``Runtime.session(...).stream`` here."""

    def __init__(
        self, folder: Path, *, first: float, gap: float, deltas: int, paced: bool = False
    ) -> None:
        self.folder = folder
        self.agent = plain_agent(first=first, gap=gap, deltas=deltas, paced=paced)
        self.deltas = deltas
        self.rt: Runtime | None = None

    async def __aenter__(self) -> InProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        # wired as the server wires its runtime (tether.surfaces.server.app._start)
        store = await SQLStore.open(
            f"sqlite+aiosqlite:///{self.folder / 'inproc.sqlite'}", pool_size=10
        )
        self.rt = Runtime(store=store, breakers=await open_breakers(None), bus=await open_bus(None))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.rt is not None:
            await self.rt.aclose()

    async def _create(self) -> str:
        assert self.rt is not None
        handle = self.rt.session(self.agent, principal=LOCAL)
        await handle.create(metadata={"via": "server"})
        return handle.id

    async def _turn(self, sid: str) -> tuple[float, float]:
        assert self.rt is not None
        t0 = time.perf_counter()
        first: float | None = None
        seen = 0
        async for ev in self.rt.session(self.agent, sid, principal=LOCAL).stream(QUESTION):
            if ev.type == "model.delta":
                seen += 1
                if first is None:
                    first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        if first is None or seen != self.deltas:
            raise BenchError(f"in-process session {sid}: {seen} deltas, expected {self.deltas}")
        return first, total

    async def round(self, n: int) -> Round:
        sids = await asyncio.gather(*(self._create() for _ in range(n)))
        gc.collect()
        here0, t0 = time.process_time(), time.perf_counter()
        times = await asyncio.gather(*(self._turn(sid) for sid in sids))
        wall = time.perf_counter() - t0
        return Round(
            ttft=[t[0] for t in times],
            total=[t[1] for t in times],
            wall=wall,
            cpu_here=time.process_time() - here0,
        )


def _percentiles(rounds: list[Any]) -> JSON:
    """Each round's p50 and p99 of ``ttft`` and ``total``, and their medians (ms)."""
    out: JSON = {}
    for name in ("ttft", "total"):
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            out[f"{name}_{label}_ms"] = ms(med([pct(getattr(r, name), q) for r in rounds]))
            out[f"{name}_{label}_ms_rounds"] = [ms(pct(getattr(r, name), q)) for r in rounds]
    return out


def _met(added: JSON) -> bool:
    """The issue's "latency added": both the first token and the whole turn must be within."""
    return bool(
        max(added["ttft_p50_ms"], added["total_p50_ms"]) <= TARGET_ADDED_P50_MS
        and max(added["ttft_p99_ms"], added["total_p99_ms"]) <= TARGET_ADDED_P99_MS
    )


def _summary(rounds: list[Round], n: int) -> JSON:
    """Per-round percentiles, then the median of each over the rounds (ms)."""
    out = _percentiles(rounds)
    out["wall_ms"] = ms(med([r.wall for r in rounds]))
    out["cpu_here_ms_per_turn"] = round(med([r.cpu_here / n for r in rounds]) * 1000, 3)
    if any(r.cpu_server for r in rounds):
        out["cpu_server_ms_per_turn"] = round(med([r.cpu_server / n for r in rounds]) * 1000, 3)
        out["cpu_server_loop_ms_per_turn"] = round(
            med([r.cpu_server_loop / n for r in rounds]) * 1000, 3
        )
    return out


def _added(server: list[Any], inproc: list[Any]) -> JSON:
    """Added = server percentile - in-process percentile, paired by repeat; median over repeats."""
    out: JSON = {}
    for name in ("ttft", "total"):
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            diffs = [
                pct(getattr(s, name), q) - pct(getattr(i, name), q)
                for s, i in zip(server, inproc, strict=True)
            ]
            out[f"{name}_{label}_ms"] = ms(med(diffs))
            out[f"{name}_{label}_ms_rounds"] = [ms(d) for d in diffs]
    return out


async def bench_latency(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> JSON:
    first, gap, deltas = args.first_ms / 1000, args.gap_ms / 1000, args.deltas
    env = {
        "TETHER_BENCH_FIRST_MS": str(args.first_ms),
        "TETHER_BENCH_GAP_MS": str(args.gap_ms),
        "TETHER_BENCH_DELTAS": str(deltas),
    }
    levels = args.concurrency
    results: dict[int, dict[str, list[Round]]] = {n: {"server": [], "inproc": []} for n in levels}
    with serving(tmp / "latency", ["bench.server_agent:plain"], env) as server:
        rss_start = server.rss_kib()
        async with (
            InProcess(tmp / "inproc", first=first, gap=gap, deltas=deltas) as inproc,
            Clients(max(levels)) as clients,
        ):
            # warm-up, not counted: code paths, caches, the pool's connections
            warm = min(levels)
            await inproc.round(warm)
            await server_round(server, clients, max(levels), deltas)
            for rep in range(args.repeats):
                order = [(n, mode) for n in levels for mode in ("inproc", "server")]
                if rep % 2:
                    order.reverse()
                for n, mode in order:
                    if mode == "server":
                        r = await server_round(server, clients, n, deltas)
                    else:
                        r = await inproc.round(n)
                    results[n][mode].append(r)
                    ttft, total = r.ttft, r.total
                    log(
                        f"  repeat {rep + 1}/{args.repeats}  {mode:>6} x{n:<4} "
                        f"ttft p50 {ms(pct(ttft, 0.5)):8.1f}  p99 {ms(pct(ttft, 0.99)):8.1f}"
                        f"  total p50 {ms(pct(total, 0.5)):8.1f}  p99 {ms(pct(total, 0.99)):8.1f}"
                    )
        rss_end = server.rss_kib()
    per_level: JSON = {}
    for n in levels:
        s, i = results[n]["server"], results[n]["inproc"]
        per_level[str(n)] = {
            "server": _summary(s, n),
            "inproc": _summary(i, n),
            "added": _added(s, i),
        }
    top = per_level[str(max(levels))]["added"]
    return {
        "model": {
            "first_ms": args.first_ms,
            "gap_ms": args.gap_ms,
            "deltas": deltas,
            "nominal_ttft_ms": args.first_ms,
            "nominal_total_ms": args.first_ms + args.gap_ms * (deltas - 1),
        },
        "repeats": args.repeats,
        "levels": per_level,
        "server_rss_kib": {"start": rss_start, "end": rss_end},
        "target": {
            "at": max(levels),
            "added_p50_ms": TARGET_ADDED_P50_MS,
            "added_p99_ms": TARGET_ADDED_P99_MS,
            "met": _met(top),
        },
    }


# --- 1b. latency under a steady load ----------------------------------------------------------


@dataclass
class SteadyRun:
    """One closed-loop run: the turns begun in the measured window (seconds) and its CPU."""

    ttft: list[float]
    total: list[float]
    seconds: float  # the measured window, as sampled
    unmeasured: int  # turns of the warm-up and the cool-down
    cpu_here: float  # this process over the window: the clients, or the in-process runtime
    lag: list[float]  # this process's event loop: how late a 10 ms sleep woke, each time
    cpu_server: float = 0.0
    cpu_server_loop: float = 0.0


async def closed_loop(
    n: int,
    turn: Callable[[int], Awaitable[tuple[float, float]]],
    *,
    warmup: float,
    seconds: float,
    spread: float,
    counters: Callable[[], tuple[float, float]] | None = None,
) -> SteadyRun:
    """``n`` users, each sending its next turn (``turn(i)``) as soon as its last one ended.

    User ``i`` starts ``spread * i / n`` s in, so starts are spread over a turn
    rather than a burst (with a fixed-latency model they stay spread). Turns
    begun in the ``seconds`` after ``warmup`` are measured. A user whose
    measured turns are over keeps sending unmeasured ones until every user's
    are over, so every measured turn runs while all ``n`` streams are open.
    ``counters``: the server's (process, event loop) CPU seconds, read at the
    window's ends.
    """
    t0 = time.perf_counter()
    begin, end = t0 + warmup, t0 + warmup + seconds
    ttft: list[float] = []
    total: list[float] = []
    lag: list[float] = []
    unmeasured = 0
    past = 0  # users whose last measured turn has ended
    drained = asyncio.Event()
    marks: dict[str, tuple[float, ...]] = {}

    def mark() -> tuple[float, ...]:
        return (time.perf_counter(), time.process_time(), *(counters() if counters else (0, 0)))

    async def user(i: int) -> None:
        nonlocal unmeasured, past
        await asyncio.sleep(spread * i / n)
        over = False
        while True:
            began = time.perf_counter()
            if began >= end and not over:
                over = True
                past += 1
                if past == n:
                    drained.set()
            if drained.is_set():
                return
            first, whole = await turn(i)
            if begin <= began < end:
                ttft.append(first)
                total.append(whole)
            else:
                unmeasured += 1

    async def watch() -> None:
        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        marks["begin"] = mark()
        tick = 0.01
        while (now := time.perf_counter()) < end:
            await asyncio.sleep(tick)
            lag.append(time.perf_counter() - now - tick)
        marks["end"] = mark()

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(watch())
        for i in range(n):
            tasks.create_task(user(i))
    if not total:
        raise BenchError(
            f"no turn began in the {seconds:g} s measured: make --steady-seconds longer than "
            "a turn, or use more users"
        )
    (w0, here0, cpu0, loop0), (w1, here1, cpu1, loop1) = marks["begin"], marks["end"]
    return SteadyRun(
        ttft=ttft,
        total=total,
        seconds=w1 - w0,
        unmeasured=unmeasured,
        cpu_here=here1 - here0,
        lag=lag,
        cpu_server=cpu1 - cpu0,
        cpu_server_loop=loop1 - loop0,
    )


def _steady_summary(runs: list[SteadyRun], n: int, nominal_turn_s: float) -> JSON:
    """Percentiles and load of each run; the median of each figure over the runs."""
    out = _percentiles(runs)
    out["turns"] = int(med([len(r.total) for r in runs]))
    out["turns_rounds"] = [len(r.total) for r in runs]
    out["unmeasured_turns"] = int(med([r.unmeasured for r in runs]))
    out["turns_per_s"] = round(med([len(r.total) / r.seconds for r in runs]), 2)
    out["nominal_turns_per_s"] = round(n / nominal_turn_s, 2)
    # CPU per turn: the window's CPU over the turns begun in it (about those done in it)
    per_turn = {
        "here": [r.cpu_here / max(1, len(r.total)) for r in runs],
        "server": [r.cpu_server / max(1, len(r.total)) for r in runs],
        "server_loop": [r.cpu_server_loop / max(1, len(r.total)) for r in runs],
    }
    util = {
        "here": [r.cpu_here / r.seconds for r in runs],
        "server": [r.cpu_server / r.seconds for r in runs],
        "server_loop": [r.cpu_server_loop / r.seconds for r in runs],
    }
    for who in ("here", "server", "server_loop"):
        if who != "here" and not any(util[who]):
            continue
        out[f"cpu_{who}_ms_per_turn"] = round(med(per_turn[who]) * 1000, 3)
        # CPU seconds per second: 1.0 is one core busy all the time (the event loop's ceiling)
        out[f"cpu_{who}_util"] = round(med(util[who]), 3)
    out["loop_lag_p50_ms"] = ms(med([pct(r.lag, 0.5) for r in runs]))
    out["loop_lag_p99_ms"] = ms(med([pct(r.lag, 0.99) for r in runs]))
    return out


async def bench_steady(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> JSON:
    """N users in a closed loop for ``--steady-seconds``, on the server and in-process."""
    first, gap, deltas = args.steady_first_ms / 1000, args.steady_gap_ms / 1000, args.steady_deltas
    nominal = first + gap * (deltas - 1)
    spread = min(nominal, args.steady_warmup)
    env = {
        "TETHER_BENCH_FIRST_MS": str(args.steady_first_ms),
        "TETHER_BENCH_GAP_MS": str(args.steady_gap_ms),
        "TETHER_BENCH_DELTAS": str(deltas),
        "TETHER_BENCH_PACED": "1",
    }
    levels: list[int] = args.steady_concurrency
    results: dict[int, dict[str, list[SteadyRun]]] = {
        n: {"server": [], "inproc": []} for n in levels
    }
    with serving(tmp / "steady", ["bench.server_agent:plain"], env) as server:
        rss_start = server.rss_kib()
        async with (
            InProcess(
                tmp / "steady-inproc", first=first, gap=gap, deltas=deltas, paced=True
            ) as inproc,
            Clients(max(levels)) as clients,
        ):
            url = server.url

            async def on_server(n: int) -> SteadyRun:
                users = clients.all[:n]
                sids = await asyncio.gather(*(_create_http(c, url, "plain") for c in users))
                gc.collect()

                def turn(i: int) -> Awaitable[tuple[float, float]]:
                    return stream_turn(users[i], url, sids[i], QUESTION, deltas)

                return await closed_loop(
                    n,
                    turn,
                    warmup=args.steady_warmup,
                    seconds=args.steady_seconds,
                    spread=spread,
                    counters=lambda: (server.cpu_s(), server.loop_cpu_s()),
                )

            async def in_process(n: int) -> SteadyRun:
                sids = await asyncio.gather(*(inproc._create() for _ in range(n)))
                gc.collect()
                return await closed_loop(
                    n,
                    lambda i: inproc._turn(sids[i]),
                    warmup=args.steady_warmup,
                    seconds=args.steady_seconds,
                    spread=spread,
                )

            for rep in range(args.steady_repeats):
                order = [(n, mode) for n in levels for mode in ("inproc", "server")]
                if rep % 2:
                    order.reverse()
                for n, mode in order:
                    r = await (on_server(n) if mode == "server" else in_process(n))
                    results[n][mode].append(r)
                    load = (
                        f"server CPU {r.cpu_server / r.seconds:.0%} (loop "
                        f"{r.cpu_server_loop / r.seconds:.0%}), "
                        if mode == "server"
                        else ""
                    )
                    log(
                        f"  repeat {rep + 1}/{args.steady_repeats}  {mode:>6} x{n:<4} "
                        f"{len(r.total) / r.seconds:6.1f} turns/s  "
                        f"ttft p50 {ms(pct(r.ttft, 0.5)):7.1f} p99 {ms(pct(r.ttft, 0.99)):7.1f}  "
                        f"total p50 {ms(pct(r.total, 0.5)):7.1f} p99 {ms(pct(r.total, 0.99)):7.1f}"
                        f"  {load}here {r.cpu_here / r.seconds:.0%}"
                    )
        rss_end = server.rss_kib()
    per_level: JSON = {}
    for n in levels:
        s, i = results[n]["server"], results[n]["inproc"]
        added = _added(s, i)
        per_level[str(n)] = {
            "server": _steady_summary(s, n, nominal),
            "inproc": _steady_summary(i, n, nominal),
            "added": added,
            "met": _met(added),
        }
    met = [n for n in levels if per_level[str(n)]["met"]]
    return {
        "model": {
            "first_ms": args.steady_first_ms,
            "gap_ms": args.steady_gap_ms,
            "deltas": deltas,
            "nominal_ttft_ms": args.steady_first_ms,
            "nominal_total_ms": round(nominal * 1000, 3),
            "paced": True,
        },
        "warmup_s": args.steady_warmup,
        "seconds": args.steady_seconds,
        "spread_s": round(spread, 3),
        "repeats": args.steady_repeats,
        "levels": per_level,
        "server_rss_kib": {"start": rss_start, "end": rss_end},
        "target": {
            "added_p50_ms": TARGET_ADDED_P50_MS,
            "added_p99_ms": TARGET_ADDED_P99_MS,
            "met": {str(n): per_level[str(n)]["met"] for n in levels},
            "highest_met": max(met) if met else None,
        },
    }


# --- 2. memory ---------------------------------------------------------------------------------


async def _settled_rss(server: Server) -> int:
    await asyncio.sleep(1.0)
    return server.rss_kib()


async def bench_memory(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> JSON:
    n, width = args.idle, 50
    env = {"TETHER_BENCH_FIRST_MS": "0", "TETHER_BENCH_GAP_MS": "0", "TETHER_BENCH_DELTAS": "4"}
    rounds: list[JSON] = []
    with serving(tmp / "memory", ["bench.server_agent:plain"], env) as server:
        async with Clients(width) as clients:
            url = server.url
            rss_boot = server.rss_kib()

            async def create(c: httpx.AsyncClient, _i: object) -> str:
                return await _create_http(c, url, "plain")

            async def turn(c: httpx.AsyncClient, sid: str) -> tuple[float, float]:
                return await stream_turn(c, url, sid, QUESTION, None)

            await clients.fan(await clients.fan(list(range(min(n, 100))), create), turn)
            base = await _settled_rss(server)
            for k in range(args.memory_rounds):
                t0 = time.perf_counter()
                sids = await clients.fan(list(range(n)), create)
                created_s = time.perf_counter() - t0
                idle = await _settled_rss(server)
                await clients.fan(sids, turn)
                turned = await _settled_rss(server)
                rounds.append(
                    {
                        "rss_before_kib": base,
                        "rss_idle_kib": idle,
                        "rss_after_turn_kib": turned,
                        "kib_per_idle_session": round((idle - base) / n, 3),
                        "kib_per_session_after_turn": round((turned - base) / n, 3),
                        "creates_per_s": round(n / created_s, 1),
                    }
                )
                log(
                    f"  round {k + 1}: RSS {base} -> {idle} KiB after {n} sessions "
                    f"-> {turned} KiB after a turn each"
                )
                base = turned
    return {
        "sessions": n,
        "rss_boot_kib": rss_boot,
        "rounds": rounds,
        "kib_per_idle_session": rounds[0]["kib_per_idle_session"],
        "kib_per_session_after_turn": rounds[0]["kib_per_session_after_turn"],
    }


# --- 3. retail flow, requests per second --------------------------------------------------------


@dataclass
class FlowStats:
    create: list[float] = field(default_factory=list)
    message: list[float] = field(default_factory=list)
    flows: int = 0


async def _flow(client: httpx.AsyncClient, url: str, stats: FlowStats) -> None:
    t0 = time.perf_counter()
    r = await client.post(f"{url}/v1/sessions", json={"agent": "retail"})
    t1 = time.perf_counter()
    if r.status_code != 201:
        raise BenchError(f"POST /v1/sessions: {r.status_code} {r.text[:300]}")
    sid = r.json()["id"]
    r = await client.post(f"{url}/v1/sessions/{sid}/messages", json={"message": STATUS})
    t2 = time.perf_counter()
    if r.status_code != 200:
        raise BenchError(f"POST messages: {r.status_code} {r.text[:300]}")
    body = r.json()
    if body.get("status") != "idle" or "W1024001 is" not in (body.get("output") or ""):
        raise BenchError(f"unexpected retail answer: {body}")
    stats.create.append(t1 - t0)
    stats.message.append(t2 - t1)
    stats.flows += 1


async def _drive_flows(clients: Clients, url: str, seconds: float) -> tuple[FlowStats, float]:
    """Every client runs flows back to back until ``seconds`` have passed."""
    stats = FlowStats()
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            await _flow(client, url, stats)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients.all))
    return stats, time.perf_counter() - t0


async def _rps_run(clients: Clients, server: Server, seconds: float) -> JSON:
    gc.collect()
    cpu0, here0 = server.cpu_s(), time.process_time()
    stats, wall = await _drive_flows(clients, server.url, seconds)
    cpu_server, cpu_client = server.cpu_s() - cpu0, time.process_time() - here0
    both = stats.create + stats.message
    return {
        "flows": stats.flows,
        "seconds": round(wall, 3),
        "flows_per_s": round(stats.flows / wall, 1),
        "requests_per_s": round(len(both) / wall, 1),
        "request_p50_ms": ms(pct(both, 0.5)),
        "request_p99_ms": ms(pct(both, 0.99)),
        "create_p50_ms": ms(pct(stats.create, 0.5)),
        "create_p99_ms": ms(pct(stats.create, 0.99)),
        "message_p50_ms": ms(pct(stats.message, 0.5)),
        "message_p99_ms": ms(pct(stats.message, 0.99)),
        "cpu_server_ms_per_flow": round(cpu_server / max(1, stats.flows) * 1000, 3),
        "cpu_client_ms_per_flow": round(cpu_client / max(1, stats.flows) * 1000, 3),
    }


async def bench_rps(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> JSON:
    """Each client count in turn (alternating order over the repeats), on one server."""
    folder = tmp / "rps"
    env = {"TETHER_TEST_SHOP": str(folder / "shop.sqlite"), "TETHER_TEST_MODEL_DELAY": "0"}
    levels: list[int] = args.rps_clients
    runs: dict[int, list[JSON]] = {n: [] for n in levels}
    with serving(folder, ["tests.server.agents:retail"], env) as server:
        async with contextlib.AsyncExitStack() as stack:
            pools = {n: await stack.enter_async_context(Clients(n)) for n in levels}
            for n in levels:  # warm-up, not counted: code paths, each pool's connections
                await _drive_flows(pools[n], server.url, args.rps_warmup)
            for k in range(args.rps_repeats):
                for n in levels if k % 2 == 0 else levels[::-1]:
                    run = await _rps_run(pools[n], server, args.rps_seconds)
                    runs[n].append(run)
                    log(
                        f"  run {k + 1}/{args.rps_repeats}, {n} clients: "
                        f"{run['flows_per_s']} flows/s, {run['requests_per_s']} req/s, "
                        f"p50 {run['request_p50_ms']} ms, p99 {run['request_p99_ms']} ms"
                    )
    out: JSON = {"seconds": args.rps_seconds, "repeats": args.rps_repeats, "clients": {}}
    for n in levels:
        keys = [key for key in runs[n][0] if key not in ("flows", "seconds")]
        level: JSON = {key: round(med([r[key] for r in runs[n]]), 3) for key in keys}
        level["runs"] = runs[n]
        out["clients"][str(n)] = level
    return out


# --- the report -----------------------------------------------------------------------------------


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


def print_report(report: JSON) -> None:
    m = report["machine"]
    ref, ref_end = m["reference_loop"], m.get("reference_loop_end") or m["reference_loop"]
    print(
        f"\nmachine: {m['cores']} cores, Python {m['python']}, load {m['loadavg']} -> "
        f"{m.get('loadavg_end')}; reference loop {ref['cpu_ms']:.0f} ms CPU / {ref['wall_ms']:.0f} "
        f"ms wall -> {ref_end['cpu_ms']:.0f} / {ref_end['wall_ms']:.0f} (~200 on an idle core)"
    )
    print(
        f"server: "
        f"uvicorn 1 worker ({m['server_loop']}, {m['server_http']}), SQLite; client: "
        f"{m['client']} on {m['client_loop']} in another process"
    )
    if (m["cores"] or 0) <= 2:
        print(
            "note: on 2 cores the client competes with the server (its event loop and its "
            "SQLite thread) for CPU; the server figures include that contention."
        )
    lat = report.get("latency")
    if lat:
        mod = lat["model"]
        print(
            f"\n1. latency of a streaming turn (model: {mod['first_ms']} ms to the first delta, "
            f"{mod['deltas']} deltas {mod['gap_ms']} ms apart = {mod['nominal_total_ms']} ms; "
            f"median of {lat['repeats']} repeats; ms)"
        )
        head = f"{'sessions':>8} {'figure':<10} {'in-process':>11} {'server':>9} {'added':>8}"
        print(head)
        print("-" * len(head))
        for n, level in lat["levels"].items():
            for fig in ("ttft_p50", "ttft_p99", "total_p50", "total_p99"):
                key = f"{fig}_ms"
                print(
                    f"{n:>8} {fig:<10} {level['inproc'][key]:>11.1f} {level['server'][key]:>9.1f} "
                    f"{level['added'][key]:>8.1f}"
                )
            s, i = level["server"], level["inproc"]
            if int(n) < 20:
                print(f"{'':>8} CPU per turn: too few turns for /proc's 10 ms clock ticks")
                continue
            print(
                f"{'':>8} CPU per turn: server process {s.get('cpu_server_ms_per_turn', 0):.2f} ms "
                f"(event loop {s.get('cpu_server_loop_ms_per_turn', 0):.2f}), client "
                f"{s['cpu_here_ms_per_turn']:.2f} ms; in-process runtime "
                f"{i['cpu_here_ms_per_turn']:.2f} ms"
            )
        t = lat["target"]
        print(
            f"target at {t['at']} streams: added <= {t['added_p50_ms']:g} ms p50 and "
            f"<= {t['added_p99_ms']:g} ms p99 (first token and total): "
            f"{'met' if t['met'] else 'NOT MET'}"
        )
    steady = report.get("steady")
    if steady:
        print_steady(steady)
    mem = report.get("memory")
    if mem:
        print(f"\n2. memory: server RSS, {mem['sessions']} sessions per round")
        for k, r in enumerate(mem["rounds"], 1):
            print(
                f"   round {k}: {r['rss_before_kib']} -> {r['rss_idle_kib']} KiB idle "
                f"({r['kib_per_idle_session']:.2f} KiB/session) -> {r['rss_after_turn_kib']} KiB "
                f"after a turn each ({r['kib_per_session_after_turn']:.2f} KiB/session)"
            )
    rps_all = report.get("rps")
    if rps_all:
        print(
            f"\n3. retail flow (create a session, ask an order's status, JSON), "
            f"{rps_all['seconds']:g} s per run, median of {rps_all['repeats']} runs"
        )
    for n, rps in (rps_all or {}).get("clients", {}).items():
        print(
            f"   {n:>4} clients: {rps['flows_per_s']:.1f} flows/s, "
            f"{rps['requests_per_s']:.1f} requests/s; "
            f"per request p50 {rps['request_p50_ms']:.1f} ms, p99 {rps['request_p99_ms']:.1f} ms "
            f"(create p50 {rps['create_p50_ms']:.1f} / p99 {rps['create_p99_ms']:.1f}; message "
            f"p50 {rps['message_p50_ms']:.1f} / p99 {rps['message_p99_ms']:.1f}); CPU per flow: "
            f"server {rps['cpu_server_ms_per_flow']:.2f} ms, "
            f"client {rps['cpu_client_ms_per_flow']:.2f} ms"
        )


def print_steady(st: JSON) -> None:
    mod = st["model"]
    print(
        f"\n1b. latency under a steady load: N users in a closed loop (the next turn as soon as "
        f"turn.end came), {st['seconds']:g} s measured after {st['warmup_s']:g} s of warm-up, "
        f"median of {st['repeats']} runs; model: {mod['first_ms']:g} ms to the first delta, "
        f"{mod['deltas']} deltas {mod['gap_ms']:g} ms apart (on a fixed schedule) = "
        f"{mod['nominal_total_ms']:g} ms; ms"
    )
    head = f"{'users':>8} {'figure':<10} {'in-process':>11} {'server':>9} {'added':>8}"
    print(head)
    print("-" * len(head))
    for n, level in st["levels"].items():
        for fig in ("ttft_p50", "ttft_p99", "total_p50", "total_p99"):
            key = f"{fig}_ms"
            print(
                f"{n:>8} {fig:<10} {level['inproc'][key]:>11.1f} {level['server'][key]:>9.1f} "
                f"{level['added'][key]:>8.1f}"
            )
        s, i = level["server"], level["inproc"]
        print(
            f"{'':>8} load: {s['turns_per_s']:.1f} turns/s through the server, "
            f"{i['turns_per_s']:.1f} in-process ({s['nominal_turns_per_s']:.1f} with no overhead); "
            f"{s['turns']} turns measured on the server"
        )
        print(
            f"{'':>8} server CPU per turn {s.get('cpu_server_ms_per_turn', 0):.2f} ms "
            f"(event loop {s.get('cpu_server_loop_ms_per_turn', 0):.2f}); utilisation: "
            f"process {s.get('cpu_server_util', 0):.0%} of a core, event loop "
            f"{s.get('cpu_server_loop_util', 0):.0%}"
        )
        print(
            f"{'':>8} client CPU per turn {s['cpu_here_ms_per_turn']:.2f} ms "
            f"({s['cpu_here_util']:.0%} of a core; its loop late by p50 "
            f"{s['loop_lag_p50_ms']:.1f} / p99 {s['loop_lag_p99_ms']:.1f} ms); in-process "
            f"runtime {i['cpu_here_ms_per_turn']:.2f} ms ({i['cpu_here_util']:.0%} of a core)"
        )
        print(
            f"{'':>8} target (added <= {st['target']['added_p50_ms']:g} ms p50, "
            f"<= {st['target']['added_p99_ms']:g} ms p99, first token and total): "
            f"{'met' if level['met'] else 'NOT MET'}"
        )
    high = st["target"]["highest_met"]
    print(
        f"steady target: highest N tried where it holds: "
        f"{high if high is not None else 'none of ' + ', '.join(st['levels'])}"
    )


def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be 1 or more")
    return levels


def _parts(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"parts are {', '.join(PARTS)}; got {text!r}")
    return parts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    p.add_argument("--quick", action="store_true", help="a smoke run: small N, short runs")
    p.add_argument("--only", type=_parts, default=list(PARTS), help="latency,memory,rps")
    p.add_argument(
        "--mode",
        choices=("burst", "steady", "both"),
        default="both",
        help="the latency part: N turns at once (burst), N users in a closed loop (steady), both",
    )
    p.add_argument(
        "--concurrency",
        type=_levels,
        default=None,
        help="streams at once (burst 1,50,200; steady 50,200); given: both modes use it",
    )
    p.add_argument("--repeats", type=int, default=None, help="repeats per configuration (7)")
    p.add_argument("--first-ms", type=float, default=200.0, help="model: ms to the first delta")
    p.add_argument("--gap-ms", type=float, default=25.0, help="model: ms between deltas")
    p.add_argument("--deltas", type=int, default=4, help="model: deltas per answer")
    p.add_argument("--steady-seconds", type=float, default=None, help="measured s per run (20)")
    p.add_argument(
        "--steady-warmup", type=float, default=None, help="s before that, not counted (3)"
    )
    p.add_argument("--steady-repeats", type=int, default=None, help="runs per configuration (3)")
    p.add_argument("--steady-first-ms", type=float, default=500.0, help="steady model: first delta")
    p.add_argument("--steady-gap-ms", type=float, default=25.0, help="steady model: ms between")
    p.add_argument("--steady-deltas", type=int, default=40, help="steady model: deltas per answer")
    p.add_argument("--idle", type=int, default=None, help="sessions per memory round (2000)")
    p.add_argument("--memory-rounds", type=int, default=2, help="memory rounds (2)")
    p.add_argument("--rps-clients", type=_levels, default=None, help="clients at once (8,32)")
    p.add_argument("--rps-seconds", type=float, default=None, help="seconds per run (15)")
    p.add_argument("--rps-repeats", type=int, default=None, help="runs (3)")
    p.add_argument("--rps-warmup", type=float, default=None, help="seconds, not counted (3)")
    args = p.parse_args(argv)
    quick = args.quick
    args.steady_concurrency = args.concurrency or ([5, 20] if quick else [50, 200])
    defaults = {
        "concurrency": [5, 20] if quick else [1, 50, 200],
        "repeats": 1 if quick else 7,
        "steady_seconds": 2.0 if quick else 20.0,
        "steady_warmup": 0.5 if quick else 3.0,
        "steady_repeats": 1 if quick else 3,
        "idle": 100 if quick else 2000,
        "rps_clients": [2] if quick else [8, 32],
        "rps_seconds": 1.0 if quick else 15.0,
        "rps_repeats": 1 if quick else 3,
        "rps_warmup": 0.5 if quick else 3.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if min(args.deltas, args.repeats, args.idle, args.rps_repeats, args.memory_rounds) < 1:
        p.error("--deltas, --repeats, --idle, --memory-rounds, --rps-repeats must be 1 or more")
    if min(args.steady_deltas, args.steady_repeats) < 1 or args.steady_seconds <= 0:
        p.error("--steady-deltas, --steady-repeats must be 1 or more, --steady-seconds above 0")
    if min(args.steady_warmup, args.steady_first_ms, args.steady_gap_ms) < 0:
        p.error("--steady-warmup, --steady-first-ms, --steady-gap-ms must be 0 or more")
    return args


async def run(args: argparse.Namespace, log: Callable[[str], None]) -> JSON:
    report: JSON = {"machine": machine(), "quick": args.quick, "mode": args.mode}
    with tempfile.TemporaryDirectory(prefix="tether-bench-server-") as tmp:
        if "latency" in args.only and args.mode in ("burst", "both"):
            log(f"1. latency, burst: {args.concurrency} streams, {args.repeats} repeats")
            report["latency"] = await bench_latency(args, Path(tmp), log)
        if "latency" in args.only and args.mode in ("steady", "both"):
            log(
                f"1b. latency, steady: {args.steady_concurrency} users, "
                f"{args.steady_warmup:g} + {args.steady_seconds:g} s, {args.steady_repeats} repeats"
            )
            report["steady"] = await bench_steady(args, Path(tmp), log)
        if "memory" in args.only:
            log(f"2. memory: {args.idle} sessions per round")
            report["memory"] = await bench_memory(args, Path(tmp), log)
        if "rps" in args.only:
            log(f"3. retail flow: {args.rps_clients} clients")
            report["rps"] = await bench_rps(args, Path(tmp), log)
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["machine"]["reference_loop_end"] = reference_loop()
    return report


def _runner() -> Callable[..., Any]:
    """``uvloop.run`` where uvicorn uses uvloop too (the same loop in both processes)."""
    if have("uvloop"):
        import uvloop

        return uvloop.run
    return asyncio.run


def main(argv: list[str] | None = None) -> JSON:
    args = parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = _runner()(run(args, log))
    print_report(report)
    if args.json:
        print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
