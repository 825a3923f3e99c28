"""Where the server's event loop spends its CPU per request: a cProfile breakdown by layer.

``bench/server.py`` shows that the server's event-loop thread is what
saturates (its SQLite threads use little CPU). This script profiles that
thread (cProfile with a per-thread CPU clock, ``time.thread_time``, so time
waiting for I/O or for the other core is not counted) while N users each
create a session (``POST /v1/sessions``), then while all N stream a turn at
once (the latency benchmark's turn: ``bench/server_agent.py``); and the
same N turns driven in this process through ``Runtime.session(...).stream``
(the runtime's own share). The profile of each phase is grouped by layer:

- ``http``: uvicorn and httptools (parsing, the transport's writes);
- ``asgi``: Starlette, FastAPI, anyio (routing, middleware, dependencies, responses);
- ``pydantic``, ``json``;
- ``server``: ``tether.surfaces.server`` (routes, streaming, auth, idempotency);
- ``runtime``: the rest of ``tether`` except the store;
- ``store``: ``tether.store``;
- ``sqlalchemy``: SQLAlchemy, its greenlet bridge included;
- ``aiosqlite``: handing each statement to a SQLite thread and back (and ``sqlite3``
  calls made on this thread);
- ``asyncio``: the loop's Python parts (tasks, futures, queues, timeouts);
- ``other``.

A built-in function's time goes to the layer of its callers. cProfile slows
Python code down (more for many small calls), so read the figures as shares,
not as the server's speed; ``bench/server.py`` measures the speed. Run::

    .venv/bin/python bench/server_profile.py                 # 200 users, 3 rounds
    .venv/bin/python bench/server_profile.py --sessions 50 --json
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.server_common import (  # noqa: E402
    QUESTION,
    Clients,
    create_session,
    loop_runner,
    serving,
    stream_turn,
)
from bench.server_latency import InProcess  # noqa: E402

LAYERS = (
    "http",
    "asgi",
    "pydantic",
    "json",
    "server",
    "runtime",
    "store",
    "sqlalchemy",
    "aiosqlite",
    "asyncio",
    "other",
)

Func = tuple[str, int, str]


def layer_of(func: Func) -> str | None:
    """The layer of a Python function; ``None`` for a built-in (its callers decide)."""
    path, _line, name = func
    if path == "~" or path.startswith("<"):
        if "sqlite3" in name or "SimpleQueue" in name or "_thread.lock" in name:
            return "aiosqlite"
        if "greenlet" in name:
            return "sqlalchemy"
        if path == "~":
            return None
        return "other"
    p = path.replace("\\", "/")
    for mark, layer in (
        ("/uvicorn/", "http"),
        ("/httptools/", "http"),
        ("/h11/", "http"),
        ("/starlette/", "asgi"),
        ("/fastapi/", "asgi"),
        ("/anyio/", "asgi"),
        ("/pydantic", "pydantic"),
        ("/json/", "json"),
        ("/tether/surfaces/server/", "server"),
        ("/tether/store/", "store"),
        ("/tether/", "runtime"),
        ("/sqlalchemy/", "sqlalchemy"),
        ("/greenlet/", "sqlalchemy"),
        ("/aiosqlite/", "aiosqlite"),
        ("/sqlite3/", "aiosqlite"),
        ("/asyncio/", "asyncio"),
        ("/uvloop/", "asyncio"),
        ("/contextlib.py", "asyncio"),
    ):
        if mark in p:
            return layer
    return "other"


def by_layer(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of (thread CPU) time per layer; built-ins split among their callers' layers."""
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    out: dict[str, float] = defaultdict(float)

    def caller_layer(func: Func, depth: int = 0) -> dict[str, float]:
        """How ``func``'s calls divide among layers (a built-in called by a built-in: recurse)."""
        callers = raw.get(func, (0, 0, 0, 0, {}))[4]
        weights: dict[str, float] = defaultdict(float)
        total = sum(max(c[1], 1) for c in callers.values()) or 1
        for caller, c in callers.items():
            share = max(c[1], 1) / total
            lay = layer_of(caller)
            if lay is None and depth < 3:
                for sub, w in caller_layer(caller, depth + 1).items():
                    weights[sub] += share * w
            else:
                weights[lay or "other"] += share
        return weights or {"other": 1.0}

    for func, (_cc, _nc, tt, _ct, _callers) in raw.items():
        lay = layer_of(func)
        if lay is not None:
            out[lay] += tt
        else:
            for sub, w in caller_layer(func).items():
                out[sub] += tt * w
    return dict(out)


def hops(stats: pstats.Stats) -> int:
    """Statements handed to a SQLite thread: ``SimpleQueue.put_nowait`` calls from aiosqlite."""
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    return sum(
        nc
        for func, (_cc, nc, _tt, _ct, _callers) in raw.items()
        if func[0] == "~" and "put_nowait" in func[2] and "SimpleQueue" in func[2]
    )


def top(stats: pstats.Stats, n: int, per: int) -> list[dict[str, Any]]:
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    out = []
    for (path, line, name), (_cc, nc, tt, _ct, _callers) in rows:
        short = path
        for cut in ("site-packages/", "/src/", "/lib/python3"):
            if cut in short:
                short = short.split(cut, 1)[1]
        out.append(
            {
                "function": f"{short}:{line}({name})" if path != "~" else name,
                "layer": layer_of((path, line, name)) or "builtin",
                "us_per_request": round(tt / per * 1e6, 1),
                "calls_per_request": round(nc / per, 2),
            }
        )
    return out


def summarise(stats: pstats.Stats, per: int) -> dict[str, Any]:
    layers = by_layer(stats)
    total = sum(layers.values())
    return {
        "cpu_ms_per_request": round(total / per * 1000, 3),
        "layers_ms": {k: round(layers.get(k, 0.0) / per * 1000, 3) for k in LAYERS},
        "sqlite_hops_per_request": round(hops(stats) / per, 1),
        "top": top(stats, 15, per),
    }


async def ladder(n: int, tmp: Path) -> dict[str, dict[str, float]]:
    """Server CPU per request by endpoint, no profiler (``/proc``: 10 ms ticks, so many requests).

    Each endpoint is asked ``n`` times by 10 users at once, after 50 unmeasured
    requests; the steps from ``/healthz`` (HTTP and ASGI only) to a streamed turn
    show what each layer of work costs without cProfile's distortion.
    """
    width = 10
    out: dict[str, dict[str, float]] = {}
    with serving(
        tmp / "ladder",
        ["bench.server_agent:plain"],
        {"TETHER_BENCH_FIRST_MS": "0", "TETHER_BENCH_GAP_MS": "0"},
    ) as server:
        url = server.url
        async with Clients(width) as clients:
            one = await create_session(clients.all[0], url, "plain")
            await stream_turn(clients.all[0], url, one, QUESTION, None)

            async def get(c: Any, path: str) -> None:
                r = await c.get(url + path)
                if r.status_code != 200:
                    raise RuntimeError(f"GET {path}: {r.status_code}")

            async def json_turn(c: Any, sid: str) -> None:
                r = await c.post(f"{url}/v1/sessions/{sid}/messages", json={"message": QUESTION})
                if r.status_code != 200:
                    raise RuntimeError(f"POST messages: {r.status_code}")

            async def create(c: Any, _i: object) -> str:
                return await create_session(c, url, "plain")

            async def sse_turn(c: Any, sid: str) -> None:
                await stream_turn(c, url, sid, QUESTION, None)

            async def measure(name: str, items: list[Any], fn: Any) -> None:
                """The first 50 items warm up; the other ``n`` are measured."""
                await clients.fan(items[:50], fn)
                todo = items[50:]
                cpu0, loop0 = server.cpu_s(), server.loop_cpu_s()
                t0 = time.perf_counter()
                await clients.fan(todo, fn)
                wall = time.perf_counter() - t0
                out[name] = {
                    "server_ms": round((server.cpu_s() - cpu0) / len(todo) * 1000, 3),
                    "loop_ms": round((server.loop_cpu_s() - loop0) / len(todo) * 1000, 3),
                    "per_s": round(len(todo) / wall, 1),
                }

            await measure("GET /healthz", ["/healthz"] * (n + 50), get)
            await measure("GET /v1/agents (auth)", ["/v1/agents"] * (n + 50), get)
            await measure("GET /v1/sessions/{id}", [f"/v1/sessions/{one}"] * (n + 50), get)
            await measure("GET .../events", [f"/v1/sessions/{one}/events"] * (n + 50), get)
            await measure("POST /v1/sessions", list(range(n + 50)), create)
            sids = await clients.fan(list(range(n + 50)), create)
            await measure("POST .../messages (JSON)", sids, json_turn)
            sids = await clients.fan(list(range(n + 50)), create)
            await measure("POST .../messages (SSE)", sids, sse_turn)
    return out


async def profile_server(n: int, rounds: int, tmp: Path) -> tuple[pstats.Stats, pstats.Stats]:
    files: dict[str, list[str]] = {"create": [], "turn": []}
    target = tmp / "current.pstats"
    with serving(
        tmp / "server",
        ["bench.server_agent:plain"],
        {"TETHER_BENCH_PROFILE": str(target)},
        runner="bench.server_profiled",
    ) as server:
        url = server.url
        async with Clients(n) as clients:

            async def phase(name: str, k: int, work: Any) -> Any:
                os.kill(server.pid, signal.SIGUSR1)
                await asyncio.sleep(0.3)  # the handler runs at the loop's next Python code
                out = await work
                os.kill(server.pid, signal.SIGUSR2)
                deadline = time.monotonic() + 30
                while not target.exists():
                    if time.monotonic() > deadline:
                        raise RuntimeError("the server wrote no profile")
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.2)  # written whole
                dest = tmp / f"{name}-{k}.pstats"
                target.rename(dest)
                files[name].append(str(dest))
                return out

            # warm-up, not profiled
            sids = await asyncio.gather(*(create_session(c, url, "plain") for c in clients.all))
            await asyncio.gather(
                *(
                    stream_turn(c, url, s, QUESTION, None)
                    for c, s in zip(clients.all, sids, strict=True)
                )
            )
            for k in range(rounds):
                sids = await phase(
                    "create",
                    k,
                    asyncio.gather(*(create_session(c, url, "plain") for c in clients.all)),
                )
                await phase(
                    "turn",
                    k,
                    asyncio.gather(
                        *(
                            stream_turn(c, url, s, QUESTION, None)
                            for c, s in zip(clients.all, sids, strict=True)
                        )
                    ),
                )
    return pstats.Stats(*files["create"]), pstats.Stats(*files["turn"])


async def profile_inproc(n: int, rounds: int, tmp: Path) -> pstats.Stats:
    prof = cProfile.Profile(time.thread_time)
    async with InProcess(tmp / "inproc", first=0.2, gap=0.025, deltas=4) as inproc:
        await inproc.round(n)  # warm-up
        for _ in range(rounds):
            sids = await asyncio.gather(*(inproc.create() for _ in range(n)))
            prof.enable()
            await asyncio.gather(*(inproc.turn(sid) for sid in sids))
            prof.disable()
    return pstats.Stats(prof)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=200, help="users at once (200)")
    p.add_argument("--rounds", type=int, default=3, help="profiled rounds, added up (3)")
    p.add_argument("--ladder", type=int, default=600, help="requests per endpoint (600)")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    args = p.parse_args(argv)
    n, rounds = args.sessions, args.rounds

    async def go() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="tether-bench-profile-") as tmp:
            steps = await ladder(args.ladder, Path(tmp))
            create, turn = await profile_server(n, rounds, Path(tmp))
            inproc = await profile_inproc(n, rounds, Path(tmp))
        return {
            "ladder": steps,
            "sessions": n,
            "rounds": rounds,
            "server_create": summarise(create, n * rounds),
            "server_turn": summarise(turn, n * rounds),
            "inproc_turn": summarise(inproc, n * rounds),
        }

    report = loop_runner()(go())
    print(
        f"\nserver CPU per request, no profiler ({args.ladder} requests each, 10 users at once, "
        "a zero-latency model; 10 ms clock ticks)"
    )
    for name, row in report["ladder"].items():
        print(
            f"  {name:<26} {row['server_ms']:>6.2f} ms (event loop {row['loop_ms']:>5.2f})"
            f"  {row['per_s']:>7.1f} requests/s"
        )
    sc, st, it = report["server_create"], report["server_turn"], report["inproc_turn"]
    print(
        f"\nevent-loop thread CPU per request under cProfile (thread time), {n} users, "
        f"{rounds} rounds; ms per request"
    )
    head = (
        f"{'layer':<12} {'POST /sessions':>15} {'streamed turn':>14} "
        f"{'in-process turn':>16} {'turn added':>11}"
    )
    print(head)
    print("-" * len(head))
    for layer in LAYERS:
        a, b, c = sc["layers_ms"][layer], st["layers_ms"][layer], it["layers_ms"][layer]
        print(f"{layer:<12} {a:>15.3f} {b:>14.3f} {c:>16.3f} {b - c:>11.3f}")
    print(
        f"{'total':<12} {sc['cpu_ms_per_request']:>15.3f} {st['cpu_ms_per_request']:>14.3f} "
        f"{it['cpu_ms_per_request']:>16.3f} "
        f"{st['cpu_ms_per_request'] - it['cpu_ms_per_request']:>11.3f}"
    )
    print(
        f"{'SQLite hops':<12} {sc['sqlite_hops_per_request']:>15.1f} "
        f"{st['sqlite_hops_per_request']:>14.1f} {it['sqlite_hops_per_request']:>16.1f} "
        f"{st['sqlite_hops_per_request'] - it['sqlite_hops_per_request']:>11.1f}"
    )
    for name, key in (
        ("streamed turn, server", "server_turn"),
        ("POST /v1/sessions", "server_create"),
    ):
        print(f"\ntop functions by own time: {name} (µs per request, calls per request)")
        for row in report[key]["top"][:12]:
            print(
                f"  {row['us_per_request']:>8.1f} µs  {row['calls_per_request']:>7.2f}  "
                f"[{row['layer']}] {row['function']}"
            )
    if args.json:
        print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
